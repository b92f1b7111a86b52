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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._numba import compile_module
from carbonsim.clearing import _session_numba
from carbonsim.clearing._session_numba import _OK, offset_auction_compiled, offset_clear_kernel
from carbonsim.clearing._ticks import _decimal_scale
from carbonsim.engine.simulation import _OFFSET_LOTS, clear_offset_classes
from carbonsim.market.ledger import Ledger

__all__ = ["compile_kernels", "offset_classes_compiled", "offset_classes_kernel", "pairwise_sum"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_STOPPED = 1  # the kernel stopped before a class: the numpy function goes on from it
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
        ("offset_clear_kernel", "_block_sum", "pairwise_sum"),
        ("offset_classes_kernel", "pairwise_sum"),
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
    auction: Callable[..., tuple[FloatArray, FloatArray, FloatArray]] = offset_auction_compiled,
) -> tuple[FloatArray, FloatArray]:
    """:func:`carbonsim.engine.simulation.clear_offset_classes`, compiled: the same
    ledger, journal and ``(volume, turnover)`` bit for bit; the numpy function (with the
    compiled auction) goes on from a class the kernel leaves."""
    compile_kernels()
    r = ledger.n_replicates
    volume = np.zeros(r)
    turnover = np.zeros(r)
    arrays = (ledger._offsets, ledger._project_offsets, ledger._cash, ledger._project_cash)
    if ask_price.shape[1] != _OFFSET_LOTS or not all(a.flags.c_contiguous for a in arrays):
        return clear_offset_classes(
            ledger, classes, idx, flat, cap, surrendered, bid_price, ask_price, tick=tick,
            levels=levels, auction=auction,
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
            levels=levels, auction=auction, start=int(done), volume=volume, turnover=turnover,
        )  # fmt: skip
    return volume, turnover
