"""Calibration: targets as data, check(), the fit's transform and objective, the TOML
rewrite of [calibration], the loader applying fitted values, and `carbonsim calibrate`."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carbonsim.calibration import (
    ParameterSpace,
    check,
    compare,
    fit,
    load_targets,
    render_calibration,
    replace_calibration,
    scenario_source,
    scenarios_with_targets,
    target_loss,
    target_table,
    targets,
    write_calibration,
)
from carbonsim.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from carbonsim.results import MARKET_COLUMNS, UNIT_COLUMNS, Result
from carbonsim.scenario.loader import (
    ScenarioError,
    load_scenario,
    scenario_from_dict,
    with_overrides,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TINY = "china-national-tiny"
ACTIVITY = "behaviour.strategies.1.params.activity"


def _row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "target": "cumulative_volume",
        "value": 600.0,
        "unit": "t",
        "date": "2024-01-02",
        "kind": "approx",
        "tolerance": 0.1,
        "source": "test",
    }
    row.update(changes)
    return row


def _result(volumes: list[list[float]], prices: list[float], scenario: str = "test") -> Result:
    """A synthetic Result: one row of session volumes per replicate (as in test_results)."""
    dates = pd.to_datetime(["2023-12-28", "2023-12-29", "2024-01-02"])
    n_rep = len(volumes)
    idx = pd.MultiIndex.from_product([range(n_rep), dates], names=["replicate", "date"])
    market = pd.DataFrame({c: np.zeros(len(idx)) for c in MARKET_COLUMNS}, index=idx)
    market["volume"] = np.concatenate([np.asarray(v, float) for v in volumes])
    market["price"] = np.tile(prices, n_rep)
    market["turnover"] = market["volume"] * market["price"]
    uidx = pd.MultiIndex.from_product(
        [range(n_rep), ["u0"], [2023]], names=["replicate", "unit", "year"]
    )
    units = pd.DataFrame({c: np.zeros(len(uidx)) for c in UNIT_COLUMNS}, index=uidx)
    units["sector"] = "power"
    return Result(market=market, units=units, provenance={"seed": 0, "scenario": scenario})


# ---------------------------------------------------------------------------- targets
def test_china_national_targets_are_the_seed_figures() -> None:
    t = targets("china-national")
    assert t.index.name == "target"
    assert list(t.index) == ["cumulative_volume", "cumulative_turnover"]
    vol, turn = t.loc["cumulative_volume"], t.loc["cumulative_turnover"]
    assert (vol["metric"], vol["value"], vol["unit"], vol["kind"]) == (
        "cumulative_volume",
        460e6,
        "t",
        "at_least",
    )
    assert (turn["metric"], turn["value"], turn["unit"], turn["kind"]) == (
        "cumulative_turnover",
        27e9,
        "yuan",
        "approx",
    )
    for _, row in t.iterrows():
        assert row["date"] == pd.Timestamp("2024-07-15")
        assert row["tolerance"] == 0.10
        assert row["source"] == "seeds/002_fa1426c8cf4a0c56.txt"
        assert row["quote"]
        # the quoted sentence is in the seed file
        seed = Path(__file__).parents[2] / row["source"]
        assert row["quote"] in seed.read_text(encoding="utf-8")


def test_unknown_scenario_lists_those_with_targets() -> None:
    assert scenarios_with_targets() == ["china-national"]
    with pytest.raises(ValueError, match=r"no calibration targets for scenario 'nope'.*"):
        targets("nope")
    with pytest.raises(ValueError, match=r"scenarios with targets: \['china-national'\]"):
        targets(TINY)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "roughly"}, r"target\[0\]\.kind: must be one of"),
        ({"tolerance": 1.5}, r"target\[0\]\.tolerance: must be a number in \(0, 1\)"),
        ({"unit": "kg"}, r"target\[0\]\.unit: 'kg' is not the unit of 'cumulative_volume'"),
        ({"metric": "volume"}, r"target\[0\]\.metric: unknown summary metric 'volume'"),
        ({"value": 0}, r"target\[0\]\.value: must be a finite non-zero number"),
        ({"date": "not a date"}, r"target\[0\]\.date: not a date"),
        ({"colour": "red"}, r"unknown field\(s\) \['colour'\]"),
    ],
)
def test_invalid_target_rows_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target_table([_row(**changes)])


def test_missing_and_duplicated_targets() -> None:
    row = _row()
    del row["source"]
    with pytest.raises(ValueError, match=r"missing field 'source'"):
        target_table([row])
    with pytest.raises(ValueError, match=r"duplicated \(scenario, target\)"):
        target_table([_row(), _row()])


def test_currency_units_take_the_currency_name() -> None:
    t = target_table([_row(target="t", metric="cumulative_turnover", unit="yuan")])
    assert t.loc["t", "unit"] == "yuan"
    t = target_table([_row(target="p", metric="average_price", unit="EUR/t")])
    assert t.loc["p", "unit"] == "EUR/t"
    with pytest.raises(ValueError, match="is not the unit"):
        target_table([_row(target="p", metric="average_price", unit="yuan")])


def test_load_targets_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(
        '[[target]]\ntarget = "vol"\nmetric = "cumulative_volume"\nvalue = 1e6\nunit = "t"\n'
        'date = 2021-12-31\nkind = "at_most"\ntolerance = 0.2\nsource = "mine"\nweight = 2\n',
        encoding="utf-8",
    )
    t = load_targets(path)
    assert t.loc["vol", "kind"] == "at_most"
    assert t.loc["vol", "weight"] == 2.0
    assert t.loc["vol", "date"] == pd.Timestamp("2021-12-31")
    path.write_text("[[targets]]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown top-level key\(s\) \['targets'\]"):
        load_targets(path)


# ---------------------------------------------------------------------------- check
def test_check_is_the_mean_over_replicates_up_to_the_date() -> None:
    # replicate 0 trades 100, 200, 300 t; replicate 1 300, 400, 500 t, at 50, 60, 70 yuan/t
    res = _result([[100, 200, 300], [300, 400, 500]], [50.0, 60.0, 70.0])
    t = target_table(
        [
            _row(target="vol_all", metric="cumulative_volume", value=900.0),
            _row(target="vol_2023", metric="cumulative_volume", value=500.0, date="2023-12-31"),
            _row(target="turnover", metric="cumulative_turnover", unit="yuan", value=5e4),
        ]
    )
    out = check(res, targets=t)
    assert out.loc["vol_all", "simulated"] == (600 + 1200) / 2
    assert out.loc["vol_2023", "simulated"] == (300 + 700) / 2
    turnover = ((100 * 50 + 200 * 60 + 300 * 70) + (300 * 50 + 400 * 60 + 500 * 70)) / 2
    assert out.loc["turnover", "simulated"] == turnover
    assert out.loc["vol_all", "rel_error"] == pytest.approx(0.0)
    assert out.loc["turnover", "rel_error"] == pytest.approx(turnover / 5e4 - 1)
    assert out["passed"].tolist() == [True, True, False]
    assert list(out.columns) == [
        "metric",
        "date",
        "kind",
        "value",
        "simulated",
        "unit",
        "rel_error",
        "tolerance",
        "passed",
        "source",
    ]


@pytest.mark.parametrize(
    ("kind", "simulated", "passed"),
    [
        ("approx", 109.0, True),
        ("approx", 91.0, True),
        ("approx", 111.0, False),
        ("approx", 89.0, False),
        ("at_least", 91.0, True),  # within tolerance of the bound
        ("at_least", 500.0, True),  # "above" holds
        ("at_least", 89.0, False),
        ("at_most", 109.0, True),
        ("at_most", 1.0, True),
        ("at_most", 111.0, False),
        ("approx", float("nan"), False),
    ],
)
def test_pass_rule_of_each_kind(kind: str, simulated: float, passed: bool) -> None:
    t = target_table([_row(target="x", metric="cumulative_volume", value=100.0, kind=kind)])
    out = compare({"x": simulated}, t)
    assert bool(out.loc["x", "passed"]) is passed


def test_check_takes_the_scenario_from_provenance() -> None:
    res = _result([[100, 200, 300]], [50.0, 60.0, 70.0], scenario="china-national")
    # the synthetic result ends in January 2024, before the national targets' date
    with pytest.raises(ValueError, match=r"after the result ends \(2024-01-02\)"):
        check(res)
    with pytest.raises(ValueError, match=r"no calibration targets for scenario 'test'"):
        check(_result([[1, 2, 3]], [1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="before the result starts"):
        check(res, targets=target_table([_row(date="2020-01-01")]))


def test_compare_needs_every_target() -> None:
    with pytest.raises(ValueError, match=r"missing for target\(s\) \['cumulative_volume'\]"):
        compare({"other": 1.0}, target_table([_row()]))


# ---------------------------------------------------------------------------- transform
def test_transform_round_trips_and_centres() -> None:
    space = ParameterSpace.from_bounds({"a": (0.001, 0.1), "b": (-1.0, 3.0)})
    assert space.log_scale.tolist() == [True, False]
    x = np.array([0.0123, 2.5])
    np.testing.assert_allclose(space.to_external(space.to_internal(x)), x, rtol=1e-12)
    # z = 0 is the geometric midpoint on a log scale, the arithmetic one on a linear scale
    np.testing.assert_allclose(space.to_external([0.0, 0.0]), [0.01, 1.0], rtol=1e-12)
    # logit: z = log(u / (1 - u)), u = 0.75 -> log 3
    np.testing.assert_allclose(space.to_internal([10 ** (-1.5), 2.0]), [math.log(3.0)] * 2)


def test_every_internal_point_maps_inside_the_bounds() -> None:
    space = ParameterSpace.from_bounds({"a": (0.001, 0.1), "b": (-1.0, 3.0)})
    for z in ([-1e6, 1e6], [1e6, -1e6], [-30.0, 30.0], [0.3, -0.7]):
        x = space.to_external(z)
        assert np.all(x >= space.lower)
        assert np.all(x <= space.upper)
    # values outside the bounds are clipped, not extrapolated
    np.testing.assert_allclose(space.to_unit([1.0, -5.0]), [1.0, 0.0])


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"a": (1.0, 1.0)}, "lower must be below upper"),
        ({"a": (1.0,)}, r"must be \(lower, upper\)"),
        ({"a": (0.0, float("inf"))}, "must be finite"),
        ({}, "at least one dotted path"),
    ],
)
def test_bad_bounds(bounds: dict[str, tuple[float, ...]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParameterSpace.from_bounds(bounds)


# ---------------------------------------------------------------------------- objective
def test_target_loss_by_kind() -> None:
    e = np.array([0.2, -0.2, 0.2, -0.2, 0.2, -0.2])
    kinds = ["approx", "approx", "at_least", "at_least", "at_most", "at_most"]
    loss = target_loss(e, kinds, pull=0.1)
    np.testing.assert_allclose(loss, [0.04, 0.04, 0.004, 0.044, 0.044, 0.004])
    np.testing.assert_allclose(target_loss(e, kinds, pull=0.0)[2:4], [0.0, 0.04])
    np.testing.assert_allclose(target_loss([0.1], ["approx"], weight=3.0), [0.03])
    assert target_loss([float("nan")], ["approx"])[0] == 1e6
    with pytest.raises(ValueError, match="unknown target kind"):
        target_loss([0.1], ["roughly"])


# ---------------------------------------------------------------------------- TOML rewrite
SPEC = {
    "parameters": {ACTIVITY: [0.001, 0.05]},
    "fitted": {ACTIVITY: 0.0123},
    "provenance": {"command": "carbonsim calibrate x", "moments": {"v": {"simulated": 1.5}}},
}


def test_rewrite_keeps_every_other_line_and_comment(tmp_path: Path) -> None:
    original = scenario_source("china-national").read_text(encoding="utf-8")
    new = replace_calibration(original, SPEC)
    data = tomllib.loads(new)
    assert data["calibration"] == SPEC
    old_data = tomllib.loads(original)
    assert {k: v for k, v in data.items() if k != "calibration"} == {
        k: v for k, v in old_data.items() if k != "calibration"
    }
    # every line outside the old [calibration] table survives, in order (citations included)
    cut = original.index("\n[calibration]")
    head = original[:cut]
    assert new.startswith(head)
    assert "# docs/rules.md#market-opening: opened at 48 yuan/t" in new
    # rewriting again replaces the table instead of adding a second one
    again = replace_calibration(new, {"fitted": {ACTIVITY: 0.02}})
    assert again.count("[calibration]") == 1
    assert tomllib.loads(again)["calibration"] == {"fitted": {ACTIVITY: 0.02}}
    assert again.startswith(head)


def test_rewrite_appends_or_replaces_in_the_middle() -> None:
    text = 'name = "x"\n\n[time]  # window\nstart = 2021-01-01\n'
    appended = replace_calibration(text, SPEC)
    assert appended.startswith(text)
    assert tomllib.loads(appended)["calibration"] == SPEC
    middle = (
        'name = "x"\n\n[calibration]\n[calibration.fitted]\n"a.b" = 1.0\n\n'
        "# the offsets table\n[offsets]\nenabled = true\n"
    )
    out = replace_calibration(middle, SPEC)
    assert "# the offsets table\n[offsets]\nenabled = true\n" in out
    assert '"a.b"' not in out
    assert tomllib.loads(out)["offsets"] == {"enabled": True}


def test_rewrite_refuses_what_it_cannot_edit_in_place() -> None:
    with pytest.raises(ValueError, match="cannot be rewritten in place"):
        replace_calibration('name = "x"\ncalibration = { fitted = {} }\n', SPEC)
    with pytest.raises(ValueError, match="not valid TOML"):
        replace_calibration("name = ", SPEC)
    with pytest.raises(ValueError, match="outside its bounds"):
        render_calibration({"parameters": {"a": [0.0, 1.0]}, "fitted": {"a": 2.0}})


def test_write_calibration_to_a_copy(tmp_path: Path) -> None:
    source = scenario_source(TINY)
    before = source.read_bytes()
    out = write_calibration(TINY, SPEC, out=tmp_path / "calibrated.toml")
    assert source.read_bytes() == before  # the packaged file is untouched
    sc = load_scenario(out)
    assert sc.behaviour.strategies[1].params["activity"] == 0.0123
    assert sc.calibration.fitted == {ACTIVITY: 0.0123}
    assert [p.name for p in tmp_path.iterdir()] == ["calibrated.toml"]  # no temporary left


# ---------------------------------------------------------------------------- loader
def _calibrated_file(tmp_path: Path, fitted: dict[str, float]) -> Path:
    text = replace_calibration(
        scenario_source(TINY).read_text(encoding="utf-8"),
        {"parameters": {ACTIVITY: [0.001, 0.05]}, "fitted": fitted},
    )
    path = tmp_path / "calibrated.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loading_applies_fitted_values(tmp_path: Path) -> None:
    path = _calibrated_file(tmp_path, {ACTIVITY: 0.02, "behaviour.discount_rate": 0.3})
    sc = load_scenario(path)
    assert sc.behaviour.strategies[1].params["activity"] == 0.02
    assert sc.behaviour.discount_rate == 0.3
    prior = load_scenario(path, calibrated=False)
    assert prior.behaviour.strategies[1].params["activity"] == 0.005
    assert prior.behaviour.discount_rate == 0.05
    assert prior.calibration == sc.calibration
    # re-validating a dumped calibrated scenario changes nothing
    assert scenario_from_dict(sc.model_dump()) == sc


def test_overrides_win_over_fitted_values(tmp_path: Path) -> None:
    sc = load_scenario(_calibrated_file(tmp_path, {ACTIVITY: 0.02, "behaviour.discount_rate": 0.3}))
    changed = with_overrides(sc, {ACTIVITY: 0.01})
    assert changed.behaviour.strategies[1].params["activity"] == 0.01
    assert changed.calibration.fitted == {"behaviour.discount_rate": 0.3}
    # a dump of the overridden scenario loads back with the override, not the stale fit
    assert scenario_from_dict(changed.model_dump()) == changed
    # an override of a parent field, or through '*', also drops the fitted entries below it
    whole = with_overrides(sc, {"behaviour.strategies": [{"name": "noise"}]})
    assert ACTIVITY not in whole.calibration.fitted
    unrelated = with_overrides(sc, {"periods.*.borrowing": True})
    assert unrelated.calibration.fitted == sc.calibration.fitted


def test_bad_fitted_entries_are_scenario_errors(tmp_path: Path) -> None:
    path = _calibrated_file(tmp_path, {"behaviour.strategies.7.params.activity": 0.02})
    with pytest.raises(ScenarioError, match=r"calibration\.fitted\.behaviour\.strategies\.7"):
        load_scenario(path)
    load_scenario(path, calibrated=False)  # the file itself is valid
    text = path.read_text(encoding="utf-8").replace(
        '"behaviour.strategies.7.params.activity" = 0.02', f'"{ACTIVITY}" = 0.5'
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match="outside its bounds"):
        load_scenario(path)


def test_shipped_tiny_scenario_carries_no_fitted_values() -> None:
    sc = load_scenario(TINY)
    assert sc.calibration.fitted == {}
    assert sc == load_scenario(TINY, calibrated=False)


# ---------------------------------------------------------------------------- fit
def _own_targets(scenario_overrides: dict[str, float], tolerance: float = 0.05) -> pd.DataFrame:
    """Targets equal to the tiny scenario's own moments at known parameter values."""
    from carbonsim import simulate

    sc = with_overrides(load_scenario(TINY), scenario_overrides)
    summary = simulate(sc, seed=0).summary_by_replicate(until="2021-12-31").iloc[0]
    return target_table(
        [
            _row(
                target="volume",
                metric="cumulative_volume",
                value=float(summary["cumulative_volume"]),
                date="2021-12-31",
                tolerance=tolerance,
            ),
        ],
        source="tiny at known values",
    )


