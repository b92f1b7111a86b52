"""Validation, registry and randomness helpers shared by every module."""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim._random import as_generator, replicate_seeds
from carbonsim._registry import Registry, UnknownPluginError
from carbonsim._validation import (
    as_bool_array,
    as_float_array,
    as_int_array,
    check_in_range,
    check_same_length,
    check_share,
)


class TestFloatArray:
    def test_accepts_ints_and_floats(self) -> None:
        out = as_float_array("price", [1, 2.5])
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, [1.0, 2.5])

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_rejects_non_finite_naming_field_and_index(self, bad: float) -> None:
        with pytest.raises(ValueError, match=r"price\[1\]"):
            as_float_array("price", [1.0, bad])

    def test_rejects_negative_when_nonnegative(self) -> None:
        with pytest.raises(ValueError, match=r"qty must be >= 0, got qty\[0\] = -1.0"):
            as_float_array("qty", [-1.0], nonnegative=True)

    def test_rejects_zero_when_positive(self) -> None:
        with pytest.raises(ValueError, match="must be > 0"):
            as_float_array("tick", [0.0], positive=True)

    def test_rejects_strings(self) -> None:
        with pytest.raises(TypeError, match="price must be an array of real numbers"):
            as_float_array("price", ["a"])

    def test_rejects_bools(self) -> None:
        with pytest.raises(TypeError):
            as_float_array("price", [True])

    def test_rejects_wrong_ndim(self) -> None:
        with pytest.raises(ValueError, match="1-dimensional"):
            as_float_array("price", [[1.0]])


class TestIntArray:
    def test_integral_floats_accepted(self) -> None:
        np.testing.assert_array_equal(as_int_array("lots", [1.0, 2.0]), [1, 2])

    def test_fractional_floats_rejected(self) -> None:
        with pytest.raises(TypeError, match="whole numbers"):
            as_int_array("lots", [1.5])

    def test_bounds(self) -> None:
        with pytest.raises(ValueError, match="market must be <= 3"):
            as_int_array("market", [0, 4], lo=0, hi=3)
        with pytest.raises(ValueError, match="must be >= 0"):
            as_int_array("market", [-1], nonnegative=True)


def test_bool_array() -> None:
    np.testing.assert_array_equal(as_bool_array("side", [1, 0]), [True, False])
    with pytest.raises(TypeError):
        as_bool_array("side", [2])


def test_same_length() -> None:
    assert check_same_length(a=np.zeros(2), b=np.zeros(2)) == 2
    with pytest.raises(ValueError, match="a=2, b=3"):
        check_same_length(a=np.zeros(2), b=np.zeros(3))


def test_scalars() -> None:
    assert check_share("limit_share", 0.05) == 0.05
    with pytest.raises(ValueError, match=r"limit_share must lie in \[0.0, 1.0\], got 1.5"):
        check_share("limit_share", 1.5)
    with pytest.raises(ValueError, match="finite"):
        check_in_range("x", float("nan"))
    with pytest.raises(TypeError):
        check_in_range("x", "1")  # type: ignore[arg-type]


class TestRegistry:
    def test_register_and_get(self) -> None:
        reg: Registry[int] = Registry("thing")
        reg.register("a")(1)
        assert reg.get("a") == 1
        assert "a" in reg
        assert list(reg) == ["a"]
        assert len(reg) == 1

    def test_unknown_lists_valid_names(self) -> None:
        reg: Registry[int] = Registry("allocation rule")
        reg.register("benchmark")(1)
        reg.register("grandfathering")(2)
        with pytest.raises(UnknownPluginError, match="'benchmark', 'grandfathering'") as exc:
            reg.get("benchmrk")
        assert "unknown allocation rule 'benchmrk'" in str(exc.value)
        assert isinstance(exc.value, KeyError)
        assert isinstance(exc.value, ValueError)

    def test_duplicate_refused_unless_replace(self) -> None:
        reg: Registry[int] = Registry("thing")
        reg.register("a")(1)
        with pytest.raises(ValueError, match="already registered"):
            reg.register("a")(2)
        reg.register("a", replace=True)(3)
        assert reg.get("a") == 3


