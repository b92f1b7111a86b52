"""Allocation rules as plug-ins: free benchmark, industry intensity, grandfathering, caps.

The protocol
------------
An allocation rule is any callable ``rule(inputs) -> allowances`` that takes one
:class:`AllocationInputs` (the compliance year, the :class:`~carbonsim.market.units.
UnitTable`, realized activity and verified emissions with any leading axes ``(..., N)``,
and a ``parameters`` mapping) and returns the final allocation of every unit as float64
tonnes of shape ``(..., N)``: non-negative, finite and **whole tonnes** (the ledger holds
integer tonnes). Rules round once, at the end, with :func:`whole_tonnes` (``np.rint``,
round half to even), except the cap rule, which splits a whole-tonne total by largest
remainder so the parts sum to it exactly. Rules give 0 to units outside their scope (e.g.
the power rule to a cement plant), so rules for different sectors add up; the
``"by_sector"`` rule does this from a mapping. Parameters a rule does not know are ignored,
so one mapping can serve several rules; each rule documents its keys.

Rules are registered by name in :data:`ALLOCATION_RULES` (a
:class:`carbonsim._registry.Registry`); :func:`allocate` looks a rule up, runs it and
checks its output with :func:`check_allocation`. A new rule registers itself with
``@ALLOCATION_RULES.register("name")``.

Registered rules: ``"china_power_benchmark"``, ``"industry_intensity"``,
``"grandfathering"``, ``"absolute_cap"``, ``"by_sector"``.

Around the rules: :func:`pre_allocation` and :func:`true_up` (ex-ante share and ex-post
adjustment), :func:`cap_schedule` (EU linear reduction factor), :func:`f_load`
(peak-shaving correction) and :func:`auction_allocation` (paid allocation through
:func:`carbonsim.clearing.sealed_bid.sealed_bid_auction`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from carbonsim._registry import Registry
from carbonsim._validation import as_float_array, check_in_range, check_share, describe
from carbonsim.market.benchmarks_table import (
    EU_LINEAR_REDUCTION_FACTORS,
    F_LOAD_DEFAULTS,
    INDUSTRY_ALPHA_DEFAULTS,
    power_benchmarks,
    pre_allocation_share,
)
from carbonsim.market.units import (
    CONVENTIONAL_COAL_SUBTYPES,
    SECTORS,
    SUBTYPES,
    ActivityDraw,
    UnitTable,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "ALLOCATION_RULES",
    "INDUSTRY_SECTORS",
    "AllocationInputs",
    "AllocationRule",
    "absolute_cap",
    "allocate",
    "by_sector",
    "cap_schedule",
    "check_allocation",
    "china_power_benchmark",
    "f_load",
    "grandfathering",
    "industry_alpha",
    "industry_intensity",
    "pre_allocation",
    "true_up",
    "whole_tonnes",
]

FloatArray = npt.NDArray[np.float64]

#: Sectors of the 2025-26 industry intensity rule (docs/rules.md#industry-intensity).
INDUSTRY_SECTORS: tuple[str, ...] = ("steel", "cement", "aluminium")


# ---------------------------------------------------------------------- inputs, protocol
@dataclass(frozen=True, eq=False)
class AllocationInputs:
    """Everything an allocation rule may use, for one compliance year.

    Attributes
    ----------
    year : int
        Compliance year (selects formulas and tabulated values).
    units : UnitTable
        The ``N`` units.
    electricity_mwh : ndarray of float64, shape (..., N)
        Realized net electricity supplied, MWh.
    heat_gj : ndarray of float64, shape (..., N)
        Realized heat supplied, GJ.
    product_t : ndarray of float64, shape (..., N)
        Realized product output, t.
    verified_emissions : ndarray of float64, shape (..., N)
        Verified emissions of the year, t.
    load_factor : ndarray of float64, shape (..., N), optional
        Realized load factor of power units in [0, 1]. When omitted,
        :meth:`realized_load_factor` scales the table's ``load_factor`` by realized over
        reference electricity.
    parameters : mapping of str to object
        Rule parameters (each rule documents its keys; unknown keys are ignored).

    The four activity arrays are broadcast to one common shape ``(..., N)`` (read-only).
    """

    year: int
    units: UnitTable
    electricity_mwh: FloatArray
    heat_gj: FloatArray
    product_t: FloatArray
    verified_emissions: FloatArray
    load_factor: FloatArray | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.year, bool) or not isinstance(self.year, (int, np.integer)):
            raise TypeError(f"AllocationInputs.year must be an int, got {self.year!r}")
        if not isinstance(self.units, UnitTable):
            raise TypeError(
                f"AllocationInputs.units must be a UnitTable, got {type(self.units).__name__}"
            )
        if not isinstance(self.parameters, Mapping):
            raise TypeError(
                f"AllocationInputs.parameters must be a mapping, got {describe(self.parameters)}"
            )
        n = self.units.n_units
        names = ["electricity_mwh", "heat_gj", "product_t", "verified_emissions"]
        arrays = {
            k: as_float_array(
                f"AllocationInputs.{k}", getattr(self, k), ndim=None, nonnegative=True
            )
            for k in names
        }
        if self.load_factor is not None:
            lf = as_float_array(
                "AllocationInputs.load_factor", self.load_factor, ndim=None, nonnegative=True
            )
            if (lf > 1.0).any():
                raise ValueError(
                    f"AllocationInputs.load_factor must lie in [0, 1], got max {lf.max()!r}"
                )
            arrays["load_factor"] = lf
        for k, arr in arrays.items():
            if arr.ndim == 0 or arr.shape[-1] != n:
                raise ValueError(
                    f"AllocationInputs.{k} must have shape (..., N) with N = {n}, got {arr.shape}"
                )
        try:
            shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        except ValueError:
            listing = ", ".join(f"{k}{a.shape}" for k, a in arrays.items())
            raise ValueError(f"AllocationInputs arrays do not broadcast: {listing}") from None
        put = object.__setattr__
        put(self, "year", int(self.year))
        put(self, "parameters", MappingProxyType(dict(self.parameters)))
        for k, arr in arrays.items():
            out = np.broadcast_to(arr, shape)
            put(self, k, out)

    @property
    def shape(self) -> tuple[int, ...]:
        """Common shape ``(..., N)`` of the activity arrays."""
        return tuple(self.verified_emissions.shape)

    @classmethod
    def from_units(
        cls,
        units: UnitTable,
        year: int,
        *,
        verified_emissions: npt.ArrayLike | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> AllocationInputs:
        """Inputs at the table's reference activity (shape (N,)).

        ``verified_emissions`` defaults to :meth:`UnitTable.baseline_emissions`.
        """
        return cls(
            year=year,
            units=units,
            electricity_mwh=units.electricity_mwh,
            heat_gj=units.heat_gj,
            product_t=units.product_t,
            verified_emissions=(
                units.baseline_emissions()
                if verified_emissions is None
                else np.asarray(verified_emissions, dtype=np.float64)
            ),
            load_factor=units.load_factor,
            parameters=dict(parameters or {}),
        )

    @classmethod
    def from_draw(
        cls,
        draw: ActivityDraw,
        year: int,
        *,
        index: int,
        verified_emissions: npt.ArrayLike | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> AllocationInputs:
        """Inputs for year ``index`` of an :class:`ActivityDraw` (shape (R, N)).

        ``verified_emissions`` defaults to the draw's (unabated) emissions of that year;
        pass emissions net of abatement where the model abates.
        """
        if not -len(draw.offsets) <= index < len(draw.offsets):
            raise ValueError(
                f"index must select one of the draw's {len(draw.offsets)} years, got {index}"
            )
        out_f = draw.output_factor[:, index]
        units = draw.units
        verified = (
            out_f * draw.intensity_factor[:, index] * units.baseline_emissions()
            if verified_emissions is None
            else np.asarray(verified_emissions, dtype=np.float64)
        )
        return cls(
            year=year,
            units=units,
            electricity_mwh=out_f * units.electricity_mwh,
            heat_gj=out_f * units.heat_gj,
            product_t=out_f * units.product_t,
            verified_emissions=verified,
            load_factor=None,
            parameters=dict(parameters or {}),
        )

    def realized_load_factor(self) -> FloatArray:
        """Realized load factor, shape (..., N), in [0, 1].

        ``load_factor`` if given, else ``units.load_factor * electricity_mwh /
        units.electricity_mwh`` (the reference load factor where the reference electricity
        is 0), clipped to [0, 1].
        """
        if self.load_factor is not None:
            return self.load_factor
        ref = self.units.electricity_mwh
        with np.errstate(over="ignore"):
            ratio = np.divide(self.electricity_mwh, ref, out=np.ones(self.shape), where=ref > 0)
        return np.clip(self.units.load_factor * ratio, 0.0, 1.0)

    def with_parameters(self, **parameters: Any) -> AllocationInputs:
        """A copy with some parameters added or replaced."""
        merged = {**self.parameters, **parameters}
        return AllocationInputs(
            year=self.year,
            units=self.units,
            electricity_mwh=self.electricity_mwh,
            heat_gj=self.heat_gj,
            product_t=self.product_t,
            verified_emissions=self.verified_emissions,
            load_factor=self.load_factor,
            parameters=merged,
        )


class AllocationRule(Protocol):
    """An allocation rule: ``rule(inputs) -> allowances`` (see the module docstring).

    Returns float64 whole tonnes, shape ``inputs.shape`` (``(..., N)``), >= 0.
    """

    def __call__(self, inputs: AllocationInputs, /) -> FloatArray: ...


#: Allocation rules by name.
ALLOCATION_RULES: Registry[AllocationRule] = Registry("allocation rule")


def whole_tonnes(allowances: npt.ArrayLike) -> FloatArray:
    """Round allowances to whole tonnes with ``np.rint`` (half to even), as float64."""
    return np.rint(np.asarray(allowances, dtype=np.float64)) + 0.0


def check_allocation(
    allowances: npt.ArrayLike, inputs: AllocationInputs, *, rule: str = "rule"
) -> FloatArray:
    """Check a rule's output against the protocol and return it as float64.

    Raises ``ValueError`` naming ``rule`` if the shape is not ``inputs.shape`` or a value is
    negative, non-finite or not a whole number of tonnes; ``TypeError`` for non-numbers.
    Third-party rules can use it in their own tests.
    """
    arr = as_float_array(f"{rule} allocation", allowances, ndim=None, nonnegative=True)
    if arr.shape != inputs.shape:
        raise ValueError(
            f"{rule} must return shape {inputs.shape} (the inputs' (..., N)), got {arr.shape}"
        )
    frac = arr != np.rint(arr)
    if frac.any():
        i = np.unravel_index(int(np.flatnonzero(frac.ravel())[0]), arr.shape)
        raise ValueError(
            f"{rule} must return whole tonnes, got {float(arr[i])!r} at index {tuple(map(int, i))}"
        )
    return arr


def allocate(rule: str | AllocationRule, inputs: AllocationInputs) -> FloatArray:
    """Run an allocation rule (a registered name or a callable) and check its output.

    Parameters
    ----------
    rule : str or AllocationRule
        A name in :data:`ALLOCATION_RULES` (an unknown name lists the valid ones) or a
        callable following the protocol.
    inputs : AllocationInputs
        The year's inputs.

    Returns
    -------
    ndarray of float64, shape (..., N)
        Allowances, whole tonnes.
    """
    if isinstance(rule, str):
        name, fn = rule, ALLOCATION_RULES.get(rule)
    elif callable(rule):
        name, fn = getattr(rule, "__name__", "rule"), rule
    else:
        raise TypeError(f"rule must be a rule name or a callable, got {describe(rule)}")
    if not isinstance(inputs, AllocationInputs):
        raise TypeError(f"inputs must be AllocationInputs, got {type(inputs).__name__}")
    return check_allocation(fn(inputs), inputs, rule=repr(name))


# ---------------------------------------------------------------------- parameter helpers
def _param_array(
    inputs: AllocationInputs, key: str, default: npt.ArrayLike, *, positive: bool = False
) -> FloatArray:
    """A scalar or (..., N) parameter broadcast against the inputs' shape."""
    value = inputs.parameters.get(key, default)
    arr = as_float_array(
        f"parameters[{key!r}]", value, ndim=None, nonnegative=not positive, positive=positive
    )
    try:
        return np.broadcast_to(arr, inputs.shape)
    except ValueError:
        raise ValueError(
            f"parameters[{key!r}] must be a scalar or broadcast to {inputs.shape}, got shape "
            f"{arr.shape}"
        ) from None


