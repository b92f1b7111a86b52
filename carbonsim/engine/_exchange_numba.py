"""The exchange and settlement steps of a session, compiled, behind ``backend="numba"``.

:func:`exchange_compiled` routes a session's orders (offers within holdings, segment
sizes, the listed maximum), computes the price bands with the policy limits, reprices
marketable orders into the bands and clears the listed and block call auctions of every
replicate, all in one kernel built from the step kernels of
:mod:`carbonsim.engine._view_numba` and :mod:`carbonsim.clearing._session_numba`; the
engine's numpy session does the same with :func:`~carbonsim.engine.simulation.route_orders`,
:func:`~carbonsim.engine.simulation.session_bands` and
:func:`~carbonsim.clearing.batch.clear_session`, and the results agree bit for bit. Where
the clearing kernel hands over (input outside its case), the numpy clearing runs on the
routed orders; an order whose cell is out of range raises as the numpy routing does.

:func:`settle_compiled` settles the session's fills with
:func:`carbonsim.market._ledger_numba.settle_segments_compiled` and hands the segments it
leaves (a refusal of the ledger) to :func:`~carbonsim.engine.simulation.settle_segments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._numba import compile_module, np_maximum, np_minimum
from carbonsim.agents.base import BLOCK, MarketView, Orders
from carbonsim.clearing import _session_numba
from carbonsim.clearing._session_numba import clear_ticks_kernel, cleared, session_bands
from carbonsim.clearing._ticks import _decimal_scale
from carbonsim.engine import _view_numba
from carbonsim.engine._view_numba import holdings_kernel, offered_kernel, route_kernel
from carbonsim.engine.simulation import check_order_cells, settle_segments
from carbonsim.market import _ledger_numba
from carbonsim.market.ledger import Ledger
from carbonsim.scenario.schema import TradingSpec

__all__ = ["compile_kernels", "exchange_compiled", "exchange_kernel", "settle_compiled"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_BAD_CELLS = 2  # besides the clearing kernel's status codes (0 done, 1 declined)


def exchange_kernel(
    rep: IntArray,
    unit: IntArray,
    is_buy: BoolArray,
    price: FloatArray,
    qty: FloatArray,
    segment: IntArray,
    n_units: int,
    has_period: bool,
    allow: IntArray,
    valid: IntArray,
    block_min_size: float,
    listed_cap: float,
    last_close: FloatArray,
    listed_band: float,
    block_band: float,
    tick: float,
    tick_k: float,
    tick_scale: float,
    floor: float,
    ceiling: float,
    choke_price: float,
) -> tuple[Any, ...]:
    """Route, band, reprice and clear; returns ``(status, kept, qty, segment, lo, hi,
    market, price, price_tick, has_price, volume, fill)`` (``status``: the clearing
    kernel's, or ``_BAD_CELLS`` before anything is computed; ``kept``: positions of the orders
    that stay; ``qty``/``segment`` routed, of all orders; ``market``, ``price`` (repriced),
    ``fill`` of the kept ones)."""
    n_rep = last_close.shape[0]
    ok, rows, cols, offered, cell_of = offered_kernel(n_rep, n_units, rep, unit, is_buy, qty)
    empty_i = np.zeros(0, np.int64)
    empty_f = np.zeros(0, np.float64)
    empty_b = np.zeros(0, np.bool_)
    if not ok:
        return (_BAD_CELLS, empty_i, empty_f, empty_i, empty_f, empty_f, empty_i, empty_f,
                empty_i, empty_b, empty_f, empty_f)  # fmt: skip
    if has_period:
        held = holdings_kernel(allow, valid, rows, cols)[1]
    else:
        held = np.zeros(rows.shape[0], np.float64)
    q, seg, keep = route_kernel(qty, segment, cell_of, offered, held, block_min_size, listed_cap)
    k = 0
    for i in range(keep.shape[0]):
        if keep[i]:
            k += 1
    kept = np.empty(k, np.int64)
    k = 0
    for i in range(keep.shape[0]):
        if keep[i]:
            kept[k] = i
            k += 1
    lo, hi = session_bands(
        last_close, listed_band, block_band, tick, tick_k, tick_scale, floor, ceiling
    )
    market = np.empty(k, np.int64)
    px = np.empty(k, np.float64)
    buy_k = np.empty(k, np.bool_)
    q_k = np.empty(k, np.float64)
    for j in range(k):
        i = kept[j]
        m = rep[i] + (n_rep if seg[i] == BLOCK else 0)
        market[j] = m
        # marketable repricing: nobody bids above the choke price; a buyer above the
        # band's top bids the top, a seller below the bottom offers at the bottom
        p = np_minimum(price[i], choke_price)
        px[j] = np_minimum(p, hi[m]) if is_buy[i] else np_maximum(p, lo[m])
        buy_k[j] = is_buy[i]
        q_k[j] = q[i]
    reference = np.empty(2 * n_rep, np.float64)
    reference[:n_rep] = last_close
    reference[n_rep:] = last_close
    status, price_tick, has_price, volume, fill = clear_ticks_kernel(
        market, buy_k, px, q_k, 2 * n_rep, tick, reference, lo, hi
    )
    return status, kept, q, seg, lo, hi, market, px, price_tick, has_price, volume, fill


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Compile the step kernels' modules, then this one (once per process, cached)."""
    _session_numba.compile_kernels()
    _view_numba.compile_kernels()
    compile_module(
        globals(),
        (
            "np_maximum",
            "np_minimum",
            "offered_kernel",
            "holdings_kernel",
            "route_kernel",
            "session_bands",
            "clear_ticks_kernel",
        ),
        ("exchange_kernel",),
        _compiled,
    )


