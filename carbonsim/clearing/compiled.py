"""The clearing layer's compiled kernels, registered against their specifications.

See :mod:`carbonsim._compiled`. The continuous order book's compiled matching loop
(``match_stream(..., backend="numba")``, :mod:`carbonsim.clearing._order_book_numba`)
must give exactly the trades, order states and book of the plain-Python engine
(``backend="python"``, the specification).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from carbonsim._compiled import CompiledKernel
from carbonsim.clearing.order_book import BookResult, OrderType, match_stream

__all__ = ["KERNELS", "random_events"]


def random_events(rng: np.random.Generator, n: int, cancel_window: int = 50) -> dict[str, Any]:
    """A random valid stream of ``n`` order-book events (keyword arguments of
    :func:`~carbonsim.clearing.order_book.match_stream`): limit orders scattered around a
    mid price that drifts, about 3% cancels of one of the ``cancel_window`` events before
    and 2% market orders (also the benchmarks' stream)."""
    side = np.where(rng.random(n) < 0.5, 1, -1)
    mid = 50.0 + np.cumsum(rng.normal(0.0, 0.002, n))
    offset = rng.exponential(0.10, n) + rng.normal(0.0, 0.05, n)
    price = np.maximum(np.round(mid - side * offset, 2), 0.01)
    qty = rng.integers(1, 1000, n)
    u = rng.random(n)
    order_type = np.select([u < 0.03, u < 0.05], [OrderType.CANCEL, OrderType.MARKET], 0)
    back = rng.integers(1, cancel_window, n)
    cancel_of = np.where(order_type == OrderType.CANCEL, np.arange(n) - back, -1)
    order_type = np.where(
        (order_type == OrderType.CANCEL) & (cancel_of < 0), OrderType.LIMIT, order_type
    )  # nothing to cancel yet
    cancel_of = np.where(order_type == OrderType.CANCEL, cancel_of, -1)
    return {
        "side": side,
        "price": np.where(order_type == OrderType.LIMIT, price, np.nan),
        "qty": np.where(order_type == OrderType.CANCEL, 0, qty),
        "order_type": order_type.astype(np.int8),
        "cancel_of": cancel_of,
    }


def _python(**case: Any) -> BookResult:
    return match_stream(**case, backend="python")


def _numba(**case: Any) -> BookResult:
    return match_stream(**case, backend="numba")


#: The clearing layer's registry entries.
KERNELS: tuple[CompiledKernel, ...] = (
    CompiledKernel(
        name="order_book.match_stream",
        module="carbonsim.clearing._order_book_numba",
        specification=_python,
        compiled=_numba,
        example=random_events,
    ),
)
