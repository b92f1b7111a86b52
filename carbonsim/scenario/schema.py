"""The scenario schema: the single source of truth for the scenario file format.

Every field is declared once here with its type, unit, default and description. Validation,
the reference table in the docs (:func:`reference_table`) and the JSON Schema
(:func:`json_schema`) all come from these declarations. Scenarios are immutable
(``frozen``); variants are copies with changes (:meth:`Scenario.evolve`,
:func:`carbonsim.scenario.with_overrides`). Unknown keys are errors, so a typo in a file
never passes silently.

Units: quantities of allowances, credits and emissions are tonnes CO2e (``t``); prices are
currency per tonne (``currency/t``, yuan for the Chinese markets); dates are ISO dates.

Values are taken as written, never converted from another kind: a number field refuses
text (``"48.0"``) and booleans, a true/false field refuses numbers and text (``1``,
``"yes"``), a date field refuses numbers; a whole number is a valid value of a decimal
field (``tick = 1``). Quantities are at most :data:`MAX_TONNES`, prices at most
:data:`MAX_PRICE` and calendar years lie in ``[MIN_YEAR, MAX_YEAR]``, so every quantity
fits the engine's whole-tonne int64 arithmetic and every price its integer ticks. Across
fields: every compliance period overlaps the simulated window, no emission year belongs to
two periods, and the tick is at most a tenth of the opening price.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import numbers
import types
import typing
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "MAX_PRICE",
    "MAX_TONNES",
    "MAX_YEAR",
    "MIN_TICK",
    "MIN_YEAR",
    "AuctionSpec",
    "BandTriggerSpec",
    "BehaviourSpec",
    "CalibrationSpec",
    "MSRSpec",
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
    "reference_markdown",
    "reference_page",
    "reference_table",
]


#: Largest quantity of any field in tonnes (allowances, credits, emissions per year): a
#: thousand gigatonnes, about twenty times the world's annual emissions. Whole-tonne
#: holdings and their sums over units and years stay far below the int64 limit (1e19 t
#: of legacy credits once overflowed it) and exact in float64.
MAX_TONNES = 1e12
#: Largest price of any field, currency per tonne.
MAX_PRICE = 1e9
#: Smallest price tick, currency per tonne: ``MAX_PRICE / MIN_TICK`` ticks stay below the
#: clearing kernels' limit of ``2**52`` ticks.
MIN_TICK = 1e-6
#: Calendar years (emission years, vintages) lie in ``[MIN_YEAR, MAX_YEAR]``.
MIN_YEAR, MAX_YEAR = 1000, 9999
#: Largest count of sessions, auctions or moving-average days in one setting.
_MAX_COUNT = 100_000


def _f(default: Any = ..., *, unit: str = "", description: str, **kw: Any) -> Any:
    """A field with its unit recorded in the JSON Schema (``x-unit``).

    Fields in tonnes get ``le=MAX_TONNES`` and fields in currency per tonne
    ``le=MAX_PRICE`` unless they set a bound of their own.
    """
    extra: dict[str, Any] = {"x-unit": unit} if unit else {}
    if "le" not in kw and "lt" not in kw:
        if unit in ("t", "t/yr"):
            kw["le"] = MAX_TONNES
        elif unit == "currency/t":
            kw["le"] = MAX_PRICE
    return Field(default, description=description, json_schema_extra=extra, **kw)


def _year(default: Any = ..., *, description: str) -> Any:
    """A calendar-year field (``[MIN_YEAR, MAX_YEAR]``)."""
    return _f(default, description=description, ge=MIN_YEAR, le=MAX_YEAR)


def _kind_error(value: Any, ann: Any) -> str | None:
    """Why ``value`` must not be converted to the type ``ann``, or None.

    Pydantic's lax mode would turn the text ``"48.0"`` into a number and ``1`` or ``"yes"``
    into ``True``; a scenario file says what it means, so those are refused here. Lists and
    tables are checked item by item; anything else is left to pydantic.
    """
    args = typing.get_args(ann)
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return None
        ann, args, origin = inner[0], typing.get_args(inner[0]), typing.get_origin(inner[0])
    if ann in (float, int):
        what = "a number" if ann is float else "a whole number"
        if isinstance(value, (str, bytes)):
            return f"must be {what}, not the text {value!r}: write it without quotes"
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return f"must be {what}, not the boolean {value!r}"
        return None
    if ann is bool:
        if isinstance(value, (str, bytes, numbers.Number)) and not isinstance(value, bool):
            if type(value).__name__ == "bool_":
                return None
            return f"must be true or false (a TOML boolean), not {value!r}"
        return None
    if ann is dt.date:
        if isinstance(value, numbers.Number):
            return f"must be a date (YYYY-MM-DD), not the number {value!r}"
        return None
    if origin is list and len(args) == 1 and isinstance(value, list):
        for i, item in enumerate(value):
            why = _kind_error(item, args[0])
            if why is not None:
                return f"item {i} {why}"
        return None
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        for key, item in value.items():
            why = _kind_error(item, args[1])
            if why is not None:
                return f"entry {key!r} {why}"
    return None


def _problem(field: str, value: Any, message: str) -> PydanticCustomError:
    """An error of a cross-field check that names its field: the loader reports it under
    ``field`` with ``value`` (pydantic puts errors of a model validator at the model)."""
    return PydanticCustomError(
        "scenario", "{message}", {"message": message, "field": field, "value": value}
    )


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_coercion(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse text as a number, numbers as booleans or dates (see :func:`_kind_error`)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is not None:
            why = _kind_error(value, field.annotation)
            if why is not None:
                raise PydanticCustomError("kind", "{why}", {"why": why})
        return value


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
    auction_remainder: bool = _f(
        False,
        description="auction the part of an absolute cap not allocated free (absolute_cap rule)",
    )
    auctions_per_period: int = _f(
        4,
        unit="auctions",
        description="auctions over which the remainder is spread",
        ge=1,
        le=_MAX_COUNT,
    )
    auction_reserve_price: float = _f(
        0.0, unit="currency/t", description="reserve price of the remainder auctions", ge=0
    )
    borrowing: bool = _f(False, description="2021-22 borrowing rule applies")
    banking_limit: bool = _f(False, description="2024-25 banking limit applies at the deadline")

    @field_validator("emission_years", mode="after")
    @classmethod
    def _calendar_years(cls, years: list[int]) -> list[int]:
        bad = [y for y in years if not MIN_YEAR <= y <= MAX_YEAR]
        if bad:
            raise ValueError(
                f"emission years must be calendar years in [{MIN_YEAR}, {MAX_YEAR}], got {bad[0]}"
            )
        return years

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
    """Exchange rules (docs/rules.md#exchange)."""

    opening_price: float = _f(
        unit="currency/t", description="reference price of the first session", gt=0
    )
    tick: float = _f(0.01, unit="currency/t", description="price tick", ge=MIN_TICK)
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

    @model_validator(mode="after")
    def _tick_fits_prices(self) -> TradingSpec:
        if self.tick * 10 > self.opening_price:
            raise _problem(
                "tick",
                self.tick,
                f"must be at most a tenth of opening_price ({self.opening_price}): prices "
                "are whole ticks, so a coarser tick rounds them to a few values or to 0; "
                f"use a tick of at most {self.opening_price / 10:g}",
            )
        return self


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
    bid_sigma: float = _f(
        0.05,
        description="lognormal scatter of units' offset bids around (1 - discount) x the "
        "expected allowance price",
        ge=0,
        le=1,
    )
    session_interval: int = _f(
        5, unit="sessions", description="offset market clears every n sessions", ge=1, le=_MAX_COUNT
    )
    projects: int = _f(
        0,
        unit="projects",
        description="synthetic post-relaunch CCER projects issuing credits",
        ge=0,
    )
    project_seed: int = _f(
        0, description="seed of the project draw (fixed across replicates)", ge=0
    )
    first_issuance: dt.date | None = _f(
        None, description="no new credits are issued before this date (e.g. 2025-03-01)"
    )
    legacy_last_year: int | None = _year(
        None, description="last compliance year for which legacy credits count (None: always)"
    )


class AuctionSpec(_Model):
    """A government sealed-bid uniform-price auction of allowances (paid allocation)."""

    date: dt.date = _f(description="auction date (held after that day's session)")
    vintage: int = _year(description="vintage of the allowances sold")
    supply: float = _f(unit="t", description="allowances offered", gt=0)
    reserve_price: float = _f(0.0, unit="currency/t", description="lowest acceptable bid", ge=0)


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
    choke_price: float = _f(
        1000.0,
        unit="currency/t",
        description=(
            "backstop price: no unit bids above it, and the fundamental price never exceeds "
            "it (the cost at which units would rather not comply)"
        ),
        gt=0,
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
    auction_participation: float = _f(
        0.8,
        unit="share",
        description="probability a short unit bids in a government auction",
        ge=0,
        le=1,
    )
    auction_bid_sigma: float = _f(
        0.05, description="lognormal spread of auction bids around the expected price", ge=0
    )


class BandTriggerSpec(_Model):
    """Beijing's price band: sustained prices outside it trigger an auction or a buy-back."""

    low: float = _f(20.0, unit="currency/t", description="lower edge of the band", ge=0)
    high: float = _f(150.0, unit="currency/t", description="upper edge of the band", gt=0)
    window: int = _f(
        10, unit="sessions", description="moving-average window of closes", ge=1, le=_MAX_COUNT
    )
    min_days: int = _f(
        10,
        unit="sessions",
        description="consecutive sessions outside the band to trigger",
        ge=1,
        le=_MAX_COUNT,
    )
    quantity: float = _f(unit="t", description="allowances auctioned or bought back", gt=0)


class MSRSpec(_Model):
    """EU Market Stability Reserve (docs/rules.md#msr-intake, docs/rules.md#msr-invalidation)."""

    upper: float = _f(833e6, unit="t", description="TNAC above which allowances are withheld", gt=0)
    lower: float = _f(400e6, unit="t", description="TNAC below which allowances are released", ge=0)
    rate: float = _f(0.24, unit="share", description="share of TNAC withheld", ge=0, le=1)
    release: float = _f(100e6, unit="t", description="allowances released below lower", ge=0)
    buffer_upper: float = _f(
        1096e6, unit="t", description="TNAC up to which the intake is TNAC - upper", gt=0
    )
    invalidation_threshold: float = _f(
        400e6, unit="t", description="MSR holdings above this are invalidated", ge=0
    )


class PolicySpec(_Model):
    """Price limits and triggered interventions."""

    band_trigger: BandTriggerSpec | None = _f(
        None, description="price band with triggered government auction or buy-back"
    )
    msr: MSRSpec | None = _f(None, description="market stability reserve adjusting auctions")

    @model_validator(mode="after")
    def _limits_ordered(self) -> PolicySpec:
        if (
            self.price_floor is not None
            and self.price_ceiling is not None
            and self.price_floor > self.price_ceiling
        ):
            raise ValueError(
                f"price_floor ({self.price_floor}) must not exceed price_ceiling "
                f"({self.price_ceiling})"
            )
        return self

    price_floor: float | None = _f(None, unit="currency/t", description="lower price limit", ge=0)
    price_ceiling: float | None = _f(None, unit="currency/t", description="upper price limit", gt=0)


def _plain(value: Any) -> Any:
    """``value`` with dates as ISO strings, so provenance survives a JSON round trip."""
    if isinstance(value, (dt.date, dt.time)):  # dt.datetime is a dt.date
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class CalibrationSpec(_Model):
    """Behaviour parameters fitted to calibration targets, and how they were fitted.

    Written by ``carbonsim calibrate`` (:mod:`carbonsim.calibration`). When a scenario file
    is loaded, ``fitted`` is applied as dotted-path overrides on top of the values written in
    the rest of the file (those are the priors the fit started from); see
    :func:`carbonsim.scenario.load_scenario`.
    """

    parameters: dict[str, list[float]] = _f(
        default_factory=dict,
        description="dotted path -> [lower, upper] bounds of each parameter the fit may move",
    )
    fitted: dict[str, float] = _f(
        default_factory=dict,
        description="dotted path -> fitted value, applied as an override when the file is loaded",
    )
    provenance: dict[str, Any] = _f(
        default_factory=dict,
        description="how the values were fitted: command, date, carbonsim version, seed, "
        "replicates, objective, simulated moments against their targets",
    )

    @field_validator("provenance", mode="before")
    @classmethod
    def _provenance_plain(cls, value: Any) -> Any:
        return _plain(value) if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationSpec:
        for path, bounds in self.parameters.items():
            if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds):
                raise ValueError(
                    f"parameters.{path}: bounds must be two finite numbers [lower, upper], "
                    f"got {bounds}"
                )
            if not bounds[0] < bounds[1]:
                raise ValueError(f"parameters.{path}: lower must be below upper, got {bounds}")
        for path, value in self.fitted.items():
            if not math.isfinite(value):
                raise ValueError(f"fitted.{path}: must be a finite number, got {value}")
            if path in self.parameters:
                lo, hi = self.parameters[path]
                if not lo <= value <= hi:
                    raise ValueError(f"fitted.{path}: {value} lies outside its bounds [{lo}, {hi}]")
        return self


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
    auctions: list[AuctionSpec] = _f(
        default_factory=list, description="government auctions of allowances (paid allocation)"
    )
    calibration: CalibrationSpec = _f(
        default_factory=CalibrationSpec,
        description="fitted behaviour parameters and their provenance (written by calibrate)",
    )

    @model_validator(mode="after")
    def _periods_in_order(self) -> Scenario:
        for a, b in zip(self.periods, self.periods[1:], strict=False):
            if b.deadline <= a.deadline:
                raise ValueError(f"periods must be in deadline order: {a.name!r} then {b.name!r}")
        return self

    @model_validator(mode="after")
    def _periods_in_window(self) -> Scenario:
        """Every period overlaps the simulated window: a period after it would be allocated
        and penalised with no session to trade in, one before it would never run."""
        start, end = self.time.start, self.time.end
        for i, p in enumerate(self.periods):
            if p.pre_allocation_date > end:
                raise _problem(
                    f"periods.{i}.pre_allocation_date",
                    p.pre_allocation_date,
                    f"period {p.name!r} lies after the simulated window: it is allocated "
                    f"after time.end ({end}), so its units could not trade before its "
                    "deadline and would all be penalised; extend time.end or remove the period",
                )
            if p.deadline < start:
                raise _problem(
                    f"periods.{i}.deadline",
                    p.deadline,
                    f"period {p.name!r} lies before the simulated window: its deadline is "
                    f"before time.start ({start}); move time.start back or remove the period",
                )
        return self

    @model_validator(mode="after")
    def _years_once(self) -> Scenario:
        """An emission year belongs to one period (else its emissions count twice)."""
        owner: dict[int, int] = {}
        for i, p in enumerate(self.periods):
            for year in p.emission_years:
                if year in owner:
                    j = owner[year]
                    raise _problem(
                        f"periods.{i}.emission_years",
                        p.emission_years,
                        f"emission year {year} is already in periods.{j} "
                        f"({self.periods[j].name!r}): its emissions would be counted twice; "
                        "give each emission year to one period",
                    )
                owner[year] = i
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


def _submodel(ann: Any) -> type[BaseModel] | None:
    """The model inside ``ann`` (``Model`` or ``Model | None``), else None."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def reference_table() -> list[dict[str, str]]:
    """One row per field (dotted path, type, unit, default, description), for the docs.

    Nested tables are flattened (``time.start``); optional tables too
    (``policy.band_trigger.high``); lists of tables are written ``periods[].name``.
    """
    rows: list[dict[str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            ann = info.annotation
            sub = _submodel(ann)
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if sub is not None:
                walk(sub, path + ".")
                continue
            default = (
                "" if info.is_required() else repr(info.get_default(call_default_factory=True))
            )
            if len(default) > 60:
                default = "see description"
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
        (AuctionSpec, "auctions[]."),
    ):
        walk(sub_model, prefix)
    return rows


def reference_markdown() -> str:
    """The field reference as a markdown table (``carbonsim schema --markdown``)."""
    keys = ["field", "type", "unit", "default", "description"]
    lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    for row in reference_table():
        cells = [row[k].replace("|", "\\|").replace("\n", " ") for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_REFERENCE_HEADER = """# Scenario file reference

Every field of a scenario file, generated from the schema (`carbonsim/scenario/schema.py`);
`carbonsim schema --markdown` prints the same table and a test checks that this page matches
it. Units: t = tonnes CO2e; currency/t is in the scenario's `currency`. Nested tables are
written `time.start`, lists of tables `periods[].name`. Regenerate this page with

```bash
python -c "from carbonsim.scenario.schema import reference_page; \\
open('docs/scenario-reference.md', 'w').write(reference_page())"
```

"""


def reference_page() -> str:
    """The scenario reference page of the docs (``docs/scenario-reference.md``)."""
    return _REFERENCE_HEADER + reference_markdown() + "\n"
