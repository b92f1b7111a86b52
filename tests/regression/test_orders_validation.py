"""Nothing silent: a strategy's bad orders are refused where they are handed over, and a
broken ledger stops the run at the next deadline even without invariant checks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pytest

from carbonsim.agents import ComplianceTrader, MarketView, Orders
from carbonsim.agents.base import validate_orders
from carbonsim.engine import Simulation
from carbonsim.engine.state import InvariantError
from carbonsim.scenario import load_scenario

TINY = "china-national-tiny"


@dataclass(frozen=True)
class Tampering(ComplianceTrader):
    """Compliance orders with one field of the first order replaced (a broken plug-in)."""

    field_name: str = "qty"
    value: Any = 1.5

    name: ClassVar[str] = "tampering"

    def orders(self, view: MarketView, rng: Any) -> Orders:
        out = super().orders(view, rng)
        if not len(out):
            return out
        arr = getattr(out, self.field_name).copy()
        arr[0] = self.value
        return replace(out, **{self.field_name: arr})


def _tamper_with(monkeypatch: pytest.MonkeyPatch, field_name: str, value: Any) -> None:
    """Make the engine build the scenario's compliance strategy as a Tampering one."""
    from carbonsim.engine import simulation as engine

    make = engine.make_strategy

    def make_tampering(name: str, params: dict[str, Any]) -> Any:
        if name == "compliance":
            return Tampering(**params, field_name=field_name, value=value)
        return make(name, params)

    monkeypatch.setattr(engine, "make_strategy", make_tampering)


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("qty", 12.5, r"qty 12\.5; qty must be whole tonnes >= 1"),
        ("qty", 0.0, r"qty 0\.0; qty must be whole tonnes >= 1"),
        ("price", float("nan"), r"price nan; price must be finite and positive"),
        ("price", -3.0, r"price -3\.0; price must be finite and positive"),
        ("segment", 7, r"segment 7; segment must be a Segment"),
        ("unit", 10**6, r"unit 1000000; unit must lie in \[0, 60\)"),
        ("replicate", 2, r"replicate 2; replicate must lie in \[0, 2\)"),
    ],
)
def test_bad_orders_are_refused_naming_the_strategy(
    monkeypatch: pytest.MonkeyPatch, field_name: str, value: Any, message: str
) -> None:
    _tamper_with(monkeypatch, field_name, value)
    sim = Simulation(load_scenario(TINY), seed=1, replicates=2, check_invariants=False)
    with pytest.raises(ValueError, match=r"strategy 'compliance': order 0 .*" + message):
        sim.run()


def test_validate_orders_checks_types() -> None:
    with pytest.raises(TypeError, match="must return Orders, got list"):
        validate_orders([], "x", 1, 1)
    bad = Orders(
        replicate=np.zeros(1),  # float, not int64
        unit=np.zeros(1, np.int64),
        is_buy=np.ones(1, bool),
        price=np.ones(1),
        qty=np.ones(1),
    )
    with pytest.raises(TypeError, match=r"Orders.replicate must have dtype int64, got float64"):
        validate_orders(bad, "x", 1, 1)


def test_a_broken_ledger_fails_the_run_without_invariant_checks() -> None:
    sim = Simulation(load_scenario(TINY), seed=0, check_invariants=False)
    original = sim._after_event

    def corrupt(what: str) -> None:
        if what == "verification":
            sim.ledger._allowances[0, 0, 0] += 15  # 15 t appear from nowhere
        original(what)

    sim._after_event = corrupt  # type: ignore[method-assign]
    with pytest.raises(InvariantError, match="ledger check failed after deadline"):
        sim.run()
