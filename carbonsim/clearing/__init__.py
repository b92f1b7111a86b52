"""Market-clearing kernels: pure numpy functions with no domain knowledge and no simpy.

Call auctions (single market and many markets at once), uniform-price sealed-bid
auctions, tick and price-band helpers. Pure-Python reference implementations used by the
tests and benchmarks live in :mod:`carbonsim.clearing.reference` (not imported here).

>>> from carbonsim.clearing import call_auction
>>> call_auction([50.0], [10], [49.0], [10]).volume
10.0
"""

from __future__ import annotations

from carbonsim.clearing._ticks import (
    MAX_ABS_TICK,
    band_from_reference,
    price_to_ticks,
    ticks_to_price,
)
from carbonsim.clearing.batch import CallAuctionBatchResult, call_auction_batch
from carbonsim.clearing.call_auction import (
    ALLOCATION_RULES,
    BAND_MODES,
    NO_PRICE_TICK,
    CallAuctionResult,
    call_auction,
)
from carbonsim.clearing.sealed_bid import SealedBidResult, sealed_bid_auction

# --- call-auction kernels (this block: call_auction, batch, sealed_bid, _ticks) -------
# The order-book names (carbonsim.clearing.order_book) are merged in separately.
__all__ = [
    "ALLOCATION_RULES",
    "BAND_MODES",
    "MAX_ABS_TICK",
    "NO_PRICE_TICK",
    "CallAuctionBatchResult",
    "CallAuctionResult",
    "SealedBidResult",
    "band_from_reference",
    "call_auction",
    "call_auction_batch",
    "price_to_ticks",
    "sealed_bid_auction",
    "ticks_to_price",
]
