"""Offset credits (CCER and Beijing carbon-inclusive credits) as arrays.

Offset projects are rows ``0..P-1`` of an :class:`OffsetProjects` table. The functions here
compute quantities (credits issued, eligibility masks, usage caps, offset-market fills) as
numpy arrays; the engine applies them to holdings through the ledger.

Rules implemented (``ets-rules.md``, section "Offsets (CCER)" unless said otherwise):

- **Usage limit**: at most 5% of the allowances to be surrendered, per year
  (:func:`usage_cap`).
- **Eligibility**: not from projects whose emissions are covered by the ETS; from 2025 only
  credits registered after the 22 Jan 2024 relaunch (:func:`eligible`).
- **Relaunch and first methodologies**: afforestation, grid-connected solar thermal,
  grid-connected offshore wind and mangrove restoration (:data:`methodologies`).
- **No new credits issued in 2024**, first issuance March 2025: the ``first_issuance``
  argument of :func:`issued_credits` defers issuance (:data:`FIRST_ISSUANCE`).
- **Legacy credits**: about 32.7 Mt of CCER were surrendered in the first cycle
  (:data:`LEGACY_CCER_FIRST_CYCLE_T`, :func:`legacy_ccer_stock`).
- **Beijing pilot** (``ets-rules.md`` "Beijing pilot"): offsets at most 5% of the annual
  allocation, at least half from Beijing projects; Beijing carbon-inclusive credits allowed
  (:func:`beijing_usage_cap`, :func:`beijing_offset_use`). The carbon-inclusive
  methodologies (low-carbon travel, hydrogen fuel-cell vehicles) come from seed files 003
  and 004.

Offsets trade in their own market with their own price: :func:`clear_offset_market`
clears buyers' bids against project supply with the uniform-price call auction of
:mod:`carbonsim.clearing.call_auction`; :func:`offset_demand` turns a unit's cap and
remaining obligation into a bid.

Conventions
-----------
- Dates are ``numpy.datetime64[D]``; periods are half-open ``[start, end)``, so a calendar
  year 2025 is ``("2025-01-01", "2026-01-01")``.
- An annual rate (t CO2e/yr) is turned into a quantity for a period with the actual/actual
  year fraction: each calendar year contributes (days in the period) / (days in that year),
  so a full calendar year, leap or not, is exactly one year.
- Credits, caps and fills are whole tonnes (``int64``); expected reductions and prices are
  ``float64``. Prices are yuan/t.
- The numeric defaults of the methodologies (typical size, lag, dispersion, cost) are
  illustrative (conf. C); the rule table gives only which methodologies exist. Replace them
  with ``methodologies.register(code, replace=True)``.
- Beijing's "at least half from Beijing projects" is applied as a cap on non-local credits
  of half the offset cap (2.5% of the allocation), so a unit may use fewer local credits
  than non-local ones only if it stays under the 2.5% non-local cap.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim._random import SeedLike, as_generator
from carbonsim._registry import Registry
from carbonsim._validation import (
    as_bool_array,
    as_float_array,
    as_int_array,
    check_in_range,
    check_share,
    describe,
)
from carbonsim.clearing.call_auction import call_auction

__all__ = [
    "FIRST_ISSUANCE",
    "LEGACY_CCER_FIRST_CYCLE_T",
    "RELAUNCH_DATE",
    "BeijingOffsetCap",
    "Issuance",
    "Methodology",
    "OffsetClearing",
    "OffsetDemand",
    "OffsetProjects",
    "beijing_offset_use",
    "beijing_usage_cap",
    "clear_offset_market",
    "eligible",
    "issued_credits",
    "legacy_ccer_stock",
    "methodologies",
    "methodology_table",
    "offset_demand",
    "synthetic_projects",
    "usage_cap",
    "year_fraction",
]

logger = logging.getLogger(__name__)

DateLike = str | np.datetime64 | _dt.date

#: Relaunch of the CCER market at the Beijing Green Exchange (``ets-rules.md``, "Offsets
#: (CCER)": "Relaunch 22 Jan 2024 at the Beijing Green Exchange").
RELAUNCH_DATE: np.datetime64 = np.datetime64("2024-01-22", "D")

#: First issuance of post-relaunch credits (``ets-rules.md``, "Offsets (CCER)": "No new
#: credits were issued in 2024 (first issuance March 2025)"). The rule gives the month only;
#: the first day of the month is used.
FIRST_ISSUANCE: np.datetime64 = np.datetime64("2025-03-01", "D")

#: CCER surrendered in the first compliance cycle, t CO2e (``ets-rules.md``, "Offsets
#: (CCER)": "About 32.7 Mt of CCER were surrendered in the first cycle"). Used as the default
#: size of the legacy (pre-2017) stock: the stock that remained is of the same order (conf. C).
LEGACY_CCER_FIRST_CYCLE_T: int = 32_700_000

_POST_RELAUNCH_ONLY_FROM: np.datetime64 = np.datetime64("2025-01-01", "D")

# Integer tonnes are derived from float products; round to micro-tonnes first so that, e.g.,
# 0.29 * 100 (= 28.999999999999996 in binary) floors to 29, not 28.
_ROUND_DECIMALS = 6


# --------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------


def _as_date(name: str, value: Any) -> np.datetime64:
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


def _as_date_array(name: str, value: Any) -> npt.NDArray[np.datetime64]:
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


# --------------------------------------------------------------------------------------
# Methodologies
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Methodology:
    """Default parameters of one offset methodology (one row of :func:`methodology_table`).

    Attributes
    ----------
    code : str
        Short name used in :attr:`OffsetProjects.methodology`.
    name : str
        Full name.
    reference : str
        Official methodology number where one exists, else ``""``.
    sector : str
        ``"forestry"``, ``"energy"``, ``"blue carbon"``, ``"carbon-inclusive"`` or
        ``"legacy"``.
    typical_capacity : float
        Annual reductions of a typical project, t CO2e/yr (used by
        :func:`synthetic_projects`).
    capacity_factor : float
        Load factor of the typical power plant behind ``typical_capacity`` (energy
        methodologies); ``nan`` where not applicable.
    crediting_years : float
        Length of a typical crediting period, years.
    issuance_lag_days : int
        Days between the end of a monitoring period and issuance (verification, review).
    sigma : float
        Lognormal sigma of realised / expected reductions in one period.
    marginal_cost : float
        Typical cost of supplying a credit (monitoring, verification, foregone use),
        yuan/t; the project's reservation price in the offset market.
    post_relaunch : bool
        True for methodologies of the January 2024 relaunch system; False for pre-2017
        (legacy) CCER.
    national : bool
        Usable for compliance in the national ETS (False for Beijing carbon-inclusive
        credits, which only the Beijing pilot accepts).
    source : str
        Provenance of the row.
    """

    code: str
    name: str
    reference: str
    sector: str
    typical_capacity: float
    capacity_factor: float
    crediting_years: float
    issuance_lag_days: int
    sigma: float
    marginal_cost: float
    post_relaunch: bool
    national: bool
    source: str

    def __post_init__(self) -> None:
        if not self.code or not isinstance(self.code, str):
            raise ValueError(f"Methodology.code must be a non-empty string, got {self.code!r}")
        check_in_range(f"Methodology[{self.code}].typical_capacity", self.typical_capacity, 0.0)
        check_in_range(f"Methodology[{self.code}].crediting_years", self.crediting_years, 0.0)
        check_in_range(f"Methodology[{self.code}].issuance_lag_days", self.issuance_lag_days, 0)
        check_in_range(f"Methodology[{self.code}].sigma", self.sigma, 0.0)
        check_in_range(f"Methodology[{self.code}].marginal_cost", self.marginal_cost, 0.0)


#: Registry of offset methodologies by code; an unknown code lists the valid ones.
#: Register a new methodology with ``methodologies.register(code)(Methodology(...))``.
methodologies: Registry[Methodology] = Registry("offset methodology")

_RELAUNCH_SRC = (
    "ets-rules.md 'Offsets (CCER)': first methodologies of the 22 Jan 2024 relaunch; "
    "numeric defaults illustrative (conf. C)"
)
_INCLUSIVE_SRC = (
    "seeds 003/004 (Beijing carbon-inclusive projects); ets-rules.md 'Beijing pilot': "
    "carbon-inclusive credits allowed; numeric defaults illustrative (conf. C)"
)

_DEFAULT_METHODOLOGIES: tuple[Methodology, ...] = (
    Methodology(
        code="afforestation",
        name="Afforestation carbon sink",
        reference="CCER-14-001-V01",
        sector="forestry",
        typical_capacity=20_000.0,  # e.g. 4,000 ha at 5 t/ha/yr
        capacity_factor=float("nan"),
        crediting_years=30.0,  # forestry crediting periods 20-40 years
        issuance_lag_days=365,
        sigma=0.25,
        marginal_cost=35.0,
        post_relaunch=True,
        national=True,
        source=_RELAUNCH_SRC,
    ),
    Methodology(
        code="solar_thermal",
        name="Grid-connected solar thermal power",
        reference="CCER-01-001-V01",
        sector="energy",
        typical_capacity=150_000.0,  # 100 MW x 0.30 x 8,760 h x ~0.57 t/MWh
        capacity_factor=0.30,
        crediting_years=10.0,
        issuance_lag_days=180,
        sigma=0.12,
        marginal_cost=25.0,
        post_relaunch=True,
        national=True,
        source=_RELAUNCH_SRC,
    ),
    Methodology(
        code="offshore_wind",
        name="Grid-connected offshore wind power",
        reference="CCER-01-002-V01",
        sector="energy",
        typical_capacity=520_000.0,  # 300 MW x 0.35 x 8,760 h x ~0.57 t/MWh
        capacity_factor=0.35,
        crediting_years=10.0,
        issuance_lag_days=180,
        sigma=0.10,
        marginal_cost=15.0,
        post_relaunch=True,
        national=True,
        source=_RELAUNCH_SRC,
    ),
    Methodology(
        code="mangrove",
        name="Mangrove restoration",
        reference="CCER-14-002-V01",
        sector="blue carbon",
        typical_capacity=3_000.0,
        capacity_factor=float("nan"),
        crediting_years=30.0,
        issuance_lag_days=365,
        sigma=0.35,
        marginal_cost=90.0,
        post_relaunch=True,
        national=True,
        source=_RELAUNCH_SRC,
    ),
    Methodology(
        code="legacy",
        name="Pre-2017 CCER (legacy stock)",
        reference="",
        sector="legacy",
        typical_capacity=100_000.0,
        capacity_factor=float("nan"),
        crediting_years=7.0,
        issuance_lag_days=180,
        sigma=0.0,
        marginal_cost=5.0,
        post_relaunch=False,
        national=True,
        source=(
            "ets-rules.md 'Offsets (CCER)': legacy credits were used; about 32.7 Mt "
            "surrendered in the first cycle"
        ),
    ),
    Methodology(
        code="low_carbon_travel",
        name="Beijing carbon-inclusive: low-carbon travel",
        reference="",
        sector="carbon-inclusive",
        typical_capacity=50_000.0,
        capacity_factor=float("nan"),
        crediting_years=5.0,
        issuance_lag_days=90,
        sigma=0.15,
        marginal_cost=20.0,
        post_relaunch=True,
        national=False,
        source=_INCLUSIVE_SRC,
    ),
    Methodology(
        code="hydrogen_fcv",
        name="Beijing carbon-inclusive: hydrogen fuel-cell vehicles",
        reference="",
        sector="carbon-inclusive",
        typical_capacity=5_000.0,
        capacity_factor=float("nan"),
        crediting_years=5.0,
        issuance_lag_days=90,
        sigma=0.20,
        marginal_cost=60.0,
        post_relaunch=True,
        national=False,
        source=_INCLUSIVE_SRC,
    ),
)

for _m in _DEFAULT_METHODOLOGIES:
    methodologies.register(_m.code)(_m)
del _m


def methodology_table() -> pd.DataFrame:
    """All registered methodologies as a table.

    Returns
    -------
    pandas.DataFrame
        One row per methodology, index ``code``; columns are the fields of
        :class:`Methodology` (capacities t CO2e/yr, costs yuan/t, lags days).

    Examples
    --------
    >>> methodology_table().loc["offshore_wind", "reference"]
    'CCER-01-002-V01'
    """
    rows = [methodologies.get(code) for code in methodologies.names()]
    frame = pd.DataFrame([r.__dict__ for r in rows]).set_index("code")
    frame.attrs["units"] = {
        "typical_capacity": "t CO2e/yr",
        "crediting_years": "yr",
        "issuance_lag_days": "d",
        "marginal_cost": "yuan/t",
    }
    return frame


# --------------------------------------------------------------------------------------
# Projects
# --------------------------------------------------------------------------------------


def _readonly(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


def _as_str_array(name: str, value: Any) -> npt.NDArray[np.str_]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "UO":
        raise TypeError(f"{name} must hold strings, got dtype {arr.dtype} ({describe(value)})")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    for i, v in enumerate(arr.tolist()):
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name} must hold non-empty strings, got {name}[{i}] = {v!r}")
    return arr.astype(str)


@dataclass(frozen=True, eq=False, init=False)
class OffsetProjects:
    """Offset projects as arrays over ``P`` projects (rows ``0..P-1``).

    The constructor validates every field (errors name the field and the offending row)
    and stores read-only normalised arrays.

    Parameters
    ----------
    ids : pandas.Index or array_like, shape (P,)
        Unique project identifiers; stored as a ``pandas.Index`` named ``"project"``.
    methodology : array_like of str, shape (P,)
        Methodology codes registered in :data:`methodologies`.
    capacity : array_like of float, shape (P,)
        Expected annual emission reductions, t CO2e/yr (>= 0).
    registration : array_like of dates, shape (P,)
        Registration date of the project (``datetime64[D]``).
    crediting_start, crediting_end : array_like of dates, shape (P,)
        Crediting period ``[start, end)``; reductions outside it earn no credits.
    issuance_lag : array_like of int, shape (P,)
        Days from the end of a monitoring period to issuance (>= 0).
    sigma : array_like of float, shape (P,)
        Lognormal sigma of realised / expected reductions per period (>= 0).
    covered_entity : array_like of bool, shape (P,)
        True where the project lies inside an ETS-covered unit (its credits are
        ineligible, ``ets-rules.md`` "Offsets (CCER)").
    region : array_like of str, shape (P,)
        Location, e.g. ``"beijing"`` or ``"other"`` (Beijing's local-share rule).
    marginal_cost : array_like of float, shape (P,)
        Reservation price of the project's credits, yuan/t (>= 0).
    """

    ids: pd.Index
    methodology: npt.NDArray[np.str_]
    capacity: npt.NDArray[np.float64]
    registration: npt.NDArray[np.datetime64]
    crediting_start: npt.NDArray[np.datetime64]
    crediting_end: npt.NDArray[np.datetime64]
    issuance_lag: npt.NDArray[np.int64]
    sigma: npt.NDArray[np.float64]
    covered_entity: npt.NDArray[np.bool_]
    region: npt.NDArray[np.str_]
    marginal_cost: npt.NDArray[np.float64]

    def __init__(
        self,
        ids: pd.Index | npt.ArrayLike,
        methodology: npt.ArrayLike,
        capacity: npt.ArrayLike,
        registration: npt.ArrayLike,
        crediting_start: npt.ArrayLike,
        crediting_end: npt.ArrayLike,
        issuance_lag: npt.ArrayLike,
        sigma: npt.ArrayLike,
        covered_entity: npt.ArrayLike,
        region: npt.ArrayLike,
        marginal_cost: npt.ArrayLike,
    ) -> None:
        index = ids if isinstance(ids, pd.Index) else pd.Index(np.asarray(ids))
        index = index.rename("project")
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise ValueError(f"OffsetProjects.ids must be unique, got duplicate {dup!r}")
        n = len(index)
        pre = "OffsetProjects."
        values: dict[str, np.ndarray] = {
            "methodology": _as_str_array(pre + "methodology", methodology),
            "capacity": as_float_array(pre + "capacity", capacity, nonnegative=True),
            "registration": _as_date_array(pre + "registration", registration),
            "crediting_start": _as_date_array(pre + "crediting_start", crediting_start),
            "crediting_end": _as_date_array(pre + "crediting_end", crediting_end),
            "issuance_lag": as_int_array(pre + "issuance_lag", issuance_lag, nonnegative=True),
            "sigma": as_float_array(pre + "sigma", sigma, nonnegative=True),
            "covered_entity": as_bool_array(pre + "covered_entity", covered_entity),
            "region": _as_str_array(pre + "region", region),
            "marginal_cost": as_float_array(pre + "marginal_cost", marginal_cost, nonnegative=True),
        }
        for key, arr in values.items():
            if len(arr) != n:
                raise ValueError(
                    f"{pre}{key} must have one entry per project ({n}), got length {len(arr)}"
                )
        unknown = [c for c in np.unique(values["methodology"]).tolist() if c not in methodologies]
        if unknown:
            valid = ", ".join(repr(c) for c in methodologies.names())
            raise ValueError(
                f"{pre}methodology: unknown code {unknown[0]!r}; valid codes are: {valid}"
            )
        bad = values["crediting_end"] <= values["crediting_start"]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{pre}crediting_end must be after crediting_start, got row {i}: "
                f"start {values['crediting_start'][i]}, end {values['crediting_end'][i]}"
            )
        object.__setattr__(self, "ids", index)
        for key, arr in values.items():
            object.__setattr__(self, key, _readonly(arr))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n(self) -> int:
        """Number of projects ``P``."""
        return len(self.ids)

    def is_local(self, region: str = "beijing") -> npt.NDArray[np.bool_]:
        """Boolean mask (P,) of projects located in ``region``."""
        return np.asarray(self.region == region)

    def attribute(self, name: str) -> npt.NDArray[Any]:
        """Per-project value (P,) of a :class:`Methodology` field, e.g. ``"national"``."""
        if name not in Methodology.__dataclass_fields__:
            valid = ", ".join(sorted(Methodology.__dataclass_fields__))
            raise ValueError(f"unknown methodology field {name!r}; valid fields are: {valid}")
        table = {code: getattr(methodologies.get(code), name) for code in set(self.methodology)}
        return np.array([table[c] for c in self.methodology.tolist()])

    def to_frame(self) -> pd.DataFrame:
        """The projects as a DataFrame indexed by ``project``."""
        return pd.DataFrame(
            {
                "methodology": self.methodology,
                "capacity": self.capacity,
                "registration": self.registration,
                "crediting_start": self.crediting_start,
                "crediting_end": self.crediting_end,
                "issuance_lag": self.issuance_lag,
                "sigma": self.sigma,
                "covered_entity": self.covered_entity,
                "region": self.region,
                "marginal_cost": self.marginal_cost,
            },
            index=self.ids,
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> OffsetProjects:
        """Build from a DataFrame with the columns of :meth:`to_frame` (index = ids)."""
        needed = [f for f in cls.__dataclass_fields__ if f != "ids"]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"frame is missing columns {missing}; required: {needed}")
        return cls(ids=frame.index, **{c: frame[c].to_numpy() for c in needed})


def synthetic_projects(
    n: int,
    *,
    rng: SeedLike,
    codes: list[str] | tuple[str, ...] | None = None,
    weights: npt.ArrayLike | None = None,
    registration_window: tuple[DateLike, DateLike] = ("2024-01-22", "2026-01-01"),
    local_share: float = 0.1,
    covered_share: float = 0.0,
    capacity_sigma: float = 0.5,
    cost_sigma: float = 0.3,
) -> OffsetProjects:
    """Draw a synthetic portfolio of offset projects from the methodology defaults.

    Parameters
    ----------
    n : int
        Number of projects ``P`` (>= 0).
    rng : int, SeedSequence, Generator or None
        Randomness (see :func:`carbonsim._random.as_generator`).
    codes : sequence of str, optional
        Methodologies to draw from; default all registered.
    weights : array_like of float, optional
        Relative frequency of each code (same length as ``codes``); default equal.
    registration_window : (date, date)
        Post-relaunch projects are registered uniformly in ``[first, second)``. Legacy
        projects are registered uniformly between 2013-01-01 and 2017-03-14 (the
        suspension of CCER registration) whatever this window.
    local_share : float
        Probability that a CCER project lies in Beijing (carbon-inclusive projects always
        do).
    covered_share : float
        Probability that a project lies inside an ETS-covered unit.
    capacity_sigma, cost_sigma : float
        Lognormal (mean-one) dispersion of capacity and marginal cost around the
        methodology's typical values.

    Returns
    -------
    OffsetProjects
        Ids ``P00000 ...``; crediting starts at registration and lasts the methodology's
        crediting period (years converted at 365.25 days); issuance lag and sigma are the
        methodology's.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {describe(n)}")
    gen = as_generator(rng)
    chosen = list(methodologies.names() if codes is None else codes)
    if not chosen:
        raise ValueError("codes must name at least one methodology, got an empty sequence")
    meths = [methodologies.get(c) for c in chosen]
    if weights is None:
        w = np.full(len(chosen), 1.0 / len(chosen))
    else:
        w = as_float_array("weights", weights, nonnegative=True)
        if len(w) != len(chosen) or w.sum() <= 0:
            raise ValueError(
                f"weights must have one positive-sum entry per code ({len(chosen)}), "
                f"got {describe(weights)}"
            )
        w = w / w.sum()
    check_share("local_share", local_share)
    check_share("covered_share", covered_share)
    check_in_range("capacity_sigma", capacity_sigma, 0.0)
    check_in_range("cost_sigma", cost_sigma, 0.0)
    lo = _as_date("registration_window[0]", registration_window[0])
    hi = _as_date("registration_window[1]", registration_window[1])
    if hi <= lo:
        raise ValueError(f"registration_window must be increasing, got {registration_window!r}")

    pick = gen.choice(len(chosen), size=n, p=w)
    typ_cap = np.array([m.typical_capacity for m in meths])[pick]
    typ_cost = np.array([m.marginal_cost for m in meths])[pick]
    years = np.array([m.crediting_years for m in meths])[pick]
    lag = np.array([m.issuance_lag_days for m in meths], dtype=np.int64)[pick]
    sig = np.array([m.sigma for m in meths])[pick]
    legacy = np.array([not m.post_relaunch for m in meths])[pick]
    inclusive = np.array([m.sector == "carbon-inclusive" for m in meths])[pick]

    span = int((hi - lo).astype(np.int64))
    legacy_lo = np.datetime64("2013-01-01", "D")
    legacy_span = int((np.datetime64("2017-03-14", "D") - legacy_lo).astype(np.int64))
    offset_new = gen.integers(0, span, size=n)
    offset_old = gen.integers(0, legacy_span, size=n)
    registration = np.where(
        legacy,
        legacy_lo + offset_old.astype("timedelta64[D]"),
        lo + offset_new.astype("timedelta64[D]"),
    ).astype("datetime64[D]")
    length = np.maximum(np.rint(years * 365.25), 1).astype(np.int64).astype("timedelta64[D]")
    cap = typ_cap * np.exp(capacity_sigma * gen.standard_normal(n) - 0.5 * capacity_sigma**2)
    cost = typ_cost * np.exp(cost_sigma * gen.standard_normal(n) - 0.5 * cost_sigma**2)
    local = inclusive | (gen.random(n) < local_share)
    covered = gen.random(n) < covered_share
    return OffsetProjects(
        ids=pd.Index([f"P{i:05d}" for i in range(n)], name="project"),
        methodology=np.array(chosen, dtype=str)[pick] if n else np.array([], dtype=str),
        capacity=cap,
        registration=registration,
        crediting_start=registration,
        crediting_end=registration + length,
        issuance_lag=lag,
        sigma=sig,
        covered_entity=covered,
        region=np.where(local, "beijing", "other").astype(str),
        marginal_cost=cost,
    )


# --------------------------------------------------------------------------------------
# Issuance
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Issuance:
    """Credits issued for one monitoring period.

    Attributes
    ----------
    credits : ndarray of int64, shape (R, P)
        Whole tonnes credited per replicate and project (>= 0).
    issue_date : ndarray of datetime64[D], shape (P,)
        Date the credits are issued (lag and deferral applied); the same in every
        replicate.
    expected : ndarray of float64, shape (P,)
        Expected reductions in the period, t CO2e (capacity x crediting-year fraction).
    vintage : int
        Calendar year of the period start (the credits' vintage).
    """

    credits: npt.NDArray[np.int64]
    issue_date: npt.NDArray[np.datetime64]
    expected: npt.NDArray[np.float64]
    vintage: int


def issued_credits(
    projects: OffsetProjects,
    period_start: DateLike,
    period_end: DateLike,
    *,
    rng: SeedLike | Sequence[SeedLike],
    replicates: int = 1,
    first_issuance: DateLike | None = None,
) -> Issuance:
    """Credits issued for reductions in the monitoring period ``[period_start, period_end)``.

    Realised reductions of project ``p`` in replicate ``r``::

        expected[p] = capacity[p] * year_fraction(overlap of the period and the crediting
                                                   period of p)
        realised[r, p] = expected[p] * exp(sigma[p] * z[r, p] - sigma[p]**2 / 2)

    with ``z`` standard normal (mean-one lognormal noise), and the credits are
    ``floor(realised)`` whole tonnes (a fractional tonne is not issued). Credits are issued
    on::

        issue_date[p] = max(period_end + issuance_lag[p], registration[p], first_issuance)

    so a lag can push issuance into the next year, and no credit is issued before
    registration or before ``first_issuance``. Pass ``first_issuance=FIRST_ISSUANCE`` to
    model the relaunch rule "no new credits were issued in 2024 (first issuance March
    2025)" (``ets-rules.md``, "Offsets (CCER)").

    Parameters
    ----------
    projects : OffsetProjects
        ``P`` projects.
    period_start, period_end : date
        Monitoring period, ``period_end`` exclusive (``period_end > period_start``).
    rng : int, SeedSequence, Generator, None, or a sequence of these
        Randomness. One seed or generator draws the ``R x P`` standard normals in one call.
        A sequence (e.g. :func:`carbonsim._random.replicate_seeds` children) gives one
        stream per replicate, so replicate ``k`` gets the same credits alone or in a batch;
        ``R`` is then its length.
    replicates : int
        Number of replicates ``R`` (>= 1); with a sequence ``rng``, 1 or its length.
    first_issuance : date, optional
        Earliest issuance date; ``None`` applies no deferral.

    Returns
    -------
    Issuance
        ``credits`` (R, P) int64 t, ``issue_date`` (P,), ``expected`` (P,) t, ``vintage``.
    """
    if not isinstance(projects, OffsetProjects):
        raise TypeError(f"projects must be OffsetProjects, got {type(projects).__name__}")
    start = _as_date("period_start", period_start)
    end = _as_date("period_end", period_end)
    if end <= start:
        raise ValueError(f"period_end must be after period_start, got {start} to {end}")
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)):
        raise TypeError(f"replicates must be an int, got {describe(replicates)}")
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    if isinstance(rng, (list, tuple)):
        if not rng:
            raise ValueError("rng must not be an empty sequence")
        if replicates not in (1, len(rng)):
            raise ValueError(
                f"replicates must be 1 or len(rng) = {len(rng)} when rng is a sequence, "
                f"got {replicates}"
            )
        gens = [as_generator(g) for g in rng]
        z = np.stack([g.standard_normal(len(projects)) for g in gens])
    else:
        gen = as_generator(cast(SeedLike, rng))
        z = gen.standard_normal((int(replicates), len(projects)))

    lo = np.maximum(projects.crediting_start, start)
    hi = np.minimum(projects.crediting_end, end)
    expected = projects.capacity * year_fraction(lo, hi)
    sig = projects.sigma
    realised = expected * np.exp(sig * z - 0.5 * sig**2)
    credits = np.floor(np.round(realised, _ROUND_DECIMALS)).astype(np.int64)

    issue = np.maximum(end + projects.issuance_lag.astype("timedelta64[D]"), projects.registration)
    if first_issuance is not None:
        issue = np.maximum(issue, _as_date("first_issuance", first_issuance))
    vintage = int(start.astype("datetime64[Y]").astype(np.int64)) + 1970
    logger.debug("issued %d t over %d projects for %s", int(credits.sum()), len(projects), start)
    return Issuance(
        credits=credits,
        issue_date=issue.astype("datetime64[D]"),
        expected=expected,
        vintage=vintage,
    )


