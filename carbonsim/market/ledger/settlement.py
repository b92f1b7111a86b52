"""Settlement of trading sessions: allowances from sellers to buyers, cash back.

Each unit's buys and sells are netted; sellers deliver their oldest vintages first into a
per-replicate pool, which :func:`~carbonsim.market.ledger.delivery.split_pool_cells` splits
among the buyers in whole tonnes. :meth:`TradeSettlement.settle_trades` takes dense (R, N)
arrays, :meth:`TradeSettlement.settle_cells` the cells that traded only, and
:meth:`TradeSettlement.settle_cells_unchecked` the same cells without the input checks, for
callers that build valid input themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from carbonsim._validation import as_float_array, as_int_array
from carbonsim.market.ledger.common import FloatArray, IntArray, LedgerError
from carbonsim.market.ledger.delivery import split_pool_cells, sum_by_replicate
from carbonsim.market.ledger.journal import LedgerJournal

__all__ = ["TradeSettlement"]


class TradeSettlement(LedgerJournal):
    """Settlement of allowance trades of a :class:`~carbonsim.market.ledger.Ledger`."""

    def _settle_core(
        self,
        op: str,
        rep: IntArray,
        unit: IntArray,
        net_buy: IntArray,
        net_sell: IntArray,
        price: FloatArray,
        vidx: IntArray,
        *,
        want_flow: bool = False,
    ) -> IntArray | None:
        """Settle netted trades of unique cells sorted by (replicate, unit).

        A cell either buys or sells (trades are netted). Sellers deliver oldest vintages
        first; the pool of delivered vintages is split among buyers by
        :func:`~carbonsim.market.ledger.delivery.split_pool_cells`. Only sellers' holdings
        are read and only the vintage columns that move are written (work ~ cells x moving
        vintages). Returns the (P, V) allowance flow when ``want_flow``. Raises before
        changing anything.
        """
        n_v = self._allowances.shape[2]
        allow = self._allowances.reshape(-1)  # C order: cell (r, n), vintage v at (r*N+n)*V+v
        flat = rep * self.n_units + unit
        sell = np.flatnonzero(net_sell > 0)
        buy = np.flatnonzero(net_buy > 0)
        base_s = flat[sell] * n_v
        rem = net_sell[sell].copy()
        taken: dict[int, IntArray] = {}  # vintage index -> tonnes each seller delivers
        for v in vidx:
            if not rem.any():
                break
            t = np.minimum(rem, np.maximum(allow.take(base_s + v), 0))
            taken[int(v)] = t
            rem -= t
        if rem.any():
            if not self.allow_negative or vidx.size == 0:
                full_unmet = np.zeros((self.n_replicates, self.n_units), np.int64)
                full_unmet[rep[sell], unit[sell]] = rem
                full_qty = np.zeros_like(full_unmet)
                full_qty[rep, unit] = net_sell
                raise self._short_error(op, full_unmet, full_qty, vidx)
            last = int(vidx[-1])
            taken[last] = taken.get(last, np.zeros_like(rem)) + rem
        moving = sorted(taken)
        delivered = np.empty((len(sell), len(moving)), np.int64)
        for j, v in enumerate(moving):
            delivered[:, j] = taken[v]
        # pool of each replicate per moving vintage; zero columns would receive nothing
        if len(moving) == 1:
            # one vintage moves: every buyer receives its whole purchase of it (the pool
            # split below gives exactly that, since each replicate's pool is its buys)
            received = net_buy[buy][:, None].copy()
        else:
            pool = sum_by_replicate(rep[sell], delivered, self.n_replicates)
            received = split_pool_cells(rep[buy], net_buy[buy], pool)
        cash = self._cash.reshape(-1)
        new_cash = cash[flat] + price * (net_sell - net_buy)
        if not self.allow_negative_cash and (new_cash < 0).any():
            full = self._cash.copy()
            full[rep, unit] = new_cash
            self._check_cash(op, full)
        base_b = flat[buy] * n_v
        for j, v in enumerate(moving):  # cells are unique: plain fancy updates
            allow[base_s + v] -= delivered[:, j]
            allow[base_b + v] += received[:, j]
        self._settle_valid_holdings(flat[sell], flat[buy], moving, delivered, received)
        cash[flat] = new_cash
        r_ = self.n_replicates
        moved = np.bincount(rep[sell][delivered.sum(axis=1) != 0], minlength=r_) + np.bincount(
            rep[buy][received.sum(axis=1) != 0], minlength=r_
        )
        tonnes = np.bincount(rep, weights=net_sell, minlength=r_).astype(np.int64)
        paid = np.bincount(rep, weights=price * net_buy, minlength=r_)
        self._record(op, tonnes, moved, paid)
        if not want_flow:
            return None
        flow = np.zeros((len(rep), n_v), np.int64)
        cols = np.asarray(moving, np.int64)
        flow[np.ix_(sell, cols)] -= delivered
        flow[np.ix_(buy, cols)] += received
        return flow

    def _settle_valid_holdings(
        self,
        sellers: IntArray,
        buyers: IntArray,
        moving: list[int],
        delivered: IntArray,
        received: IntArray,
    ) -> None:
        """Keep the cached valid holdings current after a settlement: each cached (year,
        rule) array loses, at the sellers' flat cells, the tonnes delivered from its valid
        vintages and gains, at the buyers', those received (integers: exact)."""
        if not self._valid_cache:
            return
        whole: tuple[IntArray, IntArray] | None = None  # the totals over every moving vintage
        for (year, rule), valid in self._valid_cache.items():
            ok = set(self._valid_vintage_indices(year, rule).tolist())
            cols = [j for j, v in enumerate(moving) if v in ok]
            if not cols:
                continue
            if len(cols) == len(moving):
                if whole is None:
                    whole = (delivered.sum(axis=1), received.sum(axis=1))
                out, got = whole
            else:
                out, got = delivered[:, cols].sum(axis=1), received[:, cols].sum(axis=1)
            flat = valid.reshape(-1)
            flat[sellers] -= out
            flat[buyers] += got

    def settle_cells(
        self,
        replicate: npt.ArrayLike,
        unit: npt.ArrayLike,
        buy_qty: npt.ArrayLike,
        sell_qty: npt.ArrayLike,
        price: npt.ArrayLike,
        *,
        vintages: int | Iterable[int] | None = None,
    ) -> None:
        """:meth:`settle_trades` for the cells that traded only (the fast path).

        Same rules and results as :meth:`settle_trades`, with the trades given per
        (replicate, unit) cell instead of as dense (R, N) arrays, so a session costs time
        in proportion to the units that traded.

        Parameters
        ----------
        replicate, unit : array_like of int, shape (P,)
            Cells that traded, unique and sorted by replicate, then unit.
        buy_qty, sell_qty : array_like of int, shape (P,)
            Tonnes each cell bought and sold (>= 0); totals must match per replicate.
        price : float or array_like, shape (R,)
            Clearing price per replicate, currency/t.
        vintages : int or iterable of int, optional
            Vintages sellers may deliver (default all).
        """
        op = "settle_cells"
        r_, n_ = self.n_replicates, self.n_units
        rep = as_int_array(f"{op}: replicate", replicate, lo=0, hi=r_ - 1)
        uni = as_int_array(f"{op}: unit", unit, lo=0, hi=n_ - 1)
        b = as_int_array(f"{op}: buy_qty", buy_qty, nonnegative=True)
        s = as_int_array(f"{op}: sell_qty", sell_qty, nonnegative=True)
        if not (len(rep) == len(uni) == len(b) == len(s)):
            raise ValueError(
                f"{op}: replicate, unit, buy_qty and sell_qty must have equal lengths, got "
                f"{len(rep)}, {len(uni)}, {len(b)}, {len(s)}"
            )
        key = rep * n_ + uni
        if len(key) > 1 and not (np.diff(key) > 0).all():
            raise ValueError(f"{op}: cells must be unique and sorted by (replicate, unit)")
        bal = np.bincount(rep, weights=b, minlength=r_) - np.bincount(rep, weights=s, minlength=r_)
        if bal.any():
            r = int(np.argmax(bal != 0))
            raise LedgerError(
                f"{op}: buys total {int(b[rep == r].sum())} t but sells total "
                f"{int(s[rep == r].sum())} t in replicate {r}; they must be equal"
            )
        pr = as_float_array(f"{op}: price", price, ndim=None, nonnegative=True)
        pr = np.full(r_, float(pr)) if pr.ndim == 0 else pr
        if pr.shape != (r_,):
            raise ValueError(f"{op}: price must be a scalar or have shape (R,) = ({r_},)")
        self.settle_cells_unchecked(rep, uni, b, s, pr, self._vintage_indices(op, vintages))

    def settle_cells_unchecked(
        self,
        rep: IntArray,
        unit: IntArray,
        buy_qty: IntArray,
        sell_qty: IntArray,
        price: FloatArray,
        vidx: IntArray | None = None,
    ) -> None:
        """:meth:`settle_cells` after its checks: int64 cells, unique and sorted, balanced
        per replicate, ``price`` of shape (R,), ``vidx`` vintage indices (None: all).

        For callers that build valid input themselves: the engine's session loop, which
        runs the checked method instead when invariant checks are on.
        """
        if vidx is None:
            vidx = np.arange(len(self._vintages), dtype=np.int64)
        net_buy = np.maximum(buy_qty - sell_qty, 0)
        net_sell = np.maximum(sell_qty - buy_qty, 0)
        keep = np.flatnonzero((net_buy + net_sell) > 0)
        rep = rep[keep]
        self._settle_core(
            "settle_cells",
            rep,
            unit[keep],
            net_buy[keep],
            net_sell[keep],
            price[rep],
            vidx,
        )

    def settle_trades(
        self,
        buy_qty: npt.ArrayLike,
        sell_qty: npt.ArrayLike,
        price: npt.ArrayLike,
        *,
        vintages: int | Iterable[int] | None = None,
        return_flow: bool = True,
    ) -> IntArray | None:
        """Settle a trading session: allowances from sellers to buyers, cash back.

        Each unit's buys and sells are netted. Sellers deliver their oldest ``vintages``
        first into a per-replicate pool; the pool is split among buyers pro rata to their
        net purchases in whole tonnes (floor, then a north-west-corner pass for the
        remainders; see the package docstring of
        :mod:`carbonsim.market.ledger`). Cash moves ``price x (sell - buy)``.

        Parameters
        ----------
        buy_qty, sell_qty : array_like of int, shape (R, N)
            Tonnes each unit bought and sold (>= 0); totals must match per replicate.
        price : float or array_like, shape (R,) or (R, N)
            Price, currency/t: the session's clearing price (R,), or each unit's average
            execution price (R, N), in which case money paid must equal money received per
            replicate.
        vintages : int or iterable of int, optional
            Vintages sellers may deliver (default all).
        return_flow : bool
            Return the (R, N, V) flow; pass False in hot loops to skip building it.

        Returns
        -------
        ndarray of int64, shape (R, N, V), or None
            Signed change of holdings per vintage; sums to zero over units per vintage.
            None when ``return_flow`` is False.
        """
        op = "settle_trades"
        b, s = self._balanced_trades(op, buy_qty, sell_qty)
        p = self._price(op, price)
        vidx = self._vintage_indices(op, vintages)
        net_buy = np.maximum(b - s, 0)
        net_sell = np.maximum(s - b, 0)
        self._check_balanced(op, p, net_buy, net_sell)
        # only the (replicate, unit) cells that trade take part: the same numbers as
        # working on the whole (R, N, V) block, at the cost of the trading cells alone
        rep, unit = np.nonzero(net_buy + net_sell)
        flow_c = self._settle_core(
            op,
            rep,
            unit,
            net_buy[rep, unit],
            net_sell[rep, unit],
            p[rep, unit],
            vidx,
            want_flow=return_flow,
        )
        if flow_c is None:
            return None
        flow = np.zeros_like(self._allowances)
        flow[rep, unit, :] = flow_c
        return flow
