"""Many independent call auctions cleared in one vectorised call.

The grids of all markets are laid end to end (market ``m`` owns the columns
``offsets[m]:offsets[m + 1]`` of one flat array); per-market minima and maxima come from
``np.minimum.at``/``np.maximum.at``, quantities are binned with one ``np.bincount`` over
the combined (market, tick) cells, cumulative sums restart at every market, and the price
rule uses ``ufunc.reduceat`` over the market segments. There is no Python loop over
markets. The result is identical, bit for bit, to clearing every market alone with
:func:`carbonsim.clearing.call_auction` (same grid values, same summation order).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonsim._validation import (
    as_float_array,
    as_int_array,
    check_same_length,
    describe,
    read_only,
)
from carbonsim.clearing.call_auction import (
    NO_PRICE_TICK,
    AllocationRule,
    Cleared,
    apply_band,
    check_allocation,
    check_band_mode,
    check_qty_total,
    clear_markets,
)
from carbonsim.clearing.ticks import (
    MAX_ABS_TICK,
    band_ticks,
    check_tick,
    rint_ticks,
    snap_down,
    snap_up,
    ticks_to_price,
)

__all__ = ["CallAuctionBatchResult", "call_auction_batch", "demand_cutoff"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class CallAuctionBatchResult:
    """Outcome of ``n_markets`` independent call auctions.

    Attributes
    ----------
    price : ndarray of float64, shape (n_markets,)
        Clearing price per market, currency per tonne (as in
        :class:`~carbonsim.clearing.CallAuctionResult`: the reference price, snapped and
        clipped into the band, where nothing trades; NaN where there is none).
    price_tick : ndarray of int64, shape (n_markets,)
        ``price`` in ticks; :data:`~carbonsim.clearing.NO_PRICE_TICK` where ``price`` is NaN.
    volume : ndarray of float64, shape (n_markets,)
        Executed quantity per market, tonnes.
    imbalance, demand, supply : ndarray of float64, shape (n_markets,)
        ``demand - supply``, bid quantity at or above the price and ask quantity at or
        below it, tonnes (NaN where ``price`` is NaN).
    executable : ndarray of bool, shape (n_markets,)
        Whether anything trades.
    fill : ndarray of float64, shape (n_orders,)
        Filled quantity per order, aligned with the inputs, tonnes.
    rejected : ndarray of bool, shape (n_orders,)
        Orders excluded by the price band (``band_mode="reject"``).
    n_filled : ndarray of int64, shape (n_markets,)
        Orders (bids and asks) with a positive fill, per market.
    tick : float
        Price step used, currency per tonne.
    """

    price: FloatArray
    price_tick: IntArray
    volume: FloatArray
    imbalance: FloatArray
    demand: FloatArray
    supply: FloatArray
    executable: BoolArray
    fill: FloatArray
    rejected: BoolArray
    n_filled: IntArray
    tick: float


def _check_n_markets(n_markets: int) -> int:
    if isinstance(n_markets, bool) or not isinstance(n_markets, (int, np.integer)):
        raise TypeError(f"n_markets must be an int, got {describe(n_markets)}")
    if n_markets < 0:
        raise ValueError(f"n_markets must be >= 0, got {n_markets}")
    return int(n_markets)


def _check_market_totals(mkt: IntArray, is_bid: BoolArray, q: FloatArray, n_markets: int) -> None:
    """Refuse a market whose bids or asks total ``2**53`` t or more (validated arrays)."""
    if float(q.sum()) < 2.0**53:  # no market's side can reach it
        return
    for mask, label in ((is_bid, "bids"), (~is_bid, "asks")):
        totals = np.bincount(mkt[mask], weights=q[mask], minlength=n_markets)
        big = np.flatnonzero(~(totals < 2.0**53))
        if big.size:
            m = int(big[0])
            check_qty_total("qty", float(totals[m]), f" of the {label} of market {m}")


def _as_side(side: npt.ArrayLike) -> BoolArray:
    """``True``/``+1``: bid (buy); ``False``/``-1``: ask (sell)."""
    arr = np.asarray(side)
    if arr.dtype.kind == "b":
        out = arr
    elif arr.size == 0 and arr.dtype.kind in "iuf":  # e.g. an empty list
        out = np.zeros(arr.shape, dtype=bool)
    elif arr.dtype.kind in "iu":
        bad = (arr != 1) & (arr != -1)
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise ValueError(
                f"side must hold +1 (bid) or -1 (ask) when integer, got side[{i}] = "
                f"{arr.ravel()[i].item()!r}"
            )
        out = arr == 1
    else:
        raise TypeError(
            f"side must be boolean (True = bid) or integer +1/-1, got dtype {arr.dtype} "
            f"(value {describe(side)})"
        )
    if out.ndim != 1:
        raise ValueError(f"side must be 1-dimensional, got shape {out.shape}")
    return out


def _reference_ticks(
    reference_price: npt.ArrayLike | None, tick: float, n_markets: int
) -> tuple[IntArray, BoolArray]:
    if reference_price is None:
        return np.zeros(n_markets, dtype=np.int64), np.zeros(n_markets, dtype=bool)
    ref = as_float_array("reference_price", reference_price, ndim=None, finite=False)
    if ref.ndim > 1 or (ref.ndim == 1 and ref.shape[0] != n_markets):
        raise ValueError(
            f"reference_price must be a scalar or have shape ({n_markets},), got shape {ref.shape}"
        )
    ref = np.broadcast_to(ref, (n_markets,))
    if np.isinf(ref).any():
        raise ValueError(
            f"reference_price must be finite or NaN (no reference), got {describe(reference_price)}"
        )
    return _reference_ticks_of(ref, tick)


def _reference_ticks_of(ref: FloatArray, tick: float) -> tuple[IntArray, BoolArray]:
    """Ticks of finite-or-NaN reference prices (NaN: no reference, tick 0)."""
    has_ref = ~np.isnan(ref)
    ref_f = np.rint(np.where(has_ref, ref, 0.0) / tick)
    if ref_f.size and float(np.max(np.abs(ref_f))) > MAX_ABS_TICK:
        raise ValueError(f"reference_price is too large for tick {tick!r}")
    return ref_f.astype(np.int64), has_ref


def _clear_ticks(
    mkt: IntArray,
    is_bid: BoolArray,
    ticks: IntArray,
    q: FloatArray,
    n_markets: int,
    ref_t: IntArray,
    has_ref: BoolArray,
    band_t: tuple[IntArray, IntArray] | None,
    band_mode: str,
    rule: AllocationRule,
) -> tuple[Cleared, FloatArray, BoolArray]:
    """The clearing of :func:`call_auction_batch` on validated integer ticks.

    Returns the raw per-market outcome, the fill of every order (input order) and which
    orders the band rejected.
    """
    fallback = ref_t
    if band_t is None:
        rejected = np.zeros(ticks.shape, dtype=bool)
    else:
        lo_t, hi_t = band_t
        ticks, q, rejected = apply_band(ticks, q, lo_t[mkt], hi_t[mkt], band_mode)
        fallback = np.clip(ref_t, lo_t, hi_t)
    bid_idx = np.flatnonzero(is_bid)
    ask_idx = np.flatnonzero(~is_bid)
    out = clear_markets(
        ticks[bid_idx],
        q[bid_idx],
        mkt[bid_idx],
        ticks[ask_idx],
        q[ask_idx],
        mkt[ask_idx],
        n_markets=n_markets,
        ref_tick=ref_t,
        has_ref=has_ref,
        fallback_tick=fallback,
        rule=rule,
    )
    fill = np.empty(ticks.shape)
    fill[bid_idx] = out.bid_fill
    fill[ask_idx] = out.ask_fill
    return out, fill, rejected


def clear_session(
    market: IntArray,
    is_bid: BoolArray,
    price: FloatArray,
    qty: FloatArray,
    *,
    n_markets: int,
    tick: float,
    reference_price: FloatArray,
    band: tuple[FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`call_auction_batch` with pro-rata rationing and rejecting bands, for input
    the caller has built valid (the engine's session loop, once per trading session).

    ``market`` (int64), ``is_bid``, ``price`` (finite) and ``qty`` (whole tonnes, >= 0)
    have shape (n_orders,); ``reference_price`` and the band limits ``(lo, hi)`` (lo <= hi,
    each enclosing a tick) shape (n_markets,), with ``n_markets >= 1``. Skips the argument
    checks, which cost more than the clearing itself on a session's few hundred orders;
    the outcome is the one :func:`call_auction_batch` gives for the same arguments.

    Returns
    -------
    price, volume : ndarray of float64, shape (n_markets,)
        Clearing price (NaN where none) and volume per market.
    fill : ndarray of float64, shape (n_orders,)
        Filled tonnes per order.
    """
    ref_t, has_ref = _reference_ticks_of(reference_price, tick)
    band_t = (snap_up(band[0], tick), snap_down(band[1], tick))
    ticks = rint_ticks("price", price, tick)
    out, fill, _ = _clear_ticks(
        market,
        is_bid,
        ticks,
        qty,
        n_markets,
        ref_t,
        has_ref,
        band_t,
        "reject",
        check_allocation("pro_rata"),
    )
    price_out = np.where(out.has_price, ticks_to_price(out.price_tick, tick), np.nan)
    return price_out, out.volume, fill


