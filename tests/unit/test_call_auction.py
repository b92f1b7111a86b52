"""Call auction and batch clearing: hand-worked books and exhaustive small cases."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
from collections.abc import Iterator
from unittest import mock

import numpy as np
import pytest

from carbonsim.clearing import (
    ALLOCATION_RULES,
    NO_PRICE_TICK,
    CallAuctionResult,
    band_from_reference,
    call_auction,
    call_auction_batch,
    price_to_ticks,
    ticks_to_price,
)
from carbonsim.clearing.reference import ReferenceAuctionResult, brute_force_call_auction

# The package re-exports the function ``call_auction``, which shadows the submodule of the
# same name as an attribute; importlib returns the module itself.
ca_module = importlib.import_module("carbonsim.clearing.call_auction")


# ----------------------------------------------------------------------------- basics


def test_simple_cross() -> None:
    # D(50) = 20, S(50) = 15 -> V = 15; D(49) = 20, S(49) = 5 -> 5; D(51) = 10, S(51) = 15
    # -> 10. Price 50: bid at 51 full (10), bid at 50 gets 5; asks at 49 and 50 full.
    r = call_auction([51.0, 50.0], [10, 10], [49.0, 50.0], [5, 10])
    assert r.price == 50.0
    assert r.price_tick == 5000
    assert r.volume == 15.0
    assert r.demand == 20.0
    assert r.supply == 15.0
    assert r.imbalance == 5.0
    assert r.executable
    assert r.bid_fill.tolist() == [10.0, 5.0]
    assert r.ask_fill.tolist() == [5.0, 10.0]
    assert (r.n_bids_filled, r.n_asks_filled) == (2, 2)
    assert r.tick == 0.01


def test_no_cross_without_reference_gives_nan() -> None:
    r = call_auction([49.0], [10], [51.0], [10])
    assert r.volume == 0.0
    assert np.isnan(r.price)
    assert r.price_tick is None
    assert np.isnan(r.imbalance)
    assert not r.executable
    assert r.bid_fill.tolist() == [0.0]
    assert r.ask_fill.tolist() == [0.0]


def test_no_cross_with_reference_reports_reference() -> None:
    # At 50: demand (bids >= 50) = 0, supply (asks <= 50) = 0.
    r = call_auction([49.0], [10], [51.0], [10], reference_price=50.0)
    assert r.price == 50.0
    assert r.price_tick == 5000
    assert r.volume == 0.0
    assert r.imbalance == 0.0
    # Below every order: all bids count as demand; above: all asks as supply.
    low = call_auction([49.0], [10], [51.0], [7], reference_price=40.0)
    assert (low.demand, low.supply, low.imbalance) == (10.0, 0.0, 10.0)
    high = call_auction([49.0], [10], [51.0], [7], reference_price=60.0)
    assert (high.demand, high.supply, high.imbalance) == (0.0, 7.0, -7.0)


@pytest.mark.parametrize(
    ("bids", "asks"),
    [(([], []), ([], [])), (([50.0], [10]), ([], [])), (([], []), ([50.0], [10]))],
)
def test_empty_books_are_valid(
    bids: tuple[list[float], list[int]], asks: tuple[list[float], list[int]]
) -> None:
    r = call_auction(bids[0], bids[1], asks[0], asks[1])
    assert r.volume == 0.0
    assert not r.executable
    assert r.bid_fill.shape == (len(bids[0]),)
    assert r.ask_fill.shape == (len(asks[0]),)


def test_zero_quantity_orders_do_not_trade() -> None:
    r = call_auction([51.0], [0], [49.0], [10])
    assert r.volume == 0.0
    assert r.ask_fill.tolist() == [0.0]


def test_strict_price_priority_moves_price_to_the_bid() -> None:
    # V = 5 at 49, 50 and 51, imbalance 5 at all three; but at 49 and 50 the bid (strictly
    # above) could not fill in full with volume 5, so only 51 honours price priority.
    r = call_auction([51.0], [10], [49.0], [5], tick=1.0)
    assert r.price == 51.0
    assert r.volume == 5.0
    assert r.bid_fill.tolist() == [5.0]


def test_tied_interval_midpoint_and_reference() -> None:
    # V = 10, imbalance 0 at every tick of 48..52: midpoint 50, or nearest to the reference.
    args = ([52.0], [10], [48.0], [10])
    assert call_auction(*args, tick=1.0).price == 50.0
    assert call_auction(*args, tick=1.0, reference_price=51.0).price == 51.0
    assert call_auction(*args, tick=1.0, reference_price=60.0).price == 52.0
    assert call_auction(*args, tick=1.0, reference_price=10.0).price == 48.0
    # Four tied ticks 48..51: the lower median is 49.
    assert call_auction([51.0], [10], [48.0], [10], tick=1.0).price == 49.0


def test_imbalance_tie_break() -> None:
    # V = 300 on 10.02..10.05; imbalance 200 at 10.02 and 0 on 10.03..10.05 -> 10.04.
    r = call_auction([10.05, 10.02], [300, 200], [10.00], [300])
    assert r.price == 10.04
    assert r.imbalance == 0.0
    assert r.bid_fill.tolist() == [300.0, 0.0]


def test_pro_rata_largest_remainder() -> None:
    # Bids 5, 3, 2 at 50 share 7 (ask 7 at 49, price 50 since D(50) = 10 > 7):
    # 7 * (5, 3, 2) / 10 = 3.5, 2.1, 1.4 -> floors 3, 2, 1; one unit left to the largest
    # remainder (0.5, first bid) -> 4, 2, 1.
    r = call_auction([50.0, 50.0, 50.0], [5, 3, 2], [49.0], [7], tick=1.0)
    assert r.price == 50.0
    assert r.bid_fill.tolist() == [4.0, 2.0, 1.0]
    assert r.ask_fill.tolist() == [7.0]


def test_pro_rata_equal_remainders_go_to_earlier_orders() -> None:
    r = call_auction([50.0, 50.0, 50.0], [1, 1, 1], [49.0], [2], tick=1.0)
    assert r.bid_fill.tolist() == [1.0, 1.0, 0.0]


def test_price_time_fills_in_input_order() -> None:
    r = call_auction([50.0] * 3, [5, 3, 2], [49.0], [7], tick=1.0, allocation="price_time")
    assert r.bid_fill.tolist() == [5.0, 2.0, 0.0]


def test_both_sides_rationed_at_the_price() -> None:
    # Bids: 10 @ 51, 10 @ 50; asks: 5 @ 49, 10 @ 50, 10 @ 51. V(50) = min(20, 15) = 15,
    # V(51) = min(10, 25) = 10 -> price 50, asks at 50 full, bid at 50 rationed to 5.
    r = call_auction([51.0, 50.0], [10, 10], [49.0, 50.0, 51.0], [5, 10, 10], tick=1.0)
    assert r.price == 50.0
    assert r.bid_fill.tolist() == [10.0, 5.0]
    assert r.ask_fill.tolist() == [5.0, 10.0, 0.0]


def test_fractional_quantities_are_rationed_proportionally() -> None:
    r = call_auction([50.0, 50.0], [1.5, 0.5], [49.0], [1.0], tick=1.0)
    assert r.volume == 1.0
    np.testing.assert_allclose(r.bid_fill, [0.75, 0.25])


def test_integer_inputs_are_accepted() -> None:
    r = call_auction(np.array([50, 51]), np.array([3, 4], dtype=np.int32), [49], [5], tick=1)
    assert r.volume == 5.0
    assert r.bid_fill.dtype == np.float64


# ----------------------------------------------------------------------------- ticks


def test_prices_snap_with_rint_not_floor() -> None:
    # 0.29 / 0.01 = 28.999999999999996 and 4.35 / 0.01 = 434.99999999999994: floor would
    # land one tick low.
    assert price_to_ticks([50.03, 0.29, 1.15, 4.35]).tolist() == [5003, 29, 115, 435]
    r = call_auction([50.03], [1], [50.03], [1])
    assert r.price_tick == 5003
    assert r.price == 50.03


def test_price_comes_back_without_float_drift() -> None:
    assert ticks_to_price([5001], 0.01)[0] == 50.01
    assert ticks_to_price([1001], 0.05)[0] == 50.05
    assert ticks_to_price([7], 2.5)[0] == 17.5
    assert ticks_to_price([3], 1 / 3)[0] == pytest.approx(1.0)
    r = call_auction([50.01], [1], [50.01], [1])
    assert r.price == 50.01


def test_off_grid_prices_snap_to_nearest_tick() -> None:
    r = call_auction([50.004], [1], [49.996], [1])
    assert r.price == 50.0


# ----------------------------------------------------------------------------- bands


def test_band_from_reference_snaps_inward() -> None:
    assert band_from_reference(50.0, 0.10) == (45.0, 55.0)
    assert band_from_reference(61.37, 0.10) == (55.24, 67.5)
    assert band_from_reference(61.37, 0.30) == (42.96, 79.78)
    assert band_from_reference(50.0, 0.0) == (50.0, 50.0)


def test_band_reject_excludes_orders_outside() -> None:
    # Band 45..55: the bid at 56 and the ask at 44 are rejected; bid 60 @ 50 meets
    # ask 10 @ 50 -> 10 at 50.
    r = call_auction(
        [56.0, 50.0], [10, 60], [44.0, 50.0], [50, 10], price_band=(45.0, 55.0), tick=1.0
    )
    assert r.bid_rejected.tolist() == [True, False]
    assert r.ask_rejected.tolist() == [True, False]
    assert r.bid_fill.tolist() == [0.0, 10.0]
    assert r.ask_fill.tolist() == [0.0, 10.0]
    assert r.price == 50.0


def test_band_clip_moves_orders_to_the_edge() -> None:
    # Bid 10 @ 60 becomes a bid @ 55 and ask 10 @ 58 becomes an ask @ 55: trade at 55.
    r = call_auction(
        [60.0], [10], [58.0], [10], price_band=(45.0, 55.0), band_mode="clip", tick=1.0
    )
    assert r.price == 55.0
    assert r.volume == 10.0
    assert not r.bid_rejected.any()
    # Under "reject" both orders are out of the band and nothing trades.
    rej = call_auction([60.0], [10], [58.0], [10], price_band=(45.0, 55.0), tick=1.0)
    assert rej.volume == 0.0
    assert rej.bid_rejected.tolist() == [True]


def test_no_trade_price_is_clipped_into_band() -> None:
    r = call_auction([40.0], [1], [60.0], [1], reference_price=70.0, price_band=(45.0, 55.0))
    assert r.price == 55.0
    assert r.volume == 0.0


def test_price_stays_inside_band_with_wide_tied_interval() -> None:
    r = call_auction([70.0], [10], [30.0], [10], price_band=(45.0, 55.0), band_mode="clip")
    assert 45.0 <= r.price <= 55.0
    assert r.price == 50.0


# ----------------------------------------------------------------------------- result


def test_result_is_frozen_and_arrays_read_only() -> None:
    r = call_auction([50.0], [1], [50.0], [1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.price = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        r.bid_fill[0] = 2.0


def test_allocation_rules_are_registered() -> None:
    assert ALLOCATION_RULES.names() == ["price_time", "pro_rata"]


# ----------------------------------------------------------------------------- grid paths


def test_wide_tick_range_uses_compressed_grid() -> None:
    # 0.01 .. 1e7 is 1e9 ticks for 3 orders: the grid is compressed to the order ticks plus
    # gap columns. D = 10 at p <= 0.01, 5 above; S = 8 from 5e6 on. V = 5 on 5e6..1e7, but
    # only 5e6 keeps price priority (above it the 8 asks below p exceed D = 5).
    r = call_auction([0.01, 1e7], [5, 5], [5e6], [8])
    assert r.price == 5e6
    assert r.volume == 5.0
    assert r.imbalance == -3.0
    assert r.bid_fill.tolist() == [0.0, 5.0]
    assert r.ask_fill.tolist() == [5.0]


def test_wide_tied_interval_lower_median_in_a_gap() -> None:
    # Bid 10 @ 1e6 vs ask 10 @ 1.00: every tick of 100 .. 1e8 is tied (V = 10, imbalance
    # 0): 99_999_901 ticks, lower median index 49_999_950 -> tick 50_000_050 = 500000.50.
    r = call_auction([1e6], [10], [1.0], [10])
    assert r.price_tick == 50_000_050
    assert r.price == 500000.5
    assert call_auction([1e6], [10], [1.0], [10], reference_price=7.0).price == 7.0


def test_forced_compressed_grid_matches_dense() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        bp, ap = np.round(50 + rng.normal(0, 1, (2, 30)), 2)
        bq, aq = rng.integers(0, 9, (2, 30)).astype(float)
        plain = call_auction(bp, bq, ap, aq)
        with mock.patch.object(ca_module, "_DENSE_EXTRA_CELLS", -(10**15)):
            forced = call_auction(bp, bq, ap, aq)
        assert forced.price_tick == plain.price_tick
        assert forced.volume == plain.volume
        assert forced.bid_fill.tobytes() == plain.bid_fill.tobytes()
        assert forced.ask_fill.tobytes() == plain.ask_fill.tobytes()


def _small_books(
    prices: list[float], qtys: list[int], max_bids: int, max_asks: int
) -> Iterator[tuple[tuple[float, ...], tuple[int, ...], tuple[float, ...], tuple[int, ...]]]:
    orders = list(itertools.product(prices, qtys))
    sides = [list(itertools.product(orders, repeat=n)) for n in range(max(max_bids, max_asks) + 1)]
    for nb in range(max_bids + 1):
        for na in range(max_asks + 1):
            for bids in sides[nb]:
                for asks in sides[na]:
                    yield (
                        tuple(p for p, _ in bids),
                        tuple(q for _, q in bids),
                        tuple(p for p, _ in asks),
                        tuple(q for _, q in asks),
                    )


def _assert_same(r: CallAuctionResult, bf: ReferenceAuctionResult) -> None:
    assert r.price_tick == bf.price_tick
    assert r.volume == bf.volume
    assert r.bid_fill.tolist() == [float(x) for x in bf.bid_fill]
    assert r.ask_fill.tolist() == [float(x) for x in bf.ask_fill]


def test_exhaustive_two_by_two_against_brute_force() -> None:
    """Every book of up to 2 bids and 2 asks, prices {1, 2, 3}, quantities {1, 2}."""
    refs = [None, 0.0, 2.0, 5.0]
    n = 0
    for i, (bp, bq, ap, aq) in enumerate(_small_books([1.0, 2.0, 3.0], [1, 2], 2, 2)):
        allocation = "pro_rata" if i % 2 else "price_time"
        ref = refs[i % 4]
        r = call_auction(bp, bq, ap, aq, tick=1.0, reference_price=ref, allocation=allocation)
        bf = brute_force_call_auction(
            bp, bq, ap, aq, tick=1.0, reference_price=ref, allocation=allocation
        )
        _assert_same(r, bf)
        n += 1
    assert n == (1 + 6 + 36) ** 2


@pytest.mark.parametrize(
    ("allocation", "prices", "qtys"),
    [("pro_rata", [1.0, 2.0, 3.0], [1, 3]), ("price_time", [1.0, 2.0], [1, 2])],
)
def test_exhaustive_three_by_three_batched_against_brute_force(
    allocation: str, prices: list[float], qtys: list[int]
) -> None:
    """Every book of exactly 3 bids and 3 asks over the given prices and quantities,
    cleared as one batch (each book its own market, references cycling through none,
    below, inside and above the book) and compared with the brute force."""
    books = [b for b in _small_books(prices, qtys, 3, 3) if len(b[0]) == 3 and len(b[2]) == 3]
    n = len(books)
    assert n == (len(prices) * len(qtys)) ** 6
    refs = np.array([np.nan, 0.0, 2.0, 5.0])[np.arange(n) % 4]
    market = np.repeat(np.arange(n), 6)
    side = np.tile([True, True, True, False, False, False], n)
    price = np.array([b[0] + b[2] for b in books], dtype=float).ravel()
    qty = np.array([b[1] + b[3] for b in books], dtype=float).ravel()
    r = call_auction_batch(
        market,
        side,
        price,
        qty,
        n_markets=n,
        tick=1.0,
        allocation=allocation,
        reference_price=refs,
    )
    fills = r.fill.reshape(n, 6)
    for m, (bp, bq, ap, aq) in enumerate(books):
        ref = None if np.isnan(refs[m]) else float(refs[m])
        bf = brute_force_call_auction(
            bp, bq, ap, aq, tick=1.0, allocation=allocation, reference_price=ref
        )
        expected_tick = NO_PRICE_TICK if bf.price_tick is None else bf.price_tick
        assert r.price_tick[m] == expected_tick
        assert r.volume[m] == bf.volume
        assert fills[m].tolist() == [float(x) for x in (*bf.bid_fill, *bf.ask_fill)]


# ----------------------------------------------------------------------------- batch


def test_batch_worked_example() -> None:
    # Market 0: bid 10 @ 50 vs ask 10 @ 49; on the 0.5 grid the ticks 49.0, 49.5, 50.0 tie
    # -> median 49.5. Market 1: no cross, reference 20. Market 2: no orders.
    r = call_auction_batch(
        [0, 0, 1, 1],
        [1, -1, 1, -1],
        [50.0, 49.0, 20.0, 21.0],
        [10, 10, 5, 5],
        n_markets=3,
        tick=0.5,
        reference_price=[np.nan, 20.0, np.nan],
    )
    assert r.price[0] == 49.5
    assert r.price[1] == 20.0
    assert np.isnan(r.price[2])
    assert r.price_tick.tolist() == [99, 40, NO_PRICE_TICK]
    assert r.volume.tolist() == [10.0, 0.0, 0.0]
    assert r.fill.tolist() == [10.0, 10.0, 0.0, 0.0]
    assert r.executable.tolist() == [True, False, False]
    assert r.n_filled.tolist() == [2, 0, 0]
    assert r.imbalance[0] == 0.0
    assert r.imbalance[1] == 5.0  # bid 5 @ 20 is demand at 20, no ask at or below 20
    assert np.isnan(r.imbalance[2])


def test_batch_with_per_market_band() -> None:
    r = call_auction_batch(
        [0, 0, 1, 1],
        [True, False, True, False],
        [56.0, 50.0, 56.0, 50.0],
        [10, 10, 10, 10],
        n_markets=2,
        tick=1.0,
        price_band=([45.0, 45.0], [55.0, 60.0]),
    )
    # Market 0: the bid at 56 is outside 45..55 -> rejected; market 1: 45..60, trade.
    assert r.rejected.tolist() == [True, False, False, False]
    assert r.volume.tolist() == [0.0, 10.0]
    assert r.price[1] == 53.0  # tied 50..56, lower median


def test_batch_with_no_markets() -> None:
    r = call_auction_batch([], [], [], [], n_markets=0)
    assert r.price.shape == (0,)
    assert r.fill.shape == (0,)


def test_batch_matches_single_calls() -> None:
    rng = np.random.default_rng(7)
    n_markets, n = 40, 2000
    market = rng.integers(0, n_markets, n)
    side = rng.random(n) < 0.5
    price = np.round(50 + rng.normal(0, 1, n), 2)
    qty = rng.integers(1, 50, n).astype(float)
    r = call_auction_batch(market, side, price, qty, n_markets=n_markets, reference_price=50.0)
    for m in range(n_markets):
        bi = np.flatnonzero((market == m) & side)
        ai = np.flatnonzero((market == m) & ~side)
        s = call_auction(price[bi], qty[bi], price[ai], qty[ai], reference_price=50.0)
        assert r.price[m] == s.price
        assert r.volume[m] == s.volume
        assert r.fill[bi].tobytes() == s.bid_fill.tobytes()
        assert r.fill[ai].tobytes() == s.ask_fill.tobytes()


def test_negative_prices_are_supported() -> None:
    # On the 0.5 grid the bid at -1.0 is tick -2 and the ask at -2.0 is tick -4;
    # tied -4..-2, lower median -3 -> -1.5.
    r = call_auction([-1.0], [1], [-2.0], [1], tick=0.5)
    assert r.price_tick == -3
    assert r.price == -1.5


def test_clearing_namespace_is_a_literal_list_that_resolves() -> None:
    import ast
    from pathlib import Path

    import carbonsim.clearing as clearing

    tree = ast.parse(Path(clearing.__file__).read_text(encoding="utf-8"))
    assigned = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    assert len(assigned) == 1
    assert isinstance(assigned[0], ast.List)
    for name in clearing.__all__:
        assert getattr(clearing, name) is not None


# ------------------------------------------------------- attacks that got through (#21, 7)

B53 = 2**53


def test_call_auction_refuses_a_side_totalling_2_53() -> None:
    # the bids total 2**53 + 7: fills were rounded and summed to 2**53 + 2 against a
    # volume of 2**53 + 4, silently
    with pytest.raises(ValueError) as info:
        call_auction([50.0, 50.0, 50.0], [B53 - 1, 3.0, 5.0], [49.0, 50.0], [B53 - 2, 7.0])
    msg = str(info.value)
    assert msg.startswith("bid_qty totals 900719925474100")
    assert "at or above 2**53 = 9007199254740992 t" in msg
    assert "count in larger units (e.g. kilotonnes)" in msg
    with pytest.raises(ValueError, match=r"^ask_qty totals .* at or above 2\*\*53"):
        call_auction([50.0], [1.0], [49.0, 49.0], [float(B53 // 2), float(B53 // 2)])


def test_call_auction_just_below_2_53_adds_up_exactly() -> None:
    r = call_auction([50.0, 50.0], [B53 - 2, 1.0], [49.0], [B53 - 1])
    assert r.volume == B53 - 1
    assert r.bid_fill.tolist() == [B53 - 2, 1.0]
    assert r.ask_fill.tolist() == [B53 - 1]


def test_call_auction_batch_refuses_a_market_side_totalling_2_53() -> None:
    with pytest.raises(ValueError) as info:
        call_auction_batch(
            [0, 0, 1, 1, 1], [1, -1, 1, -1, -1], [50.0, 49.0, 50.0, 49.0, 48.0],
            [10.0, 10.0, 5.0, float(B53 - 1), 1.0], n_markets=2,
        )  # fmt: skip
    assert str(info.value).startswith("qty of the asks of market 1 totals 9007199254740992 t")


def test_call_auction_batch_checks_each_market_not_their_sum() -> None:
    # two markets below 2**53 each clear exactly, as each alone
    qty = [float(B53 - 10), float(B53 - 10), 7.0, 7.0]
    r = call_auction_batch([0, 0, 1, 1], [1, -1, 1, -1], [50.0, 49.0, 50.0, 49.0], qty, n_markets=2)
    assert r.volume.tolist() == [B53 - 10, 7.0]
    alone = call_auction([50.0], [qty[0]], [49.0], [qty[1]])
    assert (r.price[0], r.fill[0], r.fill[1]) == (alone.price, alone.bid_fill[0], alone.ask_fill[0])
