"""Offset sessions: units' demand for CCER credits against project owners' stock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from carbonsim._cells import nonzero_cells, sum_cells
from carbonsim.clearing import call_auction_batch, demand_cutoff
from carbonsim.engine.period_events import PeriodEvents
from carbonsim.engine.state import (
    OFFSET_CLASS,
    PROJECT_CLASS,
    T_ALLOCATE,
    PeriodState,
    usable_offset_classes,
)
from carbonsim.market.ledger import Ledger
from carbonsim.market.offsets import issued_credits, synthetic_projects

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "OFFSET_LOTS",
    "OffsetSessions",
    "clear_offset_bids",
    "clear_offset_classes",
]

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


class OffsetSessions(PeriodEvents):
    """The offset (CCER) market inside a run: the legacy stock opens, post-relaunch
    projects issue credits, and an offset session clears every few trading sessions."""

    def _offset_session(self, i: int, p: PeriodState) -> None:
        """Clear the offset market: units' eligible demand against project owners' stock.

        Each class usable for the current period is cleared in turn (legacy credits first),
        in one batched call over replicates per class; demand is what the usage cap leaves
        after the eligible credits a unit holds or has surrendered.
        """
        off = self.scenario.offsets
        r, n = self.n_replicates, self.units.n_units
        classes, idx, stocked = self._offset_stock(p)
        if not classes:
            return
        offsets = self.ledger.offsets
        flat = np.zeros(0, np.intp)
        if stocked.any():
            # the session's obligation estimate (period state the session's trades leave
            # alone)
            assert self._view_source is not None
            assert self._view_source.p is p
            ob = self._view_source.raw_obligation(None)[0]
            cap = np.floor(p.spec.offset_limit_share * np.maximum(ob, 0.0))
            # bidders: units below their usage cap; holdings only grow within the session,
            # so these cells are a superset of every class's bidders
            held0 = offsets[:, :, idx].sum(axis=2) + p.offsets_surrendered
            flat = np.flatnonzero((cap - held0 >= 1.0) & stocked[:, None])
        rows, cols = np.divmod(flat, n)
        # drawing only the bidders gives the numbers a full draw gives at those cells, and
        # the draw counter advances the same whoever bids (replicates stay batch-invariant)
        z = self.rng.standard_normal((r, n), where=(rows, cols))
        self._draw_offer_noise()
        if flat.size == 0:
            return
        assert self.offer_noise is not None
        bid_price = self.expected_price[rows] * (1.0 - off.discount) * np.exp(off.bid_sigma * z)
        ask_price = off.supply_cost * self.offer_noise
        tick = self.scenario.trading.tick
        # cut-off candidates: the ticks of a few high bid quantiles (bids are lognormal
        # around a price common to the replicate), highest first, with a tick of slack
        levels = (
            np.rint(
                self.expected_price[None, :]
                * (1.0 - off.discount)
                * np.exp(off.bid_sigma * OFFSET_CUTOFF_Z)[:, None]
                / tick
            )
            - 1.0
        )
        volume, turnover = clear_offset_classes(
            self.ledger,
            classes,
            idx,
            flat,
            cap.reshape(-1)[flat],
            p.offsets_surrendered.reshape(-1)[flat],
            bid_price,
            ask_price,
            tick=tick,
            levels=levels,
        )
        if volume.any():
            self.market["offset_volume"][:, i] = volume
            self.market["offset_price"][:, i] = np.divide(
                turnover, volume, out=np.full(r, np.nan), where=volume > 0
            )

    def _offset_stock(self, p: PeriodState) -> tuple[list[str], list[int], BoolArray]:
        """The offset classes usable in period ``p`` (legacy first), their ledger indices,
        and which replicates' project owners hold credits of them to sell (R,): only those
        replicates have an offset market (in the others bids meet no offer and nothing
        trades, which leaves every output the same)."""
        classes = usable_offset_classes(self.scenario.offsets, p.last_year)
        idx = [self.ledger.offset_class_index(c) for c in classes]
        stocked: BoolArray = np.any(self.ledger.project_offsets[:, idx] >= 1, axis=1)
        return classes, idx, stocked

    def _draw_offer_noise(self) -> None:
        """Draw the project owners' lognormal offer-price scatter (R, lots), once: at the
        first offset session with a usable class."""
        if self.offer_noise is None:
            sigma = self.scenario.offsets.supply_cost_sigma
            shape = (self.n_replicates, OFFSET_LOTS)
            self.offer_noise = np.exp(sigma * self.rng.standard_normal(shape))

    def _issuance_process(self, env: simpy.Environment) -> Any:
        """Post-relaunch projects issue credits after verification, year by year."""
        off = self.scenario.offsets
        projects = synthetic_projects(off.projects, rng=off.project_seed)
        sc = self.scenario
        events: dict[float, FloatArray] = {}
        for year in range(sc.time.start.year - 1, sc.time.end.year + 1):
            seeds = [
                np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, 2, year))
                for s in self.seeds
            ]
            iss = issued_credits(
                projects,
                f"{year}-01-01",
                f"{year + 1}-01-01",
                rng=seeds,
                replicates=self.n_replicates,
                first_issuance=off.first_issuance,
            )
            for j, date in enumerate(np.asarray(iss.issue_date)):
                t = self._t(pd.Timestamp(date).date()) + T_ALLOCATE
                if t > self._session_times[-1]:
                    continue
                events.setdefault(t, np.zeros(self.n_replicates))
                events[t] += np.asarray(iss.credits)[:, j]
        for t in sorted(events):
            yield env.timeout(max(t - env.now, 0.0))
            self.ledger.issue_offsets(PROJECT_CLASS, events[t].astype(np.int64))

    def _open_offsets(self) -> None:
        off = self.scenario.offsets
        r = self.n_replicates
        if off.legacy_stock > 0:
            self.ledger.issue_offsets(OFFSET_CLASS, np.full(r, int(off.legacy_stock), np.int64))
        self.offsets_open = True

    def _offset_process(self, env: simpy.Environment) -> Any:
        off = self.scenario.offsets
        t = self._t(off.available_from) if off.available_from is not None else 0.0
        yield env.timeout(t + T_ALLOCATE)
        self._open_offsets()
