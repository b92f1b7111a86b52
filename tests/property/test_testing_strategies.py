"""The public hypothesis strategies and assertion helpers of carbonsim.testing, in use.

Written the way a plug-in author would use them: draw inputs with
:mod:`carbonsim.testing.strategies`, run the kernel, check it with the assertion helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsim.clearing import call_auction, call_auction_batch, match_stream
from carbonsim.engine.simulation import simulate
from carbonsim.market.ledger import Ledger
from carbonsim.market.units import SECTORS, UnitTable
from carbonsim.scenario import load_scenario, scenario_from_dict, with_overrides
from carbonsim.testing import (
    assert_batch_clearing_invariants,
    assert_clearing_invariants,
    assert_ledger_conserved,
    assert_results_equal,
)
from carbonsim.testing.strategies import (
    batched_books,
    order_books,
    order_streams,
    scenario_documents,
    unit_tables,
)


@st.composite
def auction_options(draw: st.DrawFn, book: dict[str, Any]) -> dict[str, Any]:
    """Allocation rule, reference price and price band around a book's prices."""
    opts: dict[str, Any] = {"allocation": draw(st.sampled_from(["pro_rata", "price_time"]))}
    prices = np.concatenate([book["bid_price"], book["ask_price"]])
    mid = float(np.median(prices)) if prices.size else 50.0
    if draw(st.booleans()):
        opts["reference_price"] = mid
    if draw(st.booleans()):
        width = draw(st.floats(0.0, 0.2)) * mid + 2 * book["tick"]
        opts["price_band"] = (mid - width, mid + width)
        opts["band_mode"] = draw(st.sampled_from(["reject", "clip"]))
    return opts


@given(st.data(), order_books(tick=None, on_grid=False))
def test_call_auction_invariants(data: st.DataObject, book: dict[str, Any]) -> None:
    opts = data.draw(auction_options(book))
    assert_clearing_invariants(call_auction(**book, **opts), **book, **opts)


@given(st.data(), order_books(integer_quantities=False, max_qty=10.0))
def test_call_auction_invariants_fractional(data: st.DataObject, book: dict[str, Any]) -> None:
    opts = data.draw(auction_options(book))
    assert_clearing_invariants(call_auction(**book, **opts), **book, **opts)


@given(batched_books(tick=None, reference_prices=True), st.sampled_from(["pro_rata", "price_time"]))
def test_batch_invariants(batch: dict[str, Any], allocation: str) -> None:
    result = call_auction_batch(**batch, allocation=allocation)
    assert_batch_clearing_invariants(result, **batch)


@given(order_streams(tick=None))
def test_order_book_conserves_every_order(stream: dict[str, Any]) -> None:
    res = match_stream(**stream)
    o, t = res.orders, res.trades
    assert np.array_equal(o.qty, o.filled + o.resting + o.cancelled + o.rejected)
    n = len(o)
    assert np.array_equal(
        np.bincount(t.buy_order, weights=t.qty, minlength=n)[o.side == 1], o.filled[o.side == 1]
    )
    assert np.array_equal(
        np.bincount(t.sell_order, weights=t.qty, minlength=n)[o.side == -1], o.filled[o.side == -1]
    )
    if "price_band" in stream and len(t):
        lo, hi = stream["price_band"]
        assert np.all((t.price >= lo - 1e-9) & (t.price <= hi + 1e-9))
    book = res.book
    if book.bid_price.size and book.ask_price.size:
        assert book.best_bid < book.best_ask  # never crossed


@given(unit_tables(max_units=12))
def test_unit_tables_are_valid_and_round_trip(units: UnitTable) -> None:
    emissions = units.baseline_emissions()
    assert np.all(np.isfinite(emissions))
    assert np.all(emissions >= 0)
    power = units.in_sector("power")
    assert np.all(units.subtype[power] > 0)
    assert np.all(units.subtype[~power] == 0)
    back = UnitTable.from_frame(units.to_frame())
    for field in ("sector", "subtype", "product_t", "mac_step_cost", "mac_step_share"):
        assert np.array_equal(getattr(back, field), getattr(units, field)), field


@given(unit_tables(min_units=2, max_units=8, sectors=["power", "cement"]))
def test_sector_selection(units: UnitTable) -> None:
    assert set(units.sector_labels()) <= {"power", "cement"}
    assert set(SECTORS) >= set(units.sector_labels())


@settings(max_examples=30)
@given(
    unit_tables(min_units=2, max_units=6),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 50)), max_size=8),
    st.floats(1.0, 200.0),
)
def test_ledger_over_drawn_units_is_conserved(
    units: UnitTable, trades: list[tuple[int, int, int]], price: float
) -> None:
    """Allocate each unit its baseline emissions, trade between random pairs, surrender."""
    n = units.n_units
    led = Ledger(2, units.names, [2023, 2024], offset_classes=("ccer",))
    alloc = np.floor(units.baseline_emissions()).astype(np.int64)
    led.issue(2023, [int(alloc.sum())] * 2)
    led.allocate(2023, np.stack([alloc, alloc]))
    assert_ledger_conserved(led)
    buy = np.zeros((2, n), np.int64)
    sell = np.zeros((2, n), np.int64)
    for seller, buyer, qty in trades:
        s, b = seller % n, buyer % n
        q = min(qty, int(alloc[s]) - int(sell[0, s]))
        if s != b and q > 0:
            sell[:, s] += q
            buy[:, b] += q
    led.settle_trades(buy, sell, price=[price, price])
    report = assert_ledger_conserved(led)
    assert report.allowances_issued.tolist() == [int(alloc.sum())] * 2
    held = led.allowances[:, :, 0]
    led.surrender(held // 2, vintages=[2023])
    assert_ledger_conserved(led)


@given(scenario_documents(min_units=2, max_units=40))
def test_scenario_documents_are_valid(doc: dict[str, Any]) -> None:
    scenario = scenario_from_dict(doc)
    assert scenario.population.n_units == doc["population"]["n_units"]
    assert 2 <= scenario.population.n_units <= 40


def _limits_on_grid(doc: dict[str, Any]) -> dict[str, Any]:
    """Move policy limits onto the tick grid (see test_price_limit_off_the_tick_grid)."""
    tick = doc["trading"]["tick"]
    policy = doc.get("policy", {})
    for key in ("price_floor", "price_ceiling"):
        if key in policy:
            policy[key] = max(round(policy[key] / tick), 1 if key == "price_ceiling" else 0) * tick
    return doc


@settings(max_examples=6)
@given(scenario_documents(min_units=2, max_units=15, max_days=60))
def test_perturbed_scenarios_run_with_invariants_checked(doc: dict[str, Any]) -> None:
    """Every perturbed tiny scenario runs, conserves and repeats bit for bit."""
    scenario = scenario_from_dict(_limits_on_grid(doc))
    a = simulate(scenario, seed=3, replicates=2, check_invariants=True)
    b = simulate(scenario, seed=3, replicates=2)
    assert_results_equal(a, b)


def test_price_limit_off_the_tick_grid() -> None:
    """Found by scenario_documents: a limit between two ticks is snapped inward."""
    tiny = load_scenario("china-national-tiny")  # opens at 48 yuan/t, tick 0.01
    res = simulate(with_overrides(tiny, {"policy.price_ceiling": 30.005}), seed=0)
    assert res.market["price"].max() <= 30.0
    with pytest.raises(ValueError, match="leave no price on the tick grid"):
        simulate(
            with_overrides(tiny, {"policy.price_floor": 30.001, "policy.price_ceiling": 30.005}),
            seed=0,
        )
