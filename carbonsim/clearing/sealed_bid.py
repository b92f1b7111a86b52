"""Uniform-price sealed-bid auction of a fixed supply (paid allocation, 有偿竞价).

Used for government sales of allowances. Source: ``ets-rules.md``, "Beijing pilot": paid
allocation by sealed-bid uniform-price auction, e.g. September 2024: 68 bidders, 63
winners, 348,304 t sold at 104.89 yuan/t.

Rule
----
* Bids priced below the reserve price are rejected (the reserve is snapped *up* to the
  tick grid, so no accepted bid is below it).
* Accepted bids are ranked by price. The clearing price is the **lowest accepted bid
  price**: the highest price level ``p`` at which the quantity bid at ``p`` or above
  covers the supply. Every bid above ``p`` fills in full; the bids at ``p`` share what is
  left, by ``allocation``.
* Undersubscribed (accepted demand below the supply): every accepted bid fills in full,
  the price is still the lowest accepted bid price (not the reserve) and the rest of the
  supply is reported as ``unsold``.
* Nothing accepted (or ``supply == 0``): nothing is sold and the price is NaN.

Bids with zero quantity never set the price. Prices are converted to ticks once with
``np.rint(price / tick)``; the price levels come from one sort of the accepted bids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonsim._validation import check_in_range
from carbonsim.clearing.call_auction import (
    allocate_marginal,
    check_allocation,
    readonly,
    validate_side,
)
from carbonsim.clearing.ticks import (
    MAX_ABS_TICK,
    check_tick,
    rint_ticks,
    snap_up,
    ticks_to_price,
)

__all__ = ["SealedBidResult", "sealed_bid_auction"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class SealedBidResult:
    """Outcome of a uniform-price sealed-bid auction.

    Attributes
    ----------
    price : float
        Uniform price paid by every winner, currency per tonne (lowest accepted bid
        price); NaN when nothing is sold.
    price_tick : int or None
        ``price`` in ticks; ``None`` when nothing is sold.
    volume : float
        Quantity sold, tonnes (``<= supply``).
    fills : ndarray of float64, shape (n_bids,)
        Quantity won per bid, tonnes, ``0 <= fills <= bid_qty``.
    unsold : float
        ``supply - volume``, tonnes.
    n_winners : int
        Bids with a positive fill.
    rejected : ndarray of bool, shape (n_bids,)
        Bids priced below the reserve price.
    supply : float
        Quantity offered, tonnes.
    tick : float
        Price step used, currency per tonne.
    """

    price: float
    price_tick: int | None
    volume: float
    fills: FloatArray
    unsold: float
    n_winners: int
    rejected: BoolArray
    supply: float
    tick: float


def sealed_bid_auction(
    bid_price: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    *,
    supply: float,
    reserve_price: float,
    tick: float = 0.01,
    allocation: str = "pro_rata",
) -> SealedBidResult:
    """Sell ``supply`` tonnes at one price to the highest sealed bids.

    Parameters
    ----------
    bid_price, bid_qty : array_like of float, shape (n_bids,)
        Bid prices (currency per tonne, finite) and quantities (tonnes, ``>= 0``).
    supply : float
        Quantity offered, tonnes, ``>= 0``.
    reserve_price : float
        Lowest acceptable bid price (floor price), currency per tonne.
    tick : float, default 0.01
        Price step, currency per tonne.
    allocation : {"pro_rata", "price_time"}, default "pro_rata"
        Rationing among the bids at the clearing price: proportional in whole units
        (largest remainder, ties to the earlier bid), or in input (arrival) order.

    Returns
    -------
    SealedBidResult

    Raises
    ------
    TypeError, ValueError
        Bad prices or quantities (as :func:`~carbonsim.clearing.call_auction`), negative
        or non-finite ``supply``, non-finite ``reserve_price``, ``tick <= 0``, unknown
        ``allocation``.

    Examples
    --------
    >>> r = sealed_bid_auction([110.0, 105.0, 104.0, 90.0], [40, 40, 40, 40],
    ...                        supply=100, reserve_price=100.0)
    >>> r.price, r.volume, r.fills.tolist(), r.n_winners
    (104.0, 100.0, [40.0, 40.0, 20.0, 0.0], 3)
    >>> r.rejected.tolist()
    [False, False, False, True]
    """
    tick = check_tick(tick)
    bp, bq = validate_side("bid_price", bid_price, "bid_qty", bid_qty)
    supply_v = check_in_range("supply", supply, 0.0)
    reserve = check_in_range("reserve_price", reserve_price)
    if abs(reserve / tick) > MAX_ABS_TICK:
        raise ValueError(f"reserve_price is too large for tick {tick!r}, got {reserve!r}")
    rule = check_allocation(allocation)
    ticks = rint_ticks("bid_price", bp, tick)
    reserve_t = int(snap_up(reserve, tick))
    rejected = ticks < reserve_t
    fills = np.zeros(bp.size)
    live = np.flatnonzero(~rejected & (bq > 0))
    if live.size == 0 or supply_v == 0.0:
        return _result(float("nan"), None, 0.0, fills, rejected, supply_v, tick)

    levels, level_of = np.unique(ticks[live], return_inverse=True)
    level_qty = np.bincount(level_of, weights=bq[live], minlength=levels.size)
    demand = np.cumsum(level_qty[::-1])[::-1]  # quantity bid at or above each level
    sold = min(supply_v, float(demand[0]))
    k = int(np.flatnonzero(demand >= sold)[-1])
    above = float(demand[k + 1]) if k + 1 < levels.size else 0.0
    price_t = int(levels[k])
    winners = live[level_of > k]
    fills[winners] = bq[winners]
    marginal = live[level_of == k]
    fills[marginal] = allocate_marginal(
        rule, bq[marginal], None, np.array([sold - above]), np.array([float(level_qty[k])])
    )
    price = float(ticks_to_price([price_t], tick)[0])
    return _result(price, price_t, sold, fills, rejected, supply_v, tick)


def _result(
    price: float,
    price_tick: int | None,
    volume: float,
    fills: FloatArray,
    rejected: BoolArray,
    supply: float,
    tick: float,
) -> SealedBidResult:
    return SealedBidResult(
        price=price,
        price_tick=price_tick,
        volume=volume,
        fills=readonly(fills),
        unsold=supply - volume,
        n_winners=int(np.count_nonzero(fills)),
        rejected=readonly(rejected),
        supply=supply,
        tick=tick,
    )
