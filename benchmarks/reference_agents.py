"""Object-per-agent reference implementation of carbonsim's market model, for benchmarks.

carbonsim keeps its state in numpy arrays (units as rows, a leading replicate axis) and
clears every trading session with one batched call auction. This module implements **the
same model for one replicate** the way agent-based models are usually written (in the
style of a Mesa model): one Python object per covered unit with its own registry account
and methods called every session, a :class:`Market` that activates the units in stages
(compliance orders, then noise orders), collects :class:`Order` objects, clears them with
a pure-Python sort-based call auction and settles the fills unit by unit, and a small
discrete-event :class:`Schedule` for allocation, verification and deadlines. It exists to
measure what the vectorized engine buys (``benchmarks/bench_engine.py``) and to check,
in ``tests/regression/test_reference_agents.py``, that both compute the same thing.

Inputs taken from carbonsim (:func:`engine_inputs`): the units table
(:func:`carbonsim.engine.simulation.build_units`), the trading calendar, the activity draw
of the replicate and the allocation results (final and expected allocation per unit and
year), computed with the engine's own set-up calls. Everything that happens during the
run is re-implemented here per unit: expectations (obligation certainty, the adaptive and
fundamental prices with banking, solved by bisection over the units' MAC curves), order
generation of the ``compliance`` and ``noise`` strategies, exchange routing (sells within
holdings, segment sizes, price bands, marketable repricing), the call auction (maximum
volume, minimum imbalance, nearest to the previous close, pro-rata rationing in whole
tonnes), settlement (oldest vintage first, pro-rata vintage split with a north-west
corner pass), the offset market, pre-allocation, verification and true-up with the gap
cap and the gas exemption, staged deadlines, surrender (offsets first within the cap),
penalties with deductions from the next allocation.

Random numbers: the engine draws from :class:`carbonsim._random.BatchRandom`, whose element
``j`` of draw ``c`` for a replicate with key ``k`` is a pure function of ``(k, c, j)``. The
market here advances the same draw counter in the same order and each unit computes its
own element ``j = unit index`` with the same SplitMix64 formula (:class:`CounterStream`),
so both models see the same numbers. Who acts in a session is one lottery per strategy
(:meth:`CounterStream.acting_units`, the engine's ``BatchRandom.bernoulli_cells``): the
draw's elements ``0, 1, 2, ...`` are turned into the smallest tickets of ``D = 4**h >= N``
slots, smallest first (Rényi's representation of uniform order statistics), until one
passes the strategy's rate, and the ticket of rank ``k`` goes to slot ``pi(k)`` of a keyed
Feistel permutation (slots from ``N`` on are blank), so element ``j`` is *not* unit
``j``'s own number there; the acting units' other numbers (normals, uniforms) are again
element ``j = unit index`` of the later draws. Transcendental functions are numpy's
scalar ``exp`` and ``log`` and scipy's ``ndtri`` (the ones the engine applies
element-wise).

Sums of floats over units (the fundamental price's shortage and abatement totals, the
mean close of the 2024 interim penalty) are ``math.fsum``: the correctly rounded sum,
which depends on no summation order, so the reference states the rule and not one way
of computing it. (The engine sums arrays in numpy's pairwise order, within about
log2(n) ulps of the exact sum; a plain ``sum`` would add an error growing with the
number of units, in an order that is an accident of the loop.) Sums of whole tonnes are
Python integers, exact. The reference therefore agrees with the engine to a relative
``1e-9`` on the market table (price, VWAP, volumes, turnover, bands, offset price and
volume, expected and fundamental price) and on the units' float outcomes (abatement,
its cost, penalties), and exactly on the integer ledger quantities (allocation,
verified emissions, surrenders, shortfall, purchases, sales, bank);
``tests/regression/test_reference_agents.py`` checks this. In practice most runs are
identical; the interim penalty's mean close differs in the last bit on some seeds. A
last-bit difference could in principle flip a discontinuous rule (a tick's rounding, a
``floor`` of tonnes, a bisection step on a flat stretch of the abatement curves), which
the test would report as a divergence far beyond ``1e-9``.

Scope: the rules the built-in China national scenarios use, plus price floors and
ceilings, scenarios without abatement and the three registered penalty regimes (with the
EU rule's carried obligation). Government auctions, the market stability reserve, the
Beijing band trigger, post-relaunch offset projects and strategies other than
``compliance`` and ``noise`` and the 2024-25 banking limit (``banking_limit``) are not
implemented; :func:`run_reference` refuses scenarios that use them. The 2021-22 borrowing
rule (``borrowing``) is.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from carbonsim._random import replicate_seeds
from carbonsim.engine.calendar import trading_days
from carbonsim.engine.recorder import TRADING_COLUMNS
from carbonsim.engine.simulation import build_units
from carbonsim.market.allocation import AllocationInputs, allocate
from carbonsim.market.units import MAC_FORMS, draw_activity
from carbonsim.scenario.loader import load_scenario
from carbonsim.scenario.schema import PeriodSpec, Scenario

__all__ = [
    "CounterStream",
    "EngineInputs",
    "Market",
    "Order",
    "ReferenceResult",
    "Schedule",
    "Unit",
    "call_auction",
    "engine_inputs",
    "run_reference",
]

# times of day of the events, as in carbonsim.engine.simulation
T_ALLOCATE, T_VERIFY, T_SESSION, T_DEADLINE = 0.1, 0.2, 0.5, 0.9
OFFSET_CLASS = "ccer"
PROJECT_CLASS = "ccer_new"
OFFSET_LOTS = 20  # project owners' offers in one offset session
LISTED, BLOCK = 0, 1
MAX_DENOMINATOR = 1_000_000  # shares as exact fractions (carbonsim.market.compliance)
SNAP_TOL = 1e-9  # tolerance of band snapping (carbonsim.clearing.ticks)
_LINEAR = MAC_FORMS.index("linear")

MARKET_COLUMNS = TRADING_COLUMNS  # the engine's market columns the reference models
UNIT_COLUMNS = (
    "allocated",
    "emissions",
    "abated",
    "abatement_cost",
    "surrendered",
    "offsets_surrendered",
    "shortfall",
    "penalty",
    "bought",
    "sold",
    "banked",
    "so2_avoided",
    "nox_avoided",
    "pm_avoided",
)


# ---------------------------------------------------------------------------- numerics


def _exp(x: float) -> float:
    """``exp`` as numpy computes it element-wise (it may differ from ``math.exp`` by 1 ulp)."""
    return float(np.exp(x))


def _mul_floor(qty: int, share: float) -> int:
    """``floor(qty x share)`` exactly, the share as a fraction (``_mul_floor`` of the engine)."""
    f = Fraction(share).limit_denominator(MAX_DENOMINATOR)
    return (qty * f.numerator) // f.denominator


def _decimal_scale(tick: float) -> tuple[float, float]:
    for d in range(16):
        scaled = tick * 10.0**d
        k = round(scaled)
        if k >= 1 and abs(scaled - k) <= SNAP_TOL * scaled:
            return float(k), 10.0**d
    return tick, 1.0


def _snap_up(value: float, tick: float) -> int:
    x = value / tick
    return math.ceil(x - SNAP_TOL * max(1.0, abs(x)))


def _snap_down(value: float, tick: float) -> int:
    x = value / tick
    return math.floor(x + SNAP_TOL * max(1.0, abs(x)))


# ---------------------------------------------------------------------------- randomness

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_INV_2_53 = 1.0 / 9007199254740992.0


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


#: Key salt and round keys of the acting-unit permutation (``carbonsim._random``).
_PERMUTATION_SALT = 0xD1B54A32D192ED03
_ROUND_OFFSETS = [(_GOLDEN * (k + 1)) & _MASK for k in range(4)]


def _log(x: float) -> float:
    """``log`` as numpy computes it element-wise.

    The engine takes the log of a whole round of uniforms with ``np.log``, whose SIMD loop
    (AVX-512 on some CPUs) differs from the C library's ``math.log`` in the last bit for a
    fraction of a percent of arguments; a 0-d call runs the same loop. A last-bit difference
    in a spacing can move a ticket across the rate and change who acts.
    """
    return float(np.log(x))


def _grid_shape(n: int) -> tuple[int, int]:
    """The engine's lottery grid: sides ``(a, b)``, each at least 16, of the smallest
    near-square grid with ``a * b >= n`` slots."""
    a = max(16, math.isqrt(max(n - 1, 0)) + 1)
    return a, max(16, -(-n // a))


def _permute_grid(x: int, key: int, a: int, b: int) -> int:
    """The engine's Feistel network on the grid: slot ``x = x0 * b + x1``; four rounds add
    to ``x0`` (mod ``a``) and to ``x1`` (mod ``b``) in turn a hash of the other half: a
    multiply-xorshift-multiply hash of ``half ^ round key``, its top 32 bits scaled to
    ``[0, m)``. A permutation of ``range(a * b)`` for each ``key``."""
    halves = [x // b, x % b]
    sides = (a, b)
    for k, offset in enumerate(_ROUND_OFFSETS):
        to = k % 2
        m = sides[to]
        f = ((key + offset) & _MASK) ^ halves[1 - to]
        f = (f * _M1) & _MASK
        f ^= f >> 32
        f = ((f * _M2) & _MASK) >> 32
        f = (f * m) >> 32
        f += halves[to]
        halves[to] = f - m if f >= m else f
    return halves[0] * b + halves[1]


class CounterStream:
    """One replicate's counter-based random numbers, drawn element by element.

    :meth:`next_draw` advances the draw counter (one call per vectorized draw of the
    engine, in the same order) and returns the draw's base; :meth:`uniform` and
    :meth:`normal` give element ``j`` of that draw, which is what unit ``j`` receives from
    :class:`carbonsim._random.BatchRandom`; :meth:`acting_units` turns a draw into the
    units that act in a session.
    """

    def __init__(self, key: int) -> None:
        self.key = key
        self.counter = 0

    def next_draw(self) -> int:
        """Base of the next draw (``mix64(key ^ mix64(counter))``); advances the counter."""
        base = _mix64(self.key ^ _mix64(self.counter))
        self.counter += 1
        return base

    @staticmethod
    def uniform(base: int, j: int) -> float:
        """Element ``j`` of a draw, uniform on (0, 1)."""
        bits = _mix64((base + _GOLDEN * (j + 1)) & _MASK)
        return (float(bits >> 11) + 0.5) * _INV_2_53

    @staticmethod
    def normal(base: int, j: int) -> float:
        """Element ``j`` of a draw, standard normal (inverse CDF of :meth:`uniform`)."""
        return float(ndtri(CounterStream.uniform(base, j)))

    @staticmethod
    def acting_units(base: int, n: int, p: float) -> list[int]:
        """The units among ``0..n-1`` that act, each with probability ``p``, in unit order.

        A lottery over the ``D = a b`` slots of a near-square grid (:func:`_grid_shape`): unit
        ``j`` holds slot ``j``, slots ``n..D-1`` are blank, every slot gets a uniform ticket
        and the slots whose ticket is below ``p`` act. The tickets are made smallest first:
        with ``E_i = -log u_i`` (``u_i`` element ``i`` of the draw ``base``), the ``k``-th
        smallest of ``D`` uniform tickets is ``1 - exp(-sum_{i<=k} E_i / (D - i))``, below
        ``p`` exactly when the sum is below ``-log1p(-p)``; ranks are made until one is not.
        The ticket of rank ``k`` lands on slot ``_permute_grid(k, mix64(base ^ salt), a, b)``.
        This is ``BatchRandom.bernoulli_cells`` for one replicate, with the same float
        operations in the same order: ranks come in rounds of ``width``, the spacings of a
        round are summed in order (``np.cumsum``) and then the earlier rounds' total added.
        """
        if not p > 0.0 or n == 0:  # also nan
            return []
        if p >= 1.0:
            return list(range(n))
        threshold = -math.log1p(-p)
        side_a, side_b = _grid_shape(n)
        slots = side_a * side_b
        mean = slots * p
        width = int(mean + 3.0 * math.sqrt(mean) + 4.0)
        key = _mix64(base ^ _PERMUTATION_SALT)
        acting: list[int] = []
        total = 0.0  # the earlier rounds' sum of spacings
        for start in range(0, slots, width):
            running = 0.0
            for k in range(start, min(start + width, slots)):
                running += _log(CounterStream.uniform(base, k)) / float(k - slots)
                if not running + total < threshold:
                    return sorted(acting)
                slot = _permute_grid(k, key, side_a, side_b)
                if slot < n:
                    acting.append(slot)
            total += running
        return sorted(acting)


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PeriodInputs:
    """Per-unit inputs of one compliance period, as plain Python lists.

    ``unabated[y][i]`` realized emissions of unit ``i`` in the period's year ``y``, t;
    ``final_allocation[y][i]`` its final free allocation (whole tonnes, as float);
    ``expected_allocation[i]`` the allocation it expects over the period, t.
    """

    spec: PeriodSpec
    unabated: list[list[float]]
    final_allocation: list[list[float]]
    expected_allocation: list[float]


@dataclass(frozen=True)
class EngineInputs:
    """What the reference takes from carbonsim: units, calendar, activity and allocation."""

    scenario: Scenario
    replicate: int
    key: int
    names: list[str]
    size: list[float]
    is_gas: list[bool]
    mac_linear: list[bool]
    mac_slope: list[float]
    mac_max_share: list[float]
    mac_step_cost: list[list[float]]
    mac_step_share: list[list[float]]
    pollutant_factors: list[list[float]]
    sectors: list[str]
    days: pd.DatetimeIndex
    periods: list[PeriodInputs]


def engine_inputs(scenario: Scenario | str, seed: int = 0, replicate: int = 0) -> EngineInputs:
    """Units, calendar, activity draw and allocations of replicate ``replicate`` of ``seed``.

    The same calls as the engine's set-up (``Simulation._setup`` and ``_make_period``),
    converted to per-unit Python lists.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    units = build_units(sc)
    s = replicate_seeds(seed, replicate + 1)[replicate]
    key = int(s.generate_state(1, np.uint64)[0])
    all_years = sorted({y for p in sc.periods for y in p.emission_years})
    first, last = all_years[0], all_years[-1]
    draw = draw_activity(
        units,
        years=np.arange(last - first + 1),
        rng=np.random.default_rng(np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, 1))),
    )
    emissions = draw.emissions()
    periods = []
    for spec in sc.periods:
        yi = [y - first for y in spec.emission_years]
        final = []
        for year, idx in zip(spec.emission_years, yi, strict=True):
            inputs = AllocationInputs.from_draw(
                draw, year, index=idx, parameters=spec.allocation_params
            )
            final.append(np.floor(allocate(spec.allocation_rule, inputs)[0]).tolist())
        expected = np.zeros(units.n_units)
        for year in spec.emission_years:
            ref = AllocationInputs.from_units(units, year, parameters=spec.allocation_params)
            expected = expected + allocate(spec.allocation_rule, ref)
        periods.append(
            PeriodInputs(
                spec=spec,
                unabated=[emissions[0, i, :].tolist() for i in yi],
                final_allocation=final,
                expected_allocation=expected.tolist(),
            )
        )
    return EngineInputs(
        scenario=sc,
        replicate=replicate,
        key=key,
        names=[str(n) for n in units.names],
        size=units.baseline_emissions().tolist(),
        is_gas=units.of_subtype("gas").tolist(),
        mac_linear=(units.mac_form == _LINEAR).tolist(),
        mac_slope=units.mac_slope.tolist(),
        mac_max_share=units.mac_max_share.tolist(),
        mac_step_cost=units.mac_step_cost.tolist(),
        mac_step_share=units.mac_step_share.tolist(),
        pollutant_factors=units.pollutant_factors.tolist(),
        sectors=[str(x) for x in units.sector_labels()],
        days=trading_days(sc.time.start, sc.time.end, sc.time.calendar),
        periods=periods,
    )


