"""The compiled session kernels (``backend="numba"``) equal their numpy counterparts.

Each kernel is compared bit for bit with the numpy code it replaces, on random input that
includes the corners the engine can produce (empty sessions, orders the band rejects,
marginal ties, markets without a reference, sellers whose sales span several vintages,
cells that both buy and sell) and the cases where the kernel hands over to numpy (fractional
quantities, short sellers, forbidden negative cash).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsim._random import BatchRandom, replicate_seeds
from carbonsim.agents.base import BLOCK, LISTED, Orders
from carbonsim.clearing.batch import clear_session
from carbonsim.market.ledger import Ledger, LedgerError

pytest.importorskip("numba")

from carbonsim._random_numba import CompiledBatchRandom
from carbonsim.clearing._session_numba import (
    bands_compiled,
    clear_session_compiled,
    offset_auction_compiled,
)
from carbonsim.engine.backends import session_kernels
from carbonsim.market._ledger_numba import settle_segments_compiled

KERNELS = session_kernels("numba")  # compiles once for the module

# ----------------------------------------------------------------------------- clearing


@st.composite
def sessions(draw: st.DrawFn) -> dict[str, Any]:
    n_markets = draw(st.integers(2, 6))
    n = draw(st.integers(0, 50))
    whole = draw(st.booleans()) or draw(st.booleans())  # the engine's case 3 times in 4
    qty = st.integers(0, 30).map(float) if whole else st.floats(0.0, 10.0)
    ticks = st.integers(4960, 5040)
    lo_t = np.array(draw(st.lists(st.integers(4950, 5010), min_size=n_markets, max_size=n_markets)))
    width = np.array(draw(st.lists(st.integers(0, 40), min_size=n_markets, max_size=n_markets)))
    ref = st.one_of(st.just(np.nan), ticks.map(lambda t: t / 100))
    return {
        "market": np.array(
            draw(st.lists(st.integers(0, n_markets - 1), min_size=n, max_size=n)), np.int64
        ),
        "is_bid": np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool),
        # on the grid, or off it by up to half a tick either way
        "price": np.array(draw(st.lists(ticks, min_size=n, max_size=n)), float) / 100
        + np.array(draw(st.lists(st.sampled_from([0.0, 0.004, -0.003]), min_size=n, max_size=n))),
        "qty": np.array(draw(st.lists(qty, min_size=n, max_size=n)), float),
        "n_markets": n_markets,
        "reference_price": np.array(draw(st.lists(ref, min_size=n_markets, max_size=n_markets))),
        "band": (lo_t / 100, (lo_t + width) / 100 + 0.001),
    }


@given(sessions())
def test_compiled_clearing_equals_clear_session(s: dict[str, Any]) -> None:
    args = (s["market"], s["is_bid"], s["price"], s["qty"])
    kw = {
        "n_markets": s["n_markets"],
        "tick": 0.01,
        "reference_price": s["reference_price"],
        "band": s["band"],
    }
    want = clear_session(*args, **kw)
    got = clear_session_compiled(*args, **kw)
    for name, a, b in zip(("price", "volume", "fill"), want, got, strict=True):
        assert a.tobytes() == b.tobytes(), name


def test_compiled_clearing_rations_marginal_orders_by_largest_remainder() -> None:
    # 10 t offered at 50.00 against bids of 3, 3 and 3 t at 50.00 and 4 t at 50.01:
    # the better bid fills, 6 t are shared 2/2/2 by the three marginal bids
    market = np.zeros(5, np.int64)
    is_bid = np.array([True, True, True, True, False])
    price = np.array([50.0, 50.0, 50.0, 50.01, 50.0])
    qty = np.array([3.0, 3.0, 3.0, 4.0, 10.0])
    kw: dict[str, Any] = {
        "n_markets": 2,
        "tick": 0.01,
        "reference_price": np.array([50.0, 50.0]),
        "band": (np.array([45.0, 45.0]), np.array([55.0, 55.0])),
    }
    price_out, volume, fill = clear_session_compiled(market, is_bid, price, qty, **kw)
    assert price_out[0] == 50.0
    assert volume[0] == 10.0
    assert fill.tolist() == [2.0, 2.0, 2.0, 4.0, 10.0]
    # 7 t offered: 3 t for the marginal bids, one each (equal remainders: earlier first)
    qty[4] = 7.0
    assert clear_session_compiled(market, is_bid, price, qty, **kw)[2].tolist() == [
        1.0,
        1.0,
        1.0,
        4.0,
        7.0,
    ]


@st.composite
def offset_auctions(draw: st.DrawFn) -> dict[str, Any]:
    """One offset class's auctions as the engine builds them: bids around a price common
    to the market, whole-tonne lots offered at scattered prices, cut-off candidates from
    the bids' quantiles (some above every bid, some below), sometimes fractional lots."""
    n_markets = draw(st.integers(1, 4))
    n_bids = draw(st.integers(0, 60))
    n_asks = draw(st.integers(0, 25))
    centre = draw(st.floats(20.0, 80.0))
    ints = st.integers
    whole = draw(st.booleans()) or draw(st.booleans())
    ask_qty = ints(1, 400).map(float) if whole else st.floats(0.5, 400.0)

    def market(n: int) -> np.ndarray:
        return np.array(draw(st.lists(ints(0, n_markets - 1), min_size=n, max_size=n)), np.int64)

    def prices(n: int, spread: float) -> np.ndarray:
        offs = draw(st.lists(st.floats(-spread, spread), min_size=n, max_size=n))
        return centre + np.array(offs, float)

    levels = np.rint(
        centre * np.exp(0.05 * np.array([3.0, 2.0, 1.0, 0.0, -1.0]))[:, None] / 0.01
    ) - draw(ints(-50, 300))
    return {
        "bid_market": market(n_bids),
        "bid_price": prices(n_bids, 6.0),
        "bid_qty": np.array(draw(st.lists(ints(1, 500), min_size=n_bids, max_size=n_bids)), float),
        "ask_market": market(n_asks),
        "ask_price": prices(n_asks, 10.0),
        "ask_qty": np.array(draw(st.lists(ask_qty, min_size=n_asks, max_size=n_asks)), float),
        "n_markets": n_markets,
        "tick": 0.01,
        "levels": np.repeat(levels, n_markets, axis=1),
    }


