"""Compiled clearing of one trading session, behind ``Simulation(..., backend="numba")``.

Importing this module does nothing heavy; the first call of :func:`clear_session_compiled`
imports the optional ``numba`` package (``carbonsim[fast]``; ``ModuleNotFoundError``
without it) and compiles the kernel (a few seconds the first time, then loaded from numba's
on-disk cache).

The kernel computes exactly what :func:`carbonsim.clearing.batch.clear_session` computes
(the tests compare them order by order): the same rounding of prices to ticks, the same
inward snapping of the band, the same candidate prices and tie-breaks, the same
largest-remainder rationing. It works market by market on the distinct ticks of the
market's orders plus one column for each gap between neighbouring ticks (the compressed
grid of :mod:`carbonsim.clearing.call_auction`), so its cost is ``O(n log n)`` in the
orders with no Python-level work per market or order. It handles the case the engine
always produces, whole-tonne quantities whose totals stay below ``2**53``; for anything
else (and for prices beyond :data:`~carbonsim.clearing._ticks.MAX_ABS_TICK` ticks) it
reports so and :func:`clear_session_compiled` returns the numpy result instead, errors
included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._numba import compile_module, np_maximum, np_minimum
from carbonsim.clearing._ticks import _SNAP_TOL, MAX_ABS_TICK, _decimal_scale, ticks_to_price
from carbonsim.clearing.batch import clear_session

__all__ = [
    "bands_compiled",
    "clear_session_compiled",
    "clear_ticks_kernel",
    "cleared",
    "compile_kernels",
    "offset_auction_compiled",
    "offset_clear_kernel",
    "session_bands",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_EXACT_FLOAT = float(2**53)
_INT_PRODUCT_LIMIT = float(2**62)
_MAX_ABS_TICK = float(MAX_ABS_TICK)
_TOL = _SNAP_TOL

# status codes of the kernel
_OK = 0
_FALLBACK = 1  # input outside the kernel's case: use the numpy clearing


def _ration(
    q: FloatArray, members: IntArray, amount: float, total: float, fill: FloatArray
) -> None:
    """Pro-rata rationing of ``amount`` over the orders ``members`` (input order), as
    :func:`carbonsim.clearing.call_auction._allocate` with the ``"pro_rata"`` rule."""
    k = members.shape[0]
    if amount >= total:
        for i in range(k):
            fill[members[i]] = q[members[i]]
        return
    if amount <= 0.0:
        return
    q_max = 0.0
    for i in range(k):
        q_max = max(q_max, q[members[i]])
    whole = amount == np.rint(amount) and q_max * amount < _INT_PRODUCT_LIMIT
    whole = whole and total < _EXACT_FLOAT and amount <= total
    if not whole:
        share = amount / total if total > 0.0 else 0.0
        share = min(share, 1.0)
        for i in range(k):
            fill[members[i]] = q[members[i]] * share
        return
    a = np.int64(amount)
    t = np.int64(0)
    for i in range(k):
        t += np.int64(q[members[i]])
    den = max(t, np.int64(1))
    base = np.empty(k, np.int64)
    neg_rem = np.empty(k, np.int64)
    left = a
    for i in range(k):
        num = a * np.int64(q[members[i]])
        b = num // den
        base[i] = b
        neg_rem[i] = -(num - b * den)
        left -= b
    # the units left over go to the largest remainders, ties to the earlier order
    rank = np.argsort(neg_rem, kind="mergesort")
    for j in range(k):
        i = rank[j]
        fill[members[i]] = np.float64(base[i] + (1 if j < left else 0))


def clear_ticks_kernel(
    market: IntArray,
    is_bid: BoolArray,
    price: FloatArray,
    qty: FloatArray,
    n_markets: int,
    tick: float,
    reference_price: FloatArray,
    band_lo: FloatArray,
    band_hi: FloatArray,
) -> tuple[int, IntArray, BoolArray, FloatArray, FloatArray]:
    """Clear ``n_markets`` call auctions; returns ``(status, price_tick, has_price, volume,
    fill)``. ``status`` is ``_FALLBACK`` where the input is outside the kernel's case."""
    n = market.shape[0]
    price_tick = np.zeros(n_markets, np.int64)
    has_price = np.zeros(n_markets, np.bool_)
    volume = np.zeros(n_markets, np.float64)
    fill = np.zeros(n, np.float64)
    # per-market reference tick and band (snapped inward), as clear_session
    ref_t = np.zeros(n_markets, np.int64)
    has_ref = np.zeros(n_markets, np.bool_)
    lo_t = np.empty(n_markets, np.int64)
    hi_t = np.empty(n_markets, np.int64)
    for m in range(n_markets):
        r = reference_price[m]
        if not np.isnan(r):
            rf = np.rint(r / tick)
            if abs(rf) > _MAX_ABS_TICK:
                return _FALLBACK, price_tick, has_price, volume, fill
            ref_t[m] = np.int64(rf)
            has_ref[m] = True
        x = band_lo[m] / tick
        lo_t[m] = np.int64(np.ceil(x - _TOL * max(1.0, abs(x))))
        x = band_hi[m] / tick
        hi_t[m] = np.int64(np.floor(x + _TOL * max(1.0, abs(x))))
    # ticks, band rejection (quantity 0), whole-tonne check
    ticks = np.empty(n, np.int64)
    q = np.empty(n, np.float64)
    bid_sum = 0.0
    ask_sum = 0.0
    for i in range(n):
        tf = np.rint(price[i] / tick)
        if abs(tf) > _MAX_ABS_TICK or qty[i] != np.rint(qty[i]):
            return _FALLBACK, price_tick, has_price, volume, fill
        t = np.int64(tf)
        m = market[i]
        c = min(max(t, lo_t[m]), hi_t[m])
        ticks[i] = c
        q[i] = 0.0 if c != t else qty[i]
        if is_bid[i]:
            bid_sum += q[i]
        else:
            ask_sum += q[i]
    if n_markets < 2 or not (bid_sum < _EXACT_FLOAT and ask_sum < _EXACT_FLOAT):
        return _FALLBACK, price_tick, has_price, volume, fill
    # orders grouped by market, input order kept within a market
    start = np.zeros(n_markets + 1, np.int64)
    for i in range(n):
        start[market[i] + 1] += 1
    for m in range(n_markets):
        start[m + 1] += start[m]
    pos = start[:-1].copy()
    idx = np.empty(n, np.int64)
    for i in range(n):
        m = market[i]
        idx[pos[m]] = i
        pos[m] += 1
    for m in range(n_markets):
        s, e = start[m], start[m + 1]
        # no trade: the reference price clipped into the band
        if has_ref[m]:
            price_tick[m] = min(max(ref_t[m], lo_t[m]), hi_t[m])
            has_price[m] = True
        k_live = 0
        for j in range(s, e):
            if q[idx[j]] > 0.0:
                k_live += 1
        if k_live == 0:
            continue
        live = np.empty(k_live, np.int64)
        k_live = 0
        for j in range(s, e):
            if q[idx[j]] > 0.0:
                live[k_live] = idx[j]
                k_live += 1
        by_tick = live[np.argsort(ticks[live])]
        # columns: each distinct tick, and one per gap between neighbouring ticks
        n_col_max = 2 * k_live
        c_lo = np.empty(n_col_max, np.int64)
        c_hi = np.empty(n_col_max, np.int64)
        c_bid = np.zeros(n_col_max, np.float64)
        c_ask = np.zeros(n_col_max, np.float64)
        nc = 0
        for j in range(k_live):
            i = by_tick[j]
            t = ticks[i]
            if nc == 0 or t != c_hi[nc - 1]:
                if nc > 0 and t > c_hi[nc - 1] + 1:
                    c_lo[nc] = c_hi[nc - 1] + 1
                    c_hi[nc] = t - 1
                    nc += 1
                c_lo[nc] = t
                c_hi[nc] = t
                nc += 1
            if is_bid[i]:
                c_bid[nc - 1] += q[i]
            else:
                c_ask[nc - 1] += q[i]
        # S: asks at or below the column; D: bids at or above it
        supply = np.empty(nc, np.float64)
        demand = np.empty(nc, np.float64)
        acc = 0.0
        for c in range(nc):
            acc += c_ask[c]
            supply[c] = acc
        acc = 0.0
        for c in range(nc - 1, -1, -1):
            acc += c_bid[c]
            demand[c] = acc
        # feasible prices (strict price priority achievable, V > 0), least |imbalance|
        feasible = np.zeros(nc, np.bool_)
        best_imb = np.inf
        for c in range(nc):
            ok = demand[c] > 0.0 and supply[c] > 0.0
            ok = ok and (c == nc - 1 or demand[c + 1] <= supply[c])
            ok = ok and (c == 0 or supply[c - 1] <= demand[c])
            if ok:
                feasible[c] = True
                best_imb = min(best_imb, abs(demand[c] - supply[c]))
        if best_imb == np.inf:
            continue
        tied = np.zeros(nc, np.bool_)
        for c in range(nc):
            tied[c] = feasible[c] and abs(demand[c] - supply[c]) == best_imb
        if has_ref[m]:
            # nearest tick to the reference; the lower of two equidistant ticks
            ref = ref_t[m]
            d_min = np.int64(-1)
            for c in range(nc):
                if tied[c]:
                    d = max(max(c_lo[c] - ref, ref - c_hi[c]), np.int64(0))
                    if d_min < 0 or d < d_min:
                        d_min = d
            below = ref - d_min
            p = ref + d_min
            for c in range(nc):
                if tied[c] and c_lo[c] <= below <= c_hi[c]:
                    p = below
                    break
        else:
            # lower median of the tied ticks
            k_tied = np.int64(0)
            for c in range(nc):
                if tied[c]:
                    k_tied += c_hi[c] - c_lo[c] + 1
            j_med = max(k_tied - 1, np.int64(0)) // 2
            p = np.int64(0)
            for c in range(nc):
                if tied[c]:
                    cnt = c_hi[c] - c_lo[c] + 1
                    if j_med < cnt:
                        p = c_lo[c] + j_med
                        break
                    j_med -= cnt
        col = -1
        for c in range(nc):
            if tied[c] and c_lo[c] <= p <= c_hi[c]:
                col = c
                break
        price_tick[m] = p
        has_price[m] = True
        vol = min(demand[col], supply[col])
        volume[m] = vol
        d_above = 0.0 if col == nc - 1 else demand[col + 1]
        s_below = 0.0 if col == 0 else supply[col - 1]
        # strictly better orders fill in full; the marginal ones share what is left
        n_mb = 0
        n_ma = 0
        for j in range(k_live):
            i = live[j]
            t = ticks[i]
            if is_bid[i]:
                if t > p:
                    fill[i] = q[i]
                elif t == p:
                    n_mb += 1
            else:
                if t < p:
                    fill[i] = q[i]
                elif t == p:
                    n_ma += 1
        if n_mb or n_ma:
            mb = np.empty(n_mb, np.int64)
            ma = np.empty(n_ma, np.int64)
            n_mb = 0
            n_ma = 0
            for j in range(k_live):
                i = live[j]
                if ticks[i] == p:
                    if is_bid[i]:
                        mb[n_mb] = i
                        n_mb += 1
                    else:
                        ma[n_ma] = i
                        n_ma += 1
            _ration(q, mb, vol - d_above, demand[col] - d_above, fill)
            _ration(q, ma, vol - s_below, supply[col] - s_below, fill)
    return _OK, price_tick, has_price, volume, fill


