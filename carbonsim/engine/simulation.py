"""The Simulation: one simpy schedule moves numpy state through compliance cycles.

simpy orders time; numpy does the economics. A :class:`Simulation` builds the units table
once, then runs one simpy environment with

- a **trading process**: one session per trading day (:mod:`carbonsim.engine.calendar`).
  Every registered strategy turns a :class:`~carbonsim.agents.MarketView` into orders for
  all replicates and units at once; the listed and block segments of all ``R`` replicates
  are cleared in **one** batched call auction (``2R`` markets; the clearing of
  :func:`carbonsim.clearing.call_auction_batch`, without its argument checks); fills
  settle through the :class:`~carbonsim.market.ledger.Ledger`;
- one **period process** per compliance period: ex-ante pre-allocation, verification and
  true-up (with the gap-cap top-up), optional staged deadlines, the surrender deadline with
  penalties and deductions;
- an **offset process**: the legacy CCER stock becomes available, and the offset market
  clears every few sessions.

- **auction processes**: government sealed-bid uniform-price auctions (paid allocation,
  the part of an absolute cap not given free, Beijing's band-triggered auctions), with
  bids from short units around the expected price; a market stability reserve (EU) adjusts
  the supply of the next period's auctions from the surplus in circulation;
- an **issuance process** for post-relaunch CCER projects.

Events on the same calendar day run in a fixed order, encoded as fractions of a day:
allocation (0.1), verification (0.2), the trading session (0.5), auctions (0.6), deadlines
(0.9).

State arrays have a leading replicate axis ``R``. All randomness during the run comes from a
:class:`~carbonsim._random.BatchRandom` (and the activity draw from per-replicate seeds), so
replicate ``k`` of a batch equals a single run with that replicate's seed, bit for bit.

Information and expectations
----------------------------
Units learn their obligation gradually: between the start of a period and its verification
date the certainty ``c`` rises linearly from 0 to 1, and a unit's expected obligation is
``(1 - c) * prior + c * actual``, where the prior is its baseline emissions with a lognormal
forecast error (``behaviour.forecast_sigma``). The same blend applies to the allocation it
expects. Demand therefore concentrates late in the cycle, when the obligation becomes known
and the deadline nears (:class:`~carbonsim.agents.ComplianceTrader`). The market-wide
expected price adapts to closing prices with weight ``behaviour.expectation_weight``.
Abatement is decided when a period's allocation is announced: each unit abates every tonne
whose marginal cost is below the expected price then.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from carbonsim import __version__
from carbonsim._cells import nonzero_cells, sum_cells, take_cells, unique_inverse
from carbonsim._deprecation import check_deprecated_backend
from carbonsim._random import BatchRandom, SeedLike, replicate_seeds
from carbonsim.agents.base import BLOCK, LISTED, MarketView, Orders, Strategy, make_strategy
from carbonsim.clearing import call_auction_batch, demand_cutoff, sealed_bid_auction
from carbonsim.clearing._ticks import snap_down, snap_up, ticks_to_price
from carbonsim.clearing.batch import clear_session
from carbonsim.engine.calendar import trading_days
from carbonsim.engine.memory import check_memory
from carbonsim.market.abatement import (
    MACCurves,
    abatement_at_price,
    abatement_cost,
    abatement_response,
)
from carbonsim.market.abatement import avoided_pollutants as _avoided
from carbonsim.market.allocation import AllocationInputs, allocate, pre_allocation
from carbonsim.market.compliance import apply_surrender, deadline_stages, obligation
from carbonsim.market.ledger import Ledger
from carbonsim.market.offsets import issued_credits, synthetic_projects
from carbonsim.market.penalties import assess_penalty, enforce, reference_price
from carbonsim.market.policy import (
    band_trigger_init,
    msr_intake,
    msr_invalidation,
    update_band_trigger,
)
from carbonsim.market.population import population_from_preset, synthetic_population
from carbonsim.market.units import ActivityDraw, UnitTable, draw_activity
from carbonsim.results import Result
from carbonsim.scenario.schema import PeriodSpec, Scenario, TradingSpec

log = logging.getLogger(__name__)

__all__ = [
    "INVARIANTS_ENV",
    "InvariantError",
    "Simulation",
    "build_units",
    "check_order_cells",
    "clear_offset_bids",
    "clear_offset_classes",
    "exchange_orders",
    "route_orders",
    "session_bands",
    "settle_segments",
    "simulate",
]

#: Environment variable that turns invariant checks on by default (``1`` or ``true``).
INVARIANTS_ENV = "CARBONSIM_CHECK_INVARIANTS"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

OFFSET_CLASS = "ccer"  # legacy credits
PROJECT_CLASS = "ccer_new"  # credits of post-relaunch projects
_T_ALLOCATE, _T_VERIFY, _T_SESSION, _T_AUCTION, _T_DEADLINE = 0.1, 0.2, 0.5, 0.6, 0.9
_OFFSET_LOTS = 20  # project owners' offers per replicate in one offset session
# standard-normal levels at which offset bids are tried as clearing cut-offs, highest first
_OFFSET_CUTOFF_Z = np.array([3.0, 2.0, 1.0, 0.0, -1.0])
# exp(0.05 z) at those levels: the bids' lognormal factor there
_OFFSET_CUTOFF_GROWTH = np.exp(0.05 * _OFFSET_CUTOFF_Z)
# (curve, replicate, unit) cells the fundamental-price bisection evaluates in one call
_FUNDAMENTAL_CELLS = 1_000_000


def _nan_to_zero(x: FloatArray) -> FloatArray:
    """``x`` with NaN replaced by 0.0 (``np.nan_to_num`` for arrays without infinities,
    without its Python-level overhead)."""
    return np.where(np.isnan(x), 0.0, x)


def _bands(reference: FloatArray, fraction: float, tick: float) -> tuple[FloatArray, FloatArray]:
    """Price band ``reference * (1 -/+ fraction)`` snapped inward to the tick grid, (R,) each."""
    lo_t = np.asarray(snap_up(reference * (1.0 - fraction), tick), np.int64)
    hi_t = np.asarray(snap_down(reference * (1.0 + fraction), tick), np.int64)
    hi_t = np.maximum(hi_t, lo_t)
    return ticks_to_price(lo_t, tick), ticks_to_price(hi_t, tick)


def session_bands(
    reference: FloatArray,
    listed_band: float,
    block_band: float,
    tick: float,
    floor: float | None,
    ceiling: float | None,
) -> tuple[FloatArray, FloatArray]:
    """A session's price bands ``(lo, hi)``, each (2R,): listed markets, then block markets.

    The daily bands around ``reference`` (:func:`_bands`); a policy floor or ceiling (on
    the grid) overrides them: trades never cross the limit, and a band lying wholly beyond
    it collapses onto the limit.
    """
    lo_l, hi_l = _bands(reference, listed_band, tick)
    lo_b, hi_b = _bands(reference, block_band, tick)
    if floor is not None:
        lo_l, lo_b = np.maximum(lo_l, floor), np.maximum(lo_b, floor)
        hi_l, hi_b = np.maximum(hi_l, lo_l), np.maximum(hi_b, lo_b)
    if ceiling is not None:
        hi_l, hi_b = np.minimum(hi_l, ceiling), np.minimum(hi_b, ceiling)
        lo_l, lo_b = np.minimum(lo_l, hi_l), np.minimum(lo_b, hi_b)
    return np.concatenate([lo_l, lo_b]), np.concatenate([hi_l, hi_b])


def check_order_cells(orders: Orders, n_replicates: int, n_units: int) -> None:
    """Raise ``ValueError`` naming the first order whose replicate or unit is out of range."""
    for name, idx, size in (
        ("replicate", orders.replicate, n_replicates),
        ("unit", orders.unit, n_units),
    ):
        bad = np.flatnonzero((idx < 0) | (idx >= size))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"orders: {name} index {int(idx[i])} of order {i} is outside [0, {size}); "
                f"a strategy must return orders for the view's {n_replicates} replicates "
                f"and {n_units} units"
            )


def route_orders(
    orders: Orders, view: MarketView, n_units: int, block_min_size: float, listed_max_size: float
) -> Orders:
    """Apply the exchange's order rules to a session's orders.

    A unit's offers together never exceed its holdings (scaled down pro rata, whole
    tonnes); block orders below ``block_min_size`` go to the listed segment; listed orders
    stay below ``listed_max_size``; orders under one tonne are dropped.

    Raises
    ------
    ValueError
        For an order whose replicate or unit lies outside the view's ``(R, N)`` (a
        strategy's mistake), naming the order (:func:`check_order_cells`).
    """
    n = n_units
    if len(orders):
        lo_r, hi_r = int(orders.replicate.min()), int(orders.replicate.max())
        lo_u, hi_u = int(orders.unit.min()), int(orders.unit.max())
        if lo_r < 0 or hi_r >= view.shape[0] or lo_u < 0 or hi_u >= n:
            check_order_cells(orders, view.shape[0], n)
    qty = orders.qty.copy()
    sells = ~orders.is_buy
    if sells.any():
        # a unit's offers together never exceed its holdings: scale them down pro rata
        # (per selling cell: work proportional to the orders, not to R x N)
        cell, inverse = unique_inverse(orders.replicate[sells] * n + orders.unit[sells])
        offered = np.bincount(inverse, weights=qty[sells], minlength=len(cell))
        held = view.holdings_at(cell // n, cell % n)
        scale = np.divide(held, offered, out=np.ones(len(cell)), where=offered > held)
        qty[sells] = np.floor(qty[sells] * scale[inverse])
    segment = orders.segment.copy()
    segment[(segment == BLOCK) & (qty < block_min_size)] = LISTED
    listed = segment == LISTED
    qty[listed] = np.minimum(qty[listed], np.ceil(listed_max_size) - 1.0)
    keep = qty >= 1.0
    return Orders(
        replicate=orders.replicate[keep],
        unit=orders.unit[keep],
        is_buy=orders.is_buy[keep],
        price=orders.price[keep],
        qty=qty[keep],
        segment=segment[keep],
    )


def exchange_orders(
    orders: Orders,
    view: MarketView,
    n_units: int,
    trading: TradingSpec,
    last_close: FloatArray,
    floor: float | None,
    ceiling: float | None,
    choke_price: float,
) -> tuple[Orders, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """A session's exchange step: routing (:func:`route_orders`), the price
    bands (:func:`session_bands`), marketable repricing and both call auctions of every
    replicate (:func:`~carbonsim.clearing.batch.clear_session`; listed markets ``0..R-1``,
    block markets ``R..2R-1``).

    ``view`` answers the holdings reads. Returns ``(routed orders, lo, hi, clear price,
    clear volume, fill)``.
    """
    r = last_close.shape[0]
    routed = route_orders(orders, view, n_units, trading.block_min_size, trading.listed_max_size)
    lo, hi = session_bands(
        last_close, trading.listed_band, trading.block_band, trading.tick, floor, ceiling
    )
    market = routed.replicate + r * (routed.segment == BLOCK)
    # marketable repricing: a buyer willing to pay more than the band's top bids the
    # top; a seller willing to take less than the bottom offers at the bottom
    price = np.minimum(routed.price, choke_price)  # nobody bids above the choke price
    price = np.where(routed.is_buy, np.minimum(price, hi[market]), np.maximum(price, lo[market]))
    clear_price, clear_volume, fill = clear_session(
        market,
        routed.is_buy,
        price,
        routed.qty,
        n_markets=2 * r,
        tick=trading.tick,
        reference_price=np.concatenate([last_close, last_close]),
        band=(lo, hi),
    )
    return routed, lo, hi, clear_price, clear_volume, fill


def settle_segments(
    ledger: Ledger,
    orders: Orders,
    fill: FloatArray,
    codes: Sequence[int],
    prices: Sequence[FloatArray],
    bought: FloatArray | None = None,
    sold: FloatArray | None = None,
    *,
    checked: bool = False,
    start: int = 0,
) -> None:
    """Settle a session's fills segment by segment, from ``codes[start]``.

    The filled orders of segment ``codes[s]`` are aggregated per (replicate, unit) cell and
    settled at ``prices[s]`` (R,) by the ledger (:meth:`~carbonsim.market.ledger.Ledger.
    settle_cells` when ``checked``, else its unchecked core); each cell's tonnes are added
    to the period's ``bought`` and ``sold`` (R, N) when given.
    """
    n = ledger.n_units
    filled = fill > 0
    for seg_code, px in zip(codes[start:], prices[start:], strict=True):
        done = np.flatnonzero(filled & (orders.segment == seg_code))
        if not done.size:
            continue
        # aggregate fills per (replicate, unit) cell: work proportional to the orders
        cell, inverse = unique_inverse(orders.replicate[done] * n + orders.unit[done])
        fill_d = fill[done]
        is_buy = orders.is_buy[done]
        buy = np.rint(np.bincount(inverse, weights=np.where(is_buy, fill_d, 0.0)))
        sell = np.rint(np.bincount(inverse, weights=np.where(is_buy, 0.0, fill_d)))
        buy_i, sell_i = buy.astype(np.int64), sell.astype(np.int64)
        rep_c, unit_c = np.divmod(cell, n)
        if checked:  # the public method re-checks what the engine built
            ledger.settle_cells(rep_c, unit_c, buy_i, sell_i, px)
        else:
            ledger._settle_cells_trusted(rep_c, unit_c, buy_i, sell_i, px)
        if bought is not None and sold is not None:  # unique cells: flat updates
            bought.reshape(-1)[cell] += buy_i
            sold.reshape(-1)[cell] += sell_i


def clear_offset_bids(
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
    """One offset class's call auctions in every replicate: the units'
    bids against the project owners' offers, pro-rata, no band and no reference price.

    Bids below the tick where demand alone passes the market's whole supply are left out
    first (:func:`~carbonsim.clearing.batch.demand_cutoff` over the candidate ``levels``
    (L, n_markets), in ticks): they could neither fill nor move the price, so the outcome
    is :func:`~carbonsim.clearing.call_auction_batch`'s on every bid, bit for bit.

    Parameters
    ----------
    bid_market, ask_market : ndarray of int64, shapes (B,), (A,)
        Market (replicate) of each bid and offer.
    bid_price, bid_qty, ask_price, ask_qty : ndarray of float64, shapes (B,), (A,)
        Limit prices (currency per tonne) and whole-tonne quantities.
    n_markets : int
        Number of markets.
    tick : float
        Price step (currency per tonne).
    levels : ndarray of float64, shape (L, n_markets)
        Candidate cut-off ticks.

    Returns
    -------
    price, volume : ndarray of float64, shape (n_markets,)
        Clearing price (NaN where none) and volume (tonnes) per market.
    bid_fill : ndarray of float64, shape (B,)
        Filled tonnes of each bid.
    """
    supply = np.bincount(ask_market, weights=ask_qty, minlength=n_markets)
    bid_tick = np.rint(bid_price / tick)  # the clearing kernel's ticks
    cut = demand_cutoff(bid_market, bid_tick, bid_qty, supply, levels)
    keep = np.flatnonzero(bid_tick >= cut[bid_market])
    res = call_auction_batch(
        np.concatenate([bid_market[keep], ask_market]),
        np.concatenate([np.ones(len(keep), bool), np.zeros(len(ask_market), bool)]),
        np.concatenate([bid_price[keep], ask_price]),
        np.concatenate([bid_qty[keep], ask_qty]),
        n_markets=n_markets,
        tick=tick,
    )
    bid_fill = np.zeros(len(bid_market))
    bid_fill[keep] = res.fill[: len(keep)]
    return np.asarray(res.price), np.asarray(res.volume), bid_fill


def clear_offset_classes(
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
    start: int = 0,
    volume: FloatArray | None = None,
    turnover: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """An offset session's trades, class after class from ``classes[start]``.

    For each usable class (legacy credits first; ``idx`` their ledger indices) the bidders
    ask for what their usage cap leaves after the eligible credits they hold (transfers of
    earlier classes count) or have surrendered; the project owners offer their stock of the
    class in :data:`_OFFSET_LOTS` lots per replicate; :func:`clear_offset_bids` clears
    every replicate and the ledger transfers the credits at each replicate's price.

    Parameters
    ----------
    ledger : Ledger
        Changed in place (offsets, project owners' stock and cash, units' cash, journal).
    classes, idx : sequence of str, sequence of int
        The classes usable in the period and their ledger indices.
    flat : ndarray of int, shape (B,)
        Bidders' cells, ``replicate * N + unit``, ascending.
    cap, surrendered : ndarray, shape (B,)
        Each bidder's usage cap (whole tonnes, float64) and credits surrendered (int64).
    bid_price : ndarray of float64, shape (B,)
        Bids, currency per tonne.
    ask_price : ndarray of float64, shape (R, _OFFSET_LOTS)
        The lots' offer prices.
    tick, levels
        As :func:`clear_offset_bids`.
    start, volume, turnover
        Resume at class ``start`` with the running totals (R,) of the classes before.

    Returns
    -------
    volume, turnover : ndarray of float64, shape (R,)
        Credits traded (t) and their value (currency) per replicate.
    """
    r, n = ledger.n_replicates, ledger.n_units
    volume = np.zeros(r) if volume is None else volume
    turnover = np.zeros(r) if turnover is None else turnover
    rows, cols = np.divmod(flat, n)
    offsets = ledger.offsets
    for cls, k in list(zip(classes, idx, strict=True))[start:]:
        held = sum_cells(offsets, rows, cols, idx)  # transfers of earlier classes count
        bid_qty = np.maximum(cap - held.astype(np.float64) - surrendered, 0.0)
        stock = ledger.project_offsets[:, k].astype(np.float64)
        lot = np.floor(stock / _OFFSET_LOTS)
        ask_qty = np.repeat(lot[:, None], _OFFSET_LOTS, axis=1)
        ask_qty[:, -1] += stock - lot * _OFFSET_LOTS
        sel = np.flatnonzero(bid_qty >= 1.0)
        ra, la = nonzero_cells(ask_qty >= 1.0)
        if len(sel) == 0 or len(ra) == 0:
            continue
        price, clear_volume, bid_fill = clear_offset_bids(
            rows[sel],
            bid_price[sel],
            bid_qty[sel],
            ra,
            ask_price[ra, la],
            ask_qty[ra, la],
            n_markets=r,
            tick=tick,
            levels=levels,
        )
        fill = bid_fill.astype(np.int64)
        if not fill.any():
            continue
        got = np.zeros((r, n), np.int64)
        got.reshape(-1)[flat[sel]] = fill  # one bid per cell
        px = np.where(np.isnan(price), 0.0, price)
        ledger.transfer_offsets(cls, got, px)
        volume += clear_volume
        turnover += px * clear_volume
    return volume, turnover


class InvariantError(AssertionError):
    """An invariant of the simulation failed (only raised with ``check_invariants``)."""


def build_units(scenario: Scenario) -> UnitTable:
    """Draw the scenario's units table (the same for every replicate and seed)."""
    pop = scenario.population
    options = dict(pop.options)
    if pop.preset is not None:
        if pop.n_units is not None:
            options["n_units"] = pop.n_units
        if pop.total_emissions is not None:
            options["total_emissions"] = pop.total_emissions
        return population_from_preset(pop.preset, rng=pop.seed, **options)
    assert pop.n_units is not None
    assert pop.total_emissions is not None
    return synthetic_population(pop.n_units, pop.total_emissions, rng=pop.seed, **options)


