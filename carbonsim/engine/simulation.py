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

import os

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from carbonsim._deprecation import check_deprecated_backend
from carbonsim._random import BatchRandom, SeedLike, replicate_seeds
from carbonsim.agents.base import Strategy, make_strategy
from carbonsim.clearing.ticks import snap_down, snap_up, ticks_to_price
from carbonsim.engine.calendar import trading_days
from carbonsim.engine.memory import check_memory
from carbonsim.engine.recorder import Recorder, empty_market_table
from carbonsim.engine.session import TradingSessions
from carbonsim.engine.state import (
    INVARIANTS_ENV,
    OFFSET_CLASS,
    PROJECT_CLASS,
    T_SESSION,
    InvariantError,
    build_units,
)
from carbonsim.market.abatement import (
    MACCurves,
)
from carbonsim.market.ledger import Ledger
from carbonsim.market.policy import (
    band_trigger_init,
)
from carbonsim.market.units import ActivityDraw, draw_activity
from carbonsim.results import Result
from carbonsim.scenario.schema import Scenario

FloatArray = npt.NDArray[np.float64]

__all__ = ["INVARIANTS_ENV", "InvariantError", "Simulation", "build_units", "simulate"]


class Simulation(TradingSessions, Recorder):
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
        self._strategy_names = [s.name for s in sc.behaviour.strategies]
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
        self.market = empty_market_table(r, t_total)
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
        self._view_source = None

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
        self._session_times = np.asarray(whole_days, dtype=np.float64) + T_SESSION
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
        self._after_event("end of run")
        return self._result()


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
