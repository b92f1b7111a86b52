"""Continuous double auction order book: hand-worked sequences and input validation."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

from carbonsim._registry import UnknownPluginError
from carbonsim.clearing.order_book import (
    BUY,
    ORDER_BOOK_BACKENDS,
    SELL,
    BookResult,
    OrderBook,
    OrderStatus,
    OrderType,
    match_stream,
)

NAN = float("nan")
OPEN, FILLED, CANCELLED, EXPIRED, REJECTED, APPLIED, IGNORED = (
    OrderStatus.OPEN,
    OrderStatus.FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.EXPIRED,
    OrderStatus.REJECTED,
    OrderStatus.CANCEL_APPLIED,
    OrderStatus.CANCEL_IGNORED,
)


def trade_rows(res: BookResult) -> list[tuple[int, int, float, int]]:
    t = res.trades
    return list(
        zip(
            t.buy_order.tolist(),
            t.sell_order.tolist(),
            t.price.tolist(),
            t.qty.tolist(),
            strict=True,
        )
    )


def check_conservation(res: BookResult) -> None:
    o = res.orders
    np.testing.assert_array_equal(o.qty, o.filled + o.resting + o.cancelled + o.rejected)


# --------------------------------------------------------------------------------------------
# Hand-worked sequences
# --------------------------------------------------------------------------------------------


def test_orders_that_do_not_cross_rest() -> None:
    res = match_stream(["buy", "sell", "buy"], [49.9, 50.1, 49.8], [10, 20, 30])
    assert len(res.trades) == 0
    assert res.orders.status.tolist() == [OPEN, OPEN, OPEN]
    assert res.orders.resting.tolist() == [10, 20, 30]
    assert res.book.best_bid == 49.9
    assert res.book.best_ask == 50.1
    assert res.book.bid_price.tolist() == [49.9, 49.8]
    assert res.book.bid_qty.tolist() == [10, 30]
    assert res.book.ask_price.tolist() == [50.1]
    assert res.book.ask_orders.tolist() == [1]


def test_crossing_buy_trades_at_resting_ask_price() -> None:
    res = match_stream(["sell", "buy"], [50.0, 50.3], [10, 10])
    assert trade_rows(res) == [(1, 0, 50.0, 10)]
    assert res.trades.aggressor_side.tolist() == [BUY]
    assert res.trades.event.tolist() == [1]
    assert res.trades.seq.tolist() == [0]
    assert res.trades.price_tick.tolist() == [5000]
    assert res.orders.status.tolist() == [FILLED, FILLED]
    assert np.isnan(res.book.best_bid)
    assert np.isnan(res.book.best_ask)


def test_crossing_sell_trades_at_resting_bid_price() -> None:
    res = match_stream(["buy", "sell"], [50.3, 50.0], [10, 4])
    assert trade_rows(res) == [(0, 1, 50.3, 4)]
    assert res.trades.aggressor_side.tolist() == [SELL]
    assert res.orders.resting.tolist() == [6, 0]
    assert res.orders.filled.tolist() == [4, 4]


def test_partial_fill_of_aggressor_rests_remainder_at_its_limit() -> None:
    res = match_stream(["sell", "buy"], [50.0, 50.2], [30, 100])
    assert trade_rows(res) == [(1, 0, 50.0, 30)]
    assert res.orders.status.tolist() == [FILLED, OPEN]
    assert res.orders.resting.tolist() == [0, 70]
    assert res.book.best_bid == 50.2
    assert res.book.bid_qty.tolist() == [70]


def test_price_time_priority() -> None:
    # Asks: id0 50.0 x10, id1 50.0 x10, id2 49.9 x10 (better price, later).
    # A buy of 25 at 50.0 takes id2 (best price) then id0 (earlier at 50.0) then 5 of id1.
    res = match_stream(["sell", "sell", "sell", "buy"], [50.0, 50.0, 49.9, 50.0], [10, 10, 10, 25])
    assert trade_rows(res) == [(3, 2, 49.9, 10), (3, 0, 50.0, 10), (3, 1, 50.0, 5)]
    assert res.orders.resting.tolist() == [0, 5, 0, 0]
    assert res.trades.seq.tolist() == [0, 1, 2]


def test_time_priority_among_bids() -> None:
    res = match_stream(["buy", "buy", "buy", "sell"], [50.0, 50.1, 50.1, 49.0], [5, 5, 5, 12])
    # Best bid 50.1 (id1 then id2 by time), then 50.0 (id0).
    assert trade_rows(res) == [(1, 3, 50.1, 5), (2, 3, 50.1, 5), (0, 3, 50.0, 2)]


def test_cancel_of_partly_filled_order() -> None:
    res = match_stream(
        ["sell", "buy", "buy", "buy"],
        [50.0, 50.0, NAN, 50.0],
        [100, 30, 0, 10],
        order_type=["limit", "limit", "cancel", "limit"],
        cancel_of=[-1, -1, 0, -1],
    )
    assert trade_rows(res) == [(1, 0, 50.0, 30)]
    o = res.orders
    assert o.status.tolist() == [CANCELLED, FILLED, APPLIED, OPEN]
    assert o.filled.tolist() == [30, 30, 0, 0]
    assert o.cancelled.tolist() == [70, 0, 0, 0]
    assert o.qty.tolist() == [100, 30, 0, 10]
    assert res.book.ask_qty.size == 0
    check_conservation(res)


def test_cancel_in_the_middle_of_a_level_keeps_fifo() -> None:
    res = match_stream(
        ["buy", "buy", "buy", "buy", "sell"],
        [50.0, 50.0, 50.0, NAN, 50.0],
        [1, 2, 3, 0, 4],
        order_type=["limit", "limit", "limit", "cancel", "limit"],
        cancel_of=[-1, -1, -1, 1, -1],
    )
    assert trade_rows(res) == [(0, 4, 50.0, 1), (2, 4, 50.0, 3)]
    assert res.orders.status.tolist() == [FILLED, CANCELLED, FILLED, APPLIED, FILLED]


def test_cancels_that_find_nothing_are_ignored_and_reported() -> None:
    res = match_stream(
        ["sell", "buy", "buy", "buy", "buy", "buy", "sell"],
        [50.0, 50.0, NAN, NAN, NAN, NAN, 51.0],
        [10, 10, 0, 0, 0, 5, 3],
        order_type=["limit", "limit", "cancel", "cancel", "cancel", "market", "limit"],
        cancel_of=[-1, -1, 0, 2, 1, -1, -1],
    )
    # id0 and id1 fill each other; a cancel of a filled order or of a cancel is ignored.
    assert res.orders.status.tolist()[2:5] == [IGNORED, IGNORED, IGNORED]
    assert res.orders.status.tolist()[5] == EXPIRED
    assert res.orders.status.tolist()[6] == OPEN
    check_conservation(res)


def test_cancel_twice_and_cancel_of_market_order_are_ignored() -> None:
    book = OrderBook()
    book.submit("buy", 50.0, 10)
    assert book.cancel(0).orders.status.tolist() == [APPLIED]
    assert book.cancel(0).orders.status.tolist() == [IGNORED]
    book.submit("sell", None, 5, order_type="market")
    assert book.cancel(3).orders.status.tolist() == [IGNORED]
    assert book.orders([0]).status.tolist() == [CANCELLED]
    assert book.orders([0]).cancelled.tolist() == [10]


def test_market_order_sweeps_levels_and_remainder_expires() -> None:
    res = match_stream(
        ["sell", "sell", "sell", "buy"],
        [50.0, 50.1, 50.2, NAN],
        [10, 10, 10, 35],
        order_type=["limit", "limit", "limit", "market"],
    )
    assert trade_rows(res) == [(3, 0, 50.0, 10), (3, 1, 50.1, 10), (3, 2, 50.2, 10)]
    o = res.orders
    assert o.status.tolist() == [FILLED, FILLED, FILLED, EXPIRED]
    assert o.filled[3] == 30
    assert o.cancelled[3] == 5
    assert np.isnan(o.limit_price[3])
    assert res.book.bid_qty.size == 0  # a market remainder never rests
    check_conservation(res)


def test_market_sell_fully_filled() -> None:
    res = match_stream(
        ["buy", "buy", "sell"], [50.0, 49.0, NAN], [10, 10, 15], order_type=[0, 0, 1]
    )
    assert trade_rows(res) == [(0, 2, 50.0, 10), (1, 2, 49.0, 5)]
    assert res.orders.status.tolist() == [FILLED, OPEN, FILLED]


def test_market_order_into_empty_book_expires() -> None:
    res = match_stream(["buy"], [NAN], [5], order_type="market")
    assert len(res.trades) == 0
    assert res.orders.status.tolist() == [EXPIRED]
    assert res.orders.cancelled.tolist() == [5]


def test_band_reject() -> None:
    res = match_stream(
        ["buy", "sell", "sell", "buy", "buy"],
        [44.99, 55.01, 55.0, 45.0, NAN],
        [10, 10, 10, 10, 4],
        order_type=["limit", "limit", "limit", "limit", "market"],
        price_band=(45.0, 55.0),
        band_mode="reject",
    )
    o = res.orders
    assert o.status.tolist() == [REJECTED, REJECTED, OPEN, OPEN, FILLED]
    assert o.rejected.tolist() == [10, 10, 0, 0, 0]
    assert o.filled.tolist() == [0, 0, 4, 0, 4]
    assert trade_rows(res) == [(4, 2, 55.0, 4)]  # the market order is never rejected
    assert res.book.bid_price.tolist() == [45.0]  # band edges are inside the band
    check_conservation(res)


def test_band_clip() -> None:
    res = match_stream(
        ["sell", "buy", "buy"],
        [40.0, 60.0, 50.0],
        [10, 4, 3],
        price_band=(45.0, 55.0),
        band_mode="clip",
    )
    assert res.orders.limit_price.tolist() == [45.0, 55.0, 50.0]
    assert res.orders.status.tolist() == [OPEN, FILLED, FILLED]
    assert trade_rows(res) == [(1, 0, 45.0, 4), (2, 0, 45.0, 3)]
    assert res.orders.rejected.tolist() == [0, 0, 0]


def test_band_edges_snap_inward_to_the_tick_grid() -> None:
    res = match_stream(
        ["buy", "buy", "sell", "sell"],
        [45.0, 45.01, 55.0, 54.99],
        [1, 1, 1, 1],
        price_band=(45.004, 54.996),
    )
    assert res.orders.status.tolist() == [REJECTED, OPEN, REJECTED, OPEN]
    clipped = match_stream(["buy"], [60.0], [1], price_band=(45.004, 54.996), band_mode="clip")
    assert clipped.orders.limit_price.tolist() == [54.99]


def test_plus_minus_ten_percent_band_around_reference_price() -> None:
    ref = 80.0
    res = match_stream(
        ["sell", "sell", "buy"],
        [87.99, 88.01, 88.0],
        [1, 1, 5],
        price_band=(0.9 * ref, 1.1 * ref),
    )
    assert res.orders.status.tolist() == [FILLED, REJECTED, OPEN]
    assert res.trades.price.tolist() == [87.99]


def test_empty_stream() -> None:
    res = match_stream([], [], [])
    assert len(res.trades) == 0
    assert len(res.orders) == 0
    assert res.trades.price.dtype == np.float64
    assert res.trades.qty.dtype == np.int64
    assert res.orders.status.dtype == np.int8
    assert np.isnan(res.book.best_bid)
    assert np.isnan(res.book.best_ask)
    assert res.book.bid_price.shape == (0,)
    book = OrderBook()
    assert len(book.submit_many([], [], []).orders) == 0
    assert book.n_events == 0


def test_prices_round_to_nearest_tick_not_floor() -> None:
    res = match_stream(["buy", "buy", "buy"], [50.006, 50.004, 50.0149], [1, 1, 1])
    assert res.orders.limit_price.tolist() == [50.01, 50.0, 50.01]
    assert res.book.bid_price.tolist() == [50.01, 50.0]
    assert res.book.bid_orders.tolist() == [2, 1]


def test_coarse_tick_and_float_whole_quantities() -> None:
    res = match_stream(["sell", "buy"], [50.26, 50.2], [10.0, 4.0], tick=0.05)
    assert res.orders.limit_price.tolist() == [50.25, 50.2]
    assert res.orders.qty.tolist() == [10, 4]
    assert len(res.trades) == 0


def test_codes_and_strings_are_interchangeable() -> None:
    a = match_stream(
        ["Buy", "SELL", "sell", "buy"],
        [50.0, 50.0, NAN, NAN],
        [5, 3, 0, 1],
        order_type=["LIMIT", "limit", "cancel", "Market"],
        cancel_of=[-1, -1, 0, -1],
    )
    b = match_stream(
        np.array([BUY, SELL, SELL, BUY]),
        [50.0, 50.0, NAN, NAN],
        [5, 3, 0, 1],
        order_type=[OrderType.LIMIT, OrderType.LIMIT, OrderType.CANCEL, OrderType.MARKET],
        cancel_of=[-1, -1, 0, -1],
    )
    assert trade_rows(a) == trade_rows(b) == [(0, 1, 50.0, 3)]
    np.testing.assert_array_equal(a.orders.status, b.orders.status)
    assert a.orders.status.tolist() == [CANCELLED, FILLED, APPLIED, EXPIRED]


def test_owners_are_reported_on_trades() -> None:
    res = match_stream(["sell", "sell", "buy"], [50.0, 50.0, 50.0], [1, 1, 2], owner=[7, 8, 3])
    assert res.trades.sell_owner.tolist() == [7, 8]
    assert res.trades.buy_owner.tolist() == [3, 3]
    plain = match_stream(["sell", "buy"], [50.0, 50.0], [1, 1])
    assert plain.trades.buy_owner.tolist() == [-1]


def test_results_are_read_only() -> None:
    res = match_stream(["sell", "buy"], [50.0, 50.0], [1, 1])
    with pytest.raises(ValueError, match="read-only"):
        res.trades.qty[0] = 5
    with pytest.raises(ValueError, match="read-only"):
        res.orders.filled[0] = 5
    with pytest.raises(AttributeError):
        res.trades = res.trades  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# The incremental book
# --------------------------------------------------------------------------------------------


def test_interactive_book_keeps_global_ids_and_sequence() -> None:
    book = OrderBook(tick=0.01)
    r0 = book.submit("sell", 50.0, 10, owner=1)
    assert r0.orders.order_id.tolist() == [0]
    r1 = book.submit("sell", 50.1, 10, owner=2)
    assert book.best_ask == 50.0
    assert np.isnan(book.best_bid)
    r2 = book.submit("buy", 50.1, 15, owner=3)
    assert r2.orders.order_id.tolist() == [2]
    assert trade_rows(r2) == [(2, 0, 50.0, 10), (2, 1, 50.1, 5)]
    assert r2.trades.sell_owner.tolist() == [1, 2]
    assert r2.trades.seq.tolist() == [0, 1]
    # Order 1 was reported OPEN when submitted; its later fill shows in orders().
    assert r1.orders.status.tolist() == [OPEN]
    assert book.orders([1]).filled.tolist() == [5]
    r3 = book.submit_many(
        ["buy", "buy"], [NAN, NAN], [3, 0], order_type=["market", "cancel"], cancel_of=[-1, 1]
    )
    assert r3.trades.seq.tolist() == [2]
    assert r3.orders.order_id.tolist() == [3, 4]
    assert r3.orders.status.tolist() == [FILLED, APPLIED]
    assert book.orders([1]).status.tolist() == [CANCELLED]
    assert book.n_events == 5
    assert book.n_trades == 3
    assert book.orders().status.tolist() == [FILLED, CANCELLED, FILLED, FILLED, APPLIED]
    assert r0.orders.status.tolist() == [OPEN]  # a result is a record of its call


def test_chunked_submission_equals_one_stream() -> None:
    rng = np.random.default_rng(3)
    n = 400
    side = rng.choice(["buy", "sell"], n)
    price = np.round(50 + rng.normal(0, 0.05, n), 2)
    qty = rng.integers(1, 20, n)
    otype = np.where(rng.random(n) < 0.1, "cancel", "limit")
    otype[0] = "limit"
    cancel_of = np.where(otype == "cancel", rng.integers(0, np.maximum(np.arange(n), 1)), -1)
    whole = match_stream(side, price, qty, order_type=otype, cancel_of=cancel_of)
    book = OrderBook()
    parts = [
        book.submit_many(
            side[a:b], price[a:b], qty[a:b], order_type=otype[a:b], cancel_of=cancel_of[a:b]
        )
        for a, b in ((0, 1), (1, 150), (150, 151), (151, 400))
    ]
    assert sum(len(p.trades) for p in parts) == len(whole.trades)
    for name in ("seq", "buy_order", "sell_order", "price_tick", "qty", "aggressor_side"):
        joined = np.concatenate([getattr(p.trades, name) for p in parts])
        np.testing.assert_array_equal(joined, getattr(whole.trades, name), err_msg=name)
    final = book.orders()
    for name in ("status", "filled", "resting", "cancelled", "rejected", "limit_price"):
        np.testing.assert_array_equal(getattr(final, name), getattr(whole.orders, name))
    np.testing.assert_array_equal(parts[-1].book.bid_qty, whole.book.bid_qty)
    np.testing.assert_array_equal(parts[-1].book.ask_price, whole.book.ask_price)


def test_snapshot_depth() -> None:
    book = OrderBook()
    book.submit_many(["buy"] * 3 + ["sell"] * 3, [49, 48, 47, 51, 52, 53], [1, 2, 3, 4, 5, 6])
    snap = book.snapshot(depth=2)
    assert snap.bid_price.tolist() == [49.0, 48.0]
    assert snap.ask_qty.tolist() == [4, 5]
    assert book.snapshot(depth=0).bid_price.size == 0
    assert book.snapshot().ask_price.tolist() == [51.0, 52.0, 53.0]


def test_market_price_is_ignored_by_submit() -> None:
    book = OrderBook()
    book.submit("sell", 50.0, 3)
    r = book.submit("buy", "anything", 2, order_type="market")  # type: ignore[arg-type]
    assert trade_rows(r) == [(1, 0, 50.0, 2)]
    assert np.isnan(r.orders.limit_price[0])


def test_submit_reports_five_levels_by_default() -> None:
    book = OrderBook()
    r = book.submit_many(["sell"] * 7, [50 + k for k in range(7)], [1] * 7)
    assert r.book.ask_price.size == 7
    assert book.submit("buy", 40.0, 1).book.ask_price.tolist() == [50, 51, 52, 53, 54]
    assert book.submit("buy", 40.0, 1, depth=None).book.ask_price.size == 7
    assert book.cancel(0, depth=1).book.ask_price.tolist() == [51.0]
    assert book.submit_many(["buy"], [39.0], [1], depth=2).book.bid_qty.tolist() == [2, 1]


def test_book_properties() -> None:
    book = OrderBook(tick=0.05, price_band=(9.0, 11.0), band_mode="clip")
    assert book.tick == 0.05
    assert book.price_band == (9.0, 11.0)
    assert book.band_mode == "clip"
    assert book.submit("buy", 20.0, 1).orders.limit_price.tolist() == [11.0]


def test_invalid_input_leaves_the_book_unchanged() -> None:
    book = OrderBook()
    book.submit("sell", 50.0, 10)
    with pytest.raises(ValueError, match="price"):
        book.submit_many(["buy", "buy"], [50.0, NAN], [5, 5])
    assert book.n_events == 1
    assert book.snapshot().ask_qty.tolist() == [10]


def test_backend_registry_lists_the_backends() -> None:
    assert ORDER_BOOK_BACKENDS.names() == ["numba", "python"]


# --------------------------------------------------------------------------------------------
# Validation: every bad input names its argument
# --------------------------------------------------------------------------------------------

GOOD = {"side": ["buy", "sell"], "price": [50.0, 50.0], "qty": [1, 1]}


@pytest.mark.parametrize(
    ("override", "exc", "match"),
    [
        ({"price": [50.0, NAN]}, ValueError, r"price\[1\] = nan"),
        ({"price": [np.inf, 50.0]}, ValueError, r"price must be finite"),
        ({"price": [-1.0, 50.0]}, ValueError, r"price must be > 0"),
        ({"price": [0.0, 50.0]}, ValueError, r"price must be > 0"),
        ({"price": [0.004, 50.0]}, ValueError, r"price\[0\] = 0.004 rounds to 0 ticks"),
        ({"price": [1e300, 50.0]}, ValueError, r"price\[0\] = 1e\+300 is too large"),
        ({"price": ["50", "50"]}, TypeError, r"price must be an array of real numbers"),
        ({"price": [[50.0, 50.0]]}, ValueError, r"price must be 1-dimensional"),
        ({"qty": [1, -2]}, ValueError, r"qty must be >= 0"),
        ({"qty": [1, NAN]}, ValueError, r"qty must be finite"),
        ({"qty": [1, np.inf]}, ValueError, r"qty must be finite"),
        ({"qty": [1, 2.5]}, TypeError, r"qty must hold whole numbers"),
        ({"qty": [1, 0]}, ValueError, r"qty must be >= 1 for limit and market orders"),
        ({"qty": ["1", "1"]}, TypeError, r"qty must be an array of integers"),
        ({"qty": [1, 1, 1]}, ValueError, r"same length, got side=2, price=2, qty=3"),
        ({"price": [50.0]}, ValueError, r"same length, got side=2, price=1"),
        ({"side": ["buy", "hold"]}, ValueError, r"side\[1\] = 'hold' is not valid"),
        ({"side": [1, 0]}, ValueError, r"side\[1\] = 0 is not valid"),
        ({"side": [1.0, -1.0]}, TypeError, r"side must hold the names"),
        ({"side": [True, False]}, TypeError, r"side must hold the names"),
        ({"side": "buy"}, ValueError, r"side must be 1-dimensional"),
        ({"order_type": ["limit", "stop"]}, ValueError, r"order_type\[1\] = 'stop' is not"),
        ({"order_type": [0, 7]}, ValueError, r"order_type\[1\] = 7 is not valid"),
        ({"order_type": ["limit"]}, ValueError, r"same length, got side=2, order_type=1"),
        ({"order_type": ["limit", "cancel"]}, ValueError, r"cancel_of is required"),
        (
            {"order_type": ["limit", "cancel"], "cancel_of": [-1, 1]},
            ValueError,
            r"cancel_of\[1\] = 1 must be the id of an earlier event",
        ),
        (
            {"order_type": ["limit", "cancel"], "cancel_of": [-1, 5]},
            ValueError,
            r"cancel_of\[1\] = 5 must be the id of an earlier event",
        ),
        (
            {"order_type": ["limit", "cancel"], "cancel_of": [-1, -1]},
            ValueError,
            r"cancel_of\[1\] = -1 must be the id",
        ),
        ({"cancel_of": [-1, 0]}, ValueError, r"cancel_of\[1\] = 0 but order_type\[1\]"),
        ({"cancel_of": [-1, -3]}, ValueError, r"cancel_of must be >= -1"),
        ({"cancel_of": [-1, 0.5]}, TypeError, r"cancel_of must hold whole numbers"),
        ({"cancel_of": [-1]}, ValueError, r"same length, got side=2, cancel_of=1"),
        ({"owner": [0, -2]}, ValueError, r"owner must be >= -1"),
        ({"owner": [0]}, ValueError, r"same length, got side=2, owner=1"),
        ({"tick": 0.0}, ValueError, r"tick must be > 0"),
        ({"tick": -0.01}, ValueError, r"tick must be > 0"),
        ({"tick": NAN}, ValueError, r"tick must be finite"),
        ({"tick": "0.01"}, TypeError, r"tick must be a real number"),
        ({"price_band": (55.0, 45.0)}, ValueError, r"price_band must satisfy lo <= hi"),
        ({"price_band": (45.0,)}, ValueError, r"price_band must have exactly two entries"),
        ({"price_band": (NAN, 55.0)}, ValueError, r"price_band\[0\] must be finite"),
        ({"price_band": (45.001, 45.009)}, ValueError, r"price_band=.* contains no price"),
        ({"price_band": "45-55"}, TypeError, r"price_band must be a pair"),
        ({"price_band": (1.0, 1e300)}, ValueError, r"price_band\[1\] is too large"),
        ({"band_mode": "wrap"}, ValueError, r"band_mode must be one of 'reject', 'clip'"),
        ({"band_mode": None}, ValueError, r"band_mode must be one of"),
        ({"backend": "cuda"}, UnknownPluginError, r"unknown order book backend 'cuda'"),
    ],
)
def test_bad_input_names_the_argument(
    override: dict[str, object], exc: type[Exception], match: str
) -> None:
    kwargs = {**GOOD, **override}
    with pytest.raises(exc, match=match):
        match_stream(**kwargs)  # type: ignore[arg-type]


def test_book_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="band_mode must be one of"):
        OrderBook(band_mode="nope")
    with pytest.raises(ValueError, match="tick must be > 0"):
        OrderBook(tick=0.0)
    with pytest.raises(ValueError, match="price_band must satisfy lo <= hi"):
        OrderBook(price_band=(2.0, 1.0))
    with pytest.raises(UnknownPluginError, match=r"unknown order book backend 'gpu'"):
        match_stream([], [], [], backend="gpu")


def test_snapshot_and_orders_validate() -> None:
    book = OrderBook()
    with pytest.raises(ValueError, match="depth must be >= 0"):
        book.snapshot(depth=-1)
    with pytest.raises(TypeError, match="depth must hold whole numbers"):
        book.snapshot(depth=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="order_ids must be < n_events = 0"):
        book.orders([0])
    book.submit("buy", 50.0, 1)
    with pytest.raises(ValueError, match="order_ids must be <= 0"):
        book.orders([1])
    with pytest.raises(ValueError, match=r"order_id must be the id of an earlier event"):
        book.cancel(1)
    with pytest.raises(ValueError, match=r"order_id must be >= 0"):
        book.cancel(-1)
    with pytest.raises(TypeError, match=r"order_id must be a whole number"):
        book.cancel("0")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        (("hold", 50.0, 1), {}, ValueError, r"side = 'hold' is not valid"),
        ((0, 50.0, 1), {}, ValueError, r"side = 0 is not valid"),
        ((True, 50.0, 1), {}, TypeError, r"side must be one of"),
        ((1.0, 50.0, 1), {}, TypeError, r"side must be one of"),
        (("buy", NAN, 1), {}, ValueError, r"price must be finite"),
        (("buy", None, 1), {}, TypeError, r"price must be a real number"),
        (("buy", "50", 1), {}, TypeError, r"price must be a real number"),
        (("buy", -5.0, 1), {}, ValueError, r"price must be > 0"),
        (("buy", 0.004, 1), {}, ValueError, r"price = 0.004 rounds to 0 ticks"),
        (("buy", 1e300, 1), {}, ValueError, r"price = 1e\+300 is too large"),
        (("buy", 50.0, 0), {}, ValueError, r"qty must be >= 1"),
        (("buy", 50.0, -3), {}, ValueError, r"qty must be >= 1"),
        (("buy", 50.0, 2.5), {}, TypeError, r"qty must be a whole number"),
        (("buy", 50.0, NAN), {}, ValueError, r"qty must be finite"),
        (("buy", 50.0, "1"), {}, TypeError, r"qty must be a whole number"),
        (("buy", 50.0, True), {}, TypeError, r"qty must be a whole number"),
        (("buy", 50.0, 1), {"order_type": "stop"}, ValueError, r"order_type = 'stop'"),
        (("buy", 50.0, 1), {"order_type": 9}, ValueError, r"order_type = 9 is not valid"),
        (("buy", 50.0, 1), {"order_type": "cancel"}, ValueError, r"use cancel\(order_id\)"),
        (("buy", 50.0, 1), {"owner": -2}, ValueError, r"owner must be >= -1"),
        (("buy", 50.0, 1), {"owner": 0.5}, TypeError, r"owner must be a whole number"),
        (("buy", 50.0, 1), {"depth": -1}, ValueError, r"depth must be >= 0"),
    ],
)
def test_submit_validates_like_submit_many(
    args: tuple[object, ...], kwargs: dict[str, object], exc: type[Exception], match: str
) -> None:
    book = OrderBook()
    with pytest.raises(exc, match=match):
        book.submit(*args, **kwargs)  # type: ignore[arg-type]
    if "depth" not in kwargs and kwargs.get("order_type") != "cancel":
        # The array entry point refuses the same order, naming the same argument.
        name = match.split()[0]  # the argument the message starts with
        many = {k: [v] for k, v in kwargs.items()}
        with pytest.raises((ValueError, TypeError), match=name):
            book.submit_many(*([a] for a in args), **many)  # type: ignore[arg-type]
    assert book.n_events == 0


# --------------------------------------------------------------------------------------------
# The compiled backend
# --------------------------------------------------------------------------------------------


def test_numba_backend_matches_python_on_a_random_stream() -> None:
    pytest.importorskip("numba")
    rng = np.random.default_rng(11)
    n = 3000
    side = rng.choice([BUY, SELL], n)
    price = np.round(50 + rng.normal(0, 0.1, n), 2)
    qty = rng.integers(1, 50, n)
    u = rng.random(n)
    otype = np.select([u < 0.05, u < 0.1], [OrderType.MARKET, OrderType.CANCEL], OrderType.LIMIT)
    otype[0] = OrderType.LIMIT
    cancel_of = np.where(
        otype == OrderType.CANCEL, rng.integers(0, np.maximum(np.arange(n), 1)), -1
    )
    owner = rng.integers(0, 9, n)
    kw: dict[str, Any] = {
        "order_type": otype,
        "cancel_of": cancel_of,
        "owner": owner,
        "price_band": (49.85, 50.15),
    }
    for mode in ("reject", "clip"):
        a = match_stream(side, price, qty, band_mode=mode, backend="python", **kw)
        b = match_stream(side, price, qty, band_mode=mode, backend="numba", **kw)
        assert len(a.trades) > 100
        for part in ("trades", "orders", "book"):
            x, y = getattr(a, part), getattr(b, part)
            for f in x.__dataclass_fields__:
                np.testing.assert_array_equal(getattr(x, f), getattr(y, f), err_msg=f"{part}.{f}")


def test_numba_backend_without_numba_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonsim.clearing import _order_book_numba

    monkeypatch.setattr(_order_book_numba, "_KERNEL", None)  # forget a compiled kernel
    monkeypatch.setitem(sys.modules, "numba", None)  # and make `import numba` fail
    with pytest.raises(ModuleNotFoundError, match=r"backend='numba' needs the optional numba"):
        match_stream(["buy"], [50.0], [1], backend="numba")


# ------------------------------------------------------- attacks that got through (#21, 7)

B53 = 2**53


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_a_stream_totalling_2_53_is_refused(backend: str) -> None:
    # two resting sells of 2**62 t: the compiled backend's snapshot wrapped to -2**63, the
    # Python one raised OverflowError after matching
    with pytest.raises(ValueError) as info:
        match_stream(["sell", "sell"], [50.0, 50.0], [2**62, 2**62], backend=backend)
    msg = str(info.value)
    assert msg.startswith("qty: the orders would total 9223372036854775808 t in this book")
    assert "at or above 2**53 = 9007199254740992 t" in msg
    assert "spread the orders over several books" in msg


def test_a_huge_float_quantity_is_refused_before_any_cast() -> None:
    with pytest.raises(ValueError, match=r"^qty: the orders would total 10000000000000000000 t"):
        match_stream(["buy"], [50.0], [1e19])


def test_a_refused_order_leaves_the_book_unchanged() -> None:
    # submit() of 10**20 t appended the order, then raised OverflowError: the book was
    # half-updated and every later snapshot raised too
    book = OrderBook()
    book.submit("sell", 50.0, 2**52)
    with pytest.raises(ValueError, match="with the 4503599627370496 t submitted before"):
        book.submit("sell", 50.0, 10**20)
    with pytest.raises(ValueError, match="with the 4503599627370496 t submitted before"):
        book.submit_many(["sell", "buy"], [51.0, 49.0], [2**51, 2**51])
    with pytest.raises(ValueError, match=r"owner must be <= 9223372036854775807"):
        book.submit("buy", 49.0, 1, owner=10**20)
    assert book.n_events == 1
    snap = book.snapshot()
    assert snap.ask_qty.tolist() == [2**52]
    assert snap.bid_qty.tolist() == []
    res = book.submit("buy", None, 2**51, order_type="market")
    assert res.trades.qty.tolist() == [2**51]
    assert book.snapshot().ask_qty.tolist() == [2**51]


def test_a_book_just_below_2_53_snapshots_exactly() -> None:
    qty = [B53 // 2, B53 // 2 - 1]  # one level holding 2**53 - 1 t
    for backend in ("python", "numba"):
        if backend == "numba":
            pytest.importorskip("numba")
        res = match_stream(["sell", "sell"], [50.0, 50.0], qty, backend=backend)
        assert res.book.ask_qty.tolist() == [B53 - 1]
