"""Figures of a :class:`~carbonsim.results.Result` (needs the ``plot`` extra, matplotlib).

Every function takes a Result, draws on the ``ax`` it is given (or on a new figure) and
returns the :class:`matplotlib.figure.Figure`:

=================  ===========================================================================
:func:`price`      closing price of one replicate inside the listed price band, with the
                   compliance deadlines marked
:func:`volume`     daily volume of one replicate, split into the listed and block segments
:func:`cumulative` cumulative volume (left axis) and turnover (right axis), with calibration
                   targets marked
:func:`compliance` shortfall (left) and penalties (right) by sector and compliance year,
                   mean over replicates
:func:`offsets`    offset credits surrendered by sector and year, and their share of verified
                   emissions against the usage limit
:func:`fan`        replicate fan chart of a market quantity: median, 25-75 and 5-95
                   percentile bands over replicates
=================  ===========================================================================

:func:`save_all` writes them all as PNG files, atomically; ``result.plot.<name>(...)``
(:class:`PlotAccessor`) calls the same functions.

Design notes
------------
Figures are built with :class:`matplotlib.figure.Figure`, never with :mod:`matplotlib.pyplot`,
so no backend is selected, no figure is registered in pyplot's global list (nothing to
close, nothing leaks in long sweeps) and the module works headless. Importing this module
does not import matplotlib; calling a function without it raises :class:`ImportError` that
names the extra to install.

Deadlines come from ``deadlines=`` when given, else from ``scenario=``, else from the
built-in scenario named in the result's provenance when its content hash matches (a result
of a scenario changed by overrides gets none unless one of the arguments is given).
Targets for :func:`cumulative` and :func:`fan` are drawn only when passed as ``targets=``,
for example ``targets=carbonsim.calibration.targets(name)``. This module never imports
:mod:`carbonsim.calibration`: calibration runs the engine, which builds the Results whose
``result.plot`` loads this module, so that import would close a cycle. ``carbonsim run
--plot`` passes the scenario's calibration targets that fall inside the simulated dates.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim._io import atomic_write_with
from carbonsim.results import MARKET_COLUMNS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from carbonsim.results import Result
    from carbonsim.scenario.schema import Scenario

__all__ = [
    "FAN_QUANTITIES",
    "PlotAccessor",
    "compliance",
    "cumulative",
    "fan",
    "offsets",
    "price",
    "save_all",
    "volume",
]

#: Quantities :func:`fan` accepts besides the market columns: name -> (market column, unit).
FAN_QUANTITIES: dict[str, tuple[str, str]] = {
    "cumulative_volume": ("volume", "t"),
    "cumulative_turnover": ("turnover", "currency"),
}

DateLike = str | dt.date | pd.Timestamp | np.datetime64

_FIGSIZE = (8.0, 4.5)
_PRICE_COLOR = "C0"
_BAND_COLOR = "C0"
_LISTED_COLOR = "C0"
_BLOCK_COLOR = "C1"
_TURNOVER_COLOR = "C2"
_DEADLINE_COLOR = "0.35"
_TARGET_COLOR = "C3"
_FAN_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)


# ---------------------------------------------------------------------------- helpers
def _figure_class() -> type[Figure]:
    """:class:`matplotlib.figure.Figure`, or ImportError naming the ``plot`` extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "carbonsim plots need matplotlib, from the 'plot' extra: pip install 'carbonsim[plot]'"
        ) from exc
    return Figure


def _axes(ax: Axes | None) -> tuple[Figure, Axes]:
    """The root figure of ``ax``, or a new figure with one axes."""
    figure_class = _figure_class()
    if ax is None:
        fig = figure_class(figsize=_FIGSIZE, layout="constrained")
        return fig, fig.add_subplot()
    root: Any = ax.figure
    while not isinstance(root, figure_class):  # a SubFigure: climb to the root figure
        root = root.figure
    return root, ax


def _scale(values: npt.ArrayLike, unit: str) -> tuple[float, str]:
    """A divisor and axis unit so that the largest value reads naturally (t -> kt, Mt)."""
    arr = np.asarray(values, dtype=np.float64)
    top = float(np.nanmax(np.abs(arr))) if arr.size and np.isfinite(arr).any() else 0.0
    if unit == "t":
        steps = ((1e9, "Gt"), (1e6, "Mt"), (1e3, "kt"))
    else:
        steps = ((1e9, f"bn {unit}"), (1e6, f"million {unit}"), (1e3, f"thousand {unit}"))
    for factor, label in steps:
        if top >= factor:
            return factor, label
    return 1.0, unit


