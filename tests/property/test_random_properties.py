"""Properties of the counter-based draws the engine relies on: the acting cells of a
session (:meth:`carbonsim._random.BatchRandom.bernoulli_cells`) are batch-invariant,
nested in the probability (common random numbers), independent Bernoulli(p) in law, and
cost work proportional to the cells that come out True."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsim._random import BatchRandom, _grid_shape, _permute_grid, replicate_seeds


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    r=st.integers(1, 6),
    n=st.integers(1, 700),
    p=st.floats(0.0, 1.0),
    dp=st.floats(0.0, 1.0),
)
def test_acting_cells_are_batch_invariant_sorted_unique_and_nested(
    seed: int, r: int, n: int, p: float, dp: float
) -> None:
    seeds = replicate_seeds(seed, r)
    rows, cols = BatchRandom(seeds).bernoulli_cells((r, n), p)
    flat = rows * n + cols
    assert (np.diff(flat) > 0).all()  # row-major, each cell once
    assert ((cols >= 0) & (cols < n)).all()
    for k in range(r):  # replicate k alone gets the same cells
        alone = BatchRandom(seeds[k : k + 1]).bernoulli_cells((1, n), p)
        assert np.array_equal(alone[1], cols[rows == k])
    # a larger probability keeps every cell of a smaller one
    bigger = BatchRandom(seeds).bernoulli_cells((r, n), min(1.0, p + dp))
    assert np.isin(flat, bigger[0] * n + bigger[1]).all()


@pytest.mark.parametrize("p", [-0.5, 0.0, float("nan")])
def test_no_cells_at_zero_probability_and_the_counter_advances(p: float) -> None:
    rng = BatchRandom(replicate_seeds(1, 3))
    rows, cols = rng.bernoulli_cells((3, 10), p)
    assert rows.size == cols.size == 0
    assert rng.draws == 1


def test_every_cell_at_probability_one() -> None:
    rows, cols = BatchRandom(replicate_seeds(1, 2)).bernoulli_cells((2, 4), 1.0)
    assert rows.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert cols.tolist() == [0, 1, 2, 3] * 2


@pytest.mark.parametrize(("n", "p"), [(3, 0.5), (50, 0.1), (300, 0.02), (2257, 0.004)])
def test_cells_are_independent_bernoulli_in_law(n: int, p: float) -> None:
    r = 20_000
    rows, cols = BatchRandom(replicate_seeds(11, r)).bernoulli_cells((r, n), p)
    hit = np.zeros((r, n), bool)
    hit[rows, cols] = True
    sd = np.sqrt(p * (1 - p) / r)
    # each cell's frequency within 5 standard errors of p
    assert np.abs(hit.mean(axis=0) - p).max() < 5 * sd + 1e-12
    # the count per replicate has the binomial variance (no clustering)
    assert hit.sum(axis=1).var() == pytest.approx(n * p * (1 - p), rel=0.08)
    # neighbouring cells are uncorrelated (a permutation without structure)
    if n > 1:
        a, b = hit[:, :-1].ravel(), hit[:, 1:].ravel()
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(a.size)


def test_successive_draws_are_independent() -> None:
    rng = BatchRandom(replicate_seeds(5, 20_000))
    first = np.zeros((20_000, 40), bool)
    second = np.zeros((20_000, 40), bool)
    first[rng.bernoulli_cells((20_000, 40), 0.2)] = True
    second[rng.bernoulli_cells((20_000, 40), 0.2)] = True
    assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < 5 / np.sqrt(first.size)


@pytest.mark.parametrize(("a", "b"), [(1, 1), (2, 3), (16, 16), (17, 5), (48, 47)])
def test_grid_feistel_is_a_permutation_for_every_key(a: int, b: int) -> None:
    slots = a * b
    for key in (0, 1, 2**63 + 12345):
        x = np.arange(slots, dtype=np.uint64)
        out = _permute_grid(x, np.full(slots, np.uint64(key)), a, b)
        assert np.array_equal(np.sort(out), x)


@pytest.mark.parametrize("n", [1, 2, 255, 256, 257, 2257, 10**6])
def test_the_grid_wastes_few_slots(n: int) -> None:
    a, b = _grid_shape(n)
    assert a * b >= n
    assert a * b < max(n + a, 256 + 16)


def test_the_work_is_proportional_to_the_true_cells() -> None:
    # the draw makes order statistics until one passes p: about (slots x p) words per
    # replicate, not N; counted through the cache of element offsets it grows
    rng = BatchRandom(replicate_seeds(0, 4))
    rng.bernoulli_cells((4, 1_000_000), 1e-4)
    assert rng._offsets.shape[0] < 2_000
