"""Compliance rules, hand-worked (docs/rules.md#compliance)."""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim.market.compliance import (
    UNLIMITED,
    apply_banking_limit,
    apply_surrender,
    banking_limit,
    borrowing_allowed,
    borrowing_amount,
    deadline_stages,
    obligation,
    offset_limit,
    surrender_plan,
    verified_emissions,
)
from carbonsim.market.ledger import Ledger


class TestVerifiedEmissions:
    def test_rounding_modes(self) -> None:
        e = [1_000.4, 1_000.5, 0.2]
        assert verified_emissions(e).tolist() == [1_000, 1_001, 0]
        assert verified_emissions(e, rounding="up").tolist() == [1_001, 1_001, 1]
        assert verified_emissions(e, rounding="down").tolist() == [1_000, 1_000, 0]

    def test_binary_artefacts_do_not_lose_a_tonne(self) -> None:
        assert verified_emissions([0.29 * 100], rounding="down").tolist() == [29]

    def test_verification_error_is_seeded(self) -> None:
        e = np.full((2, 500), 100_000.0)
        a = verified_emissions(e, relative_error=0.02, rng=7)
        b = verified_emissions(e, relative_error=0.02, rng=7)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.int64
        assert a.shape == (2, 500)
        assert 0.99 < a.mean() / 100_000 < 1.01
        assert 0.015 < a.std() / 100_000 < 0.025

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match=r"emissions must be >= 0, got emissions\[1\] = -1.0"):
            verified_emissions([1.0, -1.0])
        with pytest.raises(ValueError, match="rounding must be 'nearest', 'up' or 'down'"):
            verified_emissions([1.0], rounding="bankers")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="relative_error must lie in"):
            verified_emissions([1.0], relative_error=-0.1)


class TestObligation:
    def test_gap_cap_tops_up_to_80_percent(self) -> None:
        # verified 1,000,000 t, allocation 700,000 t (70% < 80%): the regulator tops the
        # allocation up by 100,000 t to 800,000 t; the unit surrenders 1,000,000 t and is
        # short 200,000 t = 20% of its verified emissions.
        r = obligation(1_000_000, 700_000, is_gas=False)
        assert (int(r.obligation), int(r.top_up)) == (1_000_000, 100_000)
        assert int(r.obligation) - (700_000 + int(r.top_up)) == 200_000

    def test_gap_cap_as_obligation_cap(self) -> None:
        # the 2019-20 plan's wording: obligation at most allocation + 20% of verified
        r = obligation(1_000_000, 700_000, is_gas=False, gap_relief="cap")
        assert (int(r.obligation), int(r.top_up)) == (900_000, 0)

    @pytest.mark.parametrize("alloc", [800_000, 850_000, 1_200_000])
    def test_no_top_up_at_or_above_80_percent(self, alloc: int) -> None:
        r = obligation(1_000_000, alloc, is_gas=False)
        assert (int(r.obligation), int(r.top_up)) == (1_000_000, 0)

    def test_gap_cap_rounds_the_allowed_gap_down(self) -> None:
        # 20% of 999,999 t is 199,999.8 t: the allowed gap is 199,999 t, top-up 800,000 t
        r = obligation(999_999, 0, is_gas=False)
        assert int(r.top_up) == 800_000

    def test_gas_units_never_short(self) -> None:
        r = obligation(
            [500_000, 500_000, 500_000], [450_000, 600_000, 300_000], is_gas=[True, True, True]
        )
        assert r.obligation.tolist() == [450_000, 500_000, 300_000]
        assert r.top_up.tolist() == [0, 0, 0]

    def test_gas_exemption_switched_off(self) -> None:
        r = obligation(500_000, 300_000, is_gas=True, gas_exemption=False)
        assert (int(r.obligation), int(r.top_up)) == (500_000, 100_000)

    def test_gap_cap_switched_off(self) -> None:
        r = obligation(1_000_000, 700_000, is_gas=False, gap_cap_share=None)
        assert (int(r.obligation), int(r.top_up)) == (1_000_000, 0)

    def test_broadcasts_over_replicates(self) -> None:
        r = obligation(
            [[1_000, 1_000], [2_000, 100]], [[700, 1_000], [0, 100]], is_gas=[False, True]
        )
        assert r.obligation.tolist() == [[1_000, 1_000], [2_000, 100]]
        assert r.top_up.tolist() == [[100, 0], [1_600, 0]]

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match=r"gap_cap_share must lie in \[0.0, 1.0\], got 1.5"):
            obligation(1, 1, is_gas=False, gap_cap_share=1.5)
        with pytest.raises(ValueError, match=r"allocation must be >= 0"):
            obligation(1, -1, is_gas=False)
        with pytest.raises(ValueError, match="must broadcast"):
            obligation([1, 2], [1, 2, 3], is_gas=False)
        with pytest.raises(ValueError, match="gap_relief must be 'top_up' or 'cap'"):
            obligation(1, 1, is_gas=False, gap_relief="both")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="is_gas must be boolean"):
            obligation(1, 1, is_gas=0.5)


