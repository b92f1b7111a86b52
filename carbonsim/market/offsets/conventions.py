"""Conventions of the offset modules: dates, year fractions and whole tonnes.

- Dates are ``numpy.datetime64[D]``; periods are half-open ``[start, end)``, so a calendar
  year 2025 is ``("2025-01-01", "2026-01-01")``.
- An annual rate (t CO2e/yr) is turned into a quantity for a period with the actual/actual
  year fraction (:func:`year_fraction`).
- Integer tonnes are derived from float products rounded to micro-tonnes first
  (:data:`ROUND_DECIMALS`).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._validation import describe

__all__ = ["ROUND_DECIMALS", "DateLike", "as_date", "as_date_array", "year_fraction"]

DateLike = str | np.datetime64 | _dt.date

#: Integer tonnes are derived from float products; round to micro-tonnes first so that, e.g.,
#: 0.29 * 100 (= 28.999999999999996 in binary) floors to 29, not 28.
ROUND_DECIMALS = 6


def as_date(name: str, value: Any) -> np.datetime64:
    """Normalise a scalar date (ISO string, ``datetime.date``, ``datetime64``) to ``[D]``."""
    if isinstance(value, (bool, int, float, np.integer, np.floating)) or value is None:
        raise TypeError(
            f"{name} must be a date (ISO string, datetime.date or numpy.datetime64), "
            f"got {describe(value)}"
        )
    try:
        out = np.datetime64(value, "D")
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{name} must be a date such as '2025-03-01', got {describe(value)}"
        ) from exc
    if np.isnat(out):
        raise ValueError(f"{name} must be a date, got NaT")
    return out


def as_date_array(name: str, value: Any) -> npt.NDArray[np.datetime64]:
    """Normalise a 1-d array of dates to ``datetime64[D]``; NaT and numbers are rejected."""
    arr = np.asarray(value)
    if arr.dtype.kind == "M":
        out = arr.astype("datetime64[D]")
    elif arr.dtype.kind in "UO":
        try:
            out = arr.astype("datetime64[D]")
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{name} must hold dates such as '2025-03-01', got {describe(value)}"
            ) from exc
    else:
        raise TypeError(
            f"{name} must be an array of dates (datetime64 or ISO strings), got dtype "
            f"{arr.dtype} (value {describe(value)})"
        )
    if out.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {out.shape}")
    bad = np.isnat(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must hold valid dates, got {name}[{i}] = NaT")
    return out


def _days_in_year(years: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Number of days of the calendar years given as ``datetime64[Y]``."""
    jan1 = years.astype("datetime64[D]")
    nxt = (years + np.timedelta64(1, "Y")).astype("datetime64[D]")
    return (nxt - jan1).astype(np.int64)


def year_fraction(start: npt.ArrayLike, end: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Actual/actual length in years of the half-open periods ``[start, end)``.

    Each calendar year touched contributes (days of the period in it) / (days in that
    year), so 1 Jan 2024 to 1 Jan 2025 is exactly 1.0 although 2024 has 366 days. Periods
    with ``end <= start`` have length 0.

    Parameters
    ----------
    start, end : array_like of datetime64[D], broadcastable
        Period bounds; ``end`` is exclusive.

    Returns
    -------
    ndarray of float64
        Broadcast shape of ``start`` and ``end``, years (>= 0).

    Examples
    --------
    >>> float(year_fraction(np.datetime64("2025-07-01"), np.datetime64("2026-01-01"))) * 365
    184.0
    """
    s = np.asarray(start, dtype="datetime64[D]")
    e = np.asarray(end, dtype="datetime64[D]")
    s, e = np.broadcast_arrays(s, e)
    e = np.maximum(e, s)
    ys = s.astype("datetime64[Y]")
    ye = e.astype("datetime64[Y]")
    diy_s = _days_in_year(ys)
    # days from s to the next 1 January, and from the last 1 January to e
    head = ((ys + np.timedelta64(1, "Y")).astype("datetime64[D]") - s).astype(np.float64)
    tail = (e - ye.astype("datetime64[D]")).astype(np.float64)
    whole = (ye - ys).astype(np.float64) - 1.0
    same_year = ye == ys
    span = (e - s).astype(np.float64)
    frac = np.where(same_year, span / diy_s, head / diy_s + whole + tail / _days_in_year(ye))
    return np.asarray(frac, dtype=np.float64)