def _param_float(
    inputs: AllocationInputs,
    key: str,
    default: float,
    lo: float | None = None,
    hi: float | None = None,
) -> float:
    return check_in_range(f"parameters[{key!r}]", inputs.parameters.get(key, default), lo, hi)


def _sector_mask(units: UnitTable, sectors: Iterable[str], key: str) -> npt.NDArray[np.bool_]:
    names = [sectors] if isinstance(sectors, str) else list(sectors)
    unknown = [s for s in names if s not in SECTORS]
    if unknown:
        raise ValueError(
            f"parameters[{key!r}] names unknown sector(s) {unknown}; valid sectors are: "
            + ", ".join(SECTORS)
        )
    return units.in_sector(*names)


# ---------------------------------------------------------------------- China power
def f_load(
    load_factor: npt.ArrayLike,
    *,
    threshold: float = F_LOAD_DEFAULTS["threshold"],
    slope: float = F_LOAD_DEFAULTS["slope"],
    cap: float = F_LOAD_DEFAULTS["cap"],
) -> FloatArray:
    """Peak-shaving correction of conventional coal units, dimensionless, shape of input.

    ``F_load = min(1 + slope * max(0, threshold - load_factor), cap)``: 1 at or above
    ``threshold``, a few percent more allowances at low load (docs/rules.md#f-load; the
    curve is a conf. C parameter, defaults in
    :data:`carbonsim.market.benchmarks_table.F_LOAD_DEFAULTS`).

    Examples
    --------
    >>> f_load([0.8, 0.5, 0.0]).round(4).tolist()
    [1.0, 1.018, 1.05]
    """
    lf = as_float_array("load_factor", load_factor, ndim=None, nonnegative=True)
    thr = check_share("threshold", threshold)
    k = check_in_range("slope", slope, 0.0)
    c = check_in_range("cap", cap, 1.0)
    return np.minimum(1.0 + k * np.maximum(0.0, thr - lf), c)