def test_fit_recovers_a_known_parameter() -> None:
    table = _own_targets({ACTIVITY: 0.02})
    res = fit(TINY, {ACTIVITY: (0.001, 0.1)}, targets=table, maxiter=10, prior_weight=0.0)
    assert res.start == {ACTIVITY: 0.005}
    assert res.fitted[ACTIVITY] == pytest.approx(0.02, rel=0.15)
    assert res.passed
    assert abs(res.moments["rel_error"].iloc[0]) < 0.02
    assert res.evaluations == len(res.history)
    assert res.history["objective"].min() <= res.history["objective"].iloc[0]
    assert res.objective == pytest.approx(float(res.history["objective"].iloc[-1]))
    # the fitted values are rounded to 4 significant digits, as written to files
    assert float(f"{res.fitted[ACTIVITY]:.4g}") == res.fitted[ACTIVITY]
    spec = res.calibration("carbonsim calibrate test")
    assert spec.fitted == res.fitted
    assert spec.parameters == {ACTIVITY: [0.001, 0.1]}
    assert spec.provenance["moments"]["volume"]["passed"] is True
    assert spec.provenance["seed"] == 0
    # the calibrated scenario reproduces the reported moment exactly (common random numbers)
    sc = res.calibrated_scenario()
    from carbonsim import simulate

    again = check(simulate(sc, seed=0), targets=table)
    assert again["simulated"].tolist() == res.moments["simulated"].tolist()


