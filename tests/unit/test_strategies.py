"""Trading strategies: protocol conformance, registry, and behaviour near deadlines."""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim._random import BatchRandom, replicate_seeds
from carbonsim._registry import UnknownPluginError
from carbonsim.agents import (
    STRATEGIES,
    ComplianceTrader,
    MarketView,
    NoiseTrader,
    Orders,
    Strategy,
    check_strategy,
    make_strategy,
)
from carbonsim.agents.base import BLOCK


def _rng(seed: int, replicates: int = 1) -> BatchRandom:
    return BatchRandom(replicate_seeds(seed, replicates))


def _view(sessions_to_deadline: int, gap_sign: float = 1.0, n: int = 2000) -> MarketView:
    size = np.full(n, 1e6)
    holdings = np.full((1, n), 1e6)
    return MarketView(
        session=0,
        sessions_to_deadline=sessions_to_deadline,
        sessions_in_cycle=242,
        last_close=np.array([50.0]),
        expected_price=np.array([50.0]),
        holdings=holdings,
        expected_obligation=holdings + gap_sign * 2e5,
        obligation_certainty=1.0,
        unit_size=size,
    )


@pytest.mark.parametrize("name", ["compliance", "noise"])
def test_registered_strategies_conform(name: str) -> None:
    strategy = make_strategy(name)
    assert isinstance(strategy, Strategy)
    check_strategy(strategy)


def test_unknown_strategy_lists_valid_names() -> None:
    with pytest.raises(UnknownPluginError, match="'compliance', 'noise'"):
        make_strategy("momentum")


def test_bad_strategy_parameter_names_strategy() -> None:
    with pytest.raises(TypeError, match="strategy 'compliance'"):
        make_strategy("compliance", {"no_such": 1})


def test_invalid_parameter_values_rejected() -> None:
    with pytest.raises(ValueError, match=r"ComplianceTrader.base_rate must lie in \[0.0, 1.0\]"):
        ComplianceTrader(base_rate=1.5)
    with pytest.raises(ValueError, match=r"NoiseTrader\.activity"):
        NoiseTrader(activity=-0.1)


def test_demand_sharpens_as_deadline_nears() -> None:
    trader = ComplianceTrader(base_rate=0.02, deadline_rate=0.5, urgency_horizon=20)
    far = trader.orders(_view(200), _rng(0))
    near = trader.orders(_view(0), _rng(0))
    assert near.qty.sum() > 5 * far.qty.sum()
    assert trader.hazard(0) == pytest.approx(0.52)
    assert trader.hazard(10_000) == pytest.approx(0.02)


def test_short_units_bid_long_units_offer() -> None:
    trader = ComplianceTrader(base_rate=1.0)
    far = 100_000  # sessions to the deadline: the deadline effect is nil
    short = trader.orders(_view(far, +1.0, n=50), _rng(1))
    long_ = trader.orders(_view(far, -1.0, n=50), _rng(1))
    assert short.is_buy.all()
    assert not long_.is_buy.any()
    # cover half of the 200,000 t gap; long units bank 30% of the half they would sell
    np.testing.assert_array_equal(short.qty, 100_000.0)
    np.testing.assert_array_equal(long_.qty, 70_000.0)


def test_full_gap_covered_at_the_deadline() -> None:
    trader = ComplianceTrader(base_rate=1.0, min_order=1000.0)
    view = _view(0, +1.0, n=5)
    view = view.replace(expected_obligation=view.holdings + 250.0)
    orders = trader.orders(view, _rng(1))
    # on the last session even a 250 t gap (below min_order) is bought in full
    np.testing.assert_array_equal(orders.qty, 250.0)


def test_large_orders_route_to_block_segment() -> None:
    trader = ComplianceTrader(base_rate=1.0, block_share=1.0)
    orders = trader.orders(_view(0, +1.0, n=10), _rng(2))
    assert (orders.segment == BLOCK).all()


def test_buyers_pay_more_than_sellers_ask_on_average() -> None:
    trader = ComplianceTrader(base_rate=1.0)
    bids = trader.orders(_view(0, +1.0), _rng(3))
    asks = trader.orders(_view(0, -1.0), _rng(3))
    assert bids.price.mean() > asks.price.mean()


def test_noise_trader_never_oversells() -> None:
    view = _view(100)
    view = view.replace(holdings=np.zeros_like(view.holdings))
    orders = NoiseTrader(activity=1.0).orders(view, _rng(4))
    assert orders.is_buy.all()


def test_orders_concat_and_empty() -> None:
    a = ComplianceTrader(base_rate=1.0).orders(_view(0, n=5), _rng(5))
    both = Orders.concat([a, Orders.empty(), a])
    assert len(both) == 2 * len(a)
    assert len(Orders.concat([])) == 0
    with pytest.raises(ValueError, match="equal lengths"):
        Orders(
            replicate=np.zeros(2, np.int64),
            unit=np.zeros(1, np.int64),
            is_buy=np.zeros(2, bool),
            price=np.ones(2),
            qty=np.ones(2),
        )


def test_check_strategy_catches_overselling() -> None:
    class Greedy:
        name = "greedy"

        def orders(self, view: MarketView, rng: BatchRandom) -> Orders:
            mask = np.ones(view.holdings.shape, bool)
            return Orders.from_grid(
                mask,
                np.zeros_like(mask),
                np.full(mask.shape, 50.0),
                np.floor(view.holdings) + 1.0,
            )

    with pytest.raises(AssertionError, match="offers more than it holds"):
        check_strategy(Greedy())


def test_check_strategy_catches_irreproducible() -> None:
    class Global:
        name = "global"
        calls = 0

        def orders(self, view: MarketView, rng: BatchRandom) -> Orders:
            Global.calls += 1
            mask = np.zeros(view.holdings.shape, bool)
            mask[0, 0] = True
            qty = np.full(mask.shape, float(Global.calls))
            return Orders.from_grid(mask, mask, np.full(mask.shape, 50.0), qty)

    with pytest.raises(AssertionError, match="not reproducible"):
        check_strategy(Global())


def test_registry_lists_builtin_names() -> None:
    assert {"compliance", "noise"} <= set(STRATEGIES.names())


def test_batch_invariance_of_orders() -> None:
    """Replicate k's orders do not depend on how many replicates share the batch."""
    trader = ComplianceTrader(base_rate=0.3)
    one = _view(10, n=30)
    three = one.replace(
        holdings=np.repeat(one.holdings, 3, axis=0),
        expected_obligation=np.repeat(one.expected_obligation, 3, axis=0),
        last_close=np.repeat(one.last_close, 3),
        expected_price=np.repeat(one.expected_price, 3),
    )
    seeds = replicate_seeds(9, 3)
    batch = trader.orders(three, BatchRandom(seeds))
    alone = trader.orders(one, BatchRandom(seeds[2:3]))
    k = batch.replicate == 2
    np.testing.assert_array_equal(batch.price[k], alone.price)
    np.testing.assert_array_equal(batch.qty[k], alone.qty)
