"""Offset sessions: units' demand for CCER credits against project owners' stock."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from carbonsim.engine.period_events import PeriodEvents
from carbonsim.engine.state import (
    OFFSET_CLASS,
    PROJECT_CLASS,
    T_ALLOCATE,
    PeriodState,
    usable_offset_classes,
)
from carbonsim.market.offsets import (
    OFFSET_CUTOFF_Z,
    OFFSET_LOTS,
    clear_offset_classes,
    issued_credits,
    synthetic_projects,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = ["OffsetSessions"]


class OffsetSessions(PeriodEvents):
    """The offset (CCER) market inside a run: the legacy stock opens, post-relaunch
    projects issue credits, and an offset session clears every few trading sessions."""

    def _offset_session(self, i: int, p: PeriodState) -> None:
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
        bid_price = self.expected_price[rows] * (1.0 - off.discount) * np.exp(off.bid_sigma * z)
        ask_price = off.supply_cost * self.offer_noise
        tick = self.scenario.trading.tick
        # cut-off candidates: the ticks of a few high bid quantiles (bids are lognormal
        # around a price common to the replicate), highest first, with a tick of slack
        levels = (
            np.rint(
                self.expected_price[None, :]
                * (1.0 - off.discount)
                * np.exp(off.bid_sigma * OFFSET_CUTOFF_Z)[:, None]
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

    def _offset_stock(self, p: PeriodState) -> tuple[list[str], list[int], BoolArray]:
        """The offset classes usable in period ``p`` (legacy first), their ledger indices,
        and which replicates' project owners hold credits of them to sell (R,): only those
        replicates have an offset market (in the others bids meet no offer and nothing
        trades, which leaves every output the same)."""
        classes = usable_offset_classes(self.scenario.offsets, p.last_year)
        idx = [self.ledger.offset_class_index(c) for c in classes]
        stocked: BoolArray = np.any(self.ledger.project_offsets[:, idx] >= 1, axis=1)
        return classes, idx, stocked

    def _draw_offer_noise(self) -> None:
        """Draw the project owners' lognormal offer-price scatter (R, lots), once: at the
        first offset session with a usable class."""
        if self.offer_noise is None:
            sigma = self.scenario.offsets.supply_cost_sigma
            shape = (self.n_replicates, OFFSET_LOTS)
            self.offer_noise = np.exp(sigma * self.rng.standard_normal(shape))

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
                t = self._t(pd.Timestamp(date).date()) + T_ALLOCATE
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

    def _offset_process(self, env: simpy.Environment) -> Any:
        off = self.scenario.offsets
        t = self._t(off.available_from) if off.available_from is not None else 0.0
        yield env.timeout(t + T_ALLOCATE)
        self._open_offsets()
