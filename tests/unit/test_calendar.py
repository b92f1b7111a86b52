"""Trading calendars."""

from __future__ import annotations

import pandas as pd
import pytest

from carbonsim._registry import UnknownPluginError
from carbonsim.engine.calendar import XSHG_TABLE_YEARS, trading_days


def test_national_market_opening_week() -> None:
    days = trading_days("2021-07-16", "2021-07-23")
    assert days[0] == pd.Timestamp("2021-07-16")  # launch day was a Friday session
    assert len(days) == 6
    assert days.name == "date"


@pytest.mark.parametrize(("year", "n"), [(2022, 242), (2023, 242), (2024, 242)])
def test_about_242_sessions_a_year(year: int, n: int) -> None:
    assert len(trading_days(f"{year}-01-01", f"{year}-12-31")) == n


def test_national_day_golden_week_closed() -> None:
    days = trading_days("2023-09-28", "2023-10-09")
    assert not any((d.month == 10) & (1 <= d.day <= 6) for d in days)
    assert pd.Timestamp("2023-10-09") in days


def test_spring_festival_closed_2024() -> None:
    days = trading_days("2024-02-08", "2024-02-19")
    assert pd.Timestamp("2024-02-09") not in days
    assert pd.Timestamp("2024-02-14") not in days
    assert pd.Timestamp("2024-02-19") in days


def test_rule_based_extension_beyond_table() -> None:
    year = XSHG_TABLE_YEARS[1] + 1
    days = trading_days(f"{year}-01-01", f"{year}-12-31")
    assert pd.Timestamp(f"{year}-01-01") not in days
    assert not any((d.month == 10) & (d.day <= 7) for d in days)
    assert 240 <= len(days) <= 250


def test_business_calendar_is_weekdays() -> None:
    days = trading_days("2024-01-01", "2024-01-31", "business")
    assert len(days) == 23
    assert all(d.weekday() < 5 for d in days)


# exchange-calendars itself triggers a pandas 3.1 deprecation warning; ours must not.
@pytest.mark.filterwarnings("ignore:Series.values returning")
def test_matches_exchange_calendars_when_available() -> None:
    xcals = pytest.importorskip("exchange_calendars")
    lo, hi = XSHG_TABLE_YEARS
    expected = pd.DatetimeIndex(
        xcals.get_calendar("XSHG").sessions_in_range(f"{lo}-01-01", f"{hi}-12-31")
    ).tz_localize(None)
    got = trading_days(f"{lo}-01-01", f"{hi}-12-31")
    assert got.equals(pd.DatetimeIndex(expected, name="date"))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="start must be a date"):
        trading_days("not a date", "2024-01-01")
    with pytest.raises(ValueError, match="must not be before start"):
        trading_days("2024-02-01", "2024-01-01")
    with pytest.raises(UnknownPluginError, match="'XSHG', 'business'"):
        trading_days("2024-01-01", "2024-02-01", "NYSE")
