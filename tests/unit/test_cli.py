"""The command-line interface: help, version, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbonsim import __version__
from carbonsim.cli import EXIT_OK, EXIT_USAGE, main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "carbonsim" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_usage_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert "usage" in capsys.readouterr().out


def test_unknown_command_is_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_info_lists_dependencies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "numpy" in out
    assert __version__ in out


def test_console_script_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "carbonsim", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "usage: carbonsim" in proc.stdout


# ---------------------------------------------------------------------------- helpers
TINY = "china-national-tiny"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _table_row(out: str, first_cell: str) -> list[str]:
    """Cells of the aligned-table row starting with ``first_cell`` (split on 2+ blanks)."""
    import re

    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{out}")


def test_building_the_parser_imports_no_heavy_module() -> None:
    code = (
        "import sys, carbonsim.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('numpy', 'pandas', 'pydantic', 'simpy', 'carbonsim.engine') "
        "if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("scenarios", "show", "run", "schema", "columns", "info"):
        assert command in out


# ---------------------------------------------------------------------------- scenarios
def test_scenarios_lists_builtins_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    from carbonsim.scenario.loader import list_scenarios, load_scenario

    code, out, _ = _run(["scenarios"], capsys)
    assert code == EXIT_OK
    names = list_scenarios()
    assert {"china-national", "china-national-tiny"} <= set(names)
    for name in names:
        description = load_scenario(name).description
        assert description
        assert _table_row(out, name) == [name, description]
    # aligned: every description starts in the same column
    starts = {out.splitlines()[0].index("description")}
    for name in names:
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        starts.add(line.index(load_scenario(name).description))
    assert len(starts) == 1


def test_python_dash_m_scenarios() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "carbonsim", "scenarios"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "china-national-tiny" in proc.stdout
    assert "china-national " in proc.stdout


# ---------------------------------------------------------------------------- show
def test_show_json_is_the_resolved_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from carbonsim.scenario.loader import load_scenario

    code, out, _ = _run(["show", TINY, "--json"], capsys)
    assert code == EXIT_OK
    data = json.loads(out)
    assert data == load_scenario(TINY).model_dump(mode="json")
    # defaults are resolved: fields absent from the file appear with their default
    assert data["policy"]["price_floor"] is None
    assert data["policy"]["band_trigger"] is None


def test_show_set_changes_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from carbonsim.scenario.loader import load_scenario

    before = load_scenario(TINY).periods[0].offset_limit_share
    assert before != 0.0
    code, out, _ = _run(
        [
            "show",
            TINY,
            "--json",
            "--set",
            "periods.0.offset_limit_share=0.0",
            "--set",
            "trading.opening_price=50",
        ],
        capsys,
    )
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["periods"][0]["offset_limit_share"] == 0.0
    assert data["trading"]["opening_price"] == 50.0


@pytest.mark.parametrize("name", ["china-national", "china-national-tiny"])
def test_show_toml_reads_back_to_the_same_scenario(
    name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from carbonsim.scenario.loader import load_scenario

    code, out, _ = _run(["show", name, "--set", "periods.*.borrowing=true"], capsys)
    assert code == EXIT_OK
    assert "[trading]" in out
    assert "opening_price = " in out
    tomllib.loads(out)  # valid TOML
    path = tmp_path / "resolved.toml"
    path.write_text(out, encoding="utf-8")
    back = load_scenario(path)
    assert all(p.borrowing for p in back.periods)
    assert back.model_dump() == load_scenario(name).model_dump() | {
        "periods": [p.model_dump() | {"borrowing": True} for p in load_scenario(name).periods]
    }
    # and a scenario file is accepted where a name is
    code, out2, _ = _run(["show", str(path)], capsys)
    assert code == EXIT_OK
    assert out2.splitlines()[2:] == out.splitlines()[2:]


# ---------------------------------------------------------------------------- run
def test_run_prints_summary_and_writes_csv(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import pandas as pd

    from carbonsim._format import format_number

    out_dir = f"{tmp_path}/a"
    code, out, err = _run(["run", TINY, "--seed", "0", "--out", out_dir], capsys)
    assert code == EXIT_OK, err
    for name in ("market.csv", "units.csv", "metadata.json"):
        assert (tmp_path / "a" / name).is_file()
        assert f"{out_dir}/{name}" in out
    assert "seed 0, 1 replicate" in out
    header = _table_row(out, "metric")
    assert header == ["metric", "unit", "value"]
    market = pd.read_csv(f"{out_dir}/market.csv")
    assert _table_row(out, "cumulative_volume") == [
        "cumulative_volume",
        "t",
        format_number(market["volume"].sum(), "t"),
    ]
    assert _table_row(out, "trading_days")[2] == str(len(market))
    assert _table_row(out, "average_price")[1] == "currency/t"


def test_run_same_seed_same_bytes_other_seed_differs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path
    for sub, seed in (("x", "3"), ("y", "3"), ("z", "4")):
        code, _, err = _run(["run", TINY, "--seed", seed, "--out", str(root / sub)], capsys)
        assert code == EXIT_OK, err
    market = [(root / sub / "market.csv").read_bytes() for sub in "xyz"]
    assert market[0] == market[1]
    assert market[0] != market[2]


def test_run_deprecated_backend_is_ignored_with_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases = (("plain", []), ("np", ["--backend", "numpy"]), ("nb", ["--backend", "numba"]))
    for sub, extra in cases:
        args = ["run", TINY, "--seed", "2", *extra, "--out", str(tmp_path / sub)]
        code, _, err = _run(args, capsys)
        assert code == EXIT_OK, err
        assert ("--backend is deprecated and ignored" in err) == bool(extra)
    for name in ("market.csv", "units.csv"):
        plain = (tmp_path / "plain" / name).read_bytes()
        assert plain == (tmp_path / "np" / name).read_bytes()
        assert plain == (tmp_path / "nb" / name).read_bytes()
    with pytest.raises(SystemExit) as exc:
        main(["run", TINY, "--backend", "cuda"])
    assert exc.value.code == EXIT_USAGE
    assert "invalid choice: 'cuda'" in capsys.readouterr().err


def test_run_replicates_prints_percentiles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["run", TINY, "--seed", "1", "--replicates", "2"], capsys)
    assert code == EXIT_OK, err
    assert _table_row(out, "metric") == ["metric", "unit", "mean", "p05", "p95"]
    row = _table_row(out, "final_price")
    assert len(row) == 5
    low, high = (float(v.replace(",", "")) for v in row[3:5])
    assert low <= float(row[2].replace(",", "")) <= high
    assert "2 replicates" in out


def test_run_parquet(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pandas as pd

    code, out, err = _run(
        ["run", TINY, "--out", str(tmp_path), "--format", "parquet", "--quiet"], capsys
    )
    assert code == EXIT_OK, err
    written = out.splitlines()
    names = sorted(p.rsplit("/", 1)[-1] for p in written)
    assert names == ["market.parquet", "metadata.json", "units.parquet"]
    assert len(pd.read_parquet(written[0])) > 0


def test_run_quiet_prints_only_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = _run(
        ["run", TINY, "--quiet", "--trades", "--check", "--out", str(tmp_path)], capsys
    )
    assert code == EXIT_OK, err
    assert err == ""
    names = sorted(line.rsplit("/", 1)[-1] for line in out.splitlines())
    assert names == ["market.csv", "metadata.json", "trades.csv", "units.csv"]


def test_run_check_reports_invariants(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["run", TINY, "--check"], capsys)
    assert code == EXIT_OK, err
    assert "invariants checked" in out
    assert "cumulative_volume" in out


def test_parquet_without_pyarrow_names_the_extra(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes 'import pyarrow' fail
    code, out, err = _run(["run", TINY, "--out", str(tmp_path), "--format", "parquet"], capsys)
    assert code == EXIT_USAGE
    assert "'parquet' extra" in err
    assert "carbonsim[parquet]" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # failed before running
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", TINY, "--format", "csv"], "--format needs --out"),
        (["run", TINY, "--trades"], "--trades needs --out"),
    ],
)
def test_output_options_without_out_are_usage_errors(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == EXIT_USAGE
    assert expected in err
    assert out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["run", TINY, "--replicates", "0"],
        ["run", TINY, "--seed", "-1"],
        ["run", TINY, "--seed", "x"],
    ],
)
def test_bad_numbers_are_rejected_by_the_parser(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("command", ["run", "show"])
def test_unknown_scenario_lists_builtin_names(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run([command, "no-such-scenario"], capsys)
    assert code == EXIT_USAGE
    assert "no-such-scenario" in err
    assert "china-national" in err
    assert "china-national-tiny" in err
    assert "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("nosuch.field=1", "nosuch.field"),
        ("nosuch=1", "nosuch"),
        ("periods.0.offset_limit_share=2", "periods.0.offset_limit_share"),
        ("periods.7.offset_limit_share=0.1", "periods.7.offset_limit_share"),
        ("periods.0.offset_limit_share", "path.to.field=value"),
        ("=3", "empty field path"),
    ],
)
@pytest.mark.parametrize("command", ["run", "show"])
def test_bad_set_is_a_usage_error_naming_the_field(
    command: str, override: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run([command, TINY, "--set", override], capsys)
    assert code == EXIT_USAGE
    assert err.startswith("carbonsim: error:")
    assert expected in err
    assert "Traceback" not in err
    assert out == ""


def test_unknown_plugin_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["run", TINY, "--set", "behaviour.strategies.0.name=nosuch"], capsys)
    assert code == EXIT_USAGE
    assert "nosuch" in err
    assert "compliance" in err  # the valid names are listed


def test_invalid_scenario_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[time\n', encoding="utf-8")
    code, _, err = _run(["run", str(path)], capsys)
    assert code == EXIT_USAGE
    assert "TOML syntax error" in err


def test_debug_reraises(capsys: pytest.CaptureFixture[str]) -> None:
    from carbonsim.scenario.loader import ScenarioError

    with pytest.raises(FileNotFoundError, match="built-in scenarios are"):
        main(["--debug", "run", "no-such-scenario"])
    with pytest.raises(ScenarioError, match=r"periods\.0\.offset_limit_share"):
        main(["--debug", "show", TINY, "--set", "periods.0.offset_limit_share=2"])


# ---------------------------------------------------------------------------- schema, columns
def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from carbonsim.scenario.schema import json_schema

    code, out, _ = _run(["schema"], capsys)
    assert code == EXIT_OK
    schema = json.loads(out)
    assert "properties" in schema
    assert "trading" in schema["properties"]
    assert schema == json_schema()


def test_schema_markdown_table(capsys: pytest.CaptureFixture[str]) -> None:
    from carbonsim.scenario.schema import reference_table

    code, out, _ = _run(["schema", "--markdown"], capsys)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == "| field | type | unit | default | description |"
    assert lines[1] == "| --- | --- | --- | --- | --- |"
    assert len(lines) == 2 + len(reference_table())
    row = next(ln for ln in lines if ln.startswith("| trading.opening_price |"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert cells[0] == "trading.opening_price"
    assert cells[1] == "float"
    assert cells[2] == "currency/t"
    assert "<class" not in out
    # a type with '|' (e.g. float | None) is escaped, so every row has five cells
    for line in lines[2:]:
        assert len(line.replace("\\|", "").strip("|").split(" | ")) == 5, line


def test_columns_documents_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    from carbonsim.results import MARKET_COLUMNS, SUMMARY_METRICS, UNIT_COLUMNS

    code, out, _ = _run(["columns"], capsys)
    assert code == EXIT_OK
    assert _table_row(out, "price")[:2] == ["price", "currency/t"]
    for columns in (MARKET_COLUMNS, UNIT_COLUMNS, SUMMARY_METRICS):
        for name, (unit, description) in columns.items():
            assert _table_row(out, name) == [name, unit or "-", description]


# ---------------------------------------------------------------------------- _format
def test_format_number() -> None:
    from carbonsim._format import format_number

    assert format_number(385282.0, "t") == "385,282"
    assert format_number(20799090.4, "currency") == "20,799,090"
    assert format_number(53.98406, "currency/t") == "53.98"
    assert format_number(1234.5, "currency/t") == "1,234.50"
    assert format_number(0.7166667, "share") == "0.717"
    assert format_number(114.0, "days") == "114"
    assert format_number(12.345, "t") == "12.35"
    assert format_number(0.000123, "t") == "0.000123"
    assert format_number(float("nan"), "currency/t") == "n/a"
    assert format_number(None) == "n/a"
    assert format_number(float("-inf"), "t") == "-inf"


def test_format_table_aligns_and_validates() -> None:
    from carbonsim._format import format_table

    text = format_table(["a", "num"], [["xx", "1"], ["y", "1,000"]], align="lr")
    assert text.splitlines() == ["a     num", "--  -----", "xx      1", "y   1,000"]
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        format_table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="align"):
        format_table(["a", "b"], [], align="lx")


def test_to_toml_round_trips() -> None:
    import datetime as dt

    from carbonsim._format import to_toml

    data = {
        "name": 'quote " and \\ back\nslash',
        "n": 3,
        "x": 0.1,
        "big": 1e20,
        "flag": False,
        "day": dt.date(2021, 7, 16),
        "nothing": None,
        "long": [f"item number {i} of a long list of strings" for i in range(5)],
        "sub": {"a": 1, "inner": {"b": [1, 2]}, "empty": {}, "odd key": "v"},
        "rows": [{"k": 1, "params": {"p": 2.5}}, {"k": 2, "params": {}}],
        "nested": {"deep": {"unset": None, "v": 1}},
        "empty_list": [],
    }
    text = to_toml(data)
    assert "# nothing: not set" in text
    back = tomllib.loads(text)
    expected = {k: v for k, v in data.items() if k != "nothing"}
    expected["nested"] = {"deep": {"v": 1}}
    assert back == expected


# ---------------------------------------------------------------------------- issue #21
@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any simulation is a failure: the command must stop before the work."""
    import carbonsim.engine.simulation as simulation

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the run started")

    monkeypatch.setattr(simulation, "simulate", refuse)