def call_auction_batch(
    market: npt.ArrayLike,
    side: npt.ArrayLike,
    price: npt.ArrayLike,
    qty: npt.ArrayLike,
    *,
    n_markets: int,
    tick: float = 0.01,
    reference_price: npt.ArrayLike | None = None,
    allocation: str = "pro_rata",
    price_band: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    band_mode: str = "reject",
) -> CallAuctionBatchResult:
    """Clear ``n_markets`` independent call auctions in one vectorised call.

    Each market is cleared exactly as :func:`carbonsim.clearing.call_auction` would clear
    its orders alone (bids and asks in input order); the results agree bit for bit.

    Parameters
    ----------
    market : array_like of int, shape (n_orders,)
        Market of each order, in ``0 .. n_markets - 1``.
    side : array_like of bool or int, shape (n_orders,)
        ``True`` or ``+1``: bid (buy); ``False`` or ``-1``: ask (sell).
    price, qty : array_like of float, shape (n_orders,)
        Limit prices (currency per tonne, finite) and quantities (tonnes, ``>= 0``).
    n_markets : int
        Number of markets (markets without orders are allowed and do not trade).
    tick : float, default 0.01
        Price step, currency per tonne.
    reference_price : float or array_like of float, shape (n_markets,), optional
        Per-market reference price; NaN entries mean "no reference" for that market.
    allocation : {"pro_rata", "price_time"}, default "pro_rata"
        Rationing at the clearing price (see :func:`~carbonsim.clearing.call_auction`).
    price_band : (lo, hi), optional
        Band limits, each a scalar or an array of shape (n_markets,).
    band_mode : {"reject", "clip"}, default "reject"
        Treatment of orders priced outside the band.

    Returns
    -------
    CallAuctionBatchResult

    Raises
    ------
    TypeError, ValueError
        As :func:`~carbonsim.clearing.call_auction`, plus a ``market`` outside
        ``0 .. n_markets - 1``, a ``side`` that is not bool or +1/-1, mismatched lengths
        of ``market``, ``side``, ``price`` and ``qty``, per-market arrays of the wrong
        shape, and a market whose bids or asks total ``2**53`` t or more.

    Examples
    --------
    >>> r = call_auction_batch(
    ...     [0, 0, 1, 1], [1, -1, 1, -1], [50.0, 49.0, 20.0, 21.0], [10, 10, 5, 5],
    ...     n_markets=2,
    ... )
    >>> r.price.tolist(), r.volume.tolist(), r.fill.tolist()
    ([49.5, nan], [10.0, 0.0], [10.0, 10.0, 0.0, 0.0])
    """
    tick = check_tick(tick)
    n_markets = _check_n_markets(n_markets)
    mkt = as_int_array("market", market, lo=0, hi=n_markets - 1)
    is_bid = _as_side(side)
    p = as_float_array("price", price)
    q = as_float_array("qty", qty, nonnegative=True)
    n_orders = check_same_length(market=mkt, side=is_bid, price=p, qty=q)
    _check_market_totals(mkt, is_bid, q, n_markets)
    rule = check_allocation(allocation)
    band_mode = check_band_mode(band_mode)
    ref_t, has_ref = _reference_ticks(reference_price, tick, n_markets)
    ticks = rint_ticks("price", p, tick)
    band_t = None if price_band is None else band_ticks(price_band, tick, n_markets)
    if n_markets == 0:
        empty_f = np.zeros(0)
        return CallAuctionBatchResult(
            price=read_only(empty_f),
            price_tick=read_only(np.zeros(0, dtype=np.int64)),
            volume=read_only(np.zeros(0)),
            imbalance=read_only(np.zeros(0)),
            demand=read_only(np.zeros(0)),
            supply=read_only(np.zeros(0)),
            executable=read_only(np.zeros(0, dtype=bool)),
            fill=read_only(np.zeros(0)),
            rejected=read_only(np.zeros(n_orders, dtype=bool)),
            n_filled=read_only(np.zeros(0, dtype=np.int64)),
            tick=tick,
        )
    out, fill, rejected = _clear_ticks(
        mkt, is_bid, ticks, q, n_markets, ref_t, has_ref, band_t, band_mode, rule
    )
    price_out = np.where(out.has_price, ticks_to_price(out.price_tick, tick), np.nan)
    price_tick = np.where(out.has_price, out.price_tick, NO_PRICE_TICK)
    n_filled = np.bincount(mkt[fill > 0], minlength=n_markets).astype(np.int64)
    return CallAuctionBatchResult(
        price=read_only(price_out),
        price_tick=read_only(price_tick),
        volume=read_only(out.volume),
        imbalance=read_only(out.demand - out.supply),
        demand=read_only(out.demand),
        supply=read_only(out.supply),
        executable=read_only(out.traded),
        fill=read_only(fill),
        rejected=read_only(rejected),
        n_filled=read_only(n_filled),
        tick=tick,
    )


