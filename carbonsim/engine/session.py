"""Trading sessions: the simpy process that runs one exchange session per trading day."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from carbonsim.agents.base import BLOCK, LISTED, MarketView, Orders, validate_orders
from carbonsim.agents.compliance import ComplianceTrader
from carbonsim.agents.noise import NoiseTrader
from carbonsim.engine.exchange import exchange_orders, nan_to_zero, settle_segments
from carbonsim.engine.offset_session import OffsetSessions
from carbonsim.engine.state import InvariantError, PeriodState

FloatArray = npt.NDArray[np.float64]

__all__ = ["TRUSTED_STRATEGIES", "TradingSessions"]

#: Strategy types whose orders the engine does not re-check every session: exactly these
#: classes (not subclasses), whose orders are valid by construction; their tests run
#: :func:`~carbonsim.agents.check_strategy` and property tests over every field.
TRUSTED_STRATEGIES: frozenset[type] = frozenset({ComplianceTrader, NoiseTrader})


class TradingSessions(OffsetSessions):
    """One trading session per trading day: strategies' orders, the exchange step,
    settlement, the market table's row, the close and the expectations."""

    def _exchange(
        self, orders: Orders, view: MarketView, p: PeriodState | None
    ) -> tuple[Orders, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """The session's exchange step (:func:`exchange_orders`)."""
        return exchange_orders(
            orders,
            view,
            self.ledger.n_units,
            self.scenario.trading,
            self.last_close,
            self._floor,
            self._ceiling,
            self.scenario.behaviour.choke_price,
        )

    def _session(self, t: float, i: int) -> None:
        r = self.n_replicates
        self.session_index = i
        p = self._current_period(t)
        view = self._view(t, p)
        if p is not None and self._reads_gap:
            self._gap = view.gap  # auctions and buy-backs read it after the session
        r_all, n_all = view.shape
        orders = Orders.concat(
            [
                # the built-in strategies' orders are valid by construction (their tests
                # check every field); any other strategy's are checked where handed over
                s.orders(view, self.rng)
                if type(s) in TRUSTED_STRATEGIES
                else validate_orders(s.orders(view, self.rng), name, r_all, n_all)
                for s, name in zip(self.strategies, self._strategy_names, strict=True)
            ]
        )
        orders, lo, hi, clear_price, clear_volume, fill = self._exchange(orders, view, p)
        view.close()  # settlement below changes what the view would read
        if self.check_invariants:
            self._check_fills(orders, fill, clear_price, lo, hi)
        # settle each segment at its uniform price
        settle_segments(
            self.ledger,
            orders,
            fill,
            (LISTED, BLOCK),
            (nan_to_zero(clear_price[:r]), nan_to_zero(clear_price[r:])),
            None if p is None else p.bought,
            None if p is None else p.sold,
            checked=self.check_invariants,
        )
        self._close_session(i, p, orders, lo, hi, clear_price, clear_volume, fill)

    def _close_session(
        self,
        i: int,
        p: PeriodState | None,
        orders: Orders,
        lo: FloatArray,
        hi: FloatArray,
        clear_price: FloatArray,
        clear_volume: FloatArray,
        fill: FloatArray,
    ) -> None:
        """The rest of session ``i`` once its fills are settled: the market table, the
        close and the expectations, the offset market, the band trigger."""
        sc = self.scenario
        r = self.n_replicates
        lo_l, hi_l = lo[:r], hi[:r]
        vol_l, vol_b = clear_volume[:r], clear_volume[r:]
        px_l, px_b = clear_price[:r], clear_price[r:]
        turnover_l = nan_to_zero(px_l * vol_l)
        turnover_b = nan_to_zero(px_b * vol_b)
        volume = vol_l + vol_b
        turnover = turnover_l + turnover_b
        close = np.where(vol_l > 0, px_l, self.last_close)
        # the reference price respects policy limits even on days without trades
        close = np.clip(
            close,
            -np.inf if self._floor is None else self._floor,
            np.inf if self._ceiling is None else self._ceiling,
        )
        m = self.market
        m["price"][:, i] = close
        m["vwap"][:, i] = np.divide(turnover, volume, out=np.full(r, np.nan), where=volume > 0)
        m["volume"][:, i] = volume
        m["turnover"][:, i] = turnover
        m["listed_volume"][:, i] = vol_l
        m["block_volume"][:, i] = vol_b
        m["band_low"][:, i] = lo_l
        m["band_high"][:, i] = hi_l
        if self.record_trades:
            self._record_trades(i, orders, fill, clear_price)
        self.last_close = close
        w = sc.behaviour.expectation_weight
        self.adaptive_price = (1.0 - w) * self.adaptive_price + w * close
        self._blend_expectation()
        m["expected_price"][:, i] = self.expected_price
        m["fundamental_price"][:, i] = self.fundamental_price
        if self.offsets_open and p is not None and i % sc.offsets.session_interval == 0:
            self._offset_session(i, p)
        if self.band_state is not None and p is not None:
            self._band_trigger(i, p, close)
        m["msr_holdings"][:, i] = self.msr_holdings
        self._after_event("session")

    def _record_trades(self, i: int, orders: Orders, fill: FloatArray, price: FloatArray) -> None:
        done = fill > 0
        r = self.n_replicates
        market = orders.replicate + r * (orders.segment == BLOCK)
        self.trades.append(
            pd.DataFrame(
                {
                    "replicate": orders.replicate[done] + self.first_replicate,
                    "date": self.days[i],
                    "unit": self.units.names[orders.unit[done]],
                    "side": np.where(orders.is_buy[done], "buy", "sell"),
                    "segment": np.where(orders.segment[done] == BLOCK, "block", "listed"),
                    "limit_price": orders.price[done],
                    "price": price[market[done]],
                    "qty": fill[done],
                }
            )
        )

    def _check_fills(
        self, orders: Orders, fill: FloatArray, price: FloatArray, lo: FloatArray, hi: FloatArray
    ) -> None:
        if (fill < 0).any() or (fill > orders.qty + 1e-9).any():
            raise InvariantError("a fill lies outside [0, order quantity]")
        traded = ~np.isnan(price)
        tol = self.scenario.trading.tick * 1e-6
        if ((price[traded] < lo[traded] - tol) | (price[traded] > hi[traded] + tol)).any():
            raise InvariantError("a clearing price lies outside its band")

    def _trading_process(self, env: simpy.Environment) -> Any:
        times = self._session_times
        bar: Any = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(times), desc="sessions", unit="day")
        for i, t in enumerate(times):
            yield env.timeout(t - env.now)
            self._session(float(t), i)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
