"""Uniform-price sealed-bid auction: hand-worked books."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from carbonsim._random import SeedLike, as_generator
from carbonsim.clearing import sealed_bid_auction
from carbonsim.clearing.reference import brute_force_sealed_bid


def _beijing_like_book() -> tuple[np.ndarray, np.ndarray]:
    """A constructed book with the published aggregates of Beijing's September 2024 paid
    allocation auction (68 bidders, 63 winners, 348,304 t at 104.89 yuan/t); the bids
    themselves are invented."""
    above = 105.00 + 0.10 * np.arange(59)  # 59 bidders x 5,600 t = 330,400 t above
    prices = np.concatenate(
        [np.round(above, 2), [104.89] * 4, [104.50, 103.00, 100.00], [85.00, 80.00]]
    )
    qty = np.concatenate([[5600] * 59, [8000, 6000, 4000, 2000], [1000] * 3, [1000] * 2])
    return prices, qty.astype(float)


def test_beijing_like_book_pro_rata() -> None:
    prices, qty = _beijing_like_book()
    r = sealed_bid_auction(prices, qty, supply=348_304, reserve_price=90.0)
    # 330,400 t above 104.89; 20,000 t at 104.89 covers the remaining 17,904 t.
    # 17,904 x (0.4, 0.3, 0.2, 0.1) = 7161.6, 5371.2, 3580.8, 1790.4 -> floors sum to 17,902;
    # the 2 units left go to the largest remainders (.8, then .6): 7162, 5371, 3581, 1790.
    assert len(prices) == 68
    assert r.price == 104.89
    assert r.price_tick == 10489
    assert r.volume == 348_304.0
    assert r.unsold == 0.0
    assert r.n_winners == 63
    assert r.fills[59:63].tolist() == [7162.0, 5371.0, 3581.0, 1790.0]
    assert r.fills[:59].tolist() == [5600.0] * 59
    assert r.fills[63:].tolist() == [0.0] * 5
    assert r.rejected.sum() == 2
    assert r.supply == 348_304.0


def test_beijing_like_book_price_time() -> None:
    prices, qty = _beijing_like_book()
    r = sealed_bid_auction(prices, qty, supply=348_304, reserve_price=90.0, allocation="price_time")
    # 17,904 t at the margin in input order: 8,000, 6,000, then 3,904, then nothing.
    assert r.fills[59:63].tolist() == [8000.0, 6000.0, 3904.0, 0.0]
    assert r.n_winners == 62


def test_undersubscribed_price_is_lowest_accepted_bid() -> None:
    r = sealed_bid_auction([105.0, 102.0, 95.0], [100, 50, 40], supply=200, reserve_price=100.0)
    assert r.price == 102.0
    assert r.volume == 150.0
    assert r.unsold == 50.0
    assert r.fills.tolist() == [100.0, 50.0, 0.0]
    assert r.rejected.tolist() == [False, False, True]


def test_exactly_covered_supply() -> None:
    r = sealed_bid_auction([105.0, 102.0], [100, 100], supply=200, reserve_price=100.0)
    assert (r.price, r.volume, r.unsold) == (102.0, 200.0, 0.0)


def test_nothing_accepted() -> None:
    r = sealed_bid_auction([95.0, 99.99], [10, 10], supply=100, reserve_price=100.0)
    assert np.isnan(r.price)
    assert r.price_tick is None
    assert r.volume == 0.0
    assert r.unsold == 100.0
    assert r.n_winners == 0
    assert r.rejected.tolist() == [True, True]


def test_zero_supply_sells_nothing() -> None:
    r = sealed_bid_auction([105.0], [10], supply=0, reserve_price=100.0)
    assert r.volume == 0.0
    assert np.isnan(r.price)


def test_empty_book() -> None:
    r = sealed_bid_auction([], [], supply=10, reserve_price=1.0)
    assert r.fills.shape == (0,)
    assert r.unsold == 10.0


def test_reserve_is_snapped_up_and_inclusive() -> None:
    r = sealed_bid_auction([100.00, 100.01], [10, 10], supply=100, reserve_price=100.005)
    assert r.rejected.tolist() == [True, False]
    assert r.price == 100.01
    at_reserve = sealed_bid_auction([100.0], [10], supply=5, reserve_price=100.0)
    assert at_reserve.price == 100.0
    assert at_reserve.volume == 5.0


def test_zero_quantity_bids_do_not_set_the_price() -> None:
    r = sealed_bid_auction([120.0, 105.0], [0, 10], supply=20, reserve_price=100.0)
    assert r.price == 105.0
    assert r.fills.tolist() == [0.0, 10.0]
    assert r.n_winners == 1


def test_fractional_supply_is_rationed_proportionally() -> None:
    r = sealed_bid_auction([101.0, 101.0], [3, 1], supply=2.5, reserve_price=100.0)
    np.testing.assert_allclose(r.fills, [1.875, 0.625])
    assert r.volume == 2.5


def test_result_arrays_are_read_only() -> None:
    r = sealed_bid_auction([101.0], [3], supply=2, reserve_price=100.0)
    with pytest.raises(ValueError, match="read-only"):
        r.fills[0] = 0.0


@pytest.mark.parametrize("allocation", ["pro_rata", "price_time"])
def test_beijing_like_book_matches_brute_force(allocation: str) -> None:
    prices, qty = _beijing_like_book()
    r = sealed_bid_auction(prices, qty, supply=348_304, reserve_price=90.0, allocation=allocation)
    bf = brute_force_sealed_bid(
        prices, qty, supply=348_304, reserve_price=90.0, allocation=allocation
    )
    assert r.price_tick == bf.price_tick
    assert r.volume == bf.volume
    assert r.fills.tolist() == [float(x) for x in bf.fills]


# --------------------------------------------------------------------------------------
# EU Auctioning Regulation, Article 7 (Regulation (EU) No 1031/2010, replaced by Delegated
# Regulation (EU) 2023/2830): random order of tied bids, cancellation rules.


def _eu_book() -> tuple[np.ndarray, np.ndarray]:
    """60 t above the clearing price, three tied 30 t bids at it, one bid below."""
    return np.array([30.00, 29.50, 29.50, 29.50, 29.00]), np.array([60.0, 30, 30, 30, 50])


def test_art7_2_4_random_order_last_bid_takes_the_remainder() -> None:
    prices, qty = _eu_book()
    r = sealed_bid_auction(prices, qty, supply=100, reserve_price=0.0, allocation="random", seed=11)
    # Art. 7(3): the bid above the price in full; Art. 7(2), 7(4): the tied bids in a random
    # order, each in full until the 40 t left are less than the next bid, which gets 10 t.
    assert (r.price, r.volume, r.cancelled, r.cancel_reason) == (29.5, 100.0, False, None)
    assert r.fills[0] == 60.0
    assert sorted(r.fills[1:4].tolist()) == [0.0, 10.0, 30.0]
    assert r.fills[4] == 0.0
    assert r.n_winners == 3


def test_art7_2_random_order_is_reproducible_and_varies_with_the_seed() -> None:
    prices, qty = _eu_book()

    def fills(seed: SeedLike) -> tuple[float, ...]:
        r = sealed_bid_auction(
            prices, qty, supply=100, reserve_price=0.0, allocation="random", seed=seed
        )
        return tuple(r.fills.tolist())

    assert fills(3) == fills(3)
    assert fills(np.random.SeedSequence(3)) == fills(3)
    assert fills(as_generator(3)) == fills(3)
    # every tied bid is first in line for some seed
    firsts = {int(np.argmax(fills(s)[1:4])) for s in range(40)}
    assert firsts == {0, 1, 2}


def test_art7_2_random_order_is_fair_between_equal_bids() -> None:
    wins = 0
    for s in range(400):
        r = sealed_bid_auction(
            [50.0, 50.0], [10, 10], supply=10, reserve_price=0.0, allocation="random", seed=s
        )
        assert sorted(r.fills.tolist()) == [0.0, 10.0]
        wins += int(r.fills[0] == 10.0)
    assert 160 <= wins <= 240  # binomial(400, 1/2): mean 200, sd 10


def test_random_allocation_on_the_beijing_like_book() -> None:
    prices, qty = _beijing_like_book()
    r = sealed_bid_auction(
        prices, qty, supply=348_304, reserve_price=90.0, allocation="random", seed=2024
    )
    assert r.price == 104.89
    assert r.fills[:59].tolist() == [5600.0] * 59
    margin = r.fills[59:63]
    assert margin.sum() == 17_904.0
    partial = (margin > 0) & (margin < qty[59:63])
    assert partial.sum() <= 1
    full = margin == qty[59:63]
    # the bids filled in full plus the one partial fill make up the 17,904 t
    assert margin[full].sum() + margin[partial].sum() == 17_904.0


def test_art7_5_cancelled_below_cover_stands_at_it() -> None:
    prices, qty = _eu_book()  # 200 t bid in all
    at = sealed_bid_auction(prices, qty, supply=200, reserve_price=0.0, min_cover=1.0)
    assert not at.cancelled
    assert at.volume == 200.0
    below = sealed_bid_auction(prices, qty, supply=201, reserve_price=0.0, min_cover=1.0)
    assert below.cancelled
    assert below.cancel_reason is not None
    assert below.cancel_reason.startswith("Art. 7(5)")
    assert "min_cover=1.0" in below.cancel_reason
    assert np.isnan(below.price)
    assert below.price_tick is None
    assert (below.volume, below.unsold, below.n_winners) == (0.0, 201.0, 0)
    assert below.fills.tolist() == [0.0] * 5
    # Without min_cover the same auction sells what is bid (the default rule).
    plain = sealed_bid_auction(prices, qty, supply=201, reserve_price=0.0)
    assert (plain.cancelled, plain.volume, plain.unsold) == (False, 200.0, 1.0)


def test_art7_5_cover_ratio_exactly_at_a_decimal_threshold() -> None:
    # 110 / 100 == 1.1 exactly in floating point although 1.1 * 100 != 110
    r = sealed_bid_auction([10.0], [110], supply=100, reserve_price=0.0, min_cover=1.1)
    assert not r.cancelled
    r = sealed_bid_auction([10.0], [109], supply=100, reserve_price=0.0, min_cover=1.1)
    assert r.cancelled


def test_art7_5_rejected_bids_do_not_count_towards_cover() -> None:
    r = sealed_bid_auction([105.0, 95.0], [50, 50], supply=60, reserve_price=100.0, min_cover=1.0)
    assert r.cancelled
    assert r.rejected.tolist() == [False, True]
    nothing = sealed_bid_auction([95.0], [50], supply=60, reserve_price=100.0, min_cover=1.0)
    assert nothing.cancelled
    zero_supply = sealed_bid_auction([95.0], [50], supply=0, reserve_price=100.0, min_cover=1.0)
    assert not zero_supply.cancelled


def test_art7_6_cancelled_below_the_secondary_threshold_stands_at_it() -> None:
    kw: dict[str, Any] = {"reserve_price": 0.0, "secondary_price": 100.0, "min_price_ratio": 0.8}
    at = sealed_bid_auction([80.00, 70.0], [10, 10], supply=10, **kw)
    assert (at.cancelled, at.price, at.volume) == (False, 80.0, 10.0)
    below = sealed_bid_auction([79.99, 70.0], [10, 10], supply=10, **kw)
    assert below.cancelled
    assert below.cancel_reason is not None
    assert below.cancel_reason.startswith("Art. 7(6): clearing price 79.99 is below 80.0")
    assert np.isnan(below.price)
    assert below.volume == 0.0
    assert below.fills.tolist() == [0.0, 0.0]


def test_art7_6_threshold_is_snapped_up_to_the_tick_grid() -> None:
    # 0.9 x 104.89 = 94.401: 94.41 is the lowest price on the grid at or above it
    kw: dict[str, Any] = {
        "supply": 10,
        "reserve_price": 0.0,
        "secondary_price": 104.89,
        "min_price_ratio": 0.9,
    }
    assert not sealed_bid_auction([94.41], [10], **kw).cancelled
    assert sealed_bid_auction([94.40], [10], **kw).cancelled


def test_art7_6_undersubscribed_auction_is_judged_on_its_price() -> None:
    kw: dict[str, Any] = {"reserve_price": 0.0, "secondary_price": 50.0, "min_price_ratio": 1.0}
    r = sealed_bid_auction([50.0], [5], supply=10, **kw)
    assert (r.cancelled, r.volume, r.unsold) == (False, 5.0, 5.0)
    empty = sealed_bid_auction([], [], supply=10, **kw)
    assert not empty.cancelled
    assert empty.volume == 0.0


def test_art7_5_is_checked_before_art7_6() -> None:
    r = sealed_bid_auction(
        [10.0],
        [5],
        supply=10,
        reserve_price=0.0,
        min_cover=1.0,
        secondary_price=100.0,
        min_price_ratio=0.8,
    )
    assert r.cancel_reason is not None
    assert r.cancel_reason.startswith("Art. 7(5)")


def test_default_result_is_not_cancelled() -> None:
    prices, qty = _beijing_like_book()
    r = sealed_bid_auction(prices, qty, supply=348_304, reserve_price=90.0)
    assert r.cancelled is False
    assert r.cancel_reason is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"allocation": "lottery"}, ValueError, r"allocation.*'lottery'.*'random'"),
        ({"allocation": "random"}, ValueError, r"allocation='random' needs seed="),
        ({"seed": 3}, ValueError, r"seed is used only with allocation='random', got seed=3"),
        ({"allocation": "random", "seed": -1}, ValueError, r"seed must be >= 0, got -1"),
        ({"allocation": "random", "seed": "x"}, TypeError, r"seed must be"),
        ({"min_cover": 0.0}, ValueError, r"min_cover must be > 0.*got 0\.0"),
        ({"min_cover": -1}, ValueError, r"min_cover must be > 0.*got -1\.0"),
        ({"min_cover": float("inf")}, ValueError, r"min_cover must be finite, got inf"),
        ({"min_cover": "1"}, TypeError, r"min_cover must be a real number, got '1'"),
        ({"secondary_price": 100.0}, ValueError, r"secondary_price=100\.0 needs min_price_ratio"),
        ({"min_price_ratio": 0.8}, ValueError, r"min_price_ratio=0\.8 needs secondary_price"),
        (
            {"secondary_price": 0.0, "min_price_ratio": 0.8},
            ValueError,
            r"secondary_price must be > 0, got 0\.0",
        ),
        (
            {"secondary_price": float("nan"), "min_price_ratio": 0.8},
            ValueError,
            r"secondary_price must be finite, got nan",
        ),
        (
            {"secondary_price": 100.0, "min_price_ratio": 1.2},
            ValueError,
            r"min_price_ratio must lie in \(0, 1\], got 1\.2",
        ),
        (
            {"secondary_price": 100.0, "min_price_ratio": 0},
            ValueError,
            r"min_price_ratio must lie in \(0, 1\], got 0\.0",
        ),
        (
            {"secondary_price": 100.0, "min_price_ratio": True},
            TypeError,
            r"min_price_ratio must be a real number, got True",
        ),
    ],
)
def test_art7_arguments_are_validated(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        sealed_bid_auction([50.0], [10], supply=10, reserve_price=0.0, **kwargs)
