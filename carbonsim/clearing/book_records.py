"""Codes and results of the continuous order book.

Sides (:data:`BUY`, :data:`SELL`), event kinds (:class:`OrderType`), states
(:class:`OrderStatus`), the internal event codes of the matching loops, and the result
records (:class:`Trades`, :class:`OrderStates`, :class:`BookSnapshot`,
:class:`BookResult`) with the functions that build them from a matching loop's output.
Used by :mod:`carbonsim.clearing.order_book` and its compiled twin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from carbonsim._validation import read_only
from carbonsim.clearing.ticks import ticks_to_price

__all__ = [
    "BUY",
    "EV_CANCEL",
    "EV_LIMIT_BUY",
    "EV_LIMIT_SELL",
    "EV_MARKET_BUY",
    "EV_MARKET_SELL",
    "EV_SKIP",
    "MARKET_BUY_TICK",
    "MARKET_SELL_TICK",
    "MAX_BOOK_QTY",
    "NO_ASK",
    "NO_BID",
    "SELL",
    "BookResult",
    "BookSnapshot",
    "OrderStates",
    "OrderStatus",
    "OrderType",
    "Trades",
    "empty_levels",
    "make_order_states",
    "make_snapshot",
    "make_trades",
    "snapshot_from_orders",
]

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


# Internal event codes used by the matching loops (one small int per event).
EV_LIMIT_BUY: Final = 0
EV_LIMIT_SELL: Final = 1
EV_MARKET_BUY: Final = 2
EV_MARKET_SELL: Final = 3
EV_CANCEL: Final = 4
EV_SKIP: Final = 5  # rejected by the band: never enters the book

# Tick sentinels. Valid limit ticks lie in [1, MAX_ABS_TICK]; a market buy crosses every ask
# and a market sell every bid, an empty side never crosses anything.
NO_BID: Final = -1
NO_ASK: Final = 2**62
MARKET_BUY_TICK: Final = 2**62 - 1
MARKET_SELL_TICK: Final = 0

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]


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


def _status(code: np.ndarray, rem: np.ndarray, gone: np.ndarray, applied: np.ndarray) -> Int8Array:
    """:class:`OrderStatus` codes from the internal codes and the final quantities."""
    market = (code == EV_MARKET_BUY) | (code == EV_MARKET_SELL)
    removed = np.where(market, int(OrderStatus.EXPIRED), int(OrderStatus.CANCELLED))
    status = np.where(gone > 0, removed, int(OrderStatus.FILLED))
    status = np.where(rem > 0, int(OrderStatus.OPEN), status)
    status = np.where(code == EV_SKIP, int(OrderStatus.REJECTED), status)
    cancel = np.where(applied, int(OrderStatus.CANCEL_APPLIED), int(OrderStatus.CANCEL_IGNORED))
    return np.where(code == EV_CANCEL, cancel, status).astype(np.int8)


def make_order_states(
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
    rejected = np.where(code == EV_SKIP, qty, 0)
    limit = np.asarray(order_type) == OrderType.LIMIT
    limit_price = np.where(limit, ticks_to_price(np.where(limit, stream_tick, 0), tick), np.nan)
    return OrderStates(
        order_id=read_only(np.asarray(ids, dtype=np.int64)),
        side=read_only(np.asarray(side, dtype=np.int8)),
        order_type=read_only(np.asarray(order_type, dtype=np.int8)),
        limit_price=read_only(limit_price),
        qty=read_only(qty),
        filled=read_only(qty - rem - gone - rejected),
        resting=read_only(rem),
        cancelled=read_only(gone),
        rejected=read_only(rejected),
        status=read_only(_status(code, rem, gone, np.asarray(applied, dtype=bool))),
    )


def make_trades(
    flat: np.ndarray, seq0: int, tick: float, owner_of: Callable[[IntArray], IntArray]
) -> Trades:
    """Trades from an ``(T, 4)`` array of ``(buy, sell, tick, qty)`` rows."""
    t = np.asarray(flat, dtype=np.int64).reshape(-1, 4)
    buy, sell = t[:, 0].copy(), t[:, 1].copy()
    price_tick = t[:, 2].copy()
    return Trades(
        seq=read_only(seq0 + np.arange(t.shape[0], dtype=np.int64)),
        event=read_only(np.maximum(buy, sell)),
        buy_order=read_only(buy),
        sell_order=read_only(sell),
        price=read_only(ticks_to_price(price_tick, tick)),
        price_tick=read_only(price_tick),
        qty=read_only(t[:, 3].copy()),
        aggressor_side=read_only(np.where(buy > sell, BUY, SELL).astype(np.int8)),
        buy_owner=read_only(owner_of(buy)),
        sell_owner=read_only(owner_of(sell)),
    )


def empty_levels() -> tuple[FloatArray, IntArray, IntArray]:
    return np.empty(0, np.float64), np.empty(0, np.int64), np.empty(0, np.int64)


def make_snapshot(
    tick: float,
    bids: tuple[FloatArray, IntArray, IntArray],
    asks: tuple[FloatArray, IntArray, IntArray],
) -> BookSnapshot:
    return BookSnapshot(
        tick=tick,
        best_bid=float(bids[0][0]) if bids[0].size else float("nan"),
        best_ask=float(asks[0][0]) if asks[0].size else float("nan"),
        bid_price=read_only(bids[0]),
        bid_qty=read_only(bids[1]),
        bid_orders=read_only(bids[2]),
        ask_price=read_only(asks[0]),
        ask_qty=read_only(asks[1]),
        ask_orders=read_only(asks[2]),
    )


def snapshot_from_orders(
    tick: float, side: np.ndarray, price_tick: np.ndarray, rem: np.ndarray
) -> BookSnapshot:
    """Depth aggregated from per-order resting quantities (used by array backends)."""
    out: list[tuple[FloatArray, IntArray, IntArray]] = []
    for s, descending in ((BUY, True), (SELL, False)):
        live = (rem > 0) & (side == s)
        if not live.any():
            out.append(empty_levels())
            continue
        keys, inv = np.unique(price_tick[live], return_inverse=True)
        qty = np.bincount(inv, weights=rem[live].astype(np.float64)).astype(np.int64)
        count = np.bincount(inv).astype(np.int64)
        order = slice(None, None, -1) if descending else slice(None)
        out.append((ticks_to_price(keys[order], tick), qty[order], count[order]))
    return make_snapshot(tick, out[0], out[1])
