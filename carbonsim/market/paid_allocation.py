"""Paid allocation: allowances sold to units by a sealed-bid uniform-price auction.

docs/rules.md#paid-auction. The clearing is
:func:`carbonsim.clearing.sealed_bid.sealed_bid_auction`; this module maps one bid per unit
to the allowances won and the payments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonsim._validation import as_float_array
from carbonsim.clearing.sealed_bid import sealed_bid_auction

__all__ = ["AuctionAllocation", "auction_allocation"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class AuctionAllocation:
    """Outcome of a paid-allocation auction, per unit.

    Attributes
    ----------
    allowances : ndarray of float64, shape (N,)
        Allowances won by each unit, whole tonnes.
    payment : ndarray of float64, shape (N,)
        What each unit pays, yuan: clearing price times allowances won.
    price : float
        Uniform clearing price, yuan/t (NaN if nothing cleared, as the kernel reports).
    volume : float
        Allowances sold, t.
    unsold : float
        Supply left unsold, t.
    n_winners : int
        Units that won something.
    """

    allowances: FloatArray
    payment: FloatArray
    price: float
    volume: float
    unsold: float
    n_winners: int


def auction_allocation(
    bid_price: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    supply: float,
    reserve_price: float,
    *,
    tick: float = 0.01,
    allocation: str = "pro_rata",
) -> AuctionAllocation:
    """Paid allocation by sealed-bid uniform-price auction with a reserve price.

    Source: docs/rules.md#paid-auction: "paid allocation by sealed-bid uniform-price
    auction" (e.g. Sep 2024: 68 bidders, 63 winners, 348,304 t at 104.89 yuan/t). Clearing
    is done by :func:`carbonsim.clearing.sealed_bid.sealed_bid_auction`; this function maps
    one bid per unit to allowances and payments.

    Parameters
    ----------
    bid_price : array_like, shape (N,)
        Each unit's bid price, yuan/t.
    bid_qty : array_like, shape (N,)
        Each unit's bid quantity, whole tonnes (0 for units that do not bid).
    supply : float
        Allowances offered, t.
    reserve_price : float
        Lowest acceptable price, yuan/t.
    tick : float
        Price tick, yuan.
    allocation : str
        How the kernel rations bids at the clearing price (its ``allocation`` argument).

    Returns
    -------
    AuctionAllocation
    """

    qty = as_float_array("bid_qty", bid_qty, nonnegative=True)
    res = sealed_bid_auction(
        bid_price,
        bid_qty,
        supply=supply,
        reserve_price=reserve_price,
        tick=tick,
        allocation=allocation,
    )
    fills = np.asarray(res.fills, dtype=np.float64)
    if fills.shape != qty.shape:
        raise ValueError(
            f"sealed_bid_auction returned fills of shape {fills.shape} for {qty.shape} bids"
        )
    price = float(res.price)
    payment = np.where(fills > 0, fills * price, 0.0)
    return AuctionAllocation(
        allowances=fills,
        payment=payment,
        price=price,
        volume=float(res.volume),
        unsold=float(res.unsold),
        n_winners=int(res.n_winners),
    )
