"""The table of covered emission units, as arrays, and draws of their realized activity.

A :class:`UnitTable` holds one row per covered unit (rows ``0..N-1``; names in a pandas
``Index`` called ``unit``). Every field is a numpy array of length ``N`` (or ``(N, K)`` /
``(N, 3)`` for the step abatement curve and the co-pollutant factors); the table is frozen
and its arrays are read-only, so variants are made with :meth:`UnitTable.evolve`.

Activity and intensity come in three channels, each with its own unit:

============  ==================  ========================  ===============================
channel       activity field      intensity field           used by
============  ==================  ========================  ===============================
electricity   ``electricity_mwh`` ``intensity_electricity`` power (net supplied MWh, t/MWh)
heat          ``heat_gj``         ``intensity_heat``        power (CHP), heat (GJ, t/GJ)
product       ``product_t``       ``intensity_product``     steel, cement, aluminium (t, t/t)
============  ==================  ========================  ===============================

Sectors without a physical product in the data (the Beijing pilot's services, buildings,
transport, ... and ``"generic"``) carry their output in ``product_t`` in *emission
equivalents*: ``product_t`` equals baseline emissions and ``intensity_product`` is 1 t/t, so
output and intensity shocks still apply.

Sector and sub-type are ``int8`` codes into :data:`SECTORS` and :data:`SUBTYPES`. Power
units have one of the four power sub-types of the national ETS benchmark table
(docs/rules.md#benchmark-table); every other unit has sub-type ``"none"``.

Abatement is described per unit by a marginal abatement cost (MAC) curve of one of two
forms (:data:`MAC_FORMS`): ``"linear"`` (``MAC(q) = mac_slope * q`` up to
``mac_max_share`` of emissions) or ``"steps"`` (technologies with a cost in yuan/t and a
potential as a share of emissions, cheapest first). :mod:`carbonsim.market.abatement`
evaluates them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from carbonsim._random import SeedLike, as_generator, replicate_seeds
from carbonsim._validation import as_bool_array, as_float_array, as_int_array, describe

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "COAL_SUBTYPES",
    "CONVENTIONAL_COAL_SUBTYPES",
    "MAC_FORMS",
    "POLLUTANTS",
    "POWER_SUBTYPES",
    "SECTORS",
    "SUBTYPES",
    "ActivityDraw",
    "UnitTable",
    "check_mac",
    "draw_activity",
]

FloatArray = npt.NDArray[np.float64]

#: Sector names; ``UnitTable.sector`` holds codes into this tuple.
SECTORS: tuple[str, ...] = (
    "power",
    "steel",
    "cement",
    "aluminium",
    "heat",
    "petrochemical",
    "other_industry",
    "services",
    "buildings",
    "transport",
    "generic",
)
#: Sub-type names; ``UnitTable.subtype`` holds codes into this tuple. The four power
#: sub-types are the benchmark classes of docs/rules.md#benchmark-table.
SUBTYPES: tuple[str, ...] = (
    "none",
    "coal_gt300mw",
    "coal_le300mw",
    "coal_unconventional",
    "gas",
)
POWER_SUBTYPES: tuple[str, ...] = SUBTYPES[1:]
COAL_SUBTYPES: tuple[str, ...] = ("coal_gt300mw", "coal_le300mw", "coal_unconventional")
CONVENTIONAL_COAL_SUBTYPES: tuple[str, ...] = ("coal_gt300mw", "coal_le300mw")
#: MAC curve forms; ``UnitTable.mac_form`` holds codes into this tuple.
MAC_FORMS: tuple[str, ...] = ("linear", "steps")
#: Co-pollutants, in the column order of ``UnitTable.pollutant_factors`` (kg per t CO2).
POLLUTANTS: tuple[str, ...] = ("so2", "nox", "pm")

HOURS_PER_YEAR = 8760.0

_FLOAT_FIELDS_NONNEG = (
    "electricity_mwh",
    "heat_gj",
    "product_t",
    "intensity_electricity",
    "intensity_heat",
    "intensity_product",
    "sigma_output",
    "sigma_intensity",
    "capacity_mw",
)
_FIELD_UNITS: dict[str, str] = {
    "electricity_mwh": "MWh/yr",
    "heat_gj": "GJ/yr",
    "product_t": "t/yr",
    "intensity_electricity": "t/MWh",
    "intensity_heat": "t/GJ",
    "intensity_product": "t/t",
    "growth": "1/yr",
    "intensity_growth": "1/yr",
    "sigma_output": "1",
    "sigma_intensity": "1",
    "mac_slope": "yuan/t per t",
    "mac_max_share": "1",
    "mac_step_cost": "yuan/t",
    "mac_step_share": "1",
    "pollutant_factors": "kg/t",
    "capacity_mw": "MW",
    "load_factor": "1",
}


def _codes(field: str, value: npt.ArrayLike, categories: tuple[str, ...]) -> npt.NDArray[np.int8]:
    """Category labels or integer codes -> ``int8`` codes, naming the first unknown entry."""
    arr = np.asarray(value)
    if arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and arr.size == 0):
        codes = as_int_array(field, arr, lo=0, hi=len(categories) - 1)
        return codes.astype(np.int8)
    if arr.ndim != 1:
        raise ValueError(f"{field} must be 1-dimensional, got shape {arr.shape}")
    labels = arr.astype(object)
    codes = np.full(labels.shape, -1, np.int64)
    for k, category in enumerate(categories):  # a handful of categories: one pass each
        codes[labels == category] = k
    bad = codes < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{field}[{i}] = {describe(labels[i])} is not a known value; valid values are: "
            + ", ".join(repr(c) for c in categories)
        )
    return codes.astype(np.int8)


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


def check_mac(
    prefix: str,
    n: int,
    form: npt.ArrayLike,
    slope: npt.ArrayLike,
    max_share: npt.ArrayLike,
    step_cost: npt.ArrayLike,
    step_share: npt.ArrayLike,
) -> tuple[npt.NDArray[np.int8], FloatArray, FloatArray, FloatArray, FloatArray]:
    """Validate the five MAC arrays of ``n`` units; shared by UnitTable and MACCurves.

    Parameters
    ----------
    prefix : str
        Prefix of the argument names in error messages, e.g. ``"UnitTable."``.
    n : int
        Number of units ``N``.
    form, slope, max_share : array_like, shape (N,)
        MAC form (names of :data:`MAC_FORMS`), slope (> 0) and largest abatement share
        (in [0, 1]) of each unit.
    step_cost, step_share : array_like, shape (N, K)
        Step MAC costs (non-decreasing along the steps) and shares (>= 0, summing to at
        most 1 per unit); an empty 1-d array means no steps.

    Returns
    -------
    tuple of ndarray
        ``(form codes int8, slope, max_share, step_cost, step_share)``, validated.
    """
    form_c = _codes(f"{prefix}mac_form", form, MAC_FORMS)
    slope_a = as_float_array(f"{prefix}mac_slope", slope, positive=True)
    share_a = as_float_array(f"{prefix}mac_max_share", max_share, nonnegative=True)
    bad = share_a > 1.0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{prefix}mac_max_share must lie in [0, 1], got {prefix}mac_max_share[{i}] = "
            f"{float(share_a[i])!r}"
        )
    cost_a = np.asarray(step_cost)
    if cost_a.ndim == 1 and cost_a.size == 0:
        cost_a = np.zeros((n, 0))
    cost_a = as_float_array(f"{prefix}mac_step_cost", cost_a, ndim=2)
    sshare_a = np.asarray(step_share)
    if sshare_a.ndim == 1 and sshare_a.size == 0:
        sshare_a = np.zeros((n, 0))
    sshare_a = as_float_array(f"{prefix}mac_step_share", sshare_a, ndim=2, nonnegative=True)
    for name, arr in ((f"{prefix}mac_step_cost", cost_a), (f"{prefix}mac_step_share", sshare_a)):
        if arr.shape[0] != n:
            raise ValueError(f"{name} must have shape (N, K) with N = {n}, got {arr.shape}")
    if cost_a.shape != sshare_a.shape:
        raise ValueError(
            f"{prefix}mac_step_cost and {prefix}mac_step_share must have the same shape, got "
            f"{cost_a.shape} and {sshare_a.shape}"
        )
    if cost_a.shape[1] > 1:
        dec = np.diff(cost_a, axis=1) < 0
        if dec.any():
            i, k = (int(v) for v in np.argwhere(dec)[0])
            raise ValueError(
                f"{prefix}mac_step_cost must be non-decreasing along the steps (cheapest "
                f"first), got {prefix}mac_step_cost[{i}, {k}] = {float(cost_a[i, k])!r} > "
                f"{prefix}mac_step_cost[{i}, {k + 1}] = {float(cost_a[i, k + 1])!r}"
            )
    total = sshare_a.sum(axis=1)
    bad = total > 1.0 + 1e-12
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{prefix}mac_step_share must sum to at most 1 per unit, got a sum of "
            f"{float(total[i])!r} for unit {i}"
        )
    return form_c, slope_a, share_a, cost_a, sshare_a


@dataclass(frozen=True, eq=False, repr=False)
class UnitTable:
    """Covered emission units as arrays (rows ``0..N-1``), frozen and validated.

    Build one with :meth:`create` (defaults for everything but the sector),
    :meth:`from_frame`, or :func:`carbonsim.market.population.synthetic_population`. All
    arrays are read-only copies.

    Attributes
    ----------
    names : pandas.Index, shape (N,)
        Unique unit names; the index is named ``"unit"``.
    sector : ndarray of int8, shape (N,)
        Codes into :data:`SECTORS`.
    subtype : ndarray of int8, shape (N,)
        Codes into :data:`SUBTYPES`; a power sub-type for power units, ``"none"`` otherwise.
    electricity_mwh : ndarray of float64, shape (N,)
        Net electricity supplied in the reference year, MWh/yr.
    heat_gj : ndarray of float64, shape (N,)
        Heat supplied in the reference year, GJ/yr.
    product_t : ndarray of float64, shape (N,)
        Product output in the reference year, t/yr (emission equivalents for sectors
        without a physical product, see the module docstring).
    intensity_electricity : ndarray of float64, shape (N,)
        Emission intensity of electricity, t CO2/MWh.
    intensity_heat : ndarray of float64, shape (N,)
        Emission intensity of heat, t CO2/GJ.
    intensity_product : ndarray of float64, shape (N,)
        Emission intensity of product, t CO2/t.
    growth : ndarray of float64, shape (N,)
        Expected annual growth rate of output (all channels), 1/yr; ``> -1``.
    intensity_growth : ndarray of float64, shape (N,)
        Expected annual growth rate of emission intensity, 1/yr; ``> -1`` (negative for
        efficiency gains).
    sigma_output : ndarray of float64, shape (N,)
        Lognormal sigma of the yearly output shock (dimensionless, >= 0).
    sigma_intensity : ndarray of float64, shape (N,)
        Lognormal sigma of the yearly intensity shock (dimensionless, >= 0).
    mac_form : ndarray of int8, shape (N,)
        Codes into :data:`MAC_FORMS`: which MAC curve the unit uses.
    mac_slope : ndarray of float64, shape (N,)
        Slope of the linear MAC, yuan/t per t abated (> 0): ``MAC(q) = mac_slope * q``.
    mac_max_share : ndarray of float64, shape (N,)
        Linear form: the most that can be abated, as a share of emissions, in [0, 1].
    mac_step_cost : ndarray of float64, shape (N, K)
        Step form: cost of each technology, yuan/t, non-decreasing along ``K``.
    mac_step_share : ndarray of float64, shape (N, K)
        Step form: potential of each technology as a share of emissions; rows sum to <= 1.
        Zero-share columns pad units with fewer than ``K`` technologies.
    pollutant_factors : ndarray of float64, shape (N, 3)
        Co-pollutants emitted per tonne of CO2 (SO2, NOx, PM; :data:`POLLUTANTS`), kg/t.
    capacity_mw : ndarray of float64, shape (N,)
        Installed (net) capacity of power units, MW; 0 for other units.
    load_factor : ndarray of float64, shape (N,)
        Annual load factor of power units in the reference year, in [0, 1]; 0 for others.
    """

    names: pd.Index
    sector: npt.NDArray[np.int8]
    subtype: npt.NDArray[np.int8]
    electricity_mwh: FloatArray
    heat_gj: FloatArray
    product_t: FloatArray
    intensity_electricity: FloatArray
    intensity_heat: FloatArray
    intensity_product: FloatArray
    growth: FloatArray
    intensity_growth: FloatArray
    sigma_output: FloatArray
    sigma_intensity: FloatArray
    mac_form: npt.NDArray[np.int8]
    mac_slope: FloatArray
    mac_max_share: FloatArray
    mac_step_cost: FloatArray
    mac_step_share: FloatArray
    pollutant_factors: FloatArray
    capacity_mw: FloatArray
    load_factor: FloatArray

    def __post_init__(self) -> None:
        import pandas as pd

        p = "UnitTable."
        put = object.__setattr__
        sector = _codes(f"{p}sector", self.sector, SECTORS)
        n = sector.shape[0]
        subtype = _codes(f"{p}subtype", self.subtype, SUBTYPES)
        values: dict[str, np.ndarray] = {"sector": sector, "subtype": subtype}
        for name in _FLOAT_FIELDS_NONNEG:
            values[name] = as_float_array(f"{p}{name}", getattr(self, name), nonnegative=True)
        for name in ("growth", "intensity_growth"):
            arr = as_float_array(f"{p}{name}", getattr(self, name))
            bad = arr <= -1.0
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{p}{name} must be > -1, got {p}{name}[{i}] = {float(arr[i])!r}")
            values[name] = arr
        lf = as_float_array(f"{p}load_factor", self.load_factor, nonnegative=True)
        bad = lf > 1.0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{p}load_factor must lie in [0, 1], got {p}load_factor[{i}] = {float(lf[i])!r}"
            )
        values["load_factor"] = lf
        pf = as_float_array(f"{p}pollutant_factors", self.pollutant_factors, ndim=2)
        if pf.shape != (n, len(POLLUTANTS)):
            raise ValueError(
                f"{p}pollutant_factors must have shape (N, 3) = ({n}, 3) for "
                f"{', '.join(POLLUTANTS)}, got {pf.shape}"
            )
        bad = pf < 0
        if bad.any():
            i, k = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"{p}pollutant_factors must be >= 0, got {p}pollutant_factors[{i}, {k}] = "
                f"{float(pf[i, k])!r}"
            )
        values["pollutant_factors"] = pf
        (
            values["mac_form"],
            values["mac_slope"],
            values["mac_max_share"],
            values["mac_step_cost"],
            values["mac_step_share"],
        ) = check_mac(
            p,
            n,
            self.mac_form,
            self.mac_slope,
            self.mac_max_share,
            self.mac_step_cost,
            self.mac_step_share,
        )
        lengths = {k: v.shape[0] for k, v in values.items()}
        wrong = {k: m for k, m in lengths.items() if m != n}
        if wrong:
            listing = ", ".join(f"{p}{k} has {m}" for k, m in wrong.items())
            raise ValueError(
                f"all UnitTable fields must have N = {n} rows (from sector); {listing}"
            )
        # sub-type must match the sector
        power_code = SECTORS.index("power")
        is_power = sector == power_code
        bad = is_power & (subtype == 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{p}subtype[{i}] = 'none' is not valid for a 'power' unit; valid sub-types "
                "are: " + ", ".join(repr(s) for s in POWER_SUBTYPES)
            )
        bad = ~is_power & (subtype != 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{p}subtype[{i}] = {SUBTYPES[subtype[i]]!r} is a power sub-type but the unit's "
                f"sector is {SECTORS[sector[i]]!r}; non-power units have sub-type 'none'"
            )
        names = self.names
        if not isinstance(names, pd.Index):
            names = pd.Index(np.asarray(names))
        if len(names) != n:
            raise ValueError(f"{p}names must have N = {n} entries, got {len(names)}")
        if not names.is_unique:
            dup = names[names.duplicated()][0]
            raise ValueError(f"{p}names must be unique, got {dup!r} more than once")
        put(self, "names", names.rename("unit"))
        for name, arr in values.items():
            put(self, name, _frozen(arr))

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        sector: npt.ArrayLike,
        *,
        subtype: npt.ArrayLike | None = None,
        names: Sequence[Any] | pd.Index | None = None,
        electricity_mwh: npt.ArrayLike = 0.0,
        heat_gj: npt.ArrayLike = 0.0,
        product_t: npt.ArrayLike = 0.0,
        intensity_electricity: npt.ArrayLike = 0.0,
        intensity_heat: npt.ArrayLike = 0.0,
        intensity_product: npt.ArrayLike = 0.0,
        growth: npt.ArrayLike = 0.0,
        intensity_growth: npt.ArrayLike = 0.0,
        sigma_output: npt.ArrayLike = 0.0,
        sigma_intensity: npt.ArrayLike = 0.0,
        mac_form: npt.ArrayLike = "linear",
        mac_slope: npt.ArrayLike = 1.0,
        mac_max_share: npt.ArrayLike = 0.0,
        mac_step_cost: npt.ArrayLike | None = None,
        mac_step_share: npt.ArrayLike | None = None,
        pollutant_factors: npt.ArrayLike = 0.0,
        capacity_mw: npt.ArrayLike = 0.0,
        load_factor: npt.ArrayLike = 0.0,
    ) -> UnitTable:
        """Build a table from per-unit arrays, broadcasting scalars to all ``N`` units.

        ``sector`` (labels or codes) fixes ``N``. ``subtype`` defaults to ``"none"``
        (required for power units). ``names`` defaults to ``0..N-1``. Without step arrays
        the step curve has ``K = 0`` steps. ``pollutant_factors`` broadcasts to ``(N, 3)``.
        The defaults describe a unit with no activity, no shocks and no abatement potential.
        Field units are those of the class attributes.
        """
        import pandas as pd

        sec = _codes("UnitTable.sector", sector, SECTORS)
        n = sec.shape[0]

        def full(name: str, value: npt.ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
            arr = np.asarray(value)
            try:
                return np.broadcast_to(arr, shape)
            except ValueError:
                raise ValueError(
                    f"UnitTable.{name} must be a scalar or have shape {shape}, got {arr.shape}"
                ) from None

        sub = (
            np.zeros(n, dtype=np.int8)
            if subtype is None
            else _codes("UnitTable.subtype", subtype, SUBTYPES)
        )
        form = np.asarray(mac_form)
        form_c = (
            _codes("UnitTable.mac_form", np.full(n, form.item(), dtype=object), MAC_FORMS)
            if form.ndim == 0
            else _codes("UnitTable.mac_form", form, MAC_FORMS)
        )
        if mac_step_cost is None and mac_step_share is None:
            step_cost: npt.ArrayLike = np.zeros((n, 0))
            step_share: npt.ArrayLike = np.zeros((n, 0))
        elif mac_step_cost is None or mac_step_share is None:
            raise ValueError(
                "UnitTable.mac_step_cost and UnitTable.mac_step_share must be given together"
            )
        else:
            step_cost, step_share = mac_step_cost, mac_step_share
        return cls(
            names=pd.RangeIndex(n, name="unit") if names is None else pd.Index(names),
            sector=sec,
            subtype=sub,
            electricity_mwh=full("electricity_mwh", electricity_mwh, (n,)),
            heat_gj=full("heat_gj", heat_gj, (n,)),
            product_t=full("product_t", product_t, (n,)),
            intensity_electricity=full("intensity_electricity", intensity_electricity, (n,)),
            intensity_heat=full("intensity_heat", intensity_heat, (n,)),
            intensity_product=full("intensity_product", intensity_product, (n,)),
            growth=full("growth", growth, (n,)),
            intensity_growth=full("intensity_growth", intensity_growth, (n,)),
            sigma_output=full("sigma_output", sigma_output, (n,)),
            sigma_intensity=full("sigma_intensity", sigma_intensity, (n,)),
            mac_form=form_c,
            mac_slope=full("mac_slope", mac_slope, (n,)),
            mac_max_share=full("mac_max_share", mac_max_share, (n,)),
            mac_step_cost=np.asarray(step_cost),
            mac_step_share=np.asarray(step_share),
            pollutant_factors=full("pollutant_factors", pollutant_factors, (n, len(POLLUTANTS))),
            capacity_mw=full("capacity_mw", capacity_mw, (n,)),
            load_factor=full("load_factor", load_factor, (n,)),
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> UnitTable:
        """Build a table from a DataFrame laid out like :meth:`to_frame`.

        The index gives the names. ``sector`` is required; every other column is optional
        with the defaults of :meth:`create`. Step columns are ``mac_step_cost_0 ..
        mac_step_cost_{K-1}`` and ``mac_step_share_0 ..``; pollutant columns are
        ``so2_kg_per_t``, ``nox_kg_per_t``, ``pm_kg_per_t``. An unknown column raises
        ``ValueError`` listing the known ones (a typo would otherwise be ignored).
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        scalar_cols = [
            "sector",
            "subtype",
            "mac_form",
            *_FLOAT_FIELDS_NONNEG,
            "growth",
            "intensity_growth",
            "mac_slope",
            "mac_max_share",
            "load_factor",
        ]
        pollutant_cols = [f"{name}_kg_per_t" for name in POLLUTANTS]
        columns = [str(c) for c in df.columns]
        k = sum(c.startswith("mac_step_cost_") for c in columns)
        cost_cols = [f"mac_step_cost_{i}" for i in range(k)]
        share_cols = [f"mac_step_share_{i}" for i in range(k)]
        known = set(scalar_cols) | set(pollutant_cols) | set(cost_cols) | set(share_cols)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(
                f"unknown UnitTable column(s) {unknown}; known columns are: "
                + ", ".join(sorted(set(scalar_cols) | set(pollutant_cols)))
                + ", mac_step_cost_0..mac_step_cost_{K-1}, mac_step_share_0..mac_step_share_{K-1}"
            )
        missing = [c for c in ["sector", *cost_cols, *share_cols] if c not in columns]
        if missing:
            raise ValueError(f"df is missing column(s) {missing}")

        def column(name: str) -> np.ndarray:
            col = df[name]
            if col.dtype.kind in "iuf":
                return col.to_numpy()
            return np.asarray(col.astype(object), dtype=object)

        kwargs: dict[str, Any] = {
            c: column(c) for c in scalar_cols if c in columns and c != "sector"
        }
        if any(c in columns for c in pollutant_cols):
            kwargs["pollutant_factors"] = np.column_stack(
                [
                    column(c) if c in columns else np.zeros(len(df), dtype=np.float64)
                    for c in pollutant_cols
                ]
            )
        if k:
            kwargs["mac_step_cost"] = np.column_stack([column(c) for c in cost_cols])
            kwargs["mac_step_share"] = np.column_stack([column(c) for c in share_cols])
        return cls.create(column("sector"), names=df.index, **kwargs)

    # ------------------------------------------------------------------ views
    @property
    def n_units(self) -> int:
        """Number of units ``N``."""
        return int(self.sector.shape[0])

    @property
    def n_steps(self) -> int:
        """Number of step columns ``K`` of the step MAC curve."""
        return int(self.mac_step_cost.shape[1])

    def __len__(self) -> int:
        return self.n_units

    def __repr__(self) -> str:
        counts = np.bincount(self.sector, minlength=len(SECTORS))
        mix = ", ".join(f"{SECTORS[i]}={int(c)}" for i, c in enumerate(counts) if c)
        return f"UnitTable(n_units={self.n_units}, {mix or 'empty'})"

    def sector_labels(self) -> npt.NDArray[np.object_]:
        """Sector name of each unit, shape (N,)."""
        return np.asarray(SECTORS, dtype=object)[self.sector]

    def subtype_labels(self) -> npt.NDArray[np.object_]:
        """Sub-type name of each unit, shape (N,)."""
        return np.asarray(SUBTYPES, dtype=object)[self.subtype]

    def in_sector(self, *sectors: str) -> npt.NDArray[np.bool_]:
        """Boolean mask, shape (N,), of units in any of ``sectors`` (names of :data:`SECTORS`)."""
        return np.isin(self.sector, [_code_of("sector", s, SECTORS) for s in sectors])

    def of_subtype(self, *subtypes: str) -> npt.NDArray[np.bool_]:
        """Boolean mask, shape (N,), of units of any of ``subtypes`` (:data:`SUBTYPES`)."""
        return np.isin(self.subtype, [_code_of("subtype", s, SUBTYPES) for s in subtypes])

    def baseline_emissions(self) -> FloatArray:
        """Reference-year emissions, t/yr, shape (N,).

        ``electricity_mwh * intensity_electricity + heat_gj * intensity_heat +
        product_t * intensity_product``.
        """
        return (
            self.electricity_mwh * self.intensity_electricity
            + self.heat_gj * self.intensity_heat
            + self.product_t * self.intensity_product
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per unit, indexed by ``unit``; the inverse of :meth:`from_frame`.

        Sector, sub-type and MAC form are ``Categorical`` columns. ``df.attrs["units"]``
        maps each numeric column to its unit.
        """
        import pandas as pd

        data: dict[str, Any] = {
            "sector": pd.Categorical.from_codes(
                self.sector, dtype=pd.CategoricalDtype(list(SECTORS))
            ),
            "subtype": pd.Categorical.from_codes(
                self.subtype, dtype=pd.CategoricalDtype(list(SUBTYPES))
            ),
        }
        units: dict[str, str] = {}
        for name in (
            "electricity_mwh",
            "heat_gj",
            "product_t",
            "intensity_electricity",
            "intensity_heat",
            "intensity_product",
            "growth",
            "intensity_growth",
            "sigma_output",
            "sigma_intensity",
        ):
            data[name] = np.array(getattr(self, name))
            units[name] = _FIELD_UNITS[name]
        data["mac_form"] = pd.Categorical.from_codes(
            self.mac_form, dtype=pd.CategoricalDtype(list(MAC_FORMS))
        )
        for name in ("mac_slope", "mac_max_share"):
            data[name] = np.array(getattr(self, name))
            units[name] = _FIELD_UNITS[name]
        for k in range(self.n_steps):
            data[f"mac_step_cost_{k}"] = np.array(self.mac_step_cost[:, k])
            units[f"mac_step_cost_{k}"] = "yuan/t"
        for k in range(self.n_steps):
            data[f"mac_step_share_{k}"] = np.array(self.mac_step_share[:, k])
            units[f"mac_step_share_{k}"] = "1"
        for j, name in enumerate(POLLUTANTS):
            data[f"{name}_kg_per_t"] = np.array(self.pollutant_factors[:, j])
            units[f"{name}_kg_per_t"] = "kg/t"
        for name in ("capacity_mw", "load_factor"):
            data[name] = np.array(getattr(self, name))
            units[name] = _FIELD_UNITS[name]
        df = pd.DataFrame(data, index=self.names.copy())
        df.index.name = "unit"
        df.attrs["units"] = units
        return df

    # ------------------------------------------------------------------ variants
    def subset(self, mask: npt.ArrayLike) -> UnitTable:
        """A table of the selected rows, in order.

        Parameters
        ----------
        mask : array_like of bool, shape (N,), or of int, shape (M,)
            Boolean mask or integer row positions.
        """
        arr = np.asarray(mask)
        if arr.dtype.kind == "b":
            idx = np.flatnonzero(as_bool_array("mask", arr))
            if arr.shape[0] != self.n_units:
                raise ValueError(f"mask must have N = {self.n_units} entries, got {arr.shape[0]}")
        else:
            idx = as_int_array("mask", arr, lo=-self.n_units, hi=self.n_units - 1)
        changes: dict[str, Any] = {"names": self.names[idx]}
        for f in dataclasses.fields(self):
            if f.name != "names":
                changes[f.name] = getattr(self, f.name)[idx]
        return UnitTable(**changes)

    def evolve(self, **changes: Any) -> UnitTable:
        """A validated copy with some fields replaced (``sector``/``subtype`` may be labels)."""
        valid = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(valid))
        if unknown:
            raise TypeError(
                f"unknown UnitTable field(s) {unknown}; valid fields are: {', '.join(valid)}"
            )
        return dataclasses.replace(self, **changes)


def _code_of(field: str, name: str, categories: tuple[str, ...]) -> int:
    try:
        return categories.index(name)
    except ValueError:
        raise ValueError(
            f"unknown {field} {name!r}; valid values are: " + ", ".join(repr(c) for c in categories)
        ) from None


# ---------------------------------------------------------------------- activity draws
@dataclass(frozen=True, eq=False)
class ActivityDraw:
    """Realized activity and intensity of every unit, replicate and year.

    Only the two multiplicative factors are stored; the activity and intensity arrays are
    computed on access as ``reference value * factor``, so a draw for ``R`` replicates,
    ``Y`` years and ``N`` units holds two ``(R, Y, N)`` arrays.

    Attributes
    ----------
    units : UnitTable
        The table the draw was made from.
    offsets : ndarray of int64, shape (Y,)
        Years after the table's reference year (0 is the reference year itself).
    output_factor : ndarray of float64, shape (R, Y, N)
        Realized output over reference output (growth times shock), applied to all three
        activity channels of a unit.
    intensity_factor : ndarray of float64, shape (R, Y, N)
        Realized intensity over reference intensity, applied to all three channels.
    """

    units: UnitTable
    offsets: npt.NDArray[np.int64]
    output_factor: FloatArray
    intensity_factor: FloatArray

    @property
    def electricity_mwh(self) -> FloatArray:
        """Realized net electricity supplied, MWh/yr, shape (R, Y, N)."""
        return self.output_factor * self.units.electricity_mwh

    @property
    def heat_gj(self) -> FloatArray:
        """Realized heat supplied, GJ/yr, shape (R, Y, N)."""
        return self.output_factor * self.units.heat_gj

    @property
    def product_t(self) -> FloatArray:
        """Realized product output, t/yr, shape (R, Y, N)."""
        return self.output_factor * self.units.product_t

    @property
    def intensity_electricity(self) -> FloatArray:
        """Realized intensity of electricity, t/MWh, shape (R, Y, N)."""
        return self.intensity_factor * self.units.intensity_electricity

    @property
    def intensity_heat(self) -> FloatArray:
        """Realized intensity of heat, t/GJ, shape (R, Y, N)."""
        return self.intensity_factor * self.units.intensity_heat

    @property
    def intensity_product(self) -> FloatArray:
        """Realized intensity of product, t/t, shape (R, Y, N)."""
        return self.intensity_factor * self.units.intensity_product

    def emissions(self) -> FloatArray:
        """Realized (unabated) emissions, t/yr, shape (R, Y, N).

        Equal to ``output_factor * intensity_factor * units.baseline_emissions()``.
        """
        return self.output_factor * self.intensity_factor * self.units.baseline_emissions()


def draw_activity(
    units: UnitTable,
    *,
    years: int | Sequence[int] | npt.ArrayLike,
    rng: SeedLike = None,
    replicates: int = 1,
) -> ActivityDraw:
    """Draw realized output and intensity with trend growth and lognormal shocks.

    For unit ``i``, replicate ``r`` and year offset ``t``::

        output_factor[r, t, i]    = (1 + growth[i]) ** t
                                    * exp(sigma_output[i] * z1 - sigma_output[i] ** 2 / 2)
        intensity_factor[r, t, i] = (1 + intensity_growth[i]) ** t
                                    * exp(sigma_intensity[i] * z2 - sigma_intensity[i] ** 2 / 2)

    with ``z1, z2`` independent standard normals, independent across years (no
    persistence). The ``- sigma**2 / 2`` term makes each shock mean-one, so the expected
    output is the trend.

    Parameters
    ----------
    units : UnitTable
        The ``N`` units.
    years : int or sequence of int
        Either the number of years ``Y`` (offsets ``0..Y-1`` after the table's reference
        year) or the offsets themselves (non-negative integers), shape (Y,).
    rng : int, SeedSequence, Generator or None
        Randomness. With an int, ``SeedSequence`` or ``None`` each replicate gets its own
        child stream from :func:`carbonsim._random.replicate_seeds`, so replicate ``k`` is
        the same whatever ``replicates`` is. A ``Generator`` is used as one stream for the
        whole batch (reproducible for a given batch size only).
    replicates : int
        Number of replicates ``R`` (>= 1).

    Returns
    -------
    ActivityDraw
        With ``output_factor`` and ``intensity_factor`` of shape (R, Y, N).

    Examples
    --------
    >>> u = UnitTable.create(["steel"], product_t=[1e6], intensity_product=[1.8],
    ...                      growth=[0.1])
    >>> d = draw_activity(u, years=3, rng=0)
    >>> d.product_t.shape
    (1, 3, 1)
    >>> [round(float(v)) for v in d.emissions()[0, :, 0]]
    [1800000, 1980000, 2178000]
    """
    if not isinstance(units, UnitTable):
        raise TypeError(f"units must be a UnitTable, got {type(units).__name__}")
    if isinstance(years, (int, np.integer)) and not isinstance(years, bool):
        if years < 1:
            raise ValueError(f"years must be >= 1 when given as a count, got {years}")
        offsets = np.arange(int(years), dtype=np.int64)
    else:
        offsets = as_int_array("years", years, nonnegative=True)
        if offsets.size == 0:
            raise ValueError("years must name at least one year offset, got an empty sequence")
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)):
        raise TypeError(f"replicates must be an int, got {replicates!r}")
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    n_years, n = offsets.shape[0], units.n_units
    if isinstance(rng, np.random.Generator):
        z = rng.standard_normal((replicates, 2, n_years, n))
    else:
        z = np.empty((replicates, 2, n_years, n))
        for r, seq in enumerate(replicate_seeds(rng, int(replicates))):
            z[r] = as_generator(seq).standard_normal((2, n_years, n))
    t = offsets.astype(np.float64)[:, None]
    trend_out = (1.0 + units.growth) ** t  # (Y, N)
    trend_int = (1.0 + units.intensity_growth) ** t
    so, si = units.sigma_output, units.sigma_intensity
    output_factor = trend_out * np.exp(so * z[:, 0] - 0.5 * so**2)
    intensity_factor = trend_int * np.exp(si * z[:, 1] - 0.5 * si**2)
    return ActivityDraw(
        units=units,
        offsets=offsets,
        output_factor=output_factor,
        intensity_factor=intensity_factor,
    )