# ---------------------------------------------------------------------------- agents


class Order:
    """One order: the submitting unit (None for project owners), side, price, quantity, segment."""

    __slots__ = ("fill", "is_buy", "price", "qty", "segment", "tick", "unit")

    def __init__(
        self, unit: Unit | None, is_buy: bool, price: float, qty: float, segment: int
    ) -> None:
        self.unit = unit
        self.is_buy = is_buy
        self.price = price
        self.qty = qty
        self.segment = segment
        self.tick = 0
        self.fill = 0.0


class UnitCycle:
    """A unit's state in one compliance period."""

    __slots__ = (
        "abated",
        "abatement_cost",
        "actual",
        "allocated",
        "bought",
        "expected_allocation",
        "final_allocation",
        "final_total",
        "obligation",
        "offsets_surrendered",
        "prior_obligation",
        "row",
        "sold",
        "stage",
        "surrendered",
        "unabated",
        "verified",
    )

    def __init__(
        self,
        unabated: list[float],
        final_allocation: list[float],
        expected_allocation: float,
        prior_obligation: float,
    ) -> None:
        self.unabated = unabated
        self.final_allocation = final_allocation
        total = 0.0
        for a in final_allocation:
            total += a
        self.final_total = total
        self.expected_allocation = expected_allocation
        self.prior_obligation = prior_obligation
        self.abated: list[float] | None = None
        self.abatement_cost: list[float] = []
        actual = 0.0
        for e in unabated:
            actual += e
        self.actual = actual  # the period's emissions, t (after abatement once decided)
        self.allocated = 0.0
        self.verified = 0
        self.obligation = 0
        self.surrendered = 0
        self.offsets_surrendered = 0
        self.bought = 0.0
        self.sold = 0.0
        self.stage = 0
        self.row: dict[str, float] = {}

    def decide_abatement(self, abated: list[float], cost: list[float]) -> None:
        """Record the abatement decided per year and the resulting emissions."""
        self.abated = abated
        self.abatement_cost = cost
        actual = 0.0
        for e, a in zip(self.unabated, abated, strict=True):
            actual += e - a
        self.actual = actual


