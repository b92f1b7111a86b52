"""Market-clearing kernels: pure numpy functions with no domain knowledge and no simpy.

Call auctions (single market and many markets at once), uniform-price sealed-bid
auctions, a continuous double-auction order book, tick and price-band helpers.
Pure-Python reference implementations used by the tests and benchmarks live in
:mod:`carbonsim.clearing.reference` (not imported here).

>>> from carbonsim.clearing import call_auction
>>> call_auction([50.0], [10], [49.0], [10]).volume
10.0
"""

from __future__ import annotations

from carbonsim.clearing.batch import CallAuctionBatchResult, call_auction_batch, demand_cutoff
from carbonsim.clearing.call_auction import (
    ALLOCATION_RULES,
    BAND_MODES,
    NO_PRICE_TICK,
    CallAuctionResult,
    call_auction,
)
from carbonsim.clearing.order_book import (
    BUY,
    ORDER_BOOK_BACKENDS,
    SELL,
    BookResult,
    BookSnapshot,
    OrderBook,
    OrderStates,
    OrderStatus,
    OrderType,
    Trades,
    match_stream,
)
from carbonsim.clearing.sealed_bid import SealedBidResult, sealed_bid_auction
from carbonsim.clearing.ticks import (
    MAX_ABS_TICK,
    band_from_reference,
    price_to_ticks,
    ticks_to_price,
)

__all__ = [
    "ALLOCATION_RULES",
    "BAND_MODES",
    "BUY",
    "MAX_ABS_TICK",
    "NO_PRICE_TICK",
    "ORDER_BOOK_BACKENDS",
    "SELL",
    "BookResult",
    "BookSnapshot",
    "CallAuctionBatchResult",
    "CallAuctionResult",
    "OrderBook",
    "OrderStates",
    "OrderStatus",
    "OrderType",
    "SealedBidResult",
    "Trades",
    "band_from_reference",
    "call_auction",
    "call_auction_batch",
    "demand_cutoff",
    "match_stream",
    "price_to_ticks",
    "sealed_bid_auction",
    "ticks_to_price",
]