def _replicate_numbers(result: Result) -> list[int]:
    return sorted(int(r) for r in result.market.index.get_level_values("replicate").unique())


def _one_replicate(result: Result, replicate: int | None) -> tuple[int, pd.DataFrame]:
    """The market rows of one replicate (the first one when ``replicate`` is None)."""
    reps = _replicate_numbers(result)
    if not reps:
        raise ValueError("result has an empty market table: nothing to plot")
    if replicate is None:
        replicate = reps[0]
    if isinstance(replicate, bool) or not isinstance(replicate, (int, np.integer)):
        raise TypeError(f"replicate must be an int, got {replicate!r}")
    if int(replicate) not in reps:
        raise ValueError(
            f"replicate {replicate} is not in the result; replicates are {reps[0]}..{reps[-1]}"
        )
    market = result.market
    rows = market.index.get_level_values("replicate") == int(replicate)
    return int(replicate), market[rows].droplevel("replicate")


def _scenario_for(result: Result, scenario: Scenario | None) -> Scenario | None:
    """``scenario``, else the built-in scenario the result was run from, if unchanged."""
    if scenario is not None:
        return scenario
    name = result.provenance.get("scenario")
    if not isinstance(name, str):
        return None
    from carbonsim.scenario.loader import list_scenarios, load_scenario

    if name not in list_scenarios():
        return None
    builtin = load_scenario(name)
    if builtin.content_hash() != result.provenance.get("scenario_hash"):
        return None
    return builtin


def _titled(result: Result, what: str) -> str:
    """``"<scenario>: <what>"`` (just ``what`` when the result names no scenario)."""
    name = result.provenance.get("scenario")
    return f"{name}: {what}" if isinstance(name, str) and name else what


def _currency(scenario: Scenario | None) -> str:
    return scenario.currency if scenario is not None else "currency"


def _deadline_dates(
    result: Result, scenario: Scenario | None, deadlines: Sequence[DateLike] | None
) -> list[pd.Timestamp]:
    """Deadlines to mark: the argument, else the scenario's final and staged deadlines."""
    if deadlines is not None:
        if isinstance(deadlines, (str, dt.date)):
            raise TypeError(f"deadlines must be a sequence of dates, got {deadlines!r}")
        return sorted(pd.Timestamp(d) for d in deadlines)
    sc = _scenario_for(result, scenario)
    if sc is None:  # a file scenario: the deadlines the run recorded
        recorded = result.provenance.get("deadlines") or []
        return sorted(pd.Timestamp(d) for d in recorded)
    dates = [p.deadline for p in sc.periods] + [s.date for p in sc.periods for s in p.stages]
    return sorted(pd.Timestamp(d) for d in set(dates))


def _mark_deadlines(ax: Axes, dates: list[pd.Timestamp], index: pd.Index) -> None:
    """Vertical dashed lines at the deadlines inside the plotted dates (one legend entry)."""
    if len(index) == 0:
        return
    from matplotlib.dates import date2num

    first, last = pd.Timestamp(index.min()), pd.Timestamp(index.max())
    label: str | None = "compliance deadline"
    for d in dates:
        if first <= d <= last:
            ax.axvline(
                date2num(d), color=_DEADLINE_COLOR, linestyle="--", linewidth=1.0, label=label
            )
            label = None


def _target_kind(row: pd.Series) -> str | None:
    """``"cumulative_volume"``, ``"cumulative_turnover"`` or None for a target row."""
    for key in ("metric", "name", "target", "quantity"):
        if key in row.index and isinstance(row[key], str):
            text = row[key].lower()
            if "turnover" in text:
                return "cumulative_turnover"
            if "volume" in text and "offset" not in text:
                return "cumulative_volume"
            return None
    if "unit" in row.index and isinstance(row["unit"], str):
        return "cumulative_volume" if row["unit"].strip() == "t" else "cumulative_turnover"
    return None