# --------------------------------------------------------------------------------------
# Eligibility
# --------------------------------------------------------------------------------------


_SCHEMES = ("national", "beijing")


def eligible(
    projects: OffsetProjects,
    *,
    as_of: DateLike,
    relaunch_date: DateLike = RELAUNCH_DATE,
    require_post_relaunch: bool | None = None,
    exclude_covered: bool = True,
    vintage_range: tuple[int, int] | None = None,
    scheme: str = "national",
) -> npt.NDArray[np.bool_]:
    """Which projects' credits may be surrendered for compliance on ``as_of``.

    A project is eligible when all of these hold (``ets-rules.md``, "Offsets (CCER)"):

    - it is registered on or before ``as_of``;
    - if ``require_post_relaunch``: it was registered on or after ``relaunch_date``
      ("from 2025 only credits registered after the 22 Jan 2024 relaunch"); the default
      ``None`` means True when ``as_of`` is in 2025 or later;
    - if ``exclude_covered``: it is not inside an ETS-covered unit ("not from projects whose
      emissions are covered by the ETS");
    - if ``vintage_range=(first, last)``: its crediting period overlaps the calendar years
      ``first..last`` (inclusive), i.e. it can hold credits of those vintages;
    - for ``scheme="national"``: its methodology is usable nationally (Beijing
      carbon-inclusive credits are not); ``scheme="beijing"`` accepts them
      (``ets-rules.md``, "Beijing pilot").

    Parameters
    ----------
    projects : OffsetProjects
        ``P`` projects.
    as_of : date
        Date of use (e.g. the surrender deadline).
    relaunch_date : date
        Relaunch of the CCER system, default 22 Jan 2024.
    require_post_relaunch : bool or None
        See above.
    exclude_covered : bool
        See above.
    vintage_range : (int, int), optional
        First and last acceptable vintage year.
    scheme : {"national", "beijing"}
        Which market's rules apply.

    Returns
    -------
    ndarray of bool, shape (P,)
    """
    if not isinstance(projects, OffsetProjects):
        raise TypeError(f"projects must be OffsetProjects, got {type(projects).__name__}")
    when = _as_date("as_of", as_of)
    relaunch = _as_date("relaunch_date", relaunch_date)
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
    if not isinstance(exclude_covered, (bool, np.bool_)):
        raise TypeError(f"exclude_covered must be a bool, got {describe(exclude_covered)}")
    if require_post_relaunch is None:
        require_post_relaunch = bool(when >= _POST_RELAUNCH_ONLY_FROM)
    elif not isinstance(require_post_relaunch, (bool, np.bool_)):
        raise TypeError(
            f"require_post_relaunch must be a bool or None, got {describe(require_post_relaunch)}"
        )

    ok = projects.registration <= when
    if require_post_relaunch:
        ok &= projects.registration >= relaunch
    if exclude_covered:
        ok &= ~projects.covered_entity
    if vintage_range is not None:
        if (
            not isinstance(vintage_range, tuple)
            or len(vintage_range) != 2
            or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vintage_range
            )
            or vintage_range[0] > vintage_range[1]
        ):
            raise ValueError(
                f"vintage_range must be a (first, last) pair of int years with first <= last, "
                f"got {describe(vintage_range)}"
            )
        first = np.datetime64(f"{int(vintage_range[0]):04d}-01-01", "D")
        after_last = np.datetime64(f"{int(vintage_range[1]) + 1:04d}-01-01", "D")
        ok &= (projects.crediting_start < after_last) & (projects.crediting_end > first)
    if scheme == "national":
        ok &= projects.attribute("national").astype(bool)
    return np.asarray(ok, dtype=bool)