def _benchmarks_by_unit(
    inputs: AllocationInputs,
) -> tuple[FloatArray, FloatArray]:
    year = inputs.parameters.get("benchmark_year", inputs.year)
    overrides = inputs.parameters.get("benchmarks")
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"parameters['benchmarks'] must be a mapping, got {describe(overrides)}")
    table = power_benchmarks(int(year), overrides)
    scale = _param_float(inputs, "benchmark_scale", 1.0, 0.0)
    by_code = np.zeros(len(SUBTYPES))
    for code, name in enumerate(SUBTYPES):
        if name != "none":
            by_code[code] = table[name]
    units = inputs.units
    b_e = by_code[units.subtype]
    gas = units.subtype == SUBTYPES.index("gas")
    b_h = np.where(gas, table["heat_gas"], table["heat_coal"])
    power = units.in_sector("power")
    return scale * np.where(power, b_e, 0.0), scale * np.where(power, b_h, 0.0)


@ALLOCATION_RULES.register("china_power_benchmark")
def china_power_benchmark(inputs: AllocationInputs) -> FloatArray:
    """China national ETS free allocation to power units by benchmark.

    Source: docs/rules.md#power-benchmark:

    - 2019-2022: ``A = B_e * Q_supplied_MWh * F_correction + B_h * Q_heat_GJ``
    - 2023 on: coal ``A = Q_e * B_e * F_load + Q_h * B_h``; gas ``A = Q_e * B_e + Q_h * B_h``

    with the benchmarks of the year and sub-type from the benchmark table
    (:mod:`carbonsim.market.benchmarks_table`; 2021-22 repeat the 2019-20 values, conf. C).
    Coal units use the coal heat benchmark, gas units the gas one. ``F_load``
    (:func:`f_load`) applies to conventional coal (both size classes) only; unconventional
    coal and gas get 1. Non-power units get 0. Rounded with :func:`whole_tonnes`.

    Parameters
    ----------
    inputs : AllocationInputs
        Uses ``year``, ``units`` (sector, sub-type), ``electricity_mwh``, ``heat_gj`` and
        :meth:`~AllocationInputs.realized_load_factor`. Parameters:

        - ``"f_correction"``: 2019-2022 correction factor, scalar or (..., N), > 0;
          default 1.0 (conf. C).
        - ``"f_load_threshold"``, ``"f_load_slope"``, ``"f_load_cap"``: the :func:`f_load`
          curve (defaults conf. C, :data:`~carbonsim.market.benchmarks_table.F_LOAD_DEFAULTS`).
        - ``"benchmark_year"``: table column to use (default ``year``; the formula still
          follows ``year``).
        - ``"benchmarks"``: mapping of benchmark keys to values (t/MWh, t/GJ) overriding
          the table (e.g. the published 2021-22 values, or a scenario's tightening).
        - ``"benchmark_scale"``: multiplies every benchmark (default 1.0).

    Returns
    -------
    ndarray of float64, shape (..., N)
        Allowances, whole tonnes.

    Examples
    --------
    A 600 MW coal unit supplying 3,300,000 MWh and 1,000,000 GJ in 2023 at normal load:
    3,300,000 x 0.7950 + 1,000,000 x 0.1038 = 2,623,500 + 103,800 = 2,727,300 t.

    >>> u = UnitTable.create(["power"], subtype=["coal_gt300mw"], electricity_mwh=[3.3e6],
    ...     heat_gj=[1e6], intensity_electricity=[0.8], intensity_heat=[0.1],
    ...     capacity_mw=[600.0], load_factor=[0.66])
    >>> china_power_benchmark(AllocationInputs.from_units(u, 2023)).tolist()
    [2727300.0]
    """
    if inputs.year < 2019:
        raise ValueError(
            f"china_power_benchmark covers compliance years from 2019, got year {inputs.year}"
        )
    b_e, b_h = _benchmarks_by_unit(inputs)
    units = inputs.units
    q_e, q_h = inputs.electricity_mwh, inputs.heat_gj
    if inputs.year <= 2022:
        f_corr = _param_array(inputs, "f_correction", 1.0, positive=True)
        a = b_e * q_e * f_corr + b_h * q_h
    else:
        f = f_load(
            inputs.realized_load_factor(),
            threshold=_param_float(inputs, "f_load_threshold", F_LOAD_DEFAULTS["threshold"]),
            slope=_param_float(inputs, "f_load_slope", F_LOAD_DEFAULTS["slope"]),
            cap=_param_float(inputs, "f_load_cap", F_LOAD_DEFAULTS["cap"]),
        )
        conventional = units.of_subtype(*CONVENTIONAL_COAL_SUBTYPES)
        a = q_e * b_e * np.where(conventional, f, 1.0) + q_h * b_h
    return whole_tonnes(a)