class Unit:
    """A covered unit: its MAC curve, its registry account and its decisions.

    The account holds allowances by vintage position (``allowances[v]``, whole tonnes),
    offset credits by class, cash, and pending penalty deductions by vintage. Every
    session the unit forms its expected compliance need (:meth:`form_expectation`) and
    each strategy asks it for at most one order.
    """

    def __init__(self, index: int, inputs: EngineInputs, n_vintages: int, n_classes: int) -> None:
        i = index
        self.index = index
        self.name = inputs.names[i]
        self.size = inputs.size[i]
        self.is_gas = inputs.is_gas[i]
        self.linear = inputs.mac_linear[i]
        self.slope = inputs.mac_slope[i]
        self.max_share = inputs.mac_max_share[i]
        self.step_cost = inputs.mac_step_cost[i]
        self.step_share = inputs.mac_step_share[i]
        self.pollutant_factors = inputs.pollutant_factors[i]
        self.sector = inputs.sectors[i]
        self.allowances = [0] * n_vintages
        self.offsets = [0] * n_classes
        self.pending = [0] * n_vintages
        self.borrowed = [0] * n_vintages  # advances on later vintages, repaid first
        self.cash = 0.0
        self.carried = 0
        self.cycles = [
            UnitCycle(
                [e[i] for e in p.unabated],
                [a[i] for a in p.final_allocation],
                p.expected_allocation[i],
                self.size * len(p.spec.emission_years),
            )
            for p in inputs.periods
        ]
        # per-session view
        self.holdings = 0.0
        self.gap = 0.0
        self.obligation_estimate = 0.0
        self.offered = 0.0

    # -- abatement
    def abatement_at_price(self, price: float, emissions: float) -> float:
        """Tonnes abated at ``price``: every tonne whose marginal cost is at most the price."""
        if self.linear:
            return min(max(price, 0.0) / self.slope, self.max_share * emissions)
        total = 0.0
        for cost, share in zip(self.step_cost, self.step_share, strict=True):
            total += emissions * share if cost <= price else 0.0
        return total

    def abatement_cost(self, quantity: float, emissions: float) -> float:
        """Integral of the MAC curve from 0 to ``quantity``, currency."""
        if self.linear:
            q = min(quantity, self.max_share * emissions)
            return 0.5 * self.slope * (q * q)
        potential = 0.0
        for share in self.step_share:
            potential += share
        quantity = min(quantity, potential * emissions)
        total = 0.0
        cum = 0.0
        for cost, share in zip(self.step_cost, self.step_share, strict=True):
            pot = emissions * share
            cum += pot
            before = cum - pot
            total += cost * min(max(quantity - before, 0.0), pot)
        return total

    # -- account
    def valid_holdings(self, last_vpos: int) -> int:
        """Allowances of vintages valid for the compliance year (vintage <= year)."""
        return sum(self.allowances[: last_vpos + 1])

    def receive_allocation(self, vpos: int, qty: int) -> None:
        """Allocation of vintage ``vpos``, net of borrowing to repay and then pending
        deductions (each oldest first)."""
        rem = qty
        for v in range(vpos + 1):
            take = min(rem, max(self.borrowed[v], 0))
            self.borrowed[v] -= take
            rem -= take
        for v in range(vpos + 1):
            take = min(rem, max(self.pending[v], 0))
            self.pending[v] -= take
            rem -= take
        self.allowances[vpos] += rem

    def deliver_oldest(self, qty: int, vintages: range) -> list[int]:
        """Take ``qty`` allowances, oldest vintage first; returns the tonnes per vintage."""
        take = [0] * len(self.allowances)
        rem = qty
        for v in vintages:
            t = min(rem, max(self.allowances[v], 0))
            take[v] = t
            rem -= t
        if rem:
            raise ValueError(f"unit {self.name!r} must deliver {qty} t but is short {rem} t")
        for v in vintages:
            self.allowances[v] -= take[v]
        return take

    # -- expectations
    def form_expectation(
        self, k: int, certainty: float, verified: bool, offset_share: float, last_vpos: int
    ) -> None:
        """Expected allowances still needed at the deadline, and the gap to holdings."""
        cy = self.cycles[k]
        holdings = float(self.valid_holdings(last_vpos))
        if verified:
            ob = float(cy.obligation - cy.surrendered - cy.offsets_surrendered)
            future = 0.0
        else:
            c = certainty
            ob = (1.0 - c) * cy.prior_obligation + c * cy.actual
            expected_final = (1.0 - c) * cy.expected_allocation + c * cy.final_total
            future = max(expected_final - cy.allocated, 0.0)
        offsets_held = float(sum(self.offsets))
        offset_use = min(offsets_held, offset_share * max(ob, 0.0))
        need = max(ob - offset_use, 0.0) - future
        self.obligation_estimate = max(ob, 0.0)
        self.holdings = holdings
        self.gap = need - holdings

    def no_expectation(self) -> None:
        """Outside every compliance period: nothing held for compliance, nothing needed."""
        self.holdings = 0.0
        self.gap = 0.0


# ---------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class SessionView:
    """The market-wide part of a session's view (the unit-specific part lives on the unit)."""

    sessions_to_deadline: int
    last_close: float
    expected_price: float
    block_threshold: float


