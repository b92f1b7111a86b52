"""Penalty regimes for non-compliance, as plug-ins registered by name.

A regime maps each unit's shortfall at the surrender deadline (t, shape ``(..., N)``) to a
:class:`PenaltyOutcome`: a fine (currency), a deduction from the next allocation (t) and an
obligation carried into the next year (t). Every regime is called the same way,
``regime(shortfall, market_price=..., **parameters)``; find one by name in
:data:`PENALTY_REGIMES` or call :func:`assess_penalty`. :func:`enforce` books an outcome in
the :class:`~carbonsim.market.ledger.Ledger` (fine paid to the government, deduction
registered against the next vintage).

Built-in regimes (docs/rules.md#penalties; one rule each: docs/rules.md#penalty-china-2021,
docs/rules.md#penalty-china-2024 and docs/rules.md#penalty-eu):

==========================  ======================================  ============  =========
name                        fine                                    deduction     carried
==========================  ======================================  ============  =========
``"china_2021_measures"``   20,000-30,000 yuan per non-compliant    shortfall     0
                            entity (default 20,000)
``"china_2024_interim"``    5-10 x average price of the month       shortfall     0
                            before the deadline, per missing tonne
                            (default 5)
``"eu"``                    EUR 100 per missing tonne               0             shortfall
==========================  ======================================  ============  =========

Defaults are the statutory minimum of each range, so a simulated deterrent is never
overstated; the published rules give ranges and no data on the fines actually imposed. A
row of the ledger is one compliance entity here; when rows are generating units of one
company, aggregate the shortfall per company before applying a per-entity fine.

Register a new regime with ``@PENALTY_REGIMES.register("name")`` on a function with the
same call signature.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim._registry import Registry
from carbonsim._validation import as_float_array, as_int_array, check_in_range, describe
from carbonsim.market.ledger import Ledger

__all__ = [
    "PENALTY_REGIMES",
    "PenaltyOutcome",
    "PenaltyRegime",
    "assess_penalty",
    "china_2021_measures",
    "china_2024_interim",
    "enforce",
    "eu",
    "reference_price",
]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class PenaltyOutcome(NamedTuple):
    """Consequences of a shortfall, each of the shortfall's shape (..., N).

    Attributes
    ----------
    fine : ndarray of float64
        Money the unit pays, currency (yuan or EUR).
    deduction : ndarray of int64
        Tonnes deducted from the unit's next allocation.
    carried_obligation : ndarray of int64
        Tonnes added to the unit's obligation for the next year.
    """

    fine: FloatArray
    deduction: IntArray
    carried_obligation: IntArray


#: A penalty regime plug-in: ``regime(shortfall, *, market_price=None, **params)``
#: returning a :class:`PenaltyOutcome`; it must accept ``market_price`` even if unused.
PenaltyRegime = Callable[..., PenaltyOutcome]


#: Penalty regimes by name.
PENALTY_REGIMES: Registry[PenaltyRegime] = Registry("penalty regime")


def _shortfall(shortfall: npt.ArrayLike) -> IntArray:
    return as_int_array("shortfall", shortfall, ndim=None, nonnegative=True)


def _price_for(short: IntArray, market_price: npt.ArrayLike | None, regime: str) -> FloatArray:
    """Broadcast a price given per market (shape ``short.shape[:-1]``) or per unit."""
    if market_price is None:
        raise ValueError(
            f"penalty regime {regime!r} needs market_price (currency/t): a scalar, one price "
            f"per replicate {short.shape[:-1]}, or one per unit {short.shape}"
        )
    p = as_float_array("market_price", market_price, ndim=None, nonnegative=True)
    if p.ndim == 0 or p.shape == short.shape:
        return np.broadcast_to(p, short.shape)
    if short.ndim >= 1 and p.shape == short.shape[:-1]:
        return np.broadcast_to(p[..., None], short.shape)
    raise ValueError(
        f"market_price must be a scalar or have shape {short.shape[:-1]} (one per replicate) "
        f"or {short.shape} (one per unit), got {p.shape}"
    )


@PENALTY_REGIMES.register("china_2021_measures")
def china_2021_measures(
    shortfall: npt.ArrayLike,
    *,
    market_price: npt.ArrayLike | None = None,
    fine_per_entity: float = 20_000.0,
) -> PenaltyOutcome:
    """China's 2021 Measures: a fixed fine per non-compliant entity plus deduction.

    docs/rules.md#penalty-china-2021: "Penalty, 2021 Measures: 20,000-30,000 yuan per entity
    plus the shortfall deducted from the next allocation."

    Parameters
    ----------
    shortfall : array_like of int, shape (..., N)
        Tonnes not surrendered at the deadline (>= 0).
    market_price : ignored
        Accepted so every regime is called the same way.
    fine_per_entity : float
        Fine, yuan per unit with a shortfall, in [20,000, 30,000] (default the minimum).

    Returns
    -------
    PenaltyOutcome
        ``fine`` yuan, ``deduction = shortfall``, no carried obligation.

    Examples
    --------
    >>> out = china_2021_measures([0, 1, 50_000])
    >>> out.fine.tolist(), out.deduction.tolist()
    ([0.0, 20000.0, 20000.0], [0, 1, 50000])
    """
    short = _shortfall(shortfall)
    f = check_in_range("fine_per_entity", fine_per_entity, 20_000.0, 30_000.0)
    fine = np.where(short > 0, f, 0.0)
    return PenaltyOutcome(fine, short.copy(), np.zeros_like(short))


@PENALTY_REGIMES.register("china_2024_interim")
def china_2024_interim(
    shortfall: npt.ArrayLike,
    *,
    market_price: npt.ArrayLike | None = None,
    price_multiple: float = 5.0,
) -> PenaltyOutcome:
    """China's 2024 Interim Regulations: a fine per missing tonne at a price multiple.

    docs/rules.md#penalty-china-2024: "Interim Regulations (in force 1 May 2024): fine of
    5-10 x the average market price of the month before the deadline, per missing tonne,
    plus deduction of the shortfall from the next allocation." :func:`reference_price`
    computes that average from a price series.

    Parameters
    ----------
    shortfall : array_like of int, shape (..., N)
        Tonnes not surrendered (>= 0).
    market_price : float or array_like
        Average market price of the month before the deadline, yuan/t: a scalar, shape
        ``(...)`` (one per replicate) or ``(..., N)``. Required.
    price_multiple : float
        Multiple of the price, in [5, 10] (default the minimum).

    Returns
    -------
    PenaltyOutcome
        ``fine = price_multiple x market_price x shortfall`` yuan,
        ``deduction = shortfall``, no carried obligation.

    Examples
    --------
    >>> out = china_2024_interim([[0, 1_000]], market_price=[90.0])
    >>> out.fine.tolist(), out.deduction.tolist()
    ([[0.0, 450000.0]], [[0, 1000]])
    """
    short = _shortfall(shortfall)
    m = check_in_range("price_multiple", price_multiple, 5.0, 10.0)
    p = _price_for(short, market_price, "china_2024_interim")
    fine = m * p * short
    return PenaltyOutcome(np.asarray(fine, np.float64), short.copy(), np.zeros_like(short))


@PENALTY_REGIMES.register("eu")
def eu(
    shortfall: npt.ArrayLike,
    *,
    market_price: npt.ArrayLike | None = None,
    fine_per_tonne: float = 100.0,
) -> PenaltyOutcome:
    """EU ETS excess-emissions penalty: a fine per missing tonne and the obligation remains.

    docs/rules.md#penalty-eu: "Penalty EUR 100/t (inflation-indexed) and the obligation
    remains."

    Parameters
    ----------
    shortfall : array_like of int, shape (..., N)
        Tonnes not surrendered (>= 0).
    market_price : ignored
        Accepted so every regime is called the same way.
    fine_per_tonne : float
        Fine, EUR/t (>= 0; pass the indexed value for later years).

    Returns
    -------
    PenaltyOutcome
        ``fine = fine_per_tonne x shortfall``, no deduction,
        ``carried_obligation = shortfall``.

    Examples
    --------
    >>> out = eu([0, 250])
    >>> out.fine.tolist(), out.carried_obligation.tolist()
    ([0.0, 25000.0], [0, 250])
    """
    short = _shortfall(shortfall)
    f = check_in_range("fine_per_tonne", fine_per_tonne, 0.0, None)
    return PenaltyOutcome(f * short.astype(np.float64), np.zeros_like(short), short.copy())


def assess_penalty(
    regime: str,
    shortfall: npt.ArrayLike,
    *,
    market_price: npt.ArrayLike | None = None,
    **params: Any,
) -> PenaltyOutcome:
    """Apply the regime registered as ``regime`` (see :data:`PENALTY_REGIMES`).

    Unknown names raise :class:`~carbonsim._registry.UnknownPluginError` listing the valid
    ones; ``params`` are the regime's keyword parameters.
    """
    fn = PENALTY_REGIMES.get(regime)
    return fn(shortfall, market_price=market_price, **params)


def reference_price(
    dates: npt.ArrayLike,
    price: npt.ArrayLike,
    deadline: str | np.datetime64 | pd.Timestamp,
    *,
    volume: npt.ArrayLike | None = None,
    months: int = 1,
) -> FloatArray:
    """Average market price over the month(s) before a deadline.

    The window is ``[deadline - months, deadline)`` in calendar months. With ``volume`` the
    average is volume-weighted (turnover / volume, the "average transaction price"); days
    without volume in a window with no volume at all fall back to the plain mean of the
    daily prices. Used for the 2024 Interim Regulations' fine
    (docs/rules.md#penalty-reference-price).

    Every sum runs over one series (one replicate) alone and is correctly rounded
    (:func:`math.fsum`), so a replicate's price is the same bit for bit whichever batch it
    is computed in (a reduction over the last axis of a 2-D array can sum in another order
    than over one row, and differed in the last bit).

    Parameters
    ----------
    dates : array_like of datetime64, shape (T,)
        Trading days.
    price : array_like of float, shape (..., T)
        Daily closing price, currency/t.
    deadline : date-like
        Surrender deadline.
    volume : array_like of float, shape (..., T), optional
        Daily volume, t.
    months : int
        Window length in calendar months (>= 1).

    Returns
    -------
    ndarray of float64, shape (...)

    Examples
    --------
    >>> reference_price(["2024-11-29", "2024-12-02", "2024-12-31"], [90.0, 100.0, 110.0],
    ...                 "2024-12-31")
    array(100.)
    """
    d = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    p = as_float_array("price", price, ndim=None, nonnegative=True)
    if p.ndim == 0 or p.shape[-1] != len(d):
        raise ValueError(
            f"price must have shape (..., T) with T = len(dates) = {len(d)}, got {p.shape}"
        )
    if isinstance(months, bool) or not isinstance(months, (int, np.integer)) or months < 1:
        raise ValueError(f"months must be an int >= 1, got {describe(months)}")
    end = pd.Timestamp(deadline)
    start = end - pd.DateOffset(months=int(months))
    inside = np.asarray((d >= start) & (d < end), dtype=bool)
    if not inside.any():
        raise ValueError(
            f"no trading day in the window [{start.date()}, {end.date()}) before the deadline"
        )
    window = p[..., inside]
    mean = _series_sums(window) / window.shape[-1]
    if volume is None:
        return np.asarray(mean, np.float64)
    vol = as_float_array("volume", volume, ndim=None, nonnegative=True)
    if vol.shape != p.shape:
        raise ValueError(f"volume must have the shape of price {p.shape}, got {vol.shape}")
    w = vol[..., inside]
    total = _series_sums(w)
    turnover = _series_sums(window * w)
    vwap = np.divide(turnover, total, out=np.zeros_like(turnover), where=total > 0)
    return np.asarray(np.where(total > 0, vwap, mean), np.float64)


def _series_sums(values: FloatArray) -> FloatArray:
    """Sum over the last axis, one correctly rounded sum per series: shape (...)."""
    rows = values.reshape(-1, values.shape[-1])
    sums = np.fromiter((math.fsum(row) for row in rows.tolist()), np.float64, rows.shape[0])
    return sums.reshape(values.shape[:-1])


def enforce(ledger: Ledger, outcome: PenaltyOutcome, *, deduction_vintage: int) -> None:
    """Book a penalty in the ledger: the fine is paid to the government and the deduction
    is registered against the allocation of ``deduction_vintage`` (applied by the next
    :meth:`Ledger.allocate <carbonsim.market.ledger.Ledger.allocate>` of that or a later
    vintage). The carried obligation is not a ledger entry: add it to next year's
    obligation.

    Parameters
    ----------
    ledger : Ledger
        The registry; changed in place.
    outcome : PenaltyOutcome
        Arrays of shape (R, N).
    deduction_vintage : int
        Vintage whose allocation the deduction reduces (the next year's).
    """
    if not isinstance(ledger, Ledger):
        raise TypeError(f"ledger must be a Ledger, got {type(ledger).__name__}")
    if not isinstance(outcome, PenaltyOutcome):
        raise TypeError(f"outcome must be a PenaltyOutcome, got {type(outcome).__name__}")
    # validate everything the second step needs before the first step changes the ledger
    ledger.vintage_index(deduction_vintage, op="enforce")
    shape = (ledger.n_replicates, ledger.n_units)
    for name in ("fine", "deduction"):
        got = np.shape(getattr(outcome, name))
        if got != shape:
            raise ValueError(f"enforce: outcome.{name} must have shape (R, N) = {shape}, got {got}")
    as_int_array("enforce: outcome.deduction", outcome.deduction, ndim=2, nonnegative=True)
    ledger.pay(outcome.fine)
    ledger.deduct(outcome.deduction, deduction_vintage)
