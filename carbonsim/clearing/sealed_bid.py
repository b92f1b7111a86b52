"""Uniform-price sealed-bid auction of a fixed supply (paid allocation, 有偿竞价).

Used for government sales of allowances. Source: docs/rules.md#paid-auction (Beijing
pilot): paid allocation by sealed-bid uniform-price auction, e.g. September 2024: 68 bidders, 63
winners, 348,304 t sold at 104.89 yuan/t. The optional rules of the EU's primary auctions
follow the EU Auctioning Regulation, Article 7 (auction clearing price, tied bids,
cancellation): Commission Regulation (EU) No 1031/2010, replaced by Commission Delegated
Regulation (EU) 2023/2830, which carries these rules over. Paragraph numbers below are
those of Regulation 1031/2010, Art. 7.

Rule
----
* Bids priced below the reserve price are rejected (the reserve is snapped *up* to the
  tick grid, so no accepted bid is below it).
* Accepted bids are ranked by price. The clearing price is the **lowest accepted bid
  price**: the highest price level ``p`` at which the quantity bid at ``p`` or above
  covers the supply (Art. 7(2): the price of the bid at which the sum of the volumes
  bid, from the highest price down, meets or exceeds the volume auctioned). Every bid
  above ``p`` fills in full (Art. 7(3)); the bids at ``p`` share what is left, by
  ``allocation``.
* Undersubscribed (accepted demand below the supply): every accepted bid fills in full,
  the price is still the lowest accepted bid price (not the reserve) and the rest of the
  supply is reported as ``unsold`` -- unless ``min_cover`` cancels the auction.
* Nothing accepted (or ``supply == 0``): nothing is sold and the price is NaN.

EU Auctioning Regulation, Article 7 (all optional; the defaults keep the rule above)
------------------------------------------------------------------------------------
* ``allocation="random"`` (Art. 7(2) and 7(4)): bids at the same price are sorted by
  random selection; the bids at the clearing price fill in that order, each in full,
  until the remaining volume is smaller than the next bid, which gets the remainder; the
  bids after it get nothing. The order is drawn from ``seed`` (required): the same seed
  gives the same allocation.
* ``min_cover`` (Art. 7(5)): the auction is cancelled when the volume of the accepted
  bids, divided by the supply, is below ``min_cover``. ``min_cover=1.0`` is the
  regulation's rule: the platform cancels an auction whose total volume of bids is
  lower than the volume auctioned. Bids below the reserve price do not count (the EU
  auctions have no reserve price; pass one below every bid).
* ``secondary_price`` with ``min_price_ratio`` (Art. 7(6)): the auction is cancelled
  when the clearing price is below ``min_price_ratio * secondary_price`` (snapped up to
  the tick grid, as the reserve is). The regulation cancels an auction whose clearing
  price is "significantly under" the secondary-market price prevailing during and
  immediately before the bidding window, taking short-term volatility into account, by
  a methodology the auction platform sets before the auction (Art. 7(7));
  ``min_price_ratio`` stands for that methodology's threshold and has no default.

A cancelled auction allocates nothing, has no price (NaN) and says why in
``cancel_reason``; Art. 7(8) spreads its volume over later auctions, which is the
caller's business.

Bids with zero quantity never set the price. Prices are converted to ticks once with
``np.rint(price / tick)``; the price levels come from one sort of the accepted bids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonsim._random import SeedLike, as_generator
from carbonsim._registry import UnknownPluginError
from carbonsim._validation import check_in_range, describe, read_only
from carbonsim.clearing.call_auction import (
    ALLOCATION_RULES,
    AllocationRule,
    allocate_marginal,
    check_allocation,
    validate_side,
)
from carbonsim.clearing.ticks import (
    MAX_ABS_TICK,
    check_tick,
    rint_ticks,
    snap_up,
    ticks_to_price,
)

__all__ = ["RANDOM_ALLOCATION", "SealedBidResult", "sealed_bid_auction"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RANDOM_ALLOCATION = "random"
"""``allocation`` value for the EU rule: tied bids at the clearing price in random order."""


@dataclass(frozen=True, eq=False)
class SealedBidResult:
    """Outcome of a uniform-price sealed-bid auction.

    Attributes
    ----------
    price : float
        Uniform price paid by every winner, currency per tonne (lowest accepted bid
        price); NaN when nothing is sold or the auction is cancelled.
    price_tick : int or None
        ``price`` in ticks; ``None`` when nothing is sold or the auction is cancelled.
    volume : float
        Quantity sold, tonnes (``<= supply``; 0 when cancelled).
    fills : ndarray of float64, shape (n_bids,)
        Quantity won per bid, tonnes, ``0 <= fills <= bid_qty``; all 0 when cancelled.
    unsold : float
        ``supply - volume``, tonnes (the whole supply when cancelled).
    n_winners : int
        Bids with a positive fill.
    rejected : ndarray of bool, shape (n_bids,)
        Bids priced below the reserve price.
    supply : float
        Quantity offered, tonnes.
    tick : float
        Price step used, currency per tonne.
    cancelled : bool
        The auction was cancelled by ``min_cover`` (Art. 7(5)) or by ``min_price_ratio``
        (Art. 7(6)).
    cancel_reason : str or None
        Why, starting with ``"Art. 7(5)"`` or ``"Art. 7(6)"``; ``None`` when not
        cancelled.
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
    cancelled: bool = False
    cancel_reason: str | None = None


