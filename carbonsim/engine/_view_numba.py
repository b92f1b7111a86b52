"""Compiled per-cell reads of a session's market view and the exchange routing, behind
``Simulation(..., backend="numba")``.

:class:`CompiledPeriodView` answers the strategies' ``holdings_at`` and ``obligation_at``
(the units that act in a session) with one compiled call each instead of a dozen numpy
calls, by the same element-wise formulas in the same order, so each cell equals the numpy
view's bit for bit. :func:`route_compiled` applies the exchange rules of the engine's
numpy ``_route`` (a unit's offers scaled down to its holdings, block orders below the
block minimum moved to the listed segment, listed orders capped below the listed maximum,
orders under one tonne dropped) in two compiled passes. Importing this module does nothing
heavy; :func:`compile_kernels` imports the optional ``numba`` package and compiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._numba import compile_module, np_maximum, order_cells
from carbonsim.agents.base import BLOCK, LISTED, MarketView, Orders
from carbonsim.engine.simulation import Cells, _PeriodState, _PeriodView, check_order_cells

__all__ = ["CompiledPeriodView", "compile_kernels", "obligation_state", "route_compiled"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _in_range(rows: IntArray, cols: IntArray, n_rows: int, n_cols: int) -> bool:
    """Whether every cell lies in ``[0, n_rows) x [0, n_cols)``."""
    for i in range(rows.shape[0]):
        if rows[i] < 0 or rows[i] >= n_rows or cols[i] < 0 or cols[i] >= n_cols:
            return False
    return True


def holdings_kernel(
    allow: IntArray, idx: IntArray, rows: IntArray, cols: IntArray
) -> tuple[bool, FloatArray]:
    """Allowances of the vintages ``idx`` held in each cell (integer sums), as float, and
    whether the cells lie in range (nothing is read when not)."""
    out = np.empty(rows.shape[0], np.float64)
    if not _in_range(rows, cols, allow.shape[0], allow.shape[1]):
        return False, out
    for i in range(rows.shape[0]):
        total = np.int64(0)
        for k in idx:
            total += allow[rows[i], cols[i], k]
        out[i] = np.float64(total)
    return True, out


def obligation_kernel(
    verified: bool,
    obligation: Any,
    surrendered: Any,
    offsets_surrendered: Any,
    prior: FloatArray,
    actual: FloatArray,
    expected_allocation: FloatArray,
    final_total: FloatArray,
    allocated: FloatArray,
    certainty: float,
    offsets: IntArray,
    offset_share: float,
    rows: IntArray,
    cols: IntArray,
) -> tuple[bool, FloatArray]:
    """The engine's expected obligation net of usable offsets and allocation still to
    come, t, at each cell (the formulas of ``_PeriodView.obligation``), and whether the
    cells lie in range (nothing is read when not)."""
    c = certainty
    out = np.empty(rows.shape[0], np.float64)
    if not _in_range(rows, cols, offsets.shape[0], offsets.shape[1]):
        return False, out
    for i in range(rows.shape[0]):
        r, u = rows[i], cols[i]
        if verified:
            ob = np.float64(obligation[r, u] - surrendered[r, u] - offsets_surrendered[r, u])
            future = 0.0
        else:
            ob = (1.0 - c) * prior[r, u] + c * actual[r, u]
            expected_final = (1.0 - c) * expected_allocation[r, u] + c * final_total[r, u]
            future = np_maximum(expected_final - allocated[r, u], 0.0)
        held_int = np.int64(0)
        for k in range(offsets.shape[2]):
            held_int += offsets[r, u, k]
        held = np.float64(held_int)
        cap = offset_share * np_maximum(ob, 0.0)
        offset_use = held if (held <= cap or np.isnan(held)) else cap
        out[i] = np_maximum(ob - offset_use, 0.0) - future
    return True, out


def offered_kernel(
    n_replicates: int,
    n_units: int,
    rep: IntArray,
    unit: IntArray,
    is_buy: BoolArray,
    qty: FloatArray,
) -> tuple[bool, IntArray, IntArray, FloatArray, IntArray]:
    """Selling cells sorted by (replicate, unit): ``(ok, rows, cols, offered,
    cell_of_order)`` with each cell's total offer (summed in order) and each order's cell
    (-1 for bids); ``ok`` is False (and nothing computed) when an order's cell is out of
    range."""
    n = rep.shape[0]
    if not _in_range(rep, unit, n_replicates, n_units):
        empty = np.zeros(0, np.int64)
        return False, empty, empty, np.zeros(0), empty
    selected = np.empty(n, np.bool_)
    for i in range(n):
        selected[i] = not is_buy[i]
    rows, cols, cell_of = order_cells(n_units, rep, unit, selected)
    offered = np.zeros(rows.shape[0], np.float64)
    for i in range(n):  # in order of the orders, as np.bincount adds
        if cell_of[i] >= 0:
            offered[cell_of[i]] += qty[i]
    return True, rows, cols, offered, cell_of


def route_kernel(
    qty: FloatArray,
    segment: IntArray,
    cell_of: IntArray,
    offered: FloatArray,
    held: FloatArray,
    block_min_size: float,
    listed_cap: float,
) -> tuple[FloatArray, IntArray, BoolArray]:
    """Routed quantities and segments of all orders and which orders stay."""
    n = qty.shape[0]
    q = qty.copy()
    seg = segment.copy()
    keep = np.empty(n, np.bool_)
    for i in range(n):
        c = cell_of[i]
        if c >= 0:
            scale = held[c] / offered[c] if offered[c] > held[c] else 1.0
            q[i] = np.floor(q[i] * scale)
        if seg[i] == BLOCK and q[i] < block_min_size:
            seg[i] = LISTED
        if seg[i] == LISTED:
            q[i] = q[i] if (q[i] <= listed_cap or np.isnan(q[i])) else listed_cap
        keep[i] = q[i] >= 1.0
    return q, seg, keep


def obligation_state(p: _PeriodState | None, shape: tuple[int, int]) -> tuple[Any, ...] | None:
    """The period state :func:`obligation_kernel` reads after its first argument:
    ``(verified, obligation, surrendered, offsets_surrendered, prior, actual,
    expected_allocation, final_total, allocated)``, each array (R, N) = ``shape`` where
    the kernel reads it (int64 once verified, float64 before) and (0, 0) where it does not,
    so the kernel always sees the same types. None where the state is not in that form
    (before verification, the totals ``_cache_totals`` fills must be there)."""
    none_i = np.zeros((0, 0), np.int64)
    none_f = np.zeros((0, 0), np.float64)
    if p is None:
        return (False, none_i, none_i, none_i, none_f, none_f, none_f, none_f, none_f)
    if p.verified_known:
        ints = (p.obligation, p.surrendered, p.offsets_surrendered)
        floats: tuple[Any, ...] = (none_f,) * 5
        wanted: np.dtype[Any] = np.dtype(np.int64)
    else:
        if p.actual_total is None or p.final_total is None:
            return None
        ints = (none_i,) * 3
        floats = (
            p.prior_obligation,
            p.actual_total,
            p.expected_allocation,
            p.final_total,
            p.allocated,
        )
        wanted = np.dtype(np.float64)
    read = ints if p.verified_known else floats
    if any(a.shape != shape or a.dtype != wanted for a in read):
        return None
    return (p.verified_known, *ints, *floats)


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Import numba and compile the kernels (once per process, cached on disk)."""
    compile_module(
        globals(),
        ("np_maximum", "_in_range", "order_cells"),
        ("holdings_kernel", "obligation_kernel", "offered_kernel", "route_kernel"),
        _compiled,
    )


