"""The strategy protocol, the order arrays it returns, and a conformance check.

Shapes: ``R`` replicates, ``N`` units, ``M`` orders. All strategies of a simulation see the
same :class:`MarketView` for one trading session and return orders for every replicate at
once, so one batched clearing call serves all replicates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
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
    "Segment",
    "Strategy",
    "ViewSource",
    "check_strategy",
    "make_strategy",
    "validate_orders",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Segment(IntEnum):
    """Exchange segment of an order, the codes of :attr:`Orders.segment` (int64 arrays)."""

    LISTED = 0
    """The listed agreement: the daily call auction within the +/-10% band."""
    BLOCK = 1
    """The block agreement: large negotiated trades within the +/-30% band."""


#: The codes of :class:`Segment` as plain ints (cheaper than enum members in array code).
LISTED: int = Segment.LISTED.value
BLOCK: int = Segment.BLOCK.value


class ViewSource(Protocol):
    """Where a deferred :class:`MarketView` gets its per-unit arrays.

    Each method returns the full ``(R, N)`` array for ``cells=None`` and otherwise the values
    at the index pair ``cells = (rows, cols)`` (1-D, in that order), which must equal the
    same cells of the full array bit for bit.
    """

    def holdings(
        self, cells: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None
    ) -> FloatArray:
        """Allowances valid for the current compliance year, t."""
        ...

    def obligation(
        self, cells: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None
    ) -> FloatArray:
        """Expected obligation net of offsets and of allocation still to come, t."""
        ...


class MarketView:
    """What a strategy may look at in one trading session (read-only arrays).

    The engine builds views whose per-unit arrays are computed on demand: strategies that
    act on a few units read them with :meth:`holdings_at`, :meth:`obligation_at` and
    :meth:`gap_at` at those cells only; the properties :attr:`holdings`,
    :attr:`expected_obligation` and :attr:`gap` give whole ``(R, N)`` arrays (computed once,
    then cached). Both give identical numbers. A view is valid during its session only:
    once the session's trades are settled the engine closes it, and reading an array not
    yet computed then raises ``RuntimeError``.

    Parameters
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

    __slots__ = (
        "_holdings",
        "_obligation",
        "_shape",
        "_source",
        "block_threshold",
        "expected_price",
        "last_close",
        "obligation_certainty",
        "session",
        "sessions_in_cycle",
        "sessions_to_deadline",
        "unit_size",
    )

    def __init__(
        self,
        session: int,
        sessions_to_deadline: int,
        sessions_in_cycle: int,
        last_close: FloatArray,
        expected_price: FloatArray,
        holdings: FloatArray,
        expected_obligation: FloatArray,
        obligation_certainty: float,
        unit_size: FloatArray,
        block_threshold: float = 100_000.0,
    ) -> None:
        holdings = np.asarray(holdings)
        expected_obligation = np.asarray(expected_obligation)
        if holdings.ndim != 2 or holdings.shape != expected_obligation.shape:
            raise ValueError(
                "MarketView: holdings and expected_obligation must be (R, N) arrays of one "
                f"shape, got {holdings.shape} and {expected_obligation.shape}"
            )
        self._set_scalars(
            session,
            sessions_to_deadline,
            sessions_in_cycle,
            last_close,
            expected_price,
            obligation_certainty,
            unit_size,
            block_threshold,
        )
        self._shape = (int(holdings.shape[0]), int(holdings.shape[1]))
        self._holdings: FloatArray | None = holdings
        self._obligation: FloatArray | None = expected_obligation
        self._source: ViewSource | None = None

    def _set_scalars(
        self,
        session: int,
        sessions_to_deadline: int,
        sessions_in_cycle: int,
        last_close: FloatArray,
        expected_price: FloatArray,
        obligation_certainty: float,
        unit_size: FloatArray,
        block_threshold: float,
    ) -> None:
        self.session = session
        self.sessions_to_deadline = sessions_to_deadline
        self.sessions_in_cycle = sessions_in_cycle
        self.last_close = last_close
        self.expected_price = expected_price
        self.obligation_certainty = obligation_certainty
        self.unit_size = unit_size
        self.block_threshold = block_threshold

    @classmethod
    def deferred(
        cls,
        source: ViewSource,
        shape: tuple[int, int],
        *,
        session: int,
        sessions_to_deadline: int,
        sessions_in_cycle: int,
        last_close: FloatArray,
        expected_price: FloatArray,
        obligation_certainty: float,
        unit_size: FloatArray,
        block_threshold: float = 100_000.0,
    ) -> MarketView:
        """A view whose per-unit arrays come from ``source`` when first read.

        Parameters
        ----------
        source : ViewSource
            Computes holdings and obligations, whole or at given cells.
        shape : tuple of int
            ``(R, N)``.
        """
        view = cls.__new__(cls)
        view._set_scalars(
            session,
            sessions_to_deadline,
            sessions_in_cycle,
            last_close,
            expected_price,
            obligation_certainty,
            unit_size,
            block_threshold,
        )
        view._shape = (int(shape[0]), int(shape[1]))
        view._holdings = None
        view._obligation = None
        view._source = source
        return view

    def replace(self, **changes: Any) -> MarketView:
        """A copy with some attributes replaced (arrays are computed in full if needed)."""
        fields: dict[str, Any] = {
            "session": self.session,
            "sessions_to_deadline": self.sessions_to_deadline,
            "sessions_in_cycle": self.sessions_in_cycle,
            "last_close": self.last_close,
            "expected_price": self.expected_price,
            "obligation_certainty": self.obligation_certainty,
            "unit_size": self.unit_size,
            "block_threshold": self.block_threshold,
        }
        unknown = set(changes) - set(fields) - {"holdings", "expected_obligation"}
        if unknown:
            raise TypeError(f"MarketView.replace: unknown attributes {sorted(unknown)}")
        fields.update(changes)
        if "holdings" not in fields:
            fields["holdings"] = self.holdings
        if "expected_obligation" not in fields:
            fields["expected_obligation"] = self.expected_obligation
        return MarketView(**fields)

    def close(self) -> None:
        """End the view's session: arrays already computed stay readable, others raise."""
        self._source = None

    def _from_source(self, what: str) -> ViewSource:
        if self._source is None:
            raise RuntimeError(
                f"MarketView.{what}: the view's session is over (read per-unit arrays during "
                "the session that made the view)"
            )
        return self._source

    def __repr__(self) -> str:
        state = "deferred" if self._holdings is None else "arrays"
        return (
            f"MarketView(session={self.session}, sessions_to_deadline="
            f"{self.sessions_to_deadline}, shape={self._shape}, {state})"
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(R, N)``: replicates and units."""
        return self._shape

    @property
    def n_replicates(self) -> int:
        """Number of replicates R."""
        return self._shape[0]

    @property
    def n_units(self) -> int:
        """Number of units N."""
        return self._shape[1]

    @property
    def holdings(self) -> FloatArray:
        """Allowances each unit holds that are valid for the current compliance year, t,
        shape (R, N)."""
        if self._holdings is None:
            self._holdings = self._from_source("holdings").holdings(None)
        return self._holdings

    @property
    def expected_obligation(self) -> FloatArray:
        """Each unit's current estimate of what it must surrender at the deadline, t,
        shape (R, N) (expected emissions after abatement, less the part offsets will
        cover, less allocation still to come)."""
        if self._obligation is None:
            self._obligation = self._from_source("expected_obligation").obligation(None)
        return self._obligation

    @property
    def gap(self) -> FloatArray:
        """Expected obligation minus holdings, t, shape (R, N); positive means short."""
        return self.expected_obligation - self.holdings

    def holdings_at(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> FloatArray:
        """``holdings[rows, cols]``, computing only those cells, t, shape (M,)."""
        r, c = np.asarray(rows, np.intp), np.asarray(cols, np.intp)
        if self._holdings is not None:
            return self._holdings[r, c]
        return self._from_source("holdings_at").holdings((r, c))

    def obligation_at(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> FloatArray:
        """``expected_obligation[rows, cols]``, computing only those cells, t, shape (M,)."""
        r, c = np.asarray(rows, np.intp), np.asarray(cols, np.intp)
        if self._obligation is not None:
            return self._obligation[r, c]
        return self._from_source("obligation_at").obligation((r, c))

    def gap_at(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> FloatArray:
        """``gap[rows, cols]``, computing only those cells, t, shape (M,)."""
        return self.obligation_at(rows, cols) - self.holdings_at(rows, cols)


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


def validate_orders(orders: object, strategy: str, n_replicates: int, n_units: int) -> Orders:
    """Check the orders a strategy hands to the exchange; return them.

    Every order must name an existing cell (replicate in ``[0, R)``, unit in ``[0, N)``),
    ask for whole tonnes (``qty >= 1``, integral), carry a finite positive limit price and
    a known :class:`Segment`. The engine calls this for every strategy in every session:
    a fractional tonne or an unknown segment code would otherwise create or destroy
    allowances in settlement.

    Raises
    ------
    TypeError
        When ``orders`` is not an :class:`Orders` or an array has the wrong dtype.
    ValueError
        Naming the strategy, the first offending order, its cell and the value.
    """
    if not isinstance(orders, Orders):
        raise TypeError(
            f"strategy {strategy!r}: orders() must return Orders, got {type(orders).__name__}"
        )
    for attr, kind in (("replicate", "i"), ("unit", "i"), ("segment", "i"), ("is_buy", "b")):
        dtype = getattr(orders, attr).dtype
        if dtype.kind != kind:
            raise TypeError(
                f"strategy {strategy!r}: Orders.{attr} must have dtype "
                f"{'int64' if kind == 'i' else 'bool'}, got {dtype}"
            )
    if len(orders) == 0:
        return orders
    rep, unit, qty, price = orders.replicate, orders.unit, orders.qty, orders.price
    checks = (
        ("replicate", (rep >= 0) & (rep < n_replicates), f"must lie in [0, {n_replicates})"),
        ("unit", (unit >= 0) & (unit < n_units), f"must lie in [0, {n_units})"),
        ("qty", (qty >= 1.0) & (np.floor(qty) == qty), "must be whole tonnes >= 1"),
        ("price", (price > 0.0) & (price < np.inf), "must be finite and positive"),
        ("segment", (orders.segment == LISTED) | (orders.segment == BLOCK), "must be a Segment"),
    )
    for attr, ok, rule in checks:
        if not ok.all():
            i = int(np.argmin(ok))
            value = getattr(orders, attr)[i].item()
            raise ValueError(
                f"strategy {strategy!r}: order {i} (replicate {rep[i].item()}, unit "
                f"{unit[i].item()}) has {attr} {value!r}; {attr} {rule}"
            )
    return orders


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


class _ArraySource:
    """A :class:`ViewSource` serving two whole arrays (for deferred views in checks)."""

    def __init__(self, holdings: FloatArray, obligation: FloatArray) -> None:
        self._arrays = (holdings, obligation)

    def holdings(
        self, cells: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None
    ) -> FloatArray:
        a = self._arrays[0]
        return a.copy() if cells is None else a[cells]

    def obligation(
        self, cells: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None
    ) -> FloatArray:
        a = self._arrays[1]
        return a.copy() if cells is None else a[cells]


def _deferred_copy(view: MarketView) -> MarketView:
    return MarketView.deferred(
        _ArraySource(view.holdings, view.expected_obligation),
        view.shape,
        session=view.session,
        sessions_to_deadline=view.sessions_to_deadline,
        sessions_in_cycle=view.sessions_in_cycle,
        last_close=view.last_close,
        expected_price=view.expected_price,
        obligation_certainty=view.obligation_certainty,
        unit_size=view.unit_size,
        block_threshold=view.block_threshold,
    )


def check_strategy(strategy: Strategy, *, seed: int = 0, n_views: int = 20) -> None:
    """Check that a strategy plug-in honours the protocol; raise ``AssertionError`` if not.

    Checks, on ``n_views`` random market views: the result is :class:`Orders`; indices are in
    range; quantities are positive whole tonnes; prices are finite and positive; no unit's
    total sell quantity exceeds its holdings; the same ``rng`` seed gives identical orders,
    also from a deferred view like those the engine builds (arrays computed on demand);
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
        c = strategy.orders(_deferred_copy(view), BatchRandom(seeds))
        for attr in ("replicate", "unit", "is_buy", "price", "qty", "segment"):
            if not np.array_equal(getattr(a, attr), getattr(c, attr)):
                raise AssertionError(
                    f"{name}: orders differ between a view of arrays and a deferred view "
                    f"({attr}); read the view only through its public attributes"
                )
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