@dataclass
class _PeriodState:
    """Run state of one compliance period (arrays have shape (R, N) unless noted)."""

    spec: PeriodSpec
    years: list[int]
    year_index: list[int]
    t_start: float
    t_allocate: float
    t_verify: float
    t_deadline: float
    t_stages: list[float]
    prior_obligation: FloatArray
    expected_allocation: FloatArray
    final_allocation: FloatArray  # (R, Y, N) whole tonnes, known to the model from the start
    unabated: FloatArray  # (R, Y, N)
    abated: FloatArray = field(default_factory=lambda: np.zeros(0))  # (R, Y, N)
    abatement_cost: FloatArray = field(default_factory=lambda: np.zeros(0))
    allocated: FloatArray = field(default_factory=lambda: np.zeros(0))
    verified: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    obligation: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    surrendered: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    offsets_surrendered: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    bought: FloatArray = field(default_factory=lambda: np.zeros(0))
    sold: FloatArray = field(default_factory=lambda: np.zeros(0))
    stage_of_unit: IntArray | None = None
    expected_auction: FloatArray = field(default_factory=lambda: np.zeros(0))  # (R,) t
    auctioned: FloatArray = field(default_factory=lambda: np.zeros(0))  # (R,) t sold so far
    abatement_decided: bool = False
    actual_total: FloatArray | None = None  # (R, N) emissions net of abatement, cached
    final_total: FloatArray | None = None  # (R, N) final allocation over the years, cached
    verified_known: bool = False
    done: bool = False
    rows: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    @property
    def last_year(self) -> int:
        return self.years[-1]

    def certainty(self, t: float) -> float:
        """How much of the period's obligation is known at time ``t``, in [0, 1]: rises
        linearly from the period's start to verification."""
        return float(self.certainties(np.array([t]))[0])

    def certainties(self, t: FloatArray) -> FloatArray:
        """:meth:`certainty` at each of the times ``t`` (K,)."""
        span = self.t_verify - self.t_start
        if self.verified_known or span <= 0:
            return np.ones(t.shape)
        return np.clip((t - self.t_start) / span, 0.0, 1.0)


