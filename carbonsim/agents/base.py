"""The strategy protocol, the order arrays it returns, and a conformance check.

Shapes: ``R`` replicates, ``N`` units, ``M`` orders. All strategies of a simulation see the
same :class:`MarketView` for one trading session and return orders for every replicate at
once, so one batched clearing call serves all replicates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from carbonsim._random import BatchRandom, replicate_seeds
from carbonsim._registry import Registry

__all__ = [
    "BLOCK",
    "LISTED",
    "STRATEGIES",
    "MarketView",
    "Orders",
    "Strategy",
    "check_strategy",
    "make_strategy",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Segment codes of :attr:`Orders.segment`.
LISTED = 0
BLOCK = 1


@dataclass(frozen=True)
class MarketView:
    """What a strategy may look at in one trading session (read-only arrays).

    Attributes
    ----------
    session : int
        Index of the trading session since the start of the simulation.
    sessions_to_deadline : int
        Trading sessions left before the next surrender deadline (0 on the last one).
    sessions_in_cycle : int
        Trading sessions from the start of the compliance cycle to its deadline.
    last_close : ndarray, shape (R,)
        Previous closing price, currency/t.
    expected_price : ndarray, shape (R,)
        Market-wide price expectation for the deadline, currency/t.
    holdings : ndarray, shape (R, N)
        Allowances each unit holds that are valid for the current compliance year, t.
    expected_obligation : ndarray, shape (R, N)
        Each unit's current estimate of what it must surrender at the deadline, t
        (expected emissions after abatement, less the part offsets will cover).
    obligation_certainty : float
        How much of the cycle's information has been revealed, in [0, 1]: 0 at the start of
        the cycle, 1 once verified emissions and final allocations are known.
    unit_size : ndarray, shape (N,)
        Baseline annual emissions of each unit, t (for scaling noise orders).
    block_threshold : float
        Minimum order size for the block segment, t.
    """

    session: int
    sessions_to_deadline: int
    sessions_in_cycle: int
    last_close: FloatArray
    expected_price: FloatArray
    holdings: FloatArray
    expected_obligation: FloatArray
    obligation_certainty: float
    unit_size: FloatArray
    block_threshold: float = 100_000.0

    @property
    def n_replicates(self) -> int:
        """Number of replicates R."""
        return int(self.holdings.shape[0])

    @property
    def n_units(self) -> int:
        """Number of units N."""
        return int(self.holdings.shape[1])

    @property
    def gap(self) -> FloatArray:
        """Expected obligation minus holdings, t, shape (R, N); positive means short."""
        return self.expected_obligation - self.holdings


@dataclass(frozen=True)
class Orders:
    """Orders of one session for all replicates, as aligned 1-D arrays of length M.

    Attributes
    ----------
    replicate : ndarray of int64
        Replicate each order belongs to, in ``[0, R)``.
    unit : ndarray of int64
        Submitting unit, in ``[0, N)``.
    is_buy : ndarray of bool
        True for a bid, False for an ask.
    price : ndarray of float64
        Limit price, currency/t.
    qty : ndarray of float64
        Quantity, whole tonnes, > 0.
    segment : ndarray of int64
        :data:`LISTED` or :data:`BLOCK`.
    """

    replicate: IntArray
    unit: IntArray
    is_buy: BoolArray
    price: FloatArray
    qty: FloatArray
    segment: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = len(self.replicate)
        if len(self.segment) == 0 and n:
            object.__setattr__(self, "segment", np.zeros(n, dtype=np.int64))
        lengths = {
            "replicate": n,
            "unit": len(self.unit),
            "is_buy": len(self.is_buy),
            "price": len(self.price),
            "qty": len(self.qty),
            "segment": len(self.segment),
        }
        if len(set(lengths.values())) != 1:
            raise ValueError(f"Orders arrays must have equal lengths, got {lengths}")

    def __len__(self) -> int:
        return len(self.replicate)

    @classmethod
    def empty(cls) -> Orders:
        """No orders."""
        return cls(
            replicate=np.zeros(0, np.int64),
            unit=np.zeros(0, np.int64),
            is_buy=np.zeros(0, bool),
            price=np.zeros(0),
            qty=np.zeros(0),
            segment=np.zeros(0, np.int64),
        )

    @classmethod
    def concat(cls, parts: list[Orders]) -> Orders:
        """Concatenate order sets (the order of ``parts`` is kept)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            replicate=np.concatenate([p.replicate for p in parts]),
            unit=np.concatenate([p.unit for p in parts]),
            is_buy=np.concatenate([p.is_buy for p in parts]),
            price=np.concatenate([p.price for p in parts]),
            qty=np.concatenate([p.qty for p in parts]),
            segment=np.concatenate([p.segment for p in parts]),
        )

    @classmethod
    def from_grid(
        cls,
        mask: BoolArray,
        is_buy: BoolArray,
        price: FloatArray,
        qty: FloatArray,
        segment: IntArray | None = None,
    ) -> Orders:
        """Build orders from (R, N) grids, keeping the cells where ``mask`` is True.

        Orders come out sorted by replicate, then unit (row-major order of the grid).
        """
        r, u = np.nonzero(mask)
        seg = np.zeros(len(r), np.int64) if segment is None else segment[r, u].astype(np.int64)
        return cls(
            replicate=r.astype(np.int64),
            unit=u.astype(np.int64),
            is_buy=is_buy[r, u].astype(bool),
            price=price[r, u].astype(np.float64),
            qty=qty[r, u].astype(np.float64),
            segment=seg,
        )


