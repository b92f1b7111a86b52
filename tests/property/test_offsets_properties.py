"""Invariants of the offset rules: caps never exceeded, issuance whole and non-negative."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from carbonsim.market.offsets import (
    OffsetProjects,
    beijing_offset_use,
    beijing_usage_cap,
    eligible,
    issued_credits,
    legacy_ccer_stock,
    synthetic_projects,
    usage_cap,
)

tonnes = st.integers(min_value=0, max_value=10**9)
shares = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
obligations = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 3), st.integers(1, 6)),
    elements=st.floats(min_value=0.0, max_value=1e10, allow_nan=False, allow_infinity=False),
)
BASE = np.datetime64("2020-01-01", "D")


@given(obligation=obligations, share=shares)
def test_usage_cap_is_floor_of_share(obligation: np.ndarray, share: float) -> None:
    cap = usage_cap(obligation, share=share)
    exact = share * obligation
    assert cap.dtype == np.int64
    assert cap.shape == obligation.shape
    assert (cap >= 0).all()
    assert (cap <= exact + 1e-6).all()
    assert (cap > exact - 1 - 1e-6).all()


@given(
    alloc=st.lists(st.integers(0, 10**8), min_size=1, max_size=6),
    data=st.data(),
    share=shares,
    local_min=shares,
)
def test_beijing_use_never_above_caps(
    alloc: list[int], data: st.DataObject, share: float, local_min: float
) -> None:
    n = len(alloc)
    la = np.array(data.draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n)))
    na = np.array(data.draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n)))
    need = np.array(data.draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n)))
    cap = beijing_usage_cap(alloc, share=share, local_min_share=local_min)
    assert (cap.nonlocal_max <= cap.total).all()
    local, nonlocal_ = beijing_offset_use(cap, la, na, need=need)
    used = local + nonlocal_
    assert (local >= 0).all()
    assert (nonlocal_ >= 0).all()
    assert (used <= cap.total).all()
    assert (used <= need).all()
    assert (nonlocal_ <= cap.nonlocal_max).all()
    assert (local <= la).all()
    assert (nonlocal_ <= na).all()
    # and nothing permitted is left unused
    best = np.minimum(np.minimum(cap.total, need), la + np.minimum(na, cap.nonlocal_max))
    np.testing.assert_array_equal(used, best)


@given(
    cs=st.integers(0, 3_000),
    length=st.integers(1, 3_000),
    ps=st.integers(0, 3_000),
    plen=st.integers(1, 800),
    capacity=st.floats(0.0, 1e7, allow_nan=False),
    sigma=st.floats(0.0, 1.0, allow_nan=False),
    lag=st.integers(0, 800),
    seed=st.integers(0, 2**32 - 1),
)
def test_issued_credits_whole_nonnegative_zero_outside_crediting(
    cs: int,
    length: int,
    ps: int,
    plen: int,
    capacity: float,
    sigma: float,
    lag: int,
    seed: int,
) -> None:
    start = BASE + np.timedelta64(cs, "D")
    p = OffsetProjects(
        ids=["x"],
        methodology=["afforestation"],
        capacity=[capacity],
        registration=[start],
        crediting_start=[start],
        crediting_end=[start + np.timedelta64(length, "D")],
        issuance_lag=[lag],
        sigma=[sigma],
        covered_entity=[False],
        region=["other"],
        marginal_cost=[1.0],
    )
    p0 = BASE + np.timedelta64(ps, "D")
    p1 = p0 + np.timedelta64(plen, "D")
    out = issued_credits(p, p0, p1, rng=seed, replicates=3)
    assert out.credits.dtype == np.int64
    assert out.credits.shape == (3, 1)
    assert (out.credits >= 0).all()
    overlap = min(cs + length, ps + plen) - max(cs, ps)
    if overlap <= 0:
        assert (out.credits == 0).all()
        assert out.expected[0] == 0.0
    else:
        # no more than the capacity over the overlap (+1 day of leap-year slack) when noiseless
        assert out.expected[0] <= capacity * (overlap + 1) / 365 + 1e-6
    assert out.issue_date[0] >= p1 + np.timedelta64(lag, "D")
    assert out.issue_date[0] >= start


@given(
    weights=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 8)),
        elements=st.floats(0.0, 1e6, allow_nan=False),
    ),
    total=st.integers(0, 10**9),
)
def test_legacy_stock_conserves_total(weights: np.ndarray, total: int) -> None:
    weights = weights.copy()
    weights[..., 0] += 1.0  # positive row sums
    stock = legacy_ccer_stock(weights, total=total)
    assert (stock >= 0).all()
    np.testing.assert_array_equal(stock.sum(axis=-1), total)
    # each holder within one tonne of its exact share
    exact = weights / weights.sum(axis=-1, keepdims=True) * total
    assert (np.abs(stock - exact) < 1 + 1e-6 * total).all()


@given(seed=st.integers(0, 2**16), day=st.integers(0, 3_000))
def test_eligibility_rules_only_remove_projects(seed: int, day: int) -> None:
    projects = synthetic_projects(30, rng=seed, covered_share=0.3)
    as_of = BASE + np.timedelta64(day, "D")
    loose = eligible(projects, as_of=as_of, exclude_covered=False, require_post_relaunch=False)
    strict = eligible(projects, as_of=as_of)
    assert not (strict & ~loose).any()
    assert not (strict & projects.covered_entity).any()
    assert not (strict & (projects.registration > as_of)).any()
    assert np.array_equal(strict, eligible(projects, as_of=as_of))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    r=st.integers(1, 4),
    n=st.integers(1, 12),
    stock=st.integers(0, 50_000),
)
def test_offset_market_never_sells_above_the_cap_or_the_stock(
    seed: int, r: int, n: int, stock: int
) -> None:
    """The engine's offset market: each unit's credits stay within its cap less what it
    holds or surrendered, project owners sell at most their stock, and money and credits
    are conserved."""
    from carbonsim.market.ledger import Ledger
    from carbonsim.market.offsets import OFFSET_CUTOFF_Z, OFFSET_LOTS, clear_offset_classes

    rng = np.random.default_rng(seed)
    ledger = Ledger(r, [f"u{i}" for i in range(n)], [2021], offset_classes=("ccer",))
    ledger.issue_offsets("ccer", np.full(r, stock, np.int64))
    flat = np.sort(rng.choice(r * n, size=rng.integers(1, r * n + 1), replace=False))
    cap = np.floor(rng.uniform(0, 20_000, flat.size))
    surrendered = rng.integers(0, 5_000, flat.size)
    expected = rng.uniform(30, 90, r)
    bid_price = expected[flat // n] * 0.85 * np.exp(0.05 * rng.standard_normal(flat.size))
    ask_price = 20.0 * np.exp(0.3 * rng.standard_normal((r, OFFSET_LOTS)))
    levels = np.rint(expected[None, :] * 0.85 * np.exp(0.05 * OFFSET_CUTOFF_Z)[:, None] / 0.01)
    volume, turnover = clear_offset_classes(
        ledger, ["ccer"], [0], flat, cap, surrendered, bid_price, ask_price,
        tick=0.01, levels=levels - 1.0,
    )  # fmt: skip
    got = ledger.offsets[:, :, 0].reshape(-1)[flat]
    assert (got <= np.maximum(cap - surrendered, 0)).all()
    assert (volume <= stock).all()
    assert (ledger.project_offsets[:, 0] == stock - volume).all()
    np.testing.assert_allclose(turnover, ledger.project_cash, rtol=1e-12, atol=1e-6)
    ledger.check()
