"""Compiled draws of :class:`carbonsim._random.BatchRandom`, behind ``backend="numba"``.

:class:`CompiledBatchRandom` is a :class:`~carbonsim._random.BatchRandom` whose words are
hashed by compiled loops instead of a dozen numpy passes: the same SplitMix64 arithmetic on
uint64 (wrapping), so every number is bit for bit the one the numpy class draws, and the
draw counter advances the same way. Its :meth:`~CompiledBatchRandom.bernoulli_cells`
returns the cells of a full Bernoulli draw that come out True without building the
``(R, N)`` mask. Importing this module does nothing heavy; :func:`compile_kernels` (called
by the engine's backend set-up) imports the optional ``numba`` package and compiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._numba import compile_module
from carbonsim._random import (
    _GOLDEN,
    _INV_2_53,
    _M1,
    _M2,
    BatchRandom,
    Where,
    _bits_threshold,
    _mix64_int,
)

__all__ = [
    "CompiledBatchRandom",
    "cell_uniforms",
    "cell_uniforms_many",
    "cell_words",
    "compile_kernels",
    "grown",
    "true_cells",
]

U64Array = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _mix(z: np.uint64) -> np.uint64:
    """SplitMix64's output function on one uint64 (as ``carbonsim._random._mix64``)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _bases(keys: U64Array, cmix: np.uint64) -> U64Array:
    """Per-replicate bases ``mix64(key_r ^ mix64(c))`` of a draw (``cmix`` = mix64(c))."""
    out = np.empty(keys.shape[0], np.uint64)
    for r in range(keys.shape[0]):
        out[r] = _mix(keys[r] ^ cmix)
    return out


def cell_words(
    keys: U64Array, cmix: np.uint64, rows: IntArray, cols: IntArray, per: int
) -> tuple[bool, U64Array]:
    """Words ``mix64(base[rows] + golden * (cols + 1))`` of the selected cells, (K,), and
    whether every cell lies in ``[0, R) x [0, per)`` (nothing is computed when not)."""
    k = rows.shape[0]
    out = np.empty(k, np.uint64)
    n_rows = keys.shape[0]
    for i in range(k):
        if cols[i] < 0 or cols[i] >= per or rows[i] < 0 or rows[i] >= n_rows:
            return False, out
    base = _bases(keys, cmix)
    for i in range(k):
        out[i] = _mix(base[rows[i]] + _GOLDEN * np.uint64(cols[i] + 1))
    return True, out


def cell_uniforms(
    keys: U64Array, cmix: np.uint64, rows: IntArray, cols: IntArray, per: int
) -> tuple[bool, FloatArray]:
    """The uniforms :meth:`BatchRandom.random` makes of :func:`cell_words`' words."""
    ok, words = cell_words(keys, cmix, rows, cols, per)
    out = np.empty(words.shape[0], np.float64)
    if ok:
        for i in range(words.shape[0]):
            out[i] = (np.float64(words[i] >> np.uint64(11)) + 0.5) * _INV_2_53
    return ok, out


def cell_uniforms_many(
    keys: U64Array, cmix: U64Array, rows: IntArray, cols: IntArray, per: int
) -> tuple[bool, FloatArray]:
    """:func:`cell_uniforms` of ``len(cmix)`` consecutive draws at the same cells, (D, K)."""
    out = np.empty((cmix.shape[0], rows.shape[0]), np.float64)
    for d in range(cmix.shape[0]):
        ok, row = cell_uniforms(keys, cmix[d], rows, cols, per)
        if not ok:
            return False, out
        out[d] = row
    return True, out


def grown(rows: IntArray, cols: IntArray, k: int, need: int) -> tuple[IntArray, IntArray]:
    """``rows`` and ``cols`` (whose first ``k`` cells are filled) with room for ``need``
    cells: themselves when they have it, else copies at least twice as long."""
    if need <= rows.shape[0]:
        return rows, cols
    cap = max(2 * rows.shape[0], need)
    rows_new = np.empty(cap, np.int64)
    cols_new = np.empty(cap, np.int64)
    rows_new[:k] = rows[:k]
    cols_new[:k] = cols[:k]
    return rows_new, cols_new