Cells = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]


def _check_cells(op: str, cells: Cells, shape: tuple[int, ...]) -> None:
    """Raise ``IndexError`` unless every cell lies in ``[0, R) x [0, N)`` (a flat gather
    would otherwise read another row for a column out of range)."""
    rows, cols = cells
    if len(rows) and not (
        rows.min() >= 0 and rows.max() < shape[0] and cols.min() >= 0 and cols.max() < shape[1]
    ):
        raise IndexError(f"{op}: cells must lie in [0, {shape[0]}) x [0, {shape[1]})")


class _PeriodView:
    """The :class:`~carbonsim.agents.ViewSource` of one trading session in period ``p``.

    Holdings and expected obligations are computed whole or at given cells by the same
    element-wise formulas, so a cell read alone equals the same cell of the whole array bit
    for bit. It reads the ledger and period state when asked; the engine closes the view
    before the session's trades are settled change them.
    """

    def __init__(self, ledger: Ledger, p: _PeriodState, certainty: float) -> None:
        self.ledger = ledger
        self.p = p
        self.c = certainty

    def holdings(self, cells: Cells | None) -> FloatArray:
        year = self.p.last_year
        if cells is None:
            return self.ledger.valid_holdings(year).astype(np.float64)
        return self.ledger.valid_holdings_at(year, cells[0], cells[1]).astype(np.float64)

    def raw_obligation(self, cells: Cells | None) -> tuple[FloatArray, FloatArray | float]:
        """Expected obligation before offsets and allocation still to come due, t."""
        p, c = self.p, self.c

        def at(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a if cells is None else take_cells(a, *cells)

        if p.verified_known:
            ob = (at(p.obligation) - at(p.surrendered) - at(p.offsets_surrendered)).astype(
                np.float64
            )
            return ob, 0.0
        assert p.actual_total is not None
        assert p.final_total is not None
        ob = (1.0 - c) * at(p.prior_obligation) + c * at(p.actual_total)
        expected_final = (1.0 - c) * at(p.expected_allocation) + c * at(p.final_total)
        return ob, np.maximum(expected_final - at(p.allocated), 0.0)

    def obligation(self, cells: Cells | None) -> FloatArray:
        if cells is not None:
            _check_cells("obligation_at", cells, self.p.obligation.shape)
        ob, future_alloc = self.raw_obligation(cells)
        offsets = self.ledger.offsets
        if cells is None:
            held_int = offsets.sum(axis=-1)
        else:
            held_int = sum_cells(offsets, *cells, range(offsets.shape[-1]))
        held = held_int.astype(np.float64)
        offset_use = np.minimum(held, self.p.spec.offset_limit_share * np.maximum(ob, 0))
        # allowances the unit must still hold at the deadline, net of those to come
        need: FloatArray = np.maximum(ob - offset_use, 0.0) - future_alloc
        return need


class Simulation:
    """A mutable run of a scenario; call :meth:`run` once to get a :class:`Result`.

    Parameters
    ----------
    scenario : Scenario
        The validated, immutable input.
    seed : int, SeedSequence or None
        Root seed; replicate ``k`` uses the ``k``-th child of ``SeedSequence(seed)``.
    replicates : int
        Number of Monte Carlo replicates ``R`` advanced in lockstep.
    first_replicate : int
        Number of the first replicate: the run computes replicates ``first_replicate ..
        first_replicate + R - 1`` of ``seed``. Replicate ``k`` is identical whichever batch
        computes it, so a sweep can split replicates across workers.
    record_trades : bool
        Keep one row per filled order in :attr:`Result.trades` (large).
    check_invariants : bool or None
        After every event, check ledger conservation, fills within orders, trade prices
        inside the bands, offsets within caps; raise :class:`InvariantError` on failure.
        None (the default) reads the environment variable ``CARBONSIM_CHECK_INVARIANTS``
        (``1``/``true`` turns the checks on); the test suite sets it.
    progress : bool
        Show a tqdm progress bar over trading sessions.
    backend : None
        Deprecated and ignored: carbonsim has one engine (numpy). Passing any value warns
        (``DeprecationWarning``); the keyword will be removed in the next release.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: SeedLike = 0,
        replicates: int = 1,
        first_replicate: int = 0,
        record_trades: bool = False,
        check_invariants: bool | None = None,
        progress: bool = False,
        backend: str | None = None,
    ) -> None:
        check_deprecated_backend(backend)
        if not isinstance(scenario, Scenario):
            raise TypeError(f"scenario must be a Scenario, got {type(scenario).__name__}")
        if isinstance(seed, np.random.Generator):
            raise TypeError(
                "seed must be an int or SeedSequence (a Generator cannot be split into "
                "batch-invariant replicate streams)"
            )
        self.scenario = scenario
        self.seed = seed
        if isinstance(first_replicate, bool) or not isinstance(first_replicate, (int, np.integer)):
            raise TypeError(f"first_replicate must be an int, got {first_replicate!r}")
        if first_replicate < 0:
            raise ValueError(f"first_replicate must be >= 0, got {first_replicate}")
        self.first_replicate = int(first_replicate)
        self.seeds = replicate_seeds(seed, self.first_replicate + replicates)[
            self.first_replicate :
        ]
        self.n_replicates = int(replicates)
        self.record_trades = bool(record_trades)
        if check_invariants is None:
            flag = os.environ.get(INVARIANTS_ENV, "").strip().lower()
            check_invariants = flag in {"1", "true", "yes", "on"}
        self.check_invariants = bool(check_invariants)
        self.progress = bool(progress)
        self._ran = False

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        sc = self.scenario
        r = self.n_replicates
        self.units = build_units(sc)
        n = self.units.n_units
        self.start = pd.Timestamp(sc.time.start)
        self.days = trading_days(sc.time.start, sc.time.end, sc.time.calendar)
        if len(self.days) == 0:
            raise ValueError(
                f"time: no trading day between {sc.time.start} and {sc.time.end} "
                f"on calendar {sc.time.calendar!r}"
            )
        self.rng = BatchRandom(self.seeds)
        self.strategies: list[Strategy] = [
            make_strategy(s.name, s.params) for s in sc.behaviour.strategies
        ]
        self.mac = MACCurves.from_units(self.units)
        self.is_gas = np.broadcast_to(self.units.of_subtype("gas"), (r, n))
        self.unit_size = self.units.baseline_emissions()

        all_years = sorted({y for p in sc.periods for y in p.emission_years})
        first, last = all_years[0], all_years[-1]
        vintages = list(range(first, last + 2))  # +1: deductions from the next allocation
        self.vintages = vintages
        for a in sc.auctions:
            if a.vintage not in vintages:
                raise ValueError(
                    f"auctions: vintage {a.vintage} of the auction on {a.date} is not one of "
                    f"the scenario's vintages {vintages[0]}..{vintages[-1]}"
                )
        self.ledger = Ledger(
            r, self.units.names, vintages, offset_classes=(OFFSET_CLASS, PROJECT_CLASS)
        )
        self.carried = np.zeros((r, n), np.int64)
        self.msr_holdings = np.zeros(r)
        self.msr_adjustment = np.zeros(r)  # net change of the next period's auction supply
        trig = sc.policy.band_trigger
        self.band_state = band_trigger_init(r, trig.window) if trig is not None else None
        # activity: one draw per replicate from its own seed, so replicate k's shocks do
        # not depend on the batch (a loop over replicates, once, at set-up)
        parts = [
            draw_activity(
                self.units,
                years=np.arange(last - first + 1),
                rng=np.random.default_rng(
                    np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, 1))
                ),
            )
            for s in self.seeds
        ]
        self.draw = ActivityDraw(
            units=self.units,
            offsets=parts[0].offsets,
            output_factor=np.concatenate([d.output_factor for d in parts]),
            intensity_factor=np.concatenate([d.intensity_factor for d in parts]),
        )
        self.first_year = first

        self.periods = [self._make_period(p) for p in sc.periods]
        for p in self.periods:
            p.expected_auction = np.zeros(r)
            p.auctioned = np.zeros(r)
            if p.spec.auction_remainder:
                caps = sum(self._period_caps(p))
                p.expected_auction += np.maximum(caps - p.final_allocation.sum(axis=(1, 2)), 0.0)
        for a in sc.auctions:
            owner = self._period_of_vintage(a.vintage)
            if owner is not None:
                owner.expected_auction += a.supply
        self._now = 0.0
        t_total = len(self.days)
        self.market = {
            name: np.full(
                (r, t_total),
                np.nan if ("price" in name and name != "auction_price") or "vwap" in name else 0.0,
            )
            for name in (
                "price",
                "vwap",
                "volume",
                "turnover",
                "listed_volume",
                "block_volume",
                "offset_price",
                "offset_volume",
                "band_low",
                "band_high",
                "expected_price",
                "fundamental_price",
                "auction_price",
                "auction_volume",
                "intervention_volume",
                "msr_holdings",
            )
        }
        # policy limits snapped inward to the tick grid (a limit between two ticks allows
        # only the ticks on its side)
        tick = sc.trading.tick
        pol = sc.policy
        self._floor = (
            None
            if pol.price_floor is None
            else float(ticks_to_price(snap_up(pol.price_floor, tick), tick))
        )
        self._ceiling = (
            None
            if pol.price_ceiling is None
            else float(ticks_to_price(snap_down(pol.price_ceiling, tick), tick))
        )
        if self._floor is not None and self._ceiling is not None and self._floor > self._ceiling:
            raise ValueError(
                f"policy: price_floor {pol.price_floor} and price_ceiling {pol.price_ceiling} "
                f"leave no price on the tick grid (tick {tick})"
            )
        self.last_close = np.full(r, float(sc.trading.opening_price))
        self.adaptive_price = self.last_close.copy()
        self.fundamental_price = self.last_close.copy()
        self.expected_price = self.last_close.copy()
        self.offer_noise: FloatArray | None = None
        self.trades: list[pd.DataFrame] = []
        self.offsets_open = False
        self.session_index = -1
        self._gap = np.zeros((r, n))
        # the whole gap array is needed after a session only by auctions and buy-backs
        self._reads_gap = bool(
            sc.auctions
            or any(spec.auction_remainder for spec in sc.periods)
            or sc.policy.band_trigger is not None
        )
        self._view_source: _PeriodView | None = None

    def _t(self, date: dt.date) -> float:
        return max(float((pd.Timestamp(date) - self.start).days), 0.0)

    def _make_period(self, spec: PeriodSpec) -> _PeriodState:
        r, n = self.n_replicates, self.units.n_units
        yi = [y - self.first_year for y in spec.emission_years]
        unabated = self.draw.emissions()[:, yi, :]
        final = np.empty_like(unabated)
        for j, (year, idx) in enumerate(zip(spec.emission_years, yi, strict=True)):
            inputs = AllocationInputs.from_draw(
                self.draw, year, index=idx, parameters=spec.allocation_params
            )
            final[:, j, :] = allocate(spec.allocation_rule, inputs)
        # what units expect before verification: reference activity, same rule
        expected = np.zeros((r, n))
        for year in spec.emission_years:
            ref = AllocationInputs.from_units(self.units, year, parameters=spec.allocation_params)
            expected += allocate(spec.allocation_rule, ref)[None, :]
        t_alloc = self._t(spec.pre_allocation_date)
        return _PeriodState(
            spec=spec,
            years=list(spec.emission_years),
            year_index=yi,
            t_start=t_alloc,
            t_allocate=t_alloc + _T_ALLOCATE,
            t_verify=self._t(spec.verification_date) + _T_VERIFY,
            t_deadline=self._t(spec.deadline) + _T_DEADLINE,
            t_stages=[self._t(s.date) + _T_DEADLINE for s in spec.stages],
            prior_obligation=np.broadcast_to(
                self.unit_size[None, :] * len(spec.emission_years), (r, n)
            ).copy(),
            expected_allocation=expected,
            final_allocation=np.floor(final),
            unabated=unabated,
            allocated=np.zeros((r, n)),
            verified=np.zeros((r, n), np.int64),
            obligation=np.zeros((r, n), np.int64),
            surrendered=np.zeros((r, n), np.int64),
            offsets_surrendered=np.zeros((r, n), np.int64),
            bought=np.zeros((r, n)),
            sold=np.zeros((r, n)),
        )

    # ------------------------------------------------------------------ period events
    def _prior_emissions(self, p: _PeriodState) -> FloatArray:
        """Emissions the market expects before verification: baseline, (R, Y, N)."""
        # C-contiguous: numpy's summation order (and so the last bits of a sum) depends on
        # the memory layout, and replicate k must not depend on the batch
        return np.ascontiguousarray(
            np.broadcast_to(self.unit_size[None, None, :], p.unabated.shape), dtype=np.float64
        )

    def _update_fundamental(self) -> None:
        """Competitive price path with banking (Rubin 1996), solved per replicate.

        With free banking an allowance's spot price rises at the discount rate ``d``, and a
        unit abates every tonne whose marginal cost is below the spot price when it decides
        (at its period's allocation). Abatement already decided is sunk; so are verified
        emissions. Today's fundamental price ``p0`` therefore solves

        .. math:: \\sum_{q\\ undecided} \\sum_i a_i\\bigl(p_0 e^{d \\tau_q}\\bigr)
                  = \\sum_q (E_q - D_q - A_q) - B - O

        by bisection on the MAC curves, where ``tau_q`` is the time in years to period
        ``q``'s abatement decision, ``E_q`` expected (or verified) emissions, ``D_q``
        abatement already decided, ``A_q`` expected allocation, ``B`` banked allowances and
        ``O`` usable offsets; ``p0`` is at least ``reservation_price``. With no new
        information the solution rises exactly at ``d`` between decisions (the Hotelling
        rule). Borrowing constraints are ignored: this is the unconstrained intertemporal
        equilibrium.
        """
        b = self.scenario.behaviour
        r = self.n_replicates
        now = self._now
        remaining = [q for q in self.periods if not q.done]
        if not remaining:
            return
        shortage = np.zeros(r)
        covered = np.zeros(r)
        blocks: list[tuple[float, FloatArray]] = []
        for q in remaining:
            # auction supply still to come counts as supply (sold allowances are holdings)
            to_auction = np.maximum(q.expected_auction - q.auctioned, 0.0)
            if q.verified_known:
                verified = (q.unabated - q.abated).sum(axis=(1, 2))
                shortage += verified - q.allocated.sum(axis=1) - to_auction
                covered += verified
                continue
            prior = self._prior_emissions(q)
            covered += prior.sum(axis=(1, 2))
            free = q.expected_allocation.sum(axis=1)
            shortage += prior.sum(axis=(1, 2)) - free - q.expected_auction
            # allowances already bought at auction sit in holdings but also in `allocated`
            # (excluded from the banked surplus below); count them once, as supply
            shortage += q.auctioned
            if q.abatement_decided:
                shortage -= q.abated.sum(axis=(1, 2))
            else:
                tau = max(q.t_allocate - now, 0.0) / 365.25
                blocks.append((tau, prior))
        held = self.ledger.allowances.sum(axis=(1, 2)).astype(np.float64)
        allocated_remaining = sum(q.allocated.sum(axis=1) for q in remaining)
        banked = np.maximum(held - allocated_remaining, 0.0)
        cap_share = remaining[0].spec.offset_limit_share
        offsets = np.minimum(
            self.ledger.offsets.sum(axis=(1, 2)) + self.ledger.project_offsets.sum(axis=1),
            cap_share * covered,
        )
        # the market stability reserve's pending intake (negative) or release (positive)
        # changes the supply of the next auctions
        shortage = shortage - banked - offsets - self.msr_adjustment
        if not blocks:  # every period's abatement is decided: nothing responds to price
            return

        # the abatement curves of every undecided emission year, prepared once and
        # evaluated a group of curves per call: (C, R, N) emissions, a price per curve
        # and replicate; each curve's total over the units is the same sum as alone, and
        # the curves' totals are added in order
        years = [(tau, e[:, j, :]) for tau, e in blocks for j in range(e.shape[1])]
        per_group = max(1, _FUNDAMENTAL_CELLS // max(r * self.units.n_units, 1))
        groups = [
            (
                np.array([np.exp(b.discount_rate * tau) for tau, _ in years[k : k + per_group]]),
                abatement_response(
                    self.mac, emissions=np.stack([e for _, e in years[k : k + per_group]])
                ),
            )
            for k in range(0, len(years), per_group)
        ]

        def abated_at(p0: FloatArray) -> FloatArray:
            total = np.zeros(r)
            for growth, respond in groups:
                price = (p0[None, :] * growth[:, None])[:, :, None]
                for curve_total in respond(price).sum(axis=2):
                    total += curve_total
            return total

        lo = np.zeros(r)
        hi = np.full(r, float(b.choke_price))  # a shortage beyond abatement: the backstop
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            enough = abated_at(mid) >= shortage
            hi = np.where(enough, mid, hi)
            lo = np.where(enough, lo, mid)
        self.fundamental_price = np.maximum(hi, b.reservation_price)
        self._blend_expectation()

    def _blend_expectation(self) -> None:
        w = self.scenario.behaviour.fundamental_weight
        self.expected_price = (1.0 - w) * self.adaptive_price + w * self.fundamental_price

    def _pre_allocate(self, p: _PeriodState) -> None:
        sc = self.scenario
        r, n = self.n_replicates, self.units.n_units
        self._now = self._env.now
        self._update_fundamental()
        # abatement decided at the announcement, at the expected price then
        if sc.behaviour.abatement:
            price = self.expected_price[:, None]
            abated = np.stack(
                [
                    abatement_at_price(price, self.mac, emissions=p.unabated[:, j, :])
                    for j in range(len(p.years))
                ],
                axis=1,
            )
            cost = np.stack(
                [
                    abatement_cost(abated[:, j, :], self.mac, emissions=p.unabated[:, j, :])
                    for j in range(len(p.years))
                ],
                axis=1,
            )
        else:
            abated = np.zeros_like(p.unabated)
            cost = np.zeros_like(p.unabated)
        p.abated, p.abatement_cost = abated, cost
        p.abatement_decided = True
        p.actual_total = None  # recomputed from the new abatement
        noise = np.exp(
            sc.behaviour.forecast_sigma * self.rng.standard_normal((r, n))
            - 0.5 * sc.behaviour.forecast_sigma**2
        )
        p.prior_obligation = self.unit_size[None, :] * len(p.years) * noise
        for j, year in enumerate(p.years):
            basis = p.expected_allocation / len(p.years)
            pre = pre_allocation(basis, p.spec.pre_allocation_share).astype(np.int64)
            self.ledger.allocate(year, pre, issue=True)
            p.allocated += pre
            del j

    def _verify(self, p: _PeriodState) -> None:
        emissions = (p.unabated - p.abated).sum(axis=1)
        p.verified = np.rint(emissions).astype(np.int64)
        final_total = p.final_allocation.sum(axis=1)
        for j, year in enumerate(p.years):
            pre_j = np.floor(
                pre_allocation(p.expected_allocation / len(p.years), p.spec.pre_allocation_share)
            )
            delta = (p.final_allocation[:, j, :] - pre_j).astype(np.int64)
            if (delta > 0).any():
                self.ledger.allocate(year, np.maximum(delta, 0), issue=True)
            if (delta < 0).any():
                # a final allocation below the pre-allocation is taken back from the
                # vintage; what the unit no longer holds (it sold it) is deducted from the
                # next allocation instead
                owed = np.maximum(-delta, 0)
                vi = self.ledger.vintage_index(year)
                held = np.maximum(self.ledger.allowances[:, :, vi], 0)
                now = np.minimum(owed, held)
                if now.any():
                    self.ledger.claw_back(year, now)
                if (owed > now).any():
                    self.ledger.deduct(owed - now, year + 1)
        p.allocated = final_total.copy()
        ob = obligation(
            p.verified,
            final_total.astype(np.int64),
            is_gas=self.is_gas,
            gap_cap_share=p.spec.gap_cap_share,
            gas_exemption=p.spec.gas_exemption,
        )
        if (ob.top_up > 0).any():
            self.ledger.allocate(p.last_year, ob.top_up, issue=True)
            p.allocated += ob.top_up
        # obligations carried from earlier periods (EU penalty rule) are added here
        p.obligation = ob.obligation.astype(np.int64) + self.carried
        self.carried = np.zeros_like(self.carried)
        p.verified_known = True
        self._apply_msr(p)
        self._now = self._env.now
        self._update_fundamental()
        if p.spec.stages:
            shares = [s.share for s in p.spec.stages] + [1.0]
            shares = list(np.maximum.accumulate(shares))
            # units with the largest remaining gap surrender last
            key = (p.obligation - self.ledger.valid_holdings(p.last_year)).astype(np.float64)
            p.stage_of_unit = deadline_stages(shares, key=key)

    def _surrender(self, p: _PeriodState, due: npt.NDArray[np.bool_], final: bool) -> None:
        remaining = np.where(due, p.obligation - p.surrendered - p.offsets_surrendered, 0)
        remaining = np.maximum(remaining, 0)
        cap_total = np.floor(p.spec.offset_limit_share * p.obligation).astype(np.int64)
        cap_left = np.maximum(cap_total - p.offsets_surrendered, 0)
        res = apply_surrender(
            self.ledger,
            remaining,
            p.last_year,
            offset_limit_share=p.spec.offset_limit_share,
            offset_cap=np.where(due, cap_left, 0),
            offset_first=True,
            eligible_offset_classes=self._offset_classes_for(p.last_year),
        )
        p.surrendered += res.allowances
        p.offsets_surrendered += res.offsets.sum(axis=-1)
        if final:
            self._close_period(p)

    def _close_period(self, p: _PeriodState) -> None:
        shortfall = np.maximum(p.obligation - p.surrendered - p.offsets_surrendered, 0)
        regime = self._penalty_regime(p.spec.deadline)
        market_price = None
        if regime.regime == "china_2024_interim":
            upto = self.session_index + 1
            try:
                market_price = reference_price(
                    self.days[:upto].values,
                    self.market["price"][:, :upto],
                    pd.Timestamp(p.spec.deadline),
                )
            except ValueError:
                market_price = self.last_close.copy()
            market_price = np.broadcast_to(np.asarray(market_price)[..., None], shortfall.shape)
        outcome = assess_penalty(
            regime.regime, shortfall, market_price=market_price, **regime.params
        )
        next_vintage = p.last_year + 1
        enforce(self.ledger, outcome, deduction_vintage=next_vintage)
        self.carried = self.carried + np.asarray(outcome.carried_obligation, np.int64)
        banked = self.ledger.valid_holdings(p.last_year)
        total_abated = p.abated.sum(axis=1)
        pollutants = _avoided(total_abated, self.units)
        p.rows = {
            "allocated": p.allocated.copy(),
            "emissions": p.verified.astype(np.float64),
            "abated": total_abated,
            "abatement_cost": p.abatement_cost.sum(axis=1),
            "surrendered": p.surrendered.astype(np.float64),
            "offsets_surrendered": p.offsets_surrendered.astype(np.float64),
            "shortfall": shortfall.astype(np.float64),
            "penalty": np.asarray(outcome.fine, np.float64),
            "bought": p.bought.copy(),
            "sold": p.sold.copy(),
            "banked": banked.astype(np.float64),
            "so2_avoided": pollutants[..., 0],
            "nox_avoided": pollutants[..., 1],
            "pm_avoided": pollutants[..., 2],
        }
        p.done = True

    def _penalty_regime(self, deadline: dt.date) -> Any:
        chosen = None
        for change in sorted(self.scenario.penalties, key=lambda c: c.start):
            if change.start <= deadline:
                chosen = change
        if chosen is None:
            raise ValueError(
                f"penalties: no regime in force at the deadline {deadline}; "
                "add one with an earlier start"
            )
        return chosen

    def _period_process(self, env: simpy.Environment, p: _PeriodState) -> Any:
        yield env.timeout(p.t_allocate - env.now)
        self._pre_allocate(p)
        self._after_event("pre-allocation")
        yield env.timeout(max(p.t_verify - env.now, 0.0))
        self._verify(p)
        self._after_event("verification")
        for s, t_stage in enumerate(p.t_stages):
            yield env.timeout(max(t_stage - env.now, 0.0))
            assert p.stage_of_unit is not None
            self._surrender(p, p.stage_of_unit <= s, final=False)
            self._after_event("stage deadline")
        yield env.timeout(max(p.t_deadline - env.now, 0.0))
        self._surrender(p, np.ones(p.obligation.shape, bool), final=True)
        self._after_event("deadline")

    # ------------------------------------------------------------------ trading
    def _current_period(self, t: float) -> _PeriodState | None:
        for p in self.periods:
            if not p.done and t <= p.t_deadline:
                return p
        return None

    @staticmethod
    def _cache_totals(p: _PeriodState) -> None:
        """Cache the period's emission and final-allocation totals the obligation estimate
        reads before verification (they change only when abatement is decided)."""
        if not p.verified_known:
            if p.actual_total is None:
                p.actual_total = (
                    (p.unabated - p.abated).sum(axis=1) if p.abated.size else p.unabated.sum(1)
                )
            if p.final_total is None:
                p.final_total = p.final_allocation.sum(1)

    def _sessions_to_deadline(self, i: IntArray, p: _PeriodState) -> tuple[IntArray, IntArray]:
        """Sessions from each session ``i`` (K,) of period ``p`` to the period's next
        deadline or stage (at least 0), and the index of the first session after it."""
        t = self._session_times[i]
        marks = np.array([*(s for s in p.t_stages if s <= p.t_deadline), p.t_deadline])
        marks.sort()
        # the first at or after t (the deadline itself once t is past every mark)
        deadline_t = marks[np.minimum(np.searchsorted(marks, t), len(marks) - 1)]
        end = np.searchsorted(self._session_times, deadline_t)
        return np.maximum(end - 1 - i, 0), end

    def _view(self, t: float, p: _PeriodState | None) -> MarketView:
        """The session's market view; per-unit arrays are computed when strategies ask."""
        r, n = self.n_replicates, self.units.n_units
        sessions_total = len(self.days)
        common = {
            "session": self.session_index,
            "last_close": self.last_close.copy(),
            "expected_price": self.expected_price.copy(),
            "unit_size": self.unit_size,
            "block_threshold": self.scenario.trading.block_min_size,
        }
        if p is None:
            return MarketView(
                sessions_to_deadline=sessions_total,
                sessions_in_cycle=sessions_total,
                holdings=np.zeros((r, n)),
                expected_obligation=np.zeros((r, n)),
                obligation_certainty=1.0,
                **common,
            )
        c = p.certainty(t)
        self._cache_totals(p)
        taus, ends = self._sessions_to_deadline(np.array([self.session_index]), p)
        to_deadline, end = int(taus[0]), int(ends[0])
        in_cycle = max(end - int(np.searchsorted(self._session_times, p.t_start)), 1)
        self._view_source = _PeriodView(self.ledger, p, c)
        return MarketView.deferred(
            self._view_source,
            (r, n),
            sessions_to_deadline=to_deadline,
            sessions_in_cycle=in_cycle,
            obligation_certainty=c,
            **common,
        )

    def _exchange(
        self, orders: Orders, view: MarketView, p: _PeriodState | None
    ) -> tuple[Orders, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """The session's exchange step (:func:`exchange_orders`)."""
        return exchange_orders(
            orders,
            view,
            self.ledger.n_units,
            self.scenario.trading,
            self.last_close,
            self._floor,
            self._ceiling,
            self.scenario.behaviour.choke_price,
        )

    def _session(self, t: float, i: int) -> None:
        r = self.n_replicates
        self.session_index = i
        p = self._current_period(t)
        view = self._view(t, p)
        if p is not None and self._reads_gap:
            self._gap = view.gap  # auctions and buy-backs read it after the session
        orders = Orders.concat([s.orders(view, self.rng) for s in self.strategies])
        orders, lo, hi, clear_price, clear_volume, fill = self._exchange(orders, view, p)
        view.close()  # settlement below changes what the view would read
        if self.check_invariants:
            self._check_fills(orders, fill, clear_price, lo, hi)
        # settle each segment at its uniform price
        settle_segments(
            self.ledger,
            orders,
            fill,
            (LISTED, BLOCK),
            (_nan_to_zero(clear_price[:r]), _nan_to_zero(clear_price[r:])),
            None if p is None else p.bought,
            None if p is None else p.sold,
            checked=self.check_invariants,
        )
        self._close_session(i, p, orders, lo, hi, clear_price, clear_volume, fill)

    def _close_session(
        self,
        i: int,
        p: _PeriodState | None,
        orders: Orders,
        lo: FloatArray,
        hi: FloatArray,
        clear_price: FloatArray,
        clear_volume: FloatArray,
        fill: FloatArray,
    ) -> None:
        """The rest of session ``i`` once its fills are settled: the market table, the
        close and the expectations, the offset market, the band trigger."""
        sc = self.scenario
        r = self.n_replicates
        lo_l, hi_l = lo[:r], hi[:r]
        vol_l, vol_b = clear_volume[:r], clear_volume[r:]
        px_l, px_b = clear_price[:r], clear_price[r:]
        turnover_l = _nan_to_zero(px_l * vol_l)
        turnover_b = _nan_to_zero(px_b * vol_b)
        volume = vol_l + vol_b
        turnover = turnover_l + turnover_b
        close = np.where(vol_l > 0, px_l, self.last_close)
        # the reference price respects policy limits even on days without trades
        close = np.clip(
            close,
            -np.inf if self._floor is None else self._floor,
            np.inf if self._ceiling is None else self._ceiling,
        )
        m = self.market
        m["price"][:, i] = close
        m["vwap"][:, i] = np.divide(turnover, volume, out=np.full(r, np.nan), where=volume > 0)
        m["volume"][:, i] = volume
        m["turnover"][:, i] = turnover
        m["listed_volume"][:, i] = vol_l
        m["block_volume"][:, i] = vol_b
        m["band_low"][:, i] = lo_l
        m["band_high"][:, i] = hi_l
        if self.record_trades:
            self._record_trades(i, orders, fill, clear_price)
        self.last_close = close
        w = sc.behaviour.expectation_weight
        self.adaptive_price = (1.0 - w) * self.adaptive_price + w * close
        self._blend_expectation()
        m["expected_price"][:, i] = self.expected_price
        m["fundamental_price"][:, i] = self.fundamental_price
        if self.offsets_open and p is not None and i % sc.offsets.session_interval == 0:
            self._offset_session(i, p)
        if self.band_state is not None and p is not None:
            self._band_trigger(i, p, close)
        m["msr_holdings"][:, i] = self.msr_holdings
        self._after_event("session")

    def _offset_session(self, i: int, p: _PeriodState) -> None:
        """Clear the offset market: units' eligible demand against project owners' stock.

        Each class usable for the current period is cleared in turn (legacy credits first),
        in one batched call over replicates per class; demand is what the usage cap leaves
        after the eligible credits a unit holds or has surrendered.
        """
        off = self.scenario.offsets
        r, n = self.n_replicates, self.units.n_units
        classes, idx, stocked = self._offset_stock(p)
        if not classes:
            return
        offsets = self.ledger.offsets
        flat = np.zeros(0, np.intp)
        if stocked.any():
            # the session's obligation estimate (period state the session's trades leave
            # alone)
            assert self._view_source is not None
            assert self._view_source.p is p
            ob = self._view_source.raw_obligation(None)[0]
            cap = np.floor(p.spec.offset_limit_share * np.maximum(ob, 0.0))
            # bidders: units below their usage cap; holdings only grow within the session,
            # so these cells are a superset of every class's bidders
            held0 = offsets[:, :, idx].sum(axis=2) + p.offsets_surrendered
            flat = np.flatnonzero((cap - held0 >= 1.0) & stocked[:, None])
        rows, cols = np.divmod(flat, n)
        # drawing only the bidders gives the numbers a full draw gives at those cells, and
        # the draw counter advances the same whoever bids (replicates stay batch-invariant)
        z = self.rng.standard_normal((r, n), where=(rows, cols))
        self._draw_offer_noise()
        if flat.size == 0:
            return
        assert self.offer_noise is not None
        bid_price = self.expected_price[rows] * (1.0 - off.discount) * np.exp(0.05 * z)
        ask_price = off.supply_cost * self.offer_noise
        tick = self.scenario.trading.tick
        # cut-off candidates: the ticks of a few high bid quantiles (bids are lognormal
        # around a price common to the replicate), highest first, with a tick of slack
        levels = (
            np.rint(
                self.expected_price[None, :]
                * (1.0 - off.discount)
                * _OFFSET_CUTOFF_GROWTH[:, None]
                / tick
            )
            - 1.0
        )
        volume, turnover = clear_offset_classes(
            self.ledger,
            classes,
            idx,
            flat,
            cap.reshape(-1)[flat],
            p.offsets_surrendered.reshape(-1)[flat],
            bid_price,
            ask_price,
            tick=tick,
            levels=levels,
        )
        if volume.any():
            self.market["offset_volume"][:, i] = volume
            self.market["offset_price"][:, i] = np.divide(
                turnover, volume, out=np.full(r, np.nan), where=volume > 0
            )

    def _offset_stock(self, p: _PeriodState) -> tuple[list[str], list[int], BoolArray]:
        """The offset classes usable in period ``p`` (legacy first), their ledger indices,
        and which replicates' project owners hold credits of them to sell (R,): only those
        replicates have an offset market (in the others bids meet no offer and nothing
        trades, which leaves every output the same)."""
        classes = self._offset_classes_for(p.last_year)
        idx = [self.ledger.offset_class_index(c) for c in classes]
        stocked: BoolArray = np.any(self.ledger.project_offsets[:, idx] >= 1, axis=1)
        return classes, idx, stocked

    def _draw_offer_noise(self) -> None:
        """Draw the project owners' lognormal offer-price scatter (R, lots), once: at the
        first offset session with a usable class."""
        if self.offer_noise is None:
            sigma = self.scenario.offsets.supply_cost_sigma
            shape = (self.n_replicates, _OFFSET_LOTS)
            self.offer_noise = np.exp(sigma * self.rng.standard_normal(shape))

    def _offset_classes_for(self, year: int) -> list[str]:
        """Offset classes usable for compliance year ``year``, legacy first."""
        off = self.scenario.offsets
        classes = []
        if off.legacy_last_year is None or year <= off.legacy_last_year:
            classes.append(OFFSET_CLASS)
        if off.projects > 0:
            classes.append(PROJECT_CLASS)
        return classes

    def _auction(
        self,
        i: int,
        vintage: int,
        supply: FloatArray,
        reserve: float,
        period: _PeriodState | None = None,
    ) -> None:
        """A government sealed-bid uniform-price auction of ``supply`` (R,) tonnes.

        Allowances won count as the buyer's allocation of ``period`` (paid allocation).
        """
        b = self.scenario.behaviour
        r, n = self.n_replicates, self.units.n_units
        supply_t = np.floor(np.maximum(supply, 0.0)).astype(np.int64)
        if not (supply_t > 0).any():
            return
        self.ledger.issue(vintage, supply_t)
        gap = np.floor(np.maximum(self._gap, 0.0))
        bidders = (gap >= 1.0) & (self.rng.random((r, n)) < b.auction_participation)
        rows, cols = np.nonzero(bidders)
        z = self.rng.standard_normal((r, n), where=(rows, cols))
        price = self.expected_price[rows] * np.exp(
            b.auction_bid_sigma * z - 0.5 * b.auction_bid_sigma**2
        )
        price = np.minimum(price, b.choke_price)
        fills = np.zeros((r, n), np.int64)
        clearing = np.full(r, np.nan)
        tick = self.scenario.trading.tick
        for k in range(r):  # one small auction per replicate, at an event (not per session)
            sel = rows == k
            if not sel.any() or supply_t[k] == 0:
                continue
            res = sealed_bid_auction(
                price[sel],
                gap[k, cols[sel]],
                supply=float(supply_t[k]),
                reserve_price=reserve,
                tick=tick,
            )
            fills[k, cols[sel]] = np.rint(res.fills).astype(np.int64)
            clearing[k] = res.price
        if fills.sum() > 0:
            self.ledger.sell(vintage, fills, np.nan_to_num(clearing, nan=0.0))
            if period is not None:
                period.allocated += fills
                period.auctioned += fills.sum(axis=1)
        j = max(i, 0)
        self.market["auction_price"][:, j] = np.where(fills.sum(axis=1) > 0, clearing, np.nan)
        self.market["auction_volume"][:, j] += fills.sum(axis=1)

    def _band_trigger(self, i: int, p: _PeriodState, close: FloatArray) -> None:
        """Beijing's band: a sustained price outside it triggers an auction or a buy-back."""
        trig = self.scenario.policy.band_trigger
        assert trig is not None
        assert self.band_state is not None
        upd = update_band_trigger(
            self.band_state,
            close,
            band=(trig.low, trig.high),
            min_days=trig.min_days,
            quantity=int(trig.quantity),
        )
        self.band_state = upd.state
        action = np.asarray(upd.action)
        if (action > 0).any():
            supply = np.where(action > 0, upd.quantity, 0).astype(np.float64)
            self._auction(i, p.last_year, supply, reserve=0.0, period=p)
            self.market["intervention_volume"][:, i] += self.market["auction_volume"][:, i] * (
                action > 0
            )
        if (action < 0).any():
            # long units sell to the government pro rata to their surplus, at the close
            holdings = self.ledger.valid_holdings(p.last_year).astype(np.float64)
            surplus = np.minimum(np.maximum(-self._gap, 0.0), holdings)
            total = surplus.sum(axis=1, keepdims=True)
            want = np.where(action[:, None] < 0, upd.quantity[:, None], 0).astype(np.float64)
            share = np.divide(surplus, total, out=np.zeros_like(surplus), where=total > 0)
            qty = np.minimum(np.floor(want * share), np.floor(holdings)).astype(np.int64)
            if qty.sum() > 0:
                self.ledger.buy_back(qty, close)
                self.market["intervention_volume"][:, i] -= qty.sum(axis=1)

    def _apply_msr(self, p: _PeriodState) -> None:
        """EU market stability reserve at verification: the surplus in circulation (TNAC)
        sets the intake into (or release from) the reserve, which reduces (or raises) the
        supply of the next period's auctions; holdings above the threshold are invalidated."""
        msr = self.scenario.policy.msr
        if msr is None:
            return
        held = self.ledger.allowances.sum(axis=(1, 2)).astype(np.float64)
        owed = np.maximum(p.obligation - p.surrendered - p.offsets_surrendered, 0).sum(axis=1)
        tnac = np.maximum(held - owed, 0.0)
        flow = msr_intake(
            tnac,
            upper=msr.upper,
            lower=msr.lower,
            rate=msr.rate,
            release=msr.release,
            buffer_upper=msr.buffer_upper,
            msr_holdings=self.msr_holdings,
        )
        intake = np.asarray(flow.intake, np.float64)
        release = np.asarray(flow.release, np.float64)
        self.msr_holdings = self.msr_holdings + intake - release
        self.msr_adjustment = self.msr_adjustment - intake + release
        invalid = np.asarray(
            msr_invalidation(self.msr_holdings, threshold=msr.invalidation_threshold), np.float64
        )
        self.msr_holdings = self.msr_holdings - invalid

    def _remainder_auctions(self, env: simpy.Environment, p: _PeriodState) -> Any:
        """Auction the part of the cap not allocated free, in equal parts over the period."""
        spec = p.spec
        remainder = p.expected_auction
        k = spec.auctions_per_period
        times = np.linspace(p.t_allocate, p.t_deadline, k + 2)[1:-1]
        for j, t in enumerate(times):
            yield env.timeout(max(t - env.now, 0.0))
            i = max(int(np.searchsorted(self._session_times, env.now, side="right") - 1), 0)
            # a pending reserve intake (or release) is spread over the auctions still to come
            share = self.msr_adjustment / (k - j)
            self.msr_adjustment = self.msr_adjustment - share
            supply = np.maximum(remainder / k + share, 0.0)
            self._auction(i, p.last_year, supply, spec.auction_reserve_price, period=p)
            self._after_event("auction")

    def _period_caps(self, p: _PeriodState) -> list[float]:
        """The absolute cap of each emission year of ``p`` (``cap`` or ``cap_schedule``)."""
        params = p.spec.allocation_params
        caps = []
        for year in p.years:
            if "cap" in params:
                caps.append(float(params["cap"]))
            elif "cap_schedule" in params:
                sched = params["cap_schedule"]
                caps.append(float(sched[str(year)] if str(year) in sched else sched[year]))
            else:
                raise ValueError(
                    f"periods[{p.spec.name}]: auction_remainder needs allocation_params.cap "
                    "or cap_schedule"
                )
        return caps

    def _period_of_vintage(self, vintage: int) -> _PeriodState | None:
        for p in self.periods:
            if vintage in p.years:
                return p
        return None

    def _explicit_auction(self, env: simpy.Environment, spec: Any) -> Any:
        yield env.timeout(self._t(spec.date) + _T_AUCTION)
        i = max(int(np.searchsorted(self._session_times, env.now, side="right") - 1), 0)
        self._auction(
            i,
            spec.vintage,
            np.full(self.n_replicates, spec.supply),
            spec.reserve_price,
            period=self._period_of_vintage(spec.vintage),
        )
        self._after_event("auction")

    def _issuance_process(self, env: simpy.Environment) -> Any:
        """Post-relaunch projects issue credits after verification, year by year."""
        off = self.scenario.offsets
        projects = synthetic_projects(off.projects, rng=off.project_seed)
        sc = self.scenario
        events: dict[float, FloatArray] = {}
        for year in range(sc.time.start.year - 1, sc.time.end.year + 1):
            seeds = [
                np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, 2, year))
                for s in self.seeds
            ]
            iss = issued_credits(
                projects,
                f"{year}-01-01",
                f"{year + 1}-01-01",
                rng=seeds,
                replicates=self.n_replicates,
                first_issuance=off.first_issuance,
            )
            for j, date in enumerate(np.asarray(iss.issue_date)):
                t = self._t(pd.Timestamp(date).date()) + _T_ALLOCATE
                if t > self._session_times[-1]:
                    continue
                events.setdefault(t, np.zeros(self.n_replicates))
                events[t] += np.asarray(iss.credits)[:, j]
        for t in sorted(events):
            yield env.timeout(max(t - env.now, 0.0))
            self.ledger.issue_offsets(PROJECT_CLASS, events[t].astype(np.int64))

    def _open_offsets(self) -> None:
        off = self.scenario.offsets
        r = self.n_replicates
        if off.legacy_stock > 0:
            self.ledger.issue_offsets(OFFSET_CLASS, np.full(r, int(off.legacy_stock), np.int64))
        self.offsets_open = True

    def _record_trades(self, i: int, orders: Orders, fill: FloatArray, price: FloatArray) -> None:
        done = fill > 0
        r = self.n_replicates
        market = orders.replicate + r * (orders.segment == BLOCK)
        self.trades.append(
            pd.DataFrame(
                {
                    "replicate": orders.replicate[done] + self.first_replicate,
                    "date": self.days[i],
                    "unit": self.units.names[orders.unit[done]],
                    "side": np.where(orders.is_buy[done], "buy", "sell"),
                    "segment": np.where(orders.segment[done] == BLOCK, "block", "listed"),
                    "limit_price": orders.price[done],
                    "price": price[market[done]],
                    "qty": fill[done],
                }
            )
        )

    def _trading_process(self, env: simpy.Environment) -> Any:
        times = self._session_times
        bar: Any = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(times), desc="sessions", unit="day")
        for i, t in enumerate(times):
            yield env.timeout(t - env.now)
            self._session(float(t), i)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()

    def _offset_process(self, env: simpy.Environment) -> Any:
        off = self.scenario.offsets
        t = self._t(off.available_from) if off.available_from is not None else 0.0
        yield env.timeout(t + _T_ALLOCATE)
        self._open_offsets()

    # ------------------------------------------------------------------ invariants
    def _after_event(self, what: str) -> None:
        if not self.check_invariants:
            return
        try:
            self.ledger.check()
        except Exception as exc:  # re-raise with context
            raise InvariantError(f"ledger check failed after {what}: {exc}") from exc
        for p in self.periods:
            if p.obligation.size and p.verified_known:
                cap = np.floor(p.spec.offset_limit_share * p.obligation)
                if (p.offsets_surrendered > cap + 1e-9).any():
                    raise InvariantError(f"offsets above the cap in period {p.spec.name!r}")

    def _check_fills(
        self, orders: Orders, fill: FloatArray, price: FloatArray, lo: FloatArray, hi: FloatArray
    ) -> None:
        if (fill < 0).any() or (fill > orders.qty + 1e-9).any():
            raise InvariantError("a fill lies outside [0, order quantity]")
        traded = ~np.isnan(price)
        tol = self.scenario.trading.tick * 1e-6
        if ((price[traded] < lo[traded] - tol) | (price[traded] > hi[traded] + tol)).any():
            raise InvariantError("a clearing price lies outside its band")

    # ------------------------------------------------------------------ run
    def run(self) -> Result:
        """Run the whole schedule once and return the :class:`Result`.

        Raises
        ------
        MemoryError
            Before any work, if the run's estimated peak memory exceeds 80% of the memory
            available (:func:`carbonsim.engine.memory.check_memory`); the message says how
            many replicates fit and how to split the run.
        """
        if self._ran:
            raise RuntimeError("a Simulation runs once; create a new one to run again")
        self._ran = True
        check_memory(self.scenario, self.n_replicates)
        self._setup()
        env = simpy.Environment()
        self._env = env
        # whole days since the start (floored, as Timedelta.days), without a Timestamp
        # per session
        whole_days = (self.days - self.start) // pd.Timedelta(days=1)
        self._session_times = np.asarray(whole_days, dtype=np.float64) + _T_SESSION
        if self.scenario.offsets.enabled:
            env.process(self._offset_process(env))
        for p in self.periods:
            env.process(self._period_process(env, p))
            if p.spec.auction_remainder:
                env.process(self._remainder_auctions(env, p))
        for spec in self.scenario.auctions:
            env.process(self._explicit_auction(env, spec))
        if self.scenario.offsets.projects > 0:
            env.process(self._issuance_process(env))
        env.process(self._trading_process(env))
        horizon = max([self._session_times[-1], *(p.t_deadline for p in self.periods)]) + 1.0
        env.run(until=horizon)
        return self._result()

    def _unit_table(self, reps: range) -> pd.DataFrame:
        """One row per (replicate, unit, compliance year) of the periods done, ordered by
        replicate, then year, then unit, indexed ``(replicate, unit, year)``.

        The index is built from its levels and codes (the unit names factorized once for
        all periods) rather than by concatenating one frame per period and sorting.
        """
        done = sorted((p for p in self.periods if p.done), key=lambda p: p.last_year)
        names = ["replicate", "unit", "year"]
        if not done:
            return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], [], []], names=names))
        r, n, n_p = len(reps), self.units.n_units, len(done)
        unit_codes, unit_level = pd.factorize(self.units.names, sort=True)
        years, year_codes = np.unique([p.last_year for p in done], return_inverse=True)
        year_level = pd.Index(years)
        levels: list[Any] = [pd.Index(np.asarray(reps, np.int64)), unit_level, year_level]
        codes: list[Any] = [
            np.repeat(np.arange(r), n_p * n),
            np.tile(unit_codes, r * n_p),
            np.tile(np.repeat(year_codes, n), r),
        ]
        index = pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=False)
        data: dict[str, Any] = {"sector": np.tile(self.units.sector_labels(), r * n_p)}
        for key in done[0].rows:
            # (P, R, N) -> rows of replicate 0 (each period in turn), then replicate 1, ...
            stacked = np.stack([np.asarray(p.rows[key], np.float64) for p in done])
            data[key] = stacked.reshape(n_p, r, n).transpose(1, 0, 2).reshape(-1)
        return pd.DataFrame(data, index=index)

    def _result(self) -> Result:
        r = self.n_replicates
        reps = range(self.first_replicate, self.first_replicate + r)
        idx = pd.MultiIndex.from_product([reps, self.days], names=["replicate", "date"])
        market = pd.DataFrame({k: v.reshape(-1) for k, v in self.market.items()}, index=idx)
        units = self._unit_table(reps)
        trades = None
        if self.record_trades:
            trades = (
                pd.concat(self.trades, ignore_index=True)
                if self.trades
                else pd.DataFrame(
                    columns=[
                        "replicate",
                        "date",
                        "unit",
                        "side",
                        "segment",
                        "limit_price",
                        "price",
                        "qty",
                    ]
                )
            )
        provenance = {
            "carbonsim_version": __version__,
            "scenario": self.scenario.name,
            "scenario_hash": self.scenario.content_hash(),
            "seed": self.seed if isinstance(self.seed, (int, type(None))) else str(self.seed),
            "replicates": r,
            "first_replicate": self.first_replicate,
            "units": self.units.n_units,
        }
        return Result(market=market, units=units, trades=trades, provenance=provenance)