def sealed_bid_auction(
    bid_price: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    *,
    supply: float,
    reserve_price: float,
    tick: float = 0.01,
    allocation: str = "pro_rata",
    seed: SeedLike = None,
    min_cover: float | None = None,
    secondary_price: float | None = None,
    min_price_ratio: float | None = None,
) -> SealedBidResult:
    """Sell ``supply`` tonnes at one price to the highest sealed bids.

    The clearing rule and the EU Auctioning Regulation's Article 7 options are set out in
    the module docstring (:mod:`carbonsim.clearing.sealed_bid`).

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
    allocation : {"pro_rata", "price_time", "random"}, default "pro_rata"
        Rationing among the bids at the clearing price: proportional in whole units
        (largest remainder, ties to the earlier bid), in input (arrival) order, or in an
        order drawn at random from ``seed`` (Art. 7(2), 7(4); each bid in full, the last
        one the remainder). Other names registered in
        :data:`carbonsim.clearing.ALLOCATION_RULES` work too.
    seed : int, SeedSequence or Generator, optional
        Required with ``allocation="random"`` and not accepted otherwise. The same int or
        ``SeedSequence`` gives the same allocation of the same bids; a ``Generator`` is
        used as is (and advanced).
    min_cover : float, optional
        Cancel (Art. 7(5)) when the accepted bid volume divided by ``supply`` is below
        this, ``> 0``; ``1.0`` is the regulation's rule. A ratio exactly at
        ``min_cover`` stands. Not applied when ``supply == 0``.
    secondary_price : float, optional
        Prevailing secondary-market price, currency per tonne, ``> 0``. Needs
        ``min_price_ratio``.
    min_price_ratio : float, optional
        The auction platform's threshold under its Art. 7(6)-(7) methodology, in
        ``(0, 1]``: cancel when the clearing price is below ``min_price_ratio *
        secondary_price`` (snapped up to the tick grid; a price at the threshold stands).
        Needs ``secondary_price``; there is no default.

    Returns
    -------
    SealedBidResult

    Raises
    ------
    TypeError, ValueError
        Bad prices or quantities (as :func:`~carbonsim.clearing.call_auction`), negative
        or non-finite ``supply``, non-finite ``reserve_price``, ``tick <= 0``, unknown
        ``allocation``, ``allocation="random"`` without ``seed`` (or ``seed`` with another
        allocation), a bad ``seed``, ``min_cover <= 0``, ``secondary_price <= 0``,
        ``min_price_ratio`` outside ``(0, 1]``, one of ``secondary_price`` and
        ``min_price_ratio`` without the other.

    Examples
    --------
    >>> r = sealed_bid_auction([110.0, 105.0, 104.0, 90.0], [40, 40, 40, 40],
    ...                        supply=100, reserve_price=100.0)
    >>> r.price, r.volume, r.fills.tolist(), r.n_winners
    (104.0, 100.0, [40.0, 40.0, 20.0, 0.0], 3)
    >>> r.rejected.tolist()
    [False, False, False, True]

    Tied bids in random order (the same seed, the same order), and the two cancellations:

    >>> r = sealed_bid_auction([50.0, 50.0, 50.0], [10, 10, 10], supply=15,
    ...                        reserve_price=0.0, allocation="random", seed=7)
    >>> sorted(r.fills.tolist())
    [0.0, 5.0, 10.0]
    >>> r = sealed_bid_auction([50.0], [10], supply=15, reserve_price=0.0, min_cover=1.0)
    >>> r.cancelled, r.volume, r.cancel_reason.startswith("Art. 7(5)")
    (True, 0.0, True)
    >>> r = sealed_bid_auction([50.0], [10], supply=10, reserve_price=0.0,
    ...                        secondary_price=70.0, min_price_ratio=0.8)
    >>> r.cancelled, r.price, r.volume
    (True, nan, 0.0)
    >>> r.cancel_reason.split(",")[0]
    'Art. 7(6): clearing price 50.0 is below 56.0'
    """
    tick = check_tick(tick)
    bp, bq = validate_side("bid_price", bid_price, "bid_qty", bid_qty)
    supply_v = check_in_range("supply", supply, 0.0)
    reserve = check_in_range("reserve_price", reserve_price)
    if abs(reserve / tick) > MAX_ABS_TICK:
        raise ValueError(f"reserve_price is too large for tick {tick!r}, got {reserve!r}")
    rule, rng = _check_allocation(allocation, seed)
    cover = _check_min_cover(min_cover)
    floor = _check_price_floor(secondary_price, min_price_ratio, tick)
    ticks = rint_ticks("bid_price", bp, tick)
    reserve_t = int(snap_up(reserve, tick))
    rejected = ticks < reserve_t
    fills = np.zeros(bp.size)
    accepted = ~rejected & (bq > 0)

    if cover is not None and supply_v > 0.0:  # Art. 7(5)
        bid_total = float(bq[accepted].sum())
        ratio = bid_total / supply_v
        if ratio < cover:
            reason = (
                f"Art. 7(5): accepted bids total {bid_total!r} t, {ratio:.6g} x supply "
                f"{supply_v!r} t, below min_cover={cover!r}"
            )
            return _cancelled(reason, fills, rejected, supply_v, tick)

    live = np.flatnonzero(accepted)
    if live.size == 0 or supply_v == 0.0:
        return _result(float("nan"), None, 0.0, fills, rejected, supply_v, tick)

    levels, level_of = np.unique(ticks[live], return_inverse=True)
    level_qty = np.bincount(level_of, weights=bq[live], minlength=levels.size)
    demand = np.cumsum(level_qty[::-1])[::-1]  # quantity bid at or above each level
    sold = min(supply_v, float(demand[0]))
    k = int(np.flatnonzero(demand >= sold)[-1])
    above = float(demand[k + 1]) if k + 1 < levels.size else 0.0
    price_t = int(levels[k])
    price = float(ticks_to_price([price_t], tick)[0])

    if floor is not None and price_t < floor[2]:  # Art. 7(6)
        ratio_v, secondary_v, floor_t = floor
        threshold = float(ticks_to_price([floor_t], tick)[0])
        reason = (
            f"Art. 7(6): clearing price {price!r} is below {threshold!r}, "
            f"min_price_ratio={ratio_v!r} x secondary_price={secondary_v!r} on the tick grid"
        )
        return _cancelled(reason, fills, rejected, supply_v, tick)

    winners = live[level_of > k]
    fills[winners] = bq[winners]
    marginal = live[level_of == k]
    if rng is not None:  # Art. 7(2), 7(4): tied bids sorted by random selection
        marginal = marginal[rng.permutation(marginal.size)]
    fills[marginal] = allocate_marginal(
        rule, bq[marginal], None, np.array([sold - above]), np.array([float(level_qty[k])])
    )
    return _result(price, price_t, sold, fills, rejected, supply_v, tick)


