"""Assertion helpers: clearing invariants, ledger conservation, identical results.

Every helper raises :class:`AssertionError` with a message naming the invariant, the order,
account or cell that breaks it and the values involved; on success it returns quietly (or
returns the evidence, see :func:`assert_ledger_conserved`). They need numpy and pandas only,
never hypothesis, so they can be used in any test suite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from carbonsim.clearing import price_to_ticks
from carbonsim.clearing.ticks import snap_down, snap_up

if TYPE_CHECKING:
    import pandas as pd

    from carbonsim.clearing import CallAuctionBatchResult, CallAuctionResult
    from carbonsim.market.ledger import Ledger, LedgerReport
    from carbonsim.results import Result

__all__ = [
    "assert_batch_clearing_invariants",
    "assert_clearing_invariants",
    "assert_ledger_conserved",
    "assert_results_equal",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Sums of whole quantities below this are exact in float64.
_EXACT_FLOAT = float(2**53)
# Relative tolerance of sums of fractional quantities (float64 rounding of a few additions).
_RTOL = 1e-9


def _py(value: Any) -> Any:
    """A numpy scalar (or a tuple of them) as the plain Python value, for messages."""
    if isinstance(value, tuple):
        return tuple(_py(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def _fail(what: str, detail: str) -> AssertionError:
    return AssertionError(f"clearing invariant violated ({what}): {detail}")


def _effective_ticks(
    price: FloatArray,
    tick: float,
    band: tuple[int, int] | None,
    band_mode: str,
    rejected: BoolArray,
    qty: FloatArray,
) -> tuple[IntArray, FloatArray]:
    """Order ticks and quantities as the auction sees them after the band."""
    ticks = price_to_ticks(price, tick)
    if band is None:
        return ticks, qty
    lo, hi = band
    if band_mode == "clip":
        return np.clip(ticks, lo, hi), qty
    return ticks, np.where(rejected, 0.0, qty)


def _close(a: float, b: float, scale: float, exact: bool) -> bool:
    if exact:
        return a == b
    return abs(a - b) <= _RTOL * max(1.0, scale)


def _check_market(
    label: str,
    *,
    price_tick: int | None,
    volume: float,
    imbalance: float,
    executable: bool,
    bid_fill: FloatArray,
    ask_fill: FloatArray,
    bid_rejected: BoolArray,
    ask_rejected: BoolArray,
    bid_price: FloatArray,
    bid_qty: FloatArray,
    ask_price: FloatArray,
    ask_qty: FloatArray,
    tick: float,
    band: tuple[int, int] | None,
    band_mode: str,
) -> None:
    """The invariants of one call auction (``label`` prefixes the messages)."""
    for name, fill, qty in (("bid", bid_fill, bid_qty), ("ask", ask_fill, ask_qty)):
        if fill.shape != qty.shape:
            raise _fail(
                "shapes", f"{label}{name}_fill has shape {fill.shape}, {name}_qty {qty.shape}"
            )
    if band is not None and band_mode == "reject":
        for name, rej, price in (
            ("bid", bid_rejected, bid_price),
            ("ask", ask_rejected, ask_price),
        ):
            ticks = price_to_ticks(price, tick)
            outside = (ticks < band[0]) | (ticks > band[1])
            if not np.array_equal(rej, outside):
                i = int(np.flatnonzero(rej != outside)[0])
                raise _fail(
                    "band rejection",
                    f"{label}{name} {i} at {_py(price[i])!r} (band ticks {band}) has "
                    f"{name}_rejected = {bool(rej[i])}",
                )
    elif bid_rejected.any() or ask_rejected.any():
        raise _fail(
            "band rejection", f"{label}orders are flagged rejected without a rejecting band"
        )
    bt, bq = _effective_ticks(bid_price, tick, band, band_mode, bid_rejected, bid_qty)
    at, aq = _effective_ticks(ask_price, tick, band, band_mode, ask_rejected, ask_qty)

    # 1. 0 <= fill <= (effective) quantity
    for name, fill, qty in (("bid", bid_fill, bq), ("ask", ask_fill, aq)):
        bad = ~((fill >= 0) & (fill <= qty))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(
                "0 <= fill <= qty",
                f"{label}{name}_fill[{i}] = {_py(fill[i])!r} with effective {name}_qty[{i}] = "
                f"{_py(qty[i])!r}",
            )
    whole = bool(
        np.array_equal(bq, np.rint(bq))
        and np.array_equal(aq, np.rint(aq))
        and bq.sum() < _EXACT_FLOAT
        and aq.sum() < _EXACT_FLOAT
    )
    scale = float(max(bq.sum(), aq.sum(), 1.0))

    # 2. each side's fills sum to the volume
    for name, fill in (("bid", bid_fill), ("ask", ask_fill)):
        total = float(fill.sum())
        if not _close(total, volume, scale, whole):
            raise _fail(
                "fills sum to volume", f"{label}{name} fills sum to {total!r}, volume is {volume!r}"
            )
    if executable != (volume > 0):
        raise _fail("executable", f"{label}executable = {executable} but volume = {volume!r}")

    # 5. the volume is the largest executable at any single price: min(D(p), S(p)) changes
    # only at order ticks, so the candidates are the ticks holding an order
    candidates = np.unique(np.concatenate([bt[bq > 0], at[aq > 0]]))
    demand, supply = _curves(candidates, bt, bq, at, aq)
    best = float(np.minimum(demand, supply).max(initial=0.0))
    if not _close(volume, best, scale, whole):
        raise _fail(
            "maximum volume", f"{label}volume = {volume!r}, but {best!r} t can trade at one price"
        )
    if volume == 0:
        for name, fill in (("bid", bid_fill), ("ask", ask_fill)):
            if fill.any():
                raise _fail("no trade", f"{label}volume is 0 but a {name} has a positive fill")
        return
    if price_tick is None:
        raise _fail("price", f"{label}volume = {volume!r} > 0 but there is no clearing price")
    p = int(price_tick)
    if band is not None and not band[0] <= p <= band[1]:
        raise _fail("price in band", f"{label}price tick {p} outside the band ticks {band}")

    # 3. no fill through a limit: filled bids are priced >= p, filled asks <= p
    for name, fill, ticks, through in (
        ("bid", bid_fill, bt, bt < p),
        ("ask", ask_fill, at, at > p),
    ):
        bad = (fill > 0) & through
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(
                "no fill through a limit",
                f"{label}{name} {i} with limit tick {int(ticks[i])} filled {_py(fill[i])!r} at "
                f"price tick {p}",
            )
    # 4. price priority: every order strictly better than the price fills in full
    for name, fill, qty, ticks, better in (
        ("bid", bid_fill, bq, bt, bt > p),
        ("ask", ask_fill, aq, at, at < p),
    ):
        bad = better & (fill != qty)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(
                "price priority",
                f"{label}{name} {i} at tick {int(ticks[i])}, better than the price tick {p}, "
                f"filled {_py(fill[i])!r} of {_py(qty[i])!r}",
            )
    # the volume is what trades at p, and the imbalance is D(p) - S(p)
    d_p, s_p = _curves(np.array([p]), bt, bq, at, aq)
    if not _close(volume, float(min(d_p[0], s_p[0])), scale, whole):
        raise _fail(
            "volume at the price",
            f"{label}volume = {volume!r}, min(demand, supply) at tick {p} = "
            f"{float(min(d_p[0], s_p[0]))!r}",
        )
    if not _close(imbalance, float(d_p[0] - s_p[0]), scale, whole):
        raise _fail(
            "imbalance",
            f"{label}imbalance = {imbalance!r}, demand - supply at tick {p} = "
            f"{float(d_p[0] - s_p[0])!r}",
        )


def _curves(
    at_ticks: IntArray, bt: IntArray, bq: FloatArray, at: IntArray, aq: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Demand ``D(p)`` (bids at or above ``p``) and supply ``S(p)`` (asks at or below)."""
    ob = np.argsort(bt, kind="stable")
    cum_b = np.concatenate([[0.0], np.cumsum(bq[ob])])
    demand = cum_b[-1] - cum_b[np.searchsorted(bt[ob], at_ticks, side="left")]
    oa = np.argsort(at, kind="stable")
    cum_a = np.concatenate([[0.0], np.cumsum(aq[oa])])
    supply = cum_a[np.searchsorted(at[oa], at_ticks, side="right")]
    return demand, supply