class CompiledPeriodView(_PeriodView):
    """:class:`~carbonsim.engine.simulation._PeriodView` whose per-cell reads run compiled
    (whole-array reads stay numpy). Call :func:`compile_kernels` first."""

    def holdings(self, cells: Cells | None) -> FloatArray:
        if cells is None:
            return super().holdings(cells)
        idx = self.ledger._valid_vintage_indices(self.p.last_year, None)
        rows, cols = (np.asarray(a, np.int64) for a in cells)
        ok, out = _compiled["holdings_kernel"](self.ledger._allowances, idx, rows, cols)
        if not ok:  # cells out of range: the numpy read raises its error
            return super().holdings(cells)
        return np.asarray(out)

    def obligation(self, cells: Cells | None) -> FloatArray:
        p = self.p
        if cells is None:
            return super().obligation(cells)  # whole arrays stay numpy
        state = obligation_state(p, self.ledger._offsets.shape[:2])
        if state is None:
            return super().obligation(cells)  # and a state not in the kernel's form
        rows, cols = (np.asarray(a, np.int64) for a in cells)
        ok, out = _compiled["obligation_kernel"](
            *state, self.c, self.ledger._offsets, p.spec.offset_limit_share, rows, cols
        )
        if not ok:  # cells out of range: the numpy read raises its error
            return super().obligation(cells)
        return np.asarray(out)


def route_compiled(
    orders: Orders, view: MarketView, n_units: int, block_min_size: float, listed_max: float
) -> Orders:
    """:func:`~carbonsim.engine.simulation.route_orders`, compiled; the same orders bit for
    bit. The engine routes inside the fused exchange step
    (:func:`carbonsim.engine._exchange_numba.exchange_compiled`), which calls the same
    kernels; this step function lets the routing kernels be checked on their own."""
    n_rep = view.shape[0]
    ok, rows, cols, offered, cell_of = _compiled["offered_kernel"](
        n_rep, n_units, orders.replicate, orders.unit, orders.is_buy, orders.qty
    )
    if not ok:
        check_order_cells(orders, n_rep, n_units)  # raises, naming the order
    held = view.holdings_at(rows, cols) if rows.size else np.zeros(0)
    qty, segment, keep = _compiled["route_kernel"](
        orders.qty,
        orders.segment,
        cell_of,
        offered,
        np.asarray(held, np.float64),
        float(block_min_size),
        float(np.ceil(listed_max) - 1.0),
    )
    return Orders(
        replicate=orders.replicate[keep],
        unit=orders.unit[keep],
        is_buy=orders.is_buy[keep],
        price=orders.price[keep],
        qty=qty[keep],
        segment=segment[keep],
    )
