"""The offset market: covered units' bids for credits cleared against project owners' offers.

Offsets trade in their own market with their own price. An offset session
(:class:`carbonsim.engine.offset_session.OffsetSessions`) clears every usable credit class in
turn, in every replicate at once (:func:`clear_offset_classes`): units bid for what their
usage cap leaves (docs/rules.md#offset-limit) at a lognormal scatter around ``(1 - discount)``
times the expected allowance price; project owners offer their stock in :data:`OFFSET_LOTS`
lots; each replicate's uniform-price call auction (:func:`clear_offset_bids`, the batched
kernel of :mod:`carbonsim.clearing`, pro-rata) sets the price; the ledger transfers the
credits. This is the model's one offset market (docs/rules.md#offset-market).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from carbonsim._cells import nonzero_cells, sum_cells
from carbonsim.clearing import call_auction_batch, demand_cutoff
from carbonsim.market.ledger import Ledger

__all__ = ["OFFSET_CUTOFF_Z", "OFFSET_LOTS", "clear_offset_bids", "clear_offset_classes"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


OFFSET_LOTS = 20  # project owners' offers per replicate in one offset session
# standard-normal levels at which offset bids are tried as clearing cut-offs, highest first
OFFSET_CUTOFF_Z = np.array([3.0, 2.0, 1.0, 0.0, -1.0])


def clear_offset_bids(
    bid_market: IntArray,
    bid_price: FloatArray,
    bid_qty: FloatArray,
    ask_market: IntArray,
    ask_price: FloatArray,
    ask_qty: FloatArray,
    *,
    n_markets: int,
    tick: float,
    levels: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One offset class's call auctions in every replicate: the units'
    bids against the project owners' offers, pro-rata, no band and no reference price.

    Bids below the tick where demand alone passes the market's whole supply are left out
    first (:func:`~carbonsim.clearing.batch.demand_cutoff` over the candidate ``levels``
    (L, n_markets), in ticks): they could neither fill nor move the price, so the outcome
    is :func:`~carbonsim.clearing.call_auction_batch`'s on every bid, bit for bit.

    Parameters
    ----------
    bid_market, ask_market : ndarray of int64, shapes (B,), (A,)
        Market (replicate) of each bid and offer.
    bid_price, bid_qty, ask_price, ask_qty : ndarray of float64, shapes (B,), (A,)
        Limit prices (currency per tonne) and whole-tonne quantities.
    n_markets : int
        Number of markets.
    tick : float
        Price step (currency per tonne).
    levels : ndarray of float64, shape (L, n_markets)
        Candidate cut-off ticks.

    Returns
    -------
    price, volume : ndarray of float64, shape (n_markets,)
        Clearing price (NaN where none) and volume (tonnes) per market.
    bid_fill : ndarray of float64, shape (B,)
        Filled tonnes of each bid.
    """
    supply = np.bincount(ask_market, weights=ask_qty, minlength=n_markets)
    bid_tick = np.rint(bid_price / tick)  # the clearing kernel's ticks
    cut = demand_cutoff(bid_market, bid_tick, bid_qty, supply, levels)
    keep = np.flatnonzero(bid_tick >= cut[bid_market])
    res = call_auction_batch(
        np.concatenate([bid_market[keep], ask_market]),
        np.concatenate([np.ones(len(keep), bool), np.zeros(len(ask_market), bool)]),
        np.concatenate([bid_price[keep], ask_price]),
        np.concatenate([bid_qty[keep], ask_qty]),
        n_markets=n_markets,
        tick=tick,
    )
    bid_fill = np.zeros(len(bid_market))
    bid_fill[keep] = res.fill[: len(keep)]
    return np.asarray(res.price), np.asarray(res.volume), bid_fill


def clear_offset_classes(
    ledger: Ledger,
    classes: Sequence[str],
    idx: Sequence[int],
    flat: IntArray,
    cap: FloatArray,
    surrendered: IntArray,
    bid_price: FloatArray,
    ask_price: FloatArray,
    *,
    tick: float,
    levels: FloatArray,
    start: int = 0,
    volume: FloatArray | None = None,
    turnover: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """An offset session's trades, class after class from ``classes[start]``.

    For each usable class (legacy credits first; ``idx`` their ledger indices) the bidders
    ask for what their usage cap leaves after the eligible credits they hold (transfers of
    earlier classes count) or have surrendered; the project owners offer their stock of the
    class in :data:`OFFSET_LOTS` lots per replicate; :func:`clear_offset_bids` clears
    every replicate and the ledger transfers the credits at each replicate's price.

    Parameters
    ----------
    ledger : Ledger
        Changed in place (offsets, project owners' stock and cash, units' cash, journal).
    classes, idx : sequence of str, sequence of int
        The classes usable in the period and their ledger indices.
    flat : ndarray of int, shape (B,)
        Bidders' cells, ``replicate * N + unit``, ascending.
    cap, surrendered : ndarray, shape (B,)
        Each bidder's usage cap (whole tonnes, float64) and credits surrendered (int64).
    bid_price : ndarray of float64, shape (B,)
        Bids, currency per tonne.
    ask_price : ndarray of float64, shape (R, OFFSET_LOTS)
        The lots' offer prices.
    tick, levels
        As :func:`clear_offset_bids`.
    start, volume, turnover
        Resume at class ``start`` with the running totals (R,) of the classes before.

    Returns
    -------
    volume, turnover : ndarray of float64, shape (R,)
        Credits traded (t) and their value (currency) per replicate.
    """
    r, n = ledger.n_replicates, ledger.n_units
    volume = np.zeros(r) if volume is None else volume
    turnover = np.zeros(r) if turnover is None else turnover
    rows, cols = np.divmod(flat, n)
    offsets = ledger.offsets
    for cls, k in list(zip(classes, idx, strict=True))[start:]:
        held = sum_cells(offsets, rows, cols, idx)  # transfers of earlier classes count
        bid_qty = np.maximum(cap - held.astype(np.float64) - surrendered, 0.0)
        stock = ledger.project_offsets[:, k].astype(np.float64)
        lot = np.floor(stock / OFFSET_LOTS)
        ask_qty = np.repeat(lot[:, None], OFFSET_LOTS, axis=1)
        ask_qty[:, -1] += stock - lot * OFFSET_LOTS
        sel = np.flatnonzero(bid_qty >= 1.0)
        ra, la = nonzero_cells(ask_qty >= 1.0)
        if len(sel) == 0 or len(ra) == 0:
            continue
        price, clear_volume, bid_fill = clear_offset_bids(
            rows[sel],
            bid_price[sel],
            bid_qty[sel],
            ra,
            ask_price[ra, la],
            ask_qty[ra, la],
            n_markets=r,
            tick=tick,
            levels=levels,
        )
        fill = bid_fill.astype(np.int64)
        if not fill.any():
            continue
        got = np.zeros((r, n), np.int64)
        got.reshape(-1)[flat[sel]] = fill  # one bid per cell
        px = np.where(np.isnan(price), 0.0, price)
        ledger.transfer_offsets(cls, got, px)
        volume += clear_volume
        turnover += px * clear_volume
    return volume, turnover
