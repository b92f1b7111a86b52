"""The exchange step of a trading session: routing, price bands, both call auctions, settlement."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from carbonsim._cells import unique_inverse
from carbonsim.agents.base import BLOCK, LISTED, MarketView, Orders
from carbonsim.clearing.batch import clear_session
from carbonsim.clearing.ticks import snap_down, snap_up, ticks_to_price
from carbonsim.market.ledger import Ledger
from carbonsim.scenario.schema import TradingSpec

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "check_order_cells",
    "exchange_orders",
    "nan_to_zero",
    "route_orders",
    "session_bands",
    "settle_segments",
]


def nan_to_zero(x: FloatArray) -> FloatArray:
    """``x`` with NaN replaced by 0.0 (``np.nan_to_num`` for arrays without infinities,
    without its Python-level overhead)."""
    return np.where(np.isnan(x), 0.0, x)


def session_bands(
    reference: FloatArray,
    listed_band: float,
    block_band: float,
    tick: float,
    floor: float | None,
    ceiling: float | None,
) -> tuple[FloatArray, FloatArray]:
    """A session's price bands ``(lo, hi)``, each (2R,): listed markets, then block markets.

    The daily bands ``reference * (1 -/+ band)`` snapped inward to the tick grid; a policy
    floor or ceiling (on the grid) overrides them: trades never cross the limit, and a band
    lying wholly beyond it collapses onto the limit.
    """
    r = reference.shape[0]
    both = np.concatenate([reference, reference])
    lo_t = snap_up(both * np.repeat([1.0 - listed_band, 1.0 - block_band], r), tick)
    hi_t = snap_down(both * np.repeat([1.0 + listed_band, 1.0 + block_band], r), tick)
    np.maximum(hi_t, lo_t, out=hi_t)
    lo, hi = ticks_to_price(lo_t, tick), ticks_to_price(hi_t, tick)
    if floor is not None:
        np.maximum(lo, floor, out=lo)
        np.maximum(hi, lo, out=hi)
    if ceiling is not None:
        np.minimum(hi, ceiling, out=hi)
        np.minimum(lo, hi, out=lo)
    return lo, hi


def check_order_cells(orders: Orders, n_replicates: int, n_units: int) -> None:
    """Raise ``ValueError`` naming the first order whose replicate or unit is out of range."""
    for name, idx, size in (
        ("replicate", orders.replicate, n_replicates),
        ("unit", orders.unit, n_units),
    ):
        bad = np.flatnonzero((idx < 0) | (idx >= size))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"orders: {name} index {int(idx[i])} of order {i} is outside [0, {size}); "
                f"a strategy must return orders for the view's {n_replicates} replicates "
                f"and {n_units} units"
            )


def route_orders(
    orders: Orders, view: MarketView, n_units: int, block_min_size: float, listed_max_size: float
) -> Orders:
    """Apply the exchange's order rules to a session's orders.

    A unit's offers together never exceed its holdings (scaled down pro rata, whole
    tonnes); block orders below ``block_min_size`` go to the listed segment; listed orders
    stay below ``listed_max_size``; orders under one tonne are dropped.

    Raises
    ------
    ValueError
        For an order whose replicate or unit lies outside the view's ``(R, N)`` (a
        strategy's mistake), naming the order (:func:`check_order_cells`).
    """
    n = n_units
    if len(orders):
        lo_r, hi_r = int(orders.replicate.min()), int(orders.replicate.max())
        lo_u, hi_u = int(orders.unit.min()), int(orders.unit.max())
        if lo_r < 0 or hi_r >= view.shape[0] or lo_u < 0 or hi_u >= n:
            check_order_cells(orders, view.shape[0], n)
    qty = orders.qty.copy()
    sells = ~orders.is_buy
    if sells.any():
        # a unit's offers together never exceed its holdings: scale them down pro rata
        # (per selling cell: work proportional to the orders, not to R x N)
        cell, inverse = unique_inverse(orders.replicate[sells] * n + orders.unit[sells])
        offered = np.bincount(inverse, weights=qty[sells], minlength=len(cell))
        held = view.holdings_at(cell // n, cell % n)
        scale = np.divide(held, offered, out=np.ones(len(cell)), where=offered > held)
        qty[sells] = np.floor(qty[sells] * scale[inverse])
    segment = orders.segment.copy()
    segment[(segment == BLOCK) & (qty < block_min_size)] = LISTED
    listed = segment == LISTED
    qty[listed] = np.minimum(qty[listed], np.ceil(listed_max_size) - 1.0)
    keep = qty >= 1.0
    return Orders(
        replicate=orders.replicate[keep],
        unit=orders.unit[keep],
        is_buy=orders.is_buy[keep],
        price=orders.price[keep],
        qty=qty[keep],
        segment=segment[keep],
    )


def exchange_orders(
    orders: Orders,
    view: MarketView,
    n_units: int,
    trading: TradingSpec,
    last_close: FloatArray,
    floor: float | None,
    ceiling: float | None,
    choke_price: float,
) -> tuple[Orders, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """A session's exchange step: routing (:func:`route_orders`), the price
    bands (:func:`session_bands`), marketable repricing and both call auctions of every
    replicate (:func:`~carbonsim.clearing.batch.clear_session`; listed markets ``0..R-1``,
    block markets ``R..2R-1``).

    ``view`` answers the holdings reads. Returns ``(routed orders, lo, hi, clear price,
    clear volume, fill)``.
    """
    r = last_close.shape[0]
    routed = route_orders(orders, view, n_units, trading.block_min_size, trading.listed_max_size)
    lo, hi = session_bands(
        last_close, trading.listed_band, trading.block_band, trading.tick, floor, ceiling
    )
    market = routed.replicate + r * (routed.segment == BLOCK)
    # marketable repricing: a buyer willing to pay more than the band's top bids the
    # top; a seller willing to take less than the bottom offers at the bottom
    price = np.minimum(routed.price, choke_price)  # nobody bids above the choke price
    price = np.where(routed.is_buy, np.minimum(price, hi[market]), np.maximum(price, lo[market]))
    clear_price, clear_volume, fill = clear_session(
        market,
        routed.is_buy,
        price,
        routed.qty,
        n_markets=2 * r,
        tick=trading.tick,
        reference_price=np.concatenate([last_close, last_close]),
        band=(lo, hi),
    )
    return routed, lo, hi, clear_price, clear_volume, fill


def settle_segments(
    ledger: Ledger,
    orders: Orders,
    fill: FloatArray,
    codes: Sequence[int],
    prices: Sequence[FloatArray],
    bought: FloatArray | None = None,
    sold: FloatArray | None = None,
    *,
    checked: bool = False,
    start: int = 0,
) -> None:
    """Settle a session's fills segment by segment, from ``codes[start]``.

    The filled orders of segment ``codes[s]`` are aggregated per (replicate, unit) cell and
    settled at ``prices[s]`` (R,) by the ledger (:meth:`~carbonsim.market.ledger.Ledger.
    settle_cells` when ``checked``, else its unchecked core); each cell's tonnes are added
    to the period's ``bought`` and ``sold`` (R, N) when given.
    """
    n = ledger.n_units
    filled = fill > 0
    for seg_code, px in zip(codes[start:], prices[start:], strict=True):
        done = np.flatnonzero(filled & (orders.segment == seg_code))
        if not done.size:
            continue
        # aggregate fills per (replicate, unit) cell: work proportional to the orders
        cell, inverse = unique_inverse(orders.replicate[done] * n + orders.unit[done])
        fill_d = fill[done]
        is_buy = orders.is_buy[done]
        buy = np.rint(np.bincount(inverse, weights=np.where(is_buy, fill_d, 0.0)))
        sell = np.rint(np.bincount(inverse, weights=np.where(is_buy, 0.0, fill_d)))
        buy_i, sell_i = buy.astype(np.int64), sell.astype(np.int64)
        rep_c, unit_c = np.divmod(cell, n)
        if checked:  # the public method re-checks what the engine built
            ledger.settle_cells(rep_c, unit_c, buy_i, sell_i, px)
        else:
            ledger.settle_cells_unchecked(rep_c, unit_c, buy_i, sell_i, px)
        if bought is not None and sold is not None:  # unique cells: flat updates
            bought.reshape(-1)[cell] += buy_i
            sold.reshape(-1)[cell] += sell_i
