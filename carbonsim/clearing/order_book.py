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
from heapq import heappop, heappush, nlargest, nsmallest

import numpy as np
import numpy.typing as npt

from carbonsim._registry import Registry
from carbonsim._validation import (
    as_int_array,
    check_in_range,
)
from carbonsim.clearing.book_input import (
    SIDE_NAMES,
    TYPE_NAMES,
    EventStream,
    band_rule,
    check_book_total,
    check_depth,
    prepare_stream,
    scalar_code,
    scalar_whole,
    stream_band,
)
from carbonsim.clearing.book_records import (
    BUY,
    EV_CANCEL,
    EV_LIMIT_BUY,
    EV_LIMIT_SELL,
    EV_MARKET_BUY,
    EV_MARKET_SELL,
    EV_SKIP,
    MARKET_BUY_TICK,
    MARKET_SELL_TICK,
    MAX_BOOK_QTY,
    NO_ASK,
    NO_BID,
    SELL,
    BookResult,
    BookSnapshot,
    FloatArray,
    IntArray,
    OrderStates,
    OrderStatus,
    OrderType,
    Trades,
    empty_levels,
    make_order_states,
    make_snapshot,
    make_trades,
    snapshot_from_orders,
)
from carbonsim.clearing.ticks import MAX_ABS_TICK, check_tick, ticks_to_price

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
        self._band_rule = band_rule(band_mode)
        self._band_mode = band_mode
        self._band = stream_band(price_band, self._tick)
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
        self._best_bid: int = NO_BID
        self._best_ask: int = NO_ASK
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
        if self._best_bid == NO_BID:
            return float("nan")
        return float(ticks_to_price(self._best_bid, self._tick))

    @property
    def best_ask(self) -> float:
        """Best ask, currency per tonne; ``NaN`` when there is none."""
        if self._best_ask == NO_ASK:
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
        s = prepare_stream(
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
        return self._submit_stream(s, check_depth(depth))

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
        depth = check_depth(depth)
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
        target = scalar_whole("order_id", order_id, lo=0)
        if target >= base:
            raise ValueError(
                f"order_id must be the id of an earlier event (0 <= order_id < {base}), "
                f"got {target}"
            )
        depth = check_depth(depth)
        side = self._side[target]  # reported side of a cancel event: the target's
        self._append([EV_CANCEL], [0], [0], [side], [int(OrderType.CANCEL)], [-1])
        flat = self._run([EV_CANCEL], [0], [0], [target], base)
        return self._result(base, 1, flat, depth)

    # -- internals shared by the entry points ------------------------------------------------

    def _prepare_one(
        self, side: object, price: object, qty: object, order_type: object, owner: object
    ) -> tuple[int, int, int, int, int, int]:
        """Validate one order; return ``(code, tick, qty, side, order_type, owner)``."""
        sd = scalar_code("side", side, SIDE_NAMES)
        ty = scalar_code("order_type", order_type, TYPE_NAMES)
        if ty == OrderType.CANCEL:
            raise ValueError(
                "order_type must be 'limit' or 'market' in submit(), got 'cancel'; "
                "use cancel(order_id)"
            )
        q = scalar_whole("qty", qty, lo=1, hi=None)
        check_book_total(q, self._submitted)
        own = scalar_whole("owner", owner, lo=-1)
        if ty == OrderType.MARKET:
            code = EV_MARKET_BUY if sd == BUY else EV_MARKET_SELL
            tck = MARKET_BUY_TICK if sd == BUY else MARKET_SELL_TICK
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
        code = EV_LIMIT_BUY if sd == BUY else EV_LIMIT_SELL
        if self._band is not None:
            ticks, rejected = self._band_rule(
                np.array([tck], dtype=np.int64), np.ones(1, dtype=bool), *self._band
            )
            tck = int(ticks[0])
            if rejected[0]:
                code = EV_SKIP
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

    def _submit_stream(self, s: EventStream, depth: int | None) -> BookResult:
        """Append a validated stream, match it and report on it."""
        base = len(self._code)
        code_l, tick_l, qty_l = s.code.tolist(), s.tick.tolist(), s.qty.tolist()
        self._append(
            code_l, tick_l, qty_l, s.side.tolist(), s.order_type.tolist(), s.owner.tolist()
        )
        flat = self._run(code_l, tick_l, qty_l, s.target.tolist(), base)
        return self._result(base, len(code_l), flat, depth, s)

    def _result(
        self, base: int, n: int, flat: list[int], depth: int | None, s: EventStream | None = None
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

        trades = make_trades(np.array(flat, dtype=np.int64), self._n_trades, self._tick, owner_of)
        self._n_trades += len(trades)
        orders = make_order_states(
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
                            best_ask = ask_heap[0] if ask_heap else NO_ASK
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
                            best_bid = -bid_heap[0] if bid_heap else NO_BID
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
                                best_bid = -bid_heap[0] if bid_heap else NO_BID
                    else:
                        dq = asks[t]
                        dq.remove(tgt)
                        if not dq:
                            del asks[t]
                            if t == best_ask:
                                while ask_heap and ask_heap[0] not in asks:
                                    pop(ask_heap)
                                best_ask = ask_heap[0] if ask_heap else NO_ASK
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
        depth = check_depth(depth)
        remaining = self._rem.__getitem__
        out: list[tuple[FloatArray, IntArray, IntArray]] = []
        for levels, descending in ((self._bids, True), (self._asks, False)):
            if depth is None:
                keys = sorted(levels, reverse=descending)
            else:
                keys = nlargest(depth, levels) if descending else nsmallest(depth, levels)
            if not keys:
                out.append(empty_levels())
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
        return make_snapshot(self._tick, out[0], out[1])

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
        return make_order_states(
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


# --------------------------------------------------------------------------------------------
# Vectorized entry point and backends
# --------------------------------------------------------------------------------------------

Backend = Callable[[EventStream, float], BookResult]

ORDER_BOOK_BACKENDS: Registry[Backend] = Registry("order book backend")
"""Matching engines for :func:`match_stream`: ``"python"`` (default) and ``"numba"``."""


@ORDER_BOOK_BACKENDS.register("python")
def _backend_python(s: EventStream, tick: float) -> BookResult:
    """Run a prepared stream through a fresh :class:`OrderBook` (the reference engine)."""
    return OrderBook(tick=tick)._submit_stream(s, depth=None)


@ORDER_BOOK_BACKENDS.register("numba")
def _backend_numba(s: EventStream, tick: float) -> BookResult:
    """Run a prepared stream through the compiled kernel (needs the optional ``numba``)."""
    n = int(s.code.shape[0])
    is_limit = (s.code == EV_LIMIT_BUY) | (s.code == EV_LIMIT_SELL)
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
    trades = make_trades(flat, 0, tick, lambda ids: owner[ids])
    orders = make_order_states(
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
    book = snapshot_from_orders(tick, s.side, s.tick, rem)
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
    rule = band_rule(band_mode)
    engine = ORDER_BOOK_BACKENDS.get(backend)
    s = prepare_stream(
        side,
        price,
        qty,
        order_type,
        cancel_of,
        owner,
        tick=t,
        band=stream_band(price_band, t),
        band_rule=rule,
        base=0,
    )
    return engine(s, t)
