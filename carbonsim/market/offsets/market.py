"""The offset market: covered units' bids, cleared against project supply.

Offsets trade in their own market with their own price: :func:`clear_offset_market` clears
buyers' bids against project supply with the uniform-price call auction of
:mod:`carbonsim.clearing.call_auction`; :func:`offset_demand` turns a unit's cap and
remaining obligation into a bid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonsim._validation import (
    as_float_array,
    as_int_array,
    check_share,
)
from carbonsim.clearing.call_auction import call_auction

__all__ = ["OffsetClearing", "OffsetDemand", "clear_offset_market", "offset_demand"]

# --------------------------------------------------------------------------------------
# Offset market
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OffsetDemand:
    """Bids of covered units in the offset market.

    Attributes
    ----------
    price : ndarray of float64, shape (..., N)
        Willingness to pay, yuan/t.
    qty : ndarray of int64, shape (..., N)
        Credits wanted, t.
    """

    price: npt.NDArray[np.float64]
    qty: npt.NDArray[np.int64]


def offset_demand(
    cap: npt.ArrayLike,
    remaining_obligation: npt.ArrayLike,
    expected_allowance_price: npt.ArrayLike,
    *,
    discount: float = 0.1,
    held: npt.ArrayLike = 0,
) -> OffsetDemand:
    """A unit's bid for offsets: up to its usage cap, at a discount to allowances.

    A credit replaces one allowance in the surrender, up to the usage cap
    (docs/rules.md#offset-limit: "at most 5% of the allowances to be surrendered";
    docs/rules.md#offset-market), so a unit wants
    ``max(min(cap, remaining_obligation) - held, 0)`` credits and pays at most
    ``expected_allowance_price x (1 - discount)``. The discount prices what makes a credit
    worth less than an allowance: the cap, the eligibility risk and the transaction cost; it
    is a behavioural parameter (conf. C).

    Parameters
    ----------
    cap : array_like of int, shape (..., N)
        Usage cap, t (from :func:`usage_cap`).
    remaining_obligation : array_like of int, shape (..., N)
        Allowances still to surrender, t (>= 0).
    expected_allowance_price : array_like of float, broadcastable to (..., N)
        Expected allowance price, yuan/t (>= 0).
    discount : float
        Discount of credits to allowances, in [0, 1].
    held : array_like of int, broadcastable to (..., N)
        Eligible credits already held, t (>= 0).

    Returns
    -------
    OffsetDemand
        ``price`` (..., N) yuan/t and ``qty`` (..., N) int64 t.

    Examples
    --------
    >>> d = offset_demand([50, 50], [30, 200], 80.0, discount=0.25, held=[0, 20])
    >>> d.qty.tolist(), d.price.tolist()
    ([30, 30], [60.0, 60.0])
    """
    c = as_int_array("cap", cap, ndim=None, nonnegative=True)
    rem = as_int_array("remaining_obligation", remaining_obligation, ndim=None, nonnegative=True)
    p = as_float_array(
        "expected_allowance_price", expected_allowance_price, ndim=None, nonnegative=True
    )
    d = check_share("discount", discount)
    h = as_int_array("held", held, ndim=None, nonnegative=True)
    try:
        shape = np.broadcast_shapes(c.shape, rem.shape, p.shape, h.shape)
    except ValueError as exc:
        raise ValueError(
            f"cap {c.shape}, remaining_obligation {rem.shape}, expected_allowance_price "
            f"{p.shape} and held {h.shape} must broadcast together"
        ) from exc
    qty = np.maximum(np.minimum(c, rem) - h, 0)
    price = np.broadcast_to(p * (1.0 - d), shape).astype(np.float64)
    return OffsetDemand(price=price, qty=np.broadcast_to(qty, shape).astype(np.int64))


@dataclass(frozen=True, eq=False)
class OffsetClearing:
    """Outcome of the offset market over ``R`` replicates.

    Attributes
    ----------
    price : ndarray of float64, shape (R,)
        Offset clearing price, yuan/t; without a trade the reference price (snapped to the
        tick) or ``nan`` when there is none.
    volume : ndarray of int64, shape (R,)
        Credits traded, t.
    buyer_fill : ndarray of int64, shape (R, N)
        Credits bought by each covered unit, t.
    project_fill : ndarray of int64, shape (R, P)
        Credits sold by each project, t.
    imbalance : ndarray of float64, shape (R,)
        Demand minus supply at the price, t (``nan`` without a price).
    """

    price: npt.NDArray[np.float64]
    volume: npt.NDArray[np.int64]
    buyer_fill: npt.NDArray[np.int64]
    project_fill: npt.NDArray[np.int64]
    imbalance: npt.NDArray[np.float64]


def _to_2d(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 1:
        return arr[None, :]
    if arr.ndim == 2:
        return arr
    raise ValueError(f"{name} must have shape (n,) or (R, n), got {arr.shape}")


def _whole(fill: np.ndarray) -> npt.NDArray[np.int64]:
    # The kernel rations whole quantities in whole units (largest remainder), so the fills
    # are whole numbers held in float64; convert them exactly.
    return np.rint(fill).astype(np.int64)


def clear_offset_market(
    demand_price: npt.ArrayLike,
    demand_qty: npt.ArrayLike,
    supply_price: npt.ArrayLike,
    supply_qty: npt.ArrayLike,
    *,
    tick: float = 0.01,
    reference_price: float | npt.ArrayLike | None = None,
) -> OffsetClearing:
    """Clear the offset (CCER) market: covered units' bids against projects' credits.

    Offsets trade in their own market with their own price (DESIGN.md, "Offsets"; the CCER
    market at the Beijing Green Exchange, docs/rules.md#offset-market). Each replicate is
    one uniform-price call auction (:func:`carbonsim.clearing.call_auction.call_auction`,
    pro-rata rationing at the clearing price): buyers bid ``demand_qty`` at ``demand_price``
    (see :func:`offset_demand`, whose quantity never exceeds the usage cap), projects offer
    ``supply_qty`` at ``supply_price`` (their marginal cost). Replicates are cleared one
    call each.

    Parameters
    ----------
    demand_price : array_like of float, shape (N,) or (R, N)
        Buyers' willingness to pay, yuan/t.
    demand_qty : array_like of int, shape (N,) or (R, N)
        Credits wanted, t (>= 0).
    supply_price : array_like of float, shape (P,) or (R, P)
        Projects' reservation prices, yuan/t (e.g. :attr:`OffsetProjects.marginal_cost`).
    supply_qty : array_like of int, shape (P,) or (R, P)
        Credits offered (issued, eligible and unsold), t (>= 0).
    tick : float
        Price step, yuan/t (> 0).
    reference_price : float or array_like of shape (R,), optional
        Previous offset price; breaks price ties and is reported when nothing trades.

    Returns
    -------
    OffsetClearing
        ``price`` (R,), ``volume`` (R,), ``buyer_fill`` (R, N), ``project_fill`` (R, P),
        ``imbalance`` (R,). ``R`` is the leading axis of the inputs that have one, 1 when
        all inputs are one-dimensional.

    Examples
    --------
    >>> out = clear_offset_market([60.0, 55.0], [100, 50], [15.0, 58.0], [70, 100])
    >>> out.price.tolist(), out.volume.tolist(), out.buyer_fill.tolist()
    ([58.0], [100], [[100, 0]])
    >>> out.project_fill.tolist()
    [[70, 30]]
    """
    dp = _to_2d("demand_price", as_float_array("demand_price", demand_price, ndim=None))
    dq = _to_2d("demand_qty", as_int_array("demand_qty", demand_qty, ndim=None, nonnegative=True))
    sp = _to_2d("supply_price", as_float_array("supply_price", supply_price, ndim=None))
    sq = _to_2d("supply_qty", as_int_array("supply_qty", supply_qty, ndim=None, nonnegative=True))
    r = max(dp.shape[0], dq.shape[0], sp.shape[0], sq.shape[0])
    shapes = {"demand_price": dp, "demand_qty": dq, "supply_price": sp, "supply_qty": sq}
    for name, arr in shapes.items():
        if arr.shape[0] not in (1, r):
            raise ValueError(f"{name} has {arr.shape[0]} replicates, expected 1 or {r}")
    if dp.shape[1] != dq.shape[1]:
        raise ValueError(
            f"demand_price and demand_qty must have the same number of buyers, got "
            f"{dp.shape[1]} and {dq.shape[1]}"
        )
    if sp.shape[1] != sq.shape[1]:
        raise ValueError(
            f"supply_price and supply_qty must have the same number of projects, got "
            f"{sp.shape[1]} and {sq.shape[1]}"
        )
    n, p = dp.shape[1], sp.shape[1]
    dp, dq = np.broadcast_to(dp, (r, n)), np.broadcast_to(dq, (r, n))
    sp, sq = np.broadcast_to(sp, (r, p)), np.broadcast_to(sq, (r, p))
    refs: list[float | None]
    if reference_price is None:
        refs = [None] * r
    else:
        ref = as_float_array("reference_price", reference_price, ndim=None, nonnegative=True)
        if ref.shape not in ((), (r,)):
            raise ValueError(f"reference_price must be a scalar or shape ({r},), got {ref.shape}")
        refs = [float(v) for v in np.broadcast_to(ref, (r,))]

    price = np.empty(r)
    volume = np.empty(r, dtype=np.int64)
    imbalance = np.empty(r)
    buyer_fill = np.empty((r, n), dtype=np.int64)
    project_fill = np.empty((r, p), dtype=np.int64)
    for k in range(r):
        res = call_auction(dp[k], dq[k], sp[k], sq[k], tick=tick, reference_price=refs[k])
        price[k] = res.price
        volume[k] = round(res.volume)
        imbalance[k] = res.imbalance
        buyer_fill[k] = _whole(res.bid_fill)
        project_fill[k] = _whole(res.ask_fill)
    return OffsetClearing(
        price=price,
        volume=volume,
        buyer_fill=buyer_fill,
        project_fill=project_fill,
        imbalance=imbalance,
    )
