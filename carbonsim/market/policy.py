"""Policy instruments as pure functions of arrays; the engine decides when to apply them.

- **Price floor and ceiling** (:func:`apply_price_limits`, :func:`excess_demand`,
  :func:`ceiling_release`, :func:`floor_purchase`): the government sells from a reserve at
  the ceiling and buys at the floor the quantity that makes the market clear at the limit.
- **Beijing price band** (docs/rules.md#beijing-band: "Price band 20-150 yuan/t: sustained
  prices outside it trigger a government auction or buy-back (trigger window: treat as a
  parameter, conf. C)"): :class:`BandTriggerState`, :func:`band_trigger_init`,
  :func:`update_band_trigger`.
- **EU Market Stability Reserve** (docs/rules.md#msr-tnac, docs/rules.md#msr-intake,
  docs/rules.md#msr-invalidation: "if the total number of allowances in circulation (TNAC)
  exceeds 833 Mt, 24% of TNAC is withheld from auctions (between 833 and 1,096 Mt the intake
  is TNAC - 833 Mt); if TNAC falls below 400 Mt, 100 Mt are released. Holdings above 400 Mt
  are invalidated."): :func:`tnac`, :func:`msr_intake`, :func:`msr_invalidation`.
- **Holding limits** (DESIGN.md, "Policy instruments"): :func:`apply_holding_limit`.

All functions broadcast over leading axes, so one call serves one replicate ``()`` or many
``(R,)``, and units ``(..., N)``. Quantities are tonnes (integer ``int64`` where they move
allowances); prices are currency per tonne (yuan/t in China, EUR/t in the EU).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonsim._validation import (
    as_float_array,
    as_int_array,
    check_in_range,
    describe,
)

__all__ = [
    "BEIJING_BAND",
    "BandTriggerState",
    "BandTriggerUpdate",
    "MSRFlow",
    "apply_holding_limit",
    "apply_price_limits",
    "band_trigger_init",
    "ceiling_release",
    "excess_demand",
    "floor_purchase",
    "msr_intake",
    "msr_invalidation",
    "tnac",
    "update_band_trigger",
]

logger = logging.getLogger(__name__)

#: Beijing pilot price band, yuan/t (docs/rules.md#beijing-band: "Price band 20-150
#: yuan/t").
BEIJING_BAND: tuple[float, float] = (20.0, 150.0)

# Integer tonnes are derived from float products; round to micro-tonnes before flooring so
# binary representation error (0.24 * 1.2e9 = 288000000.00000006) never costs a tonne.
_ROUND_DECIMALS = 6


def _floor_tonnes(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.floor(np.round(x, _ROUND_DECIMALS)).astype(np.int64)


def _broadcast(**arrays: np.ndarray) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError as exc:
        listing = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
        raise ValueError(f"shapes must broadcast together, got {listing}") from exc


# --------------------------------------------------------------------------------------
# Price floor and ceiling
# --------------------------------------------------------------------------------------


def apply_price_limits(
    price: npt.ArrayLike,
    floor: npt.ArrayLike | None = None,
    ceiling: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """Clip prices into ``[floor, ceiling]``.

    A price floor or ceiling (docs/rules.md#price-limits; DESIGN.md, "Policy instruments";
    the Beijing band limits of docs/rules.md#beijing-band are one instance) holds when the
    government trades at the limit whatever the market would have cleared at; the quantities
    it trades are :func:`ceiling_release` and :func:`floor_purchase`.

    Parameters
    ----------
    price : array_like of float, shape (...)
        Market prices, currency/t (finite).
    floor, ceiling : array_like of float, broadcastable to ``price``, optional
        Limits, currency/t (>= 0); ``None`` for no limit. ``floor <= ceiling``.

    Returns
    -------
    ndarray of float64
        Broadcast shape of the inputs; ``floor <= result <= ceiling``.

    Examples
    --------
    >>> apply_price_limits([10.0, 80.0, 200.0], floor=20.0, ceiling=150.0).tolist()
    [20.0, 80.0, 150.0]
    """
    p = as_float_array("price", price, ndim=None)
    lo = None if floor is None else as_float_array("floor", floor, ndim=None, nonnegative=True)
    hi = (
        None if ceiling is None else as_float_array("ceiling", ceiling, ndim=None, nonnegative=True)
    )
    if lo is not None and hi is not None:
        _broadcast(floor=lo, ceiling=hi)
        bad = np.broadcast_to(lo > hi, np.broadcast_shapes(lo.shape, hi.shape))
        if bad.any():
            i = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
            f = np.broadcast_to(lo, bad.shape)[i].item()
            c = np.broadcast_to(hi, bad.shape)[i].item()
            raise ValueError(f"floor must be <= ceiling, got floor {f!r} > ceiling {c!r}")
    out = p
    if lo is not None:
        _broadcast(price=p, floor=lo)
        out = np.maximum(out, lo)
    if hi is not None:
        _broadcast(price=p, ceiling=hi)
        out = np.minimum(out, hi)
    return np.asarray(out, dtype=np.float64)


def excess_demand(
    bid_price: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    ask_price: npt.ArrayLike,
    ask_qty: npt.ArrayLike,
    price: npt.ArrayLike,
    *,
    tick: float = 0.01,
) -> npt.NDArray[np.int64]:
    """Demand minus supply of a limit-order book at a given price.

    ``demand(p) = sum(bid_qty[bid_price >= p])``, ``supply(p) = sum(ask_qty[ask_price <=
    p])``. Prices are compared in integer ticks (``rint(price / tick)``), as the clearing
    kernels do. Evaluate it at the ceiling for :func:`ceiling_release` and at the floor
    (negated) for :func:`floor_purchase`.

    Parameters
    ----------
    bid_price, bid_qty : array_like, shape (..., K)
        Bids: limit prices (currency/t) and quantities (int t, >= 0).
    ask_price, ask_qty : array_like, shape (..., M)
        Asks: limit prices (currency/t) and quantities (int t, >= 0).
    price : array_like of float, shape (...)
        Price at which to evaluate, currency/t.
    tick : float
        Price tick, currency/t (> 0).

    Returns
    -------
    ndarray of int64, shape (...)
        Excess demand, t (negative: excess supply).

    Examples
    --------
    >>> int(excess_demand([160.0, 150.0, 140.0], [5, 3, 9], [100.0, 149.0], [2, 1], 150.0))
    5
    """
    t = check_in_range("tick", tick, 0.0)
    if t <= 0:
        raise ValueError(f"tick must be > 0, got {tick!r}")
    bp = as_float_array("bid_price", bid_price, ndim=None)
    bq = as_int_array("bid_qty", bid_qty, ndim=None, nonnegative=True)
    ap = as_float_array("ask_price", ask_price, ndim=None)
    aq = as_int_array("ask_qty", ask_qty, ndim=None, nonnegative=True)
    p = as_float_array("price", price, ndim=None)
    for name, arr in (("bid_price", bp), ("ask_price", ap)):
        if arr.ndim == 0:
            raise ValueError(f"{name} must have an order axis (last axis), got a scalar")
    if bp.shape != bq.shape:
        raise ValueError(f"bid_price {bp.shape} and bid_qty {bq.shape} must have the same shape")
    if ap.shape != aq.shape:
        raise ValueError(f"ask_price {ap.shape} and ask_qty {aq.shape} must have the same shape")
    pt = np.rint(p / t).astype(np.int64)[..., None]
    demand = np.where(np.rint(bp / t).astype(np.int64) >= pt, bq, 0).sum(axis=-1)
    supply = np.where(np.rint(ap / t).astype(np.int64) <= pt, aq, 0).sum(axis=-1)
    return np.asarray(demand - supply, dtype=np.int64)


def ceiling_release(
    excess_demand_at_ceiling: npt.ArrayLike, reserve_available: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """Allowances the government sells at the ceiling to hold it.

    ``release = min(max(excess_demand_at_ceiling, 0), reserve_available)``. Offered as an
    ask at the ceiling, a release equal to the excess demand makes supply meet demand at
    the ceiling, so the market clears there (DESIGN.md, "Policy instruments": price
    ceilings). A reserve smaller than the excess demand cannot hold the ceiling; the
    release is then the whole reserve.

    Parameters
    ----------
    excess_demand_at_ceiling : array_like of int, shape (...)
        Demand minus supply at the ceiling, t (see :func:`excess_demand`).
    reserve_available : array_like of int, broadcastable, shape (...)
        Allowances the government can sell, t (>= 0).

    Returns
    -------
    ndarray of int64
        Release, t, in ``[0, reserve_available]``.

    Examples
    --------
    >>> ceiling_release([-5, 40, 400], 100).tolist()
    [0, 40, 100]
    """
    x = as_int_array("excess_demand_at_ceiling", excess_demand_at_ceiling, ndim=None)
    r = as_int_array("reserve_available", reserve_available, ndim=None, nonnegative=True)
    _broadcast(excess_demand_at_ceiling=x, reserve_available=r)
    return np.minimum(np.maximum(x, 0), r).astype(np.int64)


def floor_purchase(
    excess_supply_at_floor: npt.ArrayLike, capacity: npt.ArrayLike | None = None
) -> npt.NDArray[np.int64]:
    """Allowances the government buys at the floor to hold it.

    ``purchase = min(max(excess_supply_at_floor, 0), capacity)`` with
    ``excess_supply_at_floor = -excess_demand(..., floor)``. Placed as a bid at the floor,
    it makes demand meet supply at the floor (DESIGN.md, "Policy instruments": price floors,
    docs/rules.md#price-limits; the buy-back of docs/rules.md#beijing-band).

    Parameters
    ----------
    excess_supply_at_floor : array_like of int, shape (...)
        Supply minus demand at the floor, t.
    capacity : array_like of int, broadcastable, optional
        Most the government will buy, t (>= 0); ``None`` for no limit.

    Returns
    -------
    ndarray of int64
        Purchase, t (>= 0).

    Examples
    --------
    >>> floor_purchase([-3, 7, 70], capacity=50).tolist()
    [0, 7, 50]
    """
    x = as_int_array("excess_supply_at_floor", excess_supply_at_floor, ndim=None)
    out = np.maximum(x, 0)
    if capacity is not None:
        c = as_int_array("capacity", capacity, ndim=None, nonnegative=True)
        _broadcast(excess_supply_at_floor=x, capacity=c)
        out = np.minimum(out, c)
    return np.asarray(out, dtype=np.int64)


# --------------------------------------------------------------------------------------
# Beijing price band trigger
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, init=False)
class BandTriggerState:
    """State of the Beijing band trigger over ``R`` replicates.

    Attributes
    ----------
    closes : ndarray of float64, shape (R, W)
        The last ``W`` (the window) daily closes, oldest first; ``nan`` before ``W`` closes
        have been seen.
    above, below : ndarray of int64, shape (R,)
        Consecutive trading days on which the moving average was above the upper limit /
        below the lower limit, counted since the last intervention.
    """

    closes: npt.NDArray[np.float64]
    above: npt.NDArray[np.int64]
    below: npt.NDArray[np.int64]

    def __init__(self, closes: npt.ArrayLike, above: npt.ArrayLike, below: npt.ArrayLike) -> None:
        closes = np.asarray(closes, dtype=np.float64)
        if closes.ndim != 2 or closes.shape[1] < 1:
            raise ValueError(
                f"BandTriggerState.closes must have shape (R, W) with W >= 1, got {closes.shape}"
            )
        r = closes.shape[0]
        above = as_int_array("BandTriggerState.above", above, nonnegative=True)
        below = as_int_array("BandTriggerState.below", below, nonnegative=True)
        for name, arr in (("above", above), ("below", below)):
            if arr.shape != (r,):
                raise ValueError(f"BandTriggerState.{name} must have shape ({r},), got {arr.shape}")
        object.__setattr__(self, "closes", closes)
        object.__setattr__(self, "above", above)
        object.__setattr__(self, "below", below)

    @property
    def window(self) -> int:
        """Moving-average window ``W``, trading days."""
        return int(self.closes.shape[1])

    @property
    def replicates(self) -> int:
        """Number of replicates ``R``."""
        return int(self.closes.shape[0])


@dataclass(frozen=True, eq=False)
class BandTriggerUpdate:
    """Result of one :func:`update_band_trigger` step.

    Attributes
    ----------
    state : BandTriggerState
        State after the day.
    action : ndarray of int8, shape (R,)
        +1 government auction (sustained prices above the band), -1 buy-back (below),
        0 none.
    quantity : ndarray of int64, shape (R,)
        Tonnes to auction or buy back (0 where ``action == 0``).
    moving_average : ndarray of float64, shape (R,)
        Moving average of the closes compared with the band, yuan/t.
    """

    state: BandTriggerState
    action: npt.NDArray[np.int8]
    quantity: npt.NDArray[np.int64]
    moving_average: npt.NDArray[np.float64]


def band_trigger_init(replicates: int, window: int = 1) -> BandTriggerState:
    """Empty band-trigger state for ``replicates`` replicates.

    Parameters
    ----------
    replicates : int
        ``R`` (>= 1).
    window : int
        Moving-average window ``W`` in trading days (>= 1); 1 compares the daily close
        itself (docs/rules.md#beijing-band: trigger window is a parameter, conf. C).

    Returns
    -------
    BandTriggerState
    """
    for name, v in (("replicates", replicates), ("window", window)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {describe(v)}")
    return BandTriggerState(
        closes=np.full((int(replicates), int(window)), np.nan),
        above=np.zeros(int(replicates), dtype=np.int64),
        below=np.zeros(int(replicates), dtype=np.int64),
    )


def update_band_trigger(
    state: BandTriggerState,
    price: npt.ArrayLike,
    *,
    band: tuple[float, float] = BEIJING_BAND,
    min_days: int = 10,
    quantity: npt.ArrayLike = 0,
) -> BandTriggerUpdate:
    """Advance the Beijing band trigger by one trading day.

    Implements docs/rules.md#beijing-band: "Price band 20-150 yuan/t: sustained prices
    outside it trigger a government auction or buy-back (trigger window: treat as a
    parameter, conf. C)". "Sustained" is read as: the moving average of the last ``W``
    closes (``W = state.window``; averaged over the closes seen so far during the first
    ``W - 1`` days) lies strictly above ``band[1]`` (or strictly below ``band[0]``) on
    ``min_days`` consecutive trading days. On that day the action is +1 (auction) or -1
    (buy-back) and the counters restart, so a further action needs ``min_days`` more days
    outside the band. The defaults (daily close, 10 consecutive days) are one reading of
    the rule (conf. C). The update is deterministic.

    Parameters
    ----------
    state : BandTriggerState
        State over ``R`` replicates (from :func:`band_trigger_init`).
    price : array_like of float, shape (R,)
        Today's closing price, yuan/t (finite, >= 0).
    band : (float, float)
        Lower and upper limit, yuan/t; default ``(20, 150)``.
    min_days : int
        Consecutive days outside the band that trigger an intervention (>= 1).
    quantity : array_like of int, shape () or (R,)
        Tonnes auctioned or bought back per intervention (>= 0), e.g. a share of the cap.

    Returns
    -------
    BandTriggerUpdate
        New state, ``action`` (R,), ``quantity`` (R,), ``moving_average`` (R,).
    """
    if not isinstance(state, BandTriggerState):
        raise TypeError(f"state must be BandTriggerState, got {type(state).__name__}")
    r = state.replicates
    p = as_float_array("price", price, ndim=None, nonnegative=True)
    if p.shape not in ((r,), ()):
        raise ValueError(f"price must have shape ({r},) (one close per replicate), got {p.shape}")
    if not isinstance(band, tuple) or len(band) != 2:
        raise ValueError(f"band must be a (lower, upper) tuple, got {describe(band)}")
    lower = check_in_range("band[0]", band[0], 0.0)
    upper = check_in_range("band[1]", band[1], 0.0)
    if lower > upper:
        raise ValueError(f"band must satisfy lower <= upper, got {band!r}")
    if isinstance(min_days, bool) or not isinstance(min_days, (int, np.integer)) or min_days < 1:
        raise ValueError(f"min_days must be an int >= 1, got {describe(min_days)}")
    q = as_int_array("quantity", quantity, ndim=None, nonnegative=True)
    if q.shape not in ((r,), ()):
        raise ValueError(f"quantity must be a scalar or have shape ({r},), got {q.shape}")

    closes = np.concatenate([state.closes[:, 1:], np.broadcast_to(p, (r,))[:, None]], axis=1)
    seen = ~np.isnan(closes)
    ma = np.where(seen, closes, 0.0).sum(axis=1) / seen.sum(axis=1)
    above = np.where(ma > upper, state.above + 1, 0)
    below = np.where(ma < lower, state.below + 1, 0)
    action = np.zeros(r, dtype=np.int8)
    action[above >= min_days] = 1
    action[below >= min_days] = -1
    fired = action != 0
    above = np.where(fired, 0, above)
    below = np.where(fired, 0, below)
    qty = np.where(fired, np.broadcast_to(q, (r,)), 0).astype(np.int64)
    if fired.any():
        logger.debug(
            "band trigger: %d auctions, %d buy-backs", (action > 0).sum(), (action < 0).sum()
        )
    return BandTriggerUpdate(
        state=BandTriggerState(closes=closes, above=above, below=below),
        action=action,
        quantity=qty,
        moving_average=ma,
    )


# --------------------------------------------------------------------------------------
# EU Market Stability Reserve
# --------------------------------------------------------------------------------------


def tnac(
    supply: npt.ArrayLike, emissions: npt.ArrayLike, msr_holdings: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Total number of allowances in circulation, simplified.

    ``TNAC = supply - emissions - msr_holdings`` (docs/rules.md#msr-tnac), where ``supply``
    is every allowance issued since the start of the period (free, auctioned, and
    international credits used), ``emissions`` the cumulative verified emissions (allowances
    surrendered) and ``msr_holdings`` the allowances in the reserve. The Commission's
    formula also subtracts allowances cancelled and adds aviation and other adjustments;
    those are left to the caller (fold them into ``supply``).

    Parameters
    ----------
    supply, emissions, msr_holdings : array_like of float, broadcastable, shape (...)
        Cumulative quantities, t (>= 0).

    Returns
    -------
    ndarray of float64
        TNAC, t (>= 0).

    Raises
    ------
    ValueError
        If the result is negative (the inputs are inconsistent: more surrendered or held
        in the reserve than ever issued).
    """
    s = as_float_array("supply", supply, ndim=None, nonnegative=True)
    e = as_float_array("emissions", emissions, ndim=None, nonnegative=True)
    h = as_float_array("msr_holdings", msr_holdings, ndim=None, nonnegative=True)
    _broadcast(supply=s, emissions=e, msr_holdings=h)
    out = np.asarray(s - e - h, dtype=np.float64)
    bad = out < 0
    if bad.any():
        i = np.unravel_index(int(np.flatnonzero(bad)[0]), out.shape)
        raise ValueError(
            f"supply - emissions - msr_holdings must be >= 0, got {out[i].item()!r} at index "
            f"{tuple(int(k) for k in i)}"
        )
    return out


@dataclass(frozen=True, eq=False)
class MSRFlow:
    """Annual flows into and out of the Market Stability Reserve.

    Attributes
    ----------
    intake : ndarray of int64, shape (...)
        Allowances withheld from auctions and placed in the reserve, t (>= 0).
    release : ndarray of int64, shape (...)
        Allowances released from the reserve to auctions, t (>= 0).
    """

    intake: npt.NDArray[np.int64]
    release: npt.NDArray[np.int64]

    @property
    def net(self) -> npt.NDArray[np.int64]:
        """Net change of the reserve's holdings, ``intake - release``, t."""
        return np.asarray(self.intake - self.release, dtype=np.int64)


def msr_intake(
    tnac: npt.ArrayLike,
    *,
    upper: float = 833e6,
    lower: float = 400e6,
    rate: float = 0.24,
    release: float = 100e6,
    buffer_upper: float = 1096e6,
    msr_holdings: npt.ArrayLike | None = None,
) -> MSRFlow:
    """Market Stability Reserve intake and release for one year's TNAC.

    Implements docs/rules.md#msr-intake: "if TNAC exceeds 833 Mt, 24% of TNAC is withheld
    from auctions (between 833 and 1,096 Mt the intake is TNAC - 833 Mt); if TNAC falls
    below 400 Mt, 100 Mt are released"::

        intake  = rate * TNAC       if TNAC > buffer_upper
                  TNAC - upper      if upper < TNAC <= buffer_upper
                  0                 otherwise
        release = min(release, msr_holdings)   if TNAC < lower, else 0

    both rounded down to whole tonnes. The intake is continuous at ``upper`` and, at
    ``buffer_upper``, jumps by ``rate * buffer_upper - (buffer_upper - upper)`` (0.04 Mt
    with the defaults; zero when ``buffer_upper = upper / (1 - rate)``). The quantities
    are annual; the rule spreads the intake over the next 12 months of auctions, which is
    the engine's schedule.

    Parameters
    ----------
    tnac : array_like of float, shape (...)
        Total number of allowances in circulation, t (>= 0); see :func:`tnac`.
    upper : float
        Intake threshold, t.
    lower : float
        Release threshold, t (``lower <= upper``).
    rate : float
        Intake rate, in (0, 1].
    release : float
        Release quantity, t (>= 0).
    buffer_upper : float
        TNAC above which the intake is ``rate * TNAC``, t; must lie in
        ``[upper, upper / (1 - rate)]`` so that the intake never exceeds ``rate * TNAC``.
    msr_holdings : array_like of float, broadcastable, optional
        Allowances in the reserve, t (>= 0); caps the release. ``None``: no cap.

    Returns
    -------
    MSRFlow
        ``intake`` and ``release``, int64 t, broadcast shape.

    Examples
    --------
    >>> flow = msr_intake([1_200e6, 900e6, 600e6, 350e6])
    >>> flow.intake.tolist(), flow.release.tolist()
    ([288000000, 67000000, 0, 0], [0, 0, 0, 100000000])
    """
    x = as_float_array("tnac", tnac, ndim=None, nonnegative=True)
    up = check_in_range("upper", upper, 0.0)
    lo = check_in_range("lower", lower, 0.0, up)
    r = check_in_range("rate", rate, 0.0, 1.0)
    if r <= 0:
        raise ValueError(f"rate must lie in (0, 1], got {rate!r}")
    rel = check_in_range("release", release, 0.0)
    hi_max = np.inf if r >= 1 else up / (1.0 - r)
    bu = check_in_range("buffer_upper", buffer_upper, up)
    if bu > hi_max * (1 + 1e-12):
        raise ValueError(
            f"buffer_upper must lie in [upper, upper / (1 - rate)] = [{up!r}, {hi_max!r}] so "
            f"that the intake never exceeds rate * TNAC, got {bu!r}"
        )
    intake = np.where(x > bu, r * x, np.where(x > up, x - up, 0.0))
    out_release = np.where(x < lo, rel, 0.0)
    if msr_holdings is not None:
        h = as_float_array("msr_holdings", msr_holdings, ndim=None, nonnegative=True)
        _broadcast(tnac=x, msr_holdings=h)
        out_release = np.minimum(out_release, h)
    return MSRFlow(intake=_floor_tonnes(intake), release=_floor_tonnes(out_release))


def msr_invalidation(
    msr_holdings: npt.ArrayLike, threshold: float = 400e6
) -> npt.NDArray[np.int64]:
    """Allowances in the reserve invalidated because they exceed ``threshold``.

    Implements docs/rules.md#msr-invalidation: "Holdings above 400 Mt are invalidated":
    ``invalidated = max(msr_holdings - threshold, 0)``, whole tonnes (rounded down). The
    holdings after invalidation are ``msr_holdings - invalidated``.

    Parameters
    ----------
    msr_holdings : array_like of float, shape (...)
        Allowances in the reserve, t (>= 0).
    threshold : float
        Most the reserve keeps, t (>= 0).

    Returns
    -------
    ndarray of int64, shape (...)
        Invalidated allowances, t.

    Examples
    --------
    >>> msr_invalidation([350e6, 1_000e6]).tolist()
    [0, 600000000]
    """
    h = as_float_array("msr_holdings", msr_holdings, ndim=None, nonnegative=True)
    t = check_in_range("threshold", threshold, 0.0)
    return _floor_tonnes(np.maximum(h - t, 0.0))


# --------------------------------------------------------------------------------------
# Holding limits
# --------------------------------------------------------------------------------------


def apply_holding_limit(
    holdings: npt.ArrayLike, buy_qty: npt.ArrayLike, limit: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """Clip purchases so that no unit's holdings exceed ``limit``.

    ``clipped = min(buy_qty, max(limit - holdings, 0))`` (DESIGN.md, "Policy instruments":
    holding limits). A unit already at or above the limit buys nothing; nobody is forced
    to sell.

    Parameters
    ----------
    holdings : array_like of int, shape (..., N)
        Allowances held, t (>= 0).
    buy_qty : array_like of int, broadcastable to (..., N)
        Intended purchases, t (>= 0).
    limit : array_like of int, broadcastable to (..., N)
        Position limit per unit, t (>= 0).

    Returns
    -------
    ndarray of int64, shape (..., N)
        Purchases allowed, t, in ``[0, buy_qty]``; ``holdings + clipped <= max(limit,
        holdings)``.

    Examples
    --------
    >>> apply_holding_limit([0, 90, 120], [50, 50, 50], 100).tolist()
    [50, 10, 0]
    """
    h = as_int_array("holdings", holdings, ndim=None, nonnegative=True)
    b = as_int_array("buy_qty", buy_qty, ndim=None, nonnegative=True)
    lim = as_int_array("limit", limit, ndim=None, nonnegative=True)
    _broadcast(holdings=h, buy_qty=b, limit=lim)
    return np.minimum(b, np.maximum(lim - h, 0)).astype(np.int64)
