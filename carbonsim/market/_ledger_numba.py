"""Compiled settlement of a session's fills, behind ``Simulation(..., backend="numba")``.

:func:`settle_segments_compiled` does in one compiled call what the engine's numpy session
does segment by segment: aggregate the filled orders into (replicate, unit) cells, net them
and settle them in the :class:`~carbonsim.market.ledger.Ledger` as
:meth:`~carbonsim.market.ledger.Ledger.settle_cells` does (sellers deliver their oldest
vintages first, the pool of delivered vintages is split among the buyers in proportion to
their purchases with a north-west-corner pass for the remainders, cash moves at the
replicate's price, the journal records tonnes, movements and money), and add the cells'
tonnes to the period's totals. The integer arithmetic is the same and every float sum runs
in the same order, so the ledger ends bit for bit where the numpy path leaves it (the
tests compare whole runs).

Where the numpy path would raise (a seller short of allowances in a ledger that forbids
it, negative cash where it is forbidden) or take its arbitrary-precision branch (products
of quantities beyond ``2**62``), the kernel leaves that segment unchanged and stops, and
the caller settles it (and the segments after it) with the numpy path, which raises or
computes as it always does. Importing this module does nothing heavy;
:func:`compile_kernels` imports the optional ``numba`` and compiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._numba import compile_module, order_cells
from carbonsim.agents.base import Orders
from carbonsim.market.ledger import Ledger

__all__ = [
    "compile_kernels",
    "fill_cells",
    "settle_cells_kernel",
    "settle_segments_compiled",
    "settle_segments_kernel",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_OK = 0
_FALLBACK = 1
_PRODUCT_LIMIT = 2**62


def fill_cells(
    n_units: int,
    rep: IntArray,
    unit: IntArray,
    is_buy: BoolArray,
    fill: FloatArray,
    take: BoolArray,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Cells (sorted by replicate, unit) of the orders ``take`` with a positive fill and the
    whole tonnes each cell bought and sold: ``(rep, unit, buy, sell)``, each (P,)."""
    n = rep.shape[0]
    selected = np.empty(n, np.bool_)
    for i in range(n):
        selected[i] = take[i] and fill[i] > 0.0
    c_rep, c_unit, cell_of = order_cells(n_units, rep, unit, selected)
    buy_f = np.zeros(c_rep.shape[0], np.float64)
    sell_f = np.zeros(c_rep.shape[0], np.float64)
    for i in range(n):  # in order of the orders, as np.bincount adds
        c = cell_of[i]
        if c >= 0:
            if is_buy[i]:
                buy_f[c] += fill[i]
            else:
                sell_f[c] += fill[i]
    buy = np.empty(c_rep.shape[0], np.int64)
    sell = np.empty(c_rep.shape[0], np.int64)
    for c in range(c_rep.shape[0]):
        buy[c] = np.int64(np.rint(buy_f[c]))
        sell[c] = np.int64(np.rint(sell_f[c]))
    return c_rep, c_unit, buy, sell


def _move(
    allow: IntArray,
    moved: IntArray,
    rep: IntArray,
    unit: IntArray,
    cells: IntArray,
    flow: IntArray,
    sign: int,
    n_units: int,
    n_vintages: int,
    vidx: IntArray,
) -> None:
    """Add ``sign * flow[j, k]`` to vintage ``vidx[k]`` of cell ``cells[j]`` and count the
    cells that moved anything per replicate."""
    for j in range(cells.shape[0]):
        c = cells[j]
        base = (rep[c] * n_units + unit[c]) * n_vintages
        any_moved = False
        for k in range(vidx.shape[0]):
            if flow[j, k] != 0:
                allow[base + vidx[k]] += sign * flow[j, k]
                any_moved = True
        if any_moved:
            moved[rep[c]] += 1


