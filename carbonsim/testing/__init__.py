"""Testing helpers for carbonsim and its plug-ins (like :mod:`numpy.testing`, ``xarray.testing``).

Assertion helpers (numpy and pandas only):

- :func:`assert_clearing_invariants` and :func:`assert_batch_clearing_invariants`: a
  call-auction result obeys the uniform-price clearing invariants (fills within the orders,
  fills summing to the volume on both sides, no fill through a limit, price priority,
  maximum executable volume);
- :func:`assert_ledger_conserved`: every allowance, offset and cash identity of a
  :class:`~carbonsim.market.ledger.Ledger` holds;
- :func:`assert_results_equal`: two :class:`~carbonsim.results.Result` objects hold
  bit-identical tables;
- :func:`result_digest` and :func:`table_digest`: SHA-256 digests of a canonical byte
  serialisation of result tables, for pinning results in regression tests (see
  ``python -m carbonsim.testing.regenerate``).

Hypothesis strategies (:mod:`carbonsim.testing.strategies`): :func:`order_books`,
:func:`batched_books`, :func:`order_streams`, :func:`unit_tables`,
:func:`scenario_documents`. They are loaded on first use, because hypothesis is a test-only
dependency (the ``dev`` extra): without it, ``import carbonsim.testing`` and the assertion
helpers work, and using a strategy raises :class:`ImportError` naming the extra. They are
not in ``__all__``, so ``from carbonsim.testing import *`` never needs hypothesis.

Examples
--------
>>> from carbonsim.clearing import call_auction
>>> from carbonsim.testing import assert_clearing_invariants
>>> book = dict(bid_price=[51.0, 50.0], bid_qty=[10, 10], ask_price=[50.0], ask_qty=[15])
>>> assert_clearing_invariants(call_auction(**book), **book)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from carbonsim.testing._assertions import (
    assert_batch_clearing_invariants,
    assert_clearing_invariants,
    assert_ledger_conserved,
    assert_results_equal,
)
from carbonsim.testing._digest import result_digest, table_digest

if TYPE_CHECKING:  # the strategies, for type checkers; at run time see __getattr__
    from carbonsim.testing.strategies import (  # noqa: F401
        batched_books,
        order_books,
        order_streams,
        scenario_documents,
        unit_tables,
    )

__all__ = [
    "assert_batch_clearing_invariants",
    "assert_clearing_invariants",
    "assert_ledger_conserved",
    "assert_results_equal",
    "result_digest",
    "table_digest",
]

_STRATEGIES = frozenset(
    {"batched_books", "order_books", "order_streams", "scenario_documents", "unit_tables"}
)


def __getattr__(name: str) -> Any:
    if name in _STRATEGIES:
        # raises ImportError naming the ``dev`` extra when hypothesis is missing
        value = getattr(importlib.import_module("carbonsim.testing.strategies"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'carbonsim.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _STRATEGIES)