def test_fit_rejects_bad_input() -> None:
    table = target_table([_row(date="2021-12-31")])
    with pytest.raises(ValueError, match="method must be one of"):
        fit(TINY, {ACTIVITY: (0.001, 0.1)}, targets=table, method="BFGS")
    with pytest.raises(ValueError, match="runs 2021-07-16 to 2021-12-31"):
        fit(TINY, {ACTIVITY: (0.001, 0.1)}, targets=target_table([_row(date="2024-07-15")]))
    with pytest.raises(ValueError, match="not a field of scenario"):
        fit(TINY, {"behaviour.no_such_field": (0.1, 1.0)}, targets=table)
    with pytest.raises(ValueError, match=r"no calibration targets for scenario 'china-nat"):
        fit(TINY)
    with pytest.raises(ValueError, match="start names parameters not fitted"):
        fit(TINY, {ACTIVITY: (0.001, 0.1)}, targets=table, start={"x": 1.0})


# ---------------------------------------------------------------------------- CLI
def _targets_file(tmp_path: Path, table: pd.DataFrame) -> Path:
    row = table.iloc[0]
    path = tmp_path / "targets.toml"
    path.write_text(
        f'[[target]]\ntarget = "{table.index[0]}"\nmetric = "{row["metric"]}"\n'
        f'value = {float(row["value"])!r}\nunit = "t"\ndate = {row["date"].date()}\n'
        f'kind = "{row["kind"]}"\ntolerance = {float(row["tolerance"])!r}\nsource = "test"\n',
        encoding="utf-8",
    )
    return path


