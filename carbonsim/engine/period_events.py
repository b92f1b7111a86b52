"""Period events: allocation, verification, deadlines, penalties, auctions, MSR, band trigger."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from carbonsim.clearing import sealed_bid_auction
from carbonsim.engine.expectations import Expectations
from carbonsim.engine.state import (
    T_ALLOCATE,
    T_AUCTION,
    T_DEADLINE,
    T_VERIFY,
    PeriodState,
    usable_offset_classes,
)
from carbonsim.market.abatement import (
    abatement_at_price,
    abatement_cost,
)
from carbonsim.market.abatement import avoided_pollutants as _avoided
from carbonsim.market.allocation import AllocationInputs, allocate, pre_allocation
from carbonsim.market.allocation_parameters import check_rule_parameters
from carbonsim.market.compliance import (
    apply_banking_limit,
    apply_surrender,
    borrowing_amount,
    deadline_stages,
    obligation,
)
from carbonsim.market.penalties import assess_penalty, enforce, reference_price
from carbonsim.market.policy import (
    msr_intake,
    msr_invalidation,
    update_band_trigger,
)
from carbonsim.scenario.schema import PeriodSpec

FloatArray = npt.NDArray[np.float64]

__all__ = ["PeriodEvents"]


class PeriodEvents(Expectations):
    """The events of compliance periods: pre-allocation (with the abatement decision),
    verification and true-up, staged and final surrender deadlines with penalties,
    government auctions, the market stability reserve and the band trigger."""

    def _make_period(self, spec: PeriodSpec) -> PeriodState:
        r, n = self.n_replicates, self.units.n_units
        check_rule_parameters(
            spec.allocation_rule, spec.allocation_params, f"periods[{spec.name}].allocation_params"
        )
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
        return PeriodState(
            spec=spec,
            years=list(spec.emission_years),
            year_index=yi,
            t_start=t_alloc,
            t_allocate=t_alloc + T_ALLOCATE,
            t_verify=self._t(spec.verification_date) + T_VERIFY,
            t_deadline=self._t(spec.deadline) + T_DEADLINE,
            t_stages=[self._t(s.date) + T_DEADLINE for s in spec.stages],
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

    def _pre_allocate(self, p: PeriodState) -> None:
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
        # the same pre-allocation for each emission year
        basis = p.expected_allocation / len(p.years)
        pre = pre_allocation(basis, p.spec.pre_allocation_share).astype(np.int64)
        for year in p.years:
            self.ledger.allocate(year, pre, issue=True)
            p.allocated += pre

    def _verify(self, p: PeriodState) -> None:
        emissions = (p.unabated - p.abated).sum(axis=1)
        p.verified = np.rint(emissions).astype(np.int64)
        final_total = p.final_allocation.sum(axis=1)
        # what each emission year's pre-allocation gave
        pre = np.floor(
            pre_allocation(p.expected_allocation / len(p.years), p.spec.pre_allocation_share)
        )
        for j, year in enumerate(p.years):
            delta = (p.final_allocation[:, j, :] - pre).astype(np.int64)
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

    def _surrender(self, p: PeriodState, due: npt.NDArray[np.bool_], final: bool) -> None:
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
            eligible_offset_classes=usable_offset_classes(self.scenario.offsets, p.last_year),
        )
        p.surrendered += res.allowances
        p.offsets_surrendered += res.offsets.sum(axis=-1)
        if final:
            if p.spec.borrowing:
                self._borrow_and_surrender(p)
            self._close_period(p)
            if p.spec.banking_limit:
                self._limit_banking(p)

    def _borrow_and_surrender(self, p: PeriodState) -> None:
        """The 2021-22 borrowing rule at the final deadline: a unit whose obligation
        exceeds its allocation by more than 10% of the allocation may borrow up to half of
        that gap from the next vintage (docs/rules.md#borrowing;
        :func:`~carbonsim.market.compliance.borrowing_amount`); it borrows what it still
        lacks after its own allowances and offsets, within that limit, and surrenders it.
        The advance is deducted from its next allocation of that vintage by the ledger."""
        shortfall = np.maximum(p.obligation - p.surrendered - p.offsets_surrendered, 0)
        next_vintage = p.last_year + 1
        if not shortfall.any() or next_vintage not in self.vintages:
            return
        allocation = p.allocated.astype(np.int64)
        gap = np.maximum(p.obligation - allocation, 0)
        limit = borrowing_amount(gap, allocation, p.last_year, years=(p.last_year,))
        qty = np.minimum(shortfall, limit)
        if not qty.any():
            return
        self.ledger.borrow(qty, next_vintage)
        res = apply_surrender(
            self.ledger,
            qty,
            p.last_year,
            offset_cap=np.zeros_like(qty),
            eligible_vintages=[next_vintage],
        )
        p.surrendered += res.allowances

    def _limit_banking(self, p: PeriodState) -> None:
        """The 2024-25 banking limit after the final deadline: a unit keeps at most
        10,000 t + 1.5 x its net sales over the period of its allowances of the period's
        vintages and older, converted into the next vintage; the rest is cancelled
        (docs/rules.md#banking-limit; :func:`~carbonsim.market.compliance.
        apply_banking_limit`). Without a next vintage in the scenario the kept tonnes stay
        in their vintages."""
        net_sales = np.rint(p.sold - p.bought).astype(np.int64)
        old = [v for v in self.vintages if v <= p.last_year]
        into = p.last_year + 1 if p.last_year + 1 in self.vintages else None
        res = apply_banking_limit(
            self.ledger,
            net_sales,
            p.last_year,
            from_vintages=old,
            into_vintage=into,
            restricted_years=(p.last_year,),
        )
        # the surplus carried forward is what the limit kept
        p.rows["banked"] = p.rows["banked"] - res.cancelled

    def _close_period(self, p: PeriodState) -> None:
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
        # the recorder converts the rows to float64 as it writes its table; the arrays
        # that a later event may still change (a later auction's allocation) are copied
        p.rows = {
            "allocated": p.allocated.copy(),
            "emissions": p.verified,
            "abated": total_abated,
            "abatement_cost": p.abatement_cost.sum(axis=1),
            "surrendered": p.surrendered,
            "offsets_surrendered": p.offsets_surrendered,
            "shortfall": shortfall,
            "penalty": np.asarray(outcome.fine, np.float64),
            "bought": p.bought.copy(),
            "sold": p.sold.copy(),
            "banked": banked,
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

    def _period_process(self, env: simpy.Environment, p: PeriodState) -> Any:
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

    def _current_period(self, t: float) -> PeriodState | None:
        for p in self.periods:
            if not p.done and t <= p.t_deadline:
                return p
        return None

    def _auction(
        self,
        i: int,
        vintage: int,
        supply: FloatArray,
        reserve: float,
        period: PeriodState | None = None,
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

    def _band_trigger(self, i: int, p: PeriodState, close: FloatArray) -> None:
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

    def _apply_msr(self, p: PeriodState) -> None:
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

    def _remainder_auctions(self, env: simpy.Environment, p: PeriodState) -> Any:
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

    def _period_caps(self, p: PeriodState) -> list[float]:
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

    def _period_of_vintage(self, vintage: int) -> PeriodState | None:
        for p in self.periods:
            if vintage in p.years:
                return p
        return None

    def _explicit_auction(self, env: simpy.Environment, spec: Any) -> Any:
        yield env.timeout(self._t(spec.date) + T_AUCTION)
        i = max(int(np.searchsorted(self._session_times, env.now, side="right") - 1), 0)
        self._auction(
            i,
            spec.vintage,
            np.full(self.n_replicates, spec.supply),
            spec.reserve_price,
            period=self._period_of_vintage(spec.vintage),
        )
        self._after_event("auction")