def _check_allocation(
    allocation: str, seed: SeedLike
) -> tuple[AllocationRule, np.random.Generator | None]:
    """The rationing rule and, for ``"random"``, the generator that orders the tied bids."""
    if allocation == RANDOM_ALLOCATION:
        if seed is None:
            raise ValueError(
                "allocation='random' needs seed= (an int, SeedSequence or Generator) so "
                "that the allocation is reproducible, got seed=None"
            )
        return check_allocation("price_time"), as_generator(seed)
    try:
        rule = check_allocation(allocation)
    except UnknownPluginError:
        valid = ", ".join(repr(n) for n in sorted([*ALLOCATION_RULES.names(), RANDOM_ALLOCATION]))
        raise UnknownPluginError(
            f"unknown allocation rule {describe(allocation)} (argument allocation); "
            f"valid names are: {valid}"
        ) from None
    if seed is not None:
        raise ValueError(
            f"seed is used only with allocation='random', got seed={describe(seed)} "
            f"with allocation={allocation!r}"
        )
    return rule, None


def _check_min_cover(min_cover: float | None) -> float | None:
    if min_cover is None:
        return None
    v = check_in_range("min_cover", min_cover)
    if v <= 0.0:
        raise ValueError(f"min_cover must be > 0 (1.0 is Art. 7(5)'s rule), got {v!r}")
    return v