# ---------------------------------------------------------------------- industry
def industry_alpha(
    deviation: npt.ArrayLike,
    *,
    slope: float = INDUSTRY_ALPHA_DEFAULTS["slope"],
    cap: float = INDUSTRY_ALPHA_DEFAULTS["cap"],
) -> FloatArray:
    """Allocation adjustment ``alpha`` from the intensity deviation ``X``, dimensionless.

    ``X = intensity / balance_value - 1``: negative for a unit cleaner than the sector
    balance value. ``alpha = -slope * X`` within ``|X| < cap / slope`` (20% with the
    defaults) and ``-/+cap`` beyond, i.e. ``clip(-slope * X, -cap, cap)``, continuous at
    the boundary because 0.15 x 0.2 = 0.03.

    Sign. The rule table (docs/rules.md#industry-intensity) writes ``alpha = 0.15 X`` with
    ``X`` "the deviation of the unit's intensity from the sector balance value" without
    fixing the direction. We read it so that a unit cleaner than the balance value gets
    *more* allowances, which is the incentive of intensity-based allocation: a benchmark
    rule gives ``B * Q = E * B / I``, about ``E * (1 - X)`` for small ``X``, and this rule
    is that incentive damped to 15%.

    Examples
    --------
    >>> industry_alpha([-0.10, 0.25, 0.20, -0.30]).round(6).tolist()
    [0.015, -0.03, -0.03, 0.03]
    """
    x = as_float_array("deviation", deviation, ndim=None)
    k = check_in_range("slope", slope, 0.0)
    c = check_in_range("cap", cap, 0.0)
    return np.clip(-k * x, -c, c)


