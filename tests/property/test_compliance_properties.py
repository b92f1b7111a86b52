"""Compliance invariants (hypothesis): obligations, surrender plans, borrowing, banking, stages."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from carbonsim.market.compliance import (
    apply_banking_limit,
    apply_surrender,
    banking_limit,
    borrowing_amount,
    deadline_stages,
    obligation,
    offset_limit,
    surrender_plan,
)
from carbonsim.market.ledger import Ledger

tonnes = st.integers(0, 10**9)
# shares in whole percent, so the test can compute the exact rule in integer arithmetic
percent = st.integers(0, 100)
shares = percent.map(lambda p: p / 100)


def int_arrays(n: int, hi: int = 10**9) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.int64, n, elements=st.integers(0, hi))


@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(int_arrays(n), int_arrays(n), arrays(np.bool_, n))
    ),
    percent,
)
def test_obligation_bounds(case: tuple[np.ndarray, np.ndarray, np.ndarray], pct: int) -> None:
    e, a, gas = case
    top = obligation(e, a, is_gas=gas, gap_cap_share=pct / 100)
    cap = obligation(e, a, is_gas=gas, gap_cap_share=pct / 100, gap_relief="cap")
    allowed_gap = e * pct // 100
    # gas units are never short and never topped up
    assert (top.obligation[gas] <= a[gas]).all()
    assert (top.obligation[gas] <= e[gas]).all()
    assert (top.top_up[gas] == 0).all()
    coal = ~gas
    # gap-capped units owe at most the allowed gap beyond allocation (+ top-up) ...
    assert (top.obligation[coal] == e[coal]).all()
    assert (top.obligation[coal] - a[coal] - top.top_up[coal] <= allowed_gap[coal]).all()
    assert (cap.obligation[coal] - a[coal] <= allowed_gap[coal]).all()
    assert (cap.obligation <= e).all()
    # ... the top-up is the least that achieves it ...
    topped = top.top_up > 0
    assert (a[topped] + top.top_up[topped] == e[topped] - allowed_gap[topped]).all()
    # ... and both expressions of the cap leave the same net position
    np.testing.assert_array_equal(top.obligation - a - top.top_up, cap.obligation - a - cap.top_up)


@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            int_arrays(n, 10**7),
            arrays(np.int64, n, elements=st.integers(-(10**6), 10**7)),
            st.integers(0, 3).flatmap(
                lambda k: arrays(np.int64, (n, k), elements=st.integers(0, 10**6))
            ),
        )
    ),
    shares,
)
def test_surrender_plan_invariants(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], share: float
) -> None:
    ob, al, off = case
    first = surrender_plan(ob, al, off, offset_limit_share=share)
    offsets_first = surrender_plan(ob, al, off, offset_limit_share=share, offset_first=True)
    cap = offset_limit(ob, share)
    for plan in (first, offsets_first):
        assert (plan.allowances >= 0).all()
        assert (plan.offsets >= 0).all()
        assert (plan.shortfall >= 0).all()
        np.testing.assert_array_equal(
            plan.allowances + plan.offsets.sum(axis=-1) + plan.shortfall, ob
        )
        assert (plan.allowances <= np.maximum(al, 0)).all()
        assert (plan.offsets <= off).all()
        # offsets surrendered never exceed the cap
        assert (plan.offsets.sum(axis=-1) <= cap).all()
        # no shortfall while usable holdings remain
        usable = np.maximum(al, 0) + np.minimum(cap, off.sum(axis=-1))
        np.testing.assert_array_equal(plan.shortfall, np.maximum(ob - usable, 0))
    # the order changes the mix, never the shortfall
    np.testing.assert_array_equal(first.shortfall, offsets_first.shortfall)
    assert (offsets_first.offsets.sum(axis=-1) >= first.offsets.sum(axis=-1)).all()


@settings(deadline=None)
@given(
    arrays(np.int64, (2, 3, 3), elements=st.integers(0, 5_000)),
    arrays(np.int64, (2, 3, 2), elements=st.integers(0, 500)),
    arrays(np.int64, (2, 3), elements=st.integers(0, 20_000)),
    st.sampled_from([2021, 2022, 2023]),
    st.booleans(),
    shares,
)
def test_apply_surrender_conserves_and_respects_cap(
    hold: np.ndarray,
    offs: np.ndarray,
    ob: np.ndarray,
    year: int,
    offset_first: bool,
    share: float,
) -> None:
    led = Ledger(2, ["a", "b", "c"], [2021, 2022, 2023], ("legacy CCER", "new CCER"))
    for i, v in enumerate((2021, 2022, 2023)):
        led.allocate(v, hold[:, :, i], issue=True)
    for k, c in enumerate(led.offset_classes):
        led.issue_offsets(c, offs[:, :, k], account="units")
    out = apply_surrender(led, ob, year, offset_limit_share=share, offset_first=offset_first)
    led.check()
    assert (out.offsets.sum(axis=-1) <= offset_limit(ob, share)).all()
    # only vintages valid for the year were surrendered
    assert (out.allowances_by_vintage[:, :, [v > year for v in (2021, 2022, 2023)]] == 0).all()
    np.testing.assert_array_equal(out.allowances_by_vintage.sum(axis=-1), out.allowances)
    np.testing.assert_array_equal(out.allowances + out.offsets.sum(axis=-1) + out.shortfall, ob)
    np.testing.assert_array_equal(led.allowances, hold - out.allowances_by_vintage)


@given(
    int_arrays(5, 10**8),
    int_arrays(5, 10**8),
    st.integers(2018, 2026),
)
def test_borrowing_bounds(gap: np.ndarray, alloc: np.ndarray, year: int) -> None:
    amount = borrowing_amount(gap, alloc, year)
    assert (amount >= 0).all()
    assert (2 * amount <= gap).all()
    if year not in (2021, 2022):
        assert (amount == 0).all()
    small = 10 * gap <= alloc  # gap at most 10% of the allocation
    assert (amount[small] == 0).all()


@settings(deadline=None)
@given(
    arrays(np.int64, (1, 3, 3), elements=st.integers(0, 50_000)),
    arrays(np.int64, (1, 3), elements=st.integers(-50_000, 50_000)),
    st.booleans(),
)
def test_banking_limit_is_enforced(hold: np.ndarray, net_sales: np.ndarray, carry: bool) -> None:
    led = Ledger(1, ["a", "b", "c"], [2023, 2024, 2025])
    for i, v in enumerate((2023, 2024, 2025)):
        led.allocate(v, hold[:, :, i], issue=True)
    out = apply_banking_limit(led, net_sales, 2024, into_vintage=2025 if carry else None)
    led.check()
    limit = banking_limit(net_sales, 2024)
    kept = led.allowances[:, :, :2].sum(axis=-1)
    if carry:
        assert (kept == 0).all()
        np.testing.assert_array_equal(led.allowances[:, :, 2], hold[:, :, 2] + out.carried)
        assert (out.carried <= limit).all()
    else:
        assert (kept <= limit).all()
    np.testing.assert_array_equal(out.cancelled, np.maximum(hold[:, :, :2].sum(-1) - limit, 0))


@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 3), st.integers(1, 60)), elements=st.floats(-1e6, 1e6)
    ),
    st.lists(st.integers(1, 100), min_size=1, max_size=4),
)
def test_deadline_stages_counts_and_order(key: np.ndarray, raw: list[int]) -> None:
    pcts = [*sorted(raw), 100]
    stages = deadline_stages([p / 100 for p in pcts], key=key)
    n = key.shape[-1]
    due = [-(-p * n // 100) for p in pcts]
    for row_key, row in zip(key, stages, strict=True):
        for s, count in enumerate(due):
            # at least the stated share is due by each deadline, and exactly ceil(share x N)
            assert (row <= s).sum() == count
        # a smaller key never gets a later deadline
        order = np.argsort(row_key, kind="stable")
        assert (np.diff(row[order]) >= 0).all()