def session_bands(
    reference: FloatArray,
    listed_band: float,
    block_band: float,
    tick: float,
    tick_k: float,
    tick_scale: float,
    floor: float,
    ceiling: float,
) -> tuple[FloatArray, FloatArray]:
    """The engine's price bands of a session: ``(lo, hi)``, each (2R,), listed markets
    first, then block markets.

    Each band is ``reference * (1 -/+ fraction)`` snapped inward to the grid
    (:func:`~carbonsim.clearing._ticks.snap_up`, ``snap_down``, never inverted) and
    converted back with :func:`~carbonsim.clearing._ticks.ticks_to_price` (``tick_k``,
    ``tick_scale`` from ``_decimal_scale``); a policy ``floor`` or ``ceiling`` (NaN: none)
    then overrides it as in the engine: limits win over bands, a band beyond a limit
    collapses onto it.
    """
    r = reference.shape[0]
    lo = np.empty(2 * r, np.float64)
    hi = np.empty(2 * r, np.float64)
    for seg in range(2):
        fraction = listed_band if seg == 0 else block_band
        down = 1.0 - fraction
        up = 1.0 + fraction
        for i in range(r):
            x = reference[i] * down / tick
            lo_t = np.int64(np.ceil(x - _TOL * np_maximum(1.0, abs(x))))
            x = reference[i] * up / tick
            hi_t = np.int64(np.floor(x + _TOL * np_maximum(1.0, abs(x))))
            hi_t = max(hi_t, lo_t)
            lo_p = (np.float64(lo_t) * tick_k) / tick_scale
            hi_p = (np.float64(hi_t) * tick_k) / tick_scale
            if not np.isnan(floor):
                lo_p = np_maximum(lo_p, floor)
                hi_p = np_maximum(hi_p, lo_p)
            if not np.isnan(ceiling):
                hi_p = np_minimum(hi_p, ceiling)
                lo_p = np_minimum(lo_p, hi_p)
            lo[seg * r + i] = lo_p
            hi[seg * r + i] = hi_p
    return lo, hi


