"""Compliance rules: verified emissions, obligations, surrender, borrowing, banking, deadlines.

Pure functions over arrays with any leading axes ``(..., N)`` (one replicate or many), plus
three functions that act through the :class:`~carbonsim.market.ledger.Ledger`
(:func:`apply_surrender`, :func:`apply_banking_limit`; borrowing itself is
:meth:`Ledger.borrow <carbonsim.market.ledger.Ledger.borrow>`). Quantities are whole tonnes
CO2e (``int64``).

Rules implemented (docs/rules.md#compliance; each rule's own anchor is given):

- **Gas units** (docs/rules.md#gas-exemption): obligation capped at their free allocation,
  never short (:func:`obligation`).
- **Entity shortfall cap** (docs/rules.md#gap-cap): if the allocation is below 80% of
  verified emissions it is topped up to 80%; the gap is capped at 20% (:func:`obligation`).
- **Offsets** (docs/rules.md#offset-limit): at most 5% of the allowances to be surrendered
  (:func:`offset_limit`, :func:`surrender_plan`).
- **Borrowing** (docs/rules.md#borrowing): 2021-22 only; units with a gap above 10% of their
  allocation may borrow up to 50% of the gap from the next vintage
  (:func:`borrowing_allowed`, :func:`borrowing_amount`).
- **Banking** (docs/rules.md#banking-limit): unrestricted until 2023; for 2024-25 at most
  10,000 t + 1.5 x net sales may be carried into the 2025 vintage (:func:`banking_limit`,
  :func:`apply_banking_limit`).
- **Staged deadlines** (docs/rules.md#staged-deadlines): 95% of units by 15 Nov 2023, all
  by 31 Dec 2023 (:func:`deadline_stages`).

Shares (20%, 5%, 10%, 50%, 1.5) are applied in exact integer arithmetic: a share is turned
into the nearest fraction with a denominator of at most 1,000,000, so 20% of 1,000,000 t is
exactly 200,000 t and ``floor``/``ceil`` never suffer from binary rounding.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from carbonsim._random import SeedLike, as_generator
from carbonsim._validation import (
    as_bool_array,
    as_float_array,
    as_int_array,
    check_in_range,
    describe,
)
from carbonsim.market.ledger import Ledger, VintageRule
from carbonsim.market.offsets import usage_cap

__all__ = [
    "UNLIMITED",
    "BankingResult",
    "ObligationResult",
    "SurrenderPlan",
    "SurrenderResult",
    "apply_banking_limit",
    "apply_surrender",
    "banking_limit",
    "borrowing_allowed",
    "borrowing_amount",
    "deadline_stages",
    "obligation",
    "offset_limit",
    "surrender_plan",
    "verified_emissions",
]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

#: "No limit" in an int64 limit array (e.g. banking before 2024).
UNLIMITED: int = int(np.iinfo(np.int64).max)

_MAX_DENOMINATOR = 1_000_000
_ROUND_DECIMALS = 6  # micro-tonnes: float emissions are rounded here before floor/ceil


# --------------------------------------------------------------------------------------
# exact share arithmetic
# --------------------------------------------------------------------------------------


def _fraction(name: str, value: float, lo: float = 0.0, hi: float | None = 1.0) -> Fraction:
    v = check_in_range(name, value, lo, hi)
    return Fraction(v).limit_denominator(_MAX_DENOMINATOR)


def _times(qty: IntArray, m: int) -> npt.NDArray[Any]:
    """``qty x m`` exactly: int64, or Python integers where int64 could overflow."""
    if qty.size and int(np.abs(qty).max()) * abs(m) >= 2**62:
        return qty.astype(object) * m
    return qty * m


def _mul_floor(qty: IntArray, factor: Fraction) -> IntArray:
    """``floor(qty x factor)`` exactly, elementwise (qty int64)."""
    return np.asarray(_times(qty, factor.numerator) // factor.denominator, dtype=np.int64)


def _mul_ceil(qty: IntArray, factor: Fraction) -> IntArray:
    """``ceil(qty x factor)`` exactly, elementwise."""
    return -_mul_floor(-qty, factor)


def _ints(name: str, value: npt.ArrayLike, *, nonnegative: bool = True) -> IntArray:
    return as_int_array(name, value, ndim=None, nonnegative=nonnegative)


# --------------------------------------------------------------------------------------
# verification and obligation
# --------------------------------------------------------------------------------------


def verified_emissions(
    emissions: npt.ArrayLike,
    *,
    relative_error: float = 0.0,
    rng: SeedLike = None,
    rounding: Literal["nearest", "up", "down"] = "nearest",
) -> IntArray:
    """Verified emissions in whole tonnes from realised emissions.

    The verifier's figure is ``emissions x max(1 + eps, 0)`` with
    ``eps ~ Normal(0, relative_error)`` (independent per unit; no error by default), then
    rounded to whole tonnes: ``"nearest"`` rounds half up (commercial rounding),
    ``"up"``/``"down"`` take the ceiling/floor. Products are first rounded to micro-tonnes
    so that binary artefacts (``28.999999999999996``) do not lose a tonne.

    Parameters
    ----------
    emissions : array_like of float, shape (..., N)
        Realised emissions, t (>= 0).
    relative_error : float
        Standard deviation of the multiplicative verification error (>= 0).
    rng : int, SeedSequence, Generator or None
        Randomness for the verification error (used only when ``relative_error > 0``).
    rounding : {"nearest", "up", "down"}
        Rounding to whole tonnes.

    Returns
    -------
    ndarray of int64, shape (..., N)
        Verified emissions, t.

    Examples
    --------
    >>> verified_emissions([1000.4, 1000.5, 0.2]).tolist()
    [1000, 1001, 0]
    """
    e = as_float_array("emissions", emissions, ndim=None, nonnegative=True)
    sd = check_in_range("relative_error", relative_error, 0.0, None)
    if sd > 0.0:
        gen = as_generator(rng)
        e = e * np.maximum(1.0 + gen.normal(0.0, sd, size=e.shape), 0.0)
    e = np.round(e, _ROUND_DECIMALS)
    if rounding == "nearest":
        out = np.floor(e + 0.5)
    elif rounding == "up":
        out = np.ceil(e)
    elif rounding == "down":
        out = np.floor(e)
    else:
        raise ValueError(f"rounding must be 'nearest', 'up' or 'down', got {rounding!r}")
    return out.astype(np.int64)


class ObligationResult(NamedTuple):
    """Compliance obligation and regulator top-up, t, each of shape (..., N).

    Attributes
    ----------
    obligation : ndarray of int64
        Allowances (and eligible offsets) the unit must surrender.
    top_up : ndarray of int64
        Extra allowances the regulator must allocate to the unit (gap cap).
    """

    obligation: IntArray
    top_up: IntArray


def obligation(
    verified: npt.ArrayLike,
    allocation: npt.ArrayLike,
    *,
    is_gas: npt.ArrayLike,
    gap_cap_share: float | None = 0.20,
    gas_exemption: bool = True,
    gap_relief: Literal["top_up", "cap"] = "top_up",
) -> ObligationResult:
    """Each unit's surrender obligation after the gas exemption and the shortfall cap.

    Implements two rules:

    - docs/rules.md#gas-exemption, "Gas units: obligation capped at their free allocation
      (never short)": ``obligation = min(verified, allocation)``, no top-up.
    - docs/rules.md#gap-cap, "Entity shortfall cap: if allocation < 80% of verified
      emissions, topped up to 80% (the gap is capped at 20%)". With the allowed gap
      ``g = floor(share x verified)``:

      * ``gap_relief="top_up"`` (default): the regulator allocates
        ``top_up = max(verified - g - allocation, 0)`` more allowances and the unit
        surrenders ``obligation = verified``;
      * ``gap_relief="cap"`` (the wording of the 2019-20 allocation plan): no top-up, and
        ``obligation = min(verified, allocation + g)``.

      Both leave the unit the same net position: it is short at most ``g`` after its
      allocation (and top-up).

    Parameters
    ----------
    verified : array_like of int, shape (..., N)
        Verified emissions, t (>= 0).
    allocation : array_like of int, shape (..., N)
        Free allocation for the year, t (>= 0).
    is_gas : array_like of bool, shape (..., N)
        Gas-fired units.
    gap_cap_share : float or None
        Largest gap as a share of verified emissions, in [0, 1]; None disables the cap.
    gas_exemption : bool
        Apply the gas-unit rule; if False gas units are treated like the others.
    gap_relief : {"top_up", "cap"}
        How the shortfall cap is expressed (see above).

    Returns
    -------
    ObligationResult
        ``obligation`` and ``top_up``, int64 t, the broadcast shape.

    Examples
    --------
    A coal unit with 1,000,000 t verified and 700,000 t allocated is topped up to 800,000 t:

    >>> r = obligation(1_000_000, 700_000, is_gas=False)
    >>> int(r.obligation), int(r.top_up)
    (1000000, 100000)
    >>> int(obligation(1_000_000, 700_000, is_gas=False, gap_relief="cap").obligation)
    900000
    """
    e = _ints("verified", verified)
    a = _ints("allocation", allocation)
    gas = as_bool_array("is_gas", is_gas, ndim=None)
    if not isinstance(gas_exemption, (bool, np.bool_)):
        raise TypeError(f"gas_exemption must be a bool, got {describe(gas_exemption)}")
    if gap_relief not in ("top_up", "cap"):
        raise ValueError(f"gap_relief must be 'top_up' or 'cap', got {gap_relief!r}")
    try:
        shape = np.broadcast_shapes(e.shape, a.shape, gas.shape)
    except ValueError:
        raise ValueError(
            f"verified {e.shape}, allocation {a.shape} and is_gas {gas.shape} must broadcast"
        ) from None
    e = np.broadcast_to(e, shape)
    a = np.broadcast_to(a, shape)
    gas = np.broadcast_to(gas, shape)
    ob = e.copy()
    top = np.zeros(shape, np.int64)
    if gap_cap_share is not None:
        g = _mul_floor(e, _fraction("gap_cap_share", gap_cap_share))
        if gap_relief == "top_up":
            top = np.maximum(e - g - a, 0)
        else:
            ob = np.minimum(e, a + g)
    if gas_exemption:
        ob = np.where(gas, np.minimum(e, a), ob)
        top = np.where(gas, 0, top)
    return ObligationResult(ob.astype(np.int64), top.astype(np.int64))


def offset_limit(obligation: npt.ArrayLike, share: float = 0.05) -> IntArray:
    """Most offset credits a unit may surrender: ``floor(share x obligation)`` whole tonnes.

    docs/rules.md#offset-limit: "Usage limit: at most 5% of the allowances to be
    surrendered, per year". This is :func:`carbonsim.market.offsets.usage_cap` (one
    implementation of the rule); for Beijing's 5%-of-allocation rule pass the allocation.

    Parameters
    ----------
    obligation : array_like of int, shape (..., N)
        Allowances to be surrendered, t (>= 0).
    share : float
        Limit as a share of the obligation, in [0, 1].

    Returns
    -------
    ndarray of int64, shape (..., N)

    Examples
    --------
    >>> offset_limit([1_000_000, 999_999]).tolist()
    [50000, 49999]
    """
    ob = _ints("obligation", obligation)
    return usage_cap(ob, share)


# --------------------------------------------------------------------------------------
# surrender
# --------------------------------------------------------------------------------------


class SurrenderPlan(NamedTuple):
    """Tonnes to surrender, t.

    Attributes
    ----------
    allowances : ndarray of int64, shape (..., N)
    offsets : ndarray of int64, shape (..., N, K)
        Per offset class, in the order given.
    shortfall : ndarray of int64, shape (..., N)
        Obligation not covered: ``obligation - allowances - offsets.sum(-1)``.
    """

    allowances: IntArray
    offsets: IntArray
    shortfall: IntArray


def surrender_plan(
    obligation: npt.ArrayLike,
    allowances_available: npt.ArrayLike,
    offsets_available: npt.ArrayLike | None = None,
    *,
    offset_limit_share: float = 0.05,
    offset_cap: npt.ArrayLike | None = None,
    offset_first: bool = False,
) -> SurrenderPlan:
    """What each unit surrenders at the deadline, as far as its holdings go.

    Default order (``offset_first=False``): allowances first, then offsets up to the cap
    (docs/rules.md#surrender-order; 5% usage limit, docs/rules.md#offset-limit), i.e.
    ``allowances = min(obligation, available)``,
    ``offsets = min(obligation - allowances, cap, offsets available)``. With
    ``offset_first=True`` (what firms do when credits are cheaper) offsets are used first
    up to the cap and allowances cover the rest. Offsets are taken from the classes in the
    given order (the first class first). Whatever is left is the shortfall.

    Parameters
    ----------
    obligation : array_like of int, shape (..., N)
        Tonnes to surrender (>= 0).
    allowances_available : array_like of int, shape (..., N)
        Valid allowances held, t; negative values (short positions) count as zero.
    offsets_available : array_like of int, shape (..., N, K), optional
        Eligible credits held per class, t; default none (K = 0).
    offset_limit_share : float
        Offset cap as a share of the obligation (used when ``offset_cap`` is None).
    offset_cap : array_like of int, shape (..., N), optional
        Explicit per-unit offset cap, t (e.g. Beijing's 5% of allocation).
    offset_first : bool
        Use offsets before allowances.

    Returns
    -------
    SurrenderPlan

    Examples
    --------
    >>> p = surrender_plan([1_000], [900], [[30, 100]])
    >>> p.allowances.tolist(), p.offsets.tolist(), p.shortfall.tolist()
    ([900], [[30, 20]], [50])
    >>> p = surrender_plan([1_000], [990], [[30, 100]], offset_first=True)
    >>> p.allowances.tolist(), p.offsets.tolist(), p.shortfall.tolist()
    ([950], [[30, 20]], [0])
    """
    ob = _ints("obligation", obligation)
    al = np.maximum(_ints("allowances_available", allowances_available, nonnegative=False), 0)
    try:
        shape = np.broadcast_shapes(ob.shape, al.shape)
    except ValueError:
        raise ValueError(
            f"obligation {ob.shape} and allowances_available {al.shape} must broadcast"
        ) from None
    if offsets_available is None:
        off = np.zeros((*shape, 0), np.int64)
    else:
        off = np.maximum(_ints("offsets_available", offsets_available, nonnegative=False), 0)
        if off.ndim < 1:
            raise ValueError(
                f"offsets_available must have a trailing class axis (..., N, K), got shape "
                f"{off.shape}"
            )
        try:
            shape = np.broadcast_shapes(shape, off.shape[:-1])
        except ValueError:
            raise ValueError(
                f"offsets_available {off.shape} must have shape (..., N, K) matching "
                f"obligation {ob.shape}"
            ) from None
    if not isinstance(offset_first, (bool, np.bool_)):
        raise TypeError(f"offset_first must be a bool, got {describe(offset_first)}")
    ob = np.broadcast_to(ob, shape)
    al = np.broadcast_to(al, shape)
    off = np.broadcast_to(off, (*shape, off.shape[-1]))
    if offset_cap is None:
        cap = offset_limit(ob, offset_limit_share)
    else:
        cap = np.broadcast_to(_ints("offset_cap", offset_cap), shape)
    off_avail = off.sum(axis=-1)
    if offset_first:
        off_total = np.minimum(np.minimum(cap, off_avail), ob)
        allow = np.minimum(ob - off_total, al)
    else:
        allow = np.minimum(ob, al)
        off_total = np.minimum(np.minimum(ob - allow, cap), off_avail)
    by_class = np.zeros(off.shape, np.int64)
    rem = off_total.copy()
    for k in range(off.shape[-1]):
        take = np.minimum(rem, off[..., k])
        by_class[..., k] = take
        rem = rem - take
    short = ob - allow - off_total
    return SurrenderPlan(allow.astype(np.int64), by_class, short.astype(np.int64))


class SurrenderResult(NamedTuple):
    """What :func:`apply_surrender` surrendered, t.

    Attributes
    ----------
    allowances : ndarray of int64, shape (R, N)
    allowances_by_vintage : ndarray of int64, shape (R, N, V)
    offsets : ndarray of int64, shape (R, N, K)
        Per ledger offset class.
    shortfall : ndarray of int64, shape (R, N)
    """

    allowances: IntArray
    allowances_by_vintage: IntArray
    offsets: IntArray
    shortfall: IntArray


def apply_surrender(
    ledger: Ledger,
    obligation: npt.ArrayLike,
    year: int,
    *,
    offset_limit_share: float = 0.05,
    offset_cap: npt.ArrayLike | None = None,
    offset_first: bool = False,
    eligible_vintages: Iterable[int] | None = None,
    vintage_rule: VintageRule | None = None,
    eligible_offset_classes: Sequence[str] | None = None,
) -> SurrenderResult:
    """Surrender at the deadline through the ledger, as far as each unit's holdings go.

    Allowances come from the eligible vintages, oldest first; offsets from the eligible
    classes in the order given, up to the cap (:func:`surrender_plan`).

    Parameters
    ----------
    ledger : Ledger
        The registry; changed in place.
    obligation : array_like of int, shape (R, N)
        Tonnes each unit must surrender (>= 0), e.g. :func:`obligation` plus any carried
        obligation.
    year : int
        Compliance year.
    offset_limit_share, offset_cap, offset_first
        As in :func:`surrender_plan`.
    eligible_vintages : iterable of int, optional
        Vintages that count for ``year``; default ``ledger.eligible_vintages(year,
        vintage_rule)``. For the 2021-22 deadline include 2023 so that borrowed
        allowances count.
    vintage_rule : callable ``(vintage, year) -> bool``, optional
        Used when ``eligible_vintages`` is None.
    eligible_offset_classes : sequence of str, optional
        Classes usable, in the order they are used; default all ledger classes in order.

    Returns
    -------
    SurrenderResult
    """
    if not isinstance(ledger, Ledger):
        raise TypeError(f"ledger must be a Ledger, got {type(ledger).__name__}")
    shape = (ledger.n_replicates, ledger.n_units)
    ob = _ints("obligation", obligation)
    if ob.shape != shape:
        raise ValueError(f"obligation must have shape (R, N) = {shape}, got {ob.shape}")
    if eligible_vintages is None:
        vint = ledger.eligible_vintages(year, vintage_rule)
    else:
        vint = [int(v) for v in eligible_vintages]
    vidx = [ledger.vintage_index(v, op="apply_surrender") for v in vint]
    classes = (
        list(ledger.offset_classes)
        if eligible_offset_classes is None
        else list(eligible_offset_classes)
    )
    if len(set(classes)) != len(classes):
        raise ValueError(f"eligible_offset_classes must not repeat a class, got {classes!r}")
    kidx = [ledger.offset_class_index(c, op="apply_surrender") for c in classes]
    held = ledger.allowances[:, :, vidx].sum(axis=2)
    plan = surrender_plan(
        ob,
        held,
        ledger.offsets[:, :, kidx],
        offset_limit_share=offset_limit_share,
        offset_cap=offset_cap,
        offset_first=offset_first,
    )
    offsets = np.zeros(ledger.offsets.shape, np.int64)
    offsets[:, :, kidx] = plan.offsets
    by_vintage = ledger.surrender(plan.allowances, vint)
    if offsets.any():
        ledger.surrender_offsets(offsets)
    return SurrenderResult(plan.allowances, by_vintage, offsets, plan.shortfall)


# --------------------------------------------------------------------------------------
# borrowing and banking
# --------------------------------------------------------------------------------------


def _year(year: int) -> int:
    if isinstance(year, bool) or not isinstance(year, (int, np.integer)):
        raise TypeError(f"year must be an int, got {describe(year)}")
    return int(year)


def _years(name: str, years: Iterable[int]) -> frozenset[int]:
    out = set()
    for y in years:
        if isinstance(y, bool) or not isinstance(y, (int, np.integer)):
            raise TypeError(f"{name} must hold int years, got {describe(y)}")
        out.add(int(y))
    return frozenset(out)


def borrowing_allowed(
    gap: npt.ArrayLike,
    allocation: npt.ArrayLike,
    year: int,
    *,
    threshold_share: float = 0.10,
    years: Iterable[int] = (2021, 2022),
    inclusive: bool = False,
) -> npt.NDArray[np.bool_]:
    """Which units may borrow: ``year`` in ``years`` and ``gap > threshold x allocation``.

    docs/rules.md#borrowing: "Borrowing: 2021-22 only, units with a gap > 10% of allocation
    could borrow up to 50% of the gap from the next vintage. Not allowed from 2023." The
    table's ">" is the default; ``inclusive=True`` reads the threshold as "10% and above". A
    unit with a gap and no allocation qualifies.

    Parameters
    ----------
    gap : array_like of int, shape (..., N)
        Shortfall of allowances, t (>= 0), e.g. ``np.maximum(obligation - allocation, 0)``.
    allocation : array_like of int, shape (..., N)
        Allocation for the year, t (>= 0).
    year : int
        Compliance year.
    threshold_share : float
        Gap threshold as a share of the allocation, in [0, 1].
    years : iterable of int
        Compliance years in which borrowing is allowed.
    inclusive : bool
        Whether a gap exactly at the threshold qualifies.

    Returns
    -------
    ndarray of bool, shape (..., N)

    Examples
    --------
    >>> borrowing_allowed([150_000, 100_000], [1_000_000, 1_000_000], 2022).tolist()
    [True, False]
    >>> borrowing_allowed([150_000], [1_000_000], 2023).tolist()
    [False]
    """
    g = _ints("gap", gap)
    a = _ints("allocation", allocation)
    t = _fraction("threshold_share", threshold_share)
    allowed_year = _year(year) in _years("years", years)
    # gap > t x allocation  <=>  gap x den > num x allocation (exact)
    lhs = _times(g, t.denominator)
    rhs = _times(a, t.numerator)
    over = np.asarray(lhs >= rhs if inclusive else lhs > rhs, dtype=np.bool_)
    return np.asarray(over & (g > 0) & allowed_year, dtype=np.bool_)


def borrowing_amount(
    gap: npt.ArrayLike,
    allocation: npt.ArrayLike,
    year: int,
    *,
    max_share: float = 0.5,
    threshold_share: float = 0.10,
    years: Iterable[int] = (2021, 2022),
    inclusive: bool = False,
) -> IntArray:
    """Most a unit may borrow from the next vintage: ``floor(max_share x gap)`` if allowed.

    docs/rules.md#borrowing (see :func:`borrowing_allowed` for the eligibility test and
    arguments). Apply it with :meth:`Ledger.borrow <carbonsim.market.ledger.Ledger.borrow>`.

    Parameters
    ----------
    max_share : float
        Largest share of the gap that may be borrowed, in [0, 1].

    Returns
    -------
    ndarray of int64, shape (..., N)
        Tonnes, zero where borrowing is not allowed.

    Examples
    --------
    >>> borrowing_amount([150_000, 100_000], [1_000_000, 1_000_000], 2021).tolist()
    [75000, 0]
    """
    ok = borrowing_allowed(
        gap, allocation, year, threshold_share=threshold_share, years=years, inclusive=inclusive
    )
    g = np.broadcast_to(_ints("gap", gap), ok.shape)
    amount = _mul_floor(np.ascontiguousarray(g), _fraction("max_share", max_share))
    return np.where(ok, amount, 0).astype(np.int64)


def banking_limit(
    net_sales: npt.ArrayLike,
    year: int,
    *,
    base: int = 10_000,
    sales_multiple: float = 1.5,
    restricted_years: Iterable[int] = (2024, 2025),
) -> IntArray:
    """Most allowances a unit may bank (carry into the next vintage) after ``year``.

    docs/rules.md#banking-limit: "Banking: unrestricted until 2023; for 2024-25, at most
    10,000 t + 1.5 x net sales may be carried into the 2025 vintage":
    ``base + floor(sales_multiple x max(net_sales, 0))`` in restricted years (a net buyer
    keeps the base only), :data:`UNLIMITED` otherwise.

    Parameters
    ----------
    net_sales : array_like of int, shape (..., N)
        Sales minus purchases over the period, t (negative for net buyers).
    year : int
        Compliance year whose surplus is carried.
    base : int
        Fixed allowance, t (>= 0).
    sales_multiple : float
        Multiple of net sales, in [0, 100].
    restricted_years : iterable of int
        Years in which the limit applies.

    Returns
    -------
    ndarray of int64, shape (..., N)

    Examples
    --------
    >>> banking_limit([20_000, -5_000], 2024).tolist()
    [40000, 10000]
    >>> bool((banking_limit([20_000], 2023) == UNLIMITED).all())
    True
    """
    ns = _ints("net_sales", net_sales, nonnegative=False)
    if isinstance(base, bool) or not isinstance(base, (int, np.integer)) or base < 0:
        raise ValueError(f"base must be a non-negative int (t), got {describe(base)}")
    m = _fraction("sales_multiple", sales_multiple, 0.0, 100.0)
    if _year(year) not in _years("restricted_years", restricted_years):
        return np.full(ns.shape, UNLIMITED, dtype=np.int64)
    return (int(base) + _mul_floor(np.maximum(ns, 0), m)).astype(np.int64)


class BankingResult(NamedTuple):
    """What :func:`apply_banking_limit` did, t, each (R, N).

    Attributes
    ----------
    limit : ndarray of int64
        Banking limit (:data:`UNLIMITED` where unrestricted).
    cancelled : ndarray of int64
        Holdings above the limit, cancelled.
    carried : ndarray of int64
        Holdings re-denominated into ``into_vintage`` (zero if none was given).
    """

    limit: IntArray
    cancelled: IntArray
    carried: IntArray


def apply_banking_limit(
    ledger: Ledger,
    net_sales: npt.ArrayLike,
    year: int,
    *,
    from_vintages: Iterable[int] | None = None,
    into_vintage: int | None = None,
    base: int = 10_000,
    sales_multiple: float = 1.5,
    restricted_years: Iterable[int] = (2024, 2025),
) -> BankingResult:
    """Enforce the banking limit after the deadline of ``year`` through the ledger.

    Each unit's holdings of ``from_vintages`` above :func:`banking_limit` are **cancelled**
    (oldest vintage first, so the newest tonnes are the ones kept); they can no longer be
    used or sold. If ``into_vintage`` is given the remaining holdings of ``from_vintages``
    are then carried into it with :meth:`Ledger.carry
    <carbonsim.market.ledger.Ledger.carry>` ("carried into the 2025 vintage",
    docs/rules.md#banking-limit); otherwise they stay as banked older vintages.

    Parameters
    ----------
    ledger : Ledger
        The registry; changed in place.
    net_sales : array_like of int, shape (R, N)
        Net sales over the period, t.
    year : int
        Compliance year whose surplus is carried.
    from_vintages : iterable of int, optional
        Vintages that count as banked holdings; default all ledger vintages ``<= year``.
    into_vintage : int, optional
        Vintage the kept holdings are carried into (must not be in ``from_vintages``).
    base, sales_multiple, restricted_years
        As in :func:`banking_limit`.

    Returns
    -------
    BankingResult
    """
    if not isinstance(ledger, Ledger):
        raise TypeError(f"ledger must be a Ledger, got {type(ledger).__name__}")
    op = "apply_banking_limit"
    y = _year(year)
    shape = (ledger.n_replicates, ledger.n_units)
    ns = _ints("net_sales", net_sales, nonnegative=False)
    if ns.shape != shape:
        raise ValueError(f"net_sales must have shape (R, N) = {shape}, got {ns.shape}")
    if from_vintages is None:
        vint = [int(v) for v in ledger.vintages if v <= y]
    else:
        vint = sorted({int(v) for v in from_vintages})
    vidx = [ledger.vintage_index(v, op=op) for v in vint]
    if into_vintage is not None:
        ledger.vintage_index(into_vintage, op=op)
        if int(into_vintage) in vint:
            raise ValueError(
                f"{op}: into_vintage {into_vintage} must not be one of from_vintages {vint}"
            )
    limit = banking_limit(
        ns, y, base=base, sales_multiple=sales_multiple, restricted_years=restricted_years
    )
    held = np.maximum(ledger.allowances[:, :, vidx].sum(axis=2), 0)
    excess = np.maximum(held - limit, 0)
    if excess.any():
        ledger.cancel(excess, vint)
    carried = np.zeros(shape, np.int64)
    if into_vintage is not None:
        carried = held - excess
        if carried.any():
            ledger.carry(carried, vint, into_vintage)
    return BankingResult(limit, excess.astype(np.int64), carried.astype(np.int64))


# --------------------------------------------------------------------------------------
# staged deadlines
# --------------------------------------------------------------------------------------


def deadline_stages(
    shares: Sequence[float] = (0.95, 1.0),
    *,
    key: npt.ArrayLike | None = None,
    shape: tuple[int, ...] | None = None,
    rng: SeedLike = None,
) -> IntArray:
    """Assign units to staged surrender deadlines.

    docs/rules.md#staged-deadlines, 2nd cycle: "95% of units by 15 Nov 2023, all by 31 Dec
    2023". ``shares`` are the cumulative shares of units that must have surrendered by each
    stage; stage ``s`` holds the units ranked
    ``ceil(shares[s-1] x N) .. ceil(shares[s] x N) - 1`` (so at least the stated share is
    done by each deadline). Units are ranked along the last axis:

    - by ``key`` ascending (ties by unit order): e.g. pass the gap rate so that the units
      with the largest shortfalls get the latest deadline, or emissions to let the largest
      units surrender last;
    - or, with ``shape`` instead of ``key``, in a random order drawn from ``rng``
      (independently for each leading index).

    A unit in stage ``s`` must surrender by deadline ``s``: ``stages <= s`` selects those due
    at deadline ``s``.

    Parameters
    ----------
    shares : sequence of float
        Cumulative shares in (0, 1], non-decreasing, the last equal to 1.
    key : array_like of float, shape (..., N), optional
        Ranking key.
    shape : tuple of int, optional
        Output shape (..., N) for a random ranking.
    rng : int, SeedSequence, Generator or None
        Randomness for the random ranking.

    Returns
    -------
    ndarray of int64, shape (..., N)
        Stage index ``0 .. len(shares) - 1`` of each unit.

    Examples
    --------
    >>> deadline_stages((0.5, 1.0), key=[3.0, 1.0, 2.0, 0.0]).tolist()
    [1, 0, 1, 0]
    """
    s = list(shares)
    if not s:
        raise ValueError("shares must hold at least one stage, got an empty sequence")
    fr = [_fraction(f"shares[{i}]", x, 0.0, 1.0) for i, x in enumerate(s)]
    if any(f <= 0 for f in fr):
        raise ValueError(f"shares must be > 0, got {describe(s)}")
    if any(b < a for a, b in itertools.pairwise(fr)):
        raise ValueError(f"shares must be non-decreasing, got {describe(s)}")
    if fr[-1] != 1:
        raise ValueError(f"the last share must be 1 (all units), got {s[-1]!r}")
    if (key is None) == (shape is None):
        raise ValueError("pass exactly one of key (rank by key) and shape (random ranking)")
    if key is not None:
        k = as_float_array("key", key, ndim=None)
    else:
        dims = tuple(shape) if shape is not None else ()
        if not dims or any(
            isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0 for d in dims
        ):
            raise ValueError(f"shape must be a non-empty tuple of non-negative ints, got {shape!r}")
        k = as_generator(rng).random(dims)
    if k.ndim == 0:
        raise ValueError("key must have a unit axis (..., N), got a scalar")
    n = k.shape[-1]
    order = np.argsort(k, axis=-1, kind="stable")
    rank = np.empty(k.shape, np.int64)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), k.shape), axis=-1)
    counts = np.array([int(_mul_ceil(np.array([n], np.int64), f)[0]) for f in fr], np.int64)
    return np.searchsorted(counts, rank, side="right").astype(np.int64)
