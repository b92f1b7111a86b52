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

__all__ = ["compile_module", "np_maximum", "np_minimum"]

_LOCK = threading.Lock()


def np_maximum(a: float, b: float) -> float:
    """``np.maximum`` of two floats (NaN propagates; the first where they compare equal)."""
    return a if (a >= b or a != a) else b


def np_minimum(a: float, b: float) -> float:
    """``np.minimum`` of two floats (NaN propagates; the first where they compare equal)."""
    return a if (a <= b or a != a) else b


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
