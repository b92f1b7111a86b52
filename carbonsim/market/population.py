"""Synthetic populations of covered units that match published coverage figures exactly.

:func:`synthetic_population` draws a :class:`~carbonsim.market.units.UnitTable` whose unit
counts by sector and total emissions equal given figures, with heavy-tailed (lognormal) unit
sizes and every unit at or above an inclusion threshold. :data:`COVERAGE` holds the
published figures of each cycle as data (with the docs/rules.md#coverage-national row they
come from) and :func:`population_from_preset` builds a population from one of them.

How sizes hit the total exactly
-------------------------------
Within a sector with ``n`` units, target emissions ``T`` and threshold ``m``, unit ``i``
gets ``e_i = m + (T - n m) w_i / sum(w)`` with ``w_i`` lognormal. Every unit is then at
least ``m`` and the sum is ``T`` (the last unit of rounding is put on the largest unit).
Sector targets are ``T * emission_share``. Activities are then derived from ``e_i`` and
the drawn intensities, so ``UnitTable.baseline_emissions()`` reproduces the targets to
floating-point rounding.

Power units
-----------
Each power unit is conventional coal, unconventional coal or gas (``power_mix``, shares of
units). Intensities are drawn near the benchmark of ``benchmark_year``
(:mod:`carbonsim.market.benchmarks_table`): ``I = B * (1 + d)``, ``d ~ Normal(gap_mean,
gap_sd)``, slightly above the benchmark on average, so that benchmark allocation leaves the
sector in "overall balance, slight shortfall" (docs/rules.md#benchmark-table). A share of
units are CHP and also supply heat (``chp_share``; heat carries a share of their emissions
drawn from ``heat_share``). Capacity follows from net electricity and a drawn load factor
(``capacity = MWh / (8760 h * load_factor)``); a conventional coal unit is in the > 300 MW
class exactly when its capacity is above 300 MW, consistently with its benchmark.

Every number in the profile tables below is a conf. C parameter (an assumption of this
module, not a published figure) unless its ``source`` says otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim._random import SeedLike, as_generator
from carbonsim._validation import check_in_range
from carbonsim.market.benchmarks_table import power_benchmarks
from carbonsim.market.units import HOURS_PER_YEAR, POLLUTANTS, SECTORS, UnitTable

log = logging.getLogger(__name__)

__all__ = [
    "BEIJING_THRESHOLD",
    "COVERAGE",
    "DEFAULT_POWER_MIX",
    "NATIONAL_THRESHOLD",
    "POWER_PROFILES",
    "SECTOR_PROFILES",
    "UNIT_SPREADS",
    "CoveragePreset",
    "PowerProfile",
    "SectorProfile",
    "population_from_preset",
    "synthetic_population",
]

FloatArray = npt.NDArray[np.float64]

#: National ETS inclusion threshold, t/yr (docs/rules.md#coverage-national: "Inclusion
#: threshold: 26,000 t/yr").
NATIONAL_THRESHOLD = 26_000.0
#: Beijing pilot inclusion threshold, t/yr (docs/rules.md#coverage-beijing: "threshold
#: 5,000 t/yr (direct + indirect emissions)").
BEIJING_THRESHOLD = 5_000.0

_CONF_C = "conf. C parameter (assumption of carbonsim.market.population)"

#: Spreads of the per-unit draws around the profile values (all conf. C):
#: ``mac_cost_sigma`` lognormal sigma of a unit's MAC cost level (linear full cost, or a
#: common factor on all its step costs); ``mac_share_jitter`` step potentials scaled by
#: ``U(1 - j, 1 + j)``; ``growth_sd`` standard deviation of a unit's growth around its
#: profile's, 1/yr; ``intensity_gap_limit`` power intensity gaps are clipped to +/- this.
UNIT_SPREADS: Mapping[str, float] = MappingProxyType(
    {
        "mac_cost_sigma": 0.3,
        "mac_share_jitter": 0.2,
        "growth_sd": 0.01,
        "intensity_gap_limit": 0.3,
    }
)


@dataclass(frozen=True)
class PowerProfile:
    """How power units of one fuel class are drawn (all values conf. C).

    Attributes
    ----------
    relative_size : float
        Median unit emissions relative to conventional coal (lognormal scale).
    size_sigma : float
        Lognormal sigma of unit emissions.
    load_factor : tuple of float
        Uniform range of the annual load factor.
    chp_share : float
        Share of units that also supply heat.
    heat_share : tuple of float
        Uniform range of the share of a CHP unit's emissions attributed to heat.
    growth, sigma_output, sigma_intensity : float
        Output growth (1/yr) and lognormal shock sigmas.
    mac_full_cost : float
        Linear MAC: the price (yuan/t) at which abatement would reach 100% of emissions;
        the slope is ``mac_full_cost / E`` (yuan/t per t).
    mac_max_share : float
        Linear MAC potential as a share of emissions.
    pollutants : tuple of float
        SO2, NOx, PM, kg per t CO2.
    source : str
        Provenance of the values.
    """

    relative_size: float
    size_sigma: float
    load_factor: tuple[float, float]
    chp_share: float
    heat_share: tuple[float, float]
    growth: float
    sigma_output: float
    sigma_intensity: float
    mac_full_cost: float
    mac_max_share: float
    pollutants: tuple[float, float, float]
    source: str = _CONF_C


#: Power fuel classes: ``"coal_conventional"`` (split into the > 300 MW and <= 300 MW
#: benchmark classes by drawn capacity), ``"coal_unconventional"`` and ``"gas"``.
POWER_PROFILES: Mapping[str, PowerProfile] = MappingProxyType(
    {
        "coal_conventional": PowerProfile(
            relative_size=1.0,
            size_sigma=0.7,
            load_factor=(0.40, 0.80),
            chp_share=0.45,
            heat_share=(0.05, 0.35),
            growth=0.0,
            sigma_output=0.06,
            sigma_intensity=0.01,
            mac_full_cost=2000.0,
            mac_max_share=0.10,
            pollutants=(0.12, 0.18, 0.025),
        ),
        "coal_unconventional": PowerProfile(
            relative_size=0.5,
            size_sigma=0.6,
            load_factor=(0.45, 0.85),
            chp_share=0.5,
            heat_share=(0.05, 0.35),
            growth=-0.01,
            sigma_output=0.06,
            sigma_intensity=0.015,
            mac_full_cost=2500.0,
            mac_max_share=0.08,
            pollutants=(0.25, 0.25, 0.05),
        ),
        "gas": PowerProfile(
            relative_size=0.25,
            size_sigma=0.8,
            load_factor=(0.20, 0.55),
            chp_share=0.35,
            heat_share=(0.05, 0.35),
            growth=0.03,
            sigma_output=0.08,
            sigma_intensity=0.01,
            mac_full_cost=3000.0,
            mac_max_share=0.05,
            pollutants=(0.005, 0.45, 0.01),
        ),
    }
)

#: Default power mix, shares of power units (conf. C: coal dominates the national ETS).
DEFAULT_POWER_MIX: Mapping[str, float] = MappingProxyType(
    {"coal_conventional": 0.80, "coal_unconventional": 0.07, "gas": 0.13}
)


@dataclass(frozen=True)
class SectorProfile:
    """How units of a non-power sector are drawn (all values conf. C).

    Attributes
    ----------
    activity : str
        ``"product"`` (t of product, or emission equivalents when ``intensity`` is 1) or
        ``"heat"`` (GJ).
    intensity : float
        Median emission intensity, t/t or t/GJ.
    intensity_sd : float
        Relative standard deviation of unit intensities.
    relative_size : float
        Median unit emissions relative to a conventional coal power unit; used for the
        default emission shares of a multi-sector population.
    size_sigma : float
        Lognormal sigma of unit emissions.
    growth, sigma_output, sigma_intensity : float
        Output growth (1/yr) and lognormal shock sigmas.
    mac_form : str
        ``"linear"`` or ``"steps"``.
    mac_full_cost, mac_max_share : float
        Linear MAC parameters (see :class:`PowerProfile`).
    mac_steps : tuple of (float, float)
        Step MAC: (cost yuan/t, potential share) per technology, cheapest first.
    pollutants : tuple of float
        SO2, NOx, PM, kg per t CO2.
    source : str
        Provenance of the values.
    """

    activity: str
    intensity: float
    intensity_sd: float
    relative_size: float
    size_sigma: float
    growth: float
    sigma_output: float
    sigma_intensity: float
    mac_form: str
    pollutants: tuple[float, float, float]
    mac_full_cost: float = 2000.0
    mac_max_share: float = 0.0
    mac_steps: tuple[tuple[float, float], ...] = field(default=())
    source: str = _CONF_C


def _generic(
    relative_size: float,
    full_cost: float,
    max_share: float,
    pollutants: tuple[float, float, float],
) -> SectorProfile:
    return SectorProfile(
        activity="product",
        intensity=1.0,
        intensity_sd=0.0,
        relative_size=relative_size,
        size_sigma=1.0,
        growth=0.0,
        sigma_output=0.05,
        sigma_intensity=0.02,
        mac_form="linear",
        mac_full_cost=full_cost,
        mac_max_share=max_share,
        pollutants=pollutants,
    )


#: Non-power sectors. Steel (crude steel), cement (clinker) and aluminium carry product
#: output with physical intensities and step MAC curves; heat carries GJ; the pilot sectors
#: without product data carry emission equivalents (intensity 1 t/t).
SECTOR_PROFILES: Mapping[str, SectorProfile] = MappingProxyType(
    {
        "steel": SectorProfile(
            activity="product",
            intensity=1.8,
            intensity_sd=0.10,
            relative_size=3.0,
            size_sigma=1.0,
            growth=-0.01,
            sigma_output=0.05,
            sigma_intensity=0.01,
            mac_form="steps",
            mac_steps=((-20.0, 0.02), (80.0, 0.04), (250.0, 0.08), (600.0, 0.15)),
            pollutants=(0.35, 0.50, 0.25),
        ),
        "cement": SectorProfile(
            activity="product",
            intensity=0.86,
            intensity_sd=0.05,
            relative_size=0.5,
            size_sigma=0.6,
            growth=-0.02,
            sigma_output=0.06,
            sigma_intensity=0.01,
            mac_form="steps",
            mac_steps=((0.0, 0.02), (120.0, 0.05), (400.0, 0.10)),
            pollutants=(0.15, 1.20, 0.15),
        ),
        "aluminium": SectorProfile(
            activity="product",
            intensity=1.7,
            intensity_sd=0.08,
            relative_size=1.0,
            size_sigma=0.7,
            growth=0.01,
            sigma_output=0.04,
            sigma_intensity=0.01,
            mac_form="steps",
            mac_steps=((30.0, 0.03), (200.0, 0.07), (500.0, 0.10)),
            pollutants=(1.00, 0.20, 0.30),
        ),
        "heat": SectorProfile(
            activity="heat",
            intensity=0.058,
            intensity_sd=0.05,
            relative_size=0.3,
            size_sigma=1.0,
            growth=0.0,
            sigma_output=0.08,
            sigma_intensity=0.01,
            mac_form="linear",
            mac_full_cost=3000.0,
            mac_max_share=0.10,
            pollutants=(0.01, 0.40, 0.01),
        ),
        "petrochemical": _generic(1.5, 2500.0, 0.15, (0.30, 0.40, 0.05)),
        "other_industry": _generic(0.5, 2000.0, 0.15, (0.20, 0.30, 0.10)),
        "services": _generic(0.1, 1500.0, 0.20, (0.02, 0.10, 0.01)),
        "buildings": _generic(0.1, 1500.0, 0.20, (0.02, 0.10, 0.01)),
        "transport": _generic(0.3, 2500.0, 0.10, (0.01, 0.80, 0.05)),
        "generic": _generic(1.0, 2000.0, 0.15, (0.10, 0.30, 0.05)),
    }
)


@dataclass(frozen=True)
class CoveragePreset:
    """Published coverage of one cycle, and the assumptions needed to draw it.

    Attributes
    ----------
    n_units : int
        Number of covered units.
    total_emissions : float
        Covered emissions, t/yr.
    sector_counts : mapping of str to int
        Units per sector (sums to ``n_units``).
    emission_shares : mapping of str to float
        Share of ``total_emissions`` per sector (sums to 1).
    threshold : float
        Inclusion threshold, t/yr.
    benchmark_year : int
        Year whose power benchmarks the drawn intensities sit near.
    power_mix : mapping of str to float
        Shares of power units by fuel class (keys of :data:`POWER_PROFILES`).
    source : str
        The docs/rules.md row (#coverage-national or #coverage-beijing) or seed file of
        every figure, and which are conf. C.
    """

    n_units: int
    total_emissions: float
    sector_counts: Mapping[str, int]
    emission_shares: Mapping[str, float]
    threshold: float
    benchmark_year: int
    power_mix: Mapping[str, float]
    source: str


_COVERAGE_ROW = "docs/rules.md#coverage-national"
_THRESHOLD_SRC = "threshold: docs/rules.md#coverage-national, 'Inclusion threshold: 26,000 t/yr'"

#: Published coverage figures by cycle.
COVERAGE: Mapping[str, CoveragePreset] = MappingProxyType(
    {
        "china_national_2019_2020": CoveragePreset(
            n_units=2162,
            total_emissions=4.5e9,
            sector_counts=MappingProxyType({"power": 2162}),
            emission_shares=MappingProxyType({"power": 1.0}),
            threshold=NATIONAL_THRESHOLD,
            benchmark_year=2019,
            power_mix=DEFAULT_POWER_MIX,
            source=(
                f"{_COVERAGE_ROW}, row '1st (2019-2020 emissions)': 2,162 power units, "
                f"~4.5 Gt/yr (conf. A/B); {_THRESHOLD_SRC}; power mix {_CONF_C}"
            ),
        ),
        "china_national_2021_2022": CoveragePreset(
            n_units=2257,
            total_emissions=5.1e9,
            sector_counts=MappingProxyType({"power": 2257}),
            emission_shares=MappingProxyType({"power": 1.0}),
            threshold=NATIONAL_THRESHOLD,
            benchmark_year=2021,
            power_mix=DEFAULT_POWER_MIX,
            source=(
                f"{_COVERAGE_ROW}, row '2nd (2021-2022)': 2,257 units, ~5.1 Gt/yr (conf. A); "
                f"{_THRESHOLD_SRC}; power mix {_CONF_C}"
            ),
        ),
        "china_national_2023": CoveragePreset(
            n_units=2096,
            total_emissions=5.244e9,
            sector_counts=MappingProxyType({"power": 2096}),
            emission_shares=MappingProxyType({"power": 1.0}),
            threshold=NATIONAL_THRESHOLD,
            benchmark_year=2023,
            power_mix=DEFAULT_POWER_MIX,
            source=(
                f"{_COVERAGE_ROW}, row '2023 (first annual cycle)': 2,096 units, obligation "
                "5.244 Gt (conf. A/B), used as covered emissions; "
                f"{_THRESHOLD_SRC}; power mix {_CONF_C}"
            ),
        ),
        "china_national_2024": CoveragePreset(
            n_units=3378,
            total_emissions=8.194e9,
            sector_counts=MappingProxyType(
                {"power": 2087, "steel": 232, "cement": 962, "aluminium": 97}
            ),
            emission_shares=MappingProxyType(
                {"power": 0.635, "steel": 0.22, "cement": 0.12, "aluminium": 0.025}
            ),
            threshold=NATIONAL_THRESHOLD,
            benchmark_year=2024,
            power_mix=DEFAULT_POWER_MIX,
            source=(
                f"{_COVERAGE_ROW}, row '2024': 3,378 units (power 2,087, steel 232, cement "
                "962, aluminium 97), obligation 8.194 Gt (conf. A), used as covered "
                f"emissions; {_THRESHOLD_SRC}; emission shares by sector and power mix "
                f"{_CONF_C}"
            ),
        ),
        "beijing_2022": CoveragePreset(
            n_units=1300,
            total_emissions=44e6,
            sector_counts=MappingProxyType(
                {
                    "power": 20,
                    "heat": 180,
                    "cement": 2,
                    "petrochemical": 10,
                    "other_industry": 250,
                    "services": 450,
                    "buildings": 300,
                    "transport": 88,
                }
            ),
            emission_shares=MappingProxyType(
                {
                    "power": 0.40,
                    "heat": 0.20,
                    "cement": 0.01,
                    "petrochemical": 0.08,
                    "other_industry": 0.10,
                    "services": 0.09,
                    "buildings": 0.07,
                    "transport": 0.05,
                }
            ),
            threshold=BEIJING_THRESHOLD,
            benchmark_year=2023,
            power_mix=MappingProxyType({"gas": 1.0}),
            source=(
                "about 1,300 units: seed 004 (Beijing Ecology and Environment Bureau "
                "interview); cap about 44 Mt (2022), used as covered emissions, threshold "
                "5,000 t/yr and the sector list: docs/rules.md#coverage-beijing; unit counts "
                f"and emission shares by sector, all-gas power and benchmark year {_CONF_C}"
            ),
        ),
    }
)


def _largest_remainder(total: int, shares: FloatArray) -> npt.NDArray[np.int64]:
    """Split a whole number by shares so the parts sum to it exactly (ties: lower index)."""
    raw = total * shares
    base = np.floor(raw + 1e-9).astype(np.int64)
    short = int(total - base.sum())
    if short > 0:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[:short]] += 1
    return base


def _check_mapping(
    name: str, value: Mapping[str, Any], valid: tuple[str, ...] | list[str]
) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise TypeError(f"{name} must be a non-empty mapping, got {value!r}")
    out: dict[str, float] = {}
    for key, v in value.items():
        if key not in valid:
            raise ValueError(
                f"unknown key {key!r} in {name}; valid keys are: "
                + ", ".join(repr(k) for k in valid)
            )
        out[key] = check_in_range(f"{name}[{key!r}]", v, 0.0)
    return out


def _sizes(n: int, total: float, threshold: float, weights: FloatArray) -> FloatArray:
    """Sizes >= threshold summing to total; ``weights`` > 0 set the heavy-tailed shape."""
    extra = total - n * threshold
    e = threshold + extra * (weights / weights.sum())
    e[int(np.argmax(e))] += total - e.sum()
    return e


def synthetic_population(
    n_units: int,
    total_emissions: float,
    *,
    rng: SeedLike = None,
    sector_counts: Mapping[str, int] | None = None,
    sector_mix: Mapping[str, float] | None = None,
    emission_shares: Mapping[str, float] | None = None,
    threshold: float = NATIONAL_THRESHOLD,
    benchmark_year: int = 2023,
    power_mix: Mapping[str, float] | None = None,
    intensity_gap_mean: float = 0.02,
    intensity_gap_sd: float = 0.03,
    name_prefix: str = "unit",
    shock_scale: float = 1.0,
    growth_scale: float = 1.0,
    growth_shift: float = 0.0,
    mac_potential_scale: float = 1.0,
) -> UnitTable:
    """Draw ``n_units`` covered units whose baseline emissions sum to ``total_emissions``.

    Parameters
    ----------
    n_units : int
        Number of units ``N`` (>= 1).
    total_emissions : float
        Total baseline emissions, t/yr; at least ``n_units * threshold``.
    rng : int, SeedSequence, Generator or None
        Randomness (one stream, :func:`carbonsim._random.as_generator`).
    sector_counts : mapping of str to int, optional
        Exact units per sector, summing to ``n_units``.
    sector_mix : mapping of str to float, optional
        Shares of units per sector (sum 1); counts by largest remainder. Give at most one
        of ``sector_counts`` and ``sector_mix``; with neither, all units are power units.
    emission_shares : mapping of str to float, optional
        Share of the total per sector (sum 1, same keys). Default: proportional to unit
        count times the sector's ``relative_size`` (:data:`SECTOR_PROFILES`, conf. C).
    threshold : float
        Inclusion threshold, t/yr: every unit emits at least this much. Default the national
        26,000 t/yr (:data:`NATIONAL_THRESHOLD`); Beijing uses 5,000 t/yr.
    benchmark_year : int
        Year of the power benchmarks that power intensities are drawn near.
    power_mix : mapping of str to float, optional
        Shares of power units by fuel class (keys of :data:`POWER_PROFILES`); default
        :data:`DEFAULT_POWER_MIX`.
    intensity_gap_mean, intensity_gap_sd : float
        Relative gap ``d`` of power intensities above the benchmark, ``d ~ Normal(mean,
        sd)`` clipped to +/- ``UNIT_SPREADS["intensity_gap_limit"]`` (0.3) (conf. C
        defaults 0.02 and 0.03: a slight shortfall).
    name_prefix : str
        Names are ``f"{name_prefix}{i:05d}"``.
    shock_scale, growth_scale : float
        Multipliers (>= 0) of the drawn yearly shock sigmas and trend growth rates; 0 makes
        realized activity equal the reference activity every year (for textbook cases).
    growth_shift : float
        Added to every unit's trend growth, 1/yr (> -1): an exogenous trend such as the
        decline of fossil generation as renewables grow.
    mac_potential_scale : float
        Multiplier (>= 0) of every unit's abatement potential (linear ``mac_max_share``,
        step shares), capped so that no unit can abate more than all its emissions.

    Returns
    -------
    UnitTable
        Units grouped by sector in the order of :data:`carbonsim.market.units.SECTORS`.

    Examples
    --------
    >>> u = synthetic_population(100, 5e8, rng=1)
    >>> u.n_units, round(float(u.baseline_emissions().sum()))
    (100, 500000000)
    >>> bool(u.baseline_emissions().min() >= 26_000 * (1 - 1e-12))
    True
    """
    if isinstance(n_units, bool) or not isinstance(n_units, (int, np.integer)):
        raise TypeError(f"n_units must be an int, got {n_units!r}")
    if n_units < 1:
        raise ValueError(f"n_units must be >= 1, got {n_units}")
    n_units = int(n_units)
    total = check_in_range("total_emissions", total_emissions, 0.0)
    thr = check_in_range("threshold", threshold, 0.0)
    gap_mean = check_in_range("intensity_gap_mean", intensity_gap_mean, -0.3, 0.3)
    gap_sd = check_in_range("intensity_gap_sd", intensity_gap_sd, 0.0, 0.3)
    valid_sectors = list(SECTORS)
    if sector_counts is not None and sector_mix is not None:
        raise ValueError("give at most one of sector_counts and sector_mix")
    if sector_counts is not None:
        counts_f = _check_mapping("sector_counts", sector_counts, valid_sectors)
        for key, v in counts_f.items():
            if v != int(v):
                raise ValueError(f"sector_counts[{key!r}] must be a whole number, got {v!r}")
        counts = {k: int(v) for k, v in counts_f.items()}
        if sum(counts.values()) != n_units:
            raise ValueError(
                f"sector_counts must sum to n_units = {n_units}, got {sum(counts.values())}"
            )
    elif sector_mix is not None:
        mix = _check_mapping("sector_mix", sector_mix, valid_sectors)
        keys = list(mix)
        sh = np.array([mix[k] for k in keys])
        if not np.isclose(sh.sum(), 1.0, rtol=0, atol=1e-9):
            raise ValueError(f"sector_mix shares must sum to 1, got {sh.sum()!r}")
        counts = dict(zip(keys, _largest_remainder(n_units, sh / sh.sum()).tolist(), strict=True))
    else:
        counts = {"power": n_units}
    sectors = [s for s in SECTORS if counts.get(s, 0) > 0]
    if emission_shares is not None:
        es = _check_mapping("emission_shares", emission_shares, valid_sectors)
        missing = [s for s in sectors if es.get(s, 0.0) <= 0.0 and thr > 0.0]
        if missing:
            raise ValueError(
                f"emission_shares must be > 0 for every sector with units; missing or zero: "
                f"{missing}"
            )
        extra = [s for s, v in es.items() if v > 0 and counts.get(s, 0) == 0]
        if extra:
            raise ValueError(f"emission_shares names sector(s) without units: {extra}")
        total_share = sum(es.values())
        if not np.isclose(total_share, 1.0, rtol=0, atol=1e-9):
            raise ValueError(f"emission_shares must sum to 1, got {total_share!r}")
        weights_s = {s: es.get(s, 0.0) for s in sectors}
    else:
        weights_s = {
            s: counts[s] * (1.0 if s == "power" else SECTOR_PROFILES[s].relative_size)
            for s in sectors
        }
    wsum = sum(weights_s.values())
    targets = {s: total * weights_s[s] / wsum for s in sectors}
    targets[sectors[-1]] = total - sum(targets[s] for s in sectors[:-1])
    for s in sectors:
        if targets[s] < counts[s] * thr * (1.0 - 1e-12):
            raise ValueError(
                f"sector {s!r}: emissions of {targets[s]:.6g} t cannot hold {counts[s]} units "
                f"at or above the threshold of {thr:.6g} t/yr (need at least "
                f"{counts[s] * thr:.6g} t); raise total_emissions or its emission share, or "
                "lower the threshold"
            )
    mix_p = _check_mapping(
        "power_mix", DEFAULT_POWER_MIX if power_mix is None else power_mix, list(POWER_PROFILES)
    )
    if not np.isclose(sum(mix_p.values()), 1.0, rtol=0, atol=1e-9):
        raise ValueError(f"power_mix shares must sum to 1, got {sum(mix_p.values())!r}")
    bench = power_benchmarks(int(benchmark_year))
    gen = as_generator(rng)

    parts: list[dict[str, Any]] = []
    for s in sectors:
        n, target = counts[s], targets[s]
        if s == "power":
            parts.append(_draw_power(gen, n, target, thr, mix_p, bench, gap_mean, gap_sd))
        else:
            parts.append(_draw_sector(gen, s, n, target, thr))
    k = max(p["mac_step_cost"].shape[1] for p in parts)
    for p in parts:
        for key in ("mac_step_cost", "mac_step_share"):
            arr = p[key]
            if arr.shape[1] < k:
                fill = arr[:, -1:] if (key == "mac_step_cost" and arr.shape[1]) else 0.0
                pad = np.broadcast_to(fill, (arr.shape[0], k - arr.shape[1]))
                p[key] = np.concatenate([arr, pad], axis=1)
    columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    names = [f"{name_prefix}{i:05d}" for i in range(n_units)]
    check_in_range("shock_scale", shock_scale, 0.0)
    check_in_range("growth_scale", growth_scale, 0.0)
    for key in ("sigma_output", "sigma_intensity"):
        columns[key] = np.asarray(columns[key], np.float64) * shock_scale
    columns["growth"] = np.asarray(columns["growth"], np.float64) * growth_scale + growth_shift
    check_in_range("growth_shift", growth_shift, -0.5, 0.5)
    check_in_range("mac_potential_scale", mac_potential_scale, 0.0)
    if mac_potential_scale != 1.0:
        share = np.asarray(columns["mac_max_share"], np.float64) * mac_potential_scale
        columns["mac_max_share"] = np.minimum(share, 1.0)
        steps = np.asarray(columns["mac_step_share"], np.float64) * mac_potential_scale
        row_total = steps.sum(axis=1, keepdims=True)
        squeeze = np.where(row_total > 1.0, 1.0 / np.maximum(row_total, 1e-300), 1.0)
        columns["mac_step_share"] = steps * squeeze
    units = UnitTable.create(names=names, **columns)
    log.debug("synthetic population: %r, total %.6g t", units, total)
    return units


def _mac_linear(
    gen: np.random.Generator,
    e: FloatArray,
    full_cost: float | FloatArray,
    max_share: float | FloatArray,
) -> dict[str, Any]:
    """Linear MAC reaching ``full_cost`` (jittered, :data:`UNIT_SPREADS`) at 100% abatement."""
    n = e.shape[0]
    cost = full_cost * gen.lognormal(0.0, UNIT_SPREADS["mac_cost_sigma"], n)
    return {
        "mac_form": np.full(n, "linear", dtype=object),
        "mac_slope": cost / np.maximum(e, 1.0),
        "mac_max_share": np.broadcast_to(np.asarray(max_share, dtype=np.float64), (n,)),
        "mac_step_cost": np.zeros((n, 0)),
        "mac_step_share": np.zeros((n, 0)),
    }


def _draw_power(
    gen: np.random.Generator,
    n: int,
    total: float,
    threshold: float,
    mix: Mapping[str, float],
    bench: Mapping[str, float],
    gap_mean: float,
    gap_sd: float,
) -> dict[str, Any]:
    classes = list(POWER_PROFILES)
    counts = _largest_remainder(n, np.array([mix.get(c, 0.0) for c in classes]))
    fuel = np.repeat(np.arange(len(classes)), counts)
    gen.shuffle(fuel)
    prof = [POWER_PROFILES[c] for c in classes]

    def per_unit(attr: str) -> FloatArray:
        return np.array([getattr(p, attr) for p in prof], dtype=np.float64)[fuel]

    weights = per_unit("relative_size") * np.exp(per_unit("size_sigma") * gen.standard_normal(n))
    e = _sizes(n, total, threshold, weights)
    lf_lo = np.array([p.load_factor[0] for p in prof])[fuel]
    lf_hi = np.array([p.load_factor[1] for p in prof])[fuel]
    lf = gen.uniform(lf_lo, lf_hi)
    chp = gen.random(n) < per_unit("chp_share")
    hs_lo = np.array([p.heat_share[0] for p in prof])[fuel]
    hs_hi = np.array([p.heat_share[1] for p in prof])[fuel]
    heat_share = np.where(chp, gen.uniform(hs_lo, hs_hi), 0.0)
    limit = UNIT_SPREADS["intensity_gap_limit"]
    gap_e = np.clip(gen.normal(gap_mean, gap_sd, n), -limit, limit)
    gap_h = np.clip(gen.normal(gap_mean, gap_sd, n), -limit, limit)

    conventional = fuel == classes.index("coal_conventional")
    unconventional = fuel == classes.index("coal_unconventional")
    gas = fuel == classes.index("gas")
    e_elec = e * (1.0 - heat_share)
    # conventional coal: > 300 MW class exactly when the capacity at the > 300 MW benchmark
    # exceeds 300 MW; since B(<= 300) > B(> 300), the <= 300 MW capacity is then smaller too
    cap_gt = e_elec / (bench["coal_gt300mw"] * (1.0 + gap_e) * HOURS_PER_YEAR * lf)
    gt300 = conventional & (cap_gt > 300.0)
    subtype = np.select(
        [gas, unconventional, gt300],
        ["gas", "coal_unconventional", "coal_gt300mw"],
        default="coal_le300mw",
    ).astype(object)
    b_e = np.select(
        [gas, unconventional, gt300],
        [bench["gas"], bench["coal_unconventional"], bench["coal_gt300mw"]],
        default=bench["coal_le300mw"],
    )
    b_h = np.where(gas, bench["heat_gas"], bench["heat_coal"])
    int_e = b_e * (1.0 + gap_e)
    int_h = b_h * (1.0 + gap_h)
    elec = e_elec / int_e
    heat = e * heat_share / int_h
    capacity = elec / (HOURS_PER_YEAR * lf)
    out: dict[str, Any] = {
        "sector": np.full(n, "power", dtype=object),
        "subtype": subtype,
        "electricity_mwh": elec,
        "heat_gj": heat,
        "product_t": np.zeros(n),
        "intensity_electricity": int_e,
        "intensity_heat": np.where(chp, int_h, 0.0),
        "intensity_product": np.zeros(n),
        "growth": per_unit("growth") + gen.normal(0.0, UNIT_SPREADS["growth_sd"], n),
        "intensity_growth": np.zeros(n),
        "sigma_output": per_unit("sigma_output"),
        "sigma_intensity": per_unit("sigma_intensity"),
        "pollutant_factors": np.array([p.pollutants for p in prof])[fuel],
        "capacity_mw": capacity,
        "load_factor": lf,
    }
    out.update(_mac_linear(gen, e, per_unit("mac_full_cost"), per_unit("mac_max_share")))
    return out


def _draw_sector(
    gen: np.random.Generator, sector: str, n: int, total: float, threshold: float
) -> dict[str, Any]:
    prof = SECTOR_PROFILES[sector]
    weights = prof.relative_size * np.exp(prof.size_sigma * gen.standard_normal(n))
    e = _sizes(n, total, threshold, weights)
    intensity = prof.intensity * np.exp(
        prof.intensity_sd * gen.standard_normal(n) - 0.5 * prof.intensity_sd**2
    )
    activity = e / intensity
    zeros = np.zeros(n)
    out: dict[str, Any] = {
        "sector": np.full(n, sector, dtype=object),
        "subtype": np.full(n, "none", dtype=object),
        "electricity_mwh": zeros,
        "heat_gj": activity if prof.activity == "heat" else zeros,
        "product_t": activity if prof.activity == "product" else zeros,
        "intensity_electricity": zeros,
        "intensity_heat": intensity if prof.activity == "heat" else zeros,
        "intensity_product": intensity if prof.activity == "product" else zeros,
        "growth": prof.growth + gen.normal(0.0, UNIT_SPREADS["growth_sd"], n),
        "intensity_growth": zeros,
        "sigma_output": np.full(n, prof.sigma_output),
        "sigma_intensity": np.full(n, prof.sigma_intensity),
        "pollutant_factors": np.broadcast_to(
            np.array(prof.pollutants, dtype=np.float64), (n, len(POLLUTANTS))
        ),
        "capacity_mw": zeros,
        "load_factor": zeros,
    }
    if prof.mac_form == "steps":
        costs = np.array([c for c, _ in prof.mac_steps])
        shares = np.array([s for _, s in prof.mac_steps])
        factor = gen.lognormal(0.0, UNIT_SPREADS["mac_cost_sigma"], (n, 1))
        jitter = UNIT_SPREADS["mac_share_jitter"]
        out.update(
            mac_form=np.full(n, "steps", dtype=object),
            mac_slope=np.ones(n),
            mac_max_share=zeros,
            mac_step_cost=costs * factor,
            mac_step_share=shares * gen.uniform(1.0 - jitter, 1.0 + jitter, (n, 1)),
        )
    else:
        out.update(_mac_linear(gen, e, prof.mac_full_cost, prof.mac_max_share))
    return out


def population_from_preset(name: str, *, rng: SeedLike = None, **overrides: Any) -> UnitTable:
    """Draw the population of a named cycle in :data:`COVERAGE`.

    Parameters
    ----------
    name : str
        A key of :data:`COVERAGE` (e.g. ``"china_national_2024"``, ``"beijing_2022"``).
    rng : int, SeedSequence, Generator or None
        Randomness.
    **overrides
        Keyword arguments of :func:`synthetic_population` replacing the preset's values
        (e.g. ``intensity_gap_mean=0.0``). ``n_units`` and ``total_emissions`` rescale the
        preset: with another ``n_units`` the preset's sector shares of units are kept.

    Examples
    --------
    >>> u = population_from_preset("china_national_2024", rng=0)
    >>> u.n_units, int(u.in_sector("cement").sum())
    (3378, 962)
    """
    if name not in COVERAGE:
        raise ValueError(
            f"unknown coverage preset {name!r}; valid names are: "
            + ", ".join(repr(k) for k in sorted(COVERAGE))
        )
    preset = COVERAGE[name]
    kwargs: dict[str, Any] = {
        "sector_counts": dict(preset.sector_counts),
        "emission_shares": dict(preset.emission_shares),
        "threshold": preset.threshold,
        "benchmark_year": preset.benchmark_year,
        "power_mix": dict(preset.power_mix),
    }
    n_units = int(overrides.pop("n_units", preset.n_units))
    total = float(overrides.pop("total_emissions", preset.total_emissions))
    if n_units != preset.n_units and "sector_counts" not in overrides:
        # a scaled copy keeps the preset's sector shares of units; sectors that round to no
        # unit are dropped and the emission shares of the others renormalised
        counts = kwargs.pop("sector_counts")
        names = list(counts)
        shares = np.array([counts[k] / preset.n_units for k in names])
        scaled = _largest_remainder(n_units, shares)
        kept = {k: int(c) for k, c in zip(names, scaled, strict=True) if c > 0}
        kwargs["sector_counts"] = kept
        if "emission_shares" not in overrides:
            es = {k: v for k, v in kwargs["emission_shares"].items() if k in kept}
            total_share = sum(es.values())
            kwargs["emission_shares"] = {k: v / total_share for k, v in es.items()}
    kwargs.update(overrides)
    return synthetic_population(n_units, total, rng=rng, **kwargs)
