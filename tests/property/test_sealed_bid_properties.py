"""Invariants of the sealed-bid auction's EU Auctioning Regulation options (Art. 7).

Random order of tied bids (Art. 7(2), 7(4)), cancellation below a bid cover (Art. 7(5)) and
below a share of the secondary-market price (Art. 7(6)); see
:mod:`carbonsim.clearing.sealed_bid`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from carbonsim.clearing import SealedBidResult, sealed_bid_auction

TICK = 0.01
LO_T, HI_T = 4990, 5010  # prices 49.90 .. 50.10


@st.composite
def eu_books(draw: st.DrawFn, max_bids: int = 10) -> dict[str, Any]:
    """Few price levels (many ties), whole-tonne bids, a supply around the bid volume."""
    n = draw(st.integers(0, max_bids))
    ticks = draw(st.lists(st.integers(LO_T, LO_T + 4), min_size=n, max_size=n))
    return {
        "bid_price": np.array(ticks, dtype=float) / 100,
        "bid_qty": np.array(draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)), float),
        "supply": float(draw(st.integers(0, 120))),
        "reserve_price": draw(st.integers(LO_T - 1, LO_T + 2)) / 100,
    }


@st.composite
def art7_options(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    alloc = draw(st.sampled_from(["pro_rata", "price_time", "random"]))
    out["allocation"] = alloc
    if alloc == "random":
        out["seed"] = draw(st.integers(0, 2**32))
    if draw(st.booleans()):
        out["min_cover"] = draw(st.sampled_from([0.5, 1.0, 1.25, 2.0]))
    if draw(st.booleans()):
        out["secondary_price"] = draw(st.integers(LO_T, HI_T)) / 100
        out["min_price_ratio"] = draw(st.sampled_from([0.5, 0.999, 1.0]))
    return out


def _run(b: dict[str, Any], **kw: Any) -> SealedBidResult:
    return sealed_bid_auction(
        b["bid_price"],
        b["bid_qty"],
        supply=b["supply"],
        reserve_price=b["reserve_price"],
        tick=TICK,
        **kw,
    )


def _ticks(b: dict[str, Any]) -> np.ndarray:
    return np.rint(b["bid_price"] * 100).astype(np.int64)


def _accepted_total(b: dict[str, Any]) -> float:
    accepted = _ticks(b) >= round(b["reserve_price"] * 100)
    return float(b["bid_qty"][accepted].sum())


@given(eu_books(), art7_options())
def test_fill_invariants(b: dict[str, Any], opts: dict[str, Any]) -> None:
    r = _run(b, **opts)
    qty = b["bid_qty"]
    assert np.all(r.fills >= 0)
    assert np.all(r.fills <= qty)  # fills never exceed bids
    assert np.all(r.fills[r.rejected] == 0)
    assert r.fills.sum() == r.volume
    assert r.unsold == b["supply"] - r.volume
    assert r.n_winners == np.count_nonzero(r.fills)
    assert r.cancelled == (r.cancel_reason is not None)
    if r.cancelled:
        assert r.volume == 0.0
        assert r.price_tick is None
        assert np.isnan(r.price)
        assert r.n_winners == 0
        return
    # Not cancelled: everything bid is sold up to the supply ...
    assert r.volume == min(b["supply"], _accepted_total(b))
    if r.price_tick is None:
        assert r.volume == 0.0
        return
    # ... everyone above the price in full (Art. 7(3)), nobody below it.
    t = _ticks(b)
    assert np.array_equal(r.fills[t > r.price_tick], qty[t > r.price_tick])
    assert np.all(r.fills[t < r.price_tick] == 0)
    assert r.price >= b["reserve_price"]


@given(eu_books(), art7_options())
def test_cancellation_conditions(b: dict[str, Any], opts: dict[str, Any]) -> None:
    r = _run(b, **opts)
    plain = _run(b, allocation="price_time")
    supply = b["supply"]
    cover_fails = (
        "min_cover" in opts and supply > 0 and _accepted_total(b) / supply < opts["min_cover"]
    )
    price_fails = (
        "secondary_price" in opts
        and plain.price_tick is not None
        and plain.price < opts["min_price_ratio"] * opts["secondary_price"] - 1e-9
    )
    assert r.cancelled == (cover_fails or price_fails)
    if cover_fails:
        assert r.cancel_reason is not None
        assert r.cancel_reason.startswith("Art. 7(5)")
    elif price_fails:
        assert r.cancel_reason is not None
        assert r.cancel_reason.startswith("Art. 7(6)")
    else:  # the options that did not cancel change nothing but the tied bids' order
        assert r.price_tick == plain.price_tick
        assert r.volume == plain.volume


@given(eu_books(), st.integers(0, 2**32))
def test_random_allocation_is_price_time_on_a_permutation_of_the_tied_bids(
    b: dict[str, Any], seed: int
) -> None:
    r = _run(b, allocation="random", seed=seed)
    again = _run(b, allocation="random", seed=seed)
    assert r.fills.tobytes() == again.fills.tobytes()  # same seed, same allocation
    plain = _run(b, allocation="price_time")
    assert r.price_tick == plain.price_tick
    assert r.volume == plain.volume
    if r.price_tick is None:
        assert not r.fills.any()
        return
    tied = np.flatnonzero((_ticks(b) == r.price_tick) & ~r.rejected)
    others = np.setdiff1d(np.arange(r.fills.size), tied)
    assert np.array_equal(r.fills[others], plain.fills[others])
    # Order the tied bids as: filled in full, the one partly filled, the rest. Price-time
    # allocation of the book with the tied bids in that order gives the same fills.
    qty = b["bid_qty"]
    f = r.fills[tied]
    partial = (f > 0) & (f < qty[tied])
    assert partial.sum() <= 1
    key = np.where(f == qty[tied], 0, np.where(partial, 1, 2))
    order = tied[np.argsort(key, kind="stable")]
    perm = np.arange(r.fills.size)
    perm[tied] = order
    replay = sealed_bid_auction(
        b["bid_price"][perm],
        qty[perm],
        supply=b["supply"],
        reserve_price=b["reserve_price"],
        tick=TICK,
        allocation="price_time",
    )
    assert np.array_equal(replay.fills, r.fills[perm])


@given(eu_books(), st.integers(0, 3))
def test_cover_exactly_at_the_threshold_stands(b: dict[str, Any], extra: int) -> None:
    total, supply = _accepted_total(b), b["supply"]
    if supply == 0 or total == 0:
        return
    cover = total / supply
    at = _run(b, min_cover=cover)
    assert not at.cancelled
    assert at.volume == min(supply, total)
    above = _run(b, min_cover=float(np.nextafter(cover, np.inf)) + extra)
    assert above.cancelled
    assert above.cancel_reason is not None
    assert above.cancel_reason.startswith("Art. 7(5)")


@given(eu_books(), st.sampled_from([1.0, 0.5, 0.25]))
def test_price_exactly_at_the_threshold_stands(b: dict[str, Any], ratio: float) -> None:
    plain = _run(b)
    if plain.price_tick is None:
        return
    # ratio x secondary lands exactly on the clearing price, then one tick above it
    at = _run(b, secondary_price=plain.price / ratio, min_price_ratio=ratio)
    assert not at.cancelled
    assert at.fills.tobytes() == plain.fills.tobytes()
    up = (plain.price_tick + 1) / 100
    above = _run(b, secondary_price=up / ratio, min_price_ratio=ratio)
    assert above.cancelled
    assert above.cancel_reason is not None
    assert above.cancel_reason.startswith("Art. 7(6)")
    assert not above.fills.any()
