"""Invariants of allocation rules, synthetic populations and MAC curves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from carbonsim.market.abatement import (
    abatement_at_price,
    abatement_cost,
    abatement_potential,
    marginal_cost,
)
from carbonsim.market.allocation import (
    AllocationInputs,
    absolute_cap,
    allocate,
    industry_intensity,
    pre_allocation,
    true_up,
)
from carbonsim.market.population import synthetic_population
from carbonsim.market.units import UnitTable

positive = st.floats(min_value=1.0, max_value=1e7, allow_nan=False)
share = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def steel_sector(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 8))
    output = np.array(draw(st.lists(st.floats(0.0, 1e7), min_size=n, max_size=n)))
    emissions = np.array(draw(st.lists(st.floats(0.0, 2e7), min_size=n, max_size=n)))
    return output, emissions


def _industry_inputs(output: np.ndarray, emissions: np.ndarray) -> AllocationInputs:
    n = output.shape[0]
    u = UnitTable.create(["steel"] * n, product_t=output, intensity_product=1.8)
    return AllocationInputs(
        year=2025,
        units=u,
        electricity_mwh=np.zeros(n),
        heat_gj=np.zeros(n),
        product_t=output,
        verified_emissions=emissions,
    )


@given(steel_sector())
def test_industry_allocation_within_three_percent(sector: tuple[np.ndarray, np.ndarray]) -> None:
    output, emissions = sector
    a = industry_intensity(_industry_inputs(output, emissions))
    # rounding to whole tonnes adds at most half a tonne
    assert np.all(a >= 0.97 * emissions - 0.5)
    assert np.all(a <= 1.03 * emissions + 0.5)


@given(steel_sector(), st.integers(0, 7), st.floats(1.0, 3.0))
def test_industry_allocation_monotone_in_own_output(
    sector: tuple[np.ndarray, np.ndarray], which: int, factor: float
) -> None:
    output, emissions = sector
    i = which % output.shape[0]
    more = output.copy()
    more[i] *= factor
    a0 = industry_intensity(_industry_inputs(output, emissions))
    a1 = industry_intensity(_industry_inputs(more, emissions))
    assert a1[i] >= a0[i]


@st.composite
def power_fleet(draw: st.DrawFn) -> UnitTable:
    n = draw(st.integers(1, 6))
    subtype = draw(
        st.lists(
            st.sampled_from(["coal_gt300mw", "coal_le300mw", "coal_unconventional", "gas"]),
            min_size=n,
            max_size=n,
        )
    )
    elec = draw(st.lists(st.floats(0.0, 1e7), min_size=n, max_size=n))
    heat = draw(st.lists(st.floats(0.0, 1e7), min_size=n, max_size=n))
    lf = draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    return UnitTable.create(
        ["power"] * n,
        subtype=subtype,
        electricity_mwh=elec,
        heat_gj=heat,
        intensity_electricity=0.8,
        intensity_heat=0.1,
        load_factor=lf,
    )


@given(power_fleet(), st.sampled_from([2019, 2021, 2023, 2024]), st.floats(1.0, 1.5))
def test_power_allocation_non_negative_and_monotone_in_output(
    units: UnitTable, year: int, factor: float
) -> None:
    """More electricity (and so a higher realized load) never gives fewer allowances."""
    base = AllocationInputs.from_units(units, year)
    more = AllocationInputs(
        year=year,
        units=units,
        electricity_mwh=np.minimum(units.electricity_mwh * factor, 1e12),
        heat_gj=units.heat_gj * factor,
        product_t=units.product_t,
        verified_emissions=units.baseline_emissions() * factor,
    )
    a0 = allocate("china_power_benchmark", base)
    a1 = allocate("china_power_benchmark", more)
    assert np.all(a0 >= 0)
    assert np.all(a1 >= a0)


@given(
    st.lists(st.integers(0, 10**9), min_size=1, max_size=10),
    st.lists(st.integers(0, 10**9), min_size=1, max_size=10),
    share,
)
def test_pre_allocation_plus_true_up_is_final(basis: list[int], final: list[int], s: float) -> None:
    n = min(len(basis), len(final))
    pre = pre_allocation(np.array(basis[:n], dtype=np.float64), s)
    f = np.array(final[:n], dtype=np.float64)
    up = true_up(f, pre)
    np.testing.assert_array_equal(pre + up, f)
    assert np.all(pre <= np.array(basis[:n]) * s)
    assert np.all(pre == np.rint(pre))


@given(
    st.lists(st.floats(0.0, 1e7), min_size=1, max_size=12),
    st.floats(0.0, 1e9),
    share,
)
def test_absolute_cap_sums_exactly(weights: list[float], cap: float, free: float) -> None:
    w = np.array(weights)
    assume(w.sum() > 0)
    u = UnitTable.create(["generic"] * len(weights), product_t=w, intensity_product=1.0)
    a = absolute_cap(
        AllocationInputs.from_units(u, 2024, parameters={"cap": cap, "free_share": free})
    )
    assert a.sum() == np.floor(cap * free)
    assert np.all(a >= 0)
    assert np.all(a[w == 0] == 0)


@settings(max_examples=25)
@given(st.integers(1, 200), st.floats(1.0, 50.0), st.integers(0, 2**32 - 1))
def test_population_hits_total_and_threshold(n: int, per_unit: float, seed: int) -> None:
    """Any feasible (n, total): total hit to rounding, every unit at or above 26,000 t."""
    total = n * 26_000.0 * per_unit
    u = synthetic_population(n, total, rng=seed)
    e = u.baseline_emissions()
    assert u.n_units == n
    assert e.sum() == pytest.approx(total, rel=1e-9)
    assert e.min() >= 26_000.0 * (1 - 1e-9)


@st.composite
def mac_units(draw: st.DrawFn, nonneg_costs: bool = False) -> UnitTable:
    n = draw(st.integers(1, 5))
    k = draw(st.integers(0, 4))
    lo = 0.0 if nonneg_costs else -100.0
    costs = np.sort(
        np.array(draw(st.lists(st.floats(lo, 1000.0), min_size=n * k, max_size=n * k))).reshape(
            n, k
        ),
        axis=1,
    )
    raw = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n * k, max_size=n * k))).reshape(
        n, k
    )
    shares = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1.0)
    forms = draw(st.lists(st.sampled_from(["linear", "steps"]), min_size=n, max_size=n))
    return UnitTable.create(
        ["generic"] * n,
        product_t=draw(st.lists(st.floats(0.0, 1e7), min_size=n, max_size=n)),
        intensity_product=1.0,
        mac_form=forms,
        mac_slope=draw(st.lists(st.floats(1e-6, 10.0), min_size=n, max_size=n)),
        mac_max_share=draw(st.lists(share, min_size=n, max_size=n)),
        mac_step_cost=costs,
        mac_step_share=shares,
    )


@given(mac_units(), st.floats(-200.0, 2000.0), st.floats(0.0, 500.0))
def test_abatement_bounded_and_monotone_in_price(u: UnitTable, p: float, dp: float) -> None:
    a0 = abatement_at_price(p, u)
    a1 = abatement_at_price(p + dp, u)
    potential = abatement_potential(u)
    assert np.all(a0 >= 0)
    assert np.all(a0 <= potential * (1 + 1e-12))
    assert np.all(a1 >= a0)


@given(mac_units(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_abatement_cost_is_convex(u: UnitTable, s1: float, s2: float) -> None:
    potential = abatement_potential(u)
    q1, q2 = s1 * potential, s2 * potential
    mid = abatement_cost(0.5 * (q1 + q2), u)
    chord = 0.5 * (abatement_cost(q1, u) + abatement_cost(q2, u))
    scale = 1.0 + np.abs(chord) + np.abs(mid)
    assert np.all(mid <= chord + 1e-9 * scale)
    # the marginal cost does not fall along the curve
    lo, hi = np.minimum(q1, q2), np.maximum(q1, q2)
    assert np.all(marginal_cost(lo, u) <= marginal_cost(hi, u))


@given(mac_units(nonneg_costs=True), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_abatement_cost_increasing_with_nonnegative_mac(u: UnitTable, s1: float, s2: float) -> None:
    potential = abatement_potential(u)
    lo, hi = sorted((s1, s2))
    c_lo, c_hi = abatement_cost(lo * potential, u), abatement_cost(hi * potential, u)
    assert np.all(c_lo >= 0)
    assert np.all(c_hi >= c_lo - 1e-9 * (1.0 + np.abs(c_hi)))