def _targets_for(targets: pd.DataFrame | None, kinds: Sequence[str]) -> dict[str, pd.Series]:
    """Target values of each kind, indexed by date (tonnes or currency).

    ``targets`` needs columns ``date`` and ``value`` and either ``metric`` (a name with
    ``volume`` or ``turnover`` in it) or ``unit`` (``"t"`` for volume, else turnover).
    Without ``targets``, none.
    """
    if targets is None:
        return {kind: pd.Series(dtype=np.float64) for kind in kinds}
    if not isinstance(targets, pd.DataFrame):
        raise TypeError(f"targets must be a pandas DataFrame, got {type(targets).__name__}")
    frame = targets.reset_index() if "date" not in targets.columns else targets
    missing = [c for c in ("date", "value") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"targets needs columns 'date' and 'value', missing {missing}; "
            f"columns are {list(frame.columns)}"
        )
    frame = frame[frame["date"].notna() & frame["value"].notna()]
    found = np.array([_target_kind(row) for _, row in frame.iterrows()], dtype=object)
    out = {}
    for kind in kinds:
        rows = frame[found == kind] if len(frame) else frame
        values = pd.Series(
            rows["value"].to_numpy(np.float64),
            index=pd.DatetimeIndex(pd.to_datetime(rows["date"])),
        )
        out[kind] = values.sort_index()
    return out


def _mark_targets(ax: Axes, values: pd.Series, factor: float, marker: str, what: str) -> None:
    if len(values):
        ax.plot(
            values.index,
            values.to_numpy() / factor,
            linestyle="none",
            marker=marker,
            markersize=8,
            markerfacecolor="none",
            markeredgewidth=1.5,
            color=_TARGET_COLOR,
            label=f"target {what}",
            zorder=5,
        )


def _combined_legend(ax: Axes, *others: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    for other in others:
        h, lab = other.get_legend_handles_labels()
        handles += h
        labels += lab
    if handles:  # below the axes, so that it never covers the data
        _legend_below(ax, handles, labels)


def _legend_below(
    ax: Axes, handles: list[Any] | None = None, labels: list[str] | None = None
) -> None:
    """The legend in a row under the axes (outside the data area)."""
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=min(len(labels), 3),
        fontsize="small",
        frameon=False,
    )


def _check_units_table(result: Result) -> pd.DataFrame:
    units = result.units
    if len(units) == 0:
        raise ValueError(
            "result has no completed compliance period (empty units table): nothing to plot"
        )
    return units


def _by_sector_year(result: Result, columns: list[str]) -> pd.DataFrame:
    """Sums over units per (replicate, sector, year), then the mean over replicates."""
    units = _check_units_table(result)
    frame = units[["sector", *columns]].copy()
    frame["sector"] = frame["sector"].astype(str)
    keys = [
        frame.index.get_level_values("replicate"),
        frame["sector"].to_numpy(),
        frame.index.get_level_values("year"),
    ]
    sums = frame[columns].groupby(keys).sum()
    sums.index.names = ["replicate", "sector", "year"]
    return sums.groupby(level=["sector", "year"]).mean()


def _categories(ax: Axes, index: pd.Index) -> npt.NDArray[np.float64]:
    """Positions 0..K-1 of (sector, year) categories, labelled on the x axis."""
    x = np.arange(len(index), dtype=np.float64)
    if len(index) <= 6:
        ax.set_xticks(x, [f"{sector}\n{year}" for sector, year in index])
    else:  # many categories: one slanted line each
        labels = [f"{sector} {year}" for sector, year in index]
        ax.set_xticks(x, labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.75, len(index) - 0.25)
    return x


