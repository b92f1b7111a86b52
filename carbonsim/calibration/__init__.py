"""Calibration: targets as data, a method-of-simulated-moments fit, and the fitted values
written into scenario files with their provenance.

- :func:`targets` / :func:`load_targets` / :func:`target_table`: published figures a
  scenario should reproduce (package file ``targets.toml``, one row per figure, each naming
  its source);
- :func:`check`: a :class:`~carbonsim.Result` against its scenario's targets, per target;
- :func:`fit`: behaviour parameters fitted to the targets with scipy.optimize on common
  random numbers (:class:`FitResult`);
- :func:`write_calibration`: rewrite only the ``[calibration]`` table of a scenario file.

``carbonsim calibrate NAME`` runs all of it; see ``docs/calibration.md``.
"""

from __future__ import annotations

from carbonsim.calibration.fit import METHODS, FitResult, ParameterSpace, fit, target_loss
from carbonsim.calibration.moments import (
    TARGET_KINDS,
    check,
    compare,
    load_targets,
    scenarios_with_targets,
    simulated_moments,
    target_table,
    targets,
)
from carbonsim.calibration.scenario_file import (
    render_calibration,
    replace_calibration,
    scenario_source,
    write_calibration,
)

__all__ = [
    "METHODS",
    "TARGET_KINDS",
    "FitResult",
    "ParameterSpace",
    "check",
    "compare",
    "fit",
    "load_targets",
    "render_calibration",
    "replace_calibration",
    "scenario_source",
    "scenarios_with_targets",
    "simulated_moments",
    "target_loss",
    "target_table",
    "targets",
    "write_calibration",
]
