"""Continuous double auction order book: price-time priority, partial fills, cancels.

The book processes a stream of events (new limit order, market order, cancel of an earlier
order) in order and returns the trades, the state of every order and the book left behind.
It is a pure kernel: it knows nothing about exchanges or units beyond prices and quantities;
the caller supplies the price band and the tick (listed trading with a +/-10 % band and block
trading with a +/-30 % band around the previous close are two books with different bands,
e.g. from :func:`carbonsim.clearing.band_from_reference`).

Rules
-----
- **Prices** are currency per tonne (``float64``). Each limit price is converted once to an
  integer number of ticks with ``np.rint(price / tick)`` (round half to even, never floor) and
  all matching works on integer ticks. Reported prices come back through
  :func:`carbonsim.clearing.ticks_to_price` (``5001`` ticks of ``0.01`` give exactly
  ``50.01``). A limit price must round to at least one tick.
- **Quantities** are whole tonnes (``int64``); float input is accepted only when integral. A
  limit or market order needs ``qty >= 1``; the ``qty`` of a cancel row is ignored (and
  reported as ``0``).
- **Matching** is the standard continuous double auction: an incoming order trades against
  the best opposite price first and, within a price, against the earliest resting order first
  (price-time priority). Every trade is at the *resting* order's price. The unfilled part of
  a limit order rests in the book; the unfilled part of a market order is discarded
  (immediate-or-cancel) and reported as ``cancelled`` with status ``EXPIRED``. A buy and a
  sell of the same ``owner`` may trade with each other (no self-trade prevention; the owners
  are reported on every trade so a caller can filter).
- **Cancels** remove the whole remaining quantity of a resting order (already filled parts
  stay filled). A cancel must name an *earlier* event of the same book (``ValueError``
  otherwise); a cancel of an order that is no longer resting (fully filled, cancelled,
  rejected, a market order, or itself a cancel) is **ignored and reported** with status
  ``CANCEL_IGNORED``, never an error, because in a live stream a cancel can race a fill.
- **Price band** ``price_band=(lo, hi)`` in absolute prices, snapped *inward* to the tick
  grid as in every clearing kernel (``lo`` up, ``hi`` down), so the band never admits a price
  outside ``[lo, hi]``; both edges are admissible. With ``band_mode="reject"`` a limit order
  whose price lies outside the band is rejected whole (status ``REJECTED``); with ``"clip"``
  its limit price is moved to the nearest band edge before matching (the effective price is
  reported as ``limit_price``).
  Market orders are never rejected by the band. Every resting order lies inside the band and
  trades happen at resting prices, so every trade price is inside the band.
- **Conservation.** For every order ``qty == filled + resting + cancelled + rejected``; the
  sum of trade quantities equals the filled quantity of the buys and of the sells.
- **Size.** The orders submitted to one book total less than ``2**53`` t over its life
  (:data:`MAX_BOOK_QTY`): then every level, fill and snapshot sum is exact in int64 and in
  float64. A call that would pass it is refused before it changes the book.

Every event gets a global id: its position in the stream of the book (``0, 1, 2, ...`` across
all calls of one :class:`OrderBook`). Trades carry a global sequence number ``seq`` and the id
of the event that caused them (the aggressor, always the later of the two orders).

Complexity: ``O(log L)`` per new price level (heaps of level ticks), ``O(1)`` per fill, and
``O(k)`` per cancel for a level holding ``k`` orders. The plain-Python loop handles several
hundred thousand events per second (see ``benchmarks/README.md``); ``backend="numba"`` in
:func:`match_stream` runs the same rules compiled when the optional ``numba`` package is
installed and gives identical results.

Examples
--------
>>> from carbonsim.clearing.order_book import OrderStatus, match_stream
>>> res = match_stream(
...     side=["sell", "sell", "buy", "buy"],
...     price=[50.0, 50.5, 50.5, 49.0],
...     qty=[100, 100, 150, 30],
... )
>>> res.trades.price
array([50. , 50.5])
>>> res.trades.qty
array([100,  50])
>>> res.orders.resting
array([ 0, 50,  0, 30])
>>> [OrderStatus(s).name for s in res.orders.status]
['FILLED', 'OPEN', 'FILLED', 'OPEN']
>>> float(res.book.best_bid), float(res.book.best_ask)
(49.0, 50.5)
"""

from __future__ import annotations

import importlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from heapq import heappop, heappush, nlargest, nsmallest
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from carbonsim._registry import Registry
from carbonsim._validation import (
    as_float_array,
    as_int_array,
    check_in_range,
    check_same_length,
    describe,
)
from carbonsim.clearing.ticks import MAX_ABS_TICK, band_ticks, check_tick, ticks_to_price

__all__ = [
    "BUY",
    "MAX_BOOK_QTY",
    "ORDER_BOOK_BACKENDS",
    "SELL",
    "BookResult",
    "BookSnapshot",
    "OrderBook",
    "OrderStates",
    "OrderStatus",
    "OrderType",
    "Trades",
    "match_stream",
]

logger = logging.getLogger(__name__)

BUY: Final = 1
"""Side code of a buy order (``side`` may also be the string ``"buy"``)."""
SELL: Final = -1
"""Side code of a sell order (``side`` may also be the string ``"sell"``)."""


class OrderType(IntEnum):
    """Kind of event in a stream; ``order_type`` takes these codes or their lower-case names."""

    LIMIT = 0
    MARKET = 1
    CANCEL = 2


class OrderStatus(IntEnum):
    """State of an event at the end of a call.

    ``OPEN``: (part of) the order rests in the book. ``FILLED``: fully traded. ``CANCELLED``:
    a limit order whose remainder a cancel removed. ``EXPIRED``: a market order whose
    remainder found no liquidity. ``REJECTED``: outside the price band with
    ``band_mode="reject"``. ``CANCEL_APPLIED`` / ``CANCEL_IGNORED``: a cancel event that did
    or did not remove a resting order.
    """

    OPEN = 0
    FILLED = 1
    CANCELLED = 2
    EXPIRED = 3
    REJECTED = 4
    CANCEL_APPLIED = 5
    CANCEL_IGNORED = 6


MAX_BOOK_QTY: Final = 2**53
"""Bound on the total quantity (t) of the limit and market orders of one book's life."""


