"""Allocation rule parameters as data, each value with its source.

Everything the allocation rules of :mod:`carbonsim.market.allocation` read from the public
rule table lives here, as data rather than as constants inside code paths:

- :data:`POWER_BENCHMARKS`: China national ETS power benchmarks by year and class
  (docs/rules.md#benchmark-table, columns 2019-20, 2023, 2024).
- :data:`PRE_ALLOCATION_SHARES`: the ex-ante pre-allocation share by year
  (docs/rules.md#pre-allocation).
- :data:`EU_LINEAR_REDUCTION_FACTORS`: the EU ETS linear reduction factor by year
  (docs/rules.md#eu-cap).
- :data:`F_LOAD_DEFAULTS` and :data:`INDUSTRY_ALPHA_DEFAULTS`: the parameters of the
  peak-shaving correction (a conf. C guess) and of the industry intensity adjustment.

2021 and 2022. The rule table gives no benchmark column for 2021-22
(docs/rules.md#benchmark-table); it says only that 2019-2022 used the 2019-20 formula. The
rows for 2021 and 2022 therefore repeat the 2019-20 values and are marked conf. C. ICAP
reported that the 2023 benchmarks were 6.5% to 18.8% below the 2022 ones, so the published
2021-22 values differ from 2019-20; a scenario that needs them passes them as
``parameters["benchmarks"]`` to the power rule.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "BENCHMARK_KEYS",
    "EU_LINEAR_REDUCTION_FACTORS",
    "F_LOAD_DEFAULTS",
    "INDUSTRY_ALPHA_DEFAULTS",
    "POWER_BENCHMARKS",
    "PRE_ALLOCATION_SHARES",
    "BenchmarkRow",
    "benchmark_frame",
    "power_benchmarks",
    "pre_allocation_share",
    "tabulated_years",
]

_POWER_ROW = "docs/rules.md#benchmark-table"
_C_2021_22 = (
    "conf. C parameter: the rule table gives no 2021-22 column (docs/rules.md#benchmark-table); "
    "the 2019-20 value is used (2019-2022 used the 2019-20 formula)"
)

#: Benchmark keys: the four electricity classes (the power sub-types of
#: :data:`carbonsim.market.units.SUBTYPES`) and the two heat benchmarks.
BENCHMARK_KEYS: tuple[str, ...] = (
    "coal_gt300mw",
    "coal_le300mw",
    "coal_unconventional",
    "gas",
    "heat_coal",
    "heat_gas",
)
_BENCHMARK_UNITS = {
    "coal_gt300mw": "t/MWh",
    "coal_le300mw": "t/MWh",
    "coal_unconventional": "t/MWh",
    "gas": "t/MWh",
    "heat_coal": "t/GJ",
    "heat_gas": "t/GJ",
}
_ROW_LABEL = {
    "coal_gt300mw": "Conventional coal > 300 MW class",
    "coal_le300mw": "Conventional coal <= 300 MW class",
    "coal_unconventional": "Unconventional coal (gangue, slime, CFB)",
    "gas": "Natural gas",
    "heat_coal": "Heat, coal",
    "heat_gas": "Heat, gas",
}


@dataclass(frozen=True)
class BenchmarkRow:
    """One benchmark value.

    Attributes
    ----------
    key : str
        One of :data:`BENCHMARK_KEYS`.
    year : int
        Compliance year the value applies to.
    value : float
        Benchmark, t CO2/MWh for electricity classes, t CO2/GJ for heat.
    unit : str
        ``"t/MWh"`` or ``"t/GJ"``.
    source : str
        Where the value comes from (docs/rules.md#benchmark-table row and column, with
        confidence).
    """

    key: str
    year: int
    value: float
    unit: str
    source: str


_VALUES: dict[str, tuple[float, float, float]] = {
    # key: (2019-20, 2023, 2024), exactly as in docs/rules.md#benchmark-table
    "coal_gt300mw": (0.877, 0.7950, 0.7910),
    "coal_le300mw": (0.979, 0.8090, 0.8049),
    "coal_unconventional": (1.146, 0.8285, 0.8244),
    "gas": (0.392, 0.3305, 0.3288),
    "heat_coal": (0.126, 0.1038, 0.1033),
    "heat_gas": (0.059, 0.0536, 0.0533),
}


def _rows() -> tuple[BenchmarkRow, ...]:
    rows: list[BenchmarkRow] = []
    for key, (v1920, v2023, v2024) in _VALUES.items():
        label, unit = _ROW_LABEL[key], _BENCHMARK_UNITS[key]
        for year in (2019, 2020):
            src = f"{_POWER_ROW}, row '{label}', column 2019-20, conf. A/B"
            rows.append(BenchmarkRow(key, year, v1920, unit, src))
        for year in (2021, 2022):
            rows.append(BenchmarkRow(key, year, v1920, unit, _C_2021_22))
        rows.append(
            BenchmarkRow(key, 2023, v2023, unit, f"{_POWER_ROW}, row '{label}', column 2023")
        )
        rows.append(
            BenchmarkRow(key, 2024, v2024, unit, f"{_POWER_ROW}, row '{label}', column 2024")
        )
    return tuple(rows)


#: Every power benchmark value, one row per (key, year), with its source.
POWER_BENCHMARKS: tuple[BenchmarkRow, ...] = _rows()

#: Share of the previous year's basis pre-allocated ex ante, by compliance year
#: (docs/rules.md#pre-allocation: "Pre-allocation: 70% of the previous year's basis
#: (2019-2024); at most 50% from 2025"). From 2025 the value is the maximum.
PRE_ALLOCATION_SHARES: Mapping[int, float] = MappingProxyType(
    {**dict.fromkeys(range(2019, 2025), 0.7), 2025: 0.50}
)

#: EU ETS linear reduction factor by year, as a share of the reference cap
#: (docs/rules.md#eu-cap: 2.2%/yr 2021-23, 4.3% 2024-27, 4.4% 2028-30).
EU_LINEAR_REDUCTION_FACTORS: Mapping[int, float] = MappingProxyType(
    {
        **dict.fromkeys(range(2021, 2024), 0.022),
        **dict.fromkeys(range(2024, 2028), 0.043),
        **dict.fromkeys(range(2028, 2031), 0.044),
    }
)

#: Peak-shaving (load) correction of conventional coal units from 2023:
#: ``F_load = min(1 + slope * max(0, threshold - load_factor), cap)``. The rule table
#: (docs/rules.md#f-load) says "a few percent more allowances" at low load factors and asks
#: to treat the curve as a parameter: all three values are conf. C guesses (0.12 per unit of
#: load factor is 0.0012 per percentage point below 65%; the cap keeps the bonus to "a few
#: percent").
F_LOAD_DEFAULTS: Mapping[str, float] = MappingProxyType(
    {"threshold": 0.65, "slope": 0.12, "cap": 1.05}
)

#: Industry intensity adjustment, 2025-26 (docs/rules.md#industry-intensity):
#: ``alpha = 0.15 X`` within ``|X| < 20%`` and +/-0.03 beyond, i.e. ``slope`` 0.15 and
#: ``cap`` 0.03 (0.15 x 0.2 = 0.03, so the rule is continuous).
INDUSTRY_ALPHA_DEFAULTS: Mapping[str, float] = MappingProxyType({"slope": 0.15, "cap": 0.03})


def tabulated_years() -> list[int]:
    """Years with power benchmark values, ascending."""
    return sorted({row.year for row in POWER_BENCHMARKS})


def power_benchmarks(year: int, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Power benchmarks of one compliance year, by key.

    Parameters
    ----------
    year : int
        A tabulated year (2019-2024, see :data:`POWER_BENCHMARKS` for the sources).
    overrides : mapping of str to float, optional
        Values replacing tabulated ones, keyed by :data:`BENCHMARK_KEYS` (t/MWh or t/GJ,
        > 0). With all six keys given, ``year`` need not be tabulated.

    Returns
    -------
    dict of str to float
        All six :data:`BENCHMARK_KEYS`.

    Examples
    --------
    >>> power_benchmarks(2023)["coal_gt300mw"]
    0.795
    """
    if isinstance(year, bool) or not isinstance(year, int):
        raise TypeError(f"year must be an int, got {year!r}")
    over = dict(overrides or {})
    unknown = sorted(set(over) - set(BENCHMARK_KEYS))
    if unknown:
        raise ValueError(
            f"unknown benchmark key(s) {unknown}; valid keys are: {', '.join(BENCHMARK_KEYS)}"
        )
    for key, value in over.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"benchmarks[{key!r}] must be a number > 0, got {value!r}")
    table = {row.key: row.value for row in POWER_BENCHMARKS if row.year == year}
    if not table and set(over) != set(BENCHMARK_KEYS):
        raise ValueError(
            f"no power benchmarks are tabulated for year {year}; tabulated years are "
            f"{tabulated_years()}. Pass parameters['benchmark_year'] (a tabulated year) or "
            f"all six parameters['benchmarks'] ({', '.join(BENCHMARK_KEYS)})"
        )
    table.update({k: float(v) for k, v in over.items()})
    return table


def pre_allocation_share(year: int) -> float:
    """Pre-allocated share for ``year``: 0.70 for 2019-2024, 0.50 (the maximum) from 2025.

    Source: :data:`PRE_ALLOCATION_SHARES` (docs/rules.md#pre-allocation).
    """
    if isinstance(year, bool) or not isinstance(year, int):
        raise TypeError(f"year must be an int, got {year!r}")
    first, last = min(PRE_ALLOCATION_SHARES), max(PRE_ALLOCATION_SHARES)
    if year < first:
        raise ValueError(
            f"no pre-allocation share before {first} (the national ETS's first compliance "
            f"year), got year {year}; pass the share explicitly"
        )
    return PRE_ALLOCATION_SHARES[min(year, last)]


def benchmark_frame() -> pd.DataFrame:
    """:data:`POWER_BENCHMARKS` as a DataFrame indexed by (``key``, ``year``).

    Columns ``value``, ``unit`` and ``source``.
    """
    import pandas as pd

    df = pd.DataFrame(
        [(r.key, r.year, r.value, r.unit, r.source) for r in POWER_BENCHMARKS],
        columns=["key", "year", "value", "unit", "source"],
    )
    return df.set_index(["key", "year"]).sort_index()