# ---------------------------------------------------------------------------- figures
def price(
    result: Result,
    *,
    replicate: int | None = None,
    scenario: Scenario | None = None,
    deadlines: Sequence[DateLike] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Closing price path inside the listed price band, compliance deadlines marked.

    Parameters
    ----------
    result : Result
        A simulation result.
    replicate : int, optional
        Replicate to draw (default: the first in the result). See :func:`fan` for all.
    scenario : Scenario, optional
        Source of the deadlines and the currency (default: the result's built-in scenario
        when unchanged, see the module notes).
    deadlines : sequence of date-like, optional
        Dates to mark instead of the scenario's deadlines (``[]`` marks none).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: line ``"closing price"`` (currency/t) over the trading dates, a shaded
        ``"listed band"`` (``band_low`` to ``band_high``), dashed deadline lines.
    """
    fig, ax = _axes(ax)
    rep, m = _one_replicate(result, replicate)
    sc = _scenario_for(result, scenario)
    dates = m.index
    ax.fill_between(
        dates,
        m["band_low"].to_numpy(np.float64),
        m["band_high"].to_numpy(np.float64),
        step="mid",
        color=_BAND_COLOR,
        alpha=0.15,
        linewidth=0,
        label="listed band",
    )
    ax.plot(dates, m["price"].to_numpy(np.float64), color=_PRICE_COLOR, label="closing price")
    _mark_deadlines(ax, _deadline_dates(result, sc, deadlines), dates)
    ax.set_ylabel(f"price ({_currency(sc)}/t)")
    ax.set_xlabel("trading date")
    ax.set_title(f"{result.provenance.get('scenario', '')}: price, replicate {rep}".lstrip(": "))
    ax.legend(loc="upper left", fontsize="small")
    return fig


def volume(
    result: Result,
    *,
    replicate: int | None = None,
    scenario: Scenario | None = None,
    deadlines: Sequence[DateLike] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Daily traded volume of one replicate, stacked: listed segment below, block above.

    Parameters
    ----------
    result : Result
        A simulation result.
    replicate : int, optional
        Replicate to draw (default: the first in the result).
    scenario, deadlines : optional
        Deadlines to mark, as in :func:`price`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with two bar containers labelled ``"listed"`` and ``"block"`` (one bar per
        trading date, t scaled to kt or Mt as the y label says).
    """
    fig, ax = _axes(ax)
    rep, m = _one_replicate(result, replicate)
    listed = m["listed_volume"].to_numpy(np.float64)
    block = m["block_volume"].to_numpy(np.float64)
    factor, unit = _scale(listed + block, "t")
    ax.bar(m.index, listed / factor, width=1.0, color=_LISTED_COLOR, label="listed")
    bottom = listed / factor
    ax.bar(m.index, block / factor, width=1.0, bottom=bottom, color=_BLOCK_COLOR, label="block")
    _mark_deadlines(ax, _deadline_dates(result, scenario, deadlines), m.index)
    ax.set_ylabel(f"daily volume ({unit})")
    ax.set_xlabel("trading date")
    ax.set_title(_titled(result, f"daily volume by segment, replicate {rep}"))
    ax.legend(loc="upper left", fontsize="small")
    return fig


def cumulative(
    result: Result,
    *,
    replicate: int | None = None,
    scenario: Scenario | None = None,
    deadlines: Sequence[DateLike] | None = None,
    targets: pd.DataFrame | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Cumulative volume (left axis) and turnover (right axis) of one replicate.

    Parameters
    ----------
    result : Result
        A simulation result.
    replicate : int, optional
        Replicate to draw (default: the first in the result).
    scenario, deadlines : optional
        Deadlines to mark, as in :func:`price`; the scenario also gives the currency.
    targets : pandas.DataFrame, optional
        Targets to mark: columns ``date``, ``value`` (t or currency) and ``metric`` (a name
        containing ``volume`` or ``turnover``) or ``unit`` (``"t"`` for volume, else
        turnover), e.g. ``carbonsim.calibration.targets(name)``. Default: none.
    ax : matplotlib.axes.Axes, optional
        Axes for the volume; the turnover goes on its twin.

    Returns
    -------
    matplotlib.figure.Figure
        Axes with line ``"cumulative volume"`` and a twin axes with line
        ``"cumulative turnover"``; targets as open markers labelled ``"target volume"`` and
        ``"target turnover"``.
    """
    fig, ax = _axes(ax)
    rep, m = _one_replicate(result, replicate)
    sc = _scenario_for(result, scenario)
    vol = m["volume"].cumsum().to_numpy(np.float64)
    turn = m["turnover"].cumsum().to_numpy(np.float64)
    marks = _targets_for(targets, ("cumulative_volume", "cumulative_turnover"))
    t_vol, t_turn = marks["cumulative_volume"], marks["cumulative_turnover"]
    v_factor, v_unit = _scale(np.concatenate([vol, t_vol.to_numpy()]), "t")
    c_factor, c_unit = _scale(np.concatenate([turn, t_turn.to_numpy()]), _currency(sc))
    ax.plot(m.index, vol / v_factor, color=_PRICE_COLOR, label="cumulative volume")
    _mark_targets(ax, t_vol, v_factor, "o", "volume")
    right = ax.twinx()
    right.plot(m.index, turn / c_factor, color=_TURNOVER_COLOR, label="cumulative turnover")
    _mark_targets(right, t_turn, c_factor, "s", "turnover")
    _mark_deadlines(ax, _deadline_dates(result, sc, deadlines), m.index)
    ax.set_ylabel(f"cumulative volume ({v_unit})")
    right.set_ylabel(f"cumulative turnover ({c_unit})")
    ax.set_xlabel("trading date")
    ax.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    ax.set_title(_titled(result, f"cumulative volume and turnover, replicate {rep}"))
    _combined_legend(ax, right)
    return fig


def compliance(
    result: Result, *, scenario: Scenario | None = None, ax: Axes | None = None
) -> Figure:
    """Shortfall (left axis) and penalties (right axis) by sector and compliance year.

    Sums over units, then the mean over replicates.

    Parameters
    ----------
    result : Result
        A simulation result with at least one completed compliance period.
    scenario : Scenario, optional
        Gives the currency of the penalties.
    ax : matplotlib.axes.Axes, optional
        Axes for the shortfall; the penalties go on its twin.

    Returns
    -------
    matplotlib.figure.Figure
        Axes with bars ``"shortfall"`` (t, scaled) and a twin with bars ``"penalties"``
        (currency), one pair per (sector, year) category.

    Raises
    ------
    ValueError
        If the result has no completed compliance period.
    """
    fig, ax = _axes(ax)
    table = _by_sector_year(result, ["shortfall", "penalty"])
    sc = _scenario_for(result, scenario)
    x = _categories(ax, table.index)
    s_factor, s_unit = _scale(table["shortfall"], "t")
    p_factor, p_unit = _scale(table["penalty"], _currency(sc))
    width = 0.38
    ax.bar(x - width / 2, table["shortfall"] / s_factor, width, color="C3", label="shortfall")
    right = ax.twinx()
    right.bar(x + width / 2, table["penalty"] / p_factor, width, color="C4", label="penalties")
    ax.set_ylabel(f"shortfall at the deadline ({s_unit})")
    right.set_ylabel(f"penalties ({p_unit})")
    ax.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    ax.set_title(
        _titled(result, f"compliance by sector, mean of {result.n_replicates} replicate(s)")
    )
    _combined_legend(ax, right)
    return fig


def offsets(result: Result, *, scenario: Scenario | None = None, ax: Axes | None = None) -> Figure:
    """Offset credits surrendered by sector and year, and their share of verified emissions.

    Parameters
    ----------
    result : Result
        A simulation result with at least one completed compliance period.
    scenario : Scenario, optional
        Gives the usage limit (``offset_limit_share`` of the period ending in each year),
        drawn as a marker on the share axis (default: the result's built-in scenario when
        unchanged).
    ax : matplotlib.axes.Axes, optional
        Axes for the credits; the share goes on its twin.

    Returns
    -------
    matplotlib.figure.Figure
        Axes with bars ``"offsets surrendered"`` (t, scaled; mean over replicates) and a
        twin with points ``"share of emissions"`` (percent) and ``"usage limit"`` (percent,
        when the scenario is known).

    Raises
    ------
    ValueError
        If the result has no completed compliance period.
    """
    fig, ax = _axes(ax)
    table = _by_sector_year(result, ["offsets_surrendered", "emissions"])
    x = _categories(ax, table.index)
    used = table["offsets_surrendered"].to_numpy(np.float64)
    emitted = table["emissions"].to_numpy(np.float64)
    factor, unit = _scale(used, "t")
    ax.bar(x, used / factor, 0.6, color="C2", label="offsets surrendered")
    right = ax.twinx()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(emitted > 0, 100.0 * used / emitted, np.nan)
    right.plot(x, share, linestyle="none", marker="o", color="C0", label="share of emissions")
    sc = _scenario_for(result, scenario)
    if sc is not None:
        limit_by_year = {p.emission_years[-1]: p.offset_limit_share for p in sc.periods}
        limits = np.array([100.0 * limit_by_year.get(int(year), np.nan) for _, year in table.index])
        right.plot(
            x,
            limits,
            linestyle="none",
            marker="_",
            markersize=20,
            mew=2,
            color="C3",
            label="usage limit",
        )
    ax.set_ylabel(f"offset credits surrendered ({unit})")
    right.set_ylabel("share of verified emissions (%)")
    ax.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    ax.set_title(_titled(result, f"offset use, mean of {result.n_replicates} replicate(s)"))
    _combined_legend(ax, right)
    return fig


def _fan_data(result: Result, quantity: str) -> tuple[pd.DataFrame, str]:
    """Dates x replicates table of ``quantity`` and its unit."""
    market = result.market
    if quantity in FAN_QUANTITIES:
        column, unit = FAN_QUANTITIES[quantity]
        series = market[column].groupby(level="replicate").cumsum()
    elif quantity in MARKET_COLUMNS:
        series, unit = market[quantity], MARKET_COLUMNS[quantity][0]
    else:
        valid = ", ".join(repr(q) for q in [*MARKET_COLUMNS, *FAN_QUANTITIES])
        raise ValueError(f"unknown quantity {quantity!r}; valid quantities are: {valid}")
    if len(series) == 0:
        raise ValueError("result has an empty market table: nothing to plot")
    return series.unstack("replicate"), unit


def fan(
    result: Result,
    quantity: str = "price",
    *,
    scenario: Scenario | None = None,
    deadlines: Sequence[DateLike] | None = None,
    targets: pd.DataFrame | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Replicate fan chart: median and 25-75 / 5-95 percentile bands over replicates.

    Parameters
    ----------
    result : Result
        A simulation result (with several replicates for a fan to show).
    quantity : str
        A market column (:data:`~carbonsim.results.MARKET_COLUMNS`, e.g. ``"price"``) or
        ``"cumulative_volume"`` / ``"cumulative_turnover"`` (:data:`FAN_QUANTITIES`).
    scenario, deadlines : optional
        Deadlines to mark, as in :func:`price`; the scenario also gives the currency.
    targets : pandas.DataFrame, optional
        Targets to mark on cumulative quantities, as in :func:`cumulative`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: line ``"median"``, shaded bands ``"5-95%"`` and ``"25-75%"`` of the
        quantity across replicates on each trading date (NaNs ignored).
    """
    fig, ax = _axes(ax)
    table, unit = _fan_data(result, quantity)
    sc = _scenario_for(result, scenario)
    values = table.to_numpy(np.float64)  # (dates, R)
    dates = table.index
    has_value = ~np.all(np.isnan(values), axis=1)
    q = np.full((len(_FAN_PERCENTILES), len(dates)), np.nan)
    if has_value.any():
        q[:, has_value] = np.nanpercentile(values[has_value], _FAN_PERCENTILES, axis=1)
    display_unit = unit.replace("currency", _currency(sc))
    kind = FAN_QUANTITIES.get(quantity, ("", ""))[0]
    marks = (
        _targets_for(targets, (quantity,))[quantity]
        if quantity in FAN_QUANTITIES
        else pd.Series(dtype=np.float64)
    )
    if display_unit in ("t", _currency(sc)):
        factor, display_unit = _scale(np.concatenate([q[-1], marks.to_numpy()]), display_unit)
    else:
        factor = 1.0
    q = q / factor
    color = _TURNOVER_COLOR if kind == "turnover" else _PRICE_COLOR
    ax.fill_between(dates, q[0], q[4], color=color, alpha=0.15, linewidth=0, label="5-95%")
    ax.fill_between(dates, q[1], q[3], color=color, alpha=0.35, linewidth=0, label="25-75%")
    ax.plot(dates, q[2], color=color, label="median")
    _mark_targets(ax, marks, factor, "o", quantity.replace("cumulative_", ""))
    _mark_deadlines(ax, _deadline_dates(result, sc, deadlines), dates)
    ax.set_ylabel(f"{quantity.replace('_', ' ')} ({display_unit})")
    ax.set_xlabel("trading date")
    ax.set_title(f"{quantity.replace('_', ' ')} over {table.shape[1]} replicate(s)")
    ax.legend(loc="upper left", fontsize="small")
    return fig


# ---------------------------------------------------------------------------- files
def _save_png(fig: Figure, dpi: float, path: Path) -> None:
    fig.savefig(path, format="png", dpi=dpi)


def save_all(
    result: Result,
    directory: str | Path,
    *,
    scenario: Scenario | None = None,
    deadlines: Sequence[DateLike] | None = None,
    targets: pd.DataFrame | None = None,
    dpi: float = 100.0,
) -> list[Path]:
    """Write every figure as a PNG file into ``directory`` (created if missing), atomically.

    Files: ``price.png``, ``volume.png``, ``cumulative.png`` (all for the first replicate),
    ``compliance.png`` and ``offsets.png`` (when a compliance period completed), and with
    more than one replicate ``price_fan.png`` and ``cumulative_volume_fan.png``. Each file
    is written to a temporary sibling and moved into place, so an interrupted call never
    leaves a half-written image.

    Parameters
    ----------
    result : Result
        A simulation result.
    directory : str or path-like
        Output folder.
    scenario, deadlines, targets : optional
        Passed to the figures (see :func:`price` and :func:`cumulative`).
    dpi : float
        Resolution, dots per inch (the figures are 8 x 4.5 inches).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order above.
    """
    out = Path(directory)
    sc = _scenario_for(result, scenario)
    figures: dict[str, functools.partial[Figure]] = {
        "price": functools.partial(price, result, scenario=sc, deadlines=deadlines),
        "volume": functools.partial(volume, result, scenario=sc, deadlines=deadlines),
        "cumulative": functools.partial(
            cumulative, result, scenario=sc, deadlines=deadlines, targets=targets
        ),
    }
    if len(result.units):
        figures["compliance"] = functools.partial(compliance, result, scenario=sc)
        figures["offsets"] = functools.partial(offsets, result, scenario=sc)
    if result.n_replicates > 1:
        figures["price_fan"] = functools.partial(
            fan, result, "price", scenario=sc, deadlines=deadlines
        )
        figures["cumulative_volume_fan"] = functools.partial(
            fan, result, "cumulative_volume", scenario=sc, deadlines=deadlines, targets=targets
        )
    written = []
    for name, make in figures.items():
        fig = make()
        written.append(
            atomic_write_with(out / f"{name}.png", functools.partial(_save_png, fig, dpi))
        )
    return written


class PlotAccessor:
    """``result.plot``: the figures of this module bound to one result.

    Examples
    --------
    >>> import carbonsim as cs
    >>> res = cs.simulate("china-national-tiny", seed=0)
    >>> fig = res.plot.price()  # doctest: +SKIP
    >>> res.plot.save_all("figures/")  # doctest: +SKIP
    """

    def __init__(self, result: Result) -> None:
        self._result = result

    def __repr__(self) -> str:
        return f"<PlotAccessor of a Result with {self._result.n_replicates} replicate(s)>"

    def price(self, **kwargs: Any) -> Figure:
        """Price path and band; see :func:`carbonsim.plot.price`."""
        return price(self._result, **kwargs)

    def volume(self, **kwargs: Any) -> Figure:
        """Daily volume by segment; see :func:`carbonsim.plot.volume`."""
        return volume(self._result, **kwargs)

    def cumulative(self, **kwargs: Any) -> Figure:
        """Cumulative volume and turnover; see :func:`carbonsim.plot.cumulative`."""
        return cumulative(self._result, **kwargs)

    def compliance(self, **kwargs: Any) -> Figure:
        """Shortfall and penalties by sector; see :func:`carbonsim.plot.compliance`."""
        return compliance(self._result, **kwargs)

    def offsets(self, **kwargs: Any) -> Figure:
        """Offset use; see :func:`carbonsim.plot.offsets`."""
        return offsets(self._result, **kwargs)

    def fan(self, quantity: str = "price", **kwargs: Any) -> Figure:
        """Replicate fan chart; see :func:`carbonsim.plot.fan`."""
        return fan(self._result, quantity, **kwargs)

    def save_all(self, directory: str | Path, **kwargs: Any) -> list[Path]:
        """Write every figure as PNG; see :func:`carbonsim.plot.save_all`."""
        return save_all(self._result, directory, **kwargs)