class TestRandom:
    def test_same_seed_same_stream(self) -> None:
        a = as_generator(42).random(5)
        b = as_generator(42).random(5)
        np.testing.assert_array_equal(a, b)

    def test_generator_passes_through(self) -> None:
        g = np.random.default_rng(1)
        assert as_generator(g) is g

    @pytest.mark.parametrize("bad", [-1, 1.5, "x", True])
    def test_bad_seed(self, bad: object) -> None:
        with pytest.raises((TypeError, ValueError), match="seed"):
            as_generator(bad)  # type: ignore[arg-type]

    def test_replicate_k_independent_of_batch_size(self) -> None:
        small = replicate_seeds(7, 3)
        large = replicate_seeds(7, 10)
        for k in range(3):
            a = np.random.default_rng(small[k]).random(4)
            b = np.random.default_rng(large[k]).random(4)
            np.testing.assert_array_equal(a, b)

    def test_replicates_differ(self) -> None:
        s = replicate_seeds(0, 2)
        assert not np.array_equal(
            np.random.default_rng(s[0]).random(3), np.random.default_rng(s[1]).random(3)
        )

    @pytest.mark.parametrize("bad", [0, -3, 10**8])
    def test_replicate_count_range(self, bad: int) -> None:
        with pytest.raises(ValueError, match="replicates"):
            replicate_seeds(0, bad)


class TestBatchRandom:
    def test_batch_invariant(self) -> None:
        from carbonsim._random import BatchRandom

        seeds = replicate_seeds(3, 5)
        big = BatchRandom(seeds)
        small = BatchRandom(seeds[3:4])
        for shape_tail in ((7,), (2, 3)):
            a = big.random((5, *shape_tail))
            b = small.random((1, *shape_tail))
            np.testing.assert_array_equal(a[3], b[0])
        np.testing.assert_array_equal(
            big.standard_normal((5, 4))[3], small.standard_normal((1, 4))[0]
        )

    def test_subset_keeps_counter(self) -> None:
        from carbonsim._random import BatchRandom

        br = BatchRandom(replicate_seeds(0, 3))
        br.random((3, 2))
        sub = br.subset([2])
        np.testing.assert_array_equal(br.random((3, 4))[2], sub.random((1, 4))[0])

    def test_distribution_moments(self) -> None:
        from carbonsim._random import BatchRandom

        br = BatchRandom(replicate_seeds(1, 2))
        u = br.random((2, 100_000))
        z = br.standard_normal((2, 100_000))
        assert u.min() > 0.0
        assert u.max() < 1.0
        assert abs(u.mean() - 0.5) < 0.005
        assert abs(z.mean()) < 0.02
        assert abs(z.std() - 1.0) < 0.02
        assert abs(np.corrcoef(u[0], u[1])[0, 1]) < 0.02

    def test_successive_draws_differ_and_shape_checked(self) -> None:
        from carbonsim._random import BatchRandom

        br = BatchRandom(replicate_seeds(1, 2))
        assert not np.array_equal(br.random((2, 3)), br.random((2, 3)))
        assert br.draws == 2
        with pytest.raises(ValueError, match="number of replicates 2"):
            br.random((3, 3))
        with pytest.raises(ValueError, match="at least one"):
            BatchRandom([])


def test_batch_random_where_equals_full_draw() -> None:
    from carbonsim._random import BatchRandom

    seeds = replicate_seeds(4, 3)
    full, part = BatchRandom(seeds), BatchRandom(seeds)
    mask = np.random.default_rng(0).random((3, 50)) < 0.2
    for method in ("random", "standard_normal"):
        a = getattr(full, method)((3, 50))
        b = getattr(part, method)((3, 50), where=mask)
        np.testing.assert_array_equal(a[mask], b)
    pairs = BatchRandom(seeds)
    pairs.random((3, 50))
    pairs.standard_normal((3, 50))
    np.testing.assert_array_equal(
        pairs.random((3, 50), where=np.nonzero(mask)), full.random((3, 50))[mask]
    )
    part.random((3, 50))
    # the counter advanced the same way: the next full draws agree
    np.testing.assert_array_equal(full.random((3, 5)), part.random((3, 5)))
    with pytest.raises(ValueError, match="where must have"):
        part.random((3, 50), where=mask[:, :10])