@given(offset_auctions())
def test_compiled_offset_auction_equals_numpy(a: dict[str, Any]) -> None:
    from carbonsim.engine.simulation import clear_offset_bids

    want = clear_offset_bids(**a)
    got = offset_auction_compiled(**a)
    for name, x, y in zip(("price", "volume", "bid_fill"), want, got, strict=True):
        assert x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name


def test_offset_cutoff_leaves_out_only_bids_that_cannot_fill() -> None:
    # 10 t on offer at 40; bids of 6 t at 60, 6 t at 55 and 50 t at 45: demand at 55 and
    # above (12 t) already passes the supply, so the 45 bid is cut and changes nothing
    from carbonsim.clearing import call_auction_batch
    from carbonsim.engine.simulation import clear_offset_bids

    bids = (np.zeros(3, np.int64), np.array([60.0, 55.0, 45.0]), np.array([6.0, 6.0, 50.0]))
    asks = (np.zeros(1, np.int64), np.array([40.0]), np.array([10.0]))
    levels = np.array([[5500.0], [4500.0]])
    price, volume, fill = clear_offset_bids(*bids, *asks, n_markets=1, tick=0.01, levels=levels)
    full = call_auction_batch(
        [0, 0, 0, 0], [1, 1, 1, -1], [60.0, 55.0, 45.0, 40.0], [6, 6, 50, 10], n_markets=1
    )
    assert price.tolist() == full.price.tolist() == [55.0]
    assert volume.tolist() == [10.0]
    assert fill.tolist() == full.fill[:3].tolist() == [6.0, 4.0, 0.0]
    compiled = offset_auction_compiled(*bids, *asks, n_markets=1, tick=0.01, levels=levels)
    for x, y in zip((price, volume, fill), compiled, strict=True):
        assert x.tobytes() == y.tobytes()


