"""Backends of the session loop: which implementation runs each trading session's work.

``"numpy"`` (the default) runs every step as numpy calls. ``"numba"`` replaces the steps
that cost most per session with compiled kernels from the optional ``numba`` package
(``pip install 'carbonsim[fast]'``); each kernel computes bit for bit what its numpy
counterpart computes, so the backend changes the speed of a run, never its result (the
tests compare whole runs of every built-in scenario).

Compiled steps (each backend's functions are collected in :class:`SessionKernels`):

- the hashing of random numbers drawn at selected cells and of the units that act in a
  session (:meth:`carbonsim._random.BatchRandom.bernoulli_cells`), by
  :class:`carbonsim._random_numba.CompiledBatchRandom`;
- the order generation of the built-in ``compliance`` and ``noise`` strategies (exact
  types; subclasses and plug-ins run their own ``orders``), by
  :mod:`carbonsim.agents._orders_numba`;
- the strategies' reads of holdings and expected obligations at the units that act, by
  :mod:`carbonsim.engine._view_numba`;
- the exchange step, routing, price bands, repricing and both call auctions in one call
  (:func:`carbonsim.engine.simulation.exchange_orders` with numpy), by
  :mod:`carbonsim.engine._exchange_numba` from the kernels of
  :mod:`carbonsim.engine._view_numba` and :mod:`carbonsim.clearing._session_numba`;
- an offset session's trades: the bids left under the usage cap, the call auctions and the
  credit transfers (:func:`carbonsim.engine.simulation.clear_offset_classes` with numpy),
  by :mod:`carbonsim.engine._offsets_numba`;
- the settlement of both segments' fills in the ledger (aggregation into cells, netting,
  oldest-vintage delivery, pro-rata split of the pool, cash, journal, period totals), by
  :mod:`carbonsim.market._ledger_numba` (with invariant checks on, the numpy settlement
  runs, so the checked :meth:`~carbonsim.market.ledger.Ledger.settle_cells` sees every
  settlement).

Where a kernel meets input outside its case it changes nothing and the numpy function of
the same step runs instead, raising the same errors.

The numba backend also runs whole stretches of sessions in one call
(:mod:`carbonsim.engine._sessions_numba`): every session between two events of the
schedule, offset sessions included, when every strategy is a
built-in ``compliance`` or ``noise`` strategy, invariant checks and trade recording are
off, the band trigger is absent and no :class:`~carbonsim.engine.Simulation` subclass
overrides a step of the session. The random numbers of the whole stretch are drawn ahead
(counter-based draws do not depend on the state), numpy's ``exp`` and scipy's ``ndtri``
transform them, and one compiled loop runs the sessions with the step kernels above; a
session a kernel declines is run step by step.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from carbonsim._random import BatchRandom
from carbonsim._validation import describe

__all__ = ["BACKENDS", "SessionKernels", "check_backend", "session_kernels"]

BACKENDS: Final[tuple[str, ...]] = ("numpy", "numba")
"""Valid ``backend`` names of :class:`~carbonsim.engine.Simulation`."""


@dataclass(frozen=True)
class SessionKernels:
    """The functions one backend uses for a session's steps (same signatures, same results).

    Attributes
    ----------
    random : type
        The :class:`~carbonsim._random.BatchRandom` class the run draws from.
    orders : dict
        Order functions ``f(strategy, view, rng)`` replacing ``strategy.orders`` for
        strategies of exactly these types.
    view_source : type
        The class answering the market view's holdings and obligation reads.
    exchange : callable
        Routing, price bands, repricing and both call auctions of a session, as
        :func:`carbonsim.engine.simulation.exchange_orders`.
    settle : callable
        Settlement of the session's fills segment by segment in the ledger and the
        period's totals, as :func:`carbonsim.engine.simulation.settle_segments`.
    offset_market : callable
        An offset session's trades, class after class (bids, lots, the call auctions, the
        credit transfers), as :func:`carbonsim.engine.simulation.clear_offset_classes`.
    sessions : callable or None
        ``sessions(simulation)``: a runner whose ``run(i, end)`` runs the consecutive
        sessions ``i .. end - 1`` between two events in one call, exactly as
        :meth:`Simulation._session <carbonsim.engine.Simulation>` runs them one by one
        (returns the next session to run), or None when the run cannot use it; None: the
        backend runs every session step by step.
    """

    random: type[BatchRandom]
    orders: dict[type, Callable[..., Any]]
    view_source: type
    exchange: Callable[..., Any]
    settle: Callable[..., Any]
    offset_market: Callable[..., Any]
    sessions: Callable[..., Any] | None = None


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
        from carbonsim.engine.simulation import (
            _PeriodView,
            clear_offset_classes,
            exchange_orders,
            settle_segments,
        )

        return SessionKernels(
            random=BatchRandom,
            orders={},
            view_source=_PeriodView,
            exchange=exchange_orders,
            settle=settle_segments,
            offset_market=clear_offset_classes,
        )
    modules = [
        importlib.import_module(f"carbonsim.{name}")
        for name in (
            "_random_numba",
            "clearing._session_numba",
            "engine._view_numba",
            "agents._orders_numba",
            "market._ledger_numba",
            "engine._exchange_numba",
            "engine._sessions_numba",
            "engine._offsets_numba",
        )
    ]
    try:
        for module in modules:
            module.compile_kernels()
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "backend='numba' needs the optional numba package "
            "(pip install 'carbonsim[fast]' or pip install numba); use backend='numpy'"
        ) from exc
    fast_random, _, fast_view, fast_orders, _, fast_exchange, fast_sessions, fast_offsets = modules
    return SessionKernels(
        random=fast_random.CompiledBatchRandom,
        orders=fast_orders.order_functions(),
        view_source=fast_view.CompiledPeriodView,
        exchange=fast_exchange.exchange_compiled,
        settle=fast_exchange.settle_compiled,
        offset_market=fast_offsets.offset_classes_compiled,
        sessions=fast_sessions.session_runner,
    )
