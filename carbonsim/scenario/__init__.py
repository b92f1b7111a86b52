"""Scenarios: the validated schema, the TOML loader and the built-in scenario files."""

from carbonsim.scenario.loader import (
    ScenarioError,
    list_scenarios,
    load_scenario,
    parse_override,
    scenario_from_dict,
    with_overrides,
)
from carbonsim.scenario.schema import Scenario, json_schema, reference_table

__all__ = [
    "Scenario",
    "ScenarioError",
    "json_schema",
    "list_scenarios",
    "load_scenario",
    "parse_override",
    "reference_table",
    "scenario_from_dict",
    "with_overrides",
]
