"""Penalty regimes with hand-worked numbers, the registry, the reference price and enforcement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carbonsim._registry import UnknownPluginError
from carbonsim.market.compliance import apply_surrender, obligation
from carbonsim.market.ledger import Ledger
from carbonsim.market.penalties import (
    PENALTY_REGIMES,
    PenaltyOutcome,
    assess_penalty,
    china_2021_measures,
    china_2024_interim,
    enforce,
    eu,
    reference_price,
)


class TestChina2021Measures:
    def test_fixed_fine_per_non_compliant_entity_plus_deduction(self) -> None:
        out = china_2021_measures([[0, 1, 50_000]])
        assert out.fine.tolist() == [[0.0, 20_000.0, 20_000.0]]
        assert out.deduction.tolist() == [[0, 1, 50_000]]
        assert out.carried_obligation.tolist() == [[0, 0, 0]]

    def test_fine_parameter_within_statutory_range(self) -> None:
        out = china_2021_measures([3], fine_per_entity=30_000)
        assert out.fine.tolist() == [30_000.0]
        with pytest.raises(
            ValueError, match=r"fine_per_entity must lie in \[20000.0, 30000.0\], got 35000.0"
        ):
            china_2021_measures([3], fine_per_entity=35_000)


class TestChina2024Interim:
    def test_multiple_of_last_month_price_per_missing_tonne(self) -> None:
        # replicate 0: price 90 yuan/t, 1,000 t short -> 5 x 90 x 1,000 = 450,000 yuan
        # replicate 1: price 100 yuan/t, 500 t short -> 250,000 yuan
        out = china_2024_interim([[0, 1_000], [500, 0]], market_price=[90.0, 100.0])
        assert out.fine.tolist() == [[0.0, 450_000.0], [250_000.0, 0.0]]
        assert out.deduction.tolist() == [[0, 1_000], [500, 0]]
        assert out.carried_obligation.tolist() == [[0, 0], [0, 0]]

    def test_multiple_and_price_shapes(self) -> None:
        out = china_2024_interim([10, 20], market_price=100.0, price_multiple=10)
        assert out.fine.tolist() == [10_000.0, 20_000.0]
        out = china_2024_interim([[10, 20]], market_price=[[100.0, 50.0]])
        assert out.fine.tolist() == [[5_000.0, 5_000.0]]

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match=r"needs market_price"):
            china_2024_interim([1])
        with pytest.raises(ValueError, match=r"price_multiple must lie in \[5.0, 10.0\], got 4.0"):
            china_2024_interim([1], market_price=1.0, price_multiple=4)
        with pytest.raises(ValueError, match=r"market_price must be a scalar or have shape \(2,\)"):
            china_2024_interim([[1, 2], [3, 4]], market_price=[1.0, 2.0, 3.0])
        with pytest.raises(ValueError, match=r"market_price must be >= 0"):
            china_2024_interim([1], market_price=-1.0)
        with pytest.raises(ValueError, match=r"shortfall must be >= 0, got shortfall\[0\] = -1"):
            china_2024_interim([-1], market_price=1.0)


class TestEU:
    def test_fine_per_tonne_and_obligation_remains(self) -> None:
        out = eu([0, 250])
        assert out.fine.tolist() == [0.0, 25_000.0]
        assert out.deduction.tolist() == [0, 0]
        assert out.carried_obligation.tolist() == [0, 250]
        assert eu([2], fine_per_tonne=120.5).fine.tolist() == [241.0]

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match=r"fine_per_tonne must lie in \[0.0, inf\]"):
            eu([1], fine_per_tonne=-1.0)


class TestRegistry:
    def test_built_in_names(self) -> None:
        assert PENALTY_REGIMES.names() == ["china_2021_measures", "china_2024_interim", "eu"]

    def test_unknown_name_lists_valid_ones(self) -> None:
        with pytest.raises(UnknownPluginError, match=r"unknown penalty regime 'us'.*'eu'"):
            assess_penalty("us", [1])

    def test_assess_penalty_dispatches_with_parameters(self) -> None:
        out = assess_penalty("china_2024_interim", [4], market_price=50.0, price_multiple=6)
        assert out.fine.tolist() == [1_200.0]
        out = assess_penalty("china_2021_measures", [4], market_price=50.0)
        assert out.fine.tolist() == [20_000.0]


class TestReferencePrice:
    dates = pd.to_datetime(["2024-11-29", "2024-12-02", "2024-12-16", "2024-12-31"])

    def test_plain_mean_over_month_before_deadline(self) -> None:
        # window [2024-11-30, 2024-12-31): the 2 and 16 December closes
        price = [80.0, 90.0, 100.0, 200.0]
        assert float(reference_price(self.dates, price, "2024-12-31")) == 95.0

    def test_volume_weighted_per_replicate(self) -> None:
        price = [[80.0, 90.0, 100.0, 200.0], [80.0, 90.0, 110.0, 200.0]]
        volume = [[1.0, 1.0, 3.0, 1.0], [1.0, 0.0, 0.0, 1.0]]
        out = reference_price(self.dates, price, "2024-12-31", volume=volume)
        # replicate 0: (90 + 300) / 4 = 97.5; replicate 1: no volume -> plain mean 100
        assert out.tolist() == [97.5, 100.0]

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match="no trading day in the window"):
            reference_price(self.dates, [1.0] * 4, "2024-06-30")
        with pytest.raises(ValueError, match=r"price must have shape \(..., T\) with T = len"):
            reference_price(self.dates, [1.0] * 3, "2024-12-31")
        with pytest.raises(ValueError, match="volume must have the shape of price"):
            reference_price(self.dates, [1.0] * 4, "2024-12-31", volume=[1.0])


class TestEnforce:
    def test_fine_paid_and_deduction_applied_at_next_allocation(self) -> None:
        led = Ledger(1, ["a", "b"], [2024, 2025])
        led.allocate(2024, [[900, 100]], issue=True)
        out = apply_surrender(led, [[1_000, 100]], 2024)
        assert out.shortfall.tolist() == [[100, 0]]
        pen = china_2024_interim(out.shortfall, market_price=[90.0])
        enforce(led, pen, deduction_vintage=2025)
        assert led.government_cash.tolist() == [45_000.0]
        assert led.cash[0].tolist() == [-45_000.0, 0.0]
        alloc = led.allocate(2025, [[1_000, 100]], issue=True)
        assert alloc.delivered.tolist() == [[900, 100]]
        assert led.deducted[0].tolist() == [0, 100]
        led.check()

    def test_validated_before_anything_is_booked(self) -> None:
        led = Ledger(1, ["a"], [2024])
        pen = PenaltyOutcome(np.array([[5.0]]), np.array([[1]]), np.array([[0]]))
        with pytest.raises(ValueError, match="vintage 2025 is not in the ledger"):
            enforce(led, pen, deduction_vintage=2025)
        assert led.government_cash.tolist() == [0.0]
        bad = PenaltyOutcome(np.array([5.0]), np.array([1]), np.array([0]))
        with pytest.raises(ValueError, match=r"outcome.fine must have shape \(R, N\) = \(1, 1\)"):
            enforce(led, bad, deduction_vintage=2024)


def test_full_cycle_conserves_and_settles_the_gap() -> None:
    """Verified 1,000,000 t against 700,000 t allocated: top-up, trade, surrender, penalty."""
    led = Ledger(1, ["coal", "gas", "seller"], [2023, 2024], ("new CCER",))
    verified = np.array([[1_000_000, 500_000, 100_000]])
    alloc = np.array([[700_000, 450_000, 200_000]])
    ob = obligation(verified, alloc, is_gas=[False, True, False])
    assert ob.obligation.tolist() == [[1_000_000, 450_000, 100_000]]
    assert ob.top_up.tolist() == [[100_000, 0, 0]]
    led.allocate(2023, alloc + ob.top_up, issue=True)
    led.issue_offsets("new CCER", 60_000)
    led.transfer_offsets("new CCER", [[50_000, 0, 0]], price=40.0)
    led.settle_trades([[80_000, 0, 0]], [[0, 0, 80_000]], price=60.0)
    out = apply_surrender(led, ob.obligation, 2023)
    # coal: 880,000 allowances + 50,000 CCER (5% cap) -> 70,000 t short
    assert out.allowances.tolist() == [[880_000, 450_000, 100_000]]
    assert out.offsets[..., 0].tolist() == [[50_000, 0, 0]]
    assert out.shortfall.tolist() == [[70_000, 0, 0]]
    enforce(led, assess_penalty("china_2021_measures", out.shortfall), deduction_vintage=2024)
    led.allocate(2024, [[700_000, 450_000, 200_000]], issue=True)
    assert led.allowances[0, :, 1].tolist() == [630_000, 450_000, 200_000]
    report = led.check()
    assert report.cash_total[0] == pytest.approx(0.0, abs=1e-6)
    assert led.government_cash[0] == 20_000.0
    assert led.project_cash[0] == 2_000_000.0


# ------------------------------------------------------- attacks that got through (#21, 6)


@pytest.mark.parametrize("weighted", [False, True])
def test_reference_price_of_a_replicate_does_not_depend_on_the_batch(weighted: bool) -> None:
    # the month's mean was taken over the last axis of a boolean-indexed (Fortran-ordered)
    # window: replicates 3, 5 and 7 of this batch differed from themselves alone in the
    # last bit
    dates = pd.bdate_range("2021-11-01", "2021-12-31").values
    rng = np.random.default_rng(3)
    price = np.round(15.0 + 10.0 * rng.random((8, dates.size)), 2)
    volume = np.round(1e5 * rng.random((8, dates.size))) if weighted else None
    batch = reference_price(dates, price, "2021-12-31", volume=volume)
    assert batch.shape == (8,)
    for k in range(8):
        vol_k = None if volume is None else volume[k]
        alone = reference_price(dates, price[k], "2021-12-31", volume=vol_k)
        assert alone.shape == ()
        assert batch[k] == alone, k  # bit for bit
        vol_1 = None if volume is None else volume[k : k + 1]
        assert reference_price(dates, price[k : k + 1], "2021-12-31", volume=vol_1)[0] == alone


def test_interim_penalties_of_a_replicate_do_not_depend_on_the_batch() -> None:
    # units.penalty under china_2024_interim differed by one ulp between replicate k of a
    # batch and replicate k alone, so sweeps depended on their chunking
    from carbonsim.engine.simulation import Simulation
    from carbonsim.scenario import load_scenario, with_overrides

    sc = with_overrides(
        load_scenario("china-national-tiny"), {"penalties.1.start": "2021-01-01"}
    )  # the 2024 regime at the 2021 deadline
    assert sc.penalties[1].regime == "china_2024_interim"
    batch = Simulation(sc, seed=0, replicates=5).run()
    assert batch.units["penalty"].sum() > 0
    for k in range(5):
        alone = Simulation(sc, seed=0, replicates=1, first_replicate=k).run()
        mine = batch.units.xs(k, level="replicate", drop_level=False)
        np.testing.assert_array_equal(alone.units["penalty"], mine["penalty"])
        pd.testing.assert_frame_equal(alone.units, mine, check_exact=True)