def _band_ticks(
    price_band: tuple[Any, Any] | None, tick: float, n_markets: int
) -> list[tuple[int, int] | None]:
    if price_band is None:
        return [None] * n_markets
    lo = np.broadcast_to(np.asarray(price_band[0], dtype=np.float64), (n_markets,))
    hi = np.broadcast_to(np.asarray(price_band[1], dtype=np.float64), (n_markets,))
    lo_t, hi_t = snap_up(lo, tick), snap_down(hi, tick)
    return [(int(a), int(b)) for a, b in zip(lo_t, hi_t, strict=True)]


def _floats(name: str, value: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    return arr


def assert_clearing_invariants(
    result: CallAuctionResult,
    bid_price: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    ask_price: npt.ArrayLike,
    ask_qty: npt.ArrayLike,
    *,
    tick: float | None = None,
    price_band: tuple[float, float] | None = None,
    band_mode: str = "reject",
    **ignored: Any,
) -> None:
    """Check that a call-auction result obeys the uniform-price clearing invariants.

    The invariants, for the orders as the auction sees them (after the price band: rejected
    orders count with quantity 0, clipped orders at the band edge):

    1. ``0 <= fill <= qty`` for every order, and orders rejected by the band fill nothing;
    2. bid fills and ask fills each sum to ``volume`` (exactly for whole quantities, to a
       relative 1e-9 otherwise), and ``executable == (volume > 0)``;
    3. no fill through a limit: a filled bid is priced at or above the clearing price and a
       filled ask at or below it;
    4. price priority: every order strictly better than the price fills in full;
    5. ``volume`` is the maximum executable quantity over all single prices, and equals
       ``min(demand, supply)`` at the clearing price; ``imbalance`` is ``demand - supply``
       there. The price lies inside the band.

    Parameters
    ----------
    result : CallAuctionResult
        What :func:`carbonsim.clearing.call_auction` (or a plug-in replacement returning the
        same fields) returned for these orders.
    bid_price, bid_qty, ask_price, ask_qty : array_like of float, shapes (n_bids,), (n_asks,)
        The orders passed to the auction: prices in currency per tonne, quantities in t.
    tick : float, optional
        Price step used, currency per tonne (default ``result.tick``).
    price_band : (float, float), optional
        The band passed to the auction, if any.
    band_mode : {"reject", "clip"}
        The band mode passed to the auction.
    **ignored
        Other keyword arguments of the auction (``allocation``, ``reference_price``); they
        do not change the invariants, so a whole keyword dictionary can be passed on.

    Raises
    ------
    AssertionError
        Naming the invariant, the order and the values that break it.

    Examples
    --------
    >>> from carbonsim.clearing import call_auction
    >>> book = dict(bid_price=[51.0, 50.0], bid_qty=[10, 10], ask_price=[49.0], ask_qty=[15])
    >>> assert_clearing_invariants(call_auction(**book), **book)
    """
    t = float(result.tick if tick is None else tick)
    (band,) = _band_ticks(price_band, t, 1)
    _check_market(
        "",
        price_tick=result.price_tick,
        volume=float(result.volume),
        imbalance=float(result.imbalance),
        executable=bool(result.executable),
        bid_fill=np.asarray(result.bid_fill, dtype=np.float64),
        ask_fill=np.asarray(result.ask_fill, dtype=np.float64),
        bid_rejected=np.asarray(result.bid_rejected, dtype=bool),
        ask_rejected=np.asarray(result.ask_rejected, dtype=bool),
        bid_price=_floats("bid_price", bid_price),
        bid_qty=_floats("bid_qty", bid_qty),
        ask_price=_floats("ask_price", ask_price),
        ask_qty=_floats("ask_qty", ask_qty),
        tick=t,
        band=band,
        band_mode=band_mode,
    )


def assert_batch_clearing_invariants(
    result: CallAuctionBatchResult,
    market: npt.ArrayLike,
    side: npt.ArrayLike,
    price: npt.ArrayLike,
    qty: npt.ArrayLike,
    *,
    tick: float | None = None,
    price_band: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    band_mode: str = "reject",
    **ignored: Any,
) -> None:
    """Check :func:`assert_clearing_invariants` in every market of a batch clearing.

    Parameters
    ----------
    result : CallAuctionBatchResult
        What :func:`carbonsim.clearing.call_auction_batch` returned for these orders.
    market, side, price, qty : array_like, shape (n_orders,)
        The orders passed to the batch: market ids, side (``True``/``+1`` bid), prices and
        quantities.
    tick, price_band, band_mode, **ignored
        As passed to the batch (``price_band`` edges may be per-market arrays);
        ``n_markets``, ``allocation`` and ``reference_price`` are accepted and ignored.

    Raises
    ------
    AssertionError
        Naming the market, the invariant and the order that breaks it.
    """
    mkt = np.asarray(market, dtype=np.int64)
    sd = np.asarray(side)
    is_bid = sd if sd.dtype.kind == "b" else sd == 1
    pr = _floats("price", price)
    q = _floats("qty", qty)
    fill = np.asarray(result.fill, dtype=np.float64)
    rejected = np.asarray(result.rejected, dtype=bool)
    if not mkt.shape == is_bid.shape == pr.shape == q.shape == fill.shape:
        raise _fail(
            "shapes",
            f"market {mkt.shape}, side {is_bid.shape}, price {pr.shape}, qty {q.shape}, "
            f"fill {fill.shape} must all have the same shape",
        )
    n_markets = int(np.asarray(result.volume).size)
    t = float(result.tick if tick is None else tick)
    bands = _band_ticks(price_band, t, n_markets)
    for m in range(n_markets):
        b = np.flatnonzero((mkt == m) & is_bid)
        a = np.flatnonzero((mkt == m) & ~is_bid)
        has_price = not np.isnan(result.price[m])
        _check_market(
            f"market {m}: ",
            price_tick=int(result.price_tick[m]) if has_price else None,
            volume=float(result.volume[m]),
            imbalance=float(result.imbalance[m]),
            executable=bool(result.executable[m]),
            bid_fill=fill[b],
            ask_fill=fill[a],
            bid_rejected=rejected[b],
            ask_rejected=rejected[a],
            bid_price=pr[b],
            bid_qty=q[b],
            ask_price=pr[a],
            ask_qty=q[a],
            tick=t,
            band=bands[m],
            band_mode=band_mode,
        )


def assert_ledger_conserved(ledger: Ledger) -> LedgerReport:
    """Check every conservation identity of a ledger, independently of :meth:`Ledger.check`.

    Recomputes, from the ledger's public accounts, per replicate and vintage (class):

    - allowances: ``issued + carried_in == government + sum_units(held) + surrendered +
      cancelled + expired + deducted + carried_out`` (exact, integer tonnes);
    - offsets: ``offsets_issued == project_offsets + sum_units(held) + offsets_surrendered +
      offsets_cancelled + offsets_expired`` (exact);
    - cash: ``sum_units(cash) + government_cash + project_cash == deposited - withdrawn``
      (to a relative 1e-9 of the money moved);
    - no negative flow, memo, government or project account, and no negative holding unless
      the ledger allows short positions;

    then runs :meth:`Ledger.check` as well, so a disagreement between the two is caught.

    Parameters
    ----------
    ledger : Ledger

    Returns
    -------
    LedgerReport
        The report of :meth:`Ledger.check` (the totals, for further assertions).

    Raises
    ------
    AssertionError
        Naming the identity, the replicate and the vintage or class that breaks it.
    """
    lhs = ledger.issued + ledger.carried_in
    held = ledger.allowances.sum(axis=1)
    rhs = (
        ledger.government_allowances
        + held
        + ledger.surrendered
        + ledger.cancelled
        + ledger.expired
        + ledger.deducted
        + ledger.carried_out
    )
    if (lhs != rhs).any():
        r, v = (int(i) for i in np.argwhere(lhs != rhs)[0])
        raise AssertionError(
            f"allowances not conserved in replicate {r}, vintage {int(ledger.vintages[v])}: "
            f"issued + carried in = {int(lhs[r, v])} t, accounted for {int(rhs[r, v])} t "
            f"(government {int(ledger.government_allowances[r, v])}, units {int(held[r, v])})"
        )
    o_rhs = (
        ledger.project_offsets
        + ledger.offsets.sum(axis=1)
        + ledger.offsets_surrendered
        + ledger.offsets_cancelled
        + ledger.offsets_expired
    )
    if (ledger.offsets_issued != o_rhs).any():
        r, k = (int(i) for i in np.argwhere(ledger.offsets_issued != o_rhs)[0])
        raise AssertionError(
            f"offsets not conserved in replicate {r}, class {ledger.offset_classes[k]!r}: "
            f"issued {int(ledger.offsets_issued[r, k])} t, accounted for {int(o_rhs[r, k])} t"
        )
    cash = ledger.cash.sum(axis=1) + ledger.government_cash + ledger.project_cash
    expected = ledger.cash_deposited - ledger.cash_withdrawn
    moved = np.abs(ledger.cash).sum(axis=1) + np.abs(ledger.government_cash)
    moved = moved + np.abs(ledger.project_cash) + ledger.cash_deposited + ledger.cash_withdrawn
    bad = np.abs(cash - expected) > _RTOL * moved + 1e-6
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"cash not conserved in replicate {r}: accounts hold {float(cash[r])!r}, deposits "
            f"minus withdrawals = {float(expected[r])!r}"
        )
    signed: dict[str, np.ndarray] = {
        "government_allowances": ledger.government_allowances,
        "project_offsets": ledger.project_offsets,
        "pending_deductions": ledger.pending_deductions,
        "borrowed": ledger.borrowed,
        "issued": ledger.issued,
        "carried_in": ledger.carried_in,
        "carried_out": ledger.carried_out,
        "surrendered": ledger.surrendered,
        "cancelled": ledger.cancelled,
        "expired": ledger.expired,
        "deducted": ledger.deducted,
        "offsets_issued": ledger.offsets_issued,
        "offsets_surrendered": ledger.offsets_surrendered,
        "offsets_cancelled": ledger.offsets_cancelled,
        "offsets_expired": ledger.offsets_expired,
    }
    if not ledger.allow_negative:
        signed["allowances"] = ledger.allowances
        signed["offsets"] = ledger.offsets
    if not ledger.allow_negative_cash:
        signed["cash"] = ledger.cash
    for name, arr in signed.items():
        if (arr < 0).any():
            pos = tuple(int(i) for i in np.argwhere(arr < 0)[0])
            raise AssertionError(f"ledger account {name} is negative at {pos}: {_py(arr[pos])!r}")
    from carbonsim.market.ledger import ConservationError

    try:
        return ledger.check()
    except ConservationError as exc:
        raise AssertionError(
            f"Ledger.check() failed where the public accounts balance: {exc}"
        ) from exc