class ComplianceRule:
    """Trading toward the expected compliance position (``carbonsim.agents.compliance``)."""

    draws = 3

    def __init__(
        self,
        base_rate: float = 0.02,
        deadline_rate: float = 0.25,
        urgency_horizon: float = 40.0,
        cover_share: float = 0.5,
        bank_share: float = 0.3,
        price_weight: float = 0.7,
        spread: float = 0.01,
        price_sigma: float = 0.03,
        urgency_premium: float = 0.03,
        block_share: float = 0.6,
        min_order: float = 1000.0,
    ) -> None:
        self.base_rate = base_rate
        self.deadline_rate = deadline_rate
        self.urgency_horizon = urgency_horizon
        self.cover_share = cover_share
        self.bank_share = bank_share
        self.price_weight = price_weight
        self.spread = spread
        self.price_sigma = price_sigma
        self.urgency_premium = urgency_premium
        self.block_share = block_share
        self.min_order = min_order

    def prepare(self, view: SessionView) -> dict[str, float]:
        """Session constants shared by all units."""
        tau = view.sessions_to_deadline
        effect = _exp(-max(tau, 0) / self.urgency_horizon)
        return {
            "effect": effect,
            "rate": min(1.0, self.base_rate + self.deadline_rate * effect),  # hazard
            "cover": self.cover_share + (1.0 - self.cover_share) * effect,
            "reference": self.price_weight * view.last_close
            + (1.0 - self.price_weight) * view.expected_price,
            "last": 1.0 if tau == 0 else 0.0,
        }

    def order(
        self, unit: Unit, view: SessionView, const: dict[str, float], bases: list[int]
    ) -> Order | None:
        """The order of a unit that acts this session, or None."""
        j = unit.index
        gap = unit.gap
        short = gap > 0
        cover = const["cover"]
        if short:
            want = cover * gap
            min_order = 1.0 if const["last"] else self.min_order
        else:
            want = min(cover * (1.0 - self.bank_share) * (-gap), unit.holdings)
            min_order = self.min_order
        qty = float(math.floor(max(want, 0.0)))
        if not qty >= max(min_order, 1.0):
            return None
        z = CounterStream.normal(bases[1], j)
        u_block = CounterStream.uniform(bases[2], j)
        effect = const["effect"]
        log_markup = self.spread + self.urgency_premium * effect if short else -self.spread
        price = const["reference"] * _exp(log_markup + self.price_sigma * z)
        block = qty >= view.block_threshold and u_block < self.block_share
        return Order(unit, short, price, qty, BLOCK if block else LISTED)


class NoiseRule:
    """Random liquidity orders around the last close (``carbonsim.agents.noise``)."""

    draws = 4

    def __init__(
        self,
        activity: float = 0.005,
        size_share: float = 0.01,
        size_sigma: float = 1.0,
        price_sigma: float = 0.02,
        min_order: float = 100.0,
    ) -> None:
        self.activity = activity
        self.size_share = size_share
        self.size_sigma = size_sigma
        self.price_sigma = price_sigma
        self.min_order = min_order

    def prepare(self, view: SessionView) -> dict[str, float]:
        """Session constants shared by all units."""
        return {"rate": self.activity, "last_close": view.last_close}

    def order(
        self, unit: Unit, view: SessionView, const: dict[str, float], bases: list[int]
    ) -> Order | None:
        """The order of a unit that acts this session, or None."""
        j = unit.index
        is_buy = CounterStream.uniform(bases[1], j) < 0.5
        size = unit.size * self.size_share
        qty = float(math.floor(size * _exp(self.size_sigma * CounterStream.normal(bases[2], j))))
        if not is_buy:
            qty = min(qty, float(math.floor(unit.holdings)))
        price = const["last_close"] * _exp(self.price_sigma * CounterStream.normal(bases[3], j))
        if not qty >= max(self.min_order, 1.0):
            return None
        return Order(unit, is_buy, price, qty, LISTED)


RULES: dict[str, Callable[..., ComplianceRule | NoiseRule]] = {
    "compliance": ComplianceRule,
    "noise": NoiseRule,
}


# ---------------------------------------------------------------------------- clearing


@dataclass
class AuctionOutcome:
    """Result of one call auction: price in ticks (None without a trade) and volume, t."""

    price_tick: int | None
    volume: float