def settle_cells_kernel(
    allow: IntArray,
    cash: FloatArray,
    n_units: int,
    n_vintages: int,
    rep: IntArray,
    unit: IntArray,
    buy_qty: IntArray,
    sell_qty: IntArray,
    price: FloatArray,
    vidx: IntArray,
    allow_negative: bool,
    allow_negative_cash: bool,
    tonnes: IntArray,
    moved: IntArray,
    paid: FloatArray,
) -> int:
    """Settle unique cells sorted by (replicate, unit) in the flat ``allow`` (R*N*V) and
    ``cash`` (R*N) accounts; adds the journal totals into ``tonnes``, ``moved``, ``paid``
    (R,). Returns ``_FALLBACK`` (changing nothing) where the numpy path must run."""
    n_rep = tonnes.shape[0]
    n_cells = rep.shape[0]
    n_k = vidx.shape[0]
    # netting: a cell either buys or sells
    k = 0
    for c in range(n_cells):
        if buy_qty[c] != sell_qty[c]:
            k += 1
    cell = np.empty(k, np.int64)
    k = 0
    for c in range(n_cells):
        if buy_qty[c] != sell_qty[c]:
            cell[k] = c
            k += 1
    n_sell = 0
    n_buy = 0
    for j in range(k):
        c = cell[j]
        if sell_qty[c] > buy_qty[c]:
            n_sell += 1
        else:
            n_buy += 1
    sellers = np.empty(n_sell, np.int64)
    buyers = np.empty(n_buy, np.int64)
    n_sell = 0
    n_buy = 0
    for j in range(k):
        c = cell[j]
        if sell_qty[c] > buy_qty[c]:
            sellers[n_sell] = c
            n_sell += 1
        else:
            buyers[n_buy] = c
            n_buy += 1
    # sellers deliver their oldest vintages first
    delivered = np.zeros((n_sell, max(n_k, 1)), np.int64)
    pool = np.zeros((n_rep, max(n_k, 1)), np.int64)
    for s in range(n_sell):
        c = sellers[s]
        base = (rep[c] * n_units + unit[c]) * n_vintages
        rem = sell_qty[c] - buy_qty[c]
        for kk in range(n_k):
            if rem == 0:
                break
            t = min(rem, max(allow[base + vidx[kk]], 0))
            delivered[s, kk] = t
            rem -= t
        if rem > 0:
            if not allow_negative or n_k == 0:
                return _FALLBACK  # the numpy path raises the ledger's error
            delivered[s, n_k - 1] += rem
        for kk in range(n_k):
            pool[rep[c], kk] += delivered[s, kk]
    # the pool of each replicate is split among its buyers in proportion to their purchases
    w_max = 0
    for b in range(n_buy):
        c = buyers[b]
        w_max = max(w_max, buy_qty[c] - sell_qty[c])
    p_max = 0
    for r in range(n_rep):
        for kk in range(n_k):
            p_max = max(p_max, pool[r, kk])
    if p_max > 0 and w_max >= _PRODUCT_LIMIT // p_max:
        return _FALLBACK  # products near 2**62: the numpy path computes them exactly
    total = np.zeros(n_rep, np.int64)
    for r in range(n_rep):
        for kk in range(n_k):
            total[r] += pool[r, kk]
    received = np.zeros((n_buy, max(n_k, 1)), np.int64)
    row = np.empty(n_buy, np.int64)
    col = pool.copy()
    for b in range(n_buy):
        c = buyers[b]
        r = rep[c]
        w = buy_qty[c] - sell_qty[c]
        safe = total[r] if total[r] > 0 else 1
        left = w
        for kk in range(n_k):
            got = w * pool[r, kk] // safe
            received[b, kk] = got
            left -= got
            col[r, kk] -= got
        row[b] = left
    # north-west corner pass over the remainders, replicate by replicate
    col_hi = np.zeros((n_rep, max(n_k, 1)), np.int64)
    for r in range(n_rep):
        acc = 0
        for kk in range(n_k):
            acc += col[r, kk]
            col_hi[r, kk] = acc
    row_hi = 0
    for b in range(n_buy):
        r = rep[buyers[b]]
        if b == 0 or rep[buyers[b - 1]] != r:
            row_hi = 0
        row_hi += row[b]
        row_lo = row_hi - row[b]
        for kk in range(n_k):
            overlap = min(row_hi, col_hi[r, kk]) - max(row_lo, col_hi[r, kk] - col[r, kk])
            if overlap > 0:
                received[b, kk] += overlap
    # cash at the replicate's price
    new_cash = np.empty(k, np.float64)
    for j in range(k):
        c = cell[j]
        f = rep[c] * n_units + unit[c]
        net = max(sell_qty[c] - buy_qty[c], 0) - max(buy_qty[c] - sell_qty[c], 0)
        new_cash[j] = cash[f] + price[rep[c]] * np.float64(net)
        if not allow_negative_cash and new_cash[j] < 0.0:
            return _FALLBACK  # the numpy path raises the ledger's error
    # nothing can fail from here: write the accounts and the journal totals
    _move(allow, moved, rep, unit, sellers, delivered, -1, n_units, n_vintages, vidx)
    _move(allow, moved, rep, unit, buyers, received, 1, n_units, n_vintages, vidx)
    tonnes_f = np.zeros(n_rep, np.float64)
    for j in range(k):
        c = cell[j]
        r = rep[c]
        cash[rep[c] * n_units + unit[c]] = new_cash[j]
        tonnes_f[r] += np.float64(max(sell_qty[c] - buy_qty[c], 0))
        paid[r] += price[r] * np.float64(max(buy_qty[c] - sell_qty[c], 0))
    for r in range(n_rep):
        tonnes[r] += np.int64(tonnes_f[r])
    return _OK


