"""Registry ledger: every operation with hand-worked numbers, its errors and its audit views."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carbonsim.market.ledger import ConservationError, Ledger, LedgerError

UNITS = ["a", "b", "c"]
VINTAGES = [2021, 2022, 2023]
CLASSES = ("legacy CCER", "new CCER")


def make(n_replicates: int = 1, **kwargs: bool) -> Ledger:
    return Ledger(n_replicates, UNITS, VINTAGES, CLASSES, **kwargs)


def holding(a: int, b: int, c: int) -> list[list[int]]:
    return [[a, b, c]]


def stocked(**kwargs: bool) -> Ledger:
    """Unit a: 30 t of 2021, 50 t of 2022, 10 t of 2023; b and c hold nothing."""
    led = make(**kwargs)
    led.allocate(2021, holding(30, 0, 0), issue=True)
    led.allocate(2022, holding(50, 0, 0), issue=True)
    led.allocate(2023, holding(10, 0, 0), issue=True)
    return led


def assert_unchanged(before: dict[str, np.ndarray], led: Ledger) -> None:
    after = led.snapshot()
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


class TestConstruction:
    def test_shapes_and_names(self) -> None:
        led = make(2)
        assert led.allowances.shape == (2, 3, 3)
        assert led.offsets.shape == (2, 3, 2)
        assert led.cash.shape == (2, 3)
        assert led.government_allowances.shape == (2, 3)
        assert led.issued.shape == (2, 3)
        assert led.offsets_issued.shape == (2, 2)
        assert led.unit_ids.name == "unit"
        assert led.vintages.tolist() == VINTAGES
        assert led.offset_classes.tolist() == list(CLASSES)
        assert led.allowances.dtype == np.int64
        assert "n_units=3" in repr(led)

    def test_duplicate_units_rejected(self) -> None:
        with pytest.raises(ValueError, match=r"unit_ids must be unique, got duplicates \['a'\]"):
            Ledger(1, ["a", "a"], VINTAGES)

    def test_vintages_must_increase(self) -> None:
        with pytest.raises(ValueError, match=r"strictly increasing.*\[2022, 2021\]"):
            Ledger(1, UNITS, [2022, 2021])

    @pytest.mark.parametrize(("bad", "exc"), [(0, ValueError), (True, TypeError), (1.5, TypeError)])
    def test_replicates_validated(self, bad: object, exc: type[Exception]) -> None:
        with pytest.raises(exc, match="n_replicates"):
            Ledger(bad, UNITS, VINTAGES)  # type: ignore[arg-type]

    def test_offset_classes_validated(self) -> None:
        with pytest.raises(ValueError, match="offset_classes must be unique"):
            Ledger(1, UNITS, VINTAGES, ("x", "x"))
        with pytest.raises(TypeError, match="non-empty strings"):
            Ledger(1, UNITS, VINTAGES, ("",))

    def test_empty_units_and_multiindex_rejected(self) -> None:
        with pytest.raises(ValueError, match="at least one unit"):
            Ledger(1, [], VINTAGES)
        with pytest.raises(TypeError, match="MultiIndex"):
            Ledger(1, pd.MultiIndex.from_tuples([("x", 1)]), VINTAGES)

    def test_state_is_read_only(self) -> None:
        led = make()
        with pytest.raises(ValueError, match="read-only"):
            led.allowances[0, 0, 0] = 5
        with pytest.raises(ValueError, match="read-only"):
            led.cash[0, 0] = 1.0


class TestIssueAllocate:
    def test_issue_scalar_and_per_replicate(self) -> None:
        led = make(2)
        led.issue(2021, 1_000)
        led.issue(2022, [5, 7])
        assert led.government_allowances.tolist() == [[1_000, 5, 0], [1_000, 7, 0]]
        assert led.issued.tolist() == [[1_000, 5, 0], [1_000, 7, 0]]

    def test_allocate_moves_government_to_units(self) -> None:
        led = make()
        led.issue(2021, 1_000)
        out = led.allocate(2021, holding(600, 300, 0))
        assert out.delivered.tolist() == [[600, 300, 0]]
        assert led.allowances[0, :, 0].tolist() == [600, 300, 0]
        assert led.government_allowances[0].tolist() == [100, 0, 0]
        led.check()

    def test_allocate_beyond_government_is_refused_and_atomic(self) -> None:
        led = make(2)
        led.issue(2021, [1_000, 100])
        before = led.snapshot()
        with pytest.raises(
            LedgerError,
            match=r"allocate: the government account in replicate 1 holds 100 t of vintage "
            r"2021 but 150 t are needed",
        ):
            led.allocate(2021, [[50, 50, 50], [50, 50, 50]])
        assert_unchanged(before, led)

    def test_allocate_with_issue_creates(self) -> None:
        led = make()
        led.allocate(2022, holding(10, 20, 30), issue=True)
        assert led.issued[0].tolist() == [0, 60, 0]
        assert led.government_allowances[0].tolist() == [0, 0, 0]
        led.check()

    def test_negative_amount_names_op_unit_replicate(self) -> None:
        led = make()
        with pytest.raises(
            LedgerError, match=r"allocate: qty must be >= 0 t, got -5 for unit 'b' in replicate 0"
        ):
            led.allocate(2021, holding(1, -5, 0), issue=True)

    def test_fractional_and_wrong_shape_rejected(self) -> None:
        led = make()
        with pytest.raises(TypeError, match="allocate: qty must hold whole numbers"):
            led.allocate(2021, [[1.5, 0, 0]], issue=True)
        with pytest.raises(ValueError, match=r"must have shape \(R, N\) = \(1, 3\), got \(3,\)"):
            led.allocate(2021, [1, 2, 3], issue=True)
        with pytest.raises(LedgerError, match=r"issue: qty must be >= 0 t, got -1 in replicate 0"):
            led.issue(2021, -1)

    def test_unknown_vintage_lists_valid(self) -> None:
        led = make()
        with pytest.raises(
            ValueError,
            match=r"issue: vintage 2030 is not in the ledger; valid vintages are "
            r"\[2021, 2022, 2023\]",
        ):
            led.issue(2030, 1)

    def test_claw_back(self) -> None:
        led = stocked()
        led.claw_back(2022, holding(20, 0, 0))
        assert led.allowances[0, 0].tolist() == [30, 30, 10]
        assert led.government_allowances[0].tolist() == [0, 20, 0]
        with pytest.raises(LedgerError, match=r"claw_back: unit 'a' .*\(short by 21 t\)"):
            led.claw_back(2023, holding(31, 0, 0))
        led.check()


class TestTrades:
    def test_sellers_deliver_oldest_buyers_get_pro_rata(self) -> None:
        # a holds 30 (2021) + 50 (2022) and sells 60: it delivers 30 of 2021 and 30 of 2022.
        # Pool (30, 30) split 40 : 20 -> b gets (20, 20), c gets (10, 10).
        led = stocked()
        flow = led.settle_trades(holding(0, 40, 20), holding(60, 0, 0), price=50.0)
        assert led.allowances[0].tolist() == [[0, 20, 10], [20, 20, 0], [10, 10, 0]]
        assert flow[0].tolist() == [[-30, -30, 0], [20, 20, 0], [10, 10, 0]]
        assert flow.sum(axis=1).tolist() == [[0, 0, 0]]
        assert led.cash[0].tolist() == [3_000.0, -2_000.0, -1_000.0]
        led.check()

    def test_remainders_go_by_north_west_corner(self) -> None:
        # pool (1, 2), buyers 2 and 1: floors b (0, 1), c (0, 0); remainders b 1, c 1,
        # vintages (1, 1): b takes the 2021 tonne, c the 2022 tonne.
        led = make()
        led.allocate(2021, holding(1, 0, 0), issue=True)
        led.allocate(2022, holding(2, 0, 0), issue=True)
        led.settle_trades(holding(0, 2, 1), holding(3, 0, 0), price=10.0)
        assert led.allowances[0, :, :2].tolist() == [[0, 0], [1, 1], [0, 1]]
        led.check()

    def test_buys_and_sells_are_netted(self) -> None:
        led = stocked()
        led.allocate(2021, holding(0, 8, 0), issue=True)
        # b buys 10 and sells 4 (net buy 6); a sells 6
        led.settle_trades(holding(0, 10, 0), holding(6, 4, 0), price=2.0)
        assert led.allowances[0, 1].sum() == 14
        assert led.cash[0].tolist() == [12.0, -12.0, 0.0]
        j = led.journal()
        row = ("settle_trades", 0)
        assert (j.at[row, "tonnes"], j.at[row, "movements"], j.at[row, "cash"]) == (6, 2, 12.0)

    def test_unbalanced_session_refused(self) -> None:
        led = stocked()
        with pytest.raises(
            LedgerError, match=r"settle_trades: buys total 10 t but sells total 9 t in replicate 0"
        ):
            led.settle_trades(holding(0, 10, 0), holding(9, 0, 0), price=1.0)

    def test_seller_short_refused_and_atomic(self) -> None:
        led = stocked()
        before = led.snapshot()
        with pytest.raises(
            LedgerError,
            match=r"settle_trades: unit 'a' in replicate 0 must deliver 100 t from vintages "
            r"\[2021, 2022, 2023\] but holds only 90 t there \(short by 10 t\)",
        ):
            led.settle_trades(holding(0, 100, 0), holding(100, 0, 0), price=1.0)
        assert_unchanged(before, led)

    def test_vintage_restriction(self) -> None:
        led = stocked()
        led.settle_trades(holding(0, 5, 0), holding(5, 0, 0), price=1.0, vintages=[2022])
        assert led.allowances[0, 0].tolist() == [30, 45, 10]
        assert led.allowances[0, 1].tolist() == [0, 5, 0]

    def test_per_unit_prices_must_balance(self) -> None:
        led = stocked()
        led.settle_trades(holding(0, 5, 5), holding(10, 0, 0), price=[[10.0, 12.0, 8.0]])
        assert led.cash[0].tolist() == [100.0, -60.0, -40.0]
        with pytest.raises(LedgerError, match=r"buyers pay 70.0 but sellers receive 100.0"):
            led.settle_trades(holding(0, 5, 5), holding(10, 0, 0), price=[[10.0, 6.0, 8.0]])

    def test_price_shape_and_sign_validated(self) -> None:
        led = stocked()
        with pytest.raises(ValueError, match=r"settle_trades: price must be a scalar"):
            led.settle_trades(holding(0, 1, 0), holding(1, 0, 0), price=[1.0, 2.0])
        with pytest.raises(ValueError, match=r"settle_trades: price must be >= 0"):
            led.settle_trades(holding(0, 1, 0), holding(1, 0, 0), price=-1.0)

    def test_short_selling_when_allowed_uses_newest_vintage(self) -> None:
        led = stocked(allow_negative=True)
        led.settle_trades(holding(0, 100, 0), holding(100, 0, 0), price=1.0)
        assert led.allowances[0, 0].tolist() == [0, 0, -10]
        assert led.allowances[0, 1].tolist() == [30, 50, 20]
        led.check()

    def test_cash_budget_enforced_when_asked(self) -> None:
        led = stocked(allow_negative_cash=False)
        led.deposit([[0.0, 100.0, 0.0]])
        before = led.snapshot()
        with pytest.raises(
            LedgerError,
            match=r"settle_trades: unit 'b' in replicate 0 has cash 100.0 but would pay",
        ):
            led.settle_trades(holding(0, 11, 0), holding(11, 0, 0), price=10.0)
        assert_unchanged(before, led)

    def test_huge_session_splits_exactly(self) -> None:
        led = Ledger(1, ["s", "x", "y"], [2024, 2025])
        big = 4_000_000_000
        led.allocate(2024, [[big, 0, 0]], issue=True)
        led.allocate(2025, [[big, 0, 0]], issue=True)
        flow = led.settle_trades([[0, big + 3, big - 3]], [[2 * big, 0, 0]], price=0.0)
        assert led.allowances[0, 1].sum() == big + 3
        assert led.allowances[0, 2].sum() == big - 3
        assert flow.sum(axis=1).tolist() == [[0, 0]]
        led.check()


class TestGovernmentTrades:
    def test_sell_is_an_auction_payment(self) -> None:
        led = make()
        led.issue(2023, 1_000)
        led.sell(2023, holding(0, 100, 0), price=104.89)
        assert led.allowances[0, 1, 2] == 100
        assert led.government_cash[0] == pytest.approx(10_489.0)
        assert led.cash[0, 1] == pytest.approx(-10_489.0)
        with pytest.raises(LedgerError, match=r"sell: the government account .* holds 900 t"):
            led.sell(2023, holding(901, 0, 0), price=1.0)
        led.check()

    def test_buy_back_takes_oldest_and_government_pays(self) -> None:
        led = stocked()
        taken = led.buy_back(holding(40, 0, 0), price=20.0)
        assert taken[0, 0].tolist() == [30, 10, 0]
        assert led.government_allowances[0].tolist() == [30, 10, 0]
        assert led.cash[0, 0] == 800.0
        assert led.government_cash[0] == -800.0
        led.check()

    def test_transfer_of_one_vintage(self) -> None:
        led = stocked()
        led.transfer(2022, holding(-10, 10, 0), price=5.0)
        assert led.allowances[0, :, 1].tolist() == [40, 10, 0]
        assert led.cash[0].tolist() == [50.0, -50.0, 0.0]
        with pytest.raises(LedgerError, match=r"transfer: delta must sum to 0 t .* got 1 t"):
            led.transfer(2022, holding(-10, 11, 0))
        with pytest.raises(
            LedgerError, match=r"transfer: unit 'a' in replicate 0 holds 10 t of vintage 2023"
        ):
            led.transfer(2023, holding(-11, 11, 0))
        led.check()


class TestRetirement:
    def test_surrender_oldest_eligible_first(self) -> None:
        led = stocked()
        out = led.surrender(holding(60, 0, 0), vintages=[2021, 2022])
        assert out[0, 0].tolist() == [30, 30, 0]
        assert led.allowances[0, 0].tolist() == [0, 20, 10]
        assert led.surrendered[0].tolist() == [30, 30, 0]
        led.check()

    def test_surrender_only_eligible_vintages(self) -> None:
        led = stocked()
        before = led.snapshot()
        with pytest.raises(
            LedgerError,
            match=r"surrender: unit 'a' in replicate 0 must deliver 60 t from vintages \[2022\] "
            r"but holds only 50 t",
        ):
            led.surrender(holding(60, 0, 0), vintages=2022)
        assert_unchanged(before, led)

    def test_cancel_and_cancel_government(self) -> None:
        led = stocked()
        led.cancel(holding(35, 0, 0))
        assert led.cancelled[0].tolist() == [30, 5, 0]
        led.issue(2022, 7)
        led.issue(2023, 7)
        out = led.cancel_government(10)
        assert out[0].tolist() == [0, 7, 3]
        with pytest.raises(LedgerError, match=r"cancel_government: .* holds 4 t in vintages"):
            led.cancel_government(5)
        led.check()

    def test_expire_units_and_government(self) -> None:
        led = stocked()
        led.issue(2021, 5)
        out = led.expire(2021)
        assert out[0].tolist() == [30, 0, 0]
        assert led.expired[0].tolist() == [35, 0, 0]
        assert led.allowances[0, :, 0].tolist() == [0, 0, 0]
        assert led.government_allowances[0, 0] == 0
        led.check()

    def test_expire_leaves_short_positions(self) -> None:
        led = make(allow_negative=True)
        led.allocate(2021, holding(0, 5, 0), issue=True)
        led.settle_trades(holding(0, 0, 5), holding(0, 5, 0), price=0.0)
        led.settle_trades(holding(0, 3, 0), holding(3, 0, 0), price=0.0, vintages=[2021])
        assert led.allowances[0, :, 0].tolist() == [-3, 3, 5]
        out = led.expire(2021)
        assert out[0].tolist() == [0, 3, 5]
        assert led.allowances[0, :, 0].tolist() == [-3, 0, 0]
        led.check()

    def test_carry_redenominates(self) -> None:
        led = stocked()
        taken = led.carry(holding(40, 0, 0), [2021, 2022], 2023)
        assert taken[0, 0].tolist() == [30, 10, 0]
        assert led.allowances[0, 0].tolist() == [0, 40, 50]
        assert led.carried_out[0].tolist() == [30, 10, 0]
        assert led.carried_in[0].tolist() == [0, 0, 40]
        with pytest.raises(ValueError, match="must not include to_vintage 2023"):
            led.carry(holding(1, 0, 0), [2022, 2023], 2023)
        led.check()


class TestDeductionsAndBorrowing:
    def test_deduction_reduces_next_allocation(self) -> None:
        led = make()
        led.deduct(holding(50, 0, 0), 2022)
        assert led.pending_deductions[0, 0].tolist() == [0, 50, 0]
        out = led.allocate(2022, holding(200, 100, 0), issue=True)
        assert out.delivered.tolist() == [[150, 100, 0]]
        assert out.deducted.tolist() == [[50, 0, 0]]
        assert led.deducted[0].tolist() == [0, 50, 0]
        assert led.issued[0].tolist() == [0, 300, 0]
        assert led.pending_deductions.sum() == 0
        led.check()

    def test_deduction_larger_than_allocation_rolls_forward(self) -> None:
        led = make()
        led.issue(2022, 1_000)
        led.issue(2023, 1_000)
        led.deduct(holding(300, 0, 0), 2022)
        out = led.allocate(2022, holding(200, 0, 0))
        assert (out.delivered[0, 0], out.deducted[0, 0]) == (0, 200)
        assert led.pending_deductions[0, 0].tolist() == [0, 100, 0]
        out = led.allocate(2023, holding(200, 0, 0))
        assert (out.delivered[0, 0], out.deducted[0, 0]) == (100, 100)
        assert led.deducted[0].tolist() == [0, 200, 100]
        assert led.government_allowances[0].tolist() == [0, 800, 800]
        led.check()

    def test_deduction_registered_for_a_later_vintage_waits(self) -> None:
        led = make()
        led.deduct(holding(10, 0, 0), 2023)
        out = led.allocate(2022, holding(100, 0, 0), issue=True)
        assert out.deducted.sum() == 0

    def test_borrowing_is_repaid_at_the_allocation(self) -> None:
        # the 2022 gap is 150,000 t; the unit borrows 75,000 t of 2023 allowances early
        led = make()
        led.borrow(holding(75_000, 0, 0), 2023)
        assert led.allowances[0, 0, 2] == 75_000
        assert led.borrowed[0, 0].tolist() == [0, 0, 75_000]
        out = led.allocate(2023, holding(1_000_000, 0, 0), issue=True)
        assert out.repaid.tolist() == [[75_000, 0, 0]]
        assert out.delivered.tolist() == [[925_000, 0, 0]]
        assert led.issued[0, 2] == 1_000_000
        assert led.allowances[0, 0, 2] == 1_000_000
        assert led.borrowed.sum() == 0
        led.check()

    def test_repayment_comes_before_deduction(self) -> None:
        led = make()
        led.borrow(holding(30, 0, 0), 2023)
        led.deduct(holding(50, 0, 0), 2023)
        out = led.allocate(2023, holding(60, 0, 0), issue=True)
        assert (out.repaid[0, 0], out.deducted[0, 0], out.delivered[0, 0]) == (30, 30, 0)
        assert led.pending_deductions[0, 0, 2] == 20
        led.check()

    def test_borrow_from_government_account(self) -> None:
        led = make()
        led.issue(2023, 100)
        led.borrow(holding(40, 0, 0), 2023, issue=False)
        assert led.government_allowances[0, 2] == 60
        out = led.allocate(2023, holding(100, 0, 0))
        assert out.delivered[0, 0] == 60
        assert led.government_allowances[0, 2] == 0
        with pytest.raises(LedgerError, match=r"borrow: the government account .* holds 0 t"):
            led.borrow(holding(1, 0, 0), 2023, issue=False)
        led.check()


class TestOffsets:
    def test_issue_sell_trade_surrender(self) -> None:
        led = make()
        led.issue_offsets("new CCER", 1_000)
        led.transfer_offsets("new CCER", holding(100, 50, 0), price=30.0)
        assert led.project_offsets[0].tolist() == [0, 850]
        assert led.offsets[0, :, 1].tolist() == [100, 50, 0]
        assert led.project_cash[0] == 4_500.0
        led.settle_offset_trades("new CCER", holding(0, 0, 20), holding(20, 0, 0), price=40.0)
        assert led.offsets[0, :, 1].tolist() == [80, 50, 20]
        assert led.cash[0].tolist() == [-3_000.0 + 800.0, -1_500.0, -800.0]
        led.surrender_offsets([[[0, 30], [0, 0], [0, 20]]])
        assert led.offsets_surrendered[0].tolist() == [0, 50]
        led.cancel_offsets([[[0, 10], [0, 0], [0, 0]]])
        assert led.offsets_cancelled[0].tolist() == [0, 10]
        led.check()

    def test_issue_to_units_and_expire_class(self) -> None:
        led = make()
        led.issue_offsets("legacy CCER", holding(5, 6, 0), account="units")
        led.issue_offsets("legacy CCER", 3)
        out = led.expire_offsets("legacy CCER")
        assert out[0].tolist() == [5, 6, 0]
        assert led.offsets_expired[0].tolist() == [14, 0]
        assert led.project_offsets[0].tolist() == [0, 0]
        led.check()

    def test_offset_errors(self) -> None:
        led = make()
        led.issue_offsets("new CCER", holding(5, 0, 0), account="units")
        before = led.snapshot()
        with pytest.raises(
            LedgerError,
            match=r"surrender_offsets: unit 'a' in replicate 0 holds 5 t of offset class "
            r"'new CCER' but must deliver 6 t",
        ):
            led.surrender_offsets([[[0, 6], [0, 0], [0, 0]]])
        with pytest.raises(ValueError, match=r"offset class 'CCER' is not in the ledger"):
            led.issue_offsets("CCER", 1)
        with pytest.raises(LedgerError, match=r"transfer_offsets: project owners .* hold 0 t"):
            led.transfer_offsets("new CCER", holding(1, 0, 0))
        with pytest.raises(ValueError, match="account must be 'projects' or 'units'"):
            led.issue_offsets("new CCER", 1, account="bank")  # type: ignore[arg-type]
        with pytest.raises(
            LedgerError, match=r"settle_offset_trades: unit 'b' in replicate 0 holds 0 t"
        ):
            led.settle_offset_trades("new CCER", holding(1, 0, 0), holding(0, 1, 0), price=1.0)
        assert_unchanged(before, led)


class TestCash:
    def test_money_flows_and_identity(self) -> None:
        led = make()
        led.deposit(holding(1_000, 500, 0))
        led.withdraw(holding(100, 0, 0))
        led.pay(holding(20_000, 0, 0))
        led.receive(holding(0, 0, 250))
        assert led.cash[0].tolist() == [-19_100.0, 500.0, 250.0]
        assert led.government_cash[0] == 19_750.0
        report = led.check()
        assert report.cash_total[0] == pytest.approx(1_400.0)
        assert led.cash_deposited[0] == 1_500.0
        assert led.cash_withdrawn[0] == 100.0

    def test_budget_enforced(self) -> None:
        led = make(allow_negative_cash=False)
        led.deposit(holding(10, 0, 0))
        with pytest.raises(LedgerError, match=r"pay: unit 'a' in replicate 0 has cash 10.0"):
            led.pay(holding(11, 0, 0))
        with pytest.raises(ValueError, match=r"deposit: amount must be >= 0"):
            led.deposit(holding(-1, 0, 0))


class TestCheck:
    def test_report_totals(self) -> None:
        led = stocked()
        led.issue(2023, 100)
        led.surrender(holding(40, 0, 0))
        report = led.check()
        assert report.allowances_issued.tolist() == [190]
        assert report.allowances_outstanding.tolist() == [150]
        assert report.allowances_retired.tolist() == [40]
        assert report.cash_error == 0.0

    def test_detects_a_tampered_holding(self) -> None:
        led = stocked()
        led._allowances[0, 0, 0] += 1
        with pytest.raises(
            ConservationError,
            match=r"allowances of vintage 2021 in replicate 0: issued 30 \+ carried in 0 = 30 t, "
            r"but .* units 31 .* \(difference -1 t\)",
        ):
            led.check()

    def test_detects_tampered_offsets_and_cash(self) -> None:
        led = make()
        led.issue_offsets("new CCER", 5)
        led._project_offsets[0, 1] = 4
        with pytest.raises(ConservationError, match=r"offsets of class 'new CCER' in replicate 0"):
            led.check()
        led = make()
        led._cash[0, 2] = 1.0
        with pytest.raises(ConservationError, match=r"cash in replicate 0: units 1.0"):
            led.check()

    def test_detects_negative_holding(self) -> None:
        led = stocked()
        led._allowances[0, 1, 0] -= 5
        led._government[0, 0] += 5
        with pytest.raises(
            ConservationError, match=r"allowances is negative at replicate 0, unit 'b'"
        ):
            led.check()


class TestJournalAndViews:
    def test_journal_aggregates_per_op(self) -> None:
        led = make(2)
        assert led.journal().empty
        led.allocate(2021, [[10, 0, 5], [1, 1, 1]], issue=True)
        led.allocate(2022, [[1, 0, 0], [0, 0, 0]], issue=True)
        led.pay([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        j = led.journal()
        assert j.index.names == ["op", "replicate"]
        assert j.to_numpy()[0].tolist() == [2, 3, 16, 0.0]  # ("allocate", 0)
        assert j.to_numpy()[1].tolist() == [2, 3, 3, 0.0]  # ("allocate", 1)
        assert j.loc[("pay", 0), "cash"] == 1.0
        assert list(dict.fromkeys(j.index.get_level_values("op"))) == ["allocate", "pay"]

    def test_holdings_frame(self) -> None:
        led = stocked()
        frame = led.holdings_frame()
        assert frame.index.names == ["replicate", "unit", "vintage"]
        assert len(frame) == 9
        assert frame.loc[(0, "a", 2022), "allowances"] == 50
        nz = led.holdings_frame(0, nonzero=True)
        assert nz["allowances"].tolist() == [30, 50, 10]
        with pytest.raises(ValueError, match=r"replicate must lie in \[0, 0\], got 1"):
            led.holdings_frame(1)

    def test_offsets_and_accounts_frames(self) -> None:
        led = stocked()
        led.issue_offsets("legacy CCER", holding(0, 4, 0), account="units")
        of = led.offsets_frame(nonzero=True)
        assert of.index.tolist() == [(0, "b", "legacy CCER")]
        acc = led.accounts_frame()
        assert acc.index.names == ["replicate", "vintage"]
        assert acc.loc[(0, 2022), "units"] == 50
        lhs = acc["issued"] + acc["carried_in"]
        rhs = acc.drop(columns=["issued", "carried_in"]).sum(axis=1)
        assert (lhs == rhs).all()

    def test_valid_holdings_and_rules(self) -> None:
        led = stocked()
        assert led.eligible_vintages(2022) == [2021, 2022]
        assert led.valid_holdings(2022).tolist() == [[80, 0, 0]]
        only_current = led.valid_holdings(2022, lambda v, y: v == y)
        assert only_current.tolist() == [[50, 0, 0]]

    def test_copy_is_independent(self) -> None:
        led = stocked()
        twin = led.copy()
        twin.surrender(holding(10, 0, 0))
        assert led.allowances[0, 0, 0] == 30
        assert twin.allowances[0, 0, 0] == 20