def _check_book_total(total: float, submitted: int) -> None:
    """Refuse orders that would bring the book's total quantity to :data:`MAX_BOOK_QTY`.

    ``total`` is the new quantity: an ``int``, or the float64 sum of whole non-negative
    quantities (it reaches ``2**53`` exactly when their true sum does); ``submitted`` is
    the book's total so far.
    """
    grand = submitted + total
    if not grand < MAX_BOOK_QTY:
        before = f" with the {submitted} t submitted before" if submitted else ""
        shown = str(grand) if isinstance(grand, int) else f"{grand:.0f}"
        raise ValueError(
            f"qty: the orders would total {shown} t in this book{before}, "
            f"at or above 2**53 = {MAX_BOOK_QTY} t, past which resting levels, fills and "
            "snapshots overflow or lose whole tonnes; count in larger units (e.g. "
            "kilotonnes) or spread the orders over several books"
        )


# Internal event codes used by the matching loops (one small int per event).
_LIMIT_BUY: Final = 0
_LIMIT_SELL: Final = 1
_MARKET_BUY: Final = 2
_MARKET_SELL: Final = 3
_CANCEL: Final = 4
_SKIP: Final = 5  # rejected by the band: never enters the book

# Tick sentinels. Valid limit ticks lie in [1, MAX_ABS_TICK]; a market buy crosses every ask
# and a market sell every bid, an empty side never crosses anything.
_NO_BID: Final = -1
_NO_ASK: Final = 2**62
_MARKET_BUY_TICK: Final = 2**62 - 1
_MARKET_SELL_TICK: Final = 0

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]

BandRule = Callable[[IntArray, npt.NDArray[np.bool_], int, int], tuple[IntArray, Any]]
"""``rule(ticks, is_limit, lo_tick, hi_tick) -> (ticks, rejected)``: apply a price band."""


