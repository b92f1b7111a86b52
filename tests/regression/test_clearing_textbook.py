"""Hand-worked call-auction and sealed-bid books (the analytical answer is in the comments).

Notation: D(p) = bid quantity at or above p, S(p) = ask quantity at or below p,
V(p) = min(D(p), S(p)). A price keeps strict priority when D(p + tick) <= S(p) and
S(p - tick) <= D(p).
"""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim.clearing import band_from_reference, call_auction, sealed_bid_auction
from carbonsim.clearing.reference import brute_force_call_auction, welfare_lp


def test_exchange_style_book() -> None:
    # Bids: 300 @ 10.05, 500 @ 10.03, 400 @ 10.01, 200 @ 10.00
    # Asks: 200 @ 9.98, 300 @ 10.00, 400 @ 10.02, 300 @ 10.03, 200 @ 10.05
    #
    #   p      D      S     V
    #   9.98  1400    200   200
    #   10.00 1400    500   500
    #   10.01 1200    500   500
    #   10.02  800    900   800
    #   10.03  800   1200   800
    #   10.04  300   1200   300
    #   10.05  300   1400   300
    #
    # V = 800 at 10.02 and 10.03. At 10.03 the 900 asks below it could not all fill
    # (S(10.02) = 900 > D(10.03) = 800), so the price is 10.02. There: bids above (300 +
    # 500) fill in full; asks below (200 + 300) fill in full; the 400 asks at 10.02 get the
    # remaining 300. Imbalance D - S = 800 - 900 = -100.
    bids = ([10.05, 10.03, 10.01, 10.00], [300, 500, 400, 200])
    asks = ([9.98, 10.00, 10.02, 10.03, 10.05], [200, 300, 400, 300, 200])
    r = call_auction(*bids, *asks)
    assert r.price == 10.02
    assert r.volume == 800.0
    assert r.imbalance == -100.0
    assert r.bid_fill.tolist() == [300.0, 500.0, 0.0, 0.0]
    assert r.ask_fill.tolist() == [200.0, 300.0, 300.0, 0.0, 0.0]
    # The surplus-maximising LP trades the same 800 t.
    assert welfare_lp(*bids, *asks).volume == pytest.approx(800.0)


def test_midpoint_rule_and_reference_rule() -> None:
    # Bid 100 @ 10.05, ask 100 @ 10.00: V = 100 and imbalance 0 on every tick 10.00..10.05
    # (six ticks). Without a reference the lower median is the third tick, 10.02 (the
    # midpoint 10.025 rounded down). With a previous close of 10.04 the price is 10.04;
    # with 9.90 (below the interval) the nearest tick, 10.00.
    args = ([10.05], [100], [10.00], [100])
    assert call_auction(*args).price == 10.02
    assert call_auction(*args, reference_price=10.04).price == 10.04
    assert call_auction(*args, reference_price=9.90).price == 10.00


def test_minimum_imbalance_rule() -> None:
    # Bids 300 @ 10.05, 200 @ 10.02; ask 300 @ 10.00. V = 300 on 10.00..10.05, priority
    # holds on 10.02..10.05 (at 10.01 the 500 bids above exceed S = 300). Imbalance:
    # 10.02 -> 500 - 300 = 200; 10.03..10.05 -> 0. Lower median of 10.03..10.05: 10.04.
    r = call_auction([10.05, 10.02], [300, 200], [10.00], [300])
    assert r.price == 10.04
    assert r.bid_fill.tolist() == [300.0, 0.0]
    assert r.ask_fill.tolist() == [300.0]


@pytest.mark.parametrize(
    ("allocation", "expected"), [("pro_rata", [67.0, 67.0, 66.0]), ("price_time", [100, 100, 0])]
)
def test_rationing_at_the_marginal_price(allocation: str, expected: list[float]) -> None:
    # Three bids of 100 @ 10.00 against 200 @ 9.99. V = 200 at 9.99 and 10.00; at 9.99 the
    # 300 bids above exceed S = 200, so the price is 10.00. Pro rata: 200 * 100 / 300 =
    # 66.67 each -> 66, 66, 66 and 2 units left to the (equal) largest remainders, first
    # come first: 67, 67, 66. Price-time: 100, 100, 0.
    r = call_auction([10.0] * 3, [100] * 3, [9.99], [200], allocation=allocation)
    assert r.price == 10.00
    assert r.bid_fill.tolist() == expected


def test_limit_up_band() -> None:
    # Previous close 50.00, +/-10 % -> band 45.00..55.00. Bids 100 @ 56.00 (outside) and
    # 100 @ 54.00; asks 50 @ 53.00 and 100 @ 44.00 (outside).
    # reject: the book is bid 100 @ 54 vs ask 50 @ 53: V = 50 on 53..54; priority holds
    # only at 54 (at 53, D(54) = 100 > S = 50) -> 54.00, bid rationed to 50.
    # clip: bid 100 @ 55, bid 100 @ 54, ask 50 @ 53, ask 100 @ 45: V(53) = min(200, 150) =
    # 150 = V(54); V(55) = min(100, 150) = 100. At 53, D(54) = 200 > S(53) = 150 fails;
    # at 54 D(55) = 100 <= 150 and S(53) = 150 <= D(54) = 200 -> 54.00; the bid at 55
    # fills 100, the bid at 54 gets 50.
    band = band_from_reference(50.0, 0.10)
    assert band == (45.0, 55.0)
    bids = ([56.0, 54.0], [100, 100])
    asks = ([53.0, 44.0], [50, 100])
    rej = call_auction(*bids, *asks, price_band=band, reference_price=50.0)
    assert (rej.price, rej.volume) == (54.0, 50.0)
    assert rej.bid_rejected.tolist() == [True, False]
    assert rej.ask_rejected.tolist() == [False, True]
    assert rej.bid_fill.tolist() == [0.0, 50.0]
    clip = call_auction(*bids, *asks, price_band=band, band_mode="clip", reference_price=50.0)
    assert (clip.price, clip.volume) == (54.0, 150.0)
    assert clip.bid_fill.tolist() == [100.0, 50.0]
    assert clip.ask_fill.tolist() == [50.0, 100.0]
    for mode, r in (("reject", rej), ("clip", clip)):
        bf = brute_force_call_auction(
            *bids, *asks, price_band=band, band_mode=mode, reference_price=50.0
        )
        assert r.price_tick == bf.price_tick


def test_sealed_bid_textbook() -> None:
    # Supply 1,000 t, reserve 40.00. Bids: 400 @ 45.50, 300 @ 44.00, 500 @ 43.20,
    # 200 @ 43.20, 600 @ 39.00 (below the reserve).
    # From the top: 400, 700 (<= 44.00), 1,400 (<= 43.20) >= 1,000: price 43.20. The 700 t
    # above fill in full; the 300 t left are shared 500 : 200 -> 214.29 / 85.71 -> floors
    # 214 and 85, 1 unit left to the larger remainder (0.71, second bid at the price): 86.
    r = sealed_bid_auction(
        [45.50, 44.00, 43.20, 43.20, 39.00],
        [400, 300, 500, 200, 600],
        supply=1000,
        reserve_price=40.0,
    )
    assert r.price == 43.20
    assert r.volume == 1000.0
    assert r.fills.tolist() == [400.0, 300.0, 214.0, 86.0, 0.0]
    assert r.n_winners == 4
    assert r.rejected.tolist() == [False, False, False, False, True]
    assert np.sum(r.fills) == 1000.0
