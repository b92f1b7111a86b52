"""One engine: the deprecated ``backend=`` keyword changes nothing, and the exchange's
routing rules (offers within holdings, segment limits, foreign cells refused)."""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim.agents.base import BLOCK, LISTED, MarketView, Orders
from carbonsim.engine import Simulation, simulate
from carbonsim.engine.exchange import route_orders as route
from carbonsim.scenario import load_scenario
from carbonsim.testing import result_digest


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_deprecated_backend_keyword_warns_and_runs_the_one_engine(backend: str) -> None:
    sc = load_scenario("china-national-tiny")
    plain = simulate(sc, seed=3)
    with pytest.warns(DeprecationWarning, match="one engine"):
        old = simulate(sc, seed=3, backend=backend)
    assert result_digest(old) == result_digest(plain)
    with pytest.warns(DeprecationWarning, match="drop the keyword"):
        Simulation(sc, backend=backend)


@pytest.mark.parametrize("bad", ["cuda", 3])
def test_unknown_backend_is_refused_naming_the_value(bad: object) -> None:
    sc = load_scenario("china-national-tiny")
    with pytest.raises(ValueError, match="backend: got"):
        Simulation(sc, backend=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend: got"):
        simulate(sc, backend=bad)  # type: ignore[arg-type]


def _view(holdings: np.ndarray) -> MarketView:
    r, n = holdings.shape
    return MarketView(
        session=0,
        sessions_to_deadline=10,
        sessions_in_cycle=100,
        holdings=holdings,
        expected_obligation=np.zeros((r, n)),
        obligation_certainty=1.0,
        last_close=np.full(r, 50.0),
        expected_price=np.full(r, 50.0),
        unit_size=np.full(n, 1e4),
    )


def test_routing_scales_offers_to_holdings_and_refuses_foreign_cells() -> None:
    view = _view(np.array([[10.0, 0.0, 7.0]]))
    orders = Orders(
        replicate=np.zeros(4, np.int64),
        unit=np.array([0, 0, 2, 1]),
        is_buy=np.array([False, False, False, True]),
        price=np.full(4, 50.0),
        qty=np.array([8.0, 12.0, 5.0, 200.0]),
        segment=np.array([LISTED, LISTED, LISTED, BLOCK]),
    )
    out = route(orders, view, 3, 100.0, 150.0)
    # unit 0 offers 20 t but holds 10: both offers halved; unit 2 keeps 5 t; the 200 t
    # block bid stays in the block segment
    assert out.qty.tolist() == [4.0, 6.0, 5.0, 200.0]
    assert out.segment.tolist() == [LISTED, LISTED, LISTED, BLOCK]
    small_block = route(orders, view, 3, 500.0, 150.0)  # below the block minimum: listed,
    assert small_block.segment.tolist() == [LISTED] * 4  # then capped below the listed max
    assert small_block.qty.tolist() == [4.0, 6.0, 5.0, 149.0]
    bad = Orders(
        replicate=np.zeros(2, np.int64),
        unit=np.array([1, 3]),
        is_buy=np.array([True, True]),
        price=np.full(2, 50.0),
        qty=np.full(2, 5.0),
    )
    with pytest.raises(ValueError, match=r"orders: unit index 3 of order 1 is outside \[0, 3\)"):
        route(bad, view, 3, 100.0, 150.0)