class TestOffsetLimit:
    def test_five_percent_rounded_down(self) -> None:
        assert offset_limit([1_000_000, 999_999, 19]).tolist() == [50_000, 49_999, 0]

    def test_other_share(self) -> None:
        assert offset_limit([1_000_000], share=0.03).tolist() == [30_000]

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match=r"share must lie in \[0.0, 1.0\]"):
            offset_limit([1], share=1.5)
        with pytest.raises(ValueError, match=r"obligation must be >= 0"):
            offset_limit([-1])


class TestSurrenderPlan:
    def test_allowances_first_then_offsets_up_to_cap(self) -> None:
        # obligation 1,000,000; 900,000 allowances; offsets 30,000 legacy + 40,000 new;
        # cap 50,000 -> 30,000 legacy + 20,000 new; shortfall 50,000
        p = surrender_plan([1_000_000], [900_000], [[30_000, 40_000]])
        assert p.allowances.tolist() == [900_000]
        assert p.offsets.tolist() == [[30_000, 20_000]]
        assert p.shortfall.tolist() == [50_000]

    def test_offsets_unused_when_allowances_suffice(self) -> None:
        p = surrender_plan([1_000], [5_000], [[100, 100]])
        assert (p.allowances.tolist(), p.offsets.tolist(), p.shortfall.tolist()) == (
            [1_000],
            [[0, 0]],
            [0],
        )

    def test_offsets_first(self) -> None:
        p = surrender_plan([1_000_000], [990_000], [[30_000, 40_000]], offset_first=True)
        assert p.offsets.tolist() == [[30_000, 20_000]]
        assert p.allowances.tolist() == [950_000]
        assert p.shortfall.tolist() == [0]

    def test_explicit_cap_and_no_offsets(self) -> None:
        p = surrender_plan([100], [0], [[500]], offset_cap=[7])
        assert (p.offsets.tolist(), p.shortfall.tolist()) == ([[7]], [93])
        p = surrender_plan([[100, 50]], [[60, -5]])
        assert p.offsets.shape == (1, 2, 0)
        assert p.allowances.tolist() == [[60, 0]]
        assert p.shortfall.tolist() == [[40, 50]]

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match="must have shape"):
            surrender_plan([1, 2], [1, 2], [[1], [2], [3]])
        with pytest.raises(ValueError, match=r"obligation must be >= 0"):
            surrender_plan([-1], [0])


def _compliance_ledger() -> Ledger:
    """Unit a: 300 t of 2022 and 600 t of 2023, 30 legacy + 40 new CCER; b: 100 t of 2024."""
    led = Ledger(1, ["a", "b"], [2022, 2023, 2024], ("legacy CCER", "new CCER"))
    led.allocate(2022, [[300, 0]], issue=True)
    led.allocate(2023, [[600, 0]], issue=True)
    led.allocate(2024, [[0, 100]], issue=True)
    led.issue_offsets("legacy CCER", [[30, 0]], account="units")
    led.issue_offsets("new CCER", [[40, 0]], account="units")
    return led