def _first_difference(a: Any, b: Any) -> int:
    """Position of the first element that differs (NaN equal to NaN), or -1."""
    av, bv = np.asarray(a), np.asarray(b)
    if av.dtype.kind == "M" and bv.dtype.kind == "M":  # any resolution: compare instants
        av, bv = (
            av.astype("datetime64[ns]").view(np.int64),
            bv.astype("datetime64[ns]").view(np.int64),
        )
    if av.dtype.kind == "f" and bv.dtype.kind == "f":
        av = np.ascontiguousarray(av, dtype=np.float64)
        bv = np.ascontiguousarray(bv, dtype=np.float64)
        # bit patterns: -0.0 differs from 0.0, every NaN is made one NaN
        au = np.where(np.isnan(av), np.nan, av).view(np.uint64)
        bu = np.where(np.isnan(bv), np.nan, bv).view(np.uint64)
        diff = au != bu
    else:
        diff = np.asarray(
            [
                x != y and not (x != x and y != y)
                for x, y in zip(av.tolist(), bv.tolist(), strict=True)
            ],
            dtype=bool,
        )
    hits = np.flatnonzero(diff)
    return int(hits[0]) if hits.size else -1


def _assert_frames_identical(name: str, a: pd.DataFrame, b: pd.DataFrame) -> None:
    if a.shape != b.shape:
        raise AssertionError(f"results differ: {name} has shape {a.shape} vs {b.shape}")
    if list(a.columns) != list(b.columns):
        raise AssertionError(
            f"results differ: {name} columns {list(a.columns)} vs {list(b.columns)}"
        )
    if list(a.index.names) != list(b.index.names):
        raise AssertionError(
            f"results differ: {name} index names {list(a.index.names)} vs {list(b.index.names)}"
        )
    for level in range(a.index.nlevels):
        va = a.index.get_level_values(level)
        vb = b.index.get_level_values(level)
        i = _first_difference(va, vb)
        if i >= 0:
            raise AssertionError(
                f"results differ: {name} index level {a.index.names[level]!r} at row {i}: "
                f"{_py(va[i])!r} vs {_py(vb[i])!r}"
            )
    for col in a.columns:
        sa, sb = a[col], b[col]
        if sa.dtype != sb.dtype:
            raise AssertionError(
                f"results differ: {name}[{col!r}] has dtype {sa.dtype} vs {sb.dtype}"
            )
        i = _first_difference(sa.to_numpy(), sb.to_numpy())
        if i >= 0:
            raise AssertionError(
                f"results differ: {name}[{col!r}] at row {i} ({_py(a.index[i])!r}): "
                f"{_py(sa.iloc[i])!r} vs {_py(sb.iloc[i])!r}"
            )