@ALLOCATION_RULES.register("industry_intensity")
def industry_intensity(inputs: AllocationInputs) -> FloatArray:
    """Steel, cement and aluminium allocation, 2025-26: ``A = E_verified * (1 + alpha)``.

    Source: docs/rules.md#industry-intensity: ``alpha = 0.15 X`` for ``|X| < 20%`` and
    +/-0.03 beyond, so the allocation stays within +/-3% of verified emissions. ``alpha`` is
    :func:`industry_alpha` (a unit cleaner than the balance value gets more; see there).

    The unit's intensity is ``verified_emissions / product_t`` (t/t). The sector balance
    value defaults to the sector's own average, ``sum(E) / sum(product)`` over its units
    (per leading index, i.e. per replicate), the intensity at which the sector's allocation
    balances its emissions. A unit with no output but positive emissions counts as
    infinitely intensive (``alpha = -cap``); units outside ``sectors`` get 0.

    Parameters
    ----------
    inputs : AllocationInputs
        Uses ``units.sector``, ``product_t`` and ``verified_emissions``. Parameters:

        - ``"sectors"``: sectors the rule covers (default steel, cement, aluminium).
        - ``"balance_intensity"``: mapping of sector to balance value (t/t, > 0),
          replacing the sector average.
        - ``"alpha_slope"`` (default 0.15) and ``"alpha_cap"`` (default 0.03).

    Returns
    -------
    ndarray of float64, shape (..., N)
        Allowances, whole tonnes.
    """
    units = inputs.units
    sectors = inputs.parameters.get("sectors", INDUSTRY_SECTORS)
    scope = _sector_mask(units, sectors, "sectors")
    balance_over = inputs.parameters.get("balance_intensity", {})
    if not isinstance(balance_over, Mapping):
        raise TypeError(
            f"parameters['balance_intensity'] must be a mapping of sector to t/t, got "
            f"{describe(balance_over)}"
        )
    e, q = inputs.verified_emissions, inputs.product_t
    # balance value as a fraction bal_num / bal_den (t / t), per unit and leading index
    bal_num, bal_den = np.ones(inputs.shape), np.ones(inputs.shape)
    for s in sorted({str(SECTORS[c]) for c in np.unique(units.sector[scope])}):
        in_s = units.in_sector(s)
        if s in balance_over:
            value = check_in_range(f"parameters['balance_intensity'][{s!r}]", balance_over[s], 0.0)
            if value <= 0:
                raise ValueError(
                    f"parameters['balance_intensity'][{s!r}] must be > 0, got {value!r}"
                )
            num, den = np.full(inputs.shape[:-1], value), np.ones(inputs.shape[:-1])
        else:
            num = np.sum(e, axis=-1, where=in_s)
            den = np.sum(q, axis=-1, where=in_s)
        bal_num = np.where(in_s, num[..., None], bal_num)
        bal_den = np.where(in_s, den[..., None], bal_den)
    # X = (e / q) / balance - 1. A unit with output 0 but emissions > 0 is "infinitely"
    # intensive (a huge finite X gives alpha = -cap); an idle unit (no output, no emissions)
    # and a sector with a zero balance value get X = 0. Written as a single quotient so
    # that extreme (e.g. subnormal) outputs overflow to inf, which is capped, not to NaN.
    ok = (q > 0) & (bal_num > 0)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        ratio = np.divide(e * bal_den, q * bal_num, out=np.ones(inputs.shape), where=ok)
    ratio = np.where(np.isnan(ratio) | (e <= 0), 1.0, np.minimum(ratio, 1e6))
    x = np.where((q <= 0) & (e > 0), 1e6, ratio - 1.0)
    alpha = industry_alpha(
        x,
        slope=_param_float(inputs, "alpha_slope", INDUSTRY_ALPHA_DEFAULTS["slope"], 0.0),
        cap=_param_float(inputs, "alpha_cap", INDUSTRY_ALPHA_DEFAULTS["cap"], 0.0, 1.0),
    )
    return whole_tonnes(np.where(scope, e * (1.0 + alpha), 0.0))


