"""Shared plumbing of the compiled kernels behind ``backend="numba"``.

Kernel modules define their kernels as plain Python functions (so importing them never
imports numba) and call :func:`compile_module` from their ``compile_kernels``: it imports the
optional ``numba`` package, compiles the module's helpers first and rebinds their names in
the module, so the kernels calling them compile against the compiled helpers, then compiles
the kernels, once per process and safely from several threads (a sweep on a thread pool
starts several simulations at once). Compiled code is cached on disk by numba.

The element-wise helpers here reproduce numpy's semantics exactly where Python's ``max``
and ``min`` differ (NaN propagates).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["compile_module", "np_maximum", "np_minimum", "order_cells"]

_LOCK = threading.Lock()


def np_maximum(a: float, b: float) -> float:
    """``np.maximum`` of two floats (NaN propagates; the first where they compare equal)."""
    return a if (a >= b or a != a) else b


def np_minimum(a: float, b: float) -> float:
    """``np.minimum`` of two floats (NaN propagates; the first where they compare equal)."""
    return a if (a <= b or a != a) else b


def order_cells(n_units: int, rep: Any, unit: Any, selected: Any) -> tuple[Any, Any, Any]:
    """The distinct (replicate, unit) cells of the ``selected`` orders, sorted:
    ``(rows, cols, cell_of)`` with ``cell_of[i]`` the cell of order ``i`` (-1 when not
    selected). Summing over orders in input order per cell then adds in the order
    ``np.bincount`` does."""
    n = rep.shape[0]
    k = 0
    for i in range(n):
        if selected[i]:
            k += 1
    sel = np.empty(k, np.int64)
    key = np.empty(k, np.int64)
    k = 0
    for i in range(n):
        if selected[i]:
            sel[k] = i
            key[k] = rep[i] * n_units + unit[i]
            k += 1
    order = np.argsort(key, kind="mergesort")
    n_cells = 0
    for j in range(k):
        if j == 0 or key[order[j]] != key[order[j - 1]]:
            n_cells += 1
    rows = np.empty(n_cells, np.int64)
    cols = np.empty(n_cells, np.int64)
    cell_of = np.full(n, -1, np.int64)
    c = -1
    for j in range(k):
        i = sel[order[j]]
        if j == 0 or key[order[j]] != key[order[j - 1]]:
            c += 1
            rows[c] = rep[i]
            cols[c] = unit[i]
        cell_of[i] = c
    return rows, cols, cell_of


def compile_module(
    namespace: dict[str, Any],
    helpers: Sequence[str],
    kernels: Sequence[str],
    compiled: dict[str, Any],
) -> None:
    """Compile a kernel module's ``helpers`` (rebound by name in ``namespace``) and then its
    ``kernels`` into ``compiled`` (by name); does nothing when ``compiled`` is filled.

    Raises
    ------
    ModuleNotFoundError
        When numba is not installed.
    """
    with _LOCK:
        if compiled:
            return
        numba = importlib.import_module("numba")
        jit = numba.njit(cache=True)
        for name in helpers:
            f = namespace[name]
            namespace[name] = jit(getattr(f, "py_func", f))
        out = {}
        for name in kernels:
            f = namespace[name]
            out[name] = f if name in helpers else jit(getattr(f, "py_func", f))
        compiled.update(out)  # visible to other threads only when complete