def _ration(group: list[Order], amount: float, total: float) -> None:
    """Fill the orders at the clearing price: pro rata, whole tonnes by largest remainder."""
    if not group:
        return
    if amount >= total:
        for o in group:
            o.fill = o.qty
        return
    if amount <= 0.0:
        return
    qty = [o.qty for o in group]
    whole = (
        all(q == round(q) for q in qty)
        and amount == round(amount)
        and max(qty) * amount < float(2**62)
        and total < float(2**53)
        and amount <= total
    )
    if not whole:
        share = amount / total if total > 0 else 0.0
        for o in group:
            o.fill = o.qty * min(share, 1.0)
        return
    qi = [int(q) for q in qty]
    ai = int(amount)
    ti = max(sum(qi), 1)
    base = [ai * q // ti for q in qi]
    rem = [ai * q - b * ti for q, b in zip(qi, base, strict=True)]
    left = ai - sum(base)
    ranked = sorted(range(len(group)), key=lambda k: (-rem[k], k))
    for rank, k in enumerate(ranked):
        group[k].fill = float(base[k] + (1 if rank < left else 0))


def call_auction(
    orders: list[Order],
    *,
    reference_tick: int | None = None,
    band: tuple[int, int] | None = None,
) -> AuctionOutcome:
    """Clear a uniform-price call auction (the rules of ``carbonsim.clearing.call_auction``).

    Straightforward and sort-based: quantities are aggregated per tick, the distinct ticks
    sorted, demand ``D`` (bids at or above) and supply ``S`` (asks at or below) accumulated,
    and the candidates scanned: every order tick and every run of empty ticks between two
    order ticks. The price maximises volume with strict price priority achievable, then
    minimises ``|D - S|``, then is the tick nearest to ``reference_tick`` (the lower of two),
    or without a reference the lower median of the tied ticks. Orders priced outside
    ``band`` (ticks, inclusive) are rejected. Sets ``order.fill`` on every order (``order.tick``
    must be set).
    """
    for o in orders:
        o.fill = 0.0
    live = orders if band is None else [o for o in orders if band[0] <= o.tick <= band[1]]
    bid_at: dict[int, float] = {}
    ask_at: dict[int, float] = {}
    for o in live:
        side = bid_at if o.is_buy else ask_at
        side[o.tick] = side.get(o.tick, 0.0) + o.qty
    ticks = sorted(bid_at.keys() | ask_at.keys())
    n = len(ticks)
    if n == 0:
        return AuctionOutcome(None, 0.0)
    demand = [0.0] * n
    supply = [0.0] * n
    acc = 0.0
    for i in range(n - 1, -1, -1):
        acc += bid_at.get(ticks[i], 0.0)
        demand[i] = acc
    acc = 0.0
    for i in range(n):
        acc += ask_at.get(ticks[i], 0.0)
        supply[i] = acc
    # candidates: (lo, hi, count, D, S, D strictly above, S strictly below)
    cands: list[tuple[int, int, int, float, float, float, float]] = []
    for i, t in enumerate(ticks):
        d, s = demand[i], supply[i]
        d_next = demand[i + 1] if i + 1 < n else 0.0
        s_prev = supply[i - 1] if i > 0 else 0.0
        if d_next <= s and s_prev <= d and d > 0.0 and s > 0.0:
            cands.append((t, t, 1, d, s, d_next, s_prev))
        if i + 1 < n and ticks[i + 1] - t >= 2 and d_next == s and s > 0.0:
            # empty ticks between two order ticks: D and S are those of the neighbours
            cands.append((t + 1, ticks[i + 1] - 1, ticks[i + 1] - t - 1, d_next, s, d_next, s))
    if not cands:
        return AuctionOutcome(None, 0.0)
    best = min(abs(c[3] - c[4]) for c in cands)
    tied = [c for c in cands if abs(c[3] - c[4]) == best]
    if reference_tick is not None:
        ref = reference_tick
        dist = [max(c[0] - ref, ref - c[1], 0) for c in tied]
        d_min = min(dist)
        below = ref - d_min
        has_below = any(
            dd == d_min and c[0] <= below <= c[1] for c, dd in zip(tied, dist, strict=True)
        )
        price = below if has_below else ref + d_min
    else:
        j = (sum(c[2] for c in tied) - 1) // 2
        before = 0
        price = tied[0][0]
        for c in tied:
            if before <= j < before + c[2]:
                price = c[0] + j - before
                break
            before += c[2]
    cand = next(c for c in tied if c[0] <= price <= c[1])
    _, _, _, d_at, s_at, d_above, s_below = cand
    volume = min(d_at, s_at)
    bids_at: list[Order] = []
    asks_at: list[Order] = []
    for o in live:
        if o.is_buy:
            if o.tick > price:
                o.fill = o.qty
            elif o.tick == price:
                bids_at.append(o)
        elif o.tick < price:
            o.fill = o.qty
        elif o.tick == price:
            asks_at.append(o)
    _ration(bids_at, volume - d_above, d_at - d_above)
    _ration(asks_at, volume - s_below, s_at - s_below)
    return AuctionOutcome(price, volume)


# ---------------------------------------------------------------------------- schedule


Process = Generator[float, None, None]


class Schedule:
    """A minimal discrete-event scheduler with simpy's semantics.

    Processes are generators yielding delays; events at the same time run in the order
    they were scheduled, and a new process starts before any timed event of its start
    time. Times are accumulated as ``now + delay`` exactly as simpy does.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, int, Process]] = []
        self._seq = 0

    def _push(self, t: float, priority: int, proc: Process) -> None:
        heapq.heappush(self._queue, (t, priority, self._seq, proc))
        self._seq += 1

    def process(self, proc: Process) -> None:
        """Start a process now."""
        self._push(self.now, 0, proc)

    def run(self, until: float) -> None:
        """Run events until the clock reaches ``until``."""
        while self._queue and self._queue[0][0] < until:
            t, _, _, proc = heapq.heappop(self._queue)
            self.now = t
            try:
                delay = next(proc)
            except StopIteration:
                continue
            self._push(self.now + delay, 1, proc)


# ---------------------------------------------------------------------------- market


class Period:
    """Market-wide state of one compliance period."""

    def __init__(self, k: int, spec: PeriodSpec, t_of: Callable[[Any], float]) -> None:
        self.k = k
        self.spec = spec
        self.years = list(spec.emission_years)
        self.last_year = self.years[-1]
        t_alloc = t_of(spec.pre_allocation_date)
        self.t_start = t_alloc
        self.t_allocate = t_alloc + T_ALLOCATE
        self.t_verify = t_of(spec.verification_date) + T_VERIFY
        self.t_deadline = t_of(spec.deadline) + T_DEADLINE
        self.t_stages = [t_of(s.date) + T_DEADLINE for s in spec.stages]
        self.abatement_decided = False
        self.verified_known = False
        self.done = False

    def certainty(self, t: float) -> float:
        """Share of the cycle's information revealed at time ``t``."""
        if self.verified_known:
            return 1.0
        span = self.t_verify - self.t_start
        if span <= 0:
            return 1.0
        return min(max((t - self.t_start) / span, 0.0), 1.0)


def check_supported(sc: Scenario) -> None:
    """Raise ``ValueError`` if the scenario uses a feature the reference does not model."""
    problems = []
    if sc.auctions:
        problems.append("auctions")
    if sc.policy.band_trigger is not None:
        problems.append("policy.band_trigger")
    if sc.policy.msr is not None:
        problems.append("policy.msr")
    if sc.offsets.projects > 0:
        problems.append("offsets.projects")
    for p in sc.periods:
        if p.auction_remainder:
            problems.append(f"periods[{p.name}].auction_remainder")
        if p.banking_limit:
            problems.append(f"periods[{p.name}].banking_limit")
    for s in sc.behaviour.strategies:
        if s.name not in RULES:
            problems.append(f"strategy {s.name!r}")
    for change in sc.penalties:
        if change.regime not in ("china_2021_measures", "china_2024_interim", "eu"):
            problems.append(f"penalty regime {change.regime!r}")
    if problems:
        raise ValueError(
            f"the object-per-agent reference does not model: {', '.join(problems)} "
            f"(scenario {sc.name!r})"
        )


class Market:
    """The exchange, the registry's market-wide accounts and the regulator, for one replicate.

    Parameters
    ----------
    inputs : EngineInputs
        Units, calendar, activity and allocations (:func:`engine_inputs`).
    """

    def __init__(self, inputs: EngineInputs) -> None:
        sc = inputs.scenario
        check_supported(sc)
        self.sc = sc
        self.inputs = inputs
        self.stream = CounterStream(inputs.key)
        all_years = sorted({y for p in sc.periods for y in p.emission_years})
        self.vintages = list(range(all_years[0], all_years[-1] + 2))
        self.vpos = {y: i for i, y in enumerate(self.vintages)}
        self.classes = [OFFSET_CLASS, PROJECT_CLASS]
        self.units = [
            Unit(i, inputs, len(self.vintages), len(self.classes)) for i in range(len(inputs.names))
        ]
        self.rules = [RULES[s.name](**dict(s.params)) for s in sc.behaviour.strategies]
        self.start = pd.Timestamp(sc.time.start)
        self.days = inputs.days
        self.session_times = [float((d - self.start).days) + T_SESSION for d in self.days]
        self.periods = [Period(k, p.spec, self._t) for k, p in enumerate(inputs.periods)]
        self.schedule = Schedule()
        self.project_offsets = [0] * len(self.classes)
        self.project_cash = 0.0
        self.government_cash = 0.0
        self.offsets_open = False
        self.offer_noise: list[float] | None = None
        opening = float(sc.trading.opening_price)
        self.last_close = opening
        self.adaptive_price = opening
        self.fundamental_price = opening
        self.expected_price = opening
        self.session_index = -1
        n_days = len(self.days)
        self.record: dict[str, list[float]] = {
            name: [math.nan if ("price" in name or "vwap" in name) else 0.0] * n_days
            for name in MARKET_COLUMNS
        }
        self.tick_scale = _decimal_scale(sc.trading.tick)
        self.n_orders = 0

    # -- helpers
    def _t(self, date: Any) -> float:
        return max(float((pd.Timestamp(date) - self.start).days), 0.0)

    def _price(self, ticks: int) -> float:
        k, scale = self.tick_scale
        return (float(ticks) * k) / scale

    def _band(self, reference: float, fraction: float) -> tuple[float, float]:
        tick = self.sc.trading.tick
        lo_t = _snap_up(reference * (1.0 - fraction), tick)
        hi_t = max(_snap_down(reference * (1.0 + fraction), tick), lo_t)
        return self._price(lo_t), self._price(hi_t)

    def _offset_classes_for(self, year: int) -> list[int]:
        off = self.sc.offsets
        classes = []
        if off.legacy_last_year is None or year <= off.legacy_last_year:
            classes.append(0)
        if off.projects > 0:
            classes.append(1)
        return classes

    # -- run
    def run(self) -> ReferenceResult:
        """Run the whole schedule once."""
        sched = self.schedule
        if self.sc.offsets.enabled:
            sched.process(self._offset_process())
        for p in self.periods:
            sched.process(self._period_process(p))
        sched.process(self._trading_process())
        horizon = max([self.session_times[-1], *(p.t_deadline for p in self.periods)]) + 1.0
        sched.run(until=horizon)
        return self._result()

    def _offset_process(self) -> Process:
        off = self.sc.offsets
        t = self._t(off.available_from) if off.available_from is not None else 0.0
        yield t + T_ALLOCATE
        if off.legacy_stock > 0:
            self.project_offsets[0] += int(off.legacy_stock)
        self.offsets_open = True

    def _period_process(self, p: Period) -> Process:
        sched = self.schedule
        yield p.t_allocate - sched.now
        self._pre_allocate(p)
        yield max(p.t_verify - sched.now, 0.0)
        self._verify(p)
        for s, t_stage in enumerate(p.t_stages):
            yield max(t_stage - sched.now, 0.0)
            self._surrender(p, stage=s, final=False)
        yield max(p.t_deadline - sched.now, 0.0)
        self._surrender(p, stage=None, final=True)

    def _trading_process(self) -> Process:
        for i, t in enumerate(self.session_times):
            yield t - self.schedule.now
            self.step(t, i)

    # -- expectations
    def _update_fundamental(self, now: float) -> None:
        """Competitive price with banking: bisection on the units' MAC curves."""
        b = self.sc.behaviour
        units = self.units
        remaining = [q for q in self.periods if not q.done]
        if not remaining:
            return
        shortage = 0.0
        covered = 0.0
        blocks: list[tuple[float, int]] = []
        for q in remaining:
            k = q.k
            n_years = len(q.years)
            if q.verified_known:
                verified = math.fsum(
                    u.cycles[k].unabated[y] - u.cycles[k].abated[y]  # type: ignore[index]
                    for y in range(n_years)
                    for u in units
                )
                shortage += verified - math.fsum(u.cycles[k].allocated for u in units)
                covered += verified
                continue
            prior = math.fsum(u.size for _ in range(n_years) for u in units)
            covered += prior
            shortage += prior - math.fsum(u.cycles[k].expected_allocation for u in units)
            if q.abatement_decided:
                shortage -= math.fsum(
                    u.cycles[k].abated[y]  # type: ignore[index]
                    for y in range(n_years)
                    for u in units
                )
            else:
                blocks.append((max(q.t_allocate - now, 0.0) / 365.25, n_years))
        held = sum(sum(u.allowances) for u in units)
        allocated_remaining = 0.0
        for q in remaining:
            allocated_remaining += math.fsum(u.cycles[q.k].allocated for u in units)
        banked = max(held - allocated_remaining, 0.0)
        cap_share = remaining[0].spec.offset_limit_share
        offsets = min(
            float(sum(sum(u.offsets) for u in units) + sum(self.project_offsets)),
            cap_share * covered,
        )
        shortage = shortage - banked - offsets
        if not blocks:
            return

        def abated_at(p0: float) -> float:
            total = 0.0
            for tau, n_years in blocks:
                price = p0 * _exp(b.discount_rate * tau)
                for _ in range(n_years):
                    total += math.fsum(u.abatement_at_price(price, u.size) for u in units)
            return total

        lo = 0.0
        hi = float(b.choke_price)  # a shortage beyond abatement: the backstop
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            if abated_at(mid) >= shortage:
                hi = mid
            else:
                lo = mid
        self.fundamental_price = max(hi, b.reservation_price)
        self._blend_expectation()

    def _blend_expectation(self) -> None:
        w = self.sc.behaviour.fundamental_weight
        self.expected_price = (1.0 - w) * self.adaptive_price + w * self.fundamental_price

    # -- regulator
    def _pre_allocate(self, p: Period) -> None:
        sc = self.sc
        self._update_fundamental(self.schedule.now)
        price = self.expected_price
        for u in self.units:
            cy = u.cycles[p.k]
            if sc.behaviour.abatement:
                abated = [u.abatement_at_price(price, e) for e in cy.unabated]
                cost = [u.abatement_cost(a, e) for a, e in zip(abated, cy.unabated, strict=True)]
            else:
                abated = [0.0] * len(cy.unabated)
                cost = [0.0] * len(cy.unabated)
            cy.decide_abatement(abated, cost)
        p.abatement_decided = True
        sigma = sc.behaviour.forecast_sigma
        draw = self.stream.next_draw()
        n_years = len(p.years)
        share = p.spec.pre_allocation_share
        for u in self.units:
            cy = u.cycles[p.k]
            noise = _exp(sigma * CounterStream.normal(draw, u.index) - 0.5 * sigma**2)
            cy.prior_obligation = u.size * n_years * noise
            pre = math.floor(cy.expected_allocation / n_years * share)
            for year in p.years:
                u.receive_allocation(self.vpos[year], pre)
                cy.allocated += pre

    def _verify(self, p: Period) -> None:
        spec = p.spec
        n_years = len(p.years)
        last = self.vpos[p.last_year]
        for u in self.units:
            cy = u.cycles[p.k]
            cy.verified = round(cy.actual)  # whole tonnes, half to even as np.rint
            pre = math.floor(cy.expected_allocation / n_years * spec.pre_allocation_share)
            for j, year in enumerate(p.years):
                delta = int(cy.final_allocation[j] - pre)
                if delta > 0:
                    u.receive_allocation(self.vpos[year], delta)
                elif delta < 0:
                    u.deliver_oldest(-delta, range(self.vpos[year], self.vpos[year] + 1))
            cy.allocated = cy.final_total
            e = cy.verified
            a = int(cy.final_total)
            ob, top = e, 0
            if spec.gap_cap_share is not None:
                top = max(e - _mul_floor(e, spec.gap_cap_share) - a, 0)
            if spec.gas_exemption and u.is_gas:
                ob, top = min(e, a), 0
            if top > 0:
                u.receive_allocation(last, top)
                cy.allocated += top
            cy.obligation = ob + u.carried
            u.carried = 0
        p.verified_known = True
        self._update_fundamental(self.schedule.now)
        if spec.stages:
            shares = [s.share for s in spec.stages] + [1.0]
            for i in range(1, len(shares)):
                shares[i] = max(shares[i], shares[i - 1])
            n = len(self.units)
            counts = [-((-n * f.numerator) // f.denominator) for f in map(_fraction, shares)]
            ranked = sorted(
                self.units,
                key=lambda u: float(u.cycles[p.k].obligation - u.valid_holdings(last)),
            )
            for rank, u in enumerate(ranked):
                u.cycles[p.k].stage = bisect.bisect_right(counts, rank)

    def _surrender(self, p: Period, stage: int | None, final: bool) -> None:
        """Surrender by the units due (those of stages ``<= stage``; all when None)."""
        share = p.spec.offset_limit_share
        last = self.vpos[p.last_year]
        classes = self._offset_classes_for(p.last_year)
        for u in self.units:
            cy = u.cycles[p.k]
            if stage is not None and cy.stage > stage:
                continue
            remaining = max(cy.obligation - cy.surrendered - cy.offsets_surrendered, 0)
            cap = max(math.floor(share * cy.obligation) - cy.offsets_surrendered, 0)
            held = max(u.valid_holdings(last), 0)
            available = sum(max(u.offsets[c], 0) for c in classes)
            off_total = min(min(cap, available), remaining)
            allow = min(remaining - off_total, held)
            rem = off_total
            for c in classes:
                take = min(rem, max(u.offsets[c], 0))
                u.offsets[c] -= take
                rem -= take
            u.deliver_oldest(allow, range(last + 1))
            cy.surrendered += allow
            cy.offsets_surrendered += off_total
        if final and p.spec.borrowing and last + 1 < len(self.vpos):
            self._borrow(p, last + 1)
        if final:
            self._close_period(p)

    def _borrow(self, p: Period, next_vpos: int) -> None:
        """The 2021-22 borrowing rule: a unit whose obligation exceeds its allocation by
        more than 10% of the allocation borrows what it still lacks, up to half of that
        gap, from the next vintage and surrenders it; the advance is repaid out of its next
        allocation of that vintage."""
        for u in self.units:
            cy = u.cycles[p.k]
            short = max(cy.obligation - cy.surrendered - cy.offsets_surrendered, 0)
            allocated = int(cy.allocated)
            gap = max(cy.obligation - allocated, 0)
            if short == 0 or gap == 0 or not gap * 10 > allocated:
                continue
            qty = min(short, gap // 2)
            u.borrowed[next_vpos] += qty  # borrowed and surrendered at once
            cy.surrendered += qty

    def _close_period(self, p: Period) -> None:
        regime = None
        for change in sorted(self.sc.penalties, key=lambda c: c.start):
            if change.start <= p.spec.deadline:
                regime = change
        if regime is None:
            raise ValueError(f"penalties: no regime in force at the deadline {p.spec.deadline}")
        market_price = self.last_close
        if regime.regime == "china_2024_interim":
            end = pd.Timestamp(p.spec.deadline)
            start = end - pd.DateOffset(months=1)
            upto = self.session_index + 1
            window = [
                self.record["price"][i] for i, d in enumerate(self.days[:upto]) if start <= d < end
            ]
            if window:
                market_price = math.fsum(window) / len(window)
        params = dict(regime.params)
        next_vpos = self.vpos[p.last_year + 1]
        last = self.vpos[p.last_year]
        for u in self.units:
            cy = u.cycles[p.k]
            short = max(cy.obligation - cy.surrendered - cy.offsets_surrendered, 0)
            if regime.regime == "china_2021_measures":
                fine = float(params.get("fine_per_entity", 20_000.0)) if short > 0 else 0.0
                deduction, carried = short, 0
            elif regime.regime == "china_2024_interim":
                fine = float(params.get("price_multiple", 5.0)) * market_price * short
                deduction, carried = short, 0
            else:  # eu
                fine = float(params.get("fine_per_tonne", 100.0)) * float(short)
                deduction, carried = 0, short
            u.cash -= fine
            self.government_cash += fine
            u.pending[next_vpos] += deduction
            u.carried += carried
            abated = 0.0
            cost = 0.0
            assert cy.abated is not None
            for a, c in zip(cy.abated, cy.abatement_cost, strict=True):
                abated += a
                cost += c
            cy.row = {
                "allocated": cy.allocated,
                "emissions": float(cy.verified),
                "abated": abated,
                "abatement_cost": cost,
                "surrendered": float(cy.surrendered),
                "offsets_surrendered": float(cy.offsets_surrendered),
                "shortfall": float(short),
                "penalty": fine,
                "bought": cy.bought,
                "sold": cy.sold,
                "banked": float(u.valid_holdings(last)),
                "so2_avoided": abated * u.pollutant_factors[0],
                "nox_avoided": abated * u.pollutant_factors[1],
                "pm_avoided": abated * u.pollutant_factors[2],
            }
        p.done = True

    # -- trading
    def _current_period(self, t: float) -> Period | None:
        for p in self.periods:
            if not p.done and t <= p.t_deadline:
                return p
        return None

    def step(self, t: float, i: int) -> None:
        """One trading session: expectations, orders, routing, clearing, settlement."""
        sc = self.sc
        tr = sc.trading
        self.session_index = i
        p = self._current_period(t)
        n_sessions = len(self.session_times)
        # 1. every unit forms its expectation
        if p is None:
            for u in self.units:
                u.no_expectation()
            to_deadline = n_sessions
        else:
            c = p.certainty(t)
            share = p.spec.offset_limit_share
            last = self.vpos[p.last_year]
            for u in self.units:
                u.form_expectation(p.k, c, p.verified_known, share, last)
            deadline_t = min([*(s for s in p.t_stages if s >= t), p.t_deadline])
            to_deadline = bisect.bisect_left(self.session_times, deadline_t) - 1 - i
        view = SessionView(
            sessions_to_deadline=max(to_deadline, 0),
            last_close=self.last_close,
            expected_price=self.expected_price,
            block_threshold=tr.block_min_size,
        )
        # 2. staged activation: each strategy draws the units that act (its first draw)
        #    and asks each of them, in unit order, for an order
        orders: list[Order] = []
        for rule in self.rules:
            const = rule.prepare(view)
            bases = [self.stream.next_draw() for _ in range(rule.draws)]
            for j in self.stream.acting_units(bases[0], len(self.units), const["rate"]):
                o = rule.order(self.units[j], view, const, bases)
                if o is not None:
                    orders.append(o)
        # 3. exchange rules: sells within holdings, segment sizes
        for u in self.units:
            u.offered = 0.0
        for o in orders:
            if not o.is_buy:
                assert o.unit is not None
                o.unit.offered += o.qty
        listed_max = math.ceil(tr.listed_max_size) - 1.0
        routed: list[Order] = []
        for o in orders:
            owner = o.unit
            assert owner is not None
            if not o.is_buy and owner.offered > owner.holdings:
                o.qty = float(math.floor(o.qty * (owner.holdings / owner.offered)))
            if o.segment == BLOCK and o.qty < tr.block_min_size:
                o.segment = LISTED
            if o.segment == LISTED:
                o.qty = min(o.qty, listed_max)
            if o.qty >= 1.0:
                routed.append(o)
        self.n_orders += len(routed)
        # 4. price bands, marketable repricing, one call auction per segment
        lo_l, hi_l = self._band(self.last_close, tr.listed_band)
        lo_b, hi_b = self._band(self.last_close, tr.block_band)
        if sc.policy.price_floor is not None:
            f = sc.policy.price_floor
            lo_l, lo_b = max(lo_l, f), max(lo_b, f)
            hi_l, hi_b = max(hi_l, lo_l), max(hi_b, lo_b)
        if sc.policy.price_ceiling is not None:
            cap = sc.policy.price_ceiling
            hi_l, hi_b = min(hi_l, cap), min(hi_b, cap)
            lo_l, lo_b = min(lo_l, hi_l), min(lo_b, hi_b)
        tick = tr.tick
        ref_tick = round(self.last_close / tick)
        choke = sc.behaviour.choke_price
        segments: dict[int, list[Order]] = {LISTED: [], BLOCK: []}
        for o in routed:
            lo, hi = (lo_l, hi_l) if o.segment == LISTED else (lo_b, hi_b)
            price = min(o.price, choke)  # nobody bids above the backstop price
            price = min(price, hi) if o.is_buy else max(price, lo)
            o.tick = round(price / tick)
            segments[o.segment].append(o)
        prices: dict[int, float] = {}
        volumes: dict[int, float] = {}
        for seg, (lo, hi) in ((LISTED, (lo_l, hi_l)), (BLOCK, (lo_b, hi_b))):
            band_t = (_snap_up(lo, tick), _snap_down(hi, tick))
            out = call_auction(segments[seg], reference_tick=ref_tick, band=band_t)
            volumes[seg] = out.volume
            prices[seg] = math.nan if out.price_tick is None else self._price(out.price_tick)
        # 5. settlement, segment by segment
        for seg in (LISTED, BLOCK):
            filled = [o for o in segments[seg] if o.fill > 0]
            if filled:
                self._settle(filled, prices[seg], p)
        vol_l, vol_b = volumes[LISTED], volumes[BLOCK]
        turnover = (prices[LISTED] * vol_l if vol_l > 0 else 0.0) + (
            prices[BLOCK] * vol_b if vol_b > 0 else 0.0
        )
        volume = vol_l + vol_b
        close = prices[LISTED] if vol_l > 0 else self.last_close
        if sc.policy.price_floor is not None:
            close = max(close, sc.policy.price_floor)
        if sc.policy.price_ceiling is not None:
            close = min(close, sc.policy.price_ceiling)
        rec = self.record
        rec["price"][i] = close
        rec["vwap"][i] = turnover / volume if volume > 0 else math.nan
        rec["volume"][i] = volume
        rec["turnover"][i] = turnover
        rec["listed_volume"][i] = vol_l
        rec["block_volume"][i] = vol_b
        rec["band_low"][i] = lo_l
        rec["band_high"][i] = hi_l
        # 6. expectations adapt to the close
        self.last_close = close
        w = sc.behaviour.expectation_weight
        self.adaptive_price = (1.0 - w) * self.adaptive_price + w * close
        self._blend_expectation()
        rec["expected_price"][i] = self.expected_price
        rec["fundamental_price"][i] = self.fundamental_price
        if self.offsets_open and p is not None and i % sc.offsets.session_interval == 0:
            self._offset_session(i, p)

    def _settle(self, filled: list[Order], price: float, p: Period | None) -> None:
        """Deliver allowances sellers -> buyers and move cash, unit by unit."""
        buy: dict[int, float] = {}
        sell: dict[int, float] = {}
        for o in filled:
            assert o.unit is not None
            side = buy if o.is_buy else sell
            side[o.unit.index] = side.get(o.unit.index, 0.0) + o.fill
        traders = sorted(buy.keys() | sell.keys())
        n_v = len(self.vintages)
        all_v = range(n_v)
        pool = [0] * n_v
        cells: list[tuple[Unit, int, int]] = []
        for idx in traders:
            u = self.units[idx]
            b = round(buy.get(idx, 0.0))
            s = round(sell.get(idx, 0.0))
            if p is not None:
                u.cycles[p.k].bought += b
                u.cycles[p.k].sold += s
            net_buy, net_sell = max(b - s, 0), max(s - b, 0)
            if net_buy == 0 and net_sell == 0:
                continue
            cells.append((u, net_buy, net_sell))
            if net_sell:
                for v, t in enumerate(u.deliver_oldest(net_sell, all_v)):
                    pool[v] += t
            u.cash += price * (net_sell - net_buy)
        # buyers share the pool pro rata (floor), remainders by a north-west-corner pass
        total = sum(pool) or 1
        base = {u.index: [nb * pool[v] // total for v in all_v] for u, nb, _ in cells if nb}
        col = list(pool)
        for taken in base.values():
            for v in all_v:
                col[v] -= taken[v]
        col_hi = []
        acc = 0
        for v in all_v:
            acc += col[v]
            col_hi.append(acc)
        row_hi = 0
        for u, nb, _ in cells:
            if not nb:
                continue
            got = base[u.index]
            row = nb - sum(got)
            row_hi += row
            for v in all_v:
                overlap = min(row_hi, col_hi[v]) - max(row_hi - row, col_hi[v] - col[v])
                u.allowances[v] += got[v] + max(overlap, 0)

    def _offset_session(self, i: int, p: Period) -> None:
        """Units' eligible offset demand against the project owners' stock, class by class."""
        off = self.sc.offsets
        classes = self._offset_classes_for(p.last_year)
        if not classes:
            return
        share = p.spec.offset_limit_share
        draw = self.stream.next_draw()
        bid_price = [
            self.expected_price
            * (1.0 - off.discount)
            * _exp(off.bid_sigma * CounterStream.normal(draw, j))
            for j in range(len(self.units))
        ]
        if self.offer_noise is None:
            noise_draw = self.stream.next_draw()
            self.offer_noise = [
                _exp(off.supply_cost_sigma * CounterStream.normal(noise_draw, j))
                for j in range(OFFSET_LOTS)
            ]
        ask_price = [off.supply_cost * noise for noise in self.offer_noise]
        tick = self.sc.trading.tick
        volume = 0.0
        turnover = 0.0
        for k in classes:
            bids: list[Order] = []
            for u in self.units:
                cap = float(math.floor(share * u.obligation_estimate))
                held = float(sum(u.offsets[c] for c in classes))
                qty = max(cap - held - u.cycles[p.k].offsets_surrendered, 0.0)
                if qty >= 1.0:
                    bids.append(Order(u, True, bid_price[u.index], qty, LISTED))
            stock = float(self.project_offsets[k])
            lot = float(math.floor(stock / OFFSET_LOTS))
            ask_qty = [lot] * OFFSET_LOTS
            ask_qty[-1] += stock - lot * OFFSET_LOTS
            asks = [
                Order(None, False, price, q, LISTED)
                for q, price in zip(ask_qty, ask_price, strict=True)
                if q >= 1.0
            ]
            if not bids or not asks:
                continue
            book = bids + asks
            for o in book:
                o.tick = round(o.price / tick)
            out = call_auction(book)
            got = [(b, int(o.fill)) for o in bids if o.fill > 0 and (b := o.unit) is not None]
            total = sum(q for _, q in got)
            if total == 0 or out.price_tick is None:
                continue
            price = self._price(out.price_tick)
            self.project_offsets[k] -= total
            for u, q in got:
                u.offsets[k] += q
                u.cash -= price * q
                self.project_cash += price * q
            volume += out.volume
            turnover += price * out.volume
        if volume:
            self.record["offset_volume"][i] = volume
            self.record["offset_price"][i] = turnover / volume

    # -- result
    def _result(self) -> ReferenceResult:
        market = pd.DataFrame(
            {name: np.asarray(v, np.float64) for name, v in self.record.items()},
            index=pd.DatetimeIndex(self.days, name="date"),
        )
        rows = []
        index = []
        for p in self.periods:
            if not p.done:
                continue
            for u in self.units:
                rows.append(u.cycles[p.k].row)
                index.append((u.name, p.last_year))
        units = pd.DataFrame(
            rows,
            index=pd.MultiIndex.from_tuples(index, names=["unit", "year"]),
            columns=list(UNIT_COLUMNS),
        )
        return ReferenceResult(market=market, units=units, orders=self.n_orders)


def _fraction(share: float) -> Fraction:
    return Fraction(share).limit_denominator(MAX_DENOMINATOR)


@dataclass(frozen=True)
class ReferenceResult:
    """Outcome of a reference run (one replicate).

    Attributes
    ----------
    market : pandas.DataFrame
        One row per trading day (index ``date``), the columns :data:`MARKET_COLUMNS` with
        the meaning and units of ``carbonsim.Result.market``.
    units : pandas.DataFrame
        One row per unit and closed period (index ``unit``, ``year`` = the period's last
        year), the columns :data:`UNIT_COLUMNS` of ``carbonsim.Result.units``.
    orders : int
        Orders that reached the exchange over the run.
    """

    market: pd.DataFrame
    units: pd.DataFrame
    orders: int


def run_reference(
    scenario: Scenario | str,
    *,
    seed: int = 0,
    replicate: int = 0,
    inputs: EngineInputs | None = None,
) -> ReferenceResult:
    """Run replicate ``replicate`` of ``seed`` with the object-per-agent model.

    Parameters
    ----------
    scenario : Scenario or str
        A scenario or a built-in scenario name.
    seed : int
        Root seed, as for :func:`carbonsim.simulate`.
    replicate : int
        Which replicate of the seed to run (carbonsim's replicate ``replicate``).
    inputs : EngineInputs, optional
        Precomputed :func:`engine_inputs` (the scenario and seed arguments are then ignored).

    Examples
    --------
    >>> res = run_reference("china-national-tiny", seed=0)  # doctest: +SKIP
    >>> res.market["volume"].sum()  # doctest: +SKIP
    """
    if inputs is None:
        inputs = engine_inputs(scenario, seed=seed, replicate=replicate)
    return Market(inputs).run()
