"""Invariants of the call auction, the batch clearing and the sealed-bid auction."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from carbonsim.clearing import (
    NO_PRICE_TICK,
    CallAuctionResult,
    call_auction,
    call_auction_batch,
    sealed_bid_auction,
)
from carbonsim.clearing.batch import clear_session
from carbonsim.clearing.reference import (
    brute_force_call_auction,
    brute_force_sealed_bid,
    welfare_lp,
)

ca_module = importlib.import_module("carbonsim.clearing.call_auction")

TICK = 0.01
LO_T, HI_T = 4990, 5010  # prices 49.90 .. 50.10


@dataclass(frozen=True)
class Book:
    bid_tick: list[int]
    bid_qty: list[float]
    ask_tick: list[int]
    ask_qty: list[float]

    @property
    def bid_price(self) -> np.ndarray:
        return np.array(self.bid_tick, dtype=float) / 100

    @property
    def ask_price(self) -> np.ndarray:
        return np.array(self.ask_tick, dtype=float) / 100

    def args(self) -> tuple[np.ndarray, list[float], np.ndarray, list[float]]:
        return self.bid_price, self.bid_qty, self.ask_price, self.ask_qty


def _quantities(kind: str) -> st.SearchStrategy[float]:
    if kind == "whole":
        return st.integers(0, 20).map(float)
    if kind == "dyadic":  # fractional but exact in binary: sums stay exact
        return st.integers(0, 80).map(lambda x: x / 4)
    if kind == "milli":  # divisible quantities in kilograms
        return st.integers(0, 10_000).map(lambda x: x / 1000)
    return st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False)


@st.composite
def books(draw: st.DrawFn, max_orders: int = 8, kind: str = "whole") -> Book:
    nb = draw(st.integers(0, max_orders))
    na = draw(st.integers(0, max_orders))
    ticks = st.integers(LO_T, HI_T)
    qty = _quantities(kind)
    return Book(
        draw(st.lists(ticks, min_size=nb, max_size=nb)),
        draw(st.lists(qty, min_size=nb, max_size=nb)),
        draw(st.lists(ticks, min_size=na, max_size=na)),
        draw(st.lists(qty, min_size=na, max_size=na)),
    )


@st.composite
def options(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"allocation": draw(st.sampled_from(["pro_rata", "price_time"]))}
    if draw(st.booleans()):
        out["reference_price"] = draw(st.integers(LO_T - 10, HI_T + 10)) / 100
    if draw(st.booleans()):
        lo = draw(st.integers(LO_T - 5, HI_T))
        hi = draw(st.integers(lo, HI_T + 5))
        out["price_band"] = (lo / 100, hi / 100)
        out["band_mode"] = draw(st.sampled_from(["reject", "clip"]))
    return out


def _curves(book: Book, r: CallAuctionResult, opts: dict[str, Any]) -> tuple[Any, ...]:
    """Effective ticks and quantities after the band, and V(p) on every tick."""
    bt, at = np.array(book.bid_tick), np.array(book.ask_tick)
    bq = np.array(book.bid_qty, dtype=float) * ~r.bid_rejected
    aq = np.array(book.ask_qty, dtype=float) * ~r.ask_rejected
    if "price_band" in opts:
        lo, hi = (round(v * 100) for v in opts["price_band"])
        bt, at = np.clip(bt, lo, hi), np.clip(at, lo, hi)
    grid = np.arange(LO_T - 20, HI_T + 21)
    demand = (bq[None, :] * (bt[None, :] >= grid[:, None])).sum(axis=1)
    supply = (aq[None, :] * (at[None, :] <= grid[:, None])).sum(axis=1)
    return bt, bq, at, aq, np.minimum(demand, supply)


@given(books(), options())
def test_fill_invariants(book: Book, opts: dict[str, Any]) -> None:
    r = call_auction(*book.args(), tick=TICK, **opts)
    bt, bq, at, aq, volume_at = _curves(book, r, opts)
    # Volume is the maximum executable over all candidate prices.
    assert r.volume == volume_at.max()
    assert r.executable == (r.volume > 0)
    # 0 <= fill <= qty; each side's fills sum to the volume (exact for whole numbers).
    assert np.all(r.bid_fill >= 0)
    assert np.all(r.bid_fill <= bq)
    assert np.all(r.ask_fill >= 0)
    assert np.all(r.ask_fill <= aq)
    assert r.bid_fill.sum() == r.volume
    assert r.ask_fill.sum() == r.volume
    assert np.array_equal(r.bid_fill, np.rint(r.bid_fill))
    if not r.executable:
        return
    p = r.price_tick
    assert p is not None
    # No order filled through its limit; strictly better orders fill in full.
    assert np.all(bt[r.bid_fill > 0] >= p)
    assert np.all(at[r.ask_fill > 0] <= p)
    assert np.array_equal(r.bid_fill[bt > p], bq[bt > p])
    assert np.array_equal(r.ask_fill[at < p], aq[at < p])
    # Price priority: a better-priced order is never less filled, as a fraction.
    for ticks, qty, fill, sign in ((bt, bq, r.bid_fill, 1), (at, aq, r.ask_fill, -1)):
        live = qty > 0
        frac = fill[live] / qty[live]
        key = sign * ticks[live]
        better = key[:, None] > key[None, :]
        assert np.all((frac[:, None] >= frac[None, :]) | ~better)
    # Imbalance is demand minus supply at the price.
    assert r.imbalance == bq[bt >= p].sum() - aq[at <= p].sum()


@given(books(), options())
def test_matches_brute_force(book: Book, opts: dict[str, Any]) -> None:
    r = call_auction(*book.args(), tick=TICK, **opts)
    bf = brute_force_call_auction(*book.args(), tick=TICK, **opts)
    assert r.price_tick == bf.price_tick
    assert r.volume == bf.volume
    assert r.bid_fill.tolist() == [float(x) for x in bf.bid_fill]
    assert r.ask_fill.tolist() == [float(x) for x in bf.ask_fill]
    assert r.bid_rejected.tolist() == bf.bid_rejected
    if bf.imbalance is None:
        assert np.isnan(r.imbalance)
    else:
        assert r.imbalance == bf.imbalance


@given(books(kind="dyadic"), options())
def test_fractional_book_matches_brute_force(book: Book, opts: dict[str, Any]) -> None:
    r = call_auction(*book.args(), tick=TICK, **opts)
    bf = brute_force_call_auction(*book.args(), tick=TICK, **opts)
    assert r.price_tick == bf.price_tick
    assert r.volume == bf.volume
    np.testing.assert_allclose(r.bid_fill, np.array(bf.bid_fill, dtype=float), atol=1e-12)
    np.testing.assert_allclose(r.ask_fill, np.array(bf.ask_fill, dtype=float), atol=1e-12)
    np.testing.assert_allclose(r.bid_fill.sum(), r.volume, rtol=1e-12)


@given(books(), options())
def test_band_properties(book: Book, opts: dict[str, Any]) -> None:
    r = call_auction(*book.args(), tick=TICK, **opts)
    if "price_band" not in opts:
        assert not r.bid_rejected.any()
        assert not r.ask_rejected.any()
        return
    lo, hi = (round(v * 100) for v in opts["price_band"])
    if r.price_tick is not None:
        assert lo <= r.price_tick <= hi
    outside_b = (np.array(book.bid_tick) < lo) | (np.array(book.bid_tick) > hi)
    outside_a = (np.array(book.ask_tick) < lo) | (np.array(book.ask_tick) > hi)
    if opts["band_mode"] == "reject":
        assert r.bid_rejected.tolist() == outside_b.tolist()
        assert r.ask_rejected.tolist() == outside_a.tolist()
        assert np.all(r.bid_fill[r.bid_rejected] == 0)
        assert np.all(r.ask_fill[r.ask_rejected] == 0)
    else:
        assert not r.bid_rejected.any()
        assert not r.ask_rejected.any()


@given(books(), st.sampled_from(["pro_rata", "price_time"]))
def test_compressed_grid_equals_dense(book: Book, allocation: str) -> None:
    plain = call_auction(*book.args(), tick=TICK, allocation=allocation)
    with mock.patch.object(ca_module, "_DENSE_EXTRA_CELLS", -(10**15)):
        forced = call_auction(*book.args(), tick=TICK, allocation=allocation)
    assert forced.price_tick == plain.price_tick
    assert forced.volume == plain.volume
    assert forced.bid_fill.tobytes() == plain.bid_fill.tobytes()
    assert forced.ask_fill.tobytes() == plain.ask_fill.tobytes()


@given(books(), st.sampled_from(["pro_rata"]))
def test_pro_rata_shares_are_within_one_unit(book: Book, allocation: str) -> None:
    r = call_auction(*book.args(), tick=TICK, allocation=allocation)
    if not r.executable:
        return
    bt, bq = np.array(book.bid_tick), np.array(book.bid_qty)
    at_p = bt == r.price_tick
    amount = r.volume - bq[bt > r.price_tick].sum()
    total = bq[at_p].sum()
    if total > 0:
        exact = amount * bq[at_p] / total
        assert np.all(np.abs(r.bid_fill[at_p] - exact) < 1.0)


@st.composite
def batches(draw: st.DrawFn) -> dict[str, Any]:
    n_markets = draw(st.integers(1, 6))
    n = draw(st.integers(0, 40))
    kind = draw(st.sampled_from(["whole", "float"]))
    return {
        "market": np.array(draw(st.lists(st.integers(0, n_markets - 1), min_size=n, max_size=n))),
        "side": np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
        "price": np.array(
            draw(st.lists(st.integers(LO_T, HI_T), min_size=n, max_size=n)), dtype=float
        )
        / 100,
        "qty": np.array(draw(st.lists(_quantities(kind), min_size=n, max_size=n)), dtype=float),
        "n_markets": n_markets,
        "reference_price": np.array(
            draw(
                st.lists(
                    st.one_of(st.just(np.nan), st.integers(LO_T, HI_T).map(lambda t: t / 100)),
                    min_size=n_markets,
                    max_size=n_markets,
                )
            )
        ),
        "allocation": draw(st.sampled_from(["pro_rata", "price_time"])),
        "band": draw(st.one_of(st.none(), st.integers(LO_T - 5, HI_T - 10))),
        "band_mode": draw(st.sampled_from(["reject", "clip"])),
    }


@given(batches())
def test_batch_equals_single_markets_bit_for_bit(b: dict[str, Any]) -> None:
    n_markets = b["n_markets"]
    band = None
    if b["band"] is not None:
        lo = (b["band"] + np.arange(n_markets)) / 100
        band = (lo, lo + 0.1)
    r = call_auction_batch(
        b["market"],
        b["side"],
        b["price"],
        b["qty"],
        n_markets=n_markets,
        tick=TICK,
        reference_price=b["reference_price"],
        allocation=b["allocation"],
        price_band=band,
        band_mode=b["band_mode"],
    )
    for m in range(n_markets):
        bi = np.flatnonzero((b["market"] == m) & b["side"])
        ai = np.flatnonzero((b["market"] == m) & ~b["side"])
        ref = b["reference_price"][m]
        s = call_auction(
            b["price"][bi],
            b["qty"][bi],
            b["price"][ai],
            b["qty"][ai],
            tick=TICK,
            reference_price=None if np.isnan(ref) else float(ref),
            allocation=b["allocation"],
            price_band=None if band is None else (band[0][m], band[1][m]),
            band_mode=b["band_mode"],
        )
        assert np.float64(s.price).tobytes() == r.price[m].tobytes()
        assert (NO_PRICE_TICK if s.price_tick is None else s.price_tick) == r.price_tick[m]
        assert np.float64(s.volume).tobytes() == r.volume[m].tobytes()
        assert np.float64(s.imbalance).tobytes() == r.imbalance[m].tobytes()
        assert s.executable == r.executable[m]
        assert s.bid_fill.tobytes() == r.fill[bi].tobytes()
        assert s.ask_fill.tobytes() == r.fill[ai].tobytes()
        assert s.bid_rejected.tolist() == r.rejected[bi].tolist()
        assert s.n_bids_filled + s.n_asks_filled == r.n_filled[m]


@given(batches())
def test_clear_session_equals_call_auction_batch(b: dict[str, Any]) -> None:
    """The engine's unchecked entry gives call_auction_batch's outcome, bit for bit."""
    n_markets = b["n_markets"]
    lo = (np.full(n_markets, LO_T - 5) + np.arange(n_markets)) / 100
    hi = lo + np.where(b["band"] is None, 1e3, 0.1)
    ref = np.where(np.isnan(b["reference_price"]), lo, b["reference_price"])
    args = (b["market"].astype(np.int64), b["side"], b["price"], b["qty"])
    kw: dict[str, Any] = {"n_markets": n_markets, "tick": TICK, "reference_price": ref}
    r = call_auction_batch(*args, **kw, price_band=(lo, hi), band_mode="reject")
    price, volume, fill = clear_session(*args, **kw, band=(lo, hi))
    assert price.tobytes() == r.price.tobytes()
    assert volume.tobytes() == r.volume.tobytes()
    assert fill.tobytes() == r.fill.tobytes()


@settings(max_examples=25)
@given(books(max_orders=10, kind="milli"))
def test_volume_equals_welfare_lp_volume(book: Book) -> None:
    """In a divisible book the surplus-maximising allocation with the largest volume trades
    exactly the maximum volume executable at one price; the auction's allocation is itself
    surplus-maximising (filled bids are >= the price >= filled asks; every unfilled pair has
    bid <= ask)."""
    r = call_auction(*book.args(), tick=TICK)
    lp = welfare_lp(*book.args(), tick=TICK)
    scale = max(1.0, float(np.sum(book.bid_qty)))
    assert abs(r.volume - lp.volume) <= 1e-6 * scale
    surplus = float(
        np.dot(r.bid_fill, np.array(book.bid_tick)) - np.dot(r.ask_fill, np.array(book.ask_tick))
    )
    assert abs(surplus * TICK - lp.surplus) <= 1e-6 * max(1.0, abs(lp.surplus))


@st.composite
def sealed_books(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 10))
    return {
        "bid_price": np.array(draw(st.lists(st.integers(LO_T, HI_T), min_size=n, max_size=n)))
        / 100,
        "bid_qty": draw(st.lists(_quantities("whole"), min_size=n, max_size=n)),
        "supply": float(draw(st.integers(0, 60))),
        "reserve_price": draw(st.integers(LO_T - 5, HI_T + 5)) / 100,
        "allocation": draw(st.sampled_from(["pro_rata", "price_time"])),
    }


@given(sealed_books())
def test_sealed_bid_invariants(b: dict[str, Any]) -> None:
    r = sealed_bid_auction(b["bid_price"], b["bid_qty"], tick=TICK, **_sealed_kwargs(b))
    qty = np.array(b["bid_qty"], dtype=float)
    assert np.all(r.fills >= 0)
    assert np.all(r.fills <= qty)
    assert r.fills.sum() == r.volume <= b["supply"]
    assert r.unsold == b["supply"] - r.volume
    assert r.n_winners == np.count_nonzero(r.fills)
    winners = r.fills > 0
    if winners.any():
        assert np.all(b["bid_price"][winners] >= r.price)
        assert r.price >= b["reserve_price"]
    assert np.all(r.fills[r.rejected] == 0)
    assert r.rejected.tolist() == (b["bid_price"] < b["reserve_price"] - 1e-9).tolist()
    # Everything above the price is sold in full.
    if r.price_tick is not None:
        above = np.rint(b["bid_price"] * 100) > r.price_tick
        assert np.array_equal(r.fills[above], qty[above])
    bf = brute_force_sealed_bid(b["bid_price"], b["bid_qty"], tick=TICK, **_sealed_kwargs(b))
    assert r.price_tick == bf.price_tick
    assert r.volume == bf.volume
    assert r.fills.tolist() == [float(x) for x in bf.fills]


def _sealed_kwargs(b: dict[str, Any]) -> dict[str, Any]:
    return {k: b[k] for k in ("supply", "reserve_price", "allocation")}


@st.composite
def cutoff_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Several markets of whole-tonne books, with candidate cut-off ticks per market."""
    n_markets = draw(st.integers(1, 4))
    books_ = [draw(books(max_orders=10)) for _ in range(n_markets)]
    n_levels = draw(st.integers(1, 4))
    levels = np.array(
        [
            sorted((draw(st.integers(LO_T - 2, HI_T + 2)) for _ in range(n_levels)), reverse=True)
            for _ in range(n_markets)
        ],
        dtype=float,
    ).T
    return {
        "books": books_,
        "levels": levels,
        "allocation": draw(st.sampled_from(["pro_rata", "price_time"])),
        "reference": draw(st.none() | st.integers(LO_T - 10, HI_T + 10)),
    }


