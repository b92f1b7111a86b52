"""The scenario schema: the single source of truth for the scenario file format.

Every field is declared once here with its type, unit, default and description. Validation,
the reference table in the docs (:func:`reference_table`) and the JSON Schema
(:func:`json_schema`) all come from these declarations. Scenarios are immutable
(``frozen``); variants are copies with changes (:meth:`Scenario.evolve`,
:func:`carbonsim.scenario.with_overrides`). Unknown keys are errors, so a typo in a file
never passes silently.

Units: quantities of allowances, credits and emissions are tonnes CO2e (``t``); prices are
currency per tonne (``currency/t``, yuan for the Chinese markets); dates are ISO dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BehaviourSpec",
    "OffsetSpec",
    "PenaltyChange",
    "PeriodSpec",
    "PolicySpec",
    "PopulationSpec",
    "Scenario",
    "StageSpec",
    "StrategySpec",
    "TimeSpec",
    "TradingSpec",
    "json_schema",
    "reference_table",
]


def _f(default: Any = ..., *, unit: str = "", description: str, **kw: Any) -> Any:
    """A field with its unit recorded in the JSON Schema (``x-unit``)."""
    extra: dict[str, Any] = {"x-unit": unit} if unit else {}
    return Field(default, description=description, json_schema_extra=extra, **kw)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class TimeSpec(_Model):
    """Simulated time window and trading calendar."""

    start: dt.date = _f(
        description="first calendar day simulated (first trading session on or after)"
    )
    end: dt.date = _f(description="last calendar day simulated")
    calendar: str = _f("XSHG", description="trading calendar name: 'XSHG' or 'business'")

    @model_validator(mode="after")
    def _ordered(self) -> TimeSpec:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) must not be before start ({self.start})")
        return self


class PopulationSpec(_Model):
    """The covered units, drawn once per scenario (the same population in every replicate)."""

    preset: str | None = _f(
        None, description="a coverage preset of carbonsim.market.population.COVERAGE"
    )
    n_units: int | None = _f(
        None, unit="units", description="number of units (overrides preset)", ge=1
    )
    total_emissions: float | None = _f(
        None, unit="t/yr", description="total baseline emissions (overrides preset)", gt=0
    )
    seed: int = _f(0, description="seed of the population draw (fixed across replicates)", ge=0)
    options: dict[str, Any] = _f(
        default_factory=dict,
        description="other keyword arguments of synthetic_population (e.g. intensity_gap_mean)",
    )

    @model_validator(mode="after")
    def _something(self) -> PopulationSpec:
        if self.preset is None and (self.n_units is None or self.total_emissions is None):
            raise ValueError("give either preset or both n_units and total_emissions")
        return self


class StageSpec(_Model):
    """An intermediate surrender deadline for a share of units."""

    date: dt.date = _f(description="date of the stage")
    share: float = _f(
        unit="share", description="share of units that must have surrendered", ge=0, le=1
    )


class PeriodSpec(_Model):
    """One compliance period: emission years, allocation, verification and the deadline."""

    name: str = _f(description="label of the period, e.g. '2021-2022'")
    emission_years: list[int] = _f(
        description="emission years covered (one vintage each)", min_length=1
    )
    pre_allocation_date: dt.date = _f(description="date the ex-ante pre-allocation is issued")
    verification_date: dt.date = _f(
        description="date verified emissions and the final (true-up) allocation are known"
    )
    deadline: dt.date = _f(description="surrender deadline (final stage)")
    stages: list[StageSpec] = _f(default_factory=list, description="earlier partial deadlines")
    pre_allocation_share: float = _f(
        0.7, unit="share", description="share of the basis pre-allocated ex ante", ge=0, le=1
    )
    allocation_rule: str = _f(
        "china_power_benchmark", description="allocation rule name (ALLOCATION_RULES)"
    )
    allocation_params: dict[str, Any] = _f(
        default_factory=dict, description="parameters passed to the allocation rule"
    )
    gap_cap_share: float | None = _f(
        0.20, unit="share", description="largest gap as share of verified emissions (None: no cap)"
    )
    gas_exemption: bool = _f(True, description="gas units' obligation capped at allocation")
    offset_limit_share: float = _f(
        0.05, unit="share", description="offsets usable as share of the obligation", ge=0, le=1
    )
    borrowing: bool = _f(False, description="2021-22 borrowing rule applies")
    banking_limit: bool = _f(False, description="2024-25 banking limit applies at the deadline")

    @model_validator(mode="after")
    def _dates(self) -> PeriodSpec:
        if sorted(self.emission_years) != self.emission_years or len(
            set(self.emission_years)
        ) != len(self.emission_years):
            raise ValueError(f"emission_years must be increasing, got {self.emission_years}")
        if not self.pre_allocation_date <= self.verification_date <= self.deadline:
            raise ValueError(
                "dates must satisfy pre_allocation_date <= verification_date <= deadline, got "
                f"{self.pre_allocation_date}, {self.verification_date}, {self.deadline}"
            )
        for st in self.stages:
            if not self.verification_date <= st.date <= self.deadline:
                raise ValueError(
                    f"stage date {st.date} must lie between verification_date "
                    f"{self.verification_date} and deadline {self.deadline}"
                )
        return self


class TradingSpec(_Model):
    """Exchange rules (ets-rules.md 'Trading')."""

    opening_price: float = _f(
        unit="currency/t", description="reference price of the first session", gt=0
    )
    tick: float = _f(0.01, unit="currency/t", description="price tick", gt=0)
    listed_band: float = _f(
        0.10, unit="share", description="listed price band around previous close", gt=0, le=1
    )
    block_band: float = _f(
        0.30, unit="share", description="block price band around previous close", gt=0, le=1
    )
    block_min_size: float = _f(100_000, unit="t", description="minimum block order size", ge=0)
    listed_max_size: float = _f(
        100_000, unit="t", description="listed orders are smaller than this", gt=0
    )


class OffsetSpec(_Model):
    """The offset-credit (CCER) market."""

    enabled: bool = _f(True, description="units may surrender offset credits")
    legacy_stock: float = _f(0.0, unit="t", description="legacy credits available to sell", ge=0)
    available_from: dt.date | None = _f(
        None, description="first day offsets can be bought (None: start)"
    )
    supply_cost: float = _f(
        20.0, unit="currency/t", description="median marginal cost of project owners' offers", gt=0
    )
    supply_cost_sigma: float = _f(0.3, description="lognormal spread of offer prices", ge=0)
    discount: float = _f(
        0.15,
        unit="share",
        description="buyers pay at most (1 - discount) x allowance price",
        ge=0,
        le=1,
    )
    session_interval: int = _f(
        5, unit="sessions", description="offset market clears every n sessions", ge=1
    )


class PenaltyChange(_Model):
    """A penalty regime in force from a date."""

    start: dt.date = _f(description="deadlines on or after this date use the regime")
    regime: str = _f(description="penalty regime name (PENALTY_REGIMES)")
    params: dict[str, Any] = _f(default_factory=dict, description="parameters of the regime")


class StrategySpec(_Model):
    """A trading strategy plug-in and its parameters."""

    name: str = _f(description="strategy name (STRATEGIES)")
    params: dict[str, Any] = _f(default_factory=dict, description="strategy parameters")


class BehaviourSpec(_Model):
    """How units form expectations, abate and trade."""

    strategies: list[StrategySpec] = _f(
        default_factory=lambda: [StrategySpec(name="compliance"), StrategySpec(name="noise")],
        description="strategies whose orders are pooled each session",
    )
    expectation_weight: float = _f(
        0.05,
        unit="share",
        description="weight of the latest close in the adaptive expected price",
        ge=0,
        le=1,
    )
    fundamental_weight: float = _f(
        0.5,
        unit="share",
        description="weight of the abatement-implied price in the expected price",
        ge=0,
        le=1,
    )
    discount_rate: float = _f(
        0.05,
        unit="1/yr",
        description="rate at which future scarcity is discounted when banking",
        ge=0,
    )
    reservation_price: float = _f(
        10.0,
        unit="currency/t",
        description="lowest expected price: the value of banking an allowance",
        ge=0,
    )
    forecast_sigma: float = _f(
        0.05, description="lognormal error of a unit's early estimate of its emissions", ge=0
    )
    abatement: bool = _f(
        True, description="units abate where marginal cost is below the expected price"
    )


class PolicySpec(_Model):
    """Price limits and triggered interventions."""

    price_floor: float | None = _f(None, unit="currency/t", description="lower price limit", ge=0)
    price_ceiling: float | None = _f(None, unit="currency/t", description="upper price limit", gt=0)


class Scenario(_Model):
    """A complete, validated scenario."""

    name: str = _f(description="short identifier")
    description: str = _f("", description="one line shown by 'carbonsim scenarios'")
    currency: str = _f("yuan", description="currency of prices and cash")
    sources: list[str] = _f(default_factory=list, description="sources of the numbers in this file")
    time: TimeSpec
    population: PopulationSpec
    periods: list[PeriodSpec] = _f(min_length=1, description="compliance periods in date order")
    trading: TradingSpec
    offsets: OffsetSpec = _f(default_factory=OffsetSpec, description="offset market")
    penalties: list[PenaltyChange] = _f(
        default_factory=lambda: [
            PenaltyChange(start=dt.date(1900, 1, 1), regime="china_2021_measures")
        ],
        description="penalty regimes by start date",
    )
    behaviour: BehaviourSpec = _f(default_factory=BehaviourSpec, description="behaviour")
    policy: PolicySpec = _f(default_factory=PolicySpec, description="policy instruments")
    calibration: dict[str, Any] = _f(
        default_factory=dict, description="provenance of fitted parameters (written by calibrate)"
    )

    @model_validator(mode="after")
    def _periods_in_order(self) -> Scenario:
        for a, b in zip(self.periods, self.periods[1:], strict=False):
            if b.deadline <= a.deadline:
                raise ValueError(f"periods must be in deadline order: {a.name!r} then {b.name!r}")
        return self

    def evolve(self, **changes: Any) -> Scenario:
        """A validated copy with top-level fields replaced."""
        data = self.model_dump()
        data.update(
            {k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in changes.items()}
        )
        return Scenario.model_validate(data)

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the scenario (first 16 hex digits)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file."""
    return Scenario.model_json_schema()


def _type_name(ann: Any) -> str:
    """Readable name of a type annotation: ``str``, ``float | None``, ``list[int]``."""
    if isinstance(ann, type) and not getattr(ann, "__args__", None):
        return ann.__name__
    return str(ann).replace("typing.", "").replace("datetime.", "").replace("NoneType", "None")


def reference_table() -> list[dict[str, str]]:
    """One row per field (dotted path, type, unit, default, description), for the docs."""
    rows: list[dict[str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            ann = info.annotation
            sub = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if sub is not None:
                walk(sub, path + ".")
                continue
            default = (
                "" if info.is_required() else repr(info.get_default(call_default_factory=True))
            )
            rows.append(
                {
                    "field": path,
                    "type": _type_name(ann),
                    "unit": str(extra.get("x-unit", "")),
                    "default": default,
                    "description": info.description or "",
                }
            )

    walk(Scenario, "")
    for sub_model, prefix in (
        (PeriodSpec, "periods[]."),
        (StageSpec, "periods[].stages[]."),
        (PenaltyChange, "penalties[]."),
        (StrategySpec, "behaviour.strategies[]."),
    ):
        walk(sub_model, prefix)
    return rows