@given(
    st.lists(st.floats(0.05, 5000.0), min_size=1, max_size=5),
    st.floats(0.0, 0.5),
    st.floats(0.0, 0.5),
    st.sampled_from([0.01, 0.05, 1.0, 1 / 3]),
    st.one_of(st.none(), st.floats(0.0, 200.0)),
    st.one_of(st.none(), st.floats(10.0, 4000.0)),
)
def test_compiled_session_bands_equal_numpy(
    reference: list[float],
    listed: float,
    block: float,
    tick: float,
    floor: float | None,
    ceiling: float | None,
) -> None:
    from carbonsim.engine.simulation import session_bands

    if floor is not None and ceiling is not None and floor > ceiling:
        floor, ceiling = ceiling, floor
    ref = np.array(reference)
    want = session_bands(ref, listed, block, tick, floor, ceiling)
    got = bands_compiled(ref, listed, block, tick, floor, ceiling)
    for a, b in zip(want, got, strict=True):
        assert a.tobytes() == b.tobytes()


# ----------------------------------------------------------------------------- random draws


@settings(max_examples=40)
@given(
    st.integers(1, 6),
    st.integers(1, 300),
    st.sampled_from([0.0, 1e-3, 0.02, 0.5, 0.97, 1.0]),
    st.integers(0, 5),
)
def test_compiled_random_draws_equal_numpy(r: int, n: int, p: float, skip: int) -> None:
    seeds = replicate_seeds(7, r)
    a, b = BatchRandom(seeds), CompiledBatchRandom(seeds)
    for _ in range(skip):  # both counters advance alike
        a.random((r, 3))
        b.random((r, 3))
    rows, cols = a.bernoulli_cells((r, n), p)
    rows_c, cols_c = b.bernoulli_cells((r, n), p)
    assert rows.tolist() == rows_c.tolist()
    assert cols.tolist() == cols_c.tolist()
    assert rows_c.dtype == rows.dtype
    assert cols_c.dtype == cols.dtype
    where = (rows, cols)
    assert a.standard_normal((r, n), where=where).tobytes() == (
        b.standard_normal((r, n), where=where).tobytes()
    )
    assert a.random((r, n), where=where).tobytes() == b.random((r, n), where=where).tobytes()
    assert a.bernoulli((r, n), 0.5, where=where).tolist() == (
        b.bernoulli((r, n), 0.5, where=where).tolist()
    )
    assert a.draws == b.draws
    sub_a, sub_b = a.subset([r - 1]), b.subset([r - 1])
    assert isinstance(sub_b, CompiledBatchRandom)
    assert sub_a.random((1, n)).tobytes() == sub_b.random((1, n)).tobytes()


def test_bernoulli_cells_equal_the_nonzero_cells_of_a_full_draw() -> None:
    seeds = replicate_seeds(3, 4)
    mask = BatchRandom(seeds).bernoulli((4, 500), 0.1)
    rows, cols = BatchRandom(seeds).bernoulli_cells((4, 500), 0.1)
    want_rows, want_cols = np.nonzero(mask)
    assert rows.tolist() == want_rows.tolist()
    assert cols.tolist() == want_cols.tolist()
    assert 100 < len(rows) < 300
    with pytest.raises(ValueError, match="2-D draw shape"):
        BatchRandom(seeds).bernoulli_cells((4, 5, 6), 0.1)  # type: ignore[arg-type]


def test_compiled_masked_draw_checks_cells_as_numpy_does() -> None:
    rng = CompiledBatchRandom(replicate_seeds(0, 2))
    for draw in (rng.random, rng.standard_normal, lambda s, where: rng.bernoulli(s, 0.5, where)):
        with pytest.raises(IndexError, match=r"where= columns must lie in \[0, 5\)"):
            draw((2, 5), where=(np.array([0]), np.array([5])))
        with pytest.raises(IndexError, match="out of bounds"):
            draw((2, 5), where=(np.array([2]), np.array([1])))
    with pytest.raises(ValueError, match="number of replicates 2"):
        rng.random((3, 5), where=(np.array([0]), np.array([1])))
    # a negative row counts from the end, as in numpy indexing, with the counter kept
    a, b = BatchRandom(replicate_seeds(0, 2)), CompiledBatchRandom(replicate_seeds(0, 2))
    cells = (np.array([-1, 0]), np.array([3, 3]))
    assert a.random((2, 5), where=cells).tobytes() == b.random((2, 5), where=cells).tobytes()
    assert a.random((2, 5)).tobytes() == b.random((2, 5)).tobytes()


