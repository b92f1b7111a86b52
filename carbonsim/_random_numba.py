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

import importlib
from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._random import _GOLDEN, _M1, _M2, BatchRandom, Where, _bits_threshold

__all__ = ["CompiledBatchRandom", "cell_words", "compile_kernels", "true_cells"]

U64Array = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.int64]


def _mix(z: np.uint64) -> np.uint64:
    """SplitMix64's output function on one uint64 (as ``carbonsim._random._mix64``)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def cell_words(base: U64Array, rows: IntArray, cols: IntArray) -> U64Array:
    """Words ``mix64(base[rows] + golden * (cols + 1))`` of the selected cells, (K,)."""
    k = rows.shape[0]
    out = np.empty(k, np.uint64)
    for i in range(k):
        out[i] = _mix(base[rows[i]] + _GOLDEN * np.uint64(cols[i] + 1))
    return out


def true_cells(base: U64Array, per: int, bound: np.uint64) -> tuple[IntArray, IntArray]:
    """Row-major (rows, cols) of the cells whose word is below ``bound``, over ``(R, per)``."""
    n_rows = base.shape[0]
    cap = 64
    rows = np.empty(cap, np.int64)
    cols = np.empty(cap, np.int64)
    k = 0
    for r in range(n_rows):
        b = base[r]
        for j in range(per):
            if _mix(b + _GOLDEN * np.uint64(j + 1)) < bound:
                if k == cap:
                    cap *= 2
                    rows_new = np.empty(cap, np.int64)
                    cols_new = np.empty(cap, np.int64)
                    rows_new[:k] = rows[:k]
                    cols_new[:k] = cols[:k]
                    rows, cols = rows_new, cols_new
                rows[k] = r
                cols[k] = j
                k += 1
    return rows[:k].copy(), cols[:k].copy()


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Import numba and compile the kernels (once per process, cached on disk)."""
    if _compiled:
        return
    numba = importlib.import_module("numba")
    global _mix
    _mix = numba.njit(cache=True)(_mix)
    _compiled["cell_words"] = numba.njit(cache=True)(cell_words)
    _compiled["true_cells"] = numba.njit(cache=True)(true_cells)


class CompiledBatchRandom(BatchRandom):
    """:class:`~carbonsim._random.BatchRandom` with compiled hashing; the same numbers.

    Full draws of any shape and masked draws given as a boolean mask use the inherited
    numpy code; masked draws given as ``(rows, cols)`` index pairs and
    :meth:`bernoulli_cells` run compiled. Call :func:`compile_kernels` first.
    """

    def _bits_where(self, shape: tuple[int, ...], where: Where) -> np.ndarray:
        if not isinstance(where, tuple):
            return super()._bits_where(shape, where)
        per = self._check_shape(shape)
        if len(shape) != 2:
            raise ValueError("index pairs for where= need a 2-D draw shape (R, N)")
        r, j = (np.asarray(a, np.int64) for a in where)
        if j.size and not (int(j.min()) >= 0 and int(j.max()) < per):
            raise IndexError(f"where= columns must lie in [0, {per}) for shape {shape}")
        words: np.ndarray = _compiled["cell_words"](self._next_base(), r, j)
        return words

    def bernoulli_cells(
        self, shape: tuple[int, int], p: float
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """The (rows, cols) of ``self.bernoulli(shape, p)``'s True cells, row-major."""
        shape = (int(shape[0]), int(shape[1]))
        per = self._check_shape(shape)
        bound = _bits_threshold(float(p))
        if bound is None:
            return super().bernoulli_cells(shape, p)
        rows, cols = _compiled["true_cells"](self._next_base(), per, np.uint64(bound))
        return rows, cols
