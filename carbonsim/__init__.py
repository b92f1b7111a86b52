"""carbonsim: fast, calibrated simulation of carbon emissions-trading markets.

Names are imported lazily on first access, so ``import carbonsim`` does no work beyond
reading package metadata.

>>> import carbonsim as cs
>>> "china-national" in cs.list_scenarios()
True
>>> cs.clearing.call_auction([10.0], [5], [9.0], [3]).volume
3.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from carbonsim._version import __version__

__all__ = [
    "Result",
    "Scenario",
    "Simulation",
    "SweepResult",
    "__version__",
    "agents",
    "calibration",
    "clearing",
    "engine",
    "list_scenarios",
    "load_scenario",
    "market",
    "scenario",
    "simulate",
    "sweep",
    "with_overrides",
]

_SUBPACKAGES = frozenset({"agents", "calibration", "clearing", "engine", "market", "scenario"})
_LAZY = {
    "Result": "carbonsim.results",
    "Scenario": "carbonsim.scenario.schema",
    "Simulation": "carbonsim.engine.simulation",
    "SweepResult": "carbonsim.ensemble",
    "list_scenarios": "carbonsim.scenario.loader",
    "load_scenario": "carbonsim.scenario.loader",
    "simulate": "carbonsim.engine.simulation",
    "sweep": "carbonsim.ensemble",
    "with_overrides": "carbonsim.scenario.loader",
}

if TYPE_CHECKING:
    from carbonsim import agents, calibration, clearing, engine, market, scenario
    from carbonsim.engine.simulation import Simulation, simulate
    from carbonsim.ensemble import SweepResult, sweep
    from carbonsim.results import Result
    from carbonsim.scenario.loader import list_scenarios, load_scenario, with_overrides
    from carbonsim.scenario.schema import Scenario


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"carbonsim.{name}")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'carbonsim' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
