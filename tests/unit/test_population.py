"""Synthetic populations: published totals hit exactly, thresholds, plausible power fleets."""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim.market.allocation import AllocationInputs, china_power_benchmark
from carbonsim.market.benchmarks_table import power_benchmarks
from carbonsim.market.population import (
    COVERAGE,
    population_from_preset,
    synthetic_population,
)
from carbonsim.market.units import SECTORS, UnitTable

PUBLISHED = {
    # name: (units, covered emissions t/yr, threshold t/yr) -- docs/rules.md#coverage-*
    "china_national_2019_2020": (2162, 4.5e9, 26_000.0),
    "china_national_2021_2022": (2257, 5.1e9, 26_000.0),
    "china_national_2023": (2096, 5.244e9, 26_000.0),
    "china_national_2024": (3378, 8.194e9, 26_000.0),
    "beijing_2022": (1300, 44e6, 5_000.0),
}


@pytest.fixture(scope="module")
def populations() -> dict[str, UnitTable]:
    return {name: population_from_preset(name, rng=2024) for name in COVERAGE}


def test_presets_are_the_published_figures() -> None:
    assert set(COVERAGE) == set(PUBLISHED)
    for name, (n, total, thr) in PUBLISHED.items():
        preset = COVERAGE[name]
        assert (preset.n_units, preset.total_emissions, preset.threshold) == (n, total, thr)
        assert sum(preset.sector_counts.values()) == n
        assert sum(preset.emission_shares.values()) == pytest.approx(1.0, abs=1e-12)
        assert "docs/rules.md#coverage-" in preset.source


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_totals_and_threshold(populations: dict[str, UnitTable], name: str) -> None:
    n, total, thr = PUBLISHED[name]
    u = populations[name]
    e = u.baseline_emissions()
    assert u.n_units == n
    assert e.sum() == pytest.approx(total, rel=1e-12)
    assert e.min() >= thr * (1 - 1e-12)
    # heavy tail: the largest unit is many times the median
    assert e.max() > 5 * np.median(e)


def test_2024_sector_counts(populations: dict[str, UnitTable]) -> None:
    u = populations["china_national_2024"]
    counts = {s: int(u.in_sector(s).sum()) for s in SECTORS if u.in_sector(s).any()}
    assert counts == {"power": 2087, "steel": 232, "cement": 962, "aluminium": 97}
    e = u.baseline_emissions()
    # conf. C emission shares of the preset, hit exactly
    assert e[u.in_sector("steel")].sum() == pytest.approx(0.22 * 8.194e9, rel=1e-12)
    assert e[u.in_sector("power")].sum() == pytest.approx(0.635 * 8.194e9, rel=1e-12)


def test_power_fleet_is_plausible(populations: dict[str, UnitTable]) -> None:
    u = populations["china_national_2023"]
    bench = power_benchmarks(2023)
    for sub in ("coal_gt300mw", "coal_le300mw", "coal_unconventional", "gas"):
        mask = u.of_subtype(sub)
        assert mask.sum() > 50, sub
        gap = u.intensity_electricity[mask] / bench[sub] - 1.0
        # intensities slightly above the benchmark on average, within +/-30%
        assert 0.0 < gap.mean() < 0.05, sub
        assert np.all(np.abs(gap) <= 0.3 + 1e-12), sub
    # the size class follows the drawn capacity
    assert np.all(u.capacity_mw[u.of_subtype("coal_gt300mw")] > 300.0)
    assert np.all(u.capacity_mw[u.of_subtype("coal_le300mw")] <= 300.0)
    # capacity, load factor and net electricity are consistent
    np.testing.assert_allclose(u.capacity_mw * 8760.0 * u.load_factor, u.electricity_mwh)
    chp = u.heat_gj > 0
    assert 0.2 < chp.mean() < 0.7
    coal_chp = chp & ~u.of_subtype("gas")
    np.testing.assert_allclose(
        u.intensity_heat[coal_chp].mean(), bench["heat_coal"] * 1.02, rtol=0.02
    )
    assert np.all((u.load_factor > 0) & (u.load_factor <= 1))


