"""Invariants of the policy instruments: limits hold, MSR bounded and continuous."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from carbonsim.clearing.call_auction import call_auction
from carbonsim.market.policy import (
    apply_holding_limit,
    apply_price_limits,
    band_trigger_init,
    ceiling_release,
    excess_demand,
    floor_purchase,
    msr_intake,
    msr_invalidation,
    update_band_trigger,
)

prices = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False)
tnacs = st.floats(min_value=0.0, max_value=5e9, allow_nan=False, allow_infinity=False)


@given(
    p=hnp.arrays(np.float64, st.integers(1, 20), elements=prices),
    a=prices,
    b=prices,
)
def test_price_limits_hold(p: np.ndarray, a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    out = apply_price_limits(p, floor=lo, ceiling=hi)
    assert ((out >= lo) & (out <= hi)).all()
    inside = (p >= lo) & (p <= hi)
    np.testing.assert_array_equal(out[inside], p[inside])


order_book = st.integers(1, 8).flatmap(
    lambda k: st.tuples(
        st.lists(st.integers(1, 300), min_size=k, max_size=k),
        st.lists(st.integers(0, 1_000), min_size=k, max_size=k),
    )
)


@given(bids=order_book, asks=order_book, limit=st.integers(1, 300), reserve=st.integers(0, 5_000))
def test_ceiling_and_floor_interventions_clear_at_the_limit(
    bids: tuple[list[int], list[int]],
    asks: tuple[list[int], list[int]],
    limit: int,
    reserve: int,
) -> None:
    bp, bq = np.array(bids[0], dtype=float), np.array(bids[1])
    ap, aq = np.array(asks[0], dtype=float), np.array(asks[1])
    lim = float(limit)
    x = int(excess_demand(bp, bq, ap, aq, lim))
    rel = int(ceiling_release(x, reserve))
    after = int(excess_demand(bp, bq, np.append(ap, lim), np.append(aq, rel), lim))
    if reserve >= x:
        assert after <= 0  # supply meets demand at the ceiling: the ceiling holds
    else:
        assert after == x - reserve
    buy = int(floor_purchase(-x))
    assert int(excess_demand(np.append(bp, lim), np.append(bq, buy), ap, aq, lim)) >= 0
    # cleared by the call auction with the limit as reference price, a binding limit holds
    # exactly; without a reference the engine clips the price with apply_price_limits
    if 0 < x <= reserve:
        res = call_auction(bp, bq, np.append(ap, lim), np.append(aq, rel), reference_price=lim)
        assert res.price == lim
        assert (
            apply_price_limits(
                call_auction(bp, bq, np.append(ap, lim), np.append(aq, rel)).price, ceiling=lim
            )
            <= lim
        )
    if x < 0:
        res = call_auction(np.append(bp, lim), np.append(bq, buy), ap, aq, reference_price=lim)
        assert res.price == lim


@given(
    holdings=hnp.arrays(np.int64, st.integers(1, 10), elements=st.integers(0, 10**6)),
    data=st.data(),
    limit=st.integers(0, 10**6),
)
def test_holding_limit_never_exceeded(
    holdings: np.ndarray, data: st.DataObject, limit: int
) -> None:
    buy = data.draw(hnp.arrays(np.int64, holdings.shape, elements=st.integers(0, 10**6)))
    ok = apply_holding_limit(holdings, buy, limit)
    assert ((ok >= 0) & (ok <= buy)).all()
    assert (holdings + ok <= np.maximum(limit, holdings)).all()
    # as much as the limit allows is bought
    np.testing.assert_array_equal(ok, np.minimum(buy, np.maximum(limit - holdings, 0)))


@given(t=hnp.arrays(np.float64, st.integers(1, 10), elements=tnacs))
def test_msr_intake_bounded(t: np.ndarray) -> None:
    flow = msr_intake(t)
    assert (flow.intake >= 0).all()
    assert (flow.intake <= 0.24 * t + 1e-6).all()
    assert np.isin(flow.release, [0, 100_000_000]).all()
    assert not ((flow.intake > 0) & (flow.release > 0)).any()


@given(
    upper=st.floats(1e6, 2e9, allow_nan=False),
    rate=st.floats(0.01, 0.99, allow_nan=False),
    d=st.floats(0.0, 1e4, allow_nan=False),
)
def test_msr_intake_continuous_at_thresholds(upper: float, rate: float, d: float) -> None:
    bu = upper / (1.0 - rate)
    kw = {"upper": upper, "lower": 0.0, "rate": rate, "buffer_upper": bu}
    # continuous at the intake threshold: intake(upper + d) <= d
    assert msr_intake(upper + d, **kw).intake.item() <= d + 1e-6 * upper
    assert msr_intake(max(upper - d, 0.0), **kw).intake.item() == 0
    # continuous at buffer_upper when it equals upper / (1 - rate)
    left = msr_intake(bu - d, **kw).intake.item()
    right = msr_intake(bu + d, **kw).intake.item()
    assert abs(right - left) <= 2 * d + 2 + 1e-9 * bu


@given(d=st.floats(0.0, 1e4, allow_nan=False))
def test_msr_default_jump_at_1096_is_the_stated_rule(d: float) -> None:
    # 24% of 1,096 Mt (263.04 Mt) against 1,096 - 833 = 263 Mt: a 0.04 Mt step, as stated
    left = msr_intake(1_096e6 - d).intake.item()
    right = msr_intake(1_096e6 + d + 1).intake.item()
    assert abs(right - left) <= 40_000 + 2 * d + 2


@given(h=hnp.arrays(np.float64, st.integers(1, 10), elements=tnacs), thr=tnacs)
def test_msr_invalidation_leaves_threshold(h: np.ndarray, thr: float) -> None:
    inv = msr_invalidation(h, threshold=thr)
    assert (inv >= 0).all()
    assert (h - inv <= np.maximum(thr, 0) + 1).all()
    assert (h - inv >= np.minimum(h, thr) - 1e-6).all()


@given(
    days=st.lists(
        st.lists(st.floats(0.0, 300.0, allow_nan=False), min_size=3, max_size=3),
        min_size=1,
        max_size=40,
    ),
    window=st.integers(1, 5),
    min_days=st.integers(1, 5),
)
def test_band_trigger_deterministic_and_consistent(
    days: list[list[float]], window: int, min_days: int
) -> None:
    def run() -> tuple[np.ndarray, np.ndarray]:
        state = band_trigger_init(3, window=window)
        acts, mas = [], []
        for day in days:
            upd = update_band_trigger(state, day, min_days=min_days, quantity=7)
            state = upd.state
            acts.append(upd.action)
            mas.append(upd.moving_average)
            np.testing.assert_array_equal(upd.quantity, 7 * np.abs(upd.action))
        return np.array(acts), np.array(mas)

    a1, ma1 = run()
    a2, ma2 = run()
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(ma1, ma2)
    assert ((a1 != 1) | (ma1 > 150.0)).all()
    assert ((a1 != -1) | (ma1 < 20.0)).all()
    assert (np.abs(a1).sum(axis=0) <= len(days) // min_days).all()
