"""Hypothesis strategies for carbonsim inputs: order books, order streams, units, scenarios.

Every strategy draws *valid* input of one carbonsim entry point, shaped so that it can be
passed on directly:

- :func:`order_books`: ``call_auction(**book)`` (keys ``bid_price``, ``bid_qty``,
  ``ask_price``, ``ask_qty``, ``tick``);
- :func:`batched_books`: ``call_auction_batch(**batch)`` (keys ``market``, ``side``,
  ``price``, ``qty``, ``n_markets``, ``tick`` and optionally ``reference_price``);
- :func:`order_streams`: ``match_stream(**stream)`` (keys ``side``, ``price``, ``qty``,
  ``order_type``, ``cancel_of``, ``owner``, ``tick`` and optionally ``price_band``,
  ``band_mode``);
- :func:`unit_tables`: a :class:`~carbonsim.market.units.UnitTable`;
- :func:`scenario_documents`: a scenario as :func:`tomllib.loads` returns it (TOML types
  only), which :func:`carbonsim.scenario.scenario_from_dict` accepts.

The same dictionaries go to the assertion helpers, e.g.
``assert_clearing_invariants(call_auction(**book), **book)``.

This module needs hypothesis, which comes with the ``dev`` extra
(``pip install 'carbonsim[dev]'``); importing it without hypothesis raises
:class:`ImportError` saying so. :mod:`carbonsim.testing` itself imports without hypothesis.

Examples
--------
>>> from hypothesis import given
>>> from carbonsim.clearing import call_auction
>>> from carbonsim.testing import assert_clearing_invariants
>>> @given(order_books(max_orders=5))
... def test_my_auction(book):
...     assert_clearing_invariants(call_auction(**book), **book)
>>> test_my_auction()
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "carbonsim.testing strategies need hypothesis, a test-only dependency: "
        "pip install 'carbonsim[dev]'"
    ) from exc

from carbonsim.market.units import POWER_SUBTYPES, SECTORS, UnitTable

__all__ = [
    "TICKS",
    "batched_books",
    "order_books",
    "order_streams",
    "scenario_documents",
    "unit_tables",
]

#: Ticks drawn when a strategy gets ``tick=None``, currency per tonne.
TICKS: tuple[float, ...] = (0.01, 0.05, 0.25, 1.0)


def _check_count(name: str, value: int, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return value


def _check_range(name: str, lo: int, hi: int, floor: int = 0) -> tuple[int, int]:
    _check_count(f"{name} minimum", lo, floor)
    _check_count(f"{name} maximum", hi, floor)
    if lo > hi:
        raise ValueError(f"{name}: the minimum {lo} exceeds the maximum {hi}")
    return lo, hi


def _check_tick(tick: float | None) -> float | None:
    if tick is None:
        return None
    if isinstance(tick, bool) or not isinstance(tick, (int, float)) or not tick > 0:
        raise ValueError(
            f"tick must be a positive number or None (draw one of {TICKS}), got {tick!r}"
        )
    if not math.isfinite(tick):
        raise ValueError(f"tick must be finite, got {tick!r}")
    return float(tick)


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _ticks(tick: float | None) -> st.SearchStrategy[float]:
    return st.sampled_from(TICKS) if tick is None else st.just(tick)


def _quantities(integer: bool, max_qty: float, allow_zero: bool) -> st.SearchStrategy[float]:
    lo = 0 if allow_zero else 1
    if integer:
        return st.integers(lo, max(lo, int(max_qty))).map(float)
    low = 0.0 if allow_zero else min(1e-3, max_qty)
    return st.floats(low, max_qty, allow_nan=False, allow_infinity=False)


@st.composite
def _prices(
    draw: st.DrawFn, n: int, tick: float, mid: int, spread: int, on_grid: bool
) -> np.ndarray:
    """``n`` prices within ``spread`` ticks of the ``mid`` tick (all >= 1 tick)."""
    offsets = draw(st.lists(st.integers(-spread, spread), min_size=n, max_size=n))
    ticks = np.maximum(mid + np.asarray(offsets, dtype=np.int64), 1)
    if on_grid:
        return ticks * tick
    # off the grid by less than half a tick: the kernels must snap them back
    frac = draw(st.lists(st.floats(-0.45, 0.45), min_size=n, max_size=n))
    return (ticks + np.asarray(frac, dtype=np.float64)) * tick


@st.composite
def _order_books(
    draw: st.DrawFn,
    min_orders: int,
    max_orders: int,
    tick: float | None,
    mid_price: tuple[float, float],
    spread_ticks: int,
    integer_quantities: bool,
    max_qty: float,
    allow_zero_qty: bool,
    on_grid: bool,
) -> dict[str, Any]:
    t = draw(_ticks(tick))
    mid = draw(st.integers(max(1, round(mid_price[0] / t)), max(1, round(mid_price[1] / t))))
    qty = _quantities(integer_quantities, max_qty, allow_zero_qty)
    book: dict[str, Any] = {}
    for side in ("bid", "ask"):
        n = draw(st.integers(min_orders, max_orders))
        book[f"{side}_price"] = draw(_prices(n, t, mid, spread_ticks, on_grid))
        book[f"{side}_qty"] = np.asarray(
            draw(st.lists(qty, min_size=n, max_size=n)), dtype=np.float64
        )
    book["tick"] = t
    return book


def order_books(
    *,
    min_orders: int = 0,
    max_orders: int = 12,
    tick: float | None = 0.01,
    mid_price: tuple[float, float] = (10.0, 100.0),
    spread_ticks: int = 10,
    integer_quantities: bool = True,
    max_qty: float = 100.0,
    allow_zero_qty: bool = True,
    on_grid: bool = True,
) -> st.SearchStrategy[dict[str, Any]]:
    """Call-auction books: bid and ask prices and quantities.

    Prices cluster within ``spread_ticks`` ticks of a mid price drawn from ``mid_price``, so
    the two sides overlap often and many orders share a price (ties are where rationing
    rules differ).

    Parameters
    ----------
    min_orders, max_orders : int
        Number of orders on each side (drawn independently), ``0 <= min <= max``.
    tick : float or None
        Price step, currency per tonne; None draws one of :data:`TICKS` per example.
    mid_price : (float, float)
        Range of the mid price, currency per tonne.
    spread_ticks : int
        Largest distance of a price from the mid, in ticks.
    integer_quantities : bool
        Whole tonnes (the ledger's unit) when True, otherwise any float in ``[0, max_qty]``.
    max_qty : float
        Largest order quantity, tonnes.
    allow_zero_qty : bool
        Whether orders of quantity 0 occur.
    on_grid : bool
        Prices exactly on the tick grid when True; otherwise up to 0.45 tick off it.

    Returns
    -------
    SearchStrategy of dict
        Keys ``bid_price``, ``bid_qty``, ``ask_price``, ``ask_qty`` (float64 arrays) and
        ``tick``: ``call_auction(**book)`` clears it.
    """
    lo, hi = _check_range("orders", min_orders, max_orders)
    _check_count("spread_ticks", spread_ticks)
    mp = (
        _check_positive("mid_price[0]", mid_price[0]),
        _check_positive("mid_price[1]", mid_price[1]),
    )
    if mp[0] > mp[1]:
        raise ValueError(f"mid_price must be (low, high) with low <= high, got {mid_price!r}")
    return _order_books(
        lo,
        hi,
        _check_tick(tick),
        mp,
        spread_ticks,
        bool(integer_quantities),
        _check_positive("max_qty", max_qty),
        bool(allow_zero_qty),
        bool(on_grid),
    )


@st.composite
def _batched_books(
    draw: st.DrawFn,
    n_markets: tuple[int, int],
    max_orders: int,
    tick: float | None,
    mid_price: tuple[float, float],
    spread_ticks: int,
    integer_quantities: bool,
    max_qty: float,
    reference_prices: bool,
) -> dict[str, Any]:
    t = draw(_ticks(tick))
    m = draw(st.integers(*n_markets))
    lo_t, hi_t = max(1, round(mid_price[0] / t)), max(1, round(mid_price[1] / t))
    mids = np.asarray(draw(st.lists(st.integers(lo_t, hi_t), min_size=m, max_size=m)))
    n = draw(st.integers(0, max_orders))
    market = np.asarray(draw(st.lists(st.integers(0, m - 1), min_size=n, max_size=n)), np.int64)
    offsets = np.asarray(
        draw(st.lists(st.integers(-spread_ticks, spread_ticks), min_size=n, max_size=n)),
        np.int64,
    )
    qty = _quantities(integer_quantities, max_qty, True)
    batch: dict[str, Any] = {
        "market": market,
        "side": np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
        "price": np.maximum(mids[market] + offsets, 1) * t if n else np.zeros(0),
        "qty": np.asarray(draw(st.lists(qty, min_size=n, max_size=n)), dtype=np.float64),
        "n_markets": m,
        "tick": t,
    }
    if reference_prices:
        has = np.asarray(draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
        batch["reference_price"] = np.where(has, mids * t, np.nan)
    return batch


def batched_books(
    *,
    min_markets: int = 1,
    max_markets: int = 6,
    max_orders: int = 40,
    tick: float | None = 0.01,
    mid_price: tuple[float, float] = (10.0, 100.0),
    spread_ticks: int = 10,
    integer_quantities: bool = True,
    max_qty: float = 100.0,
    reference_prices: bool = False,
) -> st.SearchStrategy[dict[str, Any]]:
    """Many call-auction markets at once: market id, side, price and quantity per order.

    Each market has its own mid price; orders are spread over the markets at random, so
    some markets have no orders or one side only.

    Parameters
    ----------
    min_markets, max_markets : int
        Number of markets, ``1 <= min <= max``.
    max_orders : int
        Largest total number of orders over all markets.
    tick, mid_price, spread_ticks, integer_quantities, max_qty
        As in :func:`order_books`.
    reference_prices : bool
        Also draw ``reference_price`` per market (the mid price, or NaN for none).

    Returns
    -------
    SearchStrategy of dict
        Keys ``market`` (int64), ``side`` (bool, True = bid), ``price``, ``qty`` (float64),
        ``n_markets``, ``tick`` (and ``reference_price``): ``call_auction_batch(**batch)``.
    """
    _check_range("markets", min_markets, max_markets, floor=1)
    mp = (
        _check_positive("mid_price[0]", mid_price[0]),
        _check_positive("mid_price[1]", mid_price[1]),
    )
    if mp[0] > mp[1]:
        raise ValueError(f"mid_price must be (low, high) with low <= high, got {mid_price!r}")
    return _batched_books(
        (min_markets, max_markets),
        _check_count("max_orders", max_orders),
        _check_tick(tick),
        mp,
        _check_count("spread_ticks", spread_ticks),
        bool(integer_quantities),
        _check_positive("max_qty", max_qty),
        bool(reference_prices),
    )


@st.composite
def _order_streams(
    draw: st.DrawFn,
    max_events: int,
    tick: float | None,
    spread_ticks: int,
    max_qty: int,
    market_orders: bool,
    cancels: bool,
    owners: int,
    price_band: bool,
) -> dict[str, Any]:
    from carbonsim.clearing.order_book import BUY, SELL, OrderType

    t = draw(_ticks(tick))
    mid = draw(st.integers(spread_ticks + 1, spread_ticks + 10_000))
    kinds = [OrderType.LIMIT] * 6
    kinds += [OrderType.MARKET] if market_orders else []
    kinds += [OrderType.CANCEL] if cancels else []
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from([BUY, SELL]),
                st.integers(-spread_ticks, spread_ticks),
                st.integers(1, max_qty),
                st.sampled_from(kinds),
                st.integers(0, 10**6),  # cancel target, reduced modulo the row number
                st.integers(-1, owners - 1),
            ),
            max_size=max_events,
        )
    )
    side, price, qty, otype, cancel_of, owner = [], [], [], [], [], []
    for i, (s, off, q, kind, target, own) in enumerate(rows):
        if kind == OrderType.CANCEL and i == 0:
            kind = OrderType.LIMIT  # a cancel needs an earlier event
        side.append(s)
        price.append((mid + off) * t if kind == OrderType.LIMIT else float("nan"))
        qty.append(q if kind != OrderType.CANCEL else 0)
        otype.append(int(kind))
        cancel_of.append(target % i if kind == OrderType.CANCEL else -1)
        owner.append(own)
    stream: dict[str, Any] = {
        "side": np.asarray(side, dtype=np.int64),
        "price": np.asarray(price, dtype=np.float64),
        "qty": np.asarray(qty, dtype=np.int64),
        "order_type": np.asarray(otype, dtype=np.int64),
        "cancel_of": np.asarray(cancel_of, dtype=np.int64),
        "owner": np.asarray(owner, dtype=np.int64),
        "tick": t,
    }
    if price_band and draw(st.booleans()):
        lo = draw(st.integers(-spread_ticks, spread_ticks))
        hi = draw(st.integers(lo, spread_ticks))
        stream["price_band"] = ((mid + lo) * t, (mid + hi) * t)
        stream["band_mode"] = draw(st.sampled_from(["reject", "clip"]))
    return stream


def order_streams(
    *,
    max_events: int = 40,
    tick: float | None = 0.01,
    spread_ticks: int = 6,
    max_qty: int = 20,
    market_orders: bool = True,
    cancels: bool = True,
    owners: int = 4,
    price_band: bool = True,
) -> st.SearchStrategy[dict[str, Any]]:
    """Event streams for the continuous order book: limit and market orders and cancels.

    Limit prices lie within ``spread_ticks`` ticks of a mid price, so orders cross often
    and queue at shared prices; a cancel names an earlier event (possibly one that is
    already filled or cancelled, which the book must ignore and report).

    Parameters
    ----------
    max_events : int
        Largest number of events.
    tick : float or None
        Price step; None draws one of :data:`TICKS`.
    spread_ticks : int
        Largest distance of a limit price from the mid, ticks.
    max_qty : int
        Largest order quantity, whole tonnes (>= 1).
    market_orders, cancels : bool
        Whether market orders and cancels occur (about one event in eight each).
    owners : int
        Owners are drawn from ``-1`` (none) to ``owners - 1``.
    price_band : bool
        Whether some streams carry a ``price_band`` (and ``band_mode``).

    Returns
    -------
    SearchStrategy of dict
        Keys ``side`` (+1 buy, -1 sell), ``price`` (NaN on market and cancel rows), ``qty``,
        ``order_type`` (:class:`~carbonsim.clearing.OrderType` codes), ``cancel_of``,
        ``owner``, ``tick`` (and ``price_band``, ``band_mode``): ``match_stream(**stream)``.
    """
    return _order_streams(
        _check_count("max_events", max_events),
        _check_tick(tick),
        _check_count("spread_ticks", spread_ticks),
        _check_count("max_qty", max_qty, 1),
        bool(market_orders),
        bool(cancels),
        _check_count("owners", owners, 1),
        bool(price_band),
    )


def _fl(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def _unit_tables(
    draw: st.DrawFn, min_units: int, max_units: int, sectors: tuple[str, ...], max_steps: int
) -> UnitTable:
    n = draw(st.integers(min_units, max_units))

    def col(strategy: st.SearchStrategy[Any]) -> np.ndarray:
        return np.asarray(draw(st.lists(strategy, min_size=n, max_size=n)))

    sector = col(st.sampled_from(sectors)).astype(object)
    power = sector == "power"
    subtype = np.where(power, col(st.sampled_from(POWER_SUBTYPES)).astype(object), "none")
    with_heat = power | (sector == "heat")
    k = draw(st.integers(0, max_steps))
    cost = np.sort(
        np.asarray(
            draw(
                st.lists(st.lists(_fl(0.0, 500.0), min_size=k, max_size=k), min_size=n, max_size=n)
            ),
            dtype=np.float64,
        ).reshape(n, k),
        axis=1,
    )
    raw = np.asarray(
        draw(st.lists(st.lists(_fl(0.0, 1.0), min_size=k, max_size=k), min_size=n, max_size=n)),
        dtype=np.float64,
    ).reshape(n, k)
    total = col(_fl(0.0, 1.0)).astype(np.float64)
    row_sum = raw.sum(axis=1, keepdims=True)
    fraction = np.divide(raw, row_sum, out=np.zeros((n, k)), where=row_sum > 0)
    # shares summing to ``total`` (a hair under, so float rounding cannot pass 1)
    share = fraction * (total * (1.0 - 1e-9))[:, None]
    return UnitTable.create(
        sector,
        subtype=subtype,
        names=[f"u{i:04d}" for i in range(n)],
        electricity_mwh=np.where(power, col(_fl(1e4, 1e7)), 0.0),
        heat_gj=np.where(with_heat, col(_fl(0.0, 1e7)), 0.0),
        product_t=np.where(power, 0.0, col(_fl(1e3, 1e7))),
        intensity_electricity=np.where(power, col(_fl(0.3, 1.2)), 0.0),
        intensity_heat=np.where(with_heat, col(_fl(0.05, 0.15)), 0.0),
        intensity_product=np.where(power, 0.0, col(_fl(0.1, 3.0))),
        growth=col(_fl(-0.1, 0.1)),
        intensity_growth=col(_fl(-0.05, 0.02)),
        sigma_output=col(_fl(0.0, 0.2)),
        sigma_intensity=col(_fl(0.0, 0.1)),
        mac_form=col(st.sampled_from(["linear", "steps"])).astype(object),
        mac_slope=col(_fl(0.01, 100.0)),
        mac_max_share=col(_fl(0.0, 0.5)),
        mac_step_cost=cost,
        mac_step_share=share,
        pollutant_factors=np.asarray(
            draw(st.lists(st.lists(_fl(0.0, 5.0), min_size=3, max_size=3), min_size=n, max_size=n)),
            dtype=np.float64,
        ).reshape(n, 3),
        capacity_mw=np.where(power, col(_fl(50.0, 2000.0)), 0.0),
        load_factor=np.where(power, col(_fl(0.0, 1.0)), 0.0),
    )


def unit_tables(
    *,
    min_units: int = 1,
    max_units: int = 20,
    sectors: Sequence[str] | None = None,
    max_steps: int = 3,
) -> st.SearchStrategy[UnitTable]:
    """Valid :class:`~carbonsim.market.units.UnitTable` objects of random sectors and sizes.

    Power units get a power sub-type, electricity (and some heat) with their intensities,
    capacity and load factor; heat units heat; other sectors product output. Every unit has
    growth rates, shock sigmas, a linear and a step MAC curve (``max_steps`` steps at most,
    costs non-decreasing, shares summing to at most 1, the form drawn per unit) and
    co-pollutant factors, all within their valid ranges.

    Parameters
    ----------
    min_units, max_units : int
        Number of units ``N``, ``1 <= min <= max``.
    sectors : sequence of str, optional
        Sectors to draw from (names of :data:`~carbonsim.market.units.SECTORS`); all of
        them by default.
    max_steps : int
        Largest number of steps ``K`` of the step MAC curve (the same ``K`` for all units).

    Returns
    -------
    SearchStrategy of UnitTable
    """
    _check_range("units", min_units, max_units, floor=1)
    chosen = tuple(SECTORS if sectors is None else sectors)
    unknown = [s for s in chosen if s not in SECTORS]
    if unknown or not chosen:
        raise ValueError(
            f"sectors must be a non-empty selection of {', '.join(SECTORS)}; got {list(chosen)!r}"
        )
    return _unit_tables(min_units, max_units, chosen, _check_count("max_steps", max_steps))


# ------------------------------------------------------------------------------ scenarios


def _maybe(
    draw: st.DrawFn, table: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]
) -> None:
    """Replace ``table[key]`` by a draw from ``strategy`` in about half the examples."""
    if draw(st.booleans()):
        table[key] = draw(strategy)


@st.composite
def _scenario_documents(
    draw: st.DrawFn, base: dict[str, Any], min_units: int, max_units: int, max_days: int | None
) -> dict[str, Any]:
    import copy

    doc = copy.deepcopy(base)
    pop = doc["population"]
    n = draw(st.integers(min_units, max_units))
    pop["n_units"] = n
    if draw(st.booleans()) or "total_emissions" not in pop:
        # at least the national inclusion threshold (26,000 t/yr) per unit on average
        pop["total_emissions"] = n * draw(_fl(1.0e5, 5.0e6))
    _maybe(draw, pop, "seed", st.integers(0, 2**32 - 1))
    _maybe(draw, doc, "description", st.text(max_size=40))

    time = doc["time"]
    start: dt.date = time["start"]
    last = max((p["deadline"] for p in doc["periods"]), default=time["end"])
    span = (max(last, time["end"]) - start).days
    if max_days is not None:
        span = min(span, max_days)
    if span >= 1 and draw(st.booleans()):
        time["end"] = start + dt.timedelta(days=draw(st.integers(1, span)))
    _maybe(draw, time, "calendar", st.sampled_from(["XSHG", "business"]))

    tr = doc["trading"]
    _maybe(draw, tr, "opening_price", _fl(5.0, 200.0))
    _maybe(draw, tr, "tick", st.sampled_from([0.01, 0.05, 0.1]))
    _maybe(draw, tr, "listed_band", _fl(0.01, 1.0))
    _maybe(draw, tr, "block_band", _fl(0.01, 1.0))
    _maybe(draw, tr, "block_min_size", _fl(0.0, 1.0e6))
    _maybe(draw, tr, "listed_max_size", _fl(1.0, 1.0e6))

    for p in doc["periods"]:
        _maybe(draw, p, "pre_allocation_share", _fl(0.0, 1.0))
        _maybe(draw, p, "offset_limit_share", _fl(0.0, 1.0))
        _maybe(draw, p, "gap_cap_share", _fl(0.0, 1.0))
        _maybe(draw, p, "gas_exemption", st.booleans())
        _maybe(draw, p, "auctions_per_period", st.integers(1, 12))
        _maybe(draw, p, "auction_reserve_price", _fl(0.0, 100.0))
        lo = p["pre_allocation_date"]
        hi = min([p["deadline"], *(s["date"] for s in p.get("stages", []))])
        if hi > lo and draw(st.booleans()):
            p["verification_date"] = lo + dt.timedelta(days=draw(st.integers(0, (hi - lo).days)))

    off = doc.setdefault("offsets", {})
    _maybe(draw, off, "enabled", st.booleans())
    _maybe(draw, off, "legacy_stock", _fl(0.0, 5.0e6))
    _maybe(draw, off, "supply_cost", _fl(1.0, 100.0))
    _maybe(draw, off, "supply_cost_sigma", _fl(0.0, 1.0))
    _maybe(draw, off, "discount", _fl(0.0, 1.0))
    _maybe(draw, off, "session_interval", st.integers(1, 20))

    beh = doc.setdefault("behaviour", {})
    _maybe(draw, beh, "expectation_weight", _fl(0.0, 1.0))
    _maybe(draw, beh, "fundamental_weight", _fl(0.0, 1.0))
    _maybe(draw, beh, "discount_rate", _fl(0.0, 0.2))
    _maybe(draw, beh, "reservation_price", _fl(0.0, 50.0))
    _maybe(draw, beh, "forecast_sigma", _fl(0.0, 0.3))
    _maybe(draw, beh, "abatement", st.booleans())
    _maybe(draw, beh, "auction_participation", _fl(0.0, 1.0))
    _maybe(draw, beh, "auction_bid_sigma", _fl(0.0, 0.3))

    pol = doc.setdefault("policy", {})
    if draw(st.booleans()):
        floor = draw(_fl(0.0, 60.0))
        pol["price_floor"] = floor
        if draw(st.booleans()):
            pol["price_ceiling"] = floor + draw(_fl(1.0, 200.0))
    elif draw(st.booleans()):
        pol["price_ceiling"] = draw(_fl(1.0, 200.0))
    return doc


def scenario_documents(
    *,
    base: str = "china-national-tiny",
    min_units: int = 2,
    max_units: int = 60,
    max_days: int | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid scenario documents: a built-in scenario file with values perturbed in range.

    Starts from the built-in file as parsed TOML and redraws, each in about half of the
    examples, values of the population (size, emissions, seed), the time window (end,
    calendar), trading rules (opening price, tick, bands, sizes), every period (shares,
    auction settings, verification date between pre-allocation and the first stage or
    deadline), offsets, behaviour and policy limits (floor below ceiling), each within its
    valid range. The result holds TOML types only (no ``None``; dates as
    :class:`datetime.date`), so it can be written as a TOML file as well as passed to
    :func:`~carbonsim.scenario.scenario_from_dict`, which accepts it.

    Parameters
    ----------
    base : str
        Name of the built-in scenario to perturb (see
        :func:`carbonsim.scenario.list_scenarios`).
    min_units, max_units : int
        Range of ``population.n_units``.
    max_days : int, optional
        Largest simulated window after ``time.start`` when the end date is redrawn, days
        (keeps runs short); by default up to the last deadline.

    Returns
    -------
    SearchStrategy of dict
    """
    import sys

    from carbonsim.scenario.loader import builtin_files

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    files = builtin_files()
    if base not in files:
        raise ValueError(
            f"base must name a built-in scenario, got {base!r}; valid names: "
            + ", ".join(sorted(files))
        )
    _check_range("units", min_units, max_units, floor=1)
    if max_days is not None:
        _check_count("max_days", max_days, 1)
    document = tomllib.loads(files[base].read_text(encoding="utf-8"))
    return _scenario_documents(document, min_units, max_units, max_days)
