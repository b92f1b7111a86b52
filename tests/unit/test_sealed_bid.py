"""Uniform-price sealed-bid auction: hand-worked books."""

from __future__ import annotations

import numpy as np
import pytest

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