def settle_segments_kernel(
    allow: IntArray,
    cash: FloatArray,
    n_units: int,
    n_vintages: int,
    rep: IntArray,
    unit: IntArray,
    is_buy: BoolArray,
    fill: FloatArray,
    segment: IntArray,
    codes: IntArray,
    prices: FloatArray,
    vidx: IntArray,
    allow_negative: bool,
    allow_negative_cash: bool,
    tonnes: IntArray,
    moved: IntArray,
    paid: FloatArray,
    bought: FloatArray,
    sold: FloatArray,
) -> tuple[int, BoolArray]:
    """Settle the fills of each segment ``codes[s]`` at ``prices[s]`` (R,) in turn, adding
    the cells' tonnes to the flat period totals ``bought`` and ``sold`` (empty: none) and
    the journal totals to row ``s`` of ``tonnes``, ``moved``, ``paid``.

    Returns how many segments were settled (a segment the numpy path must settle stops
    the loop, nothing of it changed) and which of them had cells (a journal entry each).
    """
    n_seg = codes.shape[0]
    had = np.zeros(n_seg, np.bool_)
    take = np.empty(rep.shape[0], np.bool_)
    for s in range(n_seg):
        for i in range(rep.shape[0]):
            take[i] = segment[i] == codes[s]
        c_rep, c_unit, buy, sell = fill_cells(n_units, rep, unit, is_buy, fill, take)
        if c_rep.shape[0] == 0:
            continue
        status = settle_cells_kernel(
            allow, cash, n_units, n_vintages, c_rep, c_unit, buy, sell, prices[s], vidx,
            allow_negative, allow_negative_cash, tonnes[s], moved[s], paid[s],
        )  # fmt: skip
        if status != _OK:
            return s, had
        had[s] = True
        if bought.shape[0]:
            for c in range(c_rep.shape[0]):
                f = c_rep[c] * n_units + c_unit[c]
                bought[f] += np.float64(buy[c])
                sold[f] += np.float64(sell[c])
    return n_seg, had


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Import numba and compile the kernels (once per process, cached on disk)."""
    compile_module(
        globals(),
        ("order_cells", "_move", "fill_cells", "settle_cells_kernel"),
        ("fill_cells", "settle_cells_kernel", "settle_segments_kernel"),
        _compiled,
    )


def settle_segments_compiled(
    ledger: Ledger,
    orders: Orders,
    fill: FloatArray,
    codes: Sequence[int],
    prices: Sequence[FloatArray],
    bought: FloatArray | None = None,
    sold: FloatArray | None = None,
) -> int:
    """Settle each segment's fills in turn, as the engine's numpy session does, in one
    compiled call: the orders of segment ``codes[s]`` at ``prices[s]`` (R,), each filled
    cell's tonnes added to ``bought`` and ``sold`` ((R, N), the period's totals) when
    given. Returns how many segments were settled; the caller settles the rest with the
    numpy path (which raises where the ledger refuses), from that segment on.
    """
    for name, arr in (("bought", bought), ("sold", sold)):
        if arr is not None and not arr.flags.c_contiguous:  # reshape(-1) must be a view
            raise ValueError(f"{name} must be a C-contiguous (R, N) array")
    n_rep = ledger.n_replicates
    n_seg = len(codes)
    tonnes = np.zeros((n_seg, n_rep), np.int64)
    moved = np.zeros((n_seg, n_rep), np.int64)
    paid = np.zeros((n_seg, n_rep), np.float64)
    none = np.zeros(0)
    done, had = _compiled["settle_segments_kernel"](
        ledger._allowances.reshape(-1),
        ledger._cash.reshape(-1),
        ledger.n_units,
        ledger._allowances.shape[2],
        orders.replicate,
        orders.unit,
        orders.is_buy,
        fill,
        orders.segment,
        np.asarray(codes, np.int64),
        np.stack(prices),
        np.arange(len(ledger._vintages), dtype=np.int64),
        ledger.allow_negative,
        ledger.allow_negative_cash,
        tonnes,
        moved,
        paid,
        none if bought is None else bought.reshape(-1),
        none if sold is None else sold.reshape(-1),
    )
    for s in range(done):
        if had[s]:
            ledger._record("settle_cells", tonnes[s], moved[s], paid[s])
    return int(done)