def _check_price_floor(
    secondary_price: float | None, min_price_ratio: float | None, tick: float
) -> tuple[float, float, int] | None:
    """``(ratio, secondary price, threshold tick)`` of the Art. 7(6) cancellation, or None."""
    if secondary_price is None and min_price_ratio is None:
        return None
    if min_price_ratio is None:
        raise ValueError(
            f"secondary_price={describe(secondary_price)} needs min_price_ratio= (the "
            "auction platform's Art. 7(6) threshold, in (0, 1]); there is no default"
        )
    if secondary_price is None:
        raise ValueError(
            f"min_price_ratio={describe(min_price_ratio)} needs secondary_price= (the "
            "prevailing secondary-market price)"
        )
    sec = check_in_range("secondary_price", secondary_price)
    if sec <= 0.0:
        raise ValueError(f"secondary_price must be > 0, got {sec!r}")
    ratio = check_in_range("min_price_ratio", min_price_ratio)
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"min_price_ratio must lie in (0, 1], got {ratio!r}")
    if sec / tick > MAX_ABS_TICK:
        raise ValueError(f"secondary_price is too large for tick {tick!r}, got {sec!r}")
    return ratio, sec, int(snap_up(ratio * sec, tick))


def _cancelled(
    reason: str, fills: FloatArray, rejected: BoolArray, supply: float, tick: float
) -> SealedBidResult:
    logger.debug("sealed-bid auction cancelled: %s", reason)
    return _result(float("nan"), None, 0.0, fills, rejected, supply, tick, cancel_reason=reason)


def _result(
    price: float,
    price_tick: int | None,
    volume: float,
    fills: FloatArray,
    rejected: BoolArray,
    supply: float,
    tick: float,
    cancel_reason: str | None = None,
) -> SealedBidResult:
    return SealedBidResult(
        price=price,
        price_tick=price_tick,
        volume=volume,
        fills=read_only(fills),
        unsold=supply - volume,
        n_winners=int(np.count_nonzero(fills)),
        rejected=read_only(rejected),
        supply=supply,
        tick=tick,
        cancelled=cancel_reason is not None,
        cancel_reason=cancel_reason,
    )
