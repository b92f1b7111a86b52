"""Backends of the session loop: which implementation runs each trading session's work.

``"numpy"`` (the default) runs every step as numpy calls. ``"numba"`` replaces the steps
that cost most per session with compiled kernels from the optional ``numba`` package
(``pip install 'carbonsim[fast]'``); each kernel computes bit for bit what its numpy
counterpart computes, so the backend changes the speed of a run, never its result (the
tests compare whole runs of every built-in scenario).

Compiled steps:

- the session's price bands and call auctions
  (:func:`carbonsim.engine.simulation.session_bands`,
  :func:`carbonsim.clearing.batch.clear_session`), by
  :mod:`carbonsim.clearing._session_numba`;
- the settlement of a segment's fills in the ledger (aggregation into cells, netting,
  oldest-vintage delivery, pro-rata split of the pool, cash, journal), by
  :mod:`carbonsim.market._ledger_numba` (the numpy path runs instead when invariant checks
  are on, so the checked :meth:`~carbonsim.market.ledger.Ledger.settle_cells` sees every
  settlement);
- the order generation of the built-in ``compliance`` and ``noise`` strategies (exact
  types; subclasses and plug-ins run their own ``orders``), by
  :mod:`carbonsim.agents._orders_numba`;
- the strategies' reads of holdings and expected obligations at the units that act and
  the exchange routing of their orders, by :mod:`carbonsim.engine._view_numba`; routing,
  bands, repricing and both call auctions run as one call
  (:mod:`carbonsim.engine._exchange_numba`);
- the hashing of random numbers drawn at selected cells and of the units that act in a
  session (:meth:`carbonsim._random.BatchRandom.bernoulli_cells`), by
  :class:`carbonsim._random_numba.CompiledBatchRandom`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from carbonsim._random import BatchRandom
from carbonsim._validation import describe
from carbonsim.clearing.batch import clear_session

__all__ = ["BACKENDS", "SessionKernels", "check_backend", "session_kernels"]

BACKENDS: Final[tuple[str, ...]] = ("numpy", "numba")
"""Valid ``backend`` names of :class:`~carbonsim.engine.Simulation`."""


@dataclass(frozen=True)
class SessionKernels:
    """The functions one backend uses for a session's steps (same signatures as numpy's).

    Attributes
    ----------
    clear : callable
        The session's call auctions, as :func:`carbonsim.clearing.batch.clear_session`.
    random : type
        The :class:`~carbonsim._random.BatchRandom` class the run draws from.
    settle : callable or None
        Settlement of the session's fills, segment by segment, in the ledger and the
        period's totals, returning how many segments it settled
        (:func:`carbonsim.market._ledger_numba.settle_segments_compiled`); None: the
        engine's numpy settlement through the ledger's methods.
    view_source : type
        The class answering the market view's holdings and obligation reads.
    route : callable
        The exchange's order rules, as :func:`carbonsim.engine.simulation.route_orders`.
    bands : callable
        The session's price bands, as :func:`carbonsim.engine.simulation.session_bands`.
    orders : dict
        Order functions ``f(strategy, view, rng)`` replacing ``strategy.orders`` for
        strategies of exactly these types.
    exchange : callable or None
        Routing, bands, repricing and both call auctions of a session in one call
        (:func:`carbonsim.engine._exchange_numba.exchange_compiled`); None: ``route``,
        ``bands`` and ``clear`` one after the other.
    """

    clear: Callable[..., Any]
    random: type[BatchRandom]
    settle: Callable[..., Any] | None
    view_source: type
    route: Callable[..., Any]
    bands: Callable[..., Any]
    orders: dict[type, Callable[..., Any]]
    exchange: Callable[..., Any] | None = None


def check_backend(backend: str) -> str:
    """Validate a backend name against :data:`BACKENDS`."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(repr(b) for b in BACKENDS)}, "
            f"got {describe(backend)}"
        )
    return backend


def session_kernels(backend: str) -> SessionKernels:
    """The kernels of ``backend``; for ``"numba"`` imports numba and compiles them.

    Raises
    ------
    ModuleNotFoundError
        For ``"numba"`` when the optional ``numba`` package is not installed.
    """
    if check_backend(backend) == "numpy":
        from carbonsim.engine.simulation import _PeriodView, route_orders, session_bands

        return SessionKernels(
            clear=clear_session,
            random=BatchRandom,
            settle=None,
            view_source=_PeriodView,
            route=route_orders,
            bands=session_bands,
            orders={},
        )
    fast = importlib.import_module("carbonsim.clearing._session_numba")
    fast_random = importlib.import_module("carbonsim._random_numba")
    fast_ledger = importlib.import_module("carbonsim.market._ledger_numba")
    fast_view = importlib.import_module("carbonsim.engine._view_numba")
    fast_orders = importlib.import_module("carbonsim.agents._orders_numba")
    fast_exchange = importlib.import_module("carbonsim.engine._exchange_numba")
    try:
        fast.compile_kernels()
        fast_random.compile_kernels()
        fast_ledger.compile_kernels()
        fast_view.compile_kernels()
        fast_orders.compile_kernels()
        fast_exchange.compile_kernels()
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "backend='numba' needs the optional numba package "
            "(pip install 'carbonsim[fast]' or pip install numba); use backend='numpy'"
        ) from exc
    return SessionKernels(
        clear=fast.clear_session_compiled,
        random=fast_random.CompiledBatchRandom,
        settle=fast_ledger.settle_segments_compiled,
        view_source=fast_view.CompiledPeriodView,
        route=fast_view.route_compiled,
        bands=fast.bands_compiled,
        orders=fast_orders.order_functions(),
        exchange=fast_exchange.exchange_compiled,
    )
