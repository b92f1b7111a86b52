"""The registry of optional compiled kernels and the specifications they must equal.

carbonsim has one implementation of every rule: numpy (or plain Python) code. A compiled
kernel (numba, the optional ``fast`` extra) may exist beside it only for domain-free work,
as a faster way to compute exactly what its specification computes. Each such kernel is
registered, as a :class:`CompiledKernel`, with its specification and a generator of random
cases in the ``KERNELS`` tuple of its layer's ``compiled`` module (today
:mod:`carbonsim.clearing.compiled`: the continuous order book's matching loop);
``tests/property/test_compiled_kernels.py`` walks every entry and checks, case by case,
that the compiled kernel's result equals the specification's, and that no compiled module
exists without an entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CompiledKernel"]


@dataclass(frozen=True)
class CompiledKernel:
    """A compiled kernel and the specification it must equal.

    Attributes
    ----------
    name : str
        Registry key.
    module : str
        The module holding the compiled code (e.g. ``carbonsim.clearing._order_book_numba``).
    specification : callable
        The reference implementation (numpy or plain Python), ``f(**case)``.
    compiled : callable
        The compiled implementation, ``f(**case)``; raises ``ModuleNotFoundError`` without
        its optional dependency.
    example : callable
        ``example(rng, n) -> dict``: the keyword arguments of a random valid case of size
        ``n`` drawn from the numpy ``Generator`` ``rng``.
    requires : str
        The optional package the compiled implementation needs.
    """

    name: str
    module: str
    specification: Callable[..., Any]
    compiled: Callable[..., Any]
    example: Callable[[np.random.Generator, int], dict[str, Any]]
    requires: str = "numba"