def exchange_compiled(
    orders: Orders,
    view: MarketView,
    ledger: Ledger,
    year: int | None,
    trading: TradingSpec,
    last_close: FloatArray,
    floor: float | None,
    ceiling: float | None,
    choke_price: float,
) -> tuple[Orders, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`~carbonsim.engine.simulation.exchange_orders`, compiled: the same ``(routed
    orders, lo, hi, clear price, clear volume, fill)`` bit for bit. Holdings are read from
    ``ledger`` directly (``year``: the period's last year, whose valid vintages count;
    None outside a period, holdings zero), the numbers ``view`` would give."""
    valid = np.zeros(0, np.int64) if year is None else ledger._valid_vintage_indices(year, None)
    k, scale = _decimal_scale(trading.tick)
    n_units = ledger.n_units
    (status, kept, qty, segment, lo, hi, market, price, price_tick, has_price, volume,
     fill) = _compiled["exchange_kernel"](
        orders.replicate, orders.unit, orders.is_buy, orders.price, orders.qty,
        orders.segment, n_units, year is not None, ledger._allowances, valid,
        float(trading.block_min_size), float(np.ceil(trading.listed_max_size) - 1.0),
        last_close, trading.listed_band, trading.block_band, trading.tick, k, scale,
        np.nan if floor is None else floor, np.nan if ceiling is None else ceiling,
        float(choke_price),
    )  # fmt: skip
    if status == _BAD_CELLS:
        check_order_cells(orders, last_close.shape[0], n_units)  # raises, naming the order
    routed = Orders(
        replicate=orders.replicate[kept],
        unit=orders.unit[kept],
        is_buy=orders.is_buy[kept],
        price=orders.price[kept],
        qty=qty[kept],
        segment=segment[kept],
    )
    n_rep = last_close.shape[0]
    clear_price, volume, fill = cleared(
        status, price_tick, has_price, volume, fill, market, routed.is_buy, price, routed.qty,
        2 * n_rep, trading.tick, np.concatenate([last_close, last_close]), (lo, hi),
    )  # fmt: skip
    return routed, lo, hi, clear_price, volume, fill


def settle_compiled(
    ledger: Ledger,
    orders: Orders,
    fill: FloatArray,
    codes: Sequence[int],
    prices: Sequence[FloatArray],
    bought: FloatArray | None = None,
    sold: FloatArray | None = None,
    *,
    checked: bool = False,
) -> None:
    """:func:`~carbonsim.engine.simulation.settle_segments`, compiled where it can be: the
    same ledger, journal and period totals bit for bit. With ``checked`` (invariant checks
    on) the numpy settlement runs, so the ledger's checked method sees every settlement."""
    done = 0
    if not checked:
        done = _ledger_numba.settle_segments_compiled(
            ledger, orders, fill, codes, prices, bought, sold
        )
    settle_segments(ledger, orders, fill, codes, prices, bought, sold, checked=checked, start=done)
