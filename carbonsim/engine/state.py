"""State of a run: the period state, the engine's shared attributes, event times, invariants."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from carbonsim._random import BatchRandom, SeedLike
from carbonsim.agents.base import Strategy
from carbonsim.market.abatement import (
    MACCurves,
)
from carbonsim.market.ledger import Ledger
from carbonsim.market.population import population_from_preset, synthetic_population
from carbonsim.market.units import ActivityDraw, UnitTable
from carbonsim.scenario.schema import OffsetSpec, PeriodSpec, Scenario

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "INVARIANTS_ENV",
    "OFFSET_CLASS",
    "PROJECT_CLASS",
    "T_ALLOCATE",
    "T_AUCTION",
    "T_DEADLINE",
    "T_SESSION",
    "T_VERIFY",
    "EngineState",
    "InvariantError",
    "PeriodState",
    "build_units",
    "usable_offset_classes",
]

#: Environment variable that turns invariant checks on by default (``1`` or ``true``).
INVARIANTS_ENV = "CARBONSIM_CHECK_INVARIANTS"

OFFSET_CLASS = "ccer"  # legacy credits
PROJECT_CLASS = "ccer_new"  # credits of post-relaunch projects
#: Order of events on one calendar day, as fractions of the day: allocation, verification,
#: the trading session, auctions, deadlines.
T_ALLOCATE, T_VERIFY, T_SESSION, T_AUCTION, T_DEADLINE = 0.1, 0.2, 0.5, 0.6, 0.9
#: Events after which the ledger's conservation is checked even without ``check_invariants``.
ALWAYS_CHECKED = frozenset({"stage deadline", "deadline", "end of run"})


def usable_offset_classes(offsets: OffsetSpec, year: int) -> list[str]:
    """Offset classes usable for compliance year ``year``, legacy first."""
    classes = []
    if offsets.legacy_last_year is None or year <= offsets.legacy_last_year:
        classes.append(OFFSET_CLASS)
    if offsets.projects > 0:
        classes.append(PROJECT_CLASS)
    return classes


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
class PeriodState:
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


class EngineState:
    """The state a run of the schedule moves, shared by the engine's parts.

    :class:`~carbonsim.engine.Simulation` is composed of one class per concept
    (expectations, period events, offset sessions, exchange sessions, the recorder), each
    a subclass of this one; the attributes are set by ``Simulation._setup``. Arrays have a
    leading replicate axis ``R``; ``N`` is the number of units.
    """

    scenario: Scenario
    seed: SeedLike
    seeds: list[np.random.SeedSequence]
    n_replicates: int
    first_replicate: int
    record_trades: bool
    check_invariants: bool
    progress: bool
    units: UnitTable
    start: pd.Timestamp
    days: pd.DatetimeIndex
    rng: BatchRandom
    strategies: list[Strategy]
    mac: MACCurves
    is_gas: BoolArray  # (R, N)
    unit_size: FloatArray  # (N,) baseline emissions, t/year
    vintages: list[int]
    ledger: Ledger
    carried: IntArray  # (R, N) obligations carried to the next period
    msr_holdings: FloatArray  # (R,)
    msr_adjustment: FloatArray  # (R,) net change of the next period's auction supply
    band_state: Any
    draw: ActivityDraw
    first_year: int
    periods: list[PeriodState]
    market: dict[str, FloatArray]  # column -> (R, sessions)
    last_close: FloatArray  # (R,)
    adaptive_price: FloatArray  # (R,)
    fundamental_price: FloatArray  # (R,)
    expected_price: FloatArray  # (R,)
    offer_noise: FloatArray | None
    trades: list[pd.DataFrame]
    offsets_open: bool
    session_index: int
    _floor: float | None
    _ceiling: float | None
    _gap: FloatArray
    _reads_gap: bool
    _now: float
    _env: simpy.Environment
    _session_times: FloatArray
    _strategy_names: list[str]

    def _t(self, date: dt.date) -> float:
        return max(float((pd.Timestamp(date) - self.start).days), 0.0)

    def _after_event(self, what: str) -> None:
        """Invariant checks after an event: all of them after every event with
        ``check_invariants``; the ledger's conservation check (O(R N V), cheap next to a
        period's sessions) after every deadline and at the end of the run, always."""
        if not self.check_invariants and what not in ALWAYS_CHECKED:
            return
        try:
            self.ledger.check()
        except Exception as exc:  # re-raise with context
            raise InvariantError(f"ledger check failed after {what}: {exc}") from exc
        if not self.check_invariants:
            return
        for p in self.periods:
            if p.obligation.size and p.verified_known:
                cap = np.floor(p.spec.offset_limit_share * p.obligation)
                if (p.offsets_surrendered > cap + 1e-9).any():
                    raise InvariantError(f"offsets above the cap in period {p.spec.name!r}")
