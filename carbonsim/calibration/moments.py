"""Calibration targets as data, and simulated moments checked against them.

A target is one published figure: a summary metric of :meth:`carbonsim.Result.summary` (for
example ``cumulative_volume``) that a scenario should reproduce by a date, with the relative
tolerance it must meet and the source sentence it comes from. The targets of the built-in
scenarios are rows of the package file ``targets.toml`` (read with :func:`targets`); other
target files in the same format are read with :func:`load_targets`. No target value appears
in the model code.

The **simulated moment** of a target is the mean over replicates of
``result.summary_by_replicate(until=date)[metric]`` (:func:`simulated_moments`);
:func:`compare` and :func:`check` put it beside the target, with its relative error and
whether it passes:

``approx``
    the source gives the figure ("nearly 27 bn yuan"): passes when
    ``|simulated / value - 1| <= tolerance``;
``at_least``
    the source gives a lower bound ("above 460 Mt"): passes when
    ``simulated / value - 1 >= -tolerance``, i.e. the statement holds within the tolerance;
``at_most``
    the source gives an upper bound: passes when ``simulated / value - 1 <= tolerance``.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from carbonsim.results import SUMMARY_METRICS

if TYPE_CHECKING:
    from carbonsim.results import Result

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

__all__ = [
    "TARGET_COLUMNS",
    "TARGET_KINDS",
    "check",
    "compare",
    "load_targets",
    "scenarios_with_targets",
    "simulated_moments",
    "target_table",
    "targets",
]

#: How a source states a figure (see the module docstring for the pass rule of each).
TARGET_KINDS: tuple[str, ...] = ("approx", "at_least", "at_most")

#: Fields of a target row: name -> (required, description). The row's ``target`` is the
#: index of the tables returned here.
TARGET_COLUMNS: dict[str, tuple[bool, str]] = {
    "target": (True, "name of the target, unique within its scenario"),
    "scenario": (False, "scenario the target applies to"),
    "metric": (False, "summary metric (Result.summary); default: the target name"),
    "value": (True, "the published figure, in the metric's unit"),
    "unit": (True, "unit of value: the metric's unit, with the currency named"),
    "date": (True, "the metric is summed from the start of the run up to this date"),
    "kind": (True, "how the source states the figure: " + ", ".join(TARGET_KINDS)),
    "tolerance": (True, "relative tolerance, in (0, 1)"),
    "weight": (False, "weight of the target in the fit objective (default 1)"),
    "source": (True, "source file of the figure"),
    "quote": (False, "the sentence the figure comes from"),
}

_PACKAGE = "carbonsim.calibration"
_FILE = "targets.toml"


def _unit_ok(metric_unit: str, unit: str) -> bool:
    """Whether ``unit`` names ``metric_unit``; ``currency`` may be written as its name."""
    if "currency" not in metric_unit:
        return unit == metric_unit
    head, _, tail = metric_unit.partition("currency")
    name = unit[len(head) : len(unit) - len(tail)] if len(unit) > len(head) + len(tail) else ""
    return unit.startswith(head) and unit.endswith(tail) and name.isalpha()


def _row_problems(row: Mapping[str, Any], where: str) -> list[str]:
    """Every problem of one target row, each naming the field and the offending value."""
    problems: list[str] = []
    unknown = sorted(set(row) - set(TARGET_COLUMNS))
    if unknown:
        problems.append(
            f"{where}: unknown field(s) {unknown}; valid fields: {list(TARGET_COLUMNS)}"
        )
    for name, (required, _) in TARGET_COLUMNS.items():
        if required and name not in row:
            problems.append(f"{where}: missing field {name!r}")
    metric = row.get("metric", row.get("target"))
    if "target" in row and (not isinstance(row["target"], str) or not row["target"]):
        problems.append(f"{where}.target: must be a non-empty string, got {row['target']!r}")
    if metric is not None and metric not in SUMMARY_METRICS:
        problems.append(
            f"{where}.metric: unknown summary metric {metric!r}; valid metrics: "
            f"{list(SUMMARY_METRICS)}"
        )
    value = row.get("value")
    if "value" in row and (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value == 0
    ):
        problems.append(f"{where}.value: must be a finite non-zero number, got {value!r}")
    if metric in SUMMARY_METRICS and "unit" in row:
        expected = SUMMARY_METRICS[metric][0]
        if not isinstance(row["unit"], str) or not _unit_ok(expected, row["unit"]):
            problems.append(
                f"{where}.unit: {row['unit']!r} is not the unit of {metric!r} ({expected!r}; "
                "'currency' may be written as the currency's name, e.g. 'yuan')"
            )
    if "date" in row:
        try:
            pd.Timestamp(row["date"])
        except (ValueError, TypeError):
            problems.append(f"{where}.date: not a date, got {row['date']!r}")
    if "kind" in row and row["kind"] not in TARGET_KINDS:
        problems.append(f"{where}.kind: must be one of {list(TARGET_KINDS)}, got {row['kind']!r}")
    tol = row.get("tolerance")
    if "tolerance" in row and (
        isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1
    ):
        problems.append(f"{where}.tolerance: must be a number in (0, 1), got {tol!r}")
    weight = row.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        problems.append(f"{where}.weight: must be a number >= 0, got {weight!r}")
    for name in ("scenario", "source", "quote"):
        if name in row and not isinstance(row[name], str):
            problems.append(f"{where}.{name}: must be a string, got {row[name]!r}")
    return problems


def _table(rows: list[Mapping[str, Any]], source: str) -> pd.DataFrame:
    """Validate target rows and return them as a table indexed by ``target``."""
    if not rows:
        raise ValueError(f"{source}: no [[target]] rows")
    problems: list[str] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            problems.append(f"target[{i}]: must be a table, got {row!r}")
            continue
        problems.extend(_row_problems(row, f"target[{i}]"))
    keys = [(r.get("scenario", ""), r.get("target")) for r in rows if isinstance(r, Mapping)]
    duplicated = sorted({k for k in keys if keys.count(k) > 1}, key=str)
    if duplicated:
        problems.append(f"duplicated (scenario, target): {duplicated}")
    if problems:
        raise ValueError(f"invalid targets in {source}:\n  - " + "\n  - ".join(problems))
    frame = pd.DataFrame(
        {
            "scenario": [str(r.get("scenario", "")) for r in rows],
            "metric": [str(r.get("metric", r["target"])) for r in rows],
            "value": [float(r["value"]) for r in rows],
            "unit": [str(r["unit"]) for r in rows],
            "date": [pd.Timestamp(r["date"]) for r in rows],
            "kind": [str(r["kind"]) for r in rows],
            "tolerance": [float(r["tolerance"]) for r in rows],
            "weight": [float(r.get("weight", 1.0)) for r in rows],
            "source": [str(r["source"]) for r in rows],
            "quote": [str(r.get("quote", "")) for r in rows],
        },
        index=pd.Index([str(r["target"]) for r in rows], name="target"),
    )
    frame.attrs["source"] = source
    return frame


def target_table(rows: Sequence[Mapping[str, Any]], source: str = "<rows>") -> pd.DataFrame:
    """Validate target rows given in code and return them as a targets table.

    Parameters
    ----------
    rows : sequence of mappings
        One mapping per target with the fields of :data:`TARGET_COLUMNS`.
    source : str
        Name of the rows in error messages and in ``attrs["source"]``.

    Returns
    -------
    pandas.DataFrame
        As :func:`load_targets`.

    Examples
    --------
    >>> t = target_table([{"target": "volume_2021", "metric": "cumulative_volume",
    ...                    "value": 1.8e8, "unit": "t", "date": "2021-12-31",
    ...                    "kind": "approx", "tolerance": 0.1, "source": "example"}])
    >>> t.loc["volume_2021", "metric"], float(t.loc["volume_2021", "weight"])
    ('cumulative_volume', 1.0)
    """
    return _table(list(rows), source)


def _parse(text: str, source: str) -> pd.DataFrame:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: TOML syntax error: {exc}") from None
    extra = sorted(set(data) - {"target"})
    if extra:
        raise ValueError(f"{source}: unknown top-level key(s) {extra}; write [[target]] rows")
    rows = data.get("target", [])
    if not isinstance(rows, list):
        raise ValueError(f"{source}: 'target' must be an array of tables ([[target]])")
    return _table(rows, source)


def _builtin() -> pd.DataFrame:
    text = resources.files(_PACKAGE).joinpath(_FILE).read_text(encoding="utf-8")
    return _parse(text, f"{_PACKAGE.replace('.', '/')}/{_FILE}")


def load_targets(path: str | Path) -> pd.DataFrame:
    """Read a targets file: ``[[target]]`` rows with the fields of :data:`TARGET_COLUMNS`.

    Parameters
    ----------
    path : str or path-like
        A TOML file in the format of the package's ``targets.toml``.

    Returns
    -------
    pandas.DataFrame
        Every row of the file, index ``target``; columns ``scenario``, ``metric``,
        ``value``, ``unit``, ``date``, ``kind``, ``tolerance``, ``weight``, ``source``,
        ``quote``.

    Raises
    ------
    ValueError
        The file is not valid TOML or a row is invalid (every problem listed).
    """
    p = Path(path)
    return _parse(p.read_text(encoding="utf-8"), str(p))


def scenarios_with_targets() -> list[str]:
    """Names of the scenarios that have targets in the package's ``targets.toml``, sorted.

    >>> scenarios_with_targets()
    ['china-national']
    """
    return sorted(set(_builtin()["scenario"]) - {""})


def targets(name: str) -> pd.DataFrame:
    """The calibration targets of a scenario.

    Parameters
    ----------
    name : str
        Scenario name (``scenario.name``), e.g. ``"china-national"``.

    Returns
    -------
    pandas.DataFrame
        Index ``target``; columns as in :func:`load_targets`.

    Raises
    ------
    ValueError
        No targets for ``name``; the message lists the scenarios that have some.

    Examples
    --------
    >>> t = targets("china-national")
    >>> row = t.loc["cumulative_volume"]
    >>> float(row["value"]), row["unit"], row["kind"], float(row["tolerance"])
    (460000000.0, 't', 'at_least', 0.1)
    >>> str(t.loc["cumulative_turnover", "date"].date())
    '2024-07-15'
    """
    table = _builtin()
    rows = table[table["scenario"] == name]
    if rows.empty:
        raise ValueError(
            f"no calibration targets for scenario {name!r}; scenarios with targets: "
            f"{scenarios_with_targets()}"
        )
    rows = rows.copy()
    rows.attrs["source"] = table.attrs["source"]
    return rows


def simulated_moments(result: Result, table: pd.DataFrame) -> pd.Series:
    """The simulated value of every target: mean over replicates of the metric by its date.

    Parameters
    ----------
    result : Result
        A simulation whose window reaches every target's date.
    table : pandas.DataFrame
        Targets (:func:`targets`, :func:`load_targets`).

    Returns
    -------
    pandas.Series
        Index ``target``, float values in the metrics' units.

    Raises
    ------
    ValueError
        The result ends before a target's date or starts after it.
    """
    dates = result.market.index.get_level_values("date")
    first, last = dates.min(), dates.max()
    values: dict[str, float] = {}
    by_date: dict[pd.Timestamp, pd.DataFrame] = {}
    for name, row in table.iterrows():
        date = pd.Timestamp(row["date"])
        if not first <= date:
            raise ValueError(
                f"target {name!r} refers to {date.date()}, before the result starts "
                f"({first.date()})"
            )
        if last < date:
            raise ValueError(
                f"target {name!r} refers to {date.date()}, after the result ends "
                f"({last.date()}); simulate a window that reaches it"
            )
        if date not in by_date:
            by_date[date] = result.summary_by_replicate(until=date)
        values[str(name)] = float(by_date[date][row["metric"]].mean())
    return pd.Series(values, name="simulated", dtype=float).rename_axis("target")


def compare(simulated: Mapping[str, float] | pd.Series, table: pd.DataFrame) -> pd.DataFrame:
    """Put simulated moments beside their targets, with relative error and pass/fail.

    Parameters
    ----------
    simulated : mapping or pandas.Series
        Target name -> simulated value (every target of ``table``).
    table : pandas.DataFrame
        Targets (:func:`targets`, :func:`load_targets`).

    Returns
    -------
    pandas.DataFrame
        Index ``target``; columns ``metric``, ``date``, ``kind``, ``value`` (the target),
        ``simulated``, ``unit``, ``rel_error`` (``simulated / value - 1``), ``tolerance``,
        ``passed`` (the rule of the target's kind, module docstring) and ``source``.

    Examples
    --------
    >>> t = targets("china-national")
    >>> c = compare({"cumulative_volume": 4.2e8, "cumulative_turnover": 2.8e10}, t)
    >>> c["passed"].tolist(), [round(e, 4) for e in c["rel_error"]]
    ([True, True], [-0.087, 0.037])
    """
    sim = pd.Series(simulated, dtype=float)
    missing = [str(t) for t in table.index if t not in sim.index]
    if missing:
        raise ValueError(f"simulated moments missing for target(s) {missing}")
    values = table["value"].to_numpy(float)
    simulated_values = sim.reindex(table.index).to_numpy(float)
    rel = simulated_values / values - 1.0
    tol = table["tolerance"].to_numpy(float)
    kind = table["kind"].to_numpy(str)
    with np.errstate(invalid="ignore"):
        passed = np.where(
            kind == "at_least",
            rel >= -tol,
            np.where(kind == "at_most", rel <= tol, np.abs(rel) <= tol),
        )
    passed &= np.isfinite(rel)
    out = pd.DataFrame(
        {
            "metric": table["metric"],
            "date": table["date"],
            "kind": table["kind"],
            "value": values,
            "simulated": simulated_values,
            "unit": table["unit"],
            "rel_error": rel,
            "tolerance": tol,
            "passed": passed.astype(bool),
            "source": table["source"],
        },
        index=table.index,
    )
    return out


def check(
    result: Result, scenario_name: str | None = None, *, targets: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Report a simulation against the calibration targets of its scenario.

    Parameters
    ----------
    result : Result
        A simulation (any number of replicates: the moment is their mean).
    scenario_name : str, optional
        Whose targets to use; default ``result.provenance["scenario"]``.
    targets : pandas.DataFrame, optional
        Use these targets instead (:func:`load_targets`).

    Returns
    -------
    pandas.DataFrame
        The table of :func:`compare`: one row per target with simulated value, target,
        relative error and ``passed``.

    Raises
    ------
    ValueError
        No targets for the scenario (the message lists those with targets), or the result's
        window does not reach a target's date.
    """
    if targets is None:
        name = scenario_name if scenario_name is not None else result.provenance.get("scenario")
        if not isinstance(name, str):
            raise ValueError(
                "the result's provenance names no scenario; pass scenario_name= or targets="
            )
        table = _targets_of(name)
    else:
        table = targets
    out = compare(simulated_moments(result, table), table)
    out.attrs["replicates"] = result.n_replicates
    out.attrs["provenance"] = dict(result.provenance)
    log.debug("checked %d target(s): %d passed", len(out), int(out["passed"].sum()))
    return out


# ``check`` has a parameter named ``targets``; keep a second name for the function.
_targets_of = targets