# ---------------------------------------------------------------------- grandfathering
@ALLOCATION_RULES.register("grandfathering")
def grandfathering(inputs: AllocationInputs) -> FloatArray:
    """Free allocation from historical emissions: ``A = H * factor * (1 - decline)**(y - y0)``.

    Source: docs/rules.md#grandfathering (Beijing pilot: "Free allocation (grandfathering and
    benchmarks)"). The factor and the yearly decline are scenario parameters.

    Parameters
    ----------
    inputs : AllocationInputs
        Parameters:

        - ``"historical_emissions"``: ``H``, t, shape (N,) or (..., N); default the
          table's baseline emissions.
        - ``"factor"``: scalar or (..., N), >= 0; default 1.0.
        - ``"annual_decline"``: yearly decline of the factor in [0, 1); default 0.
        - ``"base_year"``: ``y0``, the year the factor applies unchanged; default ``year``.
        - ``"sectors"``: sectors covered (default all).

    Returns
    -------
    ndarray of float64, shape (..., N)
        Allowances, whole tonnes.

    Examples
    --------
    1,000,000 t x 0.98 x (1 - 0.02)**2 = 941,192 t:

    >>> u = UnitTable.create(["services"], product_t=[1e6], intensity_product=[1.0])
    >>> p = {"factor": 0.98, "annual_decline": 0.02, "base_year": 2022}
    >>> grandfathering(AllocationInputs.from_units(u, 2024, parameters=p)).tolist()
    [941192.0]
    """
    units = inputs.units
    hist = _param_array(inputs, "historical_emissions", units.baseline_emissions())
    factor = _param_array(inputs, "factor", 1.0)
    decline = _param_float(inputs, "annual_decline", 0.0, 0.0, 1.0)
    if decline >= 1.0:
        raise ValueError(f"parameters['annual_decline'] must be < 1, got {decline!r}")
    base_year = inputs.parameters.get("base_year", inputs.year)
    if isinstance(base_year, bool) or not isinstance(base_year, (int, np.integer)):
        raise TypeError(f"parameters['base_year'] must be an int, got {describe(base_year)}")
    years = inputs.year - int(base_year)
    scope = _sector_mask(units, inputs.parameters.get("sectors", SECTORS), "sectors")
    a = hist * factor * (1.0 - decline) ** years
    return whole_tonnes(np.where(scope, a, 0.0))


# ---------------------------------------------------------------------- absolute cap
def cap_schedule(
    initial_cap: float,
    initial_year: int,
    years: Iterable[int],
    *,
    reference_cap: float | None = None,
    lrf: Mapping[int, float] | float | None = None,
) -> pd.Series:
    """Annual caps falling by a linear reduction factor, the EU way.

    ``cap[y] = max(cap[y - 1] - LRF[y] * reference_cap, 0)`` from ``cap[initial_year] =
    initial_cap``: each year the cap falls by the same absolute amount, a share of a fixed
    reference cap, not by a share of the previous year's cap.

    Source: docs/rules.md#eu-cap: 2.2%/yr 2021-23, 4.3% 2024-27, 4.4% 2028-30
    (:data:`~carbonsim.market.benchmarks_table.EU_LINEAR_REDUCTION_FACTORS`).

    Parameters
    ----------
    initial_cap : float
        Cap of ``initial_year``, t.
    initial_year : int
        Year of ``initial_cap``.
    years : iterable of int
        Years wanted, each ``>= initial_year``.
    reference_cap : float, optional
        The cap the LRF is a share of, t; default ``initial_cap``.
    lrf : mapping of int to float, or float, optional
        LRF by year (a share), or one constant; default the EU schedule.

    Returns
    -------
    pandas.Series
        Cap in t per year, indexed by ``year``, named ``cap_t``.

    Examples
    --------
    >>> cap_schedule(1e9, 2020, [2021, 2024]).tolist()
    [978000000.0, 891000000.0]
    """
    import pandas as pd

    cap0 = check_in_range("initial_cap", initial_cap, 0.0)
    ref = cap0 if reference_cap is None else check_in_range("reference_cap", reference_cap, 0.0)
    wanted = [int(y) for y in years]
    early = [y for y in wanted if y < initial_year]
    if early:
        raise ValueError(f"years must be >= initial_year = {initial_year}, got {early}")
    table: Mapping[int, float] | float = EU_LINEAR_REDUCTION_FACTORS if lrf is None else lrf
    caps = {initial_year: cap0}
    cap = cap0
    for y in range(initial_year + 1, max(wanted, default=initial_year) + 1):
        if isinstance(table, Mapping):
            if y not in table:
                raise ValueError(
                    f"no linear reduction factor for {y}; the schedule covers "
                    f"{min(table)}-{max(table)}. Pass lrf (a mapping or a constant)"
                )
            factor = check_share(f"lrf[{y}]", table[y])
        else:
            factor = check_share("lrf", table)
        cap = max(cap - factor * ref, 0.0)
        caps[y] = cap
    index = pd.Index(wanted, name="year", dtype=np.int64)
    return pd.Series([caps[y] for y in wanted], index=index, name="cap_t", dtype=np.float64)