# ----------------------------------------------------------------------------- settlement

SEGMENTS = (LISTED, BLOCK)


@st.composite
def trades(draw: st.DrawFn) -> dict[str, Any]:
    """Balanced fills per replicate and segment; cells may buy and sell, in both segments."""
    r = draw(st.integers(1, 3))
    n = draw(st.integers(2, 8))
    v = draw(st.integers(1, 4))
    holdings = np.array(
        draw(st.lists(st.integers(0, 40), min_size=r * n * v, max_size=r * n * v)), np.int64
    ).reshape(r, n, v)
    rows: list[tuple[int, int, bool, float, int]] = []
    for rep in range(r):
        for seg in SEGMENTS:
            sells = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 40)), max_size=3))
            total = sum(q for _, q in sells)
            buyers = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3))
            cuts = sorted(
                draw(
                    st.lists(
                        st.integers(0, total), min_size=len(buyers) - 1, max_size=len(buyers) - 1
                    )
                )
            )
            shares = np.diff([0, *cuts, total])
            rows += [(rep, u, False, float(q), seg) for u, q in sells]
            rows += [(rep, u, True, float(q), seg) for u, q in zip(buyers, shares, strict=True)]
    order = draw(st.permutations(range(len(rows))))
    rows = [rows[i] for i in order]
    prices = draw(st.lists(st.integers(1, 9000), min_size=2 * r, max_size=2 * r))
    return {
        "r": r,
        "n": n,
        "v": v,
        "holdings": holdings,
        "orders": Orders(
            replicate=np.array([x[0] for x in rows], np.int64),
            unit=np.array([x[1] for x in rows], np.int64),
            is_buy=np.array([x[2] for x in rows], bool),
            price=np.full(len(rows), 50.0),
            qty=np.array([x[3] for x in rows], float),
            segment=np.array([x[4] for x in rows], np.int64),
        ),
        "fill": np.array([x[3] for x in rows], float),
        "prices": np.array(prices, float).reshape(2, r) / 100,
        "allow_negative": draw(st.booleans()),
        "allow_negative_cash": draw(st.booleans()),
    }


def _ledger(t: dict[str, Any]) -> Ledger:
    led = Ledger(
        t["r"],
        [f"u{i}" for i in range(t["n"])],
        range(2020, 2020 + t["v"]),
        allow_negative=t["allow_negative"],
        allow_negative_cash=t["allow_negative_cash"],
    )
    for v in range(t["v"]):
        led.allocate(2020 + v, t["holdings"][:, :, v], issue=True)
    led.deposit(np.full((t["r"], t["n"]), 100.0))
    return led


