"""Textbook cases with the analytical answer computed in the test.

A static power market with linear marginal abatement costs (``MAC_i(a) = s_i a`` up to a
potential ``m_i E_i``), no activity shocks, no growth and no gas exemption:

- the competitive price ``p*`` solves ``sum_i min(p / s_i, m_i E_i) = S``, the aggregate
  shortage, and does not depend on how the allowances were distributed (Montgomery 1972);
- with free banking and known future allocations, the price rises at the discount rate
  between abatement decisions (Hotelling; Rubin 1996);
- a price ceiling or floor holds;
- a cheaper offset supply within the usage cap lowers the allowance price to
  ``p*(S - O)``: the price the abatement supply curve gives for the smaller shortage.

The analytical prices are computed here by water-filling on the MAC curves of the drawn
units, independently of the engine's bisection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from carbonsim.engine.simulation import Simulation, build_units
from carbonsim.scenario import scenario_from_dict
from carbonsim.scenario.schema import Scenario

N_UNITS = 40
TOTAL = 4.0e7  # t/yr


def textbook(
    *,
    years: tuple[int, ...] = (2021,),
    factors: dict[int, Any] | None = None,
    discount_rate: float = 0.0,
    legacy_stock: float = 0.0,
    policy: dict[str, float] | None = None,
) -> Scenario:
    """A static market: one period per year, grandfathered allocation ``factor x H``."""
    factors = factors or {}
    periods = []
    for y in years:
        periods.append(
            {
                "name": str(y),
                "emission_years": [y],
                "pre_allocation_date": f"{y}-01-04",
                "verification_date": f"{y}-09-30",
                "deadline": f"{y}-12-31",
                "allocation_rule": "grandfathering",
                "allocation_params": {"factor": factors.get(y, 0.95)},
                "gas_exemption": False,
                "gap_cap_share": None,
                "offset_limit_share": 0.05,
            }
        )
    data = {
        "name": "textbook",
        "time": {"start": f"{years[0]}-01-04", "end": f"{years[-1]}-12-31", "calendar": "business"},
        "population": {
            "n_units": N_UNITS,
            "total_emissions": TOTAL,
            "seed": 7,
            "options": {
                "shock_scale": 0.0,
                "growth_scale": 0.0,
                "power_mix": {"coal_conventional": 1.0},
            },
        },
        "periods": periods,
        "trading": {"opening_price": 30.0},
        "offsets": {
            "enabled": legacy_stock > 0,
            "legacy_stock": legacy_stock,
            "supply_cost": 1.0,
            "discount": 0.0,
        },
        "behaviour": {
            "fundamental_weight": 1.0,
            "reservation_price": 0.0,
            "discount_rate": discount_rate,
            "expectation_weight": 0.05,
            # enough liquidity in a 40-unit market for prices to move every session: a
            # price that no one trades at cannot move under the exchange's closing rule
            "strategies": [
                # nothing to bank for in a textbook market: long units sell their surplus
                {"name": "compliance", "params": {"bank_share": 0.0}},
                {"name": "noise", "params": {"activity": 0.2, "size_share": 0.002}},
            ],
        },
        "policy": policy or {},
    }
    return scenario_from_dict(data)


def competitive_price(slope: np.ndarray, potential: np.ndarray, shortage: float) -> float:
    """Water-filling: the p with sum_i min(p / s_i, potential_i) == shortage."""
    if shortage <= 0:
        return 0.0
    cap_price = slope * potential  # price at which unit i has used its whole potential
    order = np.argsort(cap_price)
    capped = 0.0
    inverse = float(np.sum(1.0 / slope))
    for i in order:
        p = (shortage - capped) / inverse
        if p <= cap_price[i]:
            return p
        capped += potential[i]
        inverse -= 1.0 / slope[i]
    raise AssertionError("shortage exceeds the total abatement potential")


def mac_of(sc: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    units = build_units(sc)
    assert (units.mac_form == 0).all(), "textbook units must all have linear MACs"
    emissions = units.baseline_emissions()
    return units.mac_slope, units.mac_max_share * emissions, emissions


def run(sc: Scenario, seed: int = 0) -> pd.DataFrame:
    return Simulation(sc, seed=seed).run().market.xs(0, level="replicate")


#: Replicates averaged where a test compares traded prices (not single paths).
REPLICATES = 8


def late_price(sc: Scenario, seed: int = 0) -> float:
    """Mean closing price over the second half of the sessions and over replicates."""
    price = Simulation(sc, seed=seed, replicates=REPLICATES).run().market["price"]
    paths = price.unstack("replicate")
    return float(paths.iloc[len(paths) // 2 :].to_numpy().mean())


def test_competitive_price_of_a_static_market() -> None:
    sc = textbook()
    slope, potential, emissions = mac_of(sc)
    shortage = emissions.sum() - np.rint(0.95 * emissions).sum()
    p_star = competitive_price(slope, potential, shortage)
    assert 5.0 < p_star < 500.0  # a meaningful price for this population

    market = run(sc)
    # the engine's fundamental equals the analytical price (to bisection precision)
    assert market["fundamental_price"].iloc[0] == pytest.approx(p_star, rel=1e-6)
    # starting at 30 yuan, the traded price converges to the competitive price: the
    # second half's mean price, averaged over replicates (one path scatters by a few %)
    assert late_price(sc) == pytest.approx(p_star, rel=0.10)


def _montgomery_pair() -> tuple[Scenario, Scenario]:
    """The textbook market with equal allocation and with the same total skewed: the
    first half of the units get 20% more than the rest."""
    equal = textbook()
    _, _, emissions = mac_of(equal)
    w = np.where(np.arange(N_UNITS) < N_UNITS // 2, 1.2, 1.0)
    skew = 0.95 * w * emissions.sum() / (w * emissions).sum()
    return equal, textbook(factors={2021: skew.tolist()})


def test_price_does_not_depend_on_initial_allocation() -> None:
    """Montgomery (1972): same cap, different distribution, same price and abatement."""
    equal, skewed = _montgomery_pair()
    a = Simulation(equal, seed=1).run()
    b = Simulation(skewed, seed=1).run()
    alloc_a = a.units["allocated"].sum()
    alloc_b = b.units["allocated"].sum()
    assert alloc_b == pytest.approx(alloc_a, rel=1e-6)
    pa = a.market["fundamental_price"].iloc[0]
    pb = b.market["fundamental_price"].iloc[0]
    assert pb == pytest.approx(pa, rel=1e-4)
    assert b.units["abated"].sum() == pytest.approx(a.units["abated"].sum(), rel=1e-4)
    # the distribution changes who trades: more is traded in the skewed case
    assert b.units["sold"].sum() != a.units["sold"].sum()


@pytest.mark.xfail(
    strict=True,
    reason="behavioural frictions of the current trading rules (long units keep "
    "bank_share of a surplus, buyers pay an urgency premium) make the traded price about "
    "6% lower with the skewed allocation, averaged over replicates and seeds; the "
    "behavioural model of issue #19 must remove the distribution effect",
)
def test_traded_price_does_not_depend_on_initial_allocation() -> None:
    """Montgomery (1972) for the traded price, not only the fundamental one."""
    equal, skewed = _montgomery_pair()
    assert late_price(skewed, seed=1) == pytest.approx(late_price(equal, seed=1), rel=0.03)


def test_price_rises_at_the_discount_rate_with_banking() -> None:
    """Hotelling / Rubin (1996): spot price p(t2) = p(t1) exp(d (t2 - t1))."""
    d = 0.10
    # generous first year, tight second: units bank, the banking constraint is slack
    sc = textbook(years=(2021, 2022), factors={2021: 1.05, 2022: 0.85}, discount_rate=d)
    slope, potential, emissions = mac_of(sc)
    market = run(sc)
    t1, t2 = pd.Timestamp("2021-01-04"), pd.Timestamp("2022-01-04")
    p1 = market["fundamental_price"].loc[t1]
    p2 = market["fundamental_price"].loc[t2]
    years = (t2 - t1).days / 365.25
    assert p2 / p1 == pytest.approx(np.exp(d * years), rel=0.02)

    # and p1 is the analytical two-period solution:
    # sum_i a_i(p1) + a_i(p1 e^{d years}) = total shortage over both years
    shortage = 2 * emissions.sum() - (np.rint(1.05 * emissions) + np.rint(0.85 * emissions)).sum()

    def excess(p: float) -> float:
        def a(price: float) -> float:
            return float(np.minimum(price / slope, potential).sum())

        return a(p) + a(p * np.exp(d * years)) - shortage

    lo, hi = 0.0, 1e4
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if excess(mid) >= 0 else (mid, hi)
    assert p1 == pytest.approx(hi, rel=1e-4)
    # the first year banks: aggregate holdings after its deadline are positive
    assert market["fundamental_price"].loc[t2] > market["fundamental_price"].loc[t1]


def test_binding_ceiling_and_floor_hold() -> None:
    sc = textbook()
    slope, potential, emissions = mac_of(sc)
    shortage = emissions.sum() - np.rint(0.95 * emissions).sum()
    p_star = competitive_price(slope, potential, shortage)

    ceiling = round(0.6 * p_star, 2)
    capped = run(textbook(policy={"price_ceiling": ceiling}))
    assert capped["price"].max() <= ceiling + 1e-9
    assert (capped["price"].iloc[len(capped) // 2 :] >= 0.99 * ceiling).mean() > 0.5

    floor = round(1.5 * p_star, 2)
    floored = run(textbook(policy={"price_floor": floor}))
    assert floored["price"].iloc[1:].min() >= floor - 1e-9


def test_cheaper_offsets_lower_the_price_as_the_supply_curve_predicts() -> None:
    sc = textbook()
    slope, potential, emissions = mac_of(sc)
    shortage = emissions.sum() - np.rint(0.95 * emissions).sum()
    stock = 0.4 * shortage  # within the 5% usage cap: 0.4 x 5% = 2% of emissions
    assert stock < 0.05 * emissions.sum()
    p_none = competitive_price(slope, potential, shortage)
    p_offsets = competitive_price(slope, potential, shortage - stock)

    market = run(textbook(legacy_stock=stock))
    assert market["fundamental_price"].iloc[0] == pytest.approx(p_offsets, rel=1e-6)
    late = market["price"].iloc[len(market) // 2 :].mean()
    assert late == pytest.approx(p_offsets, rel=0.10)
    assert late < 0.9 * p_none