# --------------------------------------------------------------------------------------
# Usage caps
# --------------------------------------------------------------------------------------


def _floor_tonnes(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.floor(np.round(x, _ROUND_DECIMALS)).astype(np.int64)


def usage_cap(obligation: npt.ArrayLike, share: float = 0.05) -> npt.NDArray[np.int64]:
    """Most offsets a unit may surrender: ``floor(share x obligation)`` whole tonnes.

    Implements ``ets-rules.md``, "Offsets (CCER)": "Usage limit: at most 5% of the
    allowances to be surrendered, per year".

    Parameters
    ----------
    obligation : array_like of float, shape (..., N)
        Allowances to be surrendered (verified emissions, after any gap cap), t (>= 0).
    share : float
        Usage limit as a share of the obligation, in [0, 1]; default 0.05.

    Returns
    -------
    ndarray of int64, shape (..., N)
        Cap in whole tonnes (rounded down).

    Examples
    --------
    >>> usage_cap([1_000, 1_019]).tolist()
    [50, 50]
    """
    ob = as_float_array("obligation", obligation, ndim=None, nonnegative=True)
    s = check_share("share", share)
    return _floor_tonnes(ob * s)


@dataclass(frozen=True, eq=False)
class BeijingOffsetCap:
    """Beijing offset caps per unit.

    Attributes
    ----------
    total : ndarray of int64, shape (..., N)
        Most offsets (local and non-local) a unit may use, t.
    nonlocal_max : ndarray of int64, shape (..., N)
        Most offsets from projects outside Beijing, t.
    """

    total: npt.NDArray[np.int64]
    nonlocal_max: npt.NDArray[np.int64]


def beijing_usage_cap(
    allocation: npt.ArrayLike, *, share: float = 0.05, local_min_share: float = 0.5
) -> BeijingOffsetCap:
    """Beijing pilot offset caps: 5% of the annual allocation, at least half from Beijing.

    Implements ``ets-rules.md``, "Beijing pilot": "Offsets at most 5% of annual allocation,
    at least half from Beijing projects". The half-local requirement is a cap on non-local
    credits of ``(1 - local_min_share) x share`` of the allocation (2.5% with the defaults):

    ``total = floor(share x allocation)``,
    ``nonlocal_max = floor((1 - local_min_share) x share x allocation)``.

    Parameters
    ----------
    allocation : array_like of float, shape (..., N)
        Annual allowance allocation of each unit, t (>= 0).
    share : float
        Offset limit as a share of the allocation, in [0, 1].
    local_min_share : float
        Minimum share of the cap reserved for Beijing projects, in [0, 1].

    Returns
    -------
    BeijingOffsetCap
        ``total`` and ``nonlocal_max``, int64 t, shape (..., N).

    Examples
    --------
    >>> cap = beijing_usage_cap([100_000, 10_010])
    >>> cap.total.tolist(), cap.nonlocal_max.tolist()
    ([5000, 500], [2500, 250])
    """
    alloc = as_float_array("allocation", allocation, ndim=None, nonnegative=True)
    s = check_share("share", share)
    loc = check_share("local_min_share", local_min_share)
    return BeijingOffsetCap(
        total=_floor_tonnes(alloc * s),
        nonlocal_max=_floor_tonnes(alloc * (s * (1.0 - loc))),
    )


def beijing_offset_use(
    cap: BeijingOffsetCap,
    local_available: npt.ArrayLike,
    nonlocal_available: npt.ArrayLike,
    need: npt.ArrayLike | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Largest permitted use of local and non-local offsets under the Beijing caps.

    Local credits are used first, then non-local ones up to their own cap and the room
    left under the total cap: ``local = min(local_available, total, need)``,
    ``nonlocal = min(nonlocal_available, nonlocal_max, total - local, need - local)``. This
    maximises ``local + nonlocal`` subject to the caps of :func:`beijing_usage_cap`
    (``ets-rules.md``, "Beijing pilot").

    Parameters
    ----------
    cap : BeijingOffsetCap
        Caps, shape (..., N).
    local_available, nonlocal_available : array_like of int, shape (..., N)
        Eligible credits held, t (>= 0).
    need : array_like of int, shape (..., N), optional
        Remaining obligation, t (>= 0); default no limit beyond the caps.

    Returns
    -------
    (local, nonlocal) : tuple of ndarray of int64, shape (..., N)
        Tonnes of each kind to surrender.
    """
    if not isinstance(cap, BeijingOffsetCap):
        raise TypeError(f"cap must be BeijingOffsetCap, got {type(cap).__name__}")
    la = as_int_array("local_available", local_available, ndim=None, nonnegative=True)
    na = as_int_array("nonlocal_available", nonlocal_available, ndim=None, nonnegative=True)
    total = cap.total
    if need is not None:
        total = np.minimum(total, as_int_array("need", need, ndim=None, nonnegative=True))
    local = np.minimum(la, total)
    nonlocal_ = np.minimum(np.minimum(na, cap.nonlocal_max), total - local)
    return local.astype(np.int64), nonlocal_.astype(np.int64)


def legacy_ccer_stock(
    weights: npt.ArrayLike, *, total: int = LEGACY_CCER_FIRST_CYCLE_T
) -> npt.NDArray[np.int64]:
    """Distribute a legacy (pre-2017) CCER stock over holders, exactly ``total`` tonnes.

    The default ``total`` is the 32.7 Mt surrendered in the first cycle (``ets-rules.md``,
    "Offsets (CCER)": "legacy credits were used"; "About 32.7 Mt of CCER were surrendered in
    the first cycle"), taken as the order of the legacy stock (conf. C: pass your own).
    Shares are proportional to ``weights`` and rounded by largest remainder (ties to the
    lower index) so the result sums exactly to ``total`` along the last axis.

    Parameters
    ----------
    weights : array_like of float, shape (..., N)
        Relative holdings, e.g. each unit's expected offset demand (>= 0, positive sum
        along the last axis).
    total : int
        Stock to distribute, t (>= 0).

    Returns
    -------
    ndarray of int64, shape (..., N)
        Legacy credits per holder, t; sums to ``total`` along the last axis.

    Examples
    --------
    >>> legacy_ccer_stock([1, 1, 1], total=10).tolist()
    [4, 3, 3]
    """
    w = as_float_array("weights", weights, ndim=None, nonnegative=True)
    if w.ndim == 0:
        raise ValueError(f"weights must have at least one axis, got shape {w.shape}")
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 0:
        raise ValueError(f"total must be a non-negative int (t), got {describe(total)}")
    sums = w.sum(axis=-1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError("weights must have a positive sum along the last axis")
    exact = w / sums * float(total)
    base = np.floor(exact).astype(np.int64)
    short = int(total) - base.sum(axis=-1, keepdims=True)
    remainder = exact - base
    order = np.argsort(-remainder, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(w.shape[-1]), axis=-1)
    return base + (rank < short).astype(np.int64)


# --------------------------------------------------------------------------------------
# Offset market
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OffsetDemand:
    """Bids of covered units in the offset market.

    Attributes
    ----------
    price : ndarray of float64, shape (..., N)
        Willingness to pay, yuan/t.
    qty : ndarray of int64, shape (..., N)
        Credits wanted, t.
    """

    price: npt.NDArray[np.float64]
    qty: npt.NDArray[np.int64]


def offset_demand(
    cap: npt.ArrayLike,
    remaining_obligation: npt.ArrayLike,
    expected_allowance_price: npt.ArrayLike,
    *,
    discount: float = 0.1,
    held: npt.ArrayLike = 0,
) -> OffsetDemand:
    """A unit's bid for offsets: up to its usage cap, at a discount to allowances.

    A credit replaces one allowance in the surrender, up to the usage cap
    (``ets-rules.md``, "Offsets (CCER)": "at most 5% of the allowances to be surrendered"),
    so a unit wants ``max(min(cap, remaining_obligation) - held, 0)`` credits and pays at
    most ``expected_allowance_price x (1 - discount)``. The discount prices what makes a
    credit worth less than an allowance: the cap, the eligibility risk and the transaction
    cost; it is a behavioural parameter (conf. C).

    Parameters
    ----------
    cap : array_like of int, shape (..., N)
        Usage cap, t (from :func:`usage_cap`).
    remaining_obligation : array_like of int, shape (..., N)
        Allowances still to surrender, t (>= 0).
    expected_allowance_price : array_like of float, broadcastable to (..., N)
        Expected allowance price, yuan/t (>= 0).
    discount : float
        Discount of credits to allowances, in [0, 1].
    held : array_like of int, broadcastable to (..., N)
        Eligible credits already held, t (>= 0).

    Returns
    -------
    OffsetDemand
        ``price`` (..., N) yuan/t and ``qty`` (..., N) int64 t.

    Examples
    --------
    >>> d = offset_demand([50, 50], [30, 200], 80.0, discount=0.25, held=[0, 20])
    >>> d.qty.tolist(), d.price.tolist()
    ([30, 30], [60.0, 60.0])
    """
    c = as_int_array("cap", cap, ndim=None, nonnegative=True)
    rem = as_int_array("remaining_obligation", remaining_obligation, ndim=None, nonnegative=True)
    p = as_float_array(
        "expected_allowance_price", expected_allowance_price, ndim=None, nonnegative=True
    )
    d = check_share("discount", discount)
    h = as_int_array("held", held, ndim=None, nonnegative=True)
    try:
        shape = np.broadcast_shapes(c.shape, rem.shape, p.shape, h.shape)
    except ValueError as exc:
        raise ValueError(
            f"cap {c.shape}, remaining_obligation {rem.shape}, expected_allowance_price "
            f"{p.shape} and held {h.shape} must broadcast together"
        ) from exc
    qty = np.maximum(np.minimum(c, rem) - h, 0)
    price = np.broadcast_to(p * (1.0 - d), shape).astype(np.float64)
    return OffsetDemand(price=price, qty=np.broadcast_to(qty, shape).astype(np.int64))


@dataclass(frozen=True, eq=False)
class OffsetClearing:
    """Outcome of the offset market over ``R`` replicates.

    Attributes
    ----------
    price : ndarray of float64, shape (R,)
        Offset clearing price, yuan/t; without a trade the reference price (snapped to the
        tick) or ``nan`` when there is none.
    volume : ndarray of int64, shape (R,)
        Credits traded, t.
    buyer_fill : ndarray of int64, shape (R, N)
        Credits bought by each covered unit, t.
    project_fill : ndarray of int64, shape (R, P)
        Credits sold by each project, t.
    imbalance : ndarray of float64, shape (R,)
        Demand minus supply at the price, t (``nan`` without a price).
    """

    price: npt.NDArray[np.float64]
    volume: npt.NDArray[np.int64]
    buyer_fill: npt.NDArray[np.int64]
    project_fill: npt.NDArray[np.int64]
    imbalance: npt.NDArray[np.float64]


def _to_2d(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 1:
        return arr[None, :]
    if arr.ndim == 2:
        return arr
    raise ValueError(f"{name} must have shape (n,) or (R, n), got {arr.shape}")


def _whole(fill: np.ndarray) -> npt.NDArray[np.int64]:
    # The kernel rations whole quantities in whole units (largest remainder), so the fills
    # are whole numbers held in float64; convert them exactly.
    return np.rint(fill).astype(np.int64)


def clear_offset_market(
    demand_price: npt.ArrayLike,
    demand_qty: npt.ArrayLike,
    supply_price: npt.ArrayLike,
    supply_qty: npt.ArrayLike,
    *,
    tick: float = 0.01,
    reference_price: float | npt.ArrayLike | None = None,
) -> OffsetClearing:
    """Clear the offset (CCER) market: covered units' bids against projects' credits.

    Offsets trade in their own market with their own price (DESIGN.md, "Offsets"; the CCER
    market at the Beijing Green Exchange, ``ets-rules.md`` "Offsets (CCER)"). Each
    replicate is one uniform-price call auction
    (:func:`carbonsim.clearing.call_auction.call_auction`, pro-rata rationing at the
    clearing price): buyers bid ``demand_qty`` at ``demand_price`` (see
    :func:`offset_demand`, whose quantity never exceeds the usage cap), projects offer
    ``supply_qty`` at ``supply_price`` (their marginal cost). Replicates are cleared one
    call each.

    Parameters
    ----------
    demand_price : array_like of float, shape (N,) or (R, N)
        Buyers' willingness to pay, yuan/t.
    demand_qty : array_like of int, shape (N,) or (R, N)
        Credits wanted, t (>= 0).
    supply_price : array_like of float, shape (P,) or (R, P)
        Projects' reservation prices, yuan/t (e.g. :attr:`OffsetProjects.marginal_cost`).
    supply_qty : array_like of int, shape (P,) or (R, P)
        Credits offered (issued, eligible and unsold), t (>= 0).
    tick : float
        Price step, yuan/t (> 0).
    reference_price : float or array_like of shape (R,), optional
        Previous offset price; breaks price ties and is reported when nothing trades.

    Returns
    -------
    OffsetClearing
        ``price`` (R,), ``volume`` (R,), ``buyer_fill`` (R, N), ``project_fill`` (R, P),
        ``imbalance`` (R,). ``R`` is the leading axis of the inputs that have one, 1 when
        all inputs are one-dimensional.

    Examples
    --------
    >>> out = clear_offset_market([60.0, 55.0], [100, 50], [15.0, 58.0], [70, 100])
    >>> out.price.tolist(), out.volume.tolist(), out.buyer_fill.tolist()
    ([58.0], [100], [[100, 0]])
    >>> out.project_fill.tolist()
    [[70, 30]]
    """
    dp = _to_2d("demand_price", as_float_array("demand_price", demand_price, ndim=None))
    dq = _to_2d("demand_qty", as_int_array("demand_qty", demand_qty, ndim=None, nonnegative=True))
    sp = _to_2d("supply_price", as_float_array("supply_price", supply_price, ndim=None))
    sq = _to_2d("supply_qty", as_int_array("supply_qty", supply_qty, ndim=None, nonnegative=True))
    r = max(dp.shape[0], dq.shape[0], sp.shape[0], sq.shape[0])
    shapes = {"demand_price": dp, "demand_qty": dq, "supply_price": sp, "supply_qty": sq}
    for name, arr in shapes.items():
        if arr.shape[0] not in (1, r):
            raise ValueError(f"{name} has {arr.shape[0]} replicates, expected 1 or {r}")
    if dp.shape[1] != dq.shape[1]:
        raise ValueError(
            f"demand_price and demand_qty must have the same number of buyers, got "
            f"{dp.shape[1]} and {dq.shape[1]}"
        )
    if sp.shape[1] != sq.shape[1]:
        raise ValueError(
            f"supply_price and supply_qty must have the same number of projects, got "
            f"{sp.shape[1]} and {sq.shape[1]}"
        )
    n, p = dp.shape[1], sp.shape[1]
    dp, dq = np.broadcast_to(dp, (r, n)), np.broadcast_to(dq, (r, n))
    sp, sq = np.broadcast_to(sp, (r, p)), np.broadcast_to(sq, (r, p))
    refs: list[float | None]
    if reference_price is None:
        refs = [None] * r
    else:
        ref = as_float_array("reference_price", reference_price, ndim=None, nonnegative=True)
        if ref.shape not in ((), (r,)):
            raise ValueError(f"reference_price must be a scalar or shape ({r},), got {ref.shape}")
        refs = [float(v) for v in np.broadcast_to(ref, (r,))]

    price = np.empty(r)
    volume = np.empty(r, dtype=np.int64)
    imbalance = np.empty(r)
    buyer_fill = np.empty((r, n), dtype=np.int64)
    project_fill = np.empty((r, p), dtype=np.int64)
    for k in range(r):
        res = call_auction(dp[k], dq[k], sp[k], sq[k], tick=tick, reference_price=refs[k])
        price[k] = res.price
        volume[k] = round(res.volume)
        imbalance[k] = res.imbalance
        buyer_fill[k] = _whole(res.bid_fill)
        project_fill[k] = _whole(res.ask_fill)
    return OffsetClearing(
        price=price,
        volume=volume,
        buyer_fill=buyer_fill,
        project_fill=project_fill,
        imbalance=imbalance,
    )