def _numpy_settle(led: Ledger, t: dict[str, Any], s: int, totals: np.ndarray) -> None:
    """The engine's numpy path for segment ``s``: cells of its filled orders, the trusted
    settlement, the period totals."""
    n, o = t["n"], t["orders"]
    ok = (o.segment == SEGMENTS[s]) & (t["fill"] > 0)
    cell, inverse = np.unique(o.replicate[ok] * n + o.unit[ok], return_inverse=True)
    fill, is_buy = t["fill"][ok], o.is_buy[ok]
    buy = np.rint(np.bincount(inverse, np.where(is_buy, fill, 0.0), len(cell))).astype(np.int64)
    sell = np.rint(np.bincount(inverse, np.where(is_buy, 0.0, fill), len(cell))).astype(np.int64)
    if len(cell):
        led._settle_cells_trusted(cell // n, cell % n, buy, sell, t["prices"][s])
        totals[0].reshape(-1)[cell] += buy
        totals[1].reshape(-1)[cell] += sell


def _engine_settle(led: Ledger, t: dict[str, Any], compiled: bool) -> Any:
    """Settle both segments as the engine does; returns the period totals or the error."""
    totals = np.zeros((2, t["r"], t["n"]))
    first = 0
    try:
        if compiled:
            first = settle_segments_compiled(
                led, t["orders"], t["fill"], SEGMENTS, tuple(t["prices"]), totals[0], totals[1]
            )
        for s in range(first, len(SEGMENTS)):
            _numpy_settle(led, t, s, totals)
    except LedgerError as exc:
        return str(exc)
    return totals


@given(trades())
def test_compiled_settlement_equals_numpy(t: dict[str, Any]) -> None:
    a, b = _ledger(t), _ledger(t)
    want, got = _engine_settle(a, t, False), _engine_settle(b, t, True)
    if isinstance(want, str):  # the same error, raised by the numpy path in both
        assert got == want
    else:
        assert want.tobytes() == got.tobytes()
    assert a.allowances.tobytes() == b.allowances.tobytes()
    assert a.cash.tobytes() == b.cash.tobytes()
    ja, jb = a.journal(), b.journal()
    assert ja.equals(jb), (ja, jb)
    a.check()
    b.check()


def _one_seller(holdings: list[list[list[int]]]) -> tuple[dict[str, Any], Ledger]:
    h = np.array(holdings)
    t = {
        "r": 1, "n": h.shape[1], "v": h.shape[2], "allow_negative": False,
        "allow_negative_cash": True, "holdings": h,
    }  # fmt: skip
    return t, _ledger(t)


def test_compiled_settlement_splits_vintages_pro_rata() -> None:
    # seller 0 holds 5 t of 2020 and 20 t of 2021 and sells 15; buyers take 10 and 5
    _, led = _one_seller([[[5, 20], [0, 0], [0, 0]]])
    orders = Orders(
        replicate=np.zeros(3, np.int64),
        unit=np.array([0, 1, 2]),
        is_buy=np.array([False, True, True]),
        price=np.full(3, 50.0),
        qty=np.array([15.0, 10.0, 5.0]),
        segment=np.full(3, LISTED),
    )
    bought, sold = np.zeros((1, 3)), np.zeros((1, 3))
    done = settle_segments_compiled(
        led, orders, orders.qty, SEGMENTS, (np.array([50.0]),) * 2, bought, sold
    )
    assert done == 2
    # pool: 5 t of 2020 and 10 t of 2021, split 2:1: floors 3 + 6 and 1 + 3, the
    # remainders (1 t of each vintage) go north-west corner: the first buyer gets 2020's
    assert led.allowances[0].tolist() == [[0, 10], [4, 6], [1, 4]]
    assert led.cash[0].tolist() == [100.0 + 750.0, 100.0 - 500.0, 100.0 - 250.0]
    assert bought.tolist() == [[0.0, 10.0, 5.0]]
    assert sold.tolist() == [[15.0, 0.0, 0.0]]
    assert led.journal().loc[("settle_cells", 0), "calls"] == 1  # the empty block segment


def test_compiled_settlement_stops_where_the_ledger_refuses() -> None:
    # the block seller holds 3 t but sells 4: the listed trade settles, the block one is
    # left unchanged for the numpy path (which raises the ledger's error)
    _, led = _one_seller([[[10], [3], [0]]])
    orders = Orders(
        replicate=np.zeros(4, np.int64),
        unit=np.array([0, 2, 1, 2]),
        is_buy=np.array([False, True, False, True]),
        price=np.full(4, 50.0),
        qty=np.array([2.0, 2.0, 4.0, 4.0]),
        segment=np.array([LISTED, LISTED, BLOCK, BLOCK]),
    )
    done = settle_segments_compiled(led, orders, orders.qty, SEGMENTS, (np.array([50.0]),) * 2)
    assert done == 1
    assert led.allowances[0].tolist() == [[8], [3], [2]]


# ----------------------------------------------------------------------------- strategies


def _orders_equal(a: Any, b: Any) -> None:
    for f in ("replicate", "unit", "is_buy", "price", "qty", "segment"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype, f
        assert x.tobytes() == y.tobytes(), f


@settings(max_examples=60)
@given(
    st.integers(1, 4),
    st.integers(1, 60),
    st.sampled_from([0, 1, 7, 300]),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 2000.0),
    st.integers(0, 2**31),
)
def test_compiled_strategies_give_the_strategies_orders(
    r: int, n: int, tau: int, rate: float, share: float, min_order: float, seed: int
) -> None:
    from carbonsim.agents import ComplianceTrader, NoiseTrader
    from carbonsim.agents.base import MarketView

    g = np.random.default_rng(seed)
    view = MarketView(
        session=3,
        sessions_to_deadline=tau,
        sessions_in_cycle=300,
        holdings=np.floor(g.lognormal(7, 2, (r, n))) * (g.random((r, n)) < 0.8),
        expected_obligation=g.lognormal(7, 2, (r, n)),
        obligation_certainty=0.5,
        last_close=g.uniform(20, 90, r),
        expected_price=g.uniform(20, 90, r),
        unit_size=g.lognormal(10, 1, n),
        block_threshold=float(g.choice([1.0, 500.0, 1e5])),
    )
    strategies = [
        (ComplianceTrader(base_rate=rate, block_share=share, min_order=min_order), "compliance"),
        (NoiseTrader(activity=rate, size_share=share, min_order=min_order), "noise"),
    ]
    for strategy, name in strategies:
        seeds = replicate_seeds(seed, r)
        a, b = BatchRandom(seeds), CompiledBatchRandom(seeds)
        want = strategy.orders(view, a)
        got = KERNELS.orders[type(strategy)](strategy, view, b)
        _orders_equal(want, got)
        assert a.draws == b.draws, name
        # with the numpy generator too (the compiled functions take any BatchRandom)
        _orders_equal(want, KERNELS.orders[type(strategy)](strategy, view, BatchRandom(seeds)))


# ------------------------------------------------------------------------ offset sessions


@settings(max_examples=60)
@given(
    st.integers(0, 3000),
    st.sampled_from(["uniform", "lognormal", "signed", "sparse"]),
    st.integers(0, 2**32 - 1),
)
def test_pairwise_sum_adds_in_numpys_order(n: int, kind: str, seed: int) -> None:
    from carbonsim.engine._offsets_numba import _compiled, compile_kernels

    compile_kernels()
    rng = np.random.default_rng(seed)
    x = {
        "uniform": lambda: rng.random(n),
        "lognormal": lambda: rng.lognormal(0.0, 4.0, n),
        "signed": lambda: rng.standard_normal(n) * 1e6,
        "sparse": lambda: np.where(rng.random(n) < 0.05, rng.random(n) * 1e4, 0.0),
    }[kind]()
    got = 0.0 + _compiled["pairwise_sum"](x, 0, n)
    assert np.float64(got).tobytes() == x.sum().tobytes()
    rows = np.stack([x, x[::-1].copy()])
    assert (
        rows.sum(axis=1)[1].tobytes()
        == np.float64(0.0 + _compiled["pairwise_sum"](rows[1], 0, n)).tobytes()
    )


@st.composite
def offset_sessions(draw: st.DrawFn) -> dict[str, Any]:
    """An offset session's input as the engine builds it: bidders with usage caps, credits
    held and surrendered, project owners' stock of two classes, cash that may not cover
    the purchase (with negative cash forbidden or not), now and then fractional stock (the
    auction kernel declines it)."""
    r = draw(st.integers(1, 3))
    n = draw(st.integers(1, 12))
    ints = st.integers
    held = np.array(draw(st.lists(ints(0, 30), min_size=r * n * 2, max_size=r * n * 2)))
    stock = np.array(draw(st.lists(ints(0, 400), min_size=r * 2, max_size=r * 2)))
    cash = np.array(
        draw(st.lists(st.sampled_from([0.0, 50.0, 1e4, 1e7]), min_size=r * n, max_size=r * n))
    )
    mask = np.array(draw(st.lists(st.booleans(), min_size=r * n, max_size=r * n)))
    flat = np.flatnonzero(mask)
    b = len(flat)
    centre = draw(st.floats(20.0, 80.0))

    def around(k: int, spread: float) -> np.ndarray:
        offs = draw(st.lists(st.floats(-spread, spread), min_size=k, max_size=k))
        return centre * np.exp(np.array(offs, float))

    quantiles = np.exp(0.05 * np.array([3.0, 2.0, 1.0, 0.0, -1.0]))
    levels = np.rint(centre * quantiles / 0.01) - 1.0
    return {
        "r": r,
        "n": n,
        "held": held.reshape(r, n, 2),
        "stock": stock.reshape(r, 2),
        "cash": cash.reshape(r, n),
        "negative_cash": draw(st.booleans()),
        "fractional": draw(st.integers(0, 7)) == 0,
        "classes": draw(st.sampled_from([["ccer"], ["ccer", "ccer_new"], ["ccer_new"]])),
        "flat": flat,
        "cap": np.array(draw(st.lists(ints(0, 200), min_size=b, max_size=b)), np.float64),
        "surrendered": np.array(draw(st.lists(ints(0, 20), min_size=b, max_size=b)), np.int64),
        "bid_price": around(b, 0.2),
        "ask_price": around(r * 20, 0.3).reshape(r, 20),
        "levels": np.repeat(levels[:, None], r, axis=1),
    }


def _offset_ledger(o: dict[str, Any]) -> Ledger:
    led = Ledger(
        o["r"],
        [f"u{i}" for i in range(o["n"])],
        [2021],
        offset_classes=("ccer", "ccer_new"),
        allow_negative_cash=o["negative_cash"],
    )
    led.deposit(o["cash"])
    for k, cls in enumerate(("ccer", "ccer_new")):
        led.issue_offsets(cls, o["held"][:, :, k], account="units")
        led.issue_offsets(cls, o["stock"][:, k])
    if o["fractional"]:  # a stock the lots cannot split into whole tonnes
        led._project_offsets = led._project_offsets.astype(np.float64) + 0.5  # type: ignore[assignment]
    return led


def _offset_outcome(o: dict[str, Any], compiled: bool) -> tuple[Any, ...]:
    from carbonsim.engine._offsets_numba import offset_classes_compiled
    from carbonsim.engine.simulation import clear_offset_classes

    led = _offset_ledger(o)
    idx = [led.offset_class_index(c) for c in o["classes"]]
    args = (led, o["classes"], idx, o["flat"], o["cap"], o["surrendered"], o["bid_price"])
    kw = {"tick": 0.01, "levels": o["levels"]}
    run = offset_classes_compiled if compiled else clear_offset_classes
    try:
        volume, turnover = run(*args, o["ask_price"], **kw)
    except LedgerError as exc:
        return ("refused", str(exc), led.offsets.tobytes(), led.cash.tobytes())
    return (
        volume.tobytes(),
        turnover.tobytes(),
        led.offsets.tobytes(),
        led.project_offsets.tobytes(),
        led.cash.tobytes(),
        led.project_cash.tobytes(),
        led._cash_gross.tobytes(),
        led.journal().to_numpy().tobytes(),
        list(led._journal),
    )


@settings(max_examples=120)
@given(offset_sessions())
def test_compiled_offset_session_equals_numpy(o: dict[str, Any]) -> None:
    assert _offset_outcome(o, compiled=True) == _offset_outcome(o, compiled=False)


def test_compiled_offset_session_refuses_where_the_ledger_does() -> None:
    # one bidder with no cash buys from a stock of 40 t: the ledger forbids negative cash
    o = {
        "r": 1, "n": 2, "held": np.zeros((1, 2, 2), np.int64), "stock": np.array([[40, 0]]),
        "cash": np.array([[0.0, 1e6]]), "negative_cash": False, "fractional": False,
        "classes": ["ccer"], "flat": np.array([0]), "cap": np.array([10.0]),
        "surrendered": np.array([0]), "bid_price": np.array([60.0]),
        "ask_price": np.full((1, 20), 10.0), "levels": np.full((5, 1), -np.inf),
    }  # fmt: skip
    refused = _offset_outcome(o, compiled=True)
    assert refused[0] == "refused"
    assert "cash cannot go negative" in refused[1]
    assert refused == _offset_outcome(o, compiled=False)
    o["negative_cash"] = True  # allowed: the unit buys its 10 t
    bought = _offset_outcome(o, compiled=True)
    assert bought == _offset_outcome(o, compiled=False)
    assert np.frombuffer(bought[0]).tolist() == [10.0]