class TestApplySurrender:
    def test_surrender_through_the_ledger(self) -> None:
        led = _compliance_ledger()
        out = apply_surrender(led, [[1_000, 100]], 2023)
        assert out.allowances.tolist() == [[900, 0]]
        assert out.allowances_by_vintage[0].tolist() == [[300, 600, 0], [0, 0, 0]]
        assert out.offsets[0].tolist() == [[30, 20], [0, 0]]
        assert out.shortfall.tolist() == [[50, 100]]
        assert led.surrendered[0].tolist() == [300, 600, 0]
        assert led.offsets_surrendered[0].tolist() == [30, 20]
        assert led.allowances[0, 1].tolist() == [0, 0, 100]  # 2024 not valid for 2023
        led.check()

    def test_eligible_classes_and_vintages(self) -> None:
        led = _compliance_ledger()
        out = apply_surrender(
            led,
            [[1_000, 100]],
            2023,
            eligible_offset_classes=["new CCER"],
            eligible_vintages=[2022, 2023, 2024],
        )
        assert out.offsets[0].tolist() == [[0, 40], [0, 0]]
        assert out.shortfall.tolist() == [[60, 0]]
        assert led.offsets[0, 0].tolist() == [30, 0]

    def test_offsets_first_through_the_ledger(self) -> None:
        led = _compliance_ledger()
        out = apply_surrender(led, [[400, 0]], 2023, offset_first=True)
        # cap floor(5% x 400) = 20: 20 legacy CCER, then 380 allowances, oldest first
        assert out.offsets[0, 0].tolist() == [20, 0]
        assert out.allowances_by_vintage[0, 0].tolist() == [300, 80, 0]
        led.check()

    def test_validation(self) -> None:
        led = _compliance_ledger()
        with pytest.raises(ValueError, match=r"obligation must have shape \(R, N\) = \(1, 2\)"):
            apply_surrender(led, [1, 2], 2023)
        with pytest.raises(ValueError, match="offset class 'CCER' is not in the ledger"):
            apply_surrender(led, [[1, 2]], 2023, eligible_offset_classes=["CCER"])
        with pytest.raises(ValueError, match="vintage 2019 is not in the ledger"):
            apply_surrender(led, [[1, 2]], 2023, eligible_vintages=[2019])


class TestBorrowing:
    def test_gap_above_ten_percent_borrows_half(self) -> None:
        # allocation 1,000,000 t, gap 150,000 t (15% > 10%): may borrow 75,000 t
        assert borrowing_allowed([150_000], [1_000_000], 2022).tolist() == [True]
        assert borrowing_amount([150_000], [1_000_000], 2021).tolist() == [75_000]
        assert borrowing_amount([150_001], [1_000_000], 2021).tolist() == [75_000]

    def test_threshold_is_strict_unless_inclusive(self) -> None:
        assert borrowing_allowed([100_000], [1_000_000], 2022).tolist() == [False]
        assert borrowing_allowed([100_000], [1_000_000], 2022, inclusive=True).tolist() == [True]
        assert borrowing_amount([100_000], [1_000_000], 2022, inclusive=True).tolist() == [50_000]

    def test_only_2021_and_2022(self) -> None:
        for year in (2019, 2020, 2023, 2024):
            assert borrowing_amount([500_000], [1_000_000], year).tolist() == [0]

    def test_edge_cases(self) -> None:
        assert borrowing_allowed([0, 5], [0, 0], 2021).tolist() == [False, True]
        with pytest.raises(ValueError, match=r"gap must be >= 0"):
            borrowing_allowed([-1], [10], 2021)
        with pytest.raises(TypeError, match="year must be an int"):
            borrowing_allowed([1], [10], 2021.0)  # type: ignore[arg-type]

    def test_borrowed_tonnes_count_at_the_2022_deadline(self) -> None:
        led = Ledger(1, ["a"], [2021, 2022, 2023])
        led.allocate(2022, [[1_000_000]], issue=True)
        gap = np.array([[150_000]])
        amount = borrowing_amount(gap, [[1_000_000]], 2022)
        led.borrow(amount, 2023)
        out = apply_surrender(led, [[1_150_000]], 2022, eligible_vintages=[2021, 2022, 2023])
        assert out.shortfall.tolist() == [[75_000]]
        assert led.borrowed[0, 0, 2] == 75_000
        led.check()


