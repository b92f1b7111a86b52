"""pytest-benchmark timings of the clearing kernels (excluded from the default test run).

Run with ``python -m pytest -m benchmark benchmarks/test_bench_clearing.py``. The same
books as ``benchmarks/bench_clearing.py`` (fixed seeds); configurations ``small`` (10^4
orders) and ``large`` (10^6 orders), each side by side with the ``np.argsort`` floor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from bench_clearing import make_batch, make_book

from carbonsim.clearing import call_auction, call_auction_batch

pytestmark = pytest.mark.benchmark

SIZES = {"small": 10**4, "large": 10**6}


@pytest.mark.parametrize("size", list(SIZES))
def test_call_auction(benchmark: Any, size: str) -> None:
    book = make_book(SIZES[size])
    result = benchmark(call_auction, *book)
    assert result.volume > 0


@pytest.mark.parametrize("size", list(SIZES))
def test_argsort_floor(benchmark: Any, size: str) -> None:
    book = make_book(SIZES[size])
    prices = np.concatenate((book[0], book[2]))
    order = benchmark(np.argsort, prices)
    assert order.size == SIZES[size]


def test_call_auction_batch(benchmark: Any) -> None:
    b = make_batch(2000, 200)
    result = benchmark(
        call_auction_batch, b["market"], b["side"], b["price"], b["qty"], n_markets=2000
    )
    assert result.executable.all()


def test_loop_of_single_calls(benchmark: Any) -> None:
    b = make_batch(2000, 200)
    books = []
    for m in range(2000):
        sl = slice(m * 200, (m + 1) * 200)
        s, p, q = b["side"][sl], b["price"][sl], b["qty"][sl]
        books.append((p[s], q[s], p[~s], q[~s]))
    volumes = benchmark.pedantic(
        lambda: [call_auction(*book).volume for book in books], rounds=3, iterations=1
    )
    assert all(v > 0 for v in volumes)