def _band_reject(
    ticks: IntArray, is_limit: npt.NDArray[np.bool_], lo: int, hi: int
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Reject limit orders whose tick lies outside ``[lo, hi]``; prices unchanged."""
    return ticks, is_limit & ((ticks < lo) | (ticks > hi))


def _band_clip(
    ticks: IntArray, is_limit: npt.NDArray[np.bool_], lo: int, hi: int
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Move limit prices outside ``[lo, hi]`` to the nearest edge; nothing is rejected."""
    return np.where(is_limit, np.clip(ticks, lo, hi), ticks), np.zeros_like(is_limit)


def _freeze(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Trades:
    """Trades in execution order, one row per fill; every array has shape ``(T,)``.

    Attributes
    ----------
    seq : ndarray of int64
        Global trade sequence number in the book (``0, 1, ...`` across calls).
    event : ndarray of int64
        Id of the event that caused the trade (the aggressor).
    buy_order, sell_order : ndarray of int64
        Ids of the buy and the sell order.
    price : ndarray of float64
        Trade price, currency per tonne (the resting order's limit price).
    price_tick : ndarray of int64
        Trade price in ticks.
    qty : ndarray of int64
        Traded quantity, tonnes.
    aggressor_side : ndarray of int8
        ``BUY`` (+1) when the buy order was the incoming one, ``SELL`` (-1) otherwise.
    buy_owner, sell_owner : ndarray of int64
        ``owner`` of the buy and the sell order (``-1`` when no owner was given).
    """

    seq: IntArray
    event: IntArray
    buy_order: IntArray
    sell_order: IntArray
    price: FloatArray
    price_tick: IntArray
    qty: IntArray
    aggressor_side: Int8Array
    buy_owner: IntArray
    sell_owner: IntArray

    def __len__(self) -> int:
        return int(self.qty.shape[0])


@dataclass(frozen=True, eq=False)
class OrderStates:
    """State of a set of events; every array has shape ``(n,)``.

    For every row ``qty == filled + resting + cancelled + rejected`` (all zero for cancel
    events).

    Attributes
    ----------
    order_id : ndarray of int64
        Global event id.
    side : ndarray of int8
        ``BUY`` (+1) or ``SELL`` (-1), as submitted; for an event of
        :meth:`OrderBook.cancel`, the side of the cancelled order.
    order_type : ndarray of int8
        :class:`OrderType` code.
    limit_price : ndarray of float64
        Effective limit price, currency per tonne, after rounding to ticks and band clipping;
        ``NaN`` for market orders and cancels.
    qty : ndarray of int64
        Submitted quantity, tonnes (``0`` for cancel events).
    filled : ndarray of int64
        Quantity traded, tonnes.
    resting : ndarray of int64
        Quantity still in the book, tonnes.
    cancelled : ndarray of int64
        Quantity removed by a cancel, or the discarded remainder of a market order, tonnes.
    rejected : ndarray of int64
        Quantity rejected by the price band, tonnes (the whole order or nothing).
    status : ndarray of int8
        :class:`OrderStatus` code.
    """

    order_id: IntArray
    side: Int8Array
    order_type: Int8Array
    limit_price: FloatArray
    qty: IntArray
    filled: IntArray
    resting: IntArray
    cancelled: IntArray
    rejected: IntArray
    status: Int8Array

    def __len__(self) -> int:
        return int(self.qty.shape[0])


@dataclass(frozen=True, eq=False)
class BookSnapshot:
    """Aggregated depth of the book, best level first.

    Attributes
    ----------
    tick : float
        Price tick, currency per tonne.
    best_bid, best_ask : float
        Best bid and ask, currency per tonne; ``NaN`` for an empty side. The book is never
        crossed: ``best_bid < best_ask`` whenever both exist.
    bid_price, ask_price : ndarray of float64, shapes ``(Lb,)`` and ``(La,)``
        Level prices, bids descending and asks ascending.
    bid_qty, ask_qty : ndarray of int64
        Resting quantity per level, tonnes.
    bid_orders, ask_orders : ndarray of int64
        Number of resting orders per level.
    """

    tick: float
    best_bid: float
    best_ask: float
    bid_price: FloatArray
    bid_qty: IntArray
    bid_orders: IntArray
    ask_price: FloatArray
    ask_qty: IntArray
    ask_orders: IntArray


@dataclass(frozen=True, eq=False)
class BookResult:
    """What one call on the book returns.

    Attributes
    ----------
    trades : Trades
        Trades caused by the events of the call, in execution order.
    orders : OrderStates
        State of the events of the call at the end of the call, in submission order.
    book : BookSnapshot
        Depth of the book at the end of the call: every level, or the ``depth`` best levels
        per side that the call asked for.
    """

    trades: Trades
    orders: OrderStates
    book: BookSnapshot


# --------------------------------------------------------------------------------------------
# Input parsing
# --------------------------------------------------------------------------------------------


def _as_str_array(arr: np.ndarray) -> np.ndarray | None:
    """Strings as a numpy unicode array, or ``None`` when ``arr`` does not hold strings."""
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "O" and arr.size and all(isinstance(v, str) for v in arr.ravel()):
        return arr.astype(str)
    return None


def _parse_codes(
    name: str, value: Any, names: dict[str, int], n: int | None
) -> npt.NDArray[np.int8]:
    """Map names (case-insensitive) or integer codes to int8 codes; ``n`` broadcasts a scalar."""
    arr = np.asarray(value)
    if n is not None and arr.ndim == 0:
        arr = np.full(n, arr.item(), dtype=arr.dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    valid_codes = sorted(set(names.values()))
    listing = _listing(names)
    strings = _as_str_array(arr)
    if strings is not None:
        lowered = np.char.lower(strings)
        out = np.full(arr.shape, -128, dtype=np.int8)
        for key, code in names.items():
            out[lowered == key] = code
        bad = out == -128
    elif arr.dtype.kind in "iu" or arr.size == 0:
        ints = arr.astype(np.int64)
        bad = ~np.isin(ints, valid_codes)
        out = np.where(bad, 0, ints).astype(np.int8)
    else:
        raise TypeError(
            f"{name} must hold the names {listing}, got dtype {arr.dtype} (value {describe(value)})"
        )
    if bad.any():
        idx = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{idx}] = {arr[idx].item()!r} is not valid; use {listing}")
    return out


def _listing(names: dict[str, int]) -> str:
    return ", ".join(repr(k) for k in names) + " or the codes " + str(sorted(set(names.values())))


def _scalar_code(name: str, value: object, names: dict[str, int]) -> int:
    """Scalar version of :func:`_parse_codes`."""
    code: int | None
    if isinstance(value, str):
        code = names.get(value.lower())
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        code = int(value) if int(value) in names.values() else None
    else:
        raise TypeError(f"{name} must be one of {_listing(names)}, got {describe(value)}")
    if code is None:
        raise ValueError(f"{name} = {value!r} is not valid; use {_listing(names)}")
    return code


def _scalar_whole(name: str, value: object, *, lo: int, hi: int | None = 2**63 - 1) -> int:
    """A whole number in ``[lo, hi]`` (integral floats accepted; ``hi=None``: no upper
    bound), as ``int``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a whole number, got {describe(value)}")
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {name} = {value!r}")
        if value != round(value):
            raise TypeError(f"{name} must be a whole number, got {value!r}")
    v = int(value)
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {name} = {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {name} = {v}")
    return v


def _check_depth(depth: int | None) -> int | None:
    """``None`` or a whole number of levels ``>= 0``."""
    return None if depth is None else int(as_int_array("depth", depth, ndim=0, lo=0))


_SIDE_NAMES: Final = {"buy": BUY, "sell": SELL}
_TYPE_NAMES: Final = {
    "limit": int(OrderType.LIMIT),
    "market": int(OrderType.MARKET),
    "cancel": int(OrderType.CANCEL),
}


_BAND_RULES: Final[dict[str, BandRule]] = {"reject": _band_reject, "clip": _band_clip}


def _band_rule(band_mode: object) -> BandRule:
    """Validate ``band_mode`` (``"reject"`` or ``"clip"``) and return its rule."""
    if not isinstance(band_mode, str) or band_mode not in _BAND_RULES:
        valid = ", ".join(repr(m) for m in _BAND_RULES)
        raise ValueError(f"band_mode must be one of {valid}, got {describe(band_mode)}")
    return _BAND_RULES[band_mode]


def _band(price_band: object, tick: float) -> tuple[int, int] | None:
    """``price_band`` snapped inward to ticks (shared rule of the clearing kernels), or None."""
    if price_band is None:
        return None
    lo_t, hi_t = band_ticks(price_band, tick)
    return int(lo_t[0]), int(hi_t[0])


@dataclass(frozen=True)
class _Stream:
    """A validated stream, ready for a matching loop (all arrays shape ``(n,)``)."""

    code: Int8Array  # internal event code (_LIMIT_BUY ... _SKIP)
    tick: IntArray  # limit tick, market sentinel, 0 for cancels
    qty: IntArray  # 0 for cancels
    target: IntArray  # global id cancelled, -1 for other rows
    side: Int8Array
    order_type: Int8Array
    owner: IntArray


def _prepare(
    side: Any,
    price: Any,
    qty: Any,
    order_type: Any,
    cancel_of: Any,
    owner: Any,
    *,
    tick: float,
    band: tuple[int, int] | None,
    band_rule: BandRule,
    base: int,
    submitted: int = 0,
) -> _Stream:
    """Validate a stream of events and convert it to integer codes and ticks; ``submitted``
    is the quantity the book holds from earlier calls (see :data:`MAX_BOOK_QTY`)."""
    side_a = _parse_codes("side", side, _SIDE_NAMES, None)
    price_a = as_float_array("price", price, finite=False)
    qty_raw = np.asarray(qty)
    if qty_raw.dtype.kind == "f" and qty_raw.ndim == 1:
        if not np.all(np.isfinite(qty_raw)):
            idx = int(np.flatnonzero(~np.isfinite(qty_raw))[0])
            raise ValueError(f"qty must be finite whole tonnes, got qty[{idx}] = {qty_raw[idx]!r}")
        if np.any(qty_raw >= MAX_BOOK_QTY):  # before an int64 cast could wrap
            idx = int(np.flatnonzero(qty_raw >= MAX_BOOK_QTY)[0])
            _check_book_total(float(qty_raw[idx]), 0)
    qty_a = as_int_array("qty", qty_raw, nonnegative=True)
    n = check_same_length(side=side_a, price=price_a, qty=qty_a)
    if order_type is None:
        type_a = np.zeros(n, dtype=np.int8)
    else:
        type_a = _parse_codes("order_type", order_type, _TYPE_NAMES, n)
        check_same_length(side=side_a, order_type=type_a)
    is_limit = type_a == OrderType.LIMIT
    is_cancel = type_a == OrderType.CANCEL
    is_new = ~is_cancel

    # Prices: only limit rows need one (market and cancel rows may hold NaN).
    price_lim = as_float_array("price", np.where(is_limit, price_a, 1.0), positive=True)
    ratio = price_lim / tick
    if np.any(ratio > MAX_ABS_TICK):
        idx = int(np.flatnonzero(ratio > MAX_ABS_TICK)[0])
        raise ValueError(f"price[{idx}] = {price_a[idx].item()!r} is too large for tick = {tick!r}")
    ticks = np.rint(ratio).astype(np.int64)
    if np.any(ticks < 1):
        idx = int(np.flatnonzero(ticks < 1)[0])
        raise ValueError(
            f"price[{idx}] = {price_a[idx].item()!r} rounds to 0 ticks of {tick!r}; "
            "limit prices must be at least one tick"
        )
    qty_a = np.where(is_new, qty_a, 0)
    if np.any(is_new & (qty_a < 1)):
        idx = int(np.flatnonzero(is_new & (qty_a < 1))[0])
        raise ValueError(f"qty must be >= 1 for limit and market orders, got qty[{idx}] = 0")
    _check_book_total(float(qty_a.sum(dtype=np.float64)), submitted)

    if cancel_of is None:
        if is_cancel.any():
            raise ValueError("cancel_of is required when order_type contains 'cancel'")
        target = np.full(n, -1, dtype=np.int64)
    else:
        target = as_int_array("cancel_of", cancel_of, lo=-1)
        check_same_length(side=side_a, cancel_of=target)
        stray = ~is_cancel & (target >= 0)
        if stray.any():
            idx = int(np.flatnonzero(stray)[0])
            raise ValueError(
                f"cancel_of[{idx}] = {int(target[idx])} but order_type[{idx}] is not 'cancel'; "
                "use -1 on rows that are not cancels"
            )
        ids = base + np.arange(n, dtype=np.int64)
        bad = is_cancel & ((target < 0) | (target >= ids))
        if bad.any():
            idx = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"cancel_of[{idx}] = {int(target[idx])} must be the id of an earlier event "
                f"(0 <= cancel_of < {int(ids[idx])})"
            )
        target = np.where(is_cancel, target, -1)

    if owner is None:
        owner_a = np.full(n, -1, dtype=np.int64)
    else:
        owner_a = as_int_array("owner", owner, lo=-1)
        check_same_length(side=side_a, owner=owner_a)

    rejected = np.zeros(n, dtype=bool)
    if band is not None:
        ticks, rejected = band_rule(ticks, is_limit, band[0], band[1])
        rejected = np.asarray(rejected, dtype=bool)

    is_buy = side_a == BUY
    is_market = type_a == OrderType.MARKET
    code = np.select(
        [rejected, is_cancel, is_limit & is_buy, is_limit, is_market & is_buy],
        [_SKIP, _CANCEL, _LIMIT_BUY, _LIMIT_SELL, _MARKET_BUY],
        _MARKET_SELL,
    ).astype(np.int8)
    market_tick = np.where(is_buy, _MARKET_BUY_TICK, _MARKET_SELL_TICK)
    tick_a = np.select([is_limit, is_market], [ticks, market_tick], 0).astype(np.int64)
    return _Stream(code, tick_a, qty_a.astype(np.int64), target, side_a, type_a, owner_a)


def _status(code: np.ndarray, rem: np.ndarray, gone: np.ndarray, applied: np.ndarray) -> Int8Array:
    """:class:`OrderStatus` codes from the internal codes and the final quantities."""
    market = (code == _MARKET_BUY) | (code == _MARKET_SELL)
    removed = np.where(market, int(OrderStatus.EXPIRED), int(OrderStatus.CANCELLED))
    status = np.where(gone > 0, removed, int(OrderStatus.FILLED))
    status = np.where(rem > 0, int(OrderStatus.OPEN), status)
    status = np.where(code == _SKIP, int(OrderStatus.REJECTED), status)
    cancel = np.where(applied, int(OrderStatus.CANCEL_APPLIED), int(OrderStatus.CANCEL_IGNORED))
    return np.where(code == _CANCEL, cancel, status).astype(np.int8)


def _make_orders(
    ids: IntArray,
    stream_code: np.ndarray,
    stream_tick: np.ndarray,
    side: np.ndarray,
    order_type: np.ndarray,
    qty: np.ndarray,
    rem: np.ndarray,
    gone: np.ndarray,
    applied: np.ndarray,
    tick: float,
) -> OrderStates:
    code = np.asarray(stream_code, dtype=np.int8)
    qty = np.asarray(qty, dtype=np.int64)
    rem = np.asarray(rem, dtype=np.int64)
    gone = np.asarray(gone, dtype=np.int64)
    rejected = np.where(code == _SKIP, qty, 0)
    limit = np.asarray(order_type) == OrderType.LIMIT
    limit_price = np.where(limit, ticks_to_price(np.where(limit, stream_tick, 0), tick), np.nan)
    return OrderStates(
        order_id=_freeze(np.asarray(ids, dtype=np.int64)),
        side=_freeze(np.asarray(side, dtype=np.int8)),
        order_type=_freeze(np.asarray(order_type, dtype=np.int8)),
        limit_price=_freeze(limit_price),
        qty=_freeze(qty),
        filled=_freeze(qty - rem - gone - rejected),
        resting=_freeze(rem),
        cancelled=_freeze(gone),
        rejected=_freeze(rejected),
        status=_freeze(_status(code, rem, gone, np.asarray(applied, dtype=bool))),
    )


def _make_trades(
    flat: np.ndarray, seq0: int, tick: float, owner_of: Callable[[IntArray], IntArray]
) -> Trades:
    """Trades from an ``(T, 4)`` array of ``(buy, sell, tick, qty)`` rows."""
    t = np.asarray(flat, dtype=np.int64).reshape(-1, 4)
    buy, sell = t[:, 0].copy(), t[:, 1].copy()
    price_tick = t[:, 2].copy()
    return Trades(
        seq=_freeze(seq0 + np.arange(t.shape[0], dtype=np.int64)),
        event=_freeze(np.maximum(buy, sell)),
        buy_order=_freeze(buy),
        sell_order=_freeze(sell),
        price=_freeze(ticks_to_price(price_tick, tick)),
        price_tick=_freeze(price_tick),
        qty=_freeze(t[:, 3].copy()),
        aggressor_side=_freeze(np.where(buy > sell, BUY, SELL).astype(np.int8)),
        buy_owner=_freeze(owner_of(buy)),
        sell_owner=_freeze(owner_of(sell)),
    )


def _empty_levels() -> tuple[FloatArray, IntArray, IntArray]:
    return np.empty(0, np.float64), np.empty(0, np.int64), np.empty(0, np.int64)


# --------------------------------------------------------------------------------------------
# The book
# --------------------------------------------------------------------------------------------


class OrderBook:
    """A continuous double auction order book with price-time priority.

    Parameters
    ----------
    tick : float
        Price tick, currency per tonne (> 0).
    price_band : (float, float) or None
        Absolute price band ``(lo, hi)``, currency per tonne, applied to every limit order
        submitted to this book; ``None`` for no band.
    band_mode : {"reject", "clip"}
        What happens to a limit order outside the band (see the module docstring).

    Notes
    -----
    :meth:`submit_many` processes a stream (arrays) and is the fast path; :meth:`submit`
    and :meth:`cancel` process one event with scalar arguments (about 10^4 calls per second:
    the cost is building the small result arrays). Every call returns a :class:`BookResult`
    describing *its* events as of the end of the call; :meth:`orders` reports the current
    state of any earlier event (an order resting after its call may be filled later), and
    :meth:`snapshot`, :attr:`best_bid` and :attr:`best_ask` read the book.

    Examples
    --------
    >>> book = OrderBook(tick=0.01, price_band=(45.0, 55.0), band_mode="reject")
    >>> book.submit("sell", 50.2, 300).orders.status.tolist()  # id 0 rests
    [0]
    >>> book.submit("sell", 60.0, 100).orders.status.tolist()  # id 1 outside the band
    [4]
    >>> r = book.submit("buy", None, 200, order_type="market")  # id 2 trades with id 0
    >>> r.trades.sell_order.tolist(), r.trades.price.tolist(), r.trades.qty.tolist()
    ([0], [50.2], [200])
    >>> book.cancel(0).orders.status.tolist()  # id 3 removes the last 100 t of id 0
    [5]
    >>> book.snapshot().ask_qty.size
    0
    """

    def __init__(
        self,
        *,
        tick: float = 0.01,
        price_band: tuple[float, float] | None = None,
        band_mode: str = "reject",
    ) -> None:
        self._tick = check_tick(tick)
        self._band_rule = _band_rule(band_mode)
        self._band_mode = band_mode
        self._band = _band(price_band, self._tick)
        self._price_band = (
            None if price_band is None else (float(price_band[0]), float(price_band[1]))
        )
        # Per event (global id): internal code, tick, quantities, static attributes.
        self._code: list[int] = []
        self._ticks: list[int] = []
        self._qty: list[int] = []
        self._rem: list[int] = []  # quantity resting in the book
        self._gone: list[int] = []  # cancelled / expired quantity
        self._applied = bytearray()  # 1 for cancel events that removed an order
        self._side: list[int] = []
        self._type: list[int] = []
        self._owner: list[int] = []
        # Price levels: tick -> FIFO of order ids (present only while non-empty) and heaps of
        # level ticks (asks ascending, bids negated); heaps may hold stale ticks below the top.
        self._bids: dict[int, deque[int]] = {}
        self._asks: dict[int, deque[int]] = {}
        self._bid_heap: list[int] = []
        self._ask_heap: list[int] = []
        self._best_bid: int = _NO_BID
        self._best_ask: int = _NO_ASK
        self._n_trades = 0
        self._submitted = 0  # total quantity of the limit and market orders so far, t

    # -- properties --------------------------------------------------------------------------

    @property
    def tick(self) -> float:
        """Price tick, currency per tonne."""
        return self._tick

    @property
    def price_band(self) -> tuple[float, float] | None:
        """Absolute price band ``(lo, hi)`` as given (admissible prices are the ticks inside)."""
        return self._price_band

    @property
    def band_mode(self) -> str:
        """``"reject"`` or ``"clip"``."""
        return self._band_mode

    @property
    def n_events(self) -> int:
        """Number of events submitted so far (the next event gets this id)."""
        return len(self._code)

    @property
    def n_trades(self) -> int:
        """Number of trades so far (the next trade gets this ``seq``)."""
        return self._n_trades

    @property
    def best_bid(self) -> float:
        """Best bid, currency per tonne; ``NaN`` when there is none."""
        if self._best_bid == _NO_BID:
            return float("nan")
        return float(ticks_to_price(self._best_bid, self._tick))

    @property
    def best_ask(self) -> float:
        """Best ask, currency per tonne; ``NaN`` when there is none."""
        if self._best_ask == _NO_ASK:
            return float("nan")
        return float(ticks_to_price(self._best_ask, self._tick))

    # -- submitting --------------------------------------------------------------------------

    def submit_many(
        self,
        side: npt.ArrayLike,
        price: npt.ArrayLike,
        qty: npt.ArrayLike,
        *,
        order_type: npt.ArrayLike | str | None = None,
        cancel_of: npt.ArrayLike | None = None,
        owner: npt.ArrayLike | None = None,
        depth: int | None = None,
    ) -> BookResult:
        """Process a stream of events in order.

        Parameters
        ----------
        side : array_like of str or int, shape (n,)
            ``"buy"``/``"sell"`` (case-insensitive) or ``BUY`` (+1) / ``SELL`` (-1). Must be
            valid on every row, including cancels (where it is otherwise unused).
        price : array_like of float, shape (n,)
            Limit price, currency per tonne (> 0 and finite on limit rows); ignored and
            possibly ``NaN`` on market and cancel rows.
        qty : array_like of int, shape (n,)
            Quantity, whole tonnes (>= 1 on limit and market rows, ignored on cancel rows).
        order_type : array_like of str or int, shape (n,), or str, optional
            ``"limit"`` (default), ``"market"`` or ``"cancel"``, or :class:`OrderType`
            codes; a single value applies to every row.
        cancel_of : array_like of int, shape (n,), optional
            On cancel rows, the id of the earlier event to cancel (global id: this book's
            :attr:`n_events` before the call plus the row number, for an order of this
            call); ``-1`` on every other row. Required when there is a cancel row.
        owner : array_like of int, shape (n,), optional
            Owner of each order (e.g. a unit row, >= 0, or -1 for none); reported on trades.
        depth : int, optional
            Levels per side in ``result.book``; all levels when ``None``.

        Returns
        -------
        BookResult
            Trades of this call, the state of its events and the book afterwards.

        Raises
        ------
        ValueError, TypeError
            On invalid input, naming the argument, and on orders that would bring the
            book's total past :data:`MAX_BOOK_QTY`; the book is left unchanged.
        """
        base = len(self._code)
        s = _prepare(
            side,
            price,
            qty,
            order_type,
            cancel_of,
            owner,
            tick=self._tick,
            band=self._band,
            band_rule=self._band_rule,
            base=base,
            submitted=self._submitted,
        )
        return self._submit_stream(s, _check_depth(depth))

    def submit(
        self,
        side: str | int,
        price: float | None,
        qty: int,
        *,
        order_type: str | int = "limit",
        owner: int = -1,
        depth: int | None = 5,
    ) -> BookResult:
        """Submit one limit or market order; see :meth:`submit_many`.

        The same rules and checks as :meth:`submit_many` for a one-row stream, with scalar
        arguments and less overhead. ``price`` is ignored for a market order (``None`` is
        fine). The new order's id is ``result.orders.order_id[0]``; ``result.book`` holds
        the best ``depth`` levels per side (five by default, like a level-2 quote; ``None``
        for all).
        """
        base = len(self._code)
        code, tck, q, sd, ty, own = self._prepare_one(side, price, qty, order_type, owner)
        depth = _check_depth(depth)
        self._append([code], [tck], [q], [sd], [ty], [own])
        flat = self._run([code], [tck], [q], [-1], base)
        return self._result(base, 1, flat, depth)

    def cancel(self, order_id: int, *, depth: int | None = 5) -> BookResult:
        """Cancel the resting remainder of order ``order_id`` (an earlier event id).

        Returns the result of the cancel event, whose status is ``CANCEL_APPLIED``, or
        ``CANCEL_IGNORED`` when the order was no longer resting; its reported ``side`` is
        the side of the target order. ``depth`` as in :meth:`submit`.
        """
        base = len(self._code)
        target = _scalar_whole("order_id", order_id, lo=0)
        if target >= base:
            raise ValueError(
                f"order_id must be the id of an earlier event (0 <= order_id < {base}), "
                f"got {target}"
            )
        depth = _check_depth(depth)
        side = self._side[target]  # reported side of a cancel event: the target's
        self._append([_CANCEL], [0], [0], [side], [int(OrderType.CANCEL)], [-1])
        flat = self._run([_CANCEL], [0], [0], [target], base)
        return self._result(base, 1, flat, depth)

    # -- internals shared by the entry points ------------------------------------------------

    def _prepare_one(
        self, side: object, price: object, qty: object, order_type: object, owner: object
    ) -> tuple[int, int, int, int, int, int]:
        """Validate one order; return ``(code, tick, qty, side, order_type, owner)``."""
        sd = _scalar_code("side", side, _SIDE_NAMES)
        ty = _scalar_code("order_type", order_type, _TYPE_NAMES)
        if ty == OrderType.CANCEL:
            raise ValueError(
                "order_type must be 'limit' or 'market' in submit(), got 'cancel'; "
                "use cancel(order_id)"
            )
        q = _scalar_whole("qty", qty, lo=1, hi=None)
        _check_book_total(q, self._submitted)
        own = _scalar_whole("owner", owner, lo=-1)
        if ty == OrderType.MARKET:
            code = _MARKET_BUY if sd == BUY else _MARKET_SELL
            tck = _MARKET_BUY_TICK if sd == BUY else _MARKET_SELL_TICK
            return code, tck, q, sd, ty, own
        p = check_in_range("price", price)  # type: ignore[arg-type]
        if p <= 0.0:
            raise ValueError(f"price must be > 0, got price = {p!r}")
        ratio = p / self._tick
        if ratio > MAX_ABS_TICK:
            raise ValueError(f"price = {p!r} is too large for tick = {self._tick!r}")
        tck = round(ratio)  # half to even, exactly like np.rint
        if tck < 1:
            raise ValueError(
                f"price = {p!r} rounds to 0 ticks of {self._tick!r}; "
                "limit prices must be at least one tick"
            )
        code = _LIMIT_BUY if sd == BUY else _LIMIT_SELL
        if self._band is not None:
            ticks, rejected = self._band_rule(
                np.array([tck], dtype=np.int64), np.ones(1, dtype=bool), *self._band
            )
            tck = int(ticks[0])
            if rejected[0]:
                code = _SKIP
        return code, tck, q, sd, ty, own

    def _append(
        self,
        code: list[int],
        ticks: list[int],
        qty: list[int],
        side: list[int],
        order_type: list[int],
        owner: list[int],
    ) -> None:
        n = len(code)
        self._submitted += sum(qty)
        self._code.extend(code)
        self._ticks.extend(ticks)
        self._qty.extend(qty)
        self._rem.extend([0] * n)
        self._gone.extend([0] * n)
        self._applied.extend(bytes(n))
        self._side.extend(side)
        self._type.extend(order_type)
        self._owner.extend(owner)

    def _submit_stream(self, s: _Stream, depth: int | None) -> BookResult:
        """Append a validated stream, match it and report on it."""
        base = len(self._code)
        code_l, tick_l, qty_l = s.code.tolist(), s.tick.tolist(), s.qty.tolist()
        self._append(
            code_l, tick_l, qty_l, s.side.tolist(), s.order_type.tolist(), s.owner.tolist()
        )
        flat = self._run(code_l, tick_l, qty_l, s.target.tolist(), base)
        return self._result(base, len(code_l), flat, depth, s)

    def _result(
        self, base: int, n: int, flat: list[int], depth: int | None, s: _Stream | None = None
    ) -> BookResult:
        """Trades of the events ``base .. base+n-1``, their state and the book (``depth``)."""
        stop = base + n
        if s is None:
            code = np.array(self._code[base:stop], dtype=np.int8)
            ticks = np.array(self._ticks[base:stop], dtype=np.int64)
            side = np.array(self._side[base:stop], dtype=np.int8)
            otype = np.array(self._type[base:stop], dtype=np.int8)
            qty = np.array(self._qty[base:stop], dtype=np.int64)
        else:
            code, ticks, side, otype, qty = s.code, s.tick, s.side, s.order_type, s.qty
        if base == 0 and s is not None:
            stream_owner = s.owner  # every order of the book is in this stream

            def owner_of(ids: IntArray) -> IntArray:
                return stream_owner[ids]

        else:
            owners = self._owner

            def owner_of(ids: IntArray) -> IntArray:
                return np.array([owners[i] for i in ids.tolist()], dtype=np.int64)

        trades = _make_trades(np.array(flat, dtype=np.int64), self._n_trades, self._tick, owner_of)
        self._n_trades += len(trades)
        orders = _make_orders(
            np.arange(base, stop, dtype=np.int64),
            code,
            ticks,
            side,
            otype,
            qty,
            np.array(self._rem[base:stop], dtype=np.int64),
            np.array(self._gone[base:stop], dtype=np.int64),
            np.frombuffer(bytes(self._applied[base:stop]), dtype=np.uint8).astype(bool),
            self._tick,
        )
        return BookResult(trades=trades, orders=orders, book=self.snapshot(depth))

    # -- the matching loop -------------------------------------------------------------------

    def _run(
        self,
        codes: list[int],
        ticks: list[int],
        qtys: list[int],
        targets: list[int],
        base: int,
    ) -> list[int]:
        """Match events ``base, base+1, ...``; return trades flattened as (buy, sell, tick, qty)."""
        flat: list[int] = []
        emit = flat.extend
        rem = self._rem
        gone = self._gone
        applied = self._applied
        all_codes = self._code
        all_ticks = self._ticks
        bids = self._bids
        asks = self._asks
        bid_heap = self._bid_heap
        ask_heap = self._ask_heap
        best_bid = self._best_bid
        best_ask = self._best_ask
        push = heappush
        pop = heappop
        new_level = deque
        i = base - 1
        for code, p, q, tgt in zip(codes, ticks, qtys, targets, strict=True):
            i += 1
            if code == 0 or code == 2:  # buy
                if p >= best_ask:
                    while True:
                        dq = asks[best_ask]
                        while True:
                            o = dq[0]
                            r = rem[o]
                            if r <= q:
                                dq.popleft()
                                rem[o] = 0
                                emit((i, o, best_ask, r))
                                q -= r
                                if not dq or not q:
                                    break
                            else:
                                rem[o] = r - q
                                emit((i, o, best_ask, q))
                                q = 0
                                break
                        if not dq:
                            del asks[best_ask]
                            pop(ask_heap)
                            while ask_heap and ask_heap[0] not in asks:
                                pop(ask_heap)
                            best_ask = ask_heap[0] if ask_heap else _NO_ASK
                        if not q or p < best_ask:
                            break
                if q:
                    if code == 0:
                        rem[i] = q
                        lvl = bids.get(p)
                        if lvl is None:
                            bids[p] = new_level((i,))
                            push(bid_heap, -p)
                            if p > best_bid:
                                best_bid = p
                        else:
                            lvl.append(i)
                    else:
                        gone[i] = q
            elif code == 1 or code == 3:  # sell
                if p <= best_bid:
                    while True:
                        dq = bids[best_bid]
                        while True:
                            o = dq[0]
                            r = rem[o]
                            if r <= q:
                                dq.popleft()
                                rem[o] = 0
                                emit((o, i, best_bid, r))
                                q -= r
                                if not dq or not q:
                                    break
                            else:
                                rem[o] = r - q
                                emit((o, i, best_bid, q))
                                q = 0
                                break
                        if not dq:
                            del bids[best_bid]
                            pop(bid_heap)
                            while bid_heap and -bid_heap[0] not in bids:
                                pop(bid_heap)
                            best_bid = -bid_heap[0] if bid_heap else _NO_BID
                        if not q or p > best_bid:
                            break
                if q:
                    if code == 1:
                        rem[i] = q
                        lvl = asks.get(p)
                        if lvl is None:
                            asks[p] = new_level((i,))
                            push(ask_heap, p)
                            if p < best_ask:
                                best_ask = p
                        else:
                            lvl.append(i)
                    else:
                        gone[i] = q
            elif code == 4:  # cancel
                r = rem[tgt]
                if r:
                    t = all_ticks[tgt]
                    rem[tgt] = 0
                    gone[tgt] = r
                    applied[i] = 1
                    if all_codes[tgt] == 0:
                        dq = bids[t]
                        dq.remove(tgt)
                        if not dq:
                            del bids[t]
                            if t == best_bid:
                                while bid_heap and -bid_heap[0] not in bids:
                                    pop(bid_heap)
                                best_bid = -bid_heap[0] if bid_heap else _NO_BID
                    else:
                        dq = asks[t]
                        dq.remove(tgt)
                        if not dq:
                            del asks[t]
                            if t == best_ask:
                                while ask_heap and ask_heap[0] not in asks:
                                    pop(ask_heap)
                                best_ask = ask_heap[0] if ask_heap else _NO_ASK
            # code 5: rejected by the band, never enters the book
        self._best_bid = best_bid
        self._best_ask = best_ask
        return flat

    # -- reading the book --------------------------------------------------------------------

    def snapshot(self, depth: int | None = None) -> BookSnapshot:
        """Aggregated depth of the book, best level first.

        Parameters
        ----------
        depth : int, optional
            Number of levels per side (>= 0); all levels when ``None``.
        """
        depth = _check_depth(depth)
        remaining = self._rem.__getitem__
        out: list[tuple[FloatArray, IntArray, IntArray]] = []
        for levels, descending in ((self._bids, True), (self._asks, False)):
            if depth is None:
                keys = sorted(levels, reverse=descending)
            else:
                keys = nlargest(depth, levels) if descending else nsmallest(depth, levels)
            if not keys:
                out.append(_empty_levels())
                continue
            qty = [sum(map(remaining, levels[k])) for k in keys]
            count = [len(levels[k]) for k in keys]
            out.append(
                (
                    ticks_to_price(keys, self._tick),
                    np.array(qty, dtype=np.int64),
                    np.array(count, dtype=np.int64),
                )
            )
        return _make_snapshot(self._tick, out[0], out[1])

    def orders(self, order_ids: npt.ArrayLike | None = None) -> OrderStates:
        """Current state of earlier events (all of them when ``order_ids`` is ``None``).

        Parameters
        ----------
        order_ids : array_like of int, shape (k,), optional
            Global event ids, ``0 <= id < n_events``.
        """
        n = len(self._code)
        if order_ids is None:
            ids = np.arange(n, dtype=np.int64)
        else:
            ids = as_int_array("order_ids", order_ids, lo=0, hi=max(n - 1, 0))
            if n == 0 and ids.size:
                raise ValueError("order_ids must be < n_events = 0 (the book is empty)")
        idx = ids.tolist()
        return _make_orders(
            ids,
            np.array([self._code[i] for i in idx], dtype=np.int8),
            np.array([self._ticks[i] for i in idx], dtype=np.int64),
            np.array([self._side[i] for i in idx], dtype=np.int8),
            np.array([self._type[i] for i in idx], dtype=np.int8),
            np.array([self._qty[i] for i in idx], dtype=np.int64),
            np.array([self._rem[i] for i in idx], dtype=np.int64),
            np.array([self._gone[i] for i in idx], dtype=np.int64),
            np.array([self._applied[i] for i in idx], dtype=bool),
            self._tick,
        )


def _make_snapshot(
    tick: float,
    bids: tuple[FloatArray, IntArray, IntArray],
    asks: tuple[FloatArray, IntArray, IntArray],
) -> BookSnapshot:
    return BookSnapshot(
        tick=tick,
        best_bid=float(bids[0][0]) if bids[0].size else float("nan"),
        best_ask=float(asks[0][0]) if asks[0].size else float("nan"),
        bid_price=_freeze(bids[0]),
        bid_qty=_freeze(bids[1]),
        bid_orders=_freeze(bids[2]),
        ask_price=_freeze(asks[0]),
        ask_qty=_freeze(asks[1]),
        ask_orders=_freeze(asks[2]),
    )


def _snapshot_from_orders(
    tick: float, side: np.ndarray, price_tick: np.ndarray, rem: np.ndarray
) -> BookSnapshot:
    """Depth aggregated from per-order resting quantities (used by array backends)."""
    out: list[tuple[FloatArray, IntArray, IntArray]] = []
    for s, descending in ((BUY, True), (SELL, False)):
        live = (rem > 0) & (side == s)
        if not live.any():
            out.append(_empty_levels())
            continue
        keys, inv = np.unique(price_tick[live], return_inverse=True)
        qty = np.bincount(inv, weights=rem[live].astype(np.float64)).astype(np.int64)
        count = np.bincount(inv).astype(np.int64)
        order = slice(None, None, -1) if descending else slice(None)
        out.append((ticks_to_price(keys[order], tick), qty[order], count[order]))
    return _make_snapshot(tick, out[0], out[1])


# --------------------------------------------------------------------------------------------
# Vectorized entry point and backends
# --------------------------------------------------------------------------------------------

Backend = Callable[[_Stream, float], BookResult]

ORDER_BOOK_BACKENDS: Registry[Backend] = Registry("order book backend")
"""Matching engines for :func:`match_stream`: ``"python"`` (default) and ``"numba"``."""


@ORDER_BOOK_BACKENDS.register("python")
def _backend_python(s: _Stream, tick: float) -> BookResult:
    """Run a prepared stream through a fresh :class:`OrderBook` (the reference engine)."""
    return OrderBook(tick=tick)._submit_stream(s, depth=None)


@ORDER_BOOK_BACKENDS.register("numba")
def _backend_numba(s: _Stream, tick: float) -> BookResult:
    """Run a prepared stream through the compiled kernel (needs the optional ``numba``)."""
    n = int(s.code.shape[0])
    is_limit = (s.code == _LIMIT_BUY) | (s.code == _LIMIT_SELL)
    levels, rank = np.unique(s.tick[is_limit], return_inverse=True)
    level = np.zeros(n, dtype=np.int64)
    level[is_limit] = rank.reshape(-1)
    fast = importlib.import_module("carbonsim.clearing._order_book_numba")
    try:
        flat, rem, gone, applied = fast.match_ranked(
            s.code, level, s.qty, s.target, int(levels.shape[0])
        )
    except ModuleNotFoundError as exc:  # numba is not installed
        raise ModuleNotFoundError(
            "backend='numba' needs the optional numba package "
            "(pip install 'carbonsim[fast]' or pip install numba); use backend='python'"
        ) from exc
    flat = flat.reshape(-1, 4)
    flat[:, 2] = levels[flat[:, 2]]  # level rank back to ticks
    owner = s.owner
    trades = _make_trades(flat, 0, tick, lambda ids: owner[ids])
    orders = _make_orders(
        np.arange(n, dtype=np.int64),
        s.code,
        s.tick,
        s.side,
        s.order_type,
        s.qty,
        rem,
        gone,
        applied,
        tick,
    )
    book = _snapshot_from_orders(tick, s.side, s.tick, rem)
    return BookResult(trades=trades, orders=orders, book=book)


def match_stream(
    side: npt.ArrayLike,
    price: npt.ArrayLike,
    qty: npt.ArrayLike,
    *,
    order_type: npt.ArrayLike | str | None = None,
    cancel_of: npt.ArrayLike | None = None,
    tick: float = 0.01,
    price_band: tuple[float, float] | None = None,
    band_mode: str = "reject",
    owner: npt.ArrayLike | None = None,
    backend: str = "python",
) -> BookResult:
    """Run a stream of events through an empty continuous double auction book.

    Event ``i`` (row ``i``) gets id ``i``; a cancel row names the id of an earlier row in
    ``cancel_of``. See the module docstring for the matching, band and cancel rules.

    Parameters
    ----------
    side : array_like of str or int, shape (n,)
        ``"buy"``/``"sell"`` or ``BUY`` (+1) / ``SELL`` (-1), on every row.
    price : array_like of float, shape (n,)
        Limit price, currency per tonne (> 0 and finite on limit rows; ignored, possibly
        ``NaN``, on market and cancel rows).
    qty : array_like of int, shape (n,)
        Quantity, whole tonnes (>= 1 on limit and market rows; ignored on cancel rows).
    order_type : array_like of str or int, shape (n,), or str, optional
        ``"limit"`` (default), ``"market"`` or ``"cancel"`` per row, or one for all rows.
    cancel_of : array_like of int, shape (n,), optional
        Row cancelled by each cancel row (``0 <= cancel_of[i] < i``), ``-1`` elsewhere.
    tick : float
        Price tick, currency per tonne (> 0).
    price_band : (float, float), optional
        Absolute band ``(lo, hi)``, currency per tonne, e.g. ``(0.9 * ref, 1.1 * ref)``.
    band_mode : {"reject", "clip"}
        Reject limit orders outside the band, or clip their prices to it.
    owner : array_like of int, shape (n,), optional
        Owner of each order (>= 0, or -1 for none), reported on trades.
    backend : {"python", "numba"}
        Matching engine; ``"numba"`` needs the optional ``numba`` package and returns results
        identical to ``"python"``.

    Returns
    -------
    BookResult
        ``trades`` (shape ``(T,)`` arrays), ``orders`` (shape ``(n,)`` arrays, row ``i`` for
        event ``i``) and ``book`` (final depth).

    Raises
    ------
    ValueError, TypeError
        On invalid input, naming the argument; quantities totalling
        :data:`MAX_BOOK_QTY` (``2**53``) t or more.
    UnknownPluginError
        For an unknown ``band_mode`` or ``backend`` (a ``ValueError``), listing valid names.

    Examples
    --------
    A market buy sweeping two ask levels, then a cancel of the partly filled second ask:

    >>> r = match_stream(
    ...     side=["sell", "sell", "sell", "buy", "buy"],
    ...     price=[10.00, 10.01, 10.01, float("nan"), float("nan")],
    ...     qty=[5, 5, 5, 7, 0],
    ...     order_type=["limit", "limit", "limit", "market", "cancel"],
    ...     cancel_of=[-1, -1, -1, -1, 1],
    ... )
    >>> r.trades.sell_order.tolist(), r.trades.price.tolist(), r.trades.qty.tolist()
    ([0, 1], [10.0, 10.01], [5, 2])
    >>> r.orders.cancelled.tolist()  # 3 t of order 1 cancelled
    [0, 3, 0, 0, 0]
    >>> r.book.ask_price.tolist(), r.book.ask_qty.tolist()
    ([10.01], [5])

    A +/-10 % band around a reference price of 50, clipping:

    >>> r = match_stream(["buy", "sell"], [60.0, 40.0], [1, 1], price_band=(45.0, 55.0),
    ...                  band_mode="clip")
    >>> r.orders.limit_price.tolist(), r.trades.price.tolist()
    ([55.0, 45.0], [55.0])
    """
    t = check_tick(tick)
    band_rule = _band_rule(band_mode)
    engine = ORDER_BOOK_BACKENDS.get(backend)
    s = _prepare(
        side,
        price,
        qty,
        order_type,
        cancel_of,
        owner,
        tick=t,
        band=_band(price_band, t),
        band_rule=band_rule,
        base=0,
    )
    return engine(s, t)