class TestBanking:
    def test_limit(self) -> None:
        # 10,000 t + 1.5 x 20,000 t of net sales = 40,000 t; a net buyer keeps 10,000 t
        assert banking_limit([20_000, -5_000, 3], 2024).tolist() == [40_000, 10_000, 10_004]
        assert banking_limit([20_000], 2025).tolist() == [40_000]
        assert banking_limit([20_000], 2023).tolist() == [UNLIMITED]

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match="base must be a non-negative int"):
            banking_limit([1], 2024, base=-1)
        with pytest.raises(ValueError, match=r"sales_multiple must lie in"):
            banking_limit([1], 2024, sales_multiple=-1.0)

    def _ledger(self) -> Ledger:
        led = Ledger(1, ["a", "b", "c"], [2023, 2024, 2025])
        led.allocate(2023, [[30_000, 0, 0]], issue=True)
        led.allocate(2024, [[40_000, 5_000, 0]], issue=True)
        return led

    def test_excess_cancelled_oldest_first_rest_carried(self) -> None:
        led = self._ledger()
        out = apply_banking_limit(led, [[20_000, -100, 0]], 2024, into_vintage=2025)
        assert out.limit.tolist() == [[40_000, 10_000, 10_000]]
        assert out.cancelled.tolist() == [[30_000, 0, 0]]
        assert out.carried.tolist() == [[40_000, 5_000, 0]]
        assert led.cancelled[0].tolist() == [30_000, 0, 0]
        assert led.allowances[0].tolist() == [[0, 0, 40_000], [0, 0, 5_000], [0, 0, 0]]
        assert led.carried_in[0].tolist() == [0, 0, 45_000]
        led.check()

    def test_without_carry_and_unrestricted_year(self) -> None:
        led = self._ledger()
        out = apply_banking_limit(led, [[0, 0, 0]], 2023)
        assert out.cancelled.sum() == 0
        out = apply_banking_limit(led, [[0, 0, 0]], 2024)
        # a holds 70,000 t against a 10,000 t limit: 30,000 of 2023 and 30,000 of 2024 go
        assert out.cancelled.tolist() == [[60_000, 0, 0]]
        assert led.allowances[0, 0].tolist() == [0, 10_000, 0]
        led.check()

    def test_bad_into_vintage_leaves_ledger_unchanged(self) -> None:
        led = self._ledger()
        before = led.snapshot()
        with pytest.raises(ValueError, match="into_vintage 2024 must not be one of"):
            apply_banking_limit(led, [[0, 0, 0]], 2024, into_vintage=2024)
        for name, arr in before.items():
            np.testing.assert_array_equal(arr, led.snapshot()[name])


class TestDeadlineStages:
    def test_95_percent_by_first_deadline(self) -> None:
        stages = deadline_stages((0.95, 1.0), key=np.arange(20.0))
        assert stages.tolist() == [0] * 19 + [1]
        stages = deadline_stages((0.95, 1.0), key=-np.arange(20.0))
        assert stages.tolist() == [1] + [0] * 19

    def test_at_least_the_share_is_due(self) -> None:
        # 95% of 10 units is 9.5: 10 units are due at the first deadline
        assert deadline_stages((0.95, 1.0), key=np.zeros(10)).tolist() == [0] * 10
        # 95% of 41 units is 38.95 -> 39; ties broken by unit order
        stages = deadline_stages((0.95, 1.0), key=np.zeros(41))
        assert stages.tolist() == [0] * 39 + [1, 1]

    def test_random_ranking_is_seeded_per_replicate(self) -> None:
        a = deadline_stages((0.5, 0.95, 1.0), shape=(3, 40), rng=1)
        b = deadline_stages((0.5, 0.95, 1.0), shape=(3, 40), rng=1)
        np.testing.assert_array_equal(a, b)
        for row in a:
            assert np.bincount(row).tolist() == [20, 18, 2]
        assert not np.array_equal(a[0], a[1])

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match="the last share must be 1"):
            deadline_stages((0.5, 0.9), key=[1.0])
        with pytest.raises(ValueError, match="non-decreasing"):
            deadline_stages((0.9, 0.5, 1.0), key=[1.0])
        with pytest.raises(ValueError, match="exactly one of key"):
            deadline_stages((1.0,))
        with pytest.raises(ValueError, match=r"shares\[0\] must lie in"):
            deadline_stages((1.5, 1.0), key=[1.0])
