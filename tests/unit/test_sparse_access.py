"""Sparse per-cell access used by the session loop gives the numbers of the dense arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsim._cells import (
    nonzero_cells,
    run_groups,
    run_starts,
    sum_cells,
    take_cells,
    unique_inverse,
)
from carbonsim._random import (
    _GOLDEN,
    BatchRandom,
    _bits_threshold,
    _mix64,
    _uniform_of,
    replicate_seeds,
)
from carbonsim.agents import MarketView
from carbonsim.market.ledger import Ledger


@settings(max_examples=200)
@given(
    st.integers(1, 5),
    st.integers(1, 50),
    st.one_of(
        st.floats(-0.5, 1.5) | st.just(float("nan")),
        st.integers(0, 2**53 - 1).map(_uniform_of),
        st.integers(1, 2**53 - 1).map(lambda k: float(np.nextafter(_uniform_of(k), 0.0))),
    ),
)
def test_bernoulli_equals_uniform_below_p(r: int, n: int, p: float) -> None:
    seeds = replicate_seeds(7, r)
    a = BatchRandom(seeds).bernoulli((r, n), p)
    b = BatchRandom(seeds).random((r, n)) < p
    np.testing.assert_array_equal(a, b)


@settings(max_examples=300)
@given(st.integers(0, 2**53 - 1), st.sampled_from([-1, 0, 1]), st.integers(0, 2047))
def test_bits_threshold_is_exact_at_the_boundary(k: int, step: int, low: int) -> None:
    """For p exactly at (or one ulp beside) a representable uniform, the integer bound
    classifies the neighbouring words as the float comparison does."""
    p = float(np.nextafter(_uniform_of(k), 2.0 * step)) if step else _uniform_of(k)
    bound = _bits_threshold(p)
    for kk in (k - 1, k, k + 1):
        if 0 <= kk < 2**53:
            word = (kk << 11) | low
            expected = _uniform_of(word >> 11) < p
            assert (True if bound is None else word < bound) == expected


def test_bernoulli_with_where_and_counter() -> None:
    seeds = replicate_seeds(3, 4)
    mask = np.random.default_rng(0).random((4, 30)) < 0.4
    a = BatchRandom(seeds)
    b = BatchRandom(seeds)
    np.testing.assert_array_equal(
        a.bernoulli((4, 30), 0.3, where=mask), b.random((4, 30))[mask] < 0.3
    )
    assert a.draws == b.draws == 1
    np.testing.assert_array_equal(a.random((4, 3)), b.random((4, 3)))


def test_nonzero_cells_matches_numpy() -> None:
    mask = np.random.default_rng(1).random((7, 13)) < 0.3
    rows, cols = nonzero_cells(mask)
    ref_r, ref_c = np.nonzero(mask)
    np.testing.assert_array_equal(rows, ref_r)
    np.testing.assert_array_equal(cols, ref_c)
    with pytest.raises(ValueError, match="2-D mask"):
        nonzero_cells(np.ones(3, bool))


def test_take_cells_matches_fancy_indexing() -> None:
    rng = np.random.default_rng(2)
    rows, cols = nonzero_cells(rng.random((5, 9)) < 0.5)
    for a in (rng.random((5, 9)), rng.integers(0, 9, (5, 9, 3)), rng.random((9, 5)).T):
        np.testing.assert_array_equal(take_cells(a, rows, cols), a[rows, cols])


def test_valid_holdings_at_matches_valid_holdings() -> None:
    rng = np.random.default_rng(3)
    led = Ledger(3, [f"u{i}" for i in range(6)], range(2019, 2024))
    for v in range(2019, 2024):
        led.issue(v, np.full(3, 10**6))
        led.allocate(v, rng.integers(0, 1000, (3, 6)))
    rows, cols = nonzero_cells(rng.random((3, 6)) < 0.6)
    for year in (2018, 2020, 2023):
        np.testing.assert_array_equal(
            led.valid_holdings_at(year, rows, cols), led.valid_holdings(year)[rows, cols]
        )
    only_odd = lambda v, y: v % 2 == 1  # noqa: E731  (a non-contiguous vintage rule)
    np.testing.assert_array_equal(
        led.valid_holdings_at(2023, rows, cols, only_odd),
        led.valid_holdings(2023, only_odd)[rows, cols],
    )
    with pytest.raises(IndexError, match=r"cells must lie in \[0, 3\) x \[0, 6\)"):
        led.valid_holdings_at(2020, [3], [0])
    with pytest.raises(ValueError, match="one shape"):
        led.valid_holdings_at(2020, [0, 1], [0])


class _Source:
    def __init__(self, h: np.ndarray, ob: np.ndarray) -> None:
        self.h, self.ob, self.full_reads = h, ob, 0

    def holdings(self, cells: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        if cells is None:
            self.full_reads += 1
            return self.h.copy()
        return self.h[cells]

    def obligation(self, cells: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        if cells is None:
            self.full_reads += 1
            return self.ob.copy()
        return self.ob[cells]


def _deferred(src: _Source) -> MarketView:
    return MarketView.deferred(
        src,
        src.h.shape,
        session=3,
        sessions_to_deadline=10,
        sessions_in_cycle=200,
        last_close=np.full(src.h.shape[0], 50.0),
        expected_price=np.full(src.h.shape[0], 55.0),
        obligation_certainty=0.5,
        unit_size=np.ones(src.h.shape[1]),
    )


def test_deferred_view_reads_cells_then_arrays_once() -> None:
    rng = np.random.default_rng(4)
    src = _Source(rng.random((2, 8)), rng.random((2, 8)))
    view = _deferred(src)
    rows, cols = np.array([0, 1]), np.array([3, 7])
    np.testing.assert_array_equal(view.gap_at(rows, cols), (src.ob - src.h)[rows, cols])
    assert src.full_reads == 0
    assert view.shape == (2, 8)
    assert "deferred" in repr(view)
    np.testing.assert_array_equal(view.gap, src.ob - src.h)
    _ = view.holdings, view.expected_obligation
    assert src.full_reads == 2  # cached after the first read
    view.close()
    np.testing.assert_array_equal(view.holdings_at(rows, cols), src.h[rows, cols])


def test_closed_view_refuses_what_it_never_computed() -> None:
    view = _deferred(_Source(np.ones((1, 3)), np.ones((1, 3))))
    view.close()
    with pytest.raises(RuntimeError, match="session is over"):
        _ = view.holdings
    with pytest.raises(RuntimeError, match="holdings_at: the view's session is over"):
        view.holdings_at([0], [0])


def test_view_replace_and_shape_check() -> None:
    view = _deferred(_Source(np.ones((1, 3)), np.full((1, 3), 2.0)))
    other = view.replace(session=9, holdings=np.zeros((1, 3)))
    assert other.session == 9
    np.testing.assert_array_equal(other.gap, np.full((1, 3), 2.0))
    with pytest.raises(TypeError, match="unknown attributes"):
        view.replace(colour="red")
    with pytest.raises(ValueError, match="must be \\(R, N\\) arrays of one shape"):
        MarketView(
            0, 1, 1, np.ones(1), np.ones(1), np.ones((1, 3)), np.ones((1, 2)), 1.0, np.ones(3)
        )


@pytest.mark.parametrize("shape", [(40, 3000), (3, 7), (5,), (2, 3, 4), (4, 0)])
def test_blocked_full_draw_follows_the_documented_formula(shape: tuple[int, ...]) -> None:
    """Full draws are hashed a block of replicates at a time; the words are still
    mix64(mix64(key ^ mix64(c)) + golden * (j + 1)) (blocks cross (40, 3000))."""
    rng = BatchRandom(replicate_seeds(11, shape[0]))
    rng.random((shape[0], 1))  # counter 0
    got = rng.random(shape)  # counter 1
    per = int(np.prod(shape[1:], dtype=np.int64))
    c = _mix64(np.array([1], np.uint64))
    base = _mix64(rng._keys ^ c)[:, None]
    words = _mix64(base + _GOLDEN * np.arange(1, per + 1, dtype=np.uint64)[None, :])
    expected = ((words >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    np.testing.assert_array_equal(got, expected.reshape(shape))
    bern = BatchRandom(replicate_seeds(11, shape[0]))
    bern.random((shape[0], 1))
    np.testing.assert_array_equal(bern.bernoulli(shape, 0.3), expected.reshape(shape) < 0.3)


@given(st.lists(st.integers(-5, 2**40), max_size=60))
def test_unique_inverse_matches_numpy(keys: list[int]) -> None:
    arr = np.array(keys, dtype=np.int64)
    uniq, inverse = unique_inverse(arr)
    want_u, want_i = np.unique(arr, return_inverse=True)
    np.testing.assert_array_equal(uniq, want_u)
    np.testing.assert_array_equal(inverse, want_i)
    np.testing.assert_array_equal(uniq[inverse], arr)


@given(
    st.integers(1, 4),
    st.integers(1, 6),
    st.integers(1, 7),
    st.data(),
)
def test_sum_cells_matches_fancy_indexing(r: int, n: int, k: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.integers(-(2**40), 2**40, size=(r, n, k))
    m = data.draw(st.integers(0, 12))
    rows = rng.integers(0, r, m)
    cols = rng.integers(0, n, m)
    start = data.draw(st.integers(0, k - 1))
    columns = data.draw(
        st.one_of(
            st.integers(start, k).map(lambda stop: list(range(start, stop))),  # contiguous
            st.lists(st.integers(0, k - 1), max_size=5),  # any, repeats included
        )
    )
    want = a[rows, cols][:, columns].sum(axis=-1) if m else np.zeros(0, np.int64)
    for arr in (a, np.asfortranarray(a)):  # any memory layout
        got = sum_cells(arr, rows, cols, columns)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("r", [1, 2, 6])
def test_masked_draw_equals_full_draw_at_its_cells(r: int) -> None:
    """Masked draws (index pairs or masks) give the full draw's numbers at their cells,
    for small batches (per-replicate bases mixed in Python ints) and larger ones."""
    shape = (r, 50)
    mask = np.random.default_rng(r).random(shape) < 0.3
    rows, cols = np.nonzero(mask)
    full = BatchRandom(replicate_seeds(4, r)).standard_normal(shape)
    for where in ((rows, cols), mask):
        part = BatchRandom(replicate_seeds(4, r)).standard_normal(shape, where=where)
        np.testing.assert_array_equal(part, full[rows, cols])
    with pytest.raises(IndexError, match=r"where= columns must lie in \[0, 50\)"):
        BatchRandom(replicate_seeds(4, r)).random(shape, where=(rows[:1], np.array([50])))


@given(st.lists(st.integers(0, 6), max_size=40).map(sorted))
def test_run_groups_match_the_repeat_formula(values: list[int]) -> None:
    arr = np.array(values, dtype=np.int64)
    starts, run = run_groups(arr)
    want_starts = np.flatnonzero(np.diff(arr, prepend=-1) != 0) if arr.size else starts[:0]
    np.testing.assert_array_equal(starts, want_starts)
    lengths = np.diff(np.append(want_starts, arr.size))
    np.testing.assert_array_equal(run, np.repeat(np.arange(want_starts.size), lengths))
    np.testing.assert_array_equal(np.flatnonzero(run_starts(arr)), want_starts)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(-(2**40), 2**40), max_size=60),
    st.integers(0, 3),
    st.integers(0, 2000),
)
def test_stable_order_is_the_stable_argsort(values: list[int], spread: int, more: int) -> None:
    from carbonsim._cells import stable_order

    # many ties or wide keys; repeated past the size where the packed sort starts
    keys = np.resize(np.asarray(values or [0], np.int64) // (10 ** (spread * 4)), more)
    np.testing.assert_array_equal(stable_order(keys), np.argsort(keys, kind="stable"))
