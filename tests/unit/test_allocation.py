"""Allocation rules with hand-worked numbers (docs/rules.md#allocation, docs/rules.md#eu-cap)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carbonsim._registry import UnknownPluginError
from carbonsim.market.allocation import (
    ALLOCATION_RULES,
    AllocationInputs,
    absolute_cap,
    allocate,
    cap_schedule,
    check_allocation,
    china_power_benchmark,
    f_load,
    grandfathering,
    industry_alpha,
    industry_intensity,
    pre_allocation,
    true_up,
)
from carbonsim.market.benchmarks_table import (
    POWER_BENCHMARKS,
    benchmark_frame,
    power_benchmarks,
    pre_allocation_share,
)
from carbonsim.market.paid_allocation import auction_allocation
from carbonsim.market.units import UnitTable, draw_activity


def power_units(load_factor: float = 0.66) -> UnitTable:
    """0: 600 MW coal (> 300 MW class), 3,300,000 MWh + 1,000,000 GJ.
    1: gas, 1,000,000 MWh + 500,000 GJ, low load.
    2: coal <= 300 MW, 1,500,000 MWh + 200,000 GJ.
    3: unconventional coal, 1,000,000 MWh, low load.
    4: a cement plant (not covered by the power rule)."""
    return UnitTable.create(
        ["power", "power", "power", "power", "cement"],
        subtype=["coal_gt300mw", "gas", "coal_le300mw", "coal_unconventional", "none"],
        electricity_mwh=[3.3e6, 1.0e6, 1.5e6, 1.0e6, 0.0],
        heat_gj=[1.0e6, 5.0e5, 2.0e5, 0.0, 0.0],
        product_t=[0.0, 0.0, 0.0, 0.0, 1.0e6],
        intensity_electricity=[0.82, 0.34, 0.99, 0.85, 0.0],
        intensity_heat=[0.105, 0.055, 0.127, 0.0, 0.0],
        intensity_product=[0.0, 0.0, 0.0, 0.0, 0.86],
        capacity_mw=[600.0, 400.0, 280.0, 200.0, 0.0],
        load_factor=[load_factor, 0.3, 0.6, 0.5, 0.0],
    )


class TestBenchmarkTable:
    def test_values_are_the_published_ones(self) -> None:
        assert power_benchmarks(2019)["coal_gt300mw"] == 0.877
        assert power_benchmarks(2023)["heat_gas"] == 0.0536
        assert power_benchmarks(2024)["coal_unconventional"] == 0.8244
        # 2021-22: the 2019-20 values, marked conf. C
        assert power_benchmarks(2022) == power_benchmarks(2020)
        assert all("conf. C" in r.source for r in POWER_BENCHMARKS if r.year in (2021, 2022))
        assert all("docs/rules.md#benchmark-table" in r.source for r in POWER_BENCHMARKS)
        assert benchmark_frame().loc[("gas", 2024), "unit"] == "t/MWh"

    def test_untabulated_year_explains(self) -> None:
        with pytest.raises(ValueError, match=r"year 2025; tabulated years are \[2019"):
            power_benchmarks(2025)

    def test_override_validation(self) -> None:
        with pytest.raises(ValueError, match=r"unknown benchmark key\(s\) \['coal'\]"):
            power_benchmarks(2023, {"coal": 0.8})
        with pytest.raises(ValueError, match=r"benchmarks\['gas'\] must be a number > 0"):
            power_benchmarks(2023, {"gas": -1.0})

    def test_pre_allocation_shares(self) -> None:
        assert pre_allocation_share(2019) == 0.70
        assert pre_allocation_share(2024) == 0.70
        assert pre_allocation_share(2025) == 0.50
        assert pre_allocation_share(2030) == 0.50
        with pytest.raises(ValueError, match="no pre-allocation share before 2019"):
            pre_allocation_share(2018)


class TestChinaPower:
    def test_2023_coal_at_normal_load(self) -> None:
        # 3,300,000 x 0.7950 x 1 + 1,000,000 x 0.1038 = 2,623,500 + 103,800 = 2,727,300 t
        a = china_power_benchmark(AllocationInputs.from_units(power_units(), 2023))
        assert a[0] == 2_727_300.0

    def test_2023_coal_at_low_load_gets_f_load(self) -> None:
        # F_load(0.50) = 1 + 0.12 x (0.65 - 0.50) = 1.018
        # 3,300,000 x 0.7950 x 1.018 + 103,800 = 2,670,723 + 103,800 = 2,774,523 t
        a = china_power_benchmark(AllocationInputs.from_units(power_units(0.5), 2023))
        assert a[0] == 2_774_523.0

    def test_2023_gas_has_no_f_load(self) -> None:
        # 1,000,000 x 0.3305 + 500,000 x 0.0536 = 330,500 + 26,800 = 357,300 t (load 0.3)
        a = china_power_benchmark(AllocationInputs.from_units(power_units(), 2023))
        assert a[1] == 357_300.0

    def test_2023_le300_and_unconventional(self) -> None:
        a = china_power_benchmark(AllocationInputs.from_units(power_units(), 2023))
        # <= 300 MW at load 0.6: F_load = 1 + 0.12 x 0.05 = 1.006
        # 1,500,000 x 0.8090 x 1.006 + 200,000 x 0.1038 = 1,220,781 + 20,760 = 1,241,541 t
        assert a[2] == 1_241_541.0
        # unconventional coal: no F_load even at load 0.5: 1,000,000 x 0.8285 = 828,500 t
        assert a[3] == 828_500.0
        assert a[4] == 0.0  # cement plant: not covered

    def test_2024_benchmarks(self) -> None:
        a = china_power_benchmark(AllocationInputs.from_units(power_units(), 2024))
        # 3,300,000 x 0.7910 + 1,000,000 x 0.1033 = 2,610,300 + 103,300 = 2,713,600 t
        assert a[0] == 2_713_600.0

    def test_2019_formula_with_f_correction(self) -> None:
        inputs = AllocationInputs.from_units(
            power_units(0.5), 2019, parameters={"f_correction": 1.02}
        )
        a = china_power_benchmark(inputs)
        # 1,500,000 x 0.979 x 1.02 + 200,000 x 0.126 = 1,497,870 + 25,200 = 1,523,070 t
        assert a[2] == 1_523_070.0
        # no F_load before 2023 even at low load: 3,300,000 x 0.877 x 1.02 + 1,000,000 x 0.126
        # = 2,951,982 + 126,000 = 3,077,982 t
        assert a[0] == 3_077_982.0
        # gas: 1,000,000 x 0.392 x 1.02 + 500,000 x 0.059 = 399,840 + 29,500 = 429,340 t
        assert a[1] == 429_340.0

    def test_f_correction_per_unit(self) -> None:
        inputs = AllocationInputs.from_units(
            power_units(), 2020, parameters={"f_correction": [1.0, 1.0, 1.0, 1.1, 1.0]}
        )
        # 1,000,000 x 1.146 x 1.1 = 1,260,600 t
        assert china_power_benchmark(inputs)[3] == 1_260_600.0

    def test_2021_uses_2019_20_values_unless_overridden(self) -> None:
        base = china_power_benchmark(AllocationInputs.from_units(power_units(), 2021))
        # 3,300,000 x 0.877 + 1,000,000 x 0.126 = 2,894,100 + 126,000 = 3,020,100 t
        assert base[0] == 3_020_100.0
        inputs = AllocationInputs.from_units(
            power_units(), 2021, parameters={"benchmarks": {"coal_gt300mw": 0.8218}}
        )
        # 3,300,000 x 0.8218 + 126,000 = 2,711,940 + 126,000 = 2,837,940 t
        assert china_power_benchmark(inputs)[0] == 2_837_940.0

    def test_later_years_need_a_table_column(self) -> None:
        with pytest.raises(ValueError, match=r"benchmark_year"):
            china_power_benchmark(AllocationInputs.from_units(power_units(), 2026))
        inputs = AllocationInputs.from_units(
            power_units(), 2026, parameters={"benchmark_year": 2024, "benchmark_scale": 0.98}
        )
        # 0.98 x 2,713,600 = 2,659,328 t
        assert china_power_benchmark(inputs)[0] == 2_659_328.0

    def test_before_2019_raises(self) -> None:
        with pytest.raises(ValueError, match="from 2019"):
            china_power_benchmark(AllocationInputs.from_units(power_units(), 2018))

    def test_f_load_curve(self) -> None:
        # 1 + 0.12 x (0.65 - lf): 1.018 at 0.5, 1.042 at 0.3, 1.054 -> capped at 1.05 at 0.2
        np.testing.assert_allclose(
            f_load([1.0, 0.65, 0.5, 0.3, 0.2, 0.0]), [1, 1, 1.018, 1.042, 1.05, 1.05]
        )
        np.testing.assert_allclose(f_load([0.5], threshold=0.7, slope=0.2, cap=1.1), [1.04])
        with pytest.raises(ValueError, match=r"cap must lie in \[1.0, inf\]"):
            f_load([0.5], cap=0.9)

    def test_load_factor_from_realized_electricity(self) -> None:
        u = power_units(0.6)
        inputs = AllocationInputs(
            year=2023,
            units=u,
            electricity_mwh=np.array([1.32e6, 1e6, 1.5e6, 1e6, 0.0]),
            heat_gj=u.heat_gj,
            product_t=u.product_t,
            verified_emissions=u.baseline_emissions(),
        )
        # 40% of the reference electricity at reference load 0.6 -> load 0.24
        assert inputs.realized_load_factor()[0] == pytest.approx(0.24)
        # F_load = 1 + 0.12 x 0.41 = 1.0492
        # 1,320,000 x 0.7950 x 1.0492 + 103,800 = 1,101,030.48 + 103,800 -> 1,204,830 t
        assert china_power_benchmark(inputs)[0] == 1_204_830.0

    def test_leading_replicate_axis(self) -> None:
        u = power_units()
        draw = draw_activity(u.evolve(sigma_output=np.full(5, 0.1)), years=2, rng=0, replicates=3)
        inputs = AllocationInputs.from_draw(draw, 2023, index=1)
        a = allocate("china_power_benchmark", inputs)
        assert a.shape == (3, 5)
        for r in range(3):
            one = AllocationInputs(
                year=2023,
                units=u,
                electricity_mwh=inputs.electricity_mwh[r],
                heat_gj=inputs.heat_gj[r],
                product_t=inputs.product_t[r],
                verified_emissions=inputs.verified_emissions[r],
                load_factor=inputs.realized_load_factor()[r],
            )
            np.testing.assert_array_equal(a[r], china_power_benchmark(one))


def steel_units() -> UnitTable:
    return UnitTable.create(
        ["steel"] * 4 + ["power"],
        subtype=["none"] * 4 + ["gas"],
        product_t=[1e6, 1e6, 1e6, 1e6, 0.0],
        intensity_product=[1.8, 2.5, 2.4, 1.6, 0.0],
        electricity_mwh=[0.0, 0.0, 0.0, 0.0, 1e6],
        intensity_electricity=[0.0, 0.0, 0.0, 0.0, 0.35],
    )


class TestIndustry:
    def test_alpha_by_hand(self) -> None:
        # X = -10%: alpha = 0.15 x 0.10 = +0.015 (cleaner gets more); X = +25%: -0.03 (capped)
        # X = +/-20%: +/-0.03 at the boundary from both formulas (0.15 x 0.2 = 0.03)
        np.testing.assert_allclose(
            industry_alpha([-0.10, 0.25, 0.20, -0.20, 0.0]), [0.015, -0.03, -0.03, 0.03, 0.0]
        )
        np.testing.assert_allclose(
            industry_alpha([0.1999999, 0.2000001]), [-0.03, -0.03], atol=1e-7
        )

    def test_allocation_with_given_balance_value(self) -> None:
        inputs = AllocationInputs.from_units(
            steel_units(), 2025, parameters={"balance_intensity": {"steel": 2.0}}
        )
        a = industry_intensity(inputs)
        # 1.8e6 x 1.015 = 1,827,000; 2.5e6 x 0.97 = 2,425,000; 2.4e6 x 0.97 = 2,328,000;
        # 1.6e6 x 1.03 = 1,648,000; the power unit is out of scope
        np.testing.assert_array_equal(a, [1_827_000, 2_425_000, 2_328_000, 1_648_000, 0])

    def test_default_balance_value_is_sector_average(self) -> None:
        u = steel_units().subset([0, 3, 4])  # intensities 1.8 and 1.6 -> average 1.7
        a = industry_intensity(AllocationInputs.from_units(u, 2025))
        # X = 1.8/1.7 - 1 = +5.88%: alpha = -0.0088235; 1.8e6 x 0.9911765 = 1,784,118
        # X = 1.6/1.7 - 1 = -5.88%: alpha = +0.0088235; 1.6e6 x 1.0088235 = 1,614,118
        np.testing.assert_array_equal(a, [1_784_118, 1_614_118, 0])

    def test_no_output_with_emissions_gets_minus_cap(self) -> None:
        u = steel_units().subset([0, 3])
        inputs = AllocationInputs(
            year=2025,
            units=u,
            electricity_mwh=np.zeros(2),
            heat_gj=np.zeros(2),
            product_t=np.array([0.0, 1e6]),
            verified_emissions=np.array([1e5, 1.6e6]),
        )
        # unit 0: no output, 100,000 t -> x 0.97 = 97,000; unit 1 at the balance value
        # (sum E / sum Q = 1.7e6 / 1e6 = 1.7 t/t): X = -5.88%, 1,614,118 t
        np.testing.assert_array_equal(industry_intensity(inputs), [97_000, 1_614_118])

    def test_bad_balance_value(self) -> None:
        inputs = AllocationInputs.from_units(
            steel_units(), 2025, parameters={"balance_intensity": {"steel": 0.0}}
        )
        with pytest.raises(ValueError, match=r"balance_intensity'\]\['steel'\] must be > 0"):
            industry_intensity(inputs)


class TestPreAllocationAndTrueUp:
    def test_seventy_percent_rounded_down(self) -> None:
        # 0.7 x 1,000,001 = 700,000.7 -> 700,000 t
        assert pre_allocation([1_000_001.0], year=2023).tolist() == [700_000.0]
        assert pre_allocation([1_000_001.0], 0.7).tolist() == [700_000.0]

    def test_from_2025_at_most_half(self) -> None:
        assert pre_allocation([1_000_001.0], year=2025).tolist() == [500_000.0]

    def test_true_up_signed(self) -> None:
        pre = pre_allocation([1_000_000.0, 1_000_000.0], year=2023)
        up = true_up([1_050_000.0, 600_000.0], pre)
        # +350,000 issued; -100,000 taken back (final allocation below the pre-allocation)
        assert up.tolist() == [350_000.0, -100_000.0]
        assert (pre + up).tolist() == [1_050_000.0, 600_000.0]

    def test_true_up_needs_whole_tonnes(self) -> None:
        with pytest.raises(ValueError, match="final_allocation must hold whole tonnes"):
            true_up([1.5], [1.0])

    def test_pre_allocation_needs_share_or_year(self) -> None:
        with pytest.raises(TypeError, match="share or year"):
            pre_allocation([1.0])


class TestCapAndGrandfathering:
    def test_eu_cap_schedule_by_hand(self) -> None:
        s = cap_schedule(1e9, 2020, range(2020, 2031))
        # 2.2% of 1 Gt = 22 Mt a year 2021-23; 43 Mt 2024-27; 44 Mt 2028-30
        expected = [1000, 978, 956, 934, 891, 848, 805, 762, 718, 674, 630]
        np.testing.assert_allclose(s.to_numpy(), np.array(expected) * 1e6)
        assert s.index.name == "year"
        assert s.name == "cap_t"

    def test_reference_cap_and_constant_lrf(self) -> None:
        s = cap_schedule(900.0, 2020, [2021], reference_cap=1000.0)
        assert s.tolist() == pytest.approx([878.0])
        assert cap_schedule(100.0, 2000, [2003], lrf=0.5).tolist() == [0.0]  # floored at 0

    def test_schedule_ends_in_2030(self) -> None:
        with pytest.raises(ValueError, match="no linear reduction factor for 2031"):
            cap_schedule(1e9, 2020, [2031])

    def test_absolute_cap_largest_remainder(self) -> None:
        u = UnitTable.create(["generic"] * 3, product_t=[1.0, 1.0, 1.0], intensity_product=1.0)
        a = absolute_cap(AllocationInputs.from_units(u, 2021, parameters={"cap": 1000}))
        assert a.tolist() == [334.0, 333.0, 333.0]

    def test_absolute_cap_free_share_and_schedule(self) -> None:
        u = UnitTable.create(["generic"] * 2, product_t=[3.0, 1.0], intensity_product=1.0)
        sched = cap_schedule(1023.0, 2020, [2020, 2021], reference_cap=1000.0)  # 2021: 1001
        inputs = AllocationInputs.from_units(
            u, 2021, parameters={"cap_schedule": sched, "free_share": 0.5}
        )
        # floor(0.5 x 1001) = 500 t split 3:1 -> 375 / 125
        assert absolute_cap(inputs).tolist() == [375.0, 125.0]
        with pytest.raises(ValueError, match=r"no cap for year 2022; it covers \[2020, 2021\]"):
            absolute_cap(inputs.__class__.from_units(u, 2022, parameters={"cap_schedule": sched}))

    def test_absolute_cap_needs_a_cap(self) -> None:
        u = UnitTable.create(["generic"], product_t=[1.0], intensity_product=1.0)
        with pytest.raises(ValueError, match=r"parameters\['cap'\]"):
            absolute_cap(AllocationInputs.from_units(u, 2021))

    def test_grandfathering_by_hand(self) -> None:
        u = UnitTable.create(["services", "heat"], product_t=[1e6, 0.0], intensity_product=1.0)
        p = {
            "factor": 0.98,
            "annual_decline": 0.02,
            "base_year": 2022,
            "historical_emissions": [1e6, 2e5],
        }
        a = grandfathering(AllocationInputs.from_units(u, 2024, parameters=p))
        # 1,000,000 x 0.98 x 0.98**2 = 941,192; 200,000 x 0.98**3 = 188,238.4 -> 188,238
        assert a.tolist() == [941_192.0, 188_238.0]
        only = grandfathering(
            AllocationInputs.from_units(u, 2024, parameters={**p, "sectors": ["heat"]})
        )
        assert only.tolist() == [0.0, 188_238.0]


class TestRegistryAndProtocol:
    def test_registered_names(self) -> None:
        assert {
            "china_power_benchmark",
            "industry_intensity",
            "grandfathering",
            "absolute_cap",
            "by_sector",
        } <= set(ALLOCATION_RULES.names())

    def test_unknown_name_lists_valid_ones(self) -> None:
        u = power_units()
        with pytest.raises(UnknownPluginError, match=r"'benchmark'.*'china_power_benchmark'"):
            allocate("benchmark", AllocationInputs.from_units(u, 2023))

    def test_check_allocation_rejects_fractions_and_shapes(self) -> None:
        inputs = AllocationInputs.from_units(power_units(), 2023)
        with pytest.raises(ValueError, match="whole tonnes"):
            allocate(lambda i: np.full(i.shape, 0.5), inputs)
        with pytest.raises(ValueError, match=r"must return shape \(5,\)"):
            check_allocation(np.zeros(4), inputs)
        with pytest.raises(ValueError, match="must be >= 0"):
            check_allocation(-np.ones(5), inputs)

    def test_by_sector_adds_rules(self) -> None:
        u = UnitTable.create(
            ["power", "steel", "steel"],
            subtype=["gas", "none", "none"],
            electricity_mwh=[1e6, 0.0, 0.0],
            intensity_electricity=[0.34, 0.0, 0.0],
            product_t=[0.0, 1e6, 1e6],
            intensity_product=[0.0, 1.8, 2.2],
        )
        rules = {"power": "china_power_benchmark", "steel": "industry_intensity"}
        a = allocate(
            "by_sector", AllocationInputs.from_units(u, 2024, parameters={"rules_by_sector": rules})
        )
        # gas: 1,000,000 x 0.3288 = 328,800; steel balance 2.0: 1.8e6 x 1.015, 2.2e6 x 0.985
        assert a.tolist() == [328_800.0, 1_827_000.0, 2_167_000.0]

    def test_by_sector_rejects_unknown_rule(self) -> None:
        u = power_units()
        inputs = AllocationInputs.from_units(
            u, 2023, parameters={"rules_by_sector": {"power": "x"}}
        )
        with pytest.raises(UnknownPluginError, match="valid names are"):
            allocate("by_sector", inputs)

    def test_inputs_validation_names_field(self) -> None:
        u = power_units()
        with pytest.raises(ValueError, match=r"AllocationInputs\.heat_gj must be >= 0"):
            AllocationInputs(
                year=2023,
                units=u,
                electricity_mwh=u.electricity_mwh,
                heat_gj=-u.heat_gj - 1.0,
                product_t=u.product_t,
                verified_emissions=u.baseline_emissions(),
            )
        with pytest.raises(ValueError, match=r"product_t must have shape \(\.\.\., N\) with N = 5"):
            AllocationInputs(
                year=2023,
                units=u,
                electricity_mwh=u.electricity_mwh,
                heat_gj=u.heat_gj,
                product_t=np.zeros(4),
                verified_emissions=u.baseline_emissions(),
            )


class TestAuction:
    def test_allowances_and_payments(self) -> None:
        # four units bid 40 t each for 100 t above a 100 yuan/t reserve; 90 is rejected,
        # 110 and 105 fill in full, 104 sets the uniform price and gets the remaining 20 t
        r = auction_allocation([110.0, 105.0, 104.0, 90.0], [40, 40, 40, 40], 100, 100.0)
        assert r.price == 104.0
        assert r.allowances.tolist() == [40.0, 40.0, 20.0, 0.0]
        assert r.payment.tolist() == [4_160.0, 4_160.0, 2_080.0, 0.0]
        assert (r.volume, r.unsold, r.n_winners) == (100.0, 0.0, 3)

    def test_nothing_sold(self) -> None:
        r = auction_allocation([90.0], [40], 100, 100.0)
        assert math.isnan(r.price)
        assert r.payment.tolist() == [0.0]
        assert r.unsold == 100.0


def test_unknown_allocation_parameters_are_refused_naming_the_valid_ones() -> None:
    from carbonsim.engine import simulate
    from carbonsim.market.allocation_parameters import RULE_PARAMETERS, check_rule_parameters
    from carbonsim.scenario import load_scenario
    from carbonsim.scenario.loader import with_overrides

    sc = with_overrides(
        load_scenario("china-national-tiny"),
        {"periods.0.allocation_params": {"benchmark_scal": 0.9}},
    )
    with pytest.raises(
        ValueError,
        match=r"periods\[2019-2020\]\.allocation_params: unknown parameter 'benchmark_scal' "
        r"of allocation rule 'china_power_benchmark'; valid parameters: benchmark_scale",
    ):
        simulate(sc)
    # by_sector accepts its sub-rules' parameters, nothing else
    params = {"rules_by_sector": {"power": "china_power_benchmark"}, "benchmark_scale": 0.9}
    check_rule_parameters("by_sector", params, "x")
    with pytest.raises(ValueError, match="unknown parameter 'alpha_cap'"):
        check_rule_parameters("by_sector", {**params, "alpha_cap": 0.1}, "x")
    # every built-in rule declares its parameters
    from carbonsim.market.allocation import ALLOCATION_RULES

    assert set(ALLOCATION_RULES.names()) <= set(RULE_PARAMETERS)
