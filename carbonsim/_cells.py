"""Sparse access to (R, N) grids by cell: the hot-path helpers of the session loop.

Per-session work should grow with the cells that act, not with R x N. Two numpy idioms
are slow for that: ``np.nonzero`` of a 2-D mask (several times slower than
``np.flatnonzero``) and fancy indexing with two index arrays (it recomputes flat offsets
and checks bounds per array). These helpers give the same results faster.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["nonzero_cells", "run_groups", "run_starts", "sum_cells", "take_cells", "unique_inverse"]

IntpArray = npt.NDArray[np.intp]


def nonzero_cells(mask: npt.NDArray[np.bool_]) -> tuple[IntpArray, IntpArray]:
    """``np.nonzero(mask)`` for a 2-D mask: (rows, cols) of the True cells, row-major.

    Examples
    --------
    >>> import numpy as np
    >>> nonzero_cells(np.array([[False, True], [True, True]]))
    (array([0, 1, 1]), array([1, 0, 1]))
    """
    if mask.ndim != 2:
        raise ValueError(f"nonzero_cells needs a 2-D mask, got shape {mask.shape}")
    flat = np.flatnonzero(mask)
    rows, cols = np.divmod(flat, mask.shape[1])
    return rows, cols


def take_cells(a: npt.NDArray[Any], rows: IntpArray, cols: IntpArray) -> npt.NDArray[Any]:
    """``a[rows, cols]`` (shape (M,) + a.shape[2:]) for in-range cell indices.

    On a C-contiguous array it uses one flat index and :meth:`numpy.ndarray.take`.
    Indices must already lie in range (they come from masks of the same grid): an
    out-of-range column would silently address another row.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6).reshape(2, 3)
    >>> take_cells(a, np.array([1, 0]), np.array([2, 0]))
    array([5, 0])
    """
    if not a.flags.c_contiguous:
        return a[rows, cols]
    n = a.shape[1]
    flat = rows * n + cols
    if a.ndim == 2:
        return a.reshape(-1).take(flat)
    return a.reshape(a.shape[0] * n, *a.shape[2:]).take(flat, axis=0)


def sum_cells(
    a: npt.NDArray[np.int64], rows: IntpArray, cols: IntpArray, columns: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """``a[rows, cols][:, columns].sum(axis=-1)`` for an (R, N, K) integer array.

    The cells' rows are gathered once (each cell's K values are adjacent in a
    C-contiguous array: one cache line per cell) and the chosen columns added in order
    (integer sums are exact in any order). Indices must lie in range.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(12).reshape(2, 2, 3)
    >>> sum_cells(a, np.array([1, 0]), np.array([0, 1]), [0, 2])
    array([14,  8])
    """
    ks = np.asarray(columns, np.intp).reshape(-1)
    if ks.size == 0:
        return np.zeros(rows.shape, a.dtype)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    block = a.reshape(-1, a.shape[2]).take(rows * a.shape[1] + cols, axis=0)
    out = block[:, ks[0]].copy()
    for k in ks[1:]:
        out += block[:, k]
    return out


#: Fewest keys :func:`stable_order` packs (below, a stable argsort is faster).
_PACKED_SORT_MIN = 800


def stable_order(keys: npt.NDArray[np.int64]) -> IntpArray:
    """``np.argsort(keys, kind="stable")`` for a 1-D integer array, faster.

    Each key (less its minimum) and its position are packed into one int64, the position
    in the low bits, and sorted with a plain ``np.sort``: packed keys are distinct, so the
    result is the stable order, and sorting integers costs several times less than a
    stable argsort. Falls back to the stable argsort where the packed key needs more
    than 62 bits, and for fewer than :data:`_PACKED_SORT_MIN` keys.

    Examples
    --------
    >>> import numpy as np
    >>> stable_order(np.array([7, 3, 7, 5])).tolist()
    [1, 3, 0, 2]
    """
    size = keys.size
    if size < _PACKED_SORT_MIN:  # few keys: the argsort's lower overhead wins
        return np.argsort(keys, kind="stable")
    lo = int(keys.min())
    span = int(keys.max()) - lo + 1
    bits = (size - 1).bit_length()
    if span >= 2 ** (62 - bits):
        return np.argsort(keys, kind="stable")
    packed = keys - lo
    packed <<= bits
    packed += np.arange(size, dtype=packed.dtype)
    packed.sort()
    packed &= (1 << bits) - 1
    return packed.astype(np.intp, copy=False)


def unique_inverse(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], IntpArray]:
    """``np.unique(keys, return_inverse=True)`` for a 1-D integer array, with less overhead.

    One stable sort and a run mask, without :func:`numpy.unique`'s Python-level
    dispatch, which costs more than the work itself on the few dozen cells a session
    settles. Returns the sorted distinct keys and, for each key, its position among them.

    Examples
    --------
    >>> import numpy as np
    >>> unique_inverse(np.array([7, 3, 7, 5]))
    (array([3, 5, 7]), array([2, 0, 2, 1]))
    """
    order = stable_order(keys)
    ordered = keys[order]
    first = run_starts(ordered)
    inverse = np.empty(ordered.shape, np.intp)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def run_starts(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """True at the first element of each run of equal values of a 1-D array.

    Examples
    --------
    >>> import numpy as np
    >>> run_starts(np.array([2, 2, 5, 7, 7])).tolist()
    [True, False, True, True, False]
    """
    flags = np.empty(values.shape, bool)
    flags[:1] = True
    np.not_equal(values[1:], values[:-1], out=flags[1:])
    return flags


def run_groups(values: npt.NDArray[Any]) -> tuple[IntpArray, IntpArray]:
    """Runs of equal values of a 1-D array: where each starts, and each element's run.

    ``(starts, run)`` with ``run[i]`` the number of the run holding element ``i``
    (``np.repeat(np.arange(len(starts)), run_lengths)`` without computing the lengths).

    Examples
    --------
    >>> import numpy as np
    >>> starts, run = run_groups(np.array([2, 2, 5, 7, 7]))
    >>> starts.tolist(), run.tolist()
    ([0, 2, 3], [0, 0, 1, 2, 2])
    """
    flags = run_starts(values)
    run = np.cumsum(flags, dtype=np.intp)
    run -= 1
    return np.flatnonzero(flags), run
