"""Expectations: each unit's view of its obligation, the fundamental and expected prices."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._cells import sum_cells
from carbonsim.agents.base import MarketView
from carbonsim.engine.state import EngineState, PeriodState
from carbonsim.market.abatement import (
    abatement_response,
)
from carbonsim.market.ledger import Ledger

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = ["Cells", "Expectations", "PeriodView", "check_cells"]

# (curve, replicate, unit) cells the fundamental-price bisection evaluates in one call
_FUNDAMENTAL_CELLS = 1_000_000

Cells = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]


def check_cells(op: str, cells: Cells, shape: tuple[int, ...]) -> None:
    """Raise ``IndexError`` unless every cell lies in ``[0, R) x [0, N)`` (a flat gather
    would otherwise read another row for a column out of range)."""
    rows, cols = cells
    if len(rows) and not (
        rows.min() >= 0 and rows.max() < shape[0] and cols.min() >= 0 and cols.max() < shape[1]
    ):
        raise IndexError(f"{op}: cells must lie in [0, {shape[0]}) x [0, {shape[1]})")


class PeriodView:
    """The :class:`~carbonsim.agents.ViewSource` of one trading session in period ``p``.

    Holdings and expected obligations are computed whole or at given cells by the same
    element-wise formulas, so a cell read alone equals the same cell of the whole array bit
    for bit. It reads the ledger and period state when asked; the engine closes the view
    before the session's trades are settled change them.
    """

    def __init__(self, ledger: Ledger, p: PeriodState, certainty: float) -> None:
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
        # one flat index for every (R, N) array read at the cells
        flat = None if cells is None else cells[0] * p.obligation.shape[1] + cells[1]

        def at(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a if flat is None else a.reshape(-1).take(flat)

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
            check_cells("obligation_at", cells, self.p.obligation.shape)
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


class Expectations(EngineState):
    """What units know and expect: the obligation view of a session, the fundamental
    (competitive intertemporal) price and the blended expected price."""

    _view_source: PeriodView | None  # the current session's obligation view

    def _prior_emissions(self, p: PeriodState) -> FloatArray:
        """Emissions the market expects before verification: baseline, the same in every
        replicate, shape (1, Y, N) (broadcasting against the replicates)."""
        # C-contiguous: numpy's summation order (and so the last bits of a sum) depends on
        # the memory layout, and replicate k must not depend on the batch
        return np.ascontiguousarray(
            np.broadcast_to(self.unit_size[None, None, :], (1, *p.unabated.shape[1:])),
            dtype=np.float64,
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
        # evaluated a group of curves per call: (C, 1, N) emissions (the same in every
        # replicate), a price per curve and replicate; each curve's total over the units
        # is the same sum as alone, and the curves' totals are added in order
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

    @staticmethod
    def _cache_totals(p: PeriodState) -> None:
        """Cache the period's emission and final-allocation totals the obligation estimate
        reads before verification (they change only when abatement is decided)."""
        if not p.verified_known:
            if p.actual_total is None:
                p.actual_total = (
                    (p.unabated - p.abated).sum(axis=1) if p.abated.size else p.unabated.sum(1)
                )
            if p.final_total is None:
                p.final_total = p.final_allocation.sum(1)

    def _sessions_to_deadline(self, i: IntArray, p: PeriodState) -> tuple[IntArray, IntArray]:
        """Sessions from each session ``i`` (K,) of period ``p`` to the period's next
        deadline or stage (at least 0), and the index of the first session after it."""
        t = self._session_times[i]
        marks = np.array([*(s for s in p.t_stages if s <= p.t_deadline), p.t_deadline])
        marks.sort()
        # the first at or after t (the deadline itself once t is past every mark)
        deadline_t = marks[np.minimum(np.searchsorted(marks, t), len(marks) - 1)]
        end = np.searchsorted(self._session_times, deadline_t)
        return np.maximum(end - 1 - i, 0), end

    def _view(self, t: float, p: PeriodState | None) -> MarketView:
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
        self._view_source = PeriodView(self.ledger, p, c)
        return MarketView.deferred(
            self._view_source,
            (r, n),
            sessions_to_deadline=to_deadline,
            sessions_in_cycle=in_cycle,
            obligation_certainty=c,
            **common,
        )