@settings(max_examples=400)
@given(cutoff_cases())
def test_demand_cutoff_leaves_the_auction_unchanged(c: dict[str, Any]) -> None:
    """Bids below the cut-off never fill and their removal changes no price, volume or fill."""
    from carbonsim.clearing import demand_cutoff

    bks: list[Book] = c["books"]
    n = len(bks)
    market = np.concatenate(
        [np.full(len(b.bid_tick) + len(b.ask_tick), m, np.int64) for m, b in enumerate(bks)]
    )
    is_buy = np.concatenate(
        [np.array([True] * len(b.bid_tick) + [False] * len(b.ask_tick), bool) for b in bks]
    )
    price = np.concatenate([np.concatenate([b.bid_price, b.ask_price]) for b in bks])
    qty = np.concatenate([np.array(b.bid_qty + b.ask_qty, dtype=float) for b in bks])
    keep_orders = qty > 0
    market, is_buy, price, qty = (a[keep_orders] for a in (market, is_buy, price, qty))
    supply = np.bincount(market[~is_buy], weights=qty[~is_buy], minlength=n)
    ticks = np.rint(price / TICK)
    kw: dict[str, Any] = {"n_markets": n, "tick": TICK, "allocation": c["allocation"]}
    if c["reference"] is not None:
        kw["reference_price"] = np.full(n, c["reference"] / 100)
    full = call_auction_batch(market, is_buy, price, qty, **kw)
    cut = demand_cutoff(market[is_buy], ticks[is_buy], qty[is_buy], supply, c["levels"])
    assert cut.shape == (n,)
    drop = is_buy & (ticks < cut[market])
    # a qualifying cut-off has demand at or above it exceeding all supply
    for m in range(n):
        if np.isfinite(cut[m]):
            at_or_above = is_buy & (market == m) & (ticks >= cut[m])
            assert qty[at_or_above].sum() >= supply[m] + 1
    event(f"bids dropped: {bool(drop.any())}, trades: {bool(full.volume.sum() > 0)}")
    assert np.all(full.fill[drop] == 0)
    kept = call_auction_batch(market[~drop], is_buy[~drop], price[~drop], qty[~drop], **kw)
    np.testing.assert_array_equal(kept.price, full.price)
    np.testing.assert_array_equal(kept.volume, full.volume)
    np.testing.assert_array_equal(kept.fill, full.fill[~drop])
    trades = full.volume > 0
    np.testing.assert_array_equal(kept.demand[trades], full.demand[trades])
    np.testing.assert_array_equal(kept.imbalance[trades], full.imbalance[trades])