def true_cells(
    keys: U64Array, cmix: np.uint64, per: int, bound: np.uint64
) -> tuple[IntArray, IntArray]:
    """Row-major (rows, cols) of the cells whose word is below ``bound``, over ``(R, per)``.

    Row by row: the words are hashed into a buffer and counted in a loop without branches
    (which the compiler vectorises), then the cells below the bound are collected.
    """
    base = _bases(keys, cmix)
    n_rows = base.shape[0]
    words = np.empty(per, np.uint64)
    rows = np.empty(64, np.int64)
    cols = np.empty(64, np.int64)
    k = 0
    for r in range(n_rows):
        b = base[r]
        hits = 0
        for j in range(per):
            w = _mix(b + _GOLDEN * np.uint64(j + 1))
            words[j] = w
            hits += int(w < bound)
        rows, cols = grown(rows, cols, k, k + hits)
        for j in range(per):
            if words[j] < bound:
                rows[k] = r
                cols[k] = j
                k += 1
    return rows[:k].copy(), cols[:k].copy()


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Import numba and compile the kernels (once per process, cached on disk)."""
    compile_module(
        globals(),
        ("_mix", "_bases", "grown", "cell_words", "cell_uniforms"),
        ("cell_words", "cell_uniforms", "cell_uniforms_many", "true_cells"),
        _compiled,
    )


class CompiledBatchRandom(BatchRandom):
    """:class:`~carbonsim._random.BatchRandom` with compiled hashing; the same numbers.

    Full draws of any shape and masked draws given as a boolean mask use the inherited
    numpy code; masked draws given as ``(rows, cols)`` index pairs and
    :meth:`bernoulli_cells` run compiled, one call each (the per-replicate bases are mixed
    inside the kernel). Call :func:`compile_kernels` first.
    """

    def _next_mix(self) -> np.uint64:
        """``mix64(c)`` of the next draw ``c``; advances the counter."""
        c = _mix64_int(self._counter)
        self._counter += 1
        return np.uint64(c)

    def _cells(self, shape: tuple[int, ...], where: Where) -> tuple[IntArray, IntArray, int]:
        per = self._check_shape(shape)
        if len(shape) != 2:
            raise ValueError("index pairs for where= need a 2-D draw shape (R, N)")
        rows, cols = (np.asarray(a, np.int64) for a in where)
        return rows, cols, per

    def _at_cells(
        self, kernel: str, shape: tuple[int, ...], where: tuple[Any, Any], numpy_draw: Any
    ) -> Any:
        """One draw at the cells ``where`` by the compiled ``kernel``; cells out of range
        leave the counter as it was and run ``numpy_draw()``, which raises (or wraps
        negative rows) as the numpy class does."""
        rows, cols, per = self._cells(shape, where)
        ok, out = _compiled[kernel](self._keys, self._next_mix(), rows, cols, per)
        if not ok:
            self._counter -= 1
            return numpy_draw()
        return np.asarray(out)

    def _bits_where(self, shape: tuple[int, ...], where: Where) -> np.ndarray:
        if not isinstance(where, tuple):
            return super()._bits_where(shape, where)
        words: np.ndarray = self._at_cells(
            "cell_words",
            shape,
            where,
            lambda: super(CompiledBatchRandom, self)._bits_where(shape, where),
        )
        return words

    def random(self, shape: tuple[int, ...], where: Where | None = None) -> FloatArray:
        if not isinstance(where, tuple):
            return super().random(shape, where)
        shape = tuple(int(s) for s in shape)
        out: FloatArray = self._at_cells(
            "cell_uniforms",
            shape,
            where,
            lambda: super(CompiledBatchRandom, self).random(shape, where),
        )
        return out

    def random_draws(self, shape: tuple[int, ...], where: Where, count: int) -> FloatArray:
        if not isinstance(where, tuple):
            return super().random_draws(shape, where, count)
        shape = tuple(int(s) for s in shape)
        rows, cols, per = self._cells(shape, where)
        start = self._counter
        cmix = np.array([self._next_mix() for _ in range(int(count))], np.uint64)
        ok, out = _compiled["cell_uniforms_many"](self._keys, cmix, rows, cols, per)
        if not ok:  # cells out of range: the numpy draws raise (or wrap negative rows)
            self._counter = start
            return super().random_draws(shape, where, count)
        return np.asarray(out)

    def bernoulli_cells(
        self, shape: tuple[int, int], p: float
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """The (rows, cols) of ``self.bernoulli(shape, p)``'s True cells, row-major."""
        shape = (int(shape[0]), int(shape[1]))
        per = self._check_shape(shape)
        bound = _bits_threshold(float(p))
        if bound is None:
            return super().bernoulli_cells(shape, p)
        rows, cols = _compiled["true_cells"](self._keys, self._next_mix(), per, np.uint64(bound))
        return rows, cols
