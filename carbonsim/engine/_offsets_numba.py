"""An offset session's trades, compiled, behind ``backend="numba"``.

:func:`offset_classes_compiled` does what
:func:`carbonsim.engine.simulation.clear_offset_classes` does with numpy, class after class:
the bidders' demand left under their usage cap, the project owners' lots, the call auction
(:func:`carbonsim.clearing._session_numba.offset_clear_kernel`) and the credit transfer
(:meth:`carbonsim.market.ledger.Ledger.transfer_offsets`: credits, units' cash, project
owners' stock and cash, the journal), in one compiled call, bit for bit: the project owners'
receipts are summed over the units in numpy's pairwise order (:func:`pairwise_sum`). Where
the auction kernel declines a class or the ledger would refuse its transfer (negative cash
it forbids), the kernel stops before that class and the numpy function goes on from it,
raising what the ledger raises. Importing this module does nothing heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._numba import compile_module
from carbonsim.clearing import _session_numba
from carbonsim.clearing._session_numba import _OK, offset_clear_kernel
from carbonsim.clearing._ticks import MAX_ABS_TICK, _decimal_scale
from carbonsim.engine.simulation import _OFFSET_LOTS, clear_offset_classes
from carbonsim.market.ledger import Ledger

__all__ = [
    "compile_kernels",
    "offset_classes_compiled",
    "offset_classes_kernel",
    "offset_session_step",
    "pairwise_sum",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_STOPPED = 1  # the kernel stopped before a class: the numpy function goes on from it
_MAX_ABS_TICK = float(MAX_ABS_TICK)
_HALF_EXACT = float(2**52)  # totals below this keep every sum of whole tonnes exact
_PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE


def _block_sum(a: FloatArray, lo: int, n: int) -> float:
    """numpy's sum of at most :data:`_PAIRWISE_BLOCK` elements ``a[lo:lo + n]``: eight
    interleaved accumulators, combined pairwise, then the remainder in order."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    whole = n - n % 8
    while i < whole:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


def pairwise_sum(a: FloatArray, lo: int, n: int) -> float:
    """The sum of ``a[lo:lo + n]`` in the order numpy's ``np.add.reduce`` adds a contiguous
    float64 row: blocks of up to 128 elements as :func:`_block_sum`, larger ranges halved
    (at a multiple of eight) and the halves' sums added, left + right. The recursion runs on
    an explicit stack (numba's on-disk cache mishandles recursive functions). The tests
    compare it with ``ndarray.sum`` bit for bit."""
    if n <= _PAIRWISE_BLOCK:
        return _block_sum(a, lo, n)
    # frames (start, length, children done); values of finished ranges, left before right
    f_lo = np.empty(3 * 64, np.int64)
    f_n = np.empty(3 * 64, np.int64)
    f_done = np.empty(3 * 64, np.bool_)
    vals = np.empty(3 * 64, np.float64)
    top = 0
    nv = 0
    f_lo[0], f_n[0], f_done[0] = lo, n, False
    top = 1
    while top > 0:
        top -= 1
        s, m, done = f_lo[top], f_n[top], f_done[top]
        if m <= _PAIRWISE_BLOCK:
            vals[nv] = _block_sum(a, s, m)
            nv += 1
        elif done:
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
        else:
            half = m // 2
            half -= half % 8
            f_lo[top], f_n[top], f_done[top] = s, m, True
            f_lo[top + 1], f_n[top + 1], f_done[top + 1] = s + half, m - half, False
            f_lo[top + 2], f_n[top + 2], f_done[top + 2] = s, half, False
            top += 3
    return vals[0]