def demand_cutoff(
    market: npt.ArrayLike,
    bid_tick: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    supply: npt.ArrayLike,
    levels: npt.ArrayLike,
) -> FloatArray:
    """Per market, a tick below which bids can be left out of a call auction unchanged.

    Let ``S`` be a market's total ask quantity and ``D(T)`` the quantity of its bids at
    ticks ``>= T``. If ``D(T) > S`` then every bid below ``T`` is irrelevant: at any tick
    ``p < T`` demand above ``p`` exceeds all supply, so strict price priority (rule 2 of
    :mod:`carbonsim.clearing.call_auction`) rules ``p`` out, with or without those bids;
    at ticks ``>= T`` demand and supply do not involve them. The clearing price, the volume,
    every remaining order's fill, and (where something trades) the demand, supply and
    imbalance at the price are therefore identical bit for bit, and the bids left out
    would have filled nothing. Where nothing trades the price is the reference price either
    way, but ``demand`` there may count the bids left out.

    Parameters
    ----------
    market : array_like of int, shape (M,)
        Market of each bid, in ``[0, n_markets)``.
    bid_tick : array_like of float, shape (M,)
        Each bid's price in ticks as the kernel computes it, ``np.rint(price / tick)``.
    bid_qty : array_like of float, shape (M,)
        Bid quantities, whole units (so that sums are exact).
    supply : array_like of float, shape (n_markets,)
        Total ask quantity of each market.
    levels : array_like of float, shape (L, n_markets)
        Candidate cut-off ticks per market, in any order (the highest that qualifies
        wins: the fewer bids kept, the cheaper the auction).

    Returns
    -------
    ndarray of float64, shape (n_markets,)
        The cut-off tick of each market: the highest level ``T`` with
        ``D(T) >= S + 1``; ``-inf`` (keep every bid) where no level qualifies.

    Notes
    -----
    Without a price band: bids a band rejects would not count toward ``D``. Cost: ``L``
    comparisons of the bids and one ``bincount``.

    Examples
    --------
    >>> cut = demand_cutoff([0, 0, 0], [5000.0, 4990.0, 4000.0], [10.0, 10.0, 10.0],
    ...                     [15.0], [[5000.0], [4990.0]])
    >>> cut
    array([4990.])
    """
    mkt = as_int_array("market", market, ndim=1, lo=0)
    tk = as_float_array("bid_tick", bid_tick, ndim=1)
    qty = as_float_array("bid_qty", bid_qty, ndim=1, nonnegative=True)
    check_same_length(market=mkt, bid_tick=tk, bid_qty=qty)
    sup = as_float_array("supply", supply, ndim=1, nonnegative=True)
    lv = np.asarray(levels, dtype=np.float64)
    if lv.ndim != 2 or lv.shape[1] != sup.shape[0]:
        raise ValueError(
            f"levels must have shape (L, n_markets) = (L, {sup.shape[0]}), got {lv.shape}"
        )
    if len(mkt) and mkt.max() >= sup.shape[0]:
        raise ValueError(
            f"market ids must be below n_markets = {sup.shape[0]} (the length of supply), "
            f"got {int(mkt.max())}"
        )
    n_markets, n_levels = sup.shape[0], lv.shape[0]
    # how many levels (from the lowest) each bid reaches; levels need not be sorted
    order = np.argsort(-lv, axis=0, kind="stable")
    lv_sorted = np.take_along_axis(lv, order, axis=0)  # highest first, per market
    reached = np.zeros(len(mkt), np.int64)
    for level in lv_sorted:
        reached += tk >= level[mkt]
    # demand at or above the l-th highest level = bids reaching at least n_levels - l
    table = np.bincount(
        mkt * (n_levels + 1) + reached, weights=qty, minlength=n_markets * (n_levels + 1)
    ).reshape(n_markets, n_levels + 1)
    at_least = np.cumsum(table[:, ::-1], axis=1)[:, :n_levels]  # column l: level l reached
    ok = at_least >= (sup + 1.0)[:, None]
    first = np.argmax(ok, axis=1)
    found = ok.any(axis=1)
    out = np.full(n_markets, -np.inf)
    out[found] = lv_sorted[first[found], np.flatnonzero(found)]
    return out
