"""The shipped china-national scenario meets its calibration targets (seeds/002).

The targets are data (carbonsim/calibration/targets.toml); the scenario meets them because
its behaviour parameters were fitted by
'carbonsim calibrate carbonsim/scenario/builtin/china-national.toml --write'. If the
engine's behaviour changes, these tests fail: rerun that command (docs/calibration.md).
"""

from __future__ import annotations

import pytest

from carbonsim import load_scenario, simulate
from carbonsim.calibration import check, targets

NAME = "china-national"
FILE = "carbonsim/scenario/builtin/china-national.toml"  # rewritten in place by --write


@pytest.fixture(scope="module")
def table() -> object:
    return check(simulate(NAME, seed=0))


def test_every_target_is_met(table) -> None:  # type: ignore[no-untyped-def]
    assert list(table.index) == list(targets(NAME).index)
    failed = table[~table["passed"]]
    assert failed.empty, f"targets missed (rerun 'carbonsim calibrate {FILE} --write'):\n{table}"
    assert (table["rel_error"].abs() <= table["tolerance"]).all()


def test_shipped_scenario_is_calibrated_by_fitted_values() -> None:
    calibrated = load_scenario(NAME)
    prior = load_scenario(NAME, calibrated=False)
    cal = calibrated.calibration
    assert cal.fitted, "china-national carries no fitted values"
    assert set(cal.fitted) == set(cal.parameters)
    assert cal.provenance["command"].startswith(f"carbonsim calibrate {FILE}")
    # the fitted values differ from the priors written in the file: behaviour was fitted
    assert calibrated != prior
    for path, value in cal.fitted.items():
        lo, hi = cal.parameters[path]
        assert lo <= value <= hi


def test_recorded_moments_are_reproduced(table) -> None:  # type: ignore[no-untyped-def]
    """The moments stored in the file's provenance are those the shipped scenario gives."""
    recorded = load_scenario(NAME).calibration.provenance["moments"]
    cal = load_scenario(NAME).calibration.provenance
    assert cal["seed"] == 0
    assert cal["replicates"] == 1
    for name, row in table.iterrows():
        assert row["simulated"] == pytest.approx(recorded[name]["simulated"], rel=1e-6), (
            f"{name}: the engine no longer reproduces the calibration; rerun "
            f"'carbonsim calibrate {FILE} --write'"
        )