@pytest.mark.usefixtures("no_simulation")
def test_out_that_cannot_be_written_fails_first_with_usage_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for command in (["run", TINY], ["sweep", TINY, "--param", "seed=0"]):
        code, _, err = _run([*command, "--out", str(tmp_path / "file" / "out")], capsys)
        assert code == EXIT_USAGE
        assert f"--out '{tmp_path / 'file' / 'out'}' cannot be written" in err
        assert "not a directory" in err.lower()
    code, _, err = _run(["run", TINY, "--out", str(mine)], capsys)
    assert code == EXIT_USAGE
    assert "notes.txt" in err
    assert "carbonsim did not write" in err
    assert (mine / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
@pytest.mark.usefixtures("no_simulation")
def test_out_in_a_read_only_directory_fails_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = _run(["run", TINY, "--out", str(locked / "out")], capsys)
    finally:
        locked.chmod(0o700)
    assert code == EXIT_USAGE
    assert "Permission denied" in err


def test_run_replaces_out_as_a_whole(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", TINY, "--out", str(out), "--trades", "--quiet"]) == EXIT_OK
    assert (out / "trades.csv").is_file()
    assert main(["run", TINY, "--out", str(out), "--seed", "1", "--quiet"]) == EXIT_OK
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["market.csv", "metadata.json", "units.csv"]
    assert json.loads((out / "metadata.json").read_text())["provenance"]["seed"] == 1


def test_debug_after_the_subcommand_reraises() -> None:
    with pytest.raises(FileNotFoundError, match="built-in scenarios are"):
        main(["run", "no-such-scenario", "--debug"])
    with pytest.raises(FileNotFoundError):
        main(["--debug", "show", "no-such-scenario", "--debug"])


def test_zero_and_negative_replicates_get_one_message(capsys: pytest.CaptureFixture[str]) -> None:
    messages = []
    for value in ("0", "-3"):
        with pytest.raises(SystemExit) as exc:
            main(["run", TINY, "--replicates", value])
        assert exc.value.code == EXIT_USAGE
        messages.append(capsys.readouterr().err.splitlines()[-1])
    assert messages == [
        "carbonsim run: error: argument --replicates: must be >= 1, got 0",
        "carbonsim run: error: argument --replicates: must be >= 1, got -3",
    ]


def test_info_lists_every_optional_package(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert main(["info"]) == EXIT_OK
    out = capsys.readouterr().out
    for extra, requirements in extras.items():
        if extra in ("dev", "all"):
            continue
        for requirement in requirements:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement)
            assert name is not None
            row = _table_row(out, name.group())
            assert f"extra '{extra}'" in row[2], row
    assert _table_row(out, "distributed")[2].startswith("extra 'parallel'")  # dask[distributed]
    assert _table_row(out, "hypothesis")[2].startswith("optional")


def test_calibrate_write_on_a_builtin_writes_a_copy_in_the_current_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    import carbonsim.calibration as calibration
    from carbonsim.calibration import scenario_source
    from carbonsim.scenario.loader import load_scenario

    packaged = scenario_source(TINY)
    before = packaged.read_bytes()
    spec = load_scenario(TINY, calibrated=False).calibration

    class Fitted:  # what fit returns, for a fit that met its targets
        moments = pd.DataFrame({"passed": [True]}, index=["volume"])

        def summary(self) -> str:
            return "fitted"

        def calibration(self, command: str) -> object:
            return spec

    monkeypatch.setattr(calibration, "targets", lambda name: pd.DataFrame())
    monkeypatch.setattr(calibration, "fit", lambda *a, **k: Fitted())
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["calibrate", TINY, "--write"], capsys)
    assert code == EXIT_OK, err
    copy = tmp_path / f"{TINY}.toml"
    assert f"wrote the [calibration] table of {TINY}.toml" in out
    assert load_scenario(copy).name == TINY
    assert packaged.read_bytes() == before  # the installed file is never rewritten
    code, _, err = _run(["calibrate", TINY, "--write"], capsys)
    assert code == EXIT_USAGE  # and a copy is never overwritten
    assert f"calibrate it (carbonsim calibrate {TINY}.toml --write)" in err


PLUGIN = """\
from carbonsim.agents import STRATEGIES

STRATEGIES.register("{name}", replace=True)(STRATEGIES.get("compliance"))
"""


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.usefixtures("registries_restored")
def test_plugin_strategy_from_a_file(
    where: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    name = f"issue21_file_{where}"
    path = tmp_path / f"{name}.py"
    path.write_text(PLUGIN.format(name=name), encoding="utf-8")
    plugin = ["--plugin", str(path)]
    argv = ["run", TINY, "--set", f"behaviour.strategies.0.name={name}"]
    argv = [*plugin, *argv] if where == "before" else [*argv, *plugin]
    code, out, err = _run(argv, capsys)
    assert code == EXIT_OK, err
    assert "china-national-tiny: seed 0" in out


@pytest.mark.usefixtures("registries_restored")
def test_plugin_module_in_the_current_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "issue21_cwd_plugin.py").write_text(
        PLUGIN.format(name="issue21_cwd"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    # a console script's search path holds its bin directory, not the current one
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "issue21_cwd_plugin", raising=False)
    argv = ["run", TINY, "--plugin", "issue21_cwd_plugin"]
    code, _, err = _run([*argv, "--set", "behaviour.strategies.0.name=issue21_cwd"], capsys)
    assert code == EXIT_OK, err


def test_plugin_that_cannot_be_imported_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('half written')\n", encoding="utf-8")
    for spec, expected in [
        ("no_such_plugin_module", "ModuleNotFoundError: No module named 'no_such_plugin_module'"),
        (str(tmp_path / "missing.py"), "FileNotFoundError: plug-in file"),
        (str(broken), "RuntimeError: half written"),
    ]:
        code, _, err = _run(["run", TINY, "--plugin", spec], capsys)
        assert code == EXIT_USAGE
        assert f"carbonsim: error: --plugin {spec!r} cannot be imported: {expected}" in err


@pytest.mark.slow  # 2-5 s: starts a worker process
@pytest.mark.usefixtures("registries_restored")
def test_sweep_workers_import_the_plugin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "issue21_sweep_plugin.py"
    path.write_text(PLUGIN.format(name="issue21_sweep"), encoding="utf-8")
    argv = ["sweep", TINY, "--plugin", str(path), "--workers", "1", "--quiet"]
    argv += ["--set", "behaviour.strategies.0.name=issue21_sweep"]
    argv += ["--param", "periods.*.offset_limit_share=0.0,0.05", "--out", str(tmp_path / "s")]
    code, _, err = _run(argv, capsys)
    assert code == EXIT_OK, err
    manifest = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert manifest["plugins"] == [str(path)]