def assert_results_equal(a: Result, b: Result, *, check_provenance: bool = False) -> None:
    """Check that two results hold bit-identical tables.

    Compares ``market``, ``units`` and ``trades`` (both absent, or both present): shapes,
    column names and order, dtypes, index levels and every value. Floats are compared by
    their bit patterns, so ``0.0`` differs from ``-0.0`` and ``1e-300`` from ``0.0``; NaN
    equals NaN. Provenance (which records the batch, e.g. ``first_replicate``) is compared
    only with ``check_provenance=True``.

    Parameters
    ----------
    a, b : Result
    check_provenance : bool
        Also require equal ``provenance`` mappings.

    Raises
    ------
    AssertionError
        Naming the table, the column and the first row that differs, with both values.
    """
    tables = ("market", "units", "trades")
    for name in tables:
        ta, tb = getattr(a, name), getattr(b, name)
        if ta is None or tb is None:
            if (ta is None) != (tb is None):
                raise AssertionError(
                    f"results differ: {name} is {'absent' if ta is None else 'present'} in a "
                    f"and {'absent' if tb is None else 'present'} in b"
                )
            continue
        _assert_frames_identical(name, ta, tb)
    if check_provenance and dict(a.provenance) != dict(b.provenance):
        pa: Mapping[str, Any] = a.provenance
        pb: Mapping[str, Any] = b.provenance
        keys = sorted({k for k in (*pa, *pb) if pa.get(k) != pb.get(k)})
        raise AssertionError(
            "results differ: provenance "
            + ", ".join(f"{k}: {pa.get(k)!r} vs {pb.get(k)!r}" for k in keys)
        )