@pytest.mark.parametrize(
    ("name", "year"), [("china_national_2019_2020", 2019), ("china_national_2023", 2023)]
)
def test_overall_balance_slight_shortfall(
    populations: dict[str, UnitTable], name: str, year: int
) -> None:
    """docs/rules.md#benchmark-table: benchmarks slightly below the sector balance value."""
    u = populations[name]
    alloc = china_power_benchmark(AllocationInputs.from_units(u, year))
    ratio = alloc.sum() / u.baseline_emissions().sum()
    assert 0.95 < ratio < 1.0


def test_beijing_population(populations: dict[str, UnitTable]) -> None:
    u = populations["beijing_2022"]
    assert set(u.subtype_labels()[u.in_sector("power")]) == {"gas"}
    heat = u.in_sector("heat")
    assert heat.sum() == 180
    assert np.all(u.heat_gj[heat] > 0)
    assert np.all(u.product_t[heat] == 0)
    services = u.in_sector("services")
    # sectors without product data carry emission equivalents
    np.testing.assert_allclose(u.product_t[services], u.baseline_emissions()[services])


def test_mac_and_pollutants_present(populations: dict[str, UnitTable]) -> None:
    u = populations["china_national_2024"]
    steel = u.in_sector("steel")
    assert np.all(u.mac_form[steel] == 1)
    assert np.all(u.mac_form[u.in_sector("power")] == 0)
    assert np.all(u.mac_step_share[steel].sum(axis=1) > 0)
    assert np.all(np.diff(u.mac_step_cost, axis=1) >= 0)
    assert np.all(u.pollutant_factors[u.of_subtype("gas"), 1] > 0)


def test_reproducible_from_seed() -> None:
    a = synthetic_population(50, 1e8, rng=5)
    b = synthetic_population(50, 1e8, rng=5)
    c = synthetic_population(50, 1e8, rng=6)
    np.testing.assert_array_equal(a.electricity_mwh, b.electricity_mwh)
    assert not np.array_equal(a.electricity_mwh, c.electricity_mwh)
    assert a.names[0] == "unit00000"


def test_sector_mix_shares_give_counts_by_largest_remainder() -> None:
    u = synthetic_population(
        10, 1e7, rng=0, sector_mix={"power": 0.55, "cement": 0.45}, threshold=5_000.0
    )
    # 5.5 / 4.5 -> floors 5 / 4, one left: ties go to the first sector
    assert int(u.in_sector("power").sum()) == 6
    assert int(u.in_sector("cement").sum()) == 4
    assert u.baseline_emissions().sum() == pytest.approx(1e7, rel=1e-12)


def test_exactly_at_threshold() -> None:
    u = synthetic_population(4, 4 * 26_000.0, rng=0, sector_counts={"generic": 4})
    np.testing.assert_allclose(u.baseline_emissions(), 26_000.0)


class TestErrors:
    def test_total_too_small_names_sector(self) -> None:
        with pytest.raises(ValueError, match=r"sector 'power'.*cannot hold 100 units"):
            synthetic_population(100, 1e6, rng=0)

    def test_counts_must_sum(self) -> None:
        with pytest.raises(ValueError, match=r"sector_counts must sum to n_units = 3, got 2"):
            synthetic_population(3, 1e8, sector_counts={"power": 2})

    def test_unknown_sector(self) -> None:
        with pytest.raises(ValueError, match=r"unknown key 'coal' in sector_counts"):
            synthetic_population(3, 1e8, sector_counts={"coal": 3})

    def test_both_count_and_mix(self) -> None:
        with pytest.raises(ValueError, match="at most one"):
            synthetic_population(3, 1e8, sector_counts={"power": 3}, sector_mix={"power": 1.0})

    def test_emission_shares_must_cover_sectors(self) -> None:
        with pytest.raises(ValueError, match=r"missing or zero: \['steel'\]"):
            synthetic_population(
                4,
                1e8,
                sector_counts={"power": 2, "steel": 2},
                emission_shares={"power": 1.0},
            )

    def test_unknown_preset_lists_names(self) -> None:
        with pytest.raises(ValueError, match=r"unknown coverage preset 'china'.*'beijing_2022'"):
            population_from_preset("china")

    def test_power_mix_keys(self) -> None:
        with pytest.raises(ValueError, match=r"unknown key 'oil' in power_mix"):
            synthetic_population(3, 1e8, power_mix={"oil": 1.0})

    def test_untabulated_benchmark_year(self) -> None:
        with pytest.raises(ValueError, match=r"no power benchmarks are tabulated for year 2030"):
            synthetic_population(3, 1e8, benchmark_year=2030)
