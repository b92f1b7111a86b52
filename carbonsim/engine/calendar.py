"""Trading calendars: which days a market session runs.

Two calendars are built in and more can be registered in :data:`CALENDARS`:

``"XSHG"``
    Mainland China exchange trading days (the Shanghai Environment and Energy Exchange
    follows the mainland exchange calendar, about 242 sessions a year;
    docs/rules.md#trading-calendar). Weekdays minus the closures listed in the package data
    file ``data/xshg_closures.csv``, which is generated from the ``exchange-calendars``
    package by :func:`regenerate_xshg_closures` (``python -m carbonsim.engine.calendar``)
    and covers :data:`XSHG_TABLE_YEARS`. Outside those years a rule-based approximation is
    used: New Year's Day, the Spring Festival week (lunar new year's eve to the fifth day,
    from a table of lunar-new-year dates), Qingming (4 April), Labour Day (1-5 May) and
    National Day (1-7 October). It omits the Dragon Boat and Mid-Autumn holidays and the
    make-up weekdays, so it has about two sessions a year more than the real calendar
    (conf. C).
``"business"``
    Monday to Friday, no holidays (for generic and EU-style scenarios).

Shipping the closures as data means a run never depends on whether an optional package is
installed: the same scenario gives the same trading days everywhere.

>>> days = trading_days("2021-07-16", "2021-07-23", "XSHG")
>>> [d.strftime("%a %d") for d in days]
['Fri 16', 'Mon 19', 'Tue 20', 'Wed 21', 'Thu 22', 'Fri 23']
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from carbonsim._registry import Registry

log = logging.getLogger(__name__)

__all__ = [
    "CALENDARS",
    "XSHG_TABLE_YEARS",
    "regenerate_xshg_closures",
    "trading_days",
]

#: Years covered exactly by the shipped XSHG closure table (inclusive).
XSHG_TABLE_YEARS = (2007, 2026)

_CLOSURES_FILE = "xshg_closures.csv"

# Gregorian dates of the lunar new year, used only outside the exact table (conf. C).
_LUNAR_NEW_YEAR = {
    2027: "2027-02-06",
    2028: "2028-01-26",
    2029: "2029-02-13",
    2030: "2030-02-03",
    2031: "2031-01-23",
    2032: "2032-02-11",
    2033: "2033-01-31",
    2034: "2034-02-19",
    2035: "2035-02-08",
}

CalendarFn = Callable[[pd.Timestamp, pd.Timestamp], pd.DatetimeIndex]

#: Registry of calendars by name; each maps (start, end) to a DatetimeIndex of sessions.
CALENDARS: Registry[CalendarFn] = Registry("trading calendar")


def _as_day(name: str, value: str | dt.date | pd.Timestamp) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a date like '2021-07-16', got {value!r}") from exc
    if ts is pd.NaT:
        raise ValueError(f"{name} must be a date like '2021-07-16', got {value!r}")
    return ts.normalize().tz_localize(None) if ts.tzinfo is not None else ts.normalize()


@lru_cache(maxsize=1)
def _xshg_table() -> frozenset[np.datetime64]:
    text = (
        resources.files("carbonsim.engine")
        .joinpath("data")
        .joinpath(_CLOSURES_FILE)
        .read_text("utf-8")
    )
    days = [line.strip() for line in text.splitlines() if line.strip() and line[0].isdigit()]
    return frozenset(np.datetime64(d, "D") for d in days)


def _rule_based_closures(year: int) -> list[pd.Timestamp]:
    days = [pd.Timestamp(year, 1, 1), pd.Timestamp(year, 4, 4)]
    days += [pd.Timestamp(year, 5, d) for d in range(1, 6)]
    days += [pd.Timestamp(year, 10, d) for d in range(1, 8)]
    lny = _LUNAR_NEW_YEAR.get(year)
    if lny is not None:
        first = pd.Timestamp(lny) - pd.Timedelta(days=1)
        days += list(pd.date_range(first, periods=7, freq="D"))
    else:
        log.info("no lunar new year date for %d; Spring Festival closures omitted", year)
    return days


def _weekdays(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    return pd.bdate_range(start, end, freq="B")


@CALENDARS.register("business")
def _business(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    return _weekdays(start, end)


@CALENDARS.register("XSHG")
def _xshg(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    days = _weekdays(start, end)
    lo, hi = XSHG_TABLE_YEARS
    table = _xshg_table()
    in_table = (days.year >= lo) & (days.year <= hi)
    closed = np.isin(days.values.astype("datetime64[D]"), np.array(sorted(table)))
    keep = ~(closed & in_table)
    outside_years = sorted(set(days.year[~in_table]))
    if outside_years:
        log.info("XSHG calendar: rule-based approximation used for years %s", outside_years)
        rule_days = np.array(
            [d.to_datetime64() for y in outside_years for d in _rule_based_closures(y)],
            dtype="datetime64[ns]",
        )
        keep &= ~(np.isin(days.values, rule_days) & ~in_table)
    return days[keep]


def trading_days(
    start: str | dt.date | pd.Timestamp,
    end: str | dt.date | pd.Timestamp,
    calendar: str = "XSHG",
) -> pd.DatetimeIndex:
    """Trading sessions from ``start`` to ``end`` inclusive.

    Parameters
    ----------
    start, end : str, date or Timestamp
        First and last calendar day considered (inclusive).
    calendar : str
        A name registered in :data:`CALENDARS` (``"XSHG"`` or ``"business"``).

    Returns
    -------
    pandas.DatetimeIndex
        Session dates (midnight, no time zone), named ``date``.

    Raises
    ------
    ValueError
        If a date cannot be parsed or ``end`` is before ``start``.
    UnknownPluginError
        If ``calendar`` is not registered (the message lists the valid names).
    """
    fn = CALENDARS.get(calendar)
    s = _as_day("start", start)
    e = _as_day("end", end)
    if e < s:
        raise ValueError(f"end ({e.date()}) must not be before start ({s.date()})")
    # a new index object each call (its name can be changed), sharing the cached dates
    return pd.DatetimeIndex(_sessions(fn, s, e), name="date")


@lru_cache(maxsize=64)
def _sessions(
    fn: Callable[[pd.Timestamp, pd.Timestamp], pd.DatetimeIndex],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DatetimeIndex:
    """``fn(start, end)`` as an index, remembered per calendar function and dates (a run
    asks twice: for its memory estimate and its schedule; a sweep once per task)."""
    return pd.DatetimeIndex(fn(start, end), name="date")


def regenerate_xshg_closures(path: str | Path | None = None) -> Path:
    """Rewrite the XSHG closure table from the ``exchange-calendars`` package.

    The table lists every weekday in :data:`XSHG_TABLE_YEARS` on which the mainland exchanges
    were (or are scheduled to be) closed. Requires ``pip install 'carbonsim[calendars]'``.

    Parameters
    ----------
    path : path-like, optional
        Where to write; defaults to the file shipped in the package.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    try:
        import exchange_calendars as xcals  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ImportError(
            "regenerating the XSHG table needs exchange-calendars: "
            "pip install 'carbonsim[calendars]'"
        ) from exc
    lo, hi = XSHG_TABLE_YEARS
    cal = xcals.get_calendar("XSHG")
    sessions = pd.DatetimeIndex(cal.sessions).tz_localize(None)
    weekdays = pd.bdate_range(f"{lo}-01-01", f"{hi}-12-31")
    closed = weekdays.difference(sessions)
    target = (
        Path(path)
        if path is not None
        else Path(
            str(resources.files("carbonsim.engine").joinpath("data").joinpath(_CLOSURES_FILE))
        )
    )
    header = (
        f"# Weekdays on which mainland China exchanges (XSHG) were closed, {lo}-{hi}.\n"
        f"# Generated by carbonsim.engine.calendar.regenerate_xshg_closures from "
        f"exchange-calendars {getattr(xcals, '__version__', '?')}.\n"
    )
    tmp = target.with_suffix(".tmp")
    tmp.write_text(header + "\n".join(d.strftime("%Y-%m-%d") for d in closed) + "\n", "utf-8")
    tmp.replace(target)
    _xshg_table.cache_clear()
    return target


if __name__ == "__main__":  # pragma: no cover
    print(f"wrote {regenerate_xshg_closures()}")
