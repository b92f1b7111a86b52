"""Invariants of the continuous double auction book on random streams (hypothesis).

Includes a slow, obviously correct reference book (a list of resting orders, sorted by
price-time priority on every incoming order) that the fast book must match exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from carbonsim.clearing.order_book import (
    BUY,
    SELL,
    BookResult,
    OrderBook,
    OrderStatus,
    OrderType,
    match_stream,
)

TICKS = (0.01, 0.05, 1.0)


@dataclass
class Stream:
    side: list[int]
    price: list[float]
    qty: list[int]
    order_type: list[int]
    cancel_of: list[int]
    tick: float
    band: tuple[float, float] | None
    band_mode: str
    owner: list[int] = field(default_factory=list)

    def kwargs(self) -> dict[str, object]:
        return {
            "side": self.side,
            "price": self.price,
            "qty": self.qty,
            "order_type": self.order_type,
            "cancel_of": self.cancel_of,
            "tick": self.tick,
            "price_band": self.band,
            "band_mode": self.band_mode,
            "owner": self.owner,
        }


@st.composite
def streams(draw: st.DrawFn, max_n: int = 40) -> Stream:
    tick = draw(st.sampled_from(TICKS))
    mid = draw(st.integers(100, 5000))  # in ticks
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from([BUY, SELL]),
                st.integers(-6, 6),  # price offset from mid, ticks
                st.integers(1, 20),  # qty
                st.sampled_from([OrderType.LIMIT] * 6 + [OrderType.MARKET, OrderType.CANCEL] * 1),
                st.integers(0, 10**6),  # cancel target, reduced modulo the row number
                st.integers(0, 3),  # owner
            ),
            max_size=max_n,
        )
    )
    side, price, qty, otype, cancel_of, owner = [], [], [], [], [], []
    for i, (s, off, q, t, tgt, own) in enumerate(rows):
        if t == OrderType.CANCEL and i == 0:
            t = OrderType.LIMIT
        side.append(s)
        price.append((mid + off) * tick if t == OrderType.LIMIT else float("nan"))
        qty.append(q if t != OrderType.CANCEL else 0)
        otype.append(int(t))
        cancel_of.append(tgt % i if t == OrderType.CANCEL else -1)
        owner.append(own)
    band = None
    if draw(st.booleans()):
        # Edges on the grid or 0.4 tick inside it (off the grid: they must snap inward).
        lo = draw(st.integers(-6, 2))
        hi = draw(st.integers(lo + 2, 8))
        lo_off, hi_off = draw(st.sampled_from([0.0, 0.4])), draw(st.sampled_from([0.0, 0.4]))
        band = ((mid + lo + lo_off) * tick, (mid + hi - hi_off) * tick)
    mode = draw(st.sampled_from(["reject", "clip"]))
    return Stream(side, price, qty, otype, cancel_of, tick, band, mode, owner)


# --------------------------------------------------------------------------------------------
# Reference implementation: obviously correct, quadratic
# --------------------------------------------------------------------------------------------


def band_in_ticks(s: Stream) -> tuple[int, int]:
    """The admissible ticks of the band: the grid points inside ``[lo, hi]``."""
    assert s.band is not None
    return (
        math.ceil(s.band[0] / s.tick - 1e-9),
        math.floor(s.band[1] / s.tick + 1e-9),
    )


@dataclass
class RefResult:
    trades: list[tuple[int, int, int, int]]  # buy, sell, tick, qty
    limit_tick: list[int | None]
    resting: list[int]
    cancelled: list[int]
    rejected: list[int]
    status: list[int]


def reference_book(s: Stream) -> RefResult:
    n = len(s.side)
    book: list[list[int]] = []  # [id, side, tick, remaining]
    trades: list[tuple[int, int, int, int]] = []
    limit_tick: list[int | None] = [None] * n
    resting, cancelled, rejected = [0] * n, [0] * n, [0] * n
    status = [int(OrderStatus.FILLED)] * n
    band = None if s.band is None else band_in_ticks(s)
    for i in range(n):
        kind, side, q = s.order_type[i], s.side[i], s.qty[i]
        if kind == OrderType.CANCEL:
            hits = [entry for entry in book if entry[0] == s.cancel_of[i]]
            if hits:
                book.remove(hits[0])
                cancelled[hits[0][0]] = hits[0][3]
                status[hits[0][0]] = int(OrderStatus.CANCELLED)
                status[i] = int(OrderStatus.CANCEL_APPLIED)
            else:
                status[i] = int(OrderStatus.CANCEL_IGNORED)
            continue
        limit = None
        if kind == OrderType.LIMIT:
            limit = round(s.price[i] / s.tick)
            if band is not None:
                if s.band_mode == "clip":
                    limit = min(max(limit, band[0]), band[1])
                elif not band[0] <= limit <= band[1]:
                    rejected[i] = q
                    status[i] = int(OrderStatus.REJECTED)
                    limit_tick[i] = limit
                    continue
            limit_tick[i] = limit
        # Opposite side in priority order: best price, then earliest.
        opposite = [e for e in book if e[1] != side]
        if side == BUY:
            opposite.sort(key=lambda e: (e[2], e[0]))
        else:
            opposite.sort(key=lambda e: (-e[2], e[0]))
        for entry in opposite:
            if q == 0:
                break
            if limit is not None and (entry[2] > limit if side == BUY else entry[2] < limit):
                break
            fill = min(q, entry[3])
            buy, sell = (i, entry[0]) if side == BUY else (entry[0], i)
            trades.append((buy, sell, entry[2], fill))
            entry[3] -= fill
            q -= fill
            if entry[3] == 0:
                book.remove(entry)
        if q:
            if limit is None:
                cancelled[i] = q
                status[i] = int(OrderStatus.EXPIRED)
            else:
                book.append([i, side, limit, q])
    for entry in book:
        resting[entry[0]] = entry[3]
        status[entry[0]] = int(OrderStatus.OPEN)
    return RefResult(trades, limit_tick, resting, cancelled, rejected, status)


def trade_tuples(res: BookResult) -> list[tuple[int, int, int, int]]:
    t = res.trades
    cols = (t.buy_order, t.sell_order, t.price_tick, t.qty)
    return list(zip(*(c.tolist() for c in cols), strict=True))


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@given(streams())
def test_matches_the_reference_book(s: Stream) -> None:
    res = match_stream(**s.kwargs())  # type: ignore[arg-type]
    ref = reference_book(s)
    assert trade_tuples(res) == ref.trades
    assert res.orders.resting.tolist() == ref.resting
    assert res.orders.cancelled.tolist() == ref.cancelled
    assert res.orders.rejected.tolist() == ref.rejected
    assert res.orders.status.tolist() == ref.status


@given(streams())
def test_quantity_is_conserved(s: Stream) -> None:
    res = match_stream(**s.kwargs())  # type: ignore[arg-type]
    o, t = res.orders, res.trades
    n = len(o)
    np.testing.assert_array_equal(o.qty, o.filled + o.resting + o.cancelled + o.rejected)
    for name in ("filled", "resting", "cancelled", "rejected"):
        assert (getattr(o, name) >= 0).all(), name
    assert (o.filled <= o.qty).all()
    assert (t.qty > 0).all()
    # Trades fill exactly what the orders report as filled, on both sides.
    by_buy = np.bincount(t.buy_order, weights=t.qty, minlength=n)
    by_sell = np.bincount(t.sell_order, weights=t.qty, minlength=n)
    np.testing.assert_array_equal(by_buy + by_sell, o.filled)
    is_buy = o.side == BUY
    assert o.filled[is_buy].sum() == o.filled[~is_buy].sum() == t.qty.sum()
    assert (o.side[t.buy_order] == BUY).all()
    assert (o.side[t.sell_order] == SELL).all()
    # The book holds what the orders report as resting.
    assert res.book.bid_qty.sum() == o.resting[is_buy].sum()
    assert res.book.ask_qty.sum() == o.resting[~is_buy].sum()
    assert res.book.bid_orders.sum() + res.book.ask_orders.sum() == (o.resting > 0).sum()


@given(streams())
def test_no_trade_through_a_limit_and_trades_at_resting_price(s: Stream) -> None:
    res = match_stream(**s.kwargs())  # type: ignore[arg-type]
    o, t = res.orders, res.trades
    buy_limit = o.limit_price[t.buy_order]
    sell_limit = o.limit_price[t.sell_order]
    limited_buy = ~np.isnan(buy_limit)
    limited_sell = ~np.isnan(sell_limit)
    assert (t.price[limited_buy] <= buy_limit[limited_buy]).all()
    assert (t.price[limited_sell] >= sell_limit[limited_sell]).all()
    resting = np.where(t.aggressor_side == BUY, t.sell_order, t.buy_order)
    aggressor = np.where(t.aggressor_side == BUY, t.buy_order, t.sell_order)
    np.testing.assert_array_equal(t.price, o.limit_price[resting])
    np.testing.assert_array_equal(aggressor, t.event)
    assert (resting < aggressor).all()
    assert (np.diff(t.event) >= 0).all()
    np.testing.assert_array_equal(t.seq, np.arange(len(t)))


@given(streams())
def test_trades_and_book_lie_inside_the_band(s: Stream) -> None:
    res = match_stream(**s.kwargs())  # type: ignore[arg-type]
    if s.band is None:
        return
    lo, hi = band_in_ticks(s)
    assert ((res.trades.price_tick >= lo) & (res.trades.price_tick <= hi)).all()
    slack = 1e-9 * s.tick * max(abs(s.band[0]), abs(s.band[1]), 1.0)
    assert (res.trades.price >= s.band[0] - slack).all()
    assert (res.trades.price <= s.band[1] + slack).all()
    limit = res.orders.order_type == OrderType.LIMIT
    accepted = limit & (res.orders.status != OrderStatus.REJECTED)
    lp = np.round(res.orders.limit_price[accepted] / s.tick)
    assert ((lp >= lo) & (lp <= hi)).all()
    if s.band_mode == "clip":
        assert (res.orders.rejected == 0).all()


@given(streams(max_n=25), st.booleans())
def test_book_is_never_crossed_and_event_by_event_equals_one_stream(
    s: Stream, scalar: bool
) -> None:
    """Submitting event by event (``submit``/``cancel`` or one-row ``submit_many``) gives
    the same trades as one stream, and the book is never crossed after any event."""
    book = OrderBook(tick=s.tick, price_band=s.band, band_mode=s.band_mode)
    trades: list[tuple[int, int, int, int]] = []
    for i in range(len(s.side)):
        if not scalar:
            step = book.submit_many(
                [s.side[i]],
                [s.price[i]],
                [s.qty[i]],
                order_type=[s.order_type[i]],
                cancel_of=[s.cancel_of[i]],
                owner=[s.owner[i]],
            )
        elif s.order_type[i] == OrderType.CANCEL:
            step = book.cancel(s.cancel_of[i], depth=None)
        else:
            step = book.submit(
                s.side[i],
                s.price[i],
                s.qty[i],
                order_type=s.order_type[i],
                owner=s.owner[i],
                depth=None,
            )
        trades += trade_tuples(step)
        snap = step.book
        if snap.bid_price.size and snap.ask_price.size:
            assert snap.best_bid < snap.ask_price.min()
        assert (np.diff(snap.bid_price) < 0).all()
        assert (np.diff(snap.ask_price) > 0).all()
        assert (snap.bid_qty > 0).all()
        assert (snap.ask_qty > 0).all()
        np.testing.assert_equal(book.best_bid, snap.best_bid)
        np.testing.assert_equal(book.best_ask, snap.best_ask)
    whole = match_stream(**s.kwargs())  # type: ignore[arg-type]
    assert trades == trade_tuples(whole)
    final = book.orders()
    for name in final.__dataclass_fields__:
        got, want = getattr(final, name), getattr(whole.orders, name)
        if name == "side" and scalar:  # cancel() reports the side of the cancelled order
            keep = final.order_type != OrderType.CANCEL
            got, want = got[keep], want[keep]
        np.testing.assert_array_equal(got, want, err_msg=name)


@given(streams())
def test_price_time_priority(s: Stream) -> None:
    """When an order is filled, no better-ranked order on its side was resting at that time."""
    res = match_stream(**s.kwargs())  # type: ignore[arg-type]
    o, t = res.orders, res.trades
    n = len(o)
    tick = np.where(np.isnan(o.limit_price), 0, np.round(np.nan_to_num(o.limit_price) / s.tick))
    cancelled_at = np.full(n, n)  # event id of the cancel that removed each order
    for i in np.flatnonzero(o.status == OrderStatus.CANCEL_APPLIED):
        cancelled_at[s.cancel_of[i]] = i
    could_rest = (o.order_type == OrderType.LIMIT) & (o.status != OrderStatus.REJECTED)
    filled_before = np.zeros(n, dtype=np.int64)  # fills before the current trade
    for k in range(len(t)):
        a = int(t.event[k])
        r = int(t.sell_order[k] if t.aggressor_side[k] == BUY else t.buy_order[k])
        remaining_own = o.qty - filled_before  # as aggressor, an order fills only in its event
        live = could_rest & (np.arange(n) < a) & (cancelled_at > a) & (remaining_own > 0)
        live &= o.side == o.side[r]
        live[r] = False
        if o.side[r] == SELL:
            better = (tick < tick[r]) | ((tick == tick[r]) & (np.arange(n) < r))
        else:
            better = (tick > tick[r]) | ((tick == tick[r]) & (np.arange(n) < r))
        assert not (live & better).any(), f"trade {k} skipped {np.flatnonzero(live & better)}"
        filled_before[t.buy_order[k]] += t.qty[k]
        filled_before[t.sell_order[k]] += t.qty[k]