def offset_clear_kernel(
    bid_market: IntArray,
    bid_price: FloatArray,
    bid_qty: FloatArray,
    ask_market: IntArray,
    ask_price: FloatArray,
    ask_qty: FloatArray,
    n_markets: int,
    tick: float,
    levels: FloatArray,
) -> tuple[int, IntArray, BoolArray, FloatArray, FloatArray]:
    """One offset class's auctions: :func:`~carbonsim.clearing.batch.demand_cutoff` on the
    bids (the highest of the ``levels`` (L, n_markets) where the demand at or above it
    passes the market's whole supply by a tonne), then :func:`clear_ticks_kernel` on the
    bids kept and every offer (no band, no reference; one empty market more, since that
    kernel declines fewer than two). Returns ``(status, price_tick, has_price, volume,
    bid_fill)``, ``bid_fill`` of every bid (0 for those cut)."""
    n_bids = bid_market.shape[0]
    n_asks = ask_market.shape[0]
    supply = np.zeros(n_markets, np.float64)
    for j in range(n_asks):
        supply[ask_market[j]] += ask_qty[j]
    bid_tick = np.empty(n_bids, np.float64)
    total = 0.0
    for i in range(n_bids):
        bid_tick[i] = np.rint(bid_price[i] / tick)
        total += bid_qty[i]
    cut = np.full(n_markets, -np.inf)
    if total < _EXACT_FLOAT:  # demand sums exact (whole tonnes): the cut-off is safe
        # demand at or above each candidate level, one pass over the bids
        n_levels = levels.shape[0]
        demand = np.zeros((n_levels, n_markets), np.float64)
        for i in range(n_bids):
            m = bid_market[i]
            for lv in range(n_levels):
                if bid_tick[i] >= levels[lv, m]:
                    demand[lv, m] += bid_qty[i]
        for m in range(n_markets):  # the highest level that qualifies
            for lv in range(n_levels):
                if levels[lv, m] > cut[m] and demand[lv, m] >= supply[m] + 1.0:
                    cut[m] = levels[lv, m]
    kept = np.empty(n_bids, np.int64)
    k = 0
    for i in range(n_bids):
        if bid_tick[i] >= cut[bid_market[i]]:
            kept[k] = i
            k += 1
    n = k + n_asks
    market = np.empty(n, np.int64)
    is_bid = np.zeros(n, np.bool_)
    price = np.empty(n, np.float64)
    qty = np.empty(n, np.float64)
    for j in range(k):
        i = kept[j]
        market[j] = bid_market[i]
        is_bid[j] = True
        price[j] = bid_price[i]
        qty[j] = bid_qty[i]
    for j in range(n_asks):
        market[k + j] = ask_market[j]
        price[k + j] = ask_price[j]
        qty[k + j] = ask_qty[j]
    m_all = n_markets + 1
    wide = _MAX_ABS_TICK * tick
    status, price_tick, has_price, volume, fill = clear_ticks_kernel(
        market, is_bid, price, qty, m_all, tick, np.full(m_all, np.nan),
        np.full(m_all, -wide), np.full(m_all, wide),
    )  # fmt: skip
    bid_fill = np.zeros(n_bids, np.float64)
    for j in range(k):
        bid_fill[kept[j]] = fill[j]
    return status, price_tick[:n_markets], has_price[:n_markets], volume[:n_markets], bid_fill


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Import numba and compile the kernels (once per process; numba caches them on disk)."""
    compile_module(
        globals(),
        ("_ration", "np_maximum", "np_minimum", "clear_ticks_kernel"),
        ("clear_ticks_kernel", "session_bands", "offset_clear_kernel"),
        _compiled,
    )


def clear_session_compiled(
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
    """:func:`~carbonsim.clearing.batch.clear_session`, compiled; same arguments, same
    result bit for bit (the numpy function's where the kernel does not apply)."""
    compile_kernels()
    status, price_t, has_price, volume, fill = _compiled["clear_ticks_kernel"](
        market, is_bid, price, qty, n_markets, tick, reference_price, band[0], band[1]
    )
    return cleared(
        status, price_t, has_price, volume, fill, market, is_bid, price, qty, n_markets, tick,
        reference_price, band,
    )  # fmt: skip


def cleared(
    status: int,
    price_tick: IntArray,
    has_price: BoolArray,
    volume: FloatArray,
    fill: FloatArray,
    market: IntArray,
    is_bid: BoolArray,
    price: FloatArray,
    qty: FloatArray,
    n_markets: int,
    tick: float,
    reference_price: FloatArray,
    band: tuple[FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The outcome of :func:`clear_ticks_kernel` as ``clear_session`` returns it: ``(price,
    volume, fill)``; where the kernel declined (``status``), ``clear_session`` on the same
    arguments instead."""
    if status != _OK:
        return clear_session(
            market,
            is_bid,
            price,
            qty,
            n_markets=n_markets,
            tick=tick,
            reference_price=reference_price,
            band=band,
        )
    return np.where(has_price, ticks_to_price(price_tick, tick), np.nan), volume, fill


def offset_auction_compiled(
    bid_market: IntArray,
    bid_price: FloatArray,
    bid_qty: FloatArray,
    ask_market: IntArray,
    ask_price: FloatArray,
    ask_qty: FloatArray,
    *,
    n_markets: int,
    tick: float,
    levels: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`carbonsim.engine.simulation.clear_offset_bids`, compiled; same arguments,
    same result bit for bit (the numpy function's where the kernel does not apply). (The
    engine clears offsets inside :mod:`carbonsim.engine._offsets_numba`; this step
    function checks the kernel on its own.)

    The kernel (:func:`offset_clear_kernel`) leaves out the same bids that cannot change
    the outcome and clears the rest with the session clearing kernel; a band of
    :data:`~carbonsim.clearing._ticks.MAX_ABS_TICK` ticks either side encloses every price
    that kernel accepts, so it rejects nothing and, without a reference price, changes
    nothing.
    """
    from carbonsim.engine.simulation import clear_offset_bids

    compile_kernels()
    status, price_t, has_price, volume, fill = _compiled["offset_clear_kernel"](
        bid_market, bid_price, bid_qty, ask_market, ask_price, ask_qty, n_markets, tick,
        np.ascontiguousarray(levels, np.float64),
    )  # fmt: skip
    if status != _OK:
        return clear_offset_bids(
            bid_market, bid_price, bid_qty, ask_market, ask_price, ask_qty,
            n_markets=n_markets, tick=tick, levels=levels,
        )  # fmt: skip
    return np.where(has_price, ticks_to_price(price_t, tick), np.nan), volume, fill


def bands_compiled(
    reference: FloatArray,
    listed_band: float,
    block_band: float,
    tick: float,
    floor: float | None,
    ceiling: float | None,
) -> tuple[FloatArray, FloatArray]:
    """:func:`carbonsim.engine.simulation.session_bands`, compiled; ``floor``/``ceiling``
    None where there is none. (The engine computes the bands inside the fused exchange
    step; this step function checks the kernel on its own.)"""
    k, scale = _decimal_scale(tick)
    lo, hi = _compiled["session_bands"](
        reference,
        listed_band,
        block_band,
        tick,
        k,
        scale,
        np.nan if floor is None else floor,
        np.nan if ceiling is None else ceiling,
    )
    return lo, hi
