"""Every optional compiled kernel equals its specification (one generic test for all).

The registry (the ``KERNELS`` of each layer's ``compiled`` module, entries of
:class:`carbonsim._compiled.CompiledKernel`) pairs each compiled kernel with
the numpy or plain-Python implementation that defines it and a generator of random cases;
this test draws cases and compares the two results field by field. A compiled module that
is not registered fails the test: numba stays optional only for registered, domain-free
kernels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import carbonsim
from carbonsim.clearing import compiled as clearing_compiled

#: Every registered compiled kernel, by name (one ``compiled`` module per layer).
KERNELS = {k.name: k for module in (clearing_compiled,) for k in module.KERNELS}


def assert_same(a: Any, b: Any, where: str = "result") -> None:
    """Equal results: dataclasses field by field, arrays element by element (NaN equal)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float), where
        assert np.isnan(b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("name", sorted(KERNELS))
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400))
def test_compiled_kernel_equals_its_specification(name: str, seed: int, n: int) -> None:
    kernel = KERNELS[name]
    pytest.importorskip(kernel.requires)
    case = kernel.example(np.random.default_rng(seed), n)
    assert_same(kernel.specification(**case), kernel.compiled(**case), name)


def test_every_compiled_module_is_registered() -> None:
    root = Path(carbonsim.__file__).parent
    compiled = {
        "carbonsim." + ".".join(p.relative_to(root).with_suffix("").parts)
        for p in root.rglob("*numba*.py")
    }
    registered = {k.module for k in KERNELS.values()}
    assert compiled == registered, f"unregistered compiled modules: {compiled - registered}"