def test_demand_cutoff_keeps_every_bid_without_enough_demand() -> None:
    from carbonsim.clearing import demand_cutoff

    cut = demand_cutoff([0, 0], [5000.0, 4999.0], [5.0, 5.0], [10.0], [[4999.0]])
    assert np.isneginf(cut[0])  # demand 10 does not exceed supply 10 by a unit
    cut = demand_cutoff([0, 0], [5000.0, 4999.0], [5.0, 6.0], [10.0], [[5000.0], [4999.0]])
    assert cut[0] == 4999.0


def test_demand_cutoff_validates_shapes() -> None:
    import pytest

    from carbonsim.clearing import demand_cutoff

    with pytest.raises(ValueError, match=r"levels must have shape \(L, n_markets\)"):
        demand_cutoff([0], [1.0], [1.0], [1.0, 2.0], [[1.0]])
    with pytest.raises(ValueError, match="market ids must be below n_markets = 1"):
        demand_cutoff([3], [1.0], [1.0], [1.0], [[1.0]])


@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(-(2**40), 2**40)), max_size=30),
    st.sampled_from([5, 2**30]),
)
def test_market_tick_order_equals_lexsort(rows: list[tuple[int, int]], n_markets: int) -> None:
    """The compressed grid's one-key stable sort orders as np.lexsort((ticks, market)),
    ties in input order; spans too wide for one 63-bit key fall back to lexsort."""
    mkt = np.array([m for m, _ in rows], dtype=np.int64)
    ticks = np.array([t for _, t in rows], dtype=np.int64)
    got = ca_module._market_tick_order(ticks, mkt, n_markets)
    np.testing.assert_array_equal(got, np.lexsort((ticks, mkt)))