def simulate(
    scenario: Scenario | str,
    *,
    seed: SeedLike = 0,
    replicates: int = 1,
    first_replicate: int = 0,
    record_trades: bool = False,
    check_invariants: bool | None = None,
    progress: bool = False,
    backend: str | None = None,
) -> Result:
    """Run a scenario and return its :class:`~carbonsim.results.Result`.

    Parameters
    ----------
    scenario : Scenario or str
        A scenario, a built-in scenario name or the path of a TOML file.
    seed : int or SeedSequence
        Root seed. The same seed gives bit-identical results.
    replicates : int
        Monte Carlo replicates advanced in lockstep (one batched clearing call per session).
    first_replicate : int
        Number of the first replicate computed (see :class:`Simulation`).
    record_trades, check_invariants, progress : bool
        See :class:`Simulation`.
    backend : None
        Deprecated and ignored (see :class:`Simulation`).

    Examples
    --------
    >>> import carbonsim as cs
    >>> res = cs.simulate("china-national-tiny", seed=0)
    >>> res.market.index.names
    FrozenList(['replicate', 'date'])
    """
    check_deprecated_backend(backend)
    if not isinstance(scenario, Scenario):
        from carbonsim.scenario.loader import load_scenario

        scenario = load_scenario(scenario)
    sim = Simulation(
        scenario,
        seed=seed,
        replicates=replicates,
        first_replicate=first_replicate,
        record_trades=record_trades,
        check_invariants=check_invariants,
        progress=progress,
    )
    return sim.run()