@runtime_checkable
class Strategy(Protocol):
    """The strategy protocol.

    A strategy is constructed with its parameters only (it stores them and does no work),
    and :meth:`orders` turns a :class:`MarketView` into :class:`Orders`. It must use only
    ``rng`` (a :class:`~carbonsim._random.BatchRandom`, whose draws have shape ``(R, ...)``
    and are the same for replicate ``k`` whatever the batch size) for randomness, never
    sell more than a unit holds, and never return a non-positive or fractional quantity.
    :func:`check_strategy` verifies these rules.
    """

    @property
    def name(self) -> str:
        """The registered name of the strategy."""
        ...

    def orders(self, view: MarketView, rng: BatchRandom) -> Orders:
        """Orders for this session for all replicates and units."""
        ...


#: Registry of strategy classes by name; values are factories taking keyword parameters.
STRATEGIES: Registry[Callable[..., Strategy]] = Registry("trading strategy")


def make_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Instantiate the strategy registered as ``name`` with ``params``.

    Raises
    ------
    UnknownPluginError
        If ``name`` is not registered (the message lists valid names).
    TypeError
        If ``params`` holds a name the strategy does not accept.
    """
    factory = STRATEGIES.get(name)
    try:
        return factory(**dict(params or {}))
    except TypeError as exc:
        raise TypeError(f"bad parameters for strategy {name!r}: {exc}") from None


def _example_view(rng: np.random.Generator, n_replicates: int = 3, n_units: int = 40) -> MarketView:
    size = rng.lognormal(np.log(1e6), 1.0, n_units)
    obligation = size[None, :] * rng.uniform(0.9, 1.1, (n_replicates, n_units))
    holdings = size[None, :] * rng.uniform(0.5, 1.2, (n_replicates, n_units))
    return MarketView(
        session=10,
        sessions_to_deadline=int(rng.integers(0, 200)),
        sessions_in_cycle=242,
        last_close=rng.uniform(30, 90, n_replicates),
        expected_price=rng.uniform(30, 90, n_replicates),
        holdings=np.floor(holdings),
        expected_obligation=obligation,
        obligation_certainty=float(rng.uniform()),
        unit_size=size,
    )


def check_strategy(strategy: Strategy, *, seed: int = 0, n_views: int = 20) -> None:
    """Check that a strategy plug-in honours the protocol; raise ``AssertionError`` if not.

    Checks, on ``n_views`` random market views: the result is :class:`Orders`; indices are in
    range; quantities are positive whole tonnes; prices are finite and positive; no unit's
    total sell quantity exceeds its holdings; the same ``rng`` seed gives identical orders;
    and the view is not modified.

    Examples
    --------
    >>> from carbonsim.agents import ComplianceTrader, check_strategy
    >>> check_strategy(ComplianceTrader())
    """
    if not isinstance(strategy, Strategy):
        raise AssertionError(f"{strategy!r} does not implement the Strategy protocol")
    rng = np.random.default_rng(seed)
    for _ in range(n_views):
        view = _example_view(rng)
        before = view.holdings.copy()
        seeds = replicate_seeds(123, view.n_replicates)
        a = strategy.orders(view, BatchRandom(seeds))
        b = strategy.orders(view, BatchRandom(seeds))
        name = getattr(strategy, "name", type(strategy).__name__)
        if not isinstance(a, Orders):
            raise AssertionError(f"{name}: orders() must return Orders, got {type(a).__name__}")
        if not np.array_equal(view.holdings, before):
            raise AssertionError(f"{name}: orders() modified the view's holdings")
        for attr in ("replicate", "unit", "is_buy", "price", "qty", "segment"):
            if not np.array_equal(getattr(a, attr), getattr(b, attr)):
                raise AssertionError(f"{name}: not reproducible from rng ({attr} differs)")
        if len(a) == 0:
            continue
        if a.replicate.min() < 0 or a.replicate.max() >= view.n_replicates:
            raise AssertionError(f"{name}: replicate index out of range")
        if a.unit.min() < 0 or a.unit.max() >= view.n_units:
            raise AssertionError(f"{name}: unit index out of range")
        if not (np.all(a.qty > 0) and np.all(a.qty == np.floor(a.qty))):
            raise AssertionError(f"{name}: quantities must be positive whole tonnes")
        if not (np.all(np.isfinite(a.price)) and np.all(a.price > 0)):
            raise AssertionError(f"{name}: prices must be finite and positive")
        if not np.all(np.isin(a.segment, (LISTED, BLOCK))):
            raise AssertionError(f"{name}: unknown segment code")
        sells = np.zeros(view.holdings.shape)
        np.add.at(sells, (a.replicate[~a.is_buy], a.unit[~a.is_buy]), a.qty[~a.is_buy])
        if np.any(sells > view.holdings + 1e-9):
            raise AssertionError(f"{name}: a unit offers more than it holds")