def test_cli_calibrate_writes_a_calibrated_copy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    targets_path = _targets_file(tmp_path, _own_targets({ACTIVITY: 0.01}, tolerance=0.2))
    out = tmp_path / "tiny-calibrated.toml"
    code = main(
        ["calibrate", TINY, "--targets", str(targets_path), "--maxiter", "4", "--out", str(out)]
    )
    stdout = capsys.readouterr().out
    assert code == EXIT_OK, stdout
    assert "behaviour.strategies.1.params.activity" in stdout
    assert "pass" in stdout
    assert f"wrote the [calibration] table of {out}" in stdout
    sc = load_scenario(out)
    fitted = sc.calibration.fitted
    assert set(fitted) == {ACTIVITY, "behaviour.discount_rate"}
    assert sc.behaviour.strategies[1].params["activity"] == fitted[ACTIVITY]
    provenance = sc.calibration.provenance
    assert provenance["command"].startswith(f"carbonsim calibrate {TINY} --targets ")
    assert "--maxiter 4" in provenance["command"]
    assert provenance["moments"]["volume"]["passed"] is True
    text = out.read_text(encoding="utf-8")
    assert "# docs/rules.md#tick-size: 0.01 yuan" in text  # citations kept


def test_cli_calibrate_does_not_write_a_failed_fit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    unreachable = target_table([_row(value=1e15, date="2021-12-31")])
    targets_path = _targets_file(tmp_path, unreachable)
    out = tmp_path / "never.toml"
    argv = ["calibrate", TINY, "--targets", str(targets_path), "--maxiter", "1"]
    argv += ["--param", f"{ACTIVITY}=0.001:0.01", "--out", str(out)]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "FAIL" in captured.out
    assert "nothing written" in captured.err
    assert not out.exists()
    assert main([*argv, "--force"]) == EXIT_FAILED
    assert load_scenario(out).calibration.fitted.keys() == {ACTIVITY, "behaviour.discount_rate"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calibrate", TINY], "no calibration targets for scenario 'china-national-tiny'"),
        (["calibrate", TINY, "--set", "time.calendar=business", "--write"], "--set cannot be"),
        (["calibrate", TINY, "--force"], "--force needs --write or --out"),
    ],
)
def test_cli_calibrate_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_cli_calibrate_bad_param_is_rejected_by_the_parser() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", TINY, "--param", "behaviour.discount_rate=1:0.5"])
    assert exc.value.code == EXIT_USAGE