def _largest_remainder(total: FloatArray, weights: FloatArray) -> FloatArray:
    """Split whole-tonne totals (...,) by weights (..., N); parts sum to the totals exactly."""
    wsum = weights.sum(axis=-1, keepdims=True)
    raw = total[..., None] * weights / wsum
    base = np.floor(raw)
    short = total - base.sum(axis=-1)  # whole number in [0, N)
    order = np.argsort(-(raw - base), axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[-1]), axis=-1)
    return base + (rank < short[..., None])


@ALLOCATION_RULES.register("absolute_cap")
def absolute_cap(inputs: AllocationInputs) -> FloatArray:
    """Distribute the free part of an absolute cap pro rata to historical emissions.

    Source: docs/rules.md#absolute-cap (the EU ETS cap with a linear reduction factor,
    :func:`cap_schedule`); the free/auctioned split follows the Beijing pilot's free plus
    paid allocation.

    The free total is ``floor(free_share * cap)`` whole tonnes, split by largest remainder
    (ties to the lower unit index) in proportion to the weights, so the allocations sum to
    it exactly. The rest of the cap, ``cap - sum(A)``, is left for auction
    (:func:`auction_allocation`).

    Parameters
    ----------
    inputs : AllocationInputs
        Parameters:

        - ``"cap"``: the year's cap, t; or ``"cap_schedule"``: a mapping or Series of year
          to cap (e.g. from :func:`cap_schedule`). One is required.
        - ``"free_share"``: share of the cap allocated free, in [0, 1]; default 1.
        - ``"historical_emissions"``: weights, t, shape (N,) or (..., N); default the
          table's baseline emissions.
        - ``"sectors"``: sectors sharing the cap (default all); other units get 0.

    Returns
    -------
    ndarray of float64, shape (..., N)
        Allowances, whole tonnes, summing to ``floor(free_share * cap)`` over units.
    """
    params, units = inputs.parameters, inputs.units
    if "cap" in params:
        cap = check_in_range("parameters['cap']", params["cap"], 0.0)
    elif "cap_schedule" in params:
        schedule = params["cap_schedule"]
        if not hasattr(schedule, "items"):
            raise TypeError(
                "parameters['cap_schedule'] must be a mapping or Series of year to cap, got "
                f"{describe(schedule)}"
            )
        caps = {int(y): v for y, v in schedule.items()}
        if inputs.year not in caps:
            raise ValueError(
                f"parameters['cap_schedule'] has no cap for year {inputs.year}; it covers "
                f"{sorted(caps)}"
            )
        cap = check_in_range(f"parameters['cap_schedule'][{inputs.year}]", caps[inputs.year], 0.0)
    else:
        raise ValueError(
            "absolute_cap needs parameters['cap'] (t) or parameters['cap_schedule'] "
            "(year -> t, e.g. from cap_schedule())"
        )
    free = np.floor(cap * _param_float(inputs, "free_share", 1.0, 0.0, 1.0))
    scope = _sector_mask(units, params.get("sectors", SECTORS), "sectors")
    weights = np.where(
        scope, _param_array(inputs, "historical_emissions", units.baseline_emissions()), 0.0
    )
    totals = np.full(inputs.shape[:-1], free)
    empty = weights.sum(axis=-1) <= 0
    if free > 0 and empty.any():
        raise ValueError(
            "absolute_cap cannot share a positive cap pro rata to weights that sum to 0 "
            "(parameters['historical_emissions'] over the covered sectors)"
        )
    if free == 0:
        return np.zeros(inputs.shape)
    return _largest_remainder(totals, weights)


