"""Offset methodologies and projects: the registry, the project table, synthetic projects.

Offset projects are rows ``0..P-1`` of an :class:`OffsetProjects` table; each names a
registered :class:`Methodology` (:data:`methodologies`), whose numeric defaults are
illustrative (conf. C): replace them with ``methodologies.register(code, replace=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from carbonsim.market.offsets.conventions import DateLike, as_date, as_date_array

__all__ = [
    "Methodology",
    "OffsetProjects",
    "methodologies",
    "methodology_table",
    "synthetic_projects",
]

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
    "docs/rules.md#ccer-methodologies: first methodologies of the 22 Jan 2024 relaunch; "
    "numeric defaults illustrative (conf. C)"
)
_INCLUSIVE_SRC = (
    "seeds 003/004 (Beijing carbon-inclusive projects); docs/rules.md#ccer-methodologies: "
    "Beijing carbon-inclusive credits allowed; numeric defaults illustrative (conf. C)"
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
            "docs/rules.md#ccer-legacy-stock: legacy credits were used; about 32.7 Mt "
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


def readonly(arr: np.ndarray) -> np.ndarray:
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
        ineligible, docs/rules.md#ccer-eligibility).
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
            "registration": as_date_array(pre + "registration", registration),
            "crediting_start": as_date_array(pre + "crediting_start", crediting_start),
            "crediting_end": as_date_array(pre + "crediting_end", crediting_end),
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
            object.__setattr__(self, key, readonly(arr))

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
    lo = as_date("registration_window[0]", registration_window[0])
    hi = as_date("registration_window[1]", registration_window[1])
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