def offset_classes_kernel(
    offsets: IntArray,
    project: IntArray,
    cash: FloatArray,
    project_cash: FloatArray,
    idx: IntArray,
    flat: IntArray,
    cap: FloatArray,
    surrendered: IntArray,
    bid_price: FloatArray,
    ask_price: FloatArray,
    tick: float,
    tick_k: float,
    tick_scale: float,
    levels: FloatArray,
    allow_negative_cash: bool,
    j_tonnes: IntArray,
    j_moved: IntArray,
    j_cash: FloatArray,
    cash_gross: FloatArray,
    volume: FloatArray,
    turnover: FloatArray,
) -> tuple[int, int, int]:
    """The classes ``idx`` (C,) in turn, as ``clear_offset_classes``; the ledger's
    ``offsets`` (R, N, K), ``project`` (R, K), ``cash`` (R, N), ``project_cash`` (R,), the
    ``transfer_offsets`` journal accumulators, ``cash_gross`` and the totals ``volume`` and
    ``turnover`` (R,) change in place. Returns ``(status, classes done, journal calls)``;
    ``status`` :data:`_STOPPED` where class ``done`` must be left to numpy (nothing of it
    changed)."""
    n_rep, n_units, _ = offsets.shape
    n_cls = idx.shape[0]
    n_bid = flat.shape[0]
    n_lots = ask_price.shape[1]
    rows = np.empty(n_bid, np.int64)
    cols = np.empty(n_bid, np.int64)
    for b in range(n_bid):
        rows[b] = flat[b] // n_units
        cols[b] = flat[b] % n_units
    cash_flat = cash.reshape(-1)
    payment = np.zeros(n_units, np.float64)
    calls = 0
    for j in range(n_cls):
        k = idx[j]
        # demand: what the usage cap leaves after the eligible credits held and surrendered
        qty = np.empty(n_bid, np.float64)
        n_sel = 0
        for b in range(n_bid):
            held = np.int64(0)
            for c in range(n_cls):
                held += offsets[rows[b], cols[b], idx[c]]
            q = cap[b] - np.float64(held) - np.float64(surrendered[b])
            q = q if q >= 0.0 else 0.0  # np.maximum(q, 0.0); q is never NaN here
            qty[b] = q
            if q >= 1.0:
                n_sel += 1
        # supply: the project owners' stock of the class in lots, row-major (replicate, lot)
        ask_qty = np.empty((n_rep, n_lots), np.float64)
        n_ask = 0
        for r in range(n_rep):
            stock = np.float64(project[r, k])
            lot = np.floor(stock / n_lots)
            for m in range(n_lots):
                ask_qty[r, m] = lot
            ask_qty[r, n_lots - 1] += stock - lot * n_lots
            for m in range(n_lots):
                if ask_qty[r, m] >= 1.0:
                    n_ask += 1
        if n_sel == 0 or n_ask == 0:
            continue
        sel = np.empty(n_sel, np.int64)
        n_sel = 0
        for b in range(n_bid):
            if qty[b] >= 1.0:
                sel[n_sel] = b
                n_sel += 1
        a_mkt = np.empty(n_ask, np.int64)
        a_px = np.empty(n_ask, np.float64)
        a_qty = np.empty(n_ask, np.float64)
        n_ask = 0
        for r in range(n_rep):
            for m in range(n_lots):
                if ask_qty[r, m] >= 1.0:
                    a_mkt[n_ask] = r
                    a_px[n_ask] = ask_price[r, m]
                    a_qty[n_ask] = ask_qty[r, m]
                    n_ask += 1
        b_mkt = np.empty(n_sel, np.int64)
        b_px = np.empty(n_sel, np.float64)
        b_qty = np.empty(n_sel, np.float64)
        for x in range(n_sel):
            b = sel[x]
            b_mkt[x] = rows[b]
            b_px[x] = bid_price[b]
            b_qty[x] = qty[b]
        status, price_tick, has_price, clear_volume, bid_fill = offset_clear_kernel(
            b_mkt, b_px, b_qty, a_mkt, a_px, a_qty, n_rep, tick, levels
        )
        if status != _OK:
            return _STOPPED, j, calls
        fill = np.empty(n_sel, np.int64)
        filled = False
        for x in range(n_sel):
            fill[x] = np.int64(bid_fill[x])
            filled = filled or fill[x] != 0
        if not filled:
            continue
        px = np.zeros(n_rep, np.float64)
        for r in range(n_rep):
            if has_price[r]:
                px[r] = (np.float64(price_tick[r]) * tick_k) / tick_scale
        # the transfer, checked as the ledger checks it before anything changes
        total = np.zeros(n_rep, np.int64)
        count = np.zeros(n_rep, np.int64)
        for x in range(n_sel):
            if fill[x] != 0:
                total[rows[sel[x]]] += fill[x]
                count[rows[sel[x]]] += 1
        for r in range(n_rep):
            if total[r] > project[r, k]:
                return _STOPPED, j, calls
        if not allow_negative_cash:
            for f in range(cash_flat.shape[0]):
                if cash_flat[f] < 0.0:  # cells that pay nothing keep their cash
                    return _STOPPED, j, calls
            for x in range(n_sel):
                f = flat[sel[x]]
                if cash_flat[f] - px[rows[sel[x]]] * np.float64(fill[x]) < 0.0:
                    return _STOPPED, j, calls
        # each replicate's receipts summed over all its units, as payment.sum(axis=1)
        paid = np.zeros(n_rep, np.float64)
        x0 = 0
        for r in range(n_rep):
            x1 = x0
            while x1 < n_sel and rows[sel[x1]] == r:
                x1 += 1
            for x in range(x0, x1):
                payment[cols[sel[x]]] = px[r] * np.float64(fill[x])
            paid[r] = 0.0 + pairwise_sum(payment, 0, n_units)
            for x in range(x0, x1):
                payment[cols[sel[x]]] = 0.0
            x0 = x1
        for x in range(n_sel):
            if fill[x] != 0:
                b = sel[x]
                r = rows[b]
                offsets[r, cols[b], k] += fill[x]
                cash_flat[flat[b]] = cash_flat[flat[b]] - px[r] * np.float64(fill[x])
        for r in range(n_rep):
            project[r, k] -= total[r]
            project_cash[r] += paid[r]
            j_tonnes[r] += total[r]
            j_moved[r] += count[r]
            j_cash[r] += paid[r]
            cash_gross[r] += abs(paid[r])
            volume[r] += clear_volume[r]
            turnover[r] += px[r] * clear_volume[r]
        calls += 1
    return 0, n_cls, calls


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Compile the kernels this module calls, then its own (once per process, cached)."""
    _session_numba.compile_kernels()
    compile_module(
        globals(),
        ("offset_clear_kernel", "_block_sum", "pairwise_sum", "offset_classes_kernel"),
        ("offset_classes_kernel", "pairwise_sum", "offset_session_step"),
        _compiled,
    )


def offset_classes_compiled(
    ledger: Ledger,
    classes: Sequence[str],
    idx: Sequence[int],
    flat: IntArray,
    cap: FloatArray,
    surrendered: IntArray,
    bid_price: FloatArray,
    ask_price: FloatArray,
    *,
    tick: float,
    levels: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """:func:`carbonsim.engine.simulation.clear_offset_classes`, compiled: the same
    ledger, journal and ``(volume, turnover)`` bit for bit; the numpy function goes on from
    a class the kernel leaves."""
    compile_kernels()
    r = ledger.n_replicates
    volume = np.zeros(r)
    turnover = np.zeros(r)
    arrays = (ledger._offsets, ledger._project_offsets, ledger._cash, ledger._project_cash)
    if ask_price.shape[1] != _OFFSET_LOTS or not all(a.flags.c_contiguous for a in arrays):
        return clear_offset_classes(
            ledger, classes, idx, flat, cap, surrendered, bid_price, ask_price, tick=tick,
            levels=levels,
        )  # fmt: skip
    created = "transfer_offsets" not in ledger._journal
    entry = ledger._journal_entry("transfer_offsets")
    tick_k, tick_scale = _decimal_scale(tick)
    status, done, calls = _compiled["offset_classes_kernel"](
        *arrays, np.asarray(idx, np.int64), np.asarray(flat, np.int64),
        np.ascontiguousarray(cap, np.float64), np.ascontiguousarray(surrendered, np.int64),
        np.ascontiguousarray(bid_price, np.float64), np.ascontiguousarray(ask_price, np.float64),
        tick, tick_k, tick_scale, np.ascontiguousarray(levels, np.float64),
        ledger.allow_negative_cash, entry.tonnes, entry.movements, entry.cash,
        ledger._cash_gross, volume, turnover,
    )  # fmt: skip
    entry.calls += int(calls)
    if created and entry.calls == 0:
        del ledger._journal["transfer_offsets"]  # nothing transferred: no entry, as before
    if status != 0:
        return clear_offset_classes(
            ledger, classes, idx, flat, cap, surrendered, bid_price, ask_price, tick=tick,
            levels=levels, start=int(done), volume=volume, turnover=turnover,
        )  # fmt: skip
    return volume, turnover


def offset_session_step(
    i: int,
    verified: bool,
    obligation: IntArray,
    surrendered: IntArray,
    prior: FloatArray,
    actual: FloatArray,
    certainty: float,
    offsets_surrendered: IntArray,
    offsets: IntArray,
    project: IntArray,
    cash: FloatArray,
    project_cash: FloatArray,
    idx: IntArray,
    share: float,
    expected: FloatArray,
    discount: float,
    ez: FloatArray,
    quantile_growth: FloatArray,
    ask_price: FloatArray,
    tick: float,
    tick_k: float,
    tick_scale: float,
    j_tonnes: IntArray,
    j_moved: IntArray,
    j_cash: FloatArray,
    cash_gross: FloatArray,
    m_volume: FloatArray,
    m_price: FloatArray,
) -> tuple[int, int]:
    """The offset session after session ``i``, inside a run of sessions, as
    :meth:`Simulation._offset_session <carbonsim.engine.Simulation>` does it once the
    session has closed: the bidders (units of replicates whose project owners hold credits,
    below the usage cap of their expected obligation at ``certainty``), their bids around
    the replicate's ``expected`` price (``ez``: the session's ``exp(0.05 z)`` at every
    cell, drawn ahead), the cut-off candidates (``quantile_growth``: ``exp(0.05 z)`` at
    the candidate quantiles), then :func:`offset_classes_kernel` and the market table's
    offset columns at session ``i``. The ledger's negative cash must be allowed (nothing
    can refuse the transfer). Returns ``(status, journal calls)``: status 1 where the
    auctions could decline (prices beyond the tick range, totals near 2**53; nothing
    changed: the numpy session runs it), 2 where the classes' kernel stopped all the same
    (an inconsistency the caller reports)."""
    n_rep, n_units, _ = offsets.shape
    n_cls = idx.shape[0]
    c = certainty
    stocked = np.zeros(n_rep, np.bool_)
    project_total = 0.0
    for r in range(n_rep):
        for j in range(n_cls):
            project_total += np.float64(project[r, idx[j]])
            if project[r, idx[j]] >= 1:
                stocked[r] = True
    n_bid = 0
    cap_all = np.empty(n_rep * n_units, np.float64)
    is_bidder = np.zeros(n_rep * n_units, np.bool_)
    for r in range(n_rep):
        if not stocked[r]:
            continue
        for u in range(n_units):
            if verified:
                ob = np.float64(obligation[r, u] - surrendered[r, u] - offsets_surrendered[r, u])
            else:
                ob = (1.0 - c) * prior[r, u] + c * actual[r, u]
            cap = np.floor(share * (ob if (ob >= 0.0 or ob != ob) else 0.0))
            held0 = offsets_surrendered[r, u]
            for j in range(n_cls):
                held0 += offsets[r, u, idx[j]]
            f = r * n_units + u
            cap_all[f] = cap
            if cap - np.float64(held0) >= 1.0:
                is_bidder[f] = True
                n_bid += 1
    if n_bid == 0:
        return 0, 0
    flat = np.empty(n_bid, np.int64)
    cap_b = np.empty(n_bid, np.float64)
    surr_b = np.empty(n_bid, np.int64)
    bid_price = np.empty(n_bid, np.float64)
    cap_total = 0.0
    limit = _MAX_ABS_TICK / 2.0
    fits = True
    b = 0
    for f in range(n_rep * n_units):
        if is_bidder[f]:
            r = f // n_units
            u = f % n_units
            flat[b] = f
            cap_b[b] = cap_all[f]
            surr_b[b] = offsets_surrendered[r, u]
            bid_price[b] = expected[r] * (1.0 - discount) * ez[r, u]
            cap_total += cap_all[f]
            t = np.rint(bid_price[b] / tick)
            fits = fits and abs(t) <= limit
            b += 1
    n_lev = quantile_growth.shape[0]
    levels = np.empty((n_lev, n_rep), np.float64)
    for lv in range(n_lev):
        for r in range(n_rep):
            top = expected[r] * (1.0 - discount) * quantile_growth[lv] / tick
            levels[lv, r] = np.rint(top) - 1.0
    for r in range(n_rep):
        for m in range(ask_price.shape[1]):
            t = np.rint(ask_price[r, m] / tick)
            fits = fits and abs(t) <= limit
    if not (fits and cap_total < _HALF_EXACT and project_total < _HALF_EXACT):
        return 1, 0
    volume = np.zeros(n_rep, np.float64)
    turnover = np.zeros(n_rep, np.float64)
    status, _, calls = offset_classes_kernel(
        offsets, project, cash, project_cash, idx, flat, cap_b, surr_b, bid_price, ask_price,
        tick, tick_k, tick_scale, levels, True, j_tonnes, j_moved, j_cash, cash_gross, volume,
        turnover,
    )  # fmt: skip
    if status != 0:
        return 2, calls
    traded = False
    for r in range(n_rep):
        traded = traded or volume[r] != 0.0
    if traded:
        for r in range(n_rep):
            m_volume[r, i] = volume[r]
            m_price[r, i] = turnover[r] / volume[r] if volume[r] > 0.0 else np.nan
    return 0, calls