# ---------------------------------------------------------------------- by sector
@ALLOCATION_RULES.register("by_sector")
def by_sector(inputs: AllocationInputs) -> FloatArray:
    """Apply a different registered rule to each sector and add the results.

    Source: docs/rules.md#by-sector: power units by benchmark and, from 2024, steel, cement
    and aluminium by the industry rule, in one market.

    Parameters
    ----------
    inputs : AllocationInputs
        Parameter ``"rules_by_sector"`` (required): mapping of sector name to rule name,
        e.g. ``{"power": "china_power_benchmark", "steel": "industry_intensity"}``. Each
        rule runs with ``parameters["sectors"]`` set to its sectors (rules that ignore
        ``"sectors"``, such as the power rule, cover only their own sector anyway), and
        its result is kept for those sectors only. Units of unnamed sectors get 0.

    Returns
    -------
    ndarray of float64, shape (..., N)
        Allowances, whole tonnes.
    """
    mapping = inputs.parameters.get("rules_by_sector")
    if not isinstance(mapping, Mapping) or not mapping:
        raise ValueError(
            "by_sector needs parameters['rules_by_sector'], a non-empty mapping of sector "
            f"name to rule name; got {describe(mapping)}"
        )
    groups: dict[str, list[str]] = {}
    for sector, rule in mapping.items():
        if rule == "by_sector":
            raise ValueError("parameters['rules_by_sector'] cannot name 'by_sector' itself")
        ALLOCATION_RULES.get(rule)  # fail early with the list of valid names
        groups.setdefault(rule, []).append(sector)
    total = np.zeros(inputs.shape)
    for rule, sectors in groups.items():
        mask = _sector_mask(inputs.units, sectors, "rules_by_sector")
        sub = inputs.with_parameters(sectors=tuple(sectors))
        total += np.where(mask, allocate(rule, sub), 0.0)
    return total


# ---------------------------------------------------------------------- pre-allocation
def pre_allocation(
    previous_basis: npt.ArrayLike, share: float | None = None, *, year: int | None = None
) -> FloatArray:
    """Ex-ante pre-allocation: a share of the previous year's basis, whole tonnes.

    Source: docs/rules.md#pre-allocation: "Pre-allocation: 70% of the previous year's basis
    (2019-2024); at most 50% from 2025"
    (:func:`~carbonsim.market.benchmarks_table.pre_allocation_share`).

    Rounded **down** (``np.floor``), so the pre-allocation never exceeds the share (the
    2025 rule is a maximum).

    Parameters
    ----------
    previous_basis : array_like, shape (..., N)
        The previous year's allocation basis (e.g. its final allocation, or its activity
        times this year's benchmark), t, >= 0.
    share : float, optional
        Share in [0, 1]. Default: the tabulated share of ``year``.
    year : int, optional
        Compliance year; needed when ``share`` is not given.

    Returns
    -------
    ndarray of float64, shape (..., N)
        Pre-allocated allowances, whole tonnes.

    Examples
    --------
    >>> pre_allocation([1_000_001.0], year=2023).tolist()
    [700000.0]
    """
    basis = as_float_array("previous_basis", previous_basis, ndim=None, nonnegative=True)
    if share is None:
        if year is None:
            raise TypeError("pre_allocation needs share or year")
        s = pre_allocation_share(year)
    else:
        s = check_share("share", share)
    return np.floor(basis * s) + 0.0


def true_up(final_allocation: npt.ArrayLike, pre_allocated: npt.ArrayLike) -> FloatArray:
    """Ex-post adjustment after verification: ``final_allocation - pre_allocated``, t.

    Source: docs/rules.md#true-up: "Final allocation (true-up) after verification". The
    result is signed: positive tonnes are issued to the unit, negative tonnes are taken back
    from it (in China the final allocation simply replaces the pre-allocation); the ledger
    carries out either. ``pre_allocated + true_up == final_allocation`` exactly for whole
    tonnes.

    Parameters
    ----------
    final_allocation, pre_allocated : array_like, shape (..., N)
        Whole tonnes, >= 0.

    Returns
    -------
    ndarray of float64, shape (..., N)
        Signed adjustment, whole tonnes.
    """
    final = as_float_array("final_allocation", final_allocation, ndim=None, nonnegative=True)
    pre = as_float_array("pre_allocated", pre_allocated, ndim=None, nonnegative=True)
    for name, arr in (("final_allocation", final), ("pre_allocated", pre)):
        if (arr != np.rint(arr)).any():
            raise ValueError(f"{name} must hold whole tonnes, got {describe(arr)}")
    try:
        return final - pre
    except ValueError:
        raise ValueError(
            f"final_allocation {final.shape} and pre_allocated {pre.shape} do not broadcast"
        ) from None
