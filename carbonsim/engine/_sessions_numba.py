"""Runs of consecutive trading sessions in one compiled call, behind ``backend="numba"``.

Between two events of the schedule (allocation, verification, deadlines, auctions, credit
issuance) the sessions of a run touch nothing but the ledger's allowances, credits and
cash, the project owners' stock and cash, the period's trade totals, the journal, the
market table, the close and the price expectations. :class:`SessionRunner` runs such a
stretch of sessions for the built-in ``compliance`` and ``noise`` strategies, with the
offset sessions among them, in three steps:

1. :func:`draw_cells`, compiled: for every session and strategy, the units that act (the
   Bernoulli draw of :meth:`~carbonsim._random.BatchRandom.bernoulli_cells`) and the
   uniform numbers the strategy draws at them, counter by counter as the strategies draw
   them (counter-based numbers do not depend on the state, so they can be drawn ahead);
   for each offset session, the bidders' normal numbers at every cell;
2. numpy: scipy's ``ndtri`` and numpy's ``exp`` turn them into the lognormal factors of
   sizes and prices (for a compliance order both the buyer's and the seller's factor,
   since which one applies depends on the state), so every transcendental number is the
   one the step-by-step session computes;
3. :func:`sessions_kernel`, compiled: session after session, the view's reads at the
   acting units, the strategies' orders (:mod:`carbonsim.agents._orders_numba`), the
   exchange step (:func:`carbonsim.engine._exchange_numba.exchange_kernel`), the
   settlement of both segments (:mod:`carbonsim.market._ledger_numba`), the journal, the
   market table, the close and the expectations, then, after an offset session, the
   offset market (:func:`carbonsim.engine._offsets_numba.offset_session_step`).

The engine (:meth:`Simulation._trading_process <carbonsim.engine.Simulation>`) decides
where a run of sessions ends; each run's results are bit for bit those of the sessions run
one by one (the tests compare whole runs, and runs cut into pieces of every length). Where
the exchange step meets input outside its kernels' case the run stops before that
session, which the engine then runs step by step; where the ledger refuses a segment's
settlement part-way, the numpy settlement finishes the session (and raises what it
raises); an offset session the kernel cannot take ends the run and runs in numpy.
Importing this module does nothing heavy; :func:`compile_kernels` imports numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from carbonsim import _random_numba
from carbonsim._numba import compile_module
from carbonsim._random import _bits_top
from carbonsim._random_numba import _mix, cell_uniforms, grown, true_cells
from carbonsim.agents import _orders_numba
from carbonsim.agents._orders_numba import compliance_prices, compliance_sizes, noise_orders_kernel
from carbonsim.agents.base import BLOCK, LISTED, Orders
from carbonsim.agents.compliance import ComplianceTrader
from carbonsim.agents.noise import NoiseTrader
from carbonsim.clearing._ticks import _decimal_scale
from carbonsim.engine import _exchange_numba, _offsets_numba
from carbonsim.engine._exchange_numba import exchange_kernel
from carbonsim.engine._offsets_numba import offset_session_step
from carbonsim.engine._view_numba import holdings_kernel, obligation_kernel, obligation_state
from carbonsim.engine.simulation import (
    _OFFSET_CUTOFF_GROWTH,
    _OFFSET_LOTS,
    _nan_to_zero,
    settle_segments,
)
from carbonsim.market import _ledger_numba
from carbonsim.market._ledger_numba import settle_segments_kernel

if TYPE_CHECKING:
    from carbonsim.engine.simulation import Simulation, _PeriodState

__all__ = ["SessionRunner", "compile_kernels", "draw_cells", "session_runner", "sessions_kernel"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Strategy kinds of the kernel.
COMPLIANCE, NOISE = 0, 1
#: Uniform draws each kind makes at its acting units after the Bernoulli draw.
_DRAWS = {COMPLIANCE: 2, NOISE: 3}
#: How a run stopped before its end: the exchange step declined a session (run it step by
#: step), the ledger refused a segment's settlement (finish the session with numpy), an
#: offset session is left to numpy, or one stopped part-way (an error).
DONE, EXCHANGE, SETTLE, OFFSET, OFFSET_BROKEN = 0, 1, 2, 3, 4
#: Acting-unit cells drawn ahead at most (R x N x sessions), bounding a run's memory.
_CELL_BUDGET = 4_000_000


def draw_cells(
    keys: npt.NDArray[np.uint64],
    counters: IntArray,
    draw_offset: IntArray,
    n_draws: IntArray,
    prob: FloatArray,
    per: int,
) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
    """The acting units of strategy ``t`` in session ``s`` of a run and their uniforms.

    Session ``s``'s draws start at counter ``counters[s]``; strategy ``t``
    makes its Bernoulli draw with probability ``prob[s, t]`` at ``draw_offset[t]`` from
    there (:meth:`~carbonsim._random.BatchRandom.bernoulli_cells` over ``(R, per)``) and
    its ``n_draws[t]`` uniform draws at the next counters. Returns ``(rows, cols, u,
    start)``: the cells of (session, strategy) ``k = s * T + t`` at ``start[k]:start[k +
    1]``, row-major, and the uniforms ``u`` (3, K) (rows beyond a strategy's draws hold
    0.5).
    """
    n_sessions, n_strat = prob.shape
    n_rows = keys.shape[0]
    start = np.zeros(n_sessions * n_strat + 1, np.int64)
    rows = np.empty(256, np.int64)
    cols = np.empty(256, np.int64)
    k = 0
    for s in range(n_sessions):
        for t in range(n_strat):
            c = counters[s] + draw_offset[t]
            top = _bits_top(prob[s, t])
            every = top < 0
            r_t = rows[:0]
            c_t = cols[:0]
            if every:
                m = n_rows * per
            else:
                bound = np.uint64(top) << np.uint64(11)
                r_t, c_t = true_cells(keys, _mix(np.uint64(c)), per, bound)
                m = r_t.shape[0]
            rows, cols = grown(rows, cols, k, k + m)
            if every:
                for x in range(m):
                    rows[k + x] = x // per
                    cols[k + x] = x % per
            else:
                rows[k : k + m] = r_t
                cols[k : k + m] = c_t
            k += m
            start[s * n_strat + t + 1] = k
    u = np.full((3, k), 0.5)
    for s in range(n_sessions):
        for t in range(n_strat):
            a = start[s * n_strat + t]
            b = start[s * n_strat + t + 1]
            c = counters[s] + draw_offset[t]
            for d in range(n_draws[t]):
                u[d, a:b] = cell_uniforms(
                    keys, _mix(np.uint64(c + 1 + d)), rows[a:b], cols[a:b], per
                )[1]
    return rows[:k].copy(), cols[:k].copy(), u, start


def sessions_kernel(
    sess: IntArray,
    certainty: FloatArray,
    at_deadline: BoolArray,
    cover: FloatArray,
    cover_sell: FloatArray,
    kinds: IntArray,
    min_order: FloatArray,
    price_weight: FloatArray,
    block_share: FloatArray,
    size_share: FloatArray,
    least: FloatArray,
    rows: IntArray,
    cols: IntArray,
    u: FloatArray,
    g: FloatArray,
    start: IntArray,
    has_period: bool,
    verified: bool,
    obligation: IntArray,
    surrendered: IntArray,
    offsets_surrendered: IntArray,
    prior: FloatArray,
    actual: FloatArray,
    expected_allocation: FloatArray,
    final_total: FloatArray,
    allocated: FloatArray,
    offsets: IntArray,
    offset_share: float,
    allow: IntArray,
    cash: FloatArray,
    valid: IntArray,
    vidx: IntArray,
    allow_negative: bool,
    allow_negative_cash: bool,
    bought: FloatArray,
    sold: FloatArray,
    j_tonnes: IntArray,
    j_moved: IntArray,
    j_cash: FloatArray,
    j_gross: FloatArray,
    unit_size: FloatArray,
    block_threshold: float,
    block_min_size: float,
    listed_cap: float,
    listed_band: float,
    block_band: float,
    tick: float,
    tick_k: float,
    tick_scale: float,
    floor: float,
    ceiling: float,
    choke_price: float,
    last_close: FloatArray,
    adaptive: FloatArray,
    expected: FloatArray,
    fundamental: FloatArray,
    msr: FloatArray,
    w_adaptive: float,
    w_fundamental: float,
    m_price: FloatArray,
    m_vwap: FloatArray,
    m_volume: FloatArray,
    m_turnover: FloatArray,
    m_listed: FloatArray,
    m_block: FloatArray,
    m_low: FloatArray,
    m_high: FloatArray,
    m_expected: FloatArray,
    m_fundamental: FloatArray,
    m_msr: FloatArray,
    m_off_volume: FloatArray,
    m_off_price: FloatArray,
    off_now: BoolArray,
    off_ez: FloatArray,
    off_idx: IntArray,
    off_surr: IntArray,
    project: IntArray,
    project_cash: FloatArray,
    discount: float,
    quantile_growth: FloatArray,
    ask_price: FloatArray,
    t_tonnes: IntArray,
    t_moved: IntArray,
    t_cash: FloatArray,
    info: IntArray,
    stop_at: int,
    stop_kind: int,
) -> tuple[Any, ...]:
    """Run the sessions ``sess`` (S,) of a run as the engine's session does, one by one.

    Per session ``s``: the obligation ``certainty[s]``, whether it is a deadline session,
    and per strategy ``t`` the compliance cover shares ``cover[s, t]``, ``cover_sell[s,
    t]``; the strategies' parameters by ``t`` (``kinds``: :data:`COMPLIANCE` or
    :data:`NOISE`); the acting cells, uniforms ``u`` and lognormal factors ``g`` (2, K)
    of :func:`draw_cells`. The ledger's ``allow`` (R, N, V) and ``cash`` (R, N), the
    period's ``bought``/``sold`` ((R, N), or (0, 0) outside a period), the journal
    accumulators of ``settle_cells``, the close ``last_close``, ``adaptive`` and
    ``expected`` prices (R,) and the market table's columns ``sess[s]`` change in place.

    Returns ``(done, code, segments, calls, rep, unit, is_buy, price, qty, segment, fill,
    lo, hi, clear_price, volume)``: sessions done; why the run stopped (:data:`DONE`,
    :data:`EXCHANGE`: session ``done`` was left untouched, :data:`SETTLE`: its first
    ``segments`` segments were settled, and the routed orders, fills, bands and auction
    results of that session follow); the journal calls made. ``stop_at``/``stop_kind``
    make the run stop as if session ``stop_at`` met input outside the kernels' case
    (``stop_kind`` 0: the exchange step declines, 1 or 2: the ledger refuses segment
    ``stop_kind - 1``, 3: its offset session is left to numpy), which lets the tests reach
    the engine's fallbacks.

    Where ``off_now[s]``, the offset market clears after session ``s``
    (:func:`carbonsim.engine._offsets_numba.offset_session_step`, with ``off_ez[o]`` the
    ``o``-th such session's ``exp(0.05 z)`` at every cell): the credits ``offsets``, the
    project owners' ``project`` stock and ``project_cash``, units' ``cash``, the
    ``transfer_offsets`` journal accumulators ``t_*`` and the market table's offset columns
    change in place. :data:`OFFSET` (``done`` sessions, the last one's offset session
    left untouched) hands an offset session the kernel cannot take to the numpy session,
    :data:`OFFSET_BROKEN` reports one it stopped part-way. ``info`` receives the transfer
    journal's calls and the positions of the run's first settlement and first transfer
    (-1: none), which order the journal's new entries.
    """
    n_rep = last_close.shape[0]
    n_units = allow.shape[1]
    n_vint = allow.shape[2]
    n_strat = kinds.shape[0]
    allow_flat = allow.reshape(-1)
    cash_flat = cash.reshape(-1)
    bought_flat = bought.reshape(-1)
    sold_flat = sold.reshape(-1)
    codes = np.array([LISTED, BLOCK], np.int64)
    lo_limit = -np.inf if np.isnan(floor) else floor
    hi_limit = np.inf if np.isnan(ceiling) else ceiling
    calls = 0
    empty_i = np.zeros(0, np.int64)
    empty_f = np.zeros(0, np.float64)
    empty_b = np.zeros(0, np.bool_)
    n_off = 0
    for s in range(sess.shape[0]):
        i = sess[s]
        n_cells = start[(s + 1) * n_strat] - start[s * n_strat]
        o_rep = np.empty(n_cells, np.int64)
        o_unit = np.empty(n_cells, np.int64)
        o_buy = np.empty(n_cells, np.bool_)
        o_price = np.empty(n_cells, np.float64)
        o_qty = np.empty(n_cells, np.float64)
        o_seg = np.empty(n_cells, np.int64)
        n_o = 0
        for t in range(n_strat):
            a = start[s * n_strat + t]
            b = start[s * n_strat + t + 1]
            r_t = rows[a:b]
            c_t = cols[a:b]
            if has_period:
                held = holdings_kernel(allow, valid, r_t, c_t)[1]
            else:
                held = np.zeros(b - a, np.float64)
            if kinds[t] == COMPLIANCE:
                if has_period:
                    ob = obligation_kernel(
                        verified, obligation, surrendered, offsets_surrendered, prior,
                        actual, expected_allocation, final_total, allocated, certainty[s],
                        offsets, offset_share, r_t, c_t,
                    )[1]  # fmt: skip
                else:
                    ob = np.zeros(b - a, np.float64)
                keep, is_buy, qty = compliance_sizes(
                    held, ob, cover[s, t], cover_sell[s, t], at_deadline[s], min_order[t]
                )
                m = keep.shape[0]
                rep = np.empty(m, np.int64)
                unit = np.empty(m, np.int64)
                growth = np.empty(m, np.float64)
                block_u = np.empty(m, np.float64)
                for q in range(m):
                    x = a + keep[q]
                    rep[q] = rows[x]
                    unit[q] = cols[x]
                    growth[q] = g[0, x] if is_buy[q] else g[1, x]
                    block_u[q] = u[1, x]
                price, segment = compliance_prices(
                    rep, is_buy, qty, growth, block_u, last_close, expected,
                    price_weight[t], block_threshold, block_share[t],
                )  # fmt: skip
            else:
                rep, unit, is_buy, price, qty = noise_orders_kernel(
                    r_t, c_t, u[0, a:b], g[:, a:b], held, unit_size, last_close,
                    size_share[t], least[t],
                )  # fmt: skip
                m = rep.shape[0]
                segment = np.full(m, LISTED, np.int64)
            o_rep[n_o : n_o + m] = rep
            o_unit[n_o : n_o + m] = unit
            o_buy[n_o : n_o + m] = is_buy
            o_price[n_o : n_o + m] = price
            o_qty[n_o : n_o + m] = qty
            o_seg[n_o : n_o + m] = segment
            n_o += m
        (status, kept, q_all, seg_all, lo, hi, _market, _px, price_tick, has_price, volume,
         fill) = exchange_kernel(
            o_rep[:n_o], o_unit[:n_o], o_buy[:n_o], o_price[:n_o], o_qty[:n_o],
            o_seg[:n_o], n_units, has_period, allow, valid, block_min_size, listed_cap,
            last_close, listed_band, block_band, tick, tick_k, tick_scale, floor, ceiling,
            choke_price,
        )  # fmt: skip
        if status != 0 or (s == stop_at and stop_kind == 0):
            return (s, EXCHANGE, 0, calls, empty_i, empty_i, empty_b, empty_f, empty_f,
                    empty_i, empty_f, empty_f, empty_f, empty_f, empty_f)  # fmt: skip
        # the routed orders (kept: positions among the first n_o)
        k_rep, k_unit, k_buy = o_rep[kept], o_unit[kept], o_buy[kept]
        k_price, k_qty, k_seg = o_price[kept], q_all[kept], seg_all[kept]
        clear_price = np.empty(2 * n_rep, np.float64)
        seg_price = np.empty((2, n_rep), np.float64)
        for mk in range(2 * n_rep):
            if has_price[mk]:
                clear_price[mk] = (np.float64(price_tick[mk]) * tick_k) / tick_scale
            else:
                clear_price[mk] = np.nan
            p_mk = clear_price[mk]
            seg_price[mk // n_rep, mk % n_rep] = 0.0 if np.isnan(p_mk) else p_mk
        n_codes = 2
        if s == stop_at and stop_kind > 0:
            n_codes = stop_kind - 1
        tonnes = np.zeros((2, n_rep), np.int64)
        moved = np.zeros((2, n_rep), np.int64)
        paid = np.zeros((2, n_rep), np.float64)
        settled, had = settle_segments_kernel(
            allow_flat, cash_flat, n_units, n_vint, k_rep, k_unit, k_buy, fill, k_seg,
            codes[:n_codes], seg_price, vidx, allow_negative, allow_negative_cash, tonnes,
            moved, paid, bought_flat, sold_flat,
        )  # fmt: skip
        for sg in range(settled):  # the ledger's journal, entry by entry as it records
            if had[sg]:
                calls += 1
                if info[1] < 0:
                    info[1] = s
                for r in range(n_rep):
                    j_tonnes[r] += tonnes[sg, r]
                    j_moved[r] += moved[sg, r]
                    j_cash[r] += paid[sg, r]
                    j_gross[r] += abs(paid[sg, r])
        if settled < 2:
            return (s, SETTLE, settled, calls, k_rep, k_unit, k_buy, k_price, k_qty, k_seg,
                    fill, lo, hi, clear_price, volume)  # fmt: skip
        for r in range(n_rep):
            vol_l = volume[r]
            vol_b = volume[n_rep + r]
            turn_l = clear_price[r] * vol_l
            turn_b = clear_price[n_rep + r] * vol_b
            turn_l = 0.0 if np.isnan(turn_l) else turn_l
            turn_b = 0.0 if np.isnan(turn_b) else turn_b
            vol = vol_l + vol_b
            turn = turn_l + turn_b
            close = clear_price[r] if vol_l > 0 else last_close[r]
            # np.clip: the limit wins a tie, NaN propagates
            close = close if (close != close or close > lo_limit) else lo_limit
            close = close if (close != close or close < hi_limit) else hi_limit
            m_price[r, i] = close
            m_vwap[r, i] = turn / vol if vol > 0 else np.nan
            m_volume[r, i] = vol
            m_turnover[r, i] = turn
            m_listed[r, i] = vol_l
            m_block[r, i] = vol_b
            m_low[r, i] = lo[r]
            m_high[r, i] = hi[r]
            last_close[r] = close
            adaptive[r] = (1.0 - w_adaptive) * adaptive[r] + w_adaptive * close
            expected[r] = (1.0 - w_fundamental) * adaptive[r] + w_fundamental * fundamental[r]
            m_expected[r, i] = expected[r]
            m_fundamental[r, i] = fundamental[r]
            m_msr[r, i] = msr[r]
        if off_now[s]:
            status = 1 if (s == stop_at and stop_kind == 3) else 0
            if status == 0:
                status, t_calls = offset_session_step(
                    i, verified, obligation, surrendered, prior, actual, certainty[s],
                    off_surr, offsets, project, cash, project_cash, off_idx, offset_share,
                    expected, discount, off_ez[n_off], quantile_growth, ask_price, tick,
                    tick_k, tick_scale, t_tonnes, t_moved, t_cash, j_gross, m_off_volume,
                    m_off_price,
                )  # fmt: skip
                if t_calls > 0 and info[2] < 0:
                    info[2] = s
                info[0] += t_calls
            n_off += 1
            if status != 0:
                return (s + 1, OFFSET if status == 1 else OFFSET_BROKEN, 2, calls, empty_i,
                        empty_i, empty_b, empty_f, empty_f, empty_i, empty_f, empty_f, empty_f,
                        empty_f, empty_f)  # fmt: skip
    return (sess.shape[0], DONE, 2, calls, empty_i, empty_i, empty_b, empty_f, empty_f,
            empty_i, empty_f, empty_f, empty_f, empty_f, empty_f)  # fmt: skip


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Compile the kernels this module calls, then its own (once per process, cached)."""
    _random_numba.compile_kernels()
    _orders_numba.compile_kernels()
    _ledger_numba.compile_kernels()
    _exchange_numba.compile_kernels()
    _offsets_numba.compile_kernels()
    compile_module(
        globals(),
        (
            "_bits_top",
            "_mix",
            "grown",
            "true_cells",
            "cell_uniforms",
            "holdings_kernel",
            "obligation_kernel",
            "compliance_sizes",
            "compliance_prices",
            "noise_orders_kernel",
            "exchange_kernel",
            "settle_segments_kernel",
            "offset_session_step",
        ),
        ("draw_cells", "sessions_kernel"),
        _compiled,
    )


def _strategy_kind(strategy: object) -> int | None:
    """The kernel's kind of a strategy of exactly a built-in type (a subclass may order
    differently), else None."""
    if type(strategy) is ComplianceTrader:
        return COMPLIANCE
    if type(strategy) is NoiseTrader:
        return NOISE
    return None


def session_runner(sim: Simulation) -> SessionRunner | None:
    """A :class:`SessionRunner` for ``sim``, or None where its strategies are not all of
    the built-in ``compliance`` and ``noise`` types (their orders run step by step)."""
    kinds = [_strategy_kind(s) for s in sim.strategies]
    if not kinds or any(k is None for k in kinds):
        return None
    return SessionRunner(sim)


class SessionRunner:
    """Runs consecutive sessions of one :class:`~carbonsim.engine.Simulation` (numba
    backend, built-in strategies) in one compiled call, with the results of
    :meth:`Simulation._session <carbonsim.engine.Simulation>` run one by one.

    Attributes
    ----------
    max_sessions : int
        Most sessions run in one call: :attr:`max_run`, or fewer where the acting cells
        drawn ahead would pass a few million (R x N x sessions). Smaller values only cut
        runs into more calls, with the same results.
    """

    #: Most sessions one call runs whatever the size (None: only the memory bound).
    max_run: int | None = None

    def __init__(self, sim: Simulation) -> None:
        compile_kernels()
        self.sim = sim
        strategies = sim.strategies
        self.kinds = np.array([_strategy_kind(s) for s in strategies], np.int64)
        n_draws = np.array([_DRAWS[int(k)] for k in self.kinds], np.int64)
        self.n_draws = n_draws
        self.draw_offset = np.concatenate([[0], np.cumsum(1 + n_draws)[:-1]]).astype(np.int64)
        self.per_session = int((1 + n_draws).sum())

        def param(name: str, default: float = 0.0) -> FloatArray:
            return np.array([float(getattr(s, name, default)) for s in strategies])

        self.min_order = param("min_order")
        self.price_weight = param("price_weight")
        self.block_share = param("block_share")
        self.size_share = param("size_share")
        self.least = np.maximum(self.min_order, 1.0)
        self.is_noise = self.kinds == NOISE
        sc = sim.scenario
        trading = sc.trading
        tick_k, tick_scale = _decimal_scale(trading.tick)
        # the kernel's arguments fixed for the whole simulation (the ledger's vintages,
        # the trading rules and limits, the expectation weights, the market table)
        self._vidx = np.arange(len(sim.ledger._vintages), dtype=np.int64)
        self._trading = (
            sim.unit_size,
            float(trading.block_min_size),  # the strategies' block threshold
            float(trading.block_min_size),
            float(np.ceil(trading.listed_max_size) - 1.0),
            trading.listed_band,
            trading.block_band,
            trading.tick,
            tick_k,
            tick_scale,
            np.nan if sim._floor is None else sim._floor,
            np.nan if sim._ceiling is None else sim._ceiling,
            float(sc.behaviour.choke_price),
        )
        self._weights = (sc.behaviour.expectation_weight, sc.behaviour.fundamental_weight)
        m = sim.market
        self._columns = tuple(
            m[name]
            for name in (
                "price",
                "vwap",
                "volume",
                "turnover",
                "listed_volume",
                "block_volume",
                "band_low",
                "band_high",
                "expected_price",
                "fundamental_price",
                "msr_holdings",
            )
        )
        r, n = sim.n_replicates, sim.units.n_units
        self.max_sessions = max(1, _CELL_BUDGET // max(r * n, 1))
        if self.max_run is not None:
            self.max_sessions = min(self.max_sessions, max(int(self.max_run), 1))
        self._draw_shape = (r, n)
        self._terms: tuple[FloatArray, ...] | None = None  # see run

    def _session_terms(self, taus: IntArray) -> tuple[FloatArray, ...]:
        """Per session (at ``taus`` (S,) sessions to the deadline) and strategy, each
        (S, T): the probability of acting, the compliance cover shares, and the exponents
        ``m + k * z`` of the lognormal factors (``m0, m1, k0, k1``: buyer's and seller's
        price; a noise order's size and price), by the strategies' own formulas."""
        n_sess = len(taus)
        cols: list[list[FloatArray]] = [[] for _ in range(7)]
        zero = np.zeros(n_sess)
        for s in self.sim.strategies:
            if isinstance(s, ComplianceTrader):
                effect = s.deadline_effects(taus)
                cover = s.cover_share + (1.0 - s.cover_share) * effect
                terms = (
                    s.hazards(taus),
                    cover,
                    cover * (1.0 - s.bank_share),
                    s.spread + s.urgency_premium * effect,
                    np.full(n_sess, -s.spread),
                    np.full(n_sess, s.price_sigma),
                    np.full(n_sess, s.price_sigma),
                )
            else:
                assert isinstance(s, NoiseTrader)
                terms = (
                    np.full(n_sess, float(s.activity)),
                    zero,
                    zero,
                    zero,
                    zero,
                    np.full(n_sess, s.size_sigma),
                    np.full(n_sess, s.price_sigma),
                )
            for col, x in zip(cols, terms, strict=True):
                col.append(x)
        return tuple(np.stack(col, axis=1) for col in cols)

    def _period_arrays(self, p: _PeriodState | None) -> tuple[Any, ...] | None:
        """The period state the kernel reads: ``(has_period, *obligation_state(p),
        bought, sold)``; None where the state is not in the form the kernel expects (the
        sessions then run step by step)."""
        if p is not None:
            self.sim._cache_totals(p)
        state = obligation_state(p, self._draw_shape)
        if p is None or state is None:
            none_f = np.zeros((0, 0), np.float64)
            return None if state is None else (False, *state, none_f, none_f)
        if any(not a.flags.c_contiguous or a.shape != self._draw_shape for a in (p.bought, p.sold)):
            return None
        return (True, *state, p.bought, p.sold)

    def _counters(self, sess: IntArray, market: int, inline: bool = False) -> tuple[IntArray, int]:
        """The draw counter at the start of each session of a run and after the last
        (S + 1,): each session's strategies draw, then, where the offset market is idle
        (``market`` 1 of :meth:`Simulation._offset_market`: no credits on offer) or runs
        inside the run (``inline``), its sessions draw their bidders' numbers, the first
        one ever also the offer noise. Also the session after which the offer noise is
        drawn (-1: none)."""
        sim = self.sim
        n_sess = len(sess)
        counters = sim.rng._counter + self.per_session * np.arange(n_sess + 1, dtype=np.int64)
        offer_at = -1
        if market == 1 or inline:
            extra = (sess % sim.scenario.offsets.session_interval == 0).astype(np.int64)
            if sim.offer_noise is None and extra.any():
                offer_at = int(np.argmax(extra))
                extra[offer_at] += 1
            counters[1:] += np.cumsum(extra)
        return counters, offer_at

    def offsets_inline(self, p: _PeriodState | None) -> bool:
        """Whether the offset sessions of period ``p``, where the offset market clears
        (the caller asks :meth:`Simulation._offset_market`), run inside the runs of
        sessions (else each ends a run and runs in numpy): the offer noise is drawn, the
        ledger allows negative cash (so no transfer can be refused) and the arrays are in
        the form the kernel reads."""
        sim = self.sim
        ledger = sim.ledger
        if p is None or sim.offer_noise is None or not ledger.allow_negative_cash:
            return False
        shape = self._draw_shape
        arrays = (ledger._offsets, ledger._project_offsets, ledger._project_cash)
        return (
            p.offsets_surrendered.shape == shape
            and p.offsets_surrendered.dtype == np.int64
            and p.offsets_surrendered.flags.c_contiguous
            and ledger._project_offsets.dtype == np.int64
            and all(a.flags.c_contiguous for a in arrays)
        )

    def run(self, i: int, end: int) -> int:
        """Run sessions ``i .. end - 1`` (at most :attr:`max_sessions` of them); returns
        the next session to run."""
        sim = self.sim
        ledger = sim.ledger
        rng = sim.rng
        times = sim._session_times
        end = min(end, i + self.max_sessions)
        p = sim._current_period(float(times[i]))
        period = self._period_arrays(p)
        ok = (
            period is not None
            and ledger._allowances.flags.c_contiguous
            and ledger._cash.flags.c_contiguous
        )
        if not ok:
            sim._session(float(times[i]), i)
            return i + 1
        assert period is not None
        r, n = self._draw_shape
        market = sim._offset_market(p)  # unchanged by the sessions of the run
        interval = sim.scenario.offsets.session_interval
        inline = market == 2 and self.offsets_inline(p)
        if inline:  # the offset sessions' draws ahead: a few million cells at most
            at = np.flatnonzero(np.arange(i, end) % interval == 0)
            most = max(1, _CELL_BUDGET // max(r * n, 1))
            if len(at) > most:
                end = i + int(at[most - 1]) + 1
        n_sess = end - i
        n_strat = len(self.kinds)
        sess = np.arange(i, end, dtype=np.int64)
        if p is None:
            certainty = np.ones(n_sess)
            taus = np.full(n_sess, len(times), np.int64)
        else:
            certainty = p.certainties(times[i:end])
            taus = sim._sessions_to_deadline(sess, p)[0]
        if self._terms is None:
            # the terms at every count of sessions to the deadline a run can meet (0 ..
            # the number of sessions, which stands for "no period"), computed once
            self._terms = self._session_terms(np.arange(len(times) + 1))
        prob, cover, cover_sell, m0, m1, k0, k1 = (term[taus] for term in self._terms)
        # 1. the acting units and their uniforms, every session and strategy
        counters, offer_at = self._counters(sess, market, inline)
        rows, cols, u, start = _compiled["draw_cells"](
            rng._keys, counters, self.draw_offset, self.n_draws, prob, self._draw_shape[1]
        )
        # 2. numpy's and scipy's transcendental functions, as the strategies call them
        owner = np.repeat(np.arange(n_sess * n_strat), np.diff(start))
        noise = self.is_noise[owner % n_strat]
        z0 = ndtri(np.where(noise, u[1], u[0]))
        z1 = z0.copy()  # a compliance order's two factors share its normal draw
        z1[noise] = ndtri(u[2][noise])
        g = np.empty((2, len(owner)))
        g[0] = np.exp(m0.reshape(-1)[owner] + k0.reshape(-1)[owner] * z0)
        g[1] = np.exp(m1.reshape(-1)[owner] + k1.reshape(-1)[owner] * z1)
        # the offset sessions inside the run: exp(0.05 z) of the bidders' normal draws at
        # every cell (a full draw gives a masked draw's numbers at its cells)
        off_now = (sess % interval == 0) if inline else np.zeros(n_sess, np.bool_)
        off_at = np.flatnonzero(off_now)
        off_ez = np.empty((len(off_at), r, n))
        saved = rng._counter
        for o, pos in enumerate(off_at):
            rng._counter = int(counters[pos] + self.per_session)
            off_ez[o] = np.exp(0.05 * rng.standard_normal((r, n)))
        rng._counter = saved
        # 3. the sessions
        created = "settle_cells" not in ledger._journal
        entry = ledger._journal_entry("settle_cells")
        offsets = sim.scenario.offsets
        if inline:
            assert p is not None
            assert sim.offer_noise is not None
            off_idx = np.asarray(sim._offset_stock(p)[1], np.int64)
            off_surr = p.offsets_surrendered
            ask_price = offsets.supply_cost * sim.offer_noise
            t_created = "transfer_offsets" not in ledger._journal
            t_entry = ledger._journal_entry("transfer_offsets")
            t_arrays = (t_entry.tonnes, t_entry.movements, t_entry.cash)
        else:
            off_idx = np.zeros(0, np.int64)
            off_surr = np.zeros((0, 0), np.int64)
            ask_price = np.zeros((r, _OFFSET_LOTS))
            t_arrays = (np.zeros(r, np.int64), np.zeros(r, np.int64), np.zeros(r))
        info = np.array([0, -1, -1], np.int64)
        valid = (
            np.zeros(0, np.int64)
            if p is None
            else np.asarray(ledger._valid_vintage_indices(p.last_year, None), np.int64)
        )
        last_close = sim.last_close.copy()
        adaptive = sim.adaptive_price.copy()
        expected = sim.expected_price.copy()
        (done, code, segments, calls, rep, unit, is_buy, price, qty, segment, fill, lo, hi,
         clear_price, volume) = _compiled["sessions_kernel"](
            sess, certainty, taus == 0, cover, cover_sell, self.kinds, self.min_order,
            self.price_weight, self.block_share, self.size_share, self.least, rows, cols,
            u, g, start, *period[:10], ledger._offsets,
            0.0 if p is None else float(p.spec.offset_limit_share), ledger._allowances,
            ledger._cash, valid, self._vidx, ledger.allow_negative,
            ledger.allow_negative_cash, *period[10:], entry.tonnes, entry.movements,
            entry.cash, ledger._cash_gross, *self._trading, last_close, adaptive, expected,
            sim.fundamental_price, sim.msr_holdings, *self._weights, *self._columns,
            sim.market["offset_volume"], sim.market["offset_price"], off_now, off_ez, off_idx,
            off_surr, ledger._project_offsets, ledger._project_cash, float(offsets.discount),
            _OFFSET_CUTOFF_GROWTH, ask_price, *t_arrays, info, *self._stop,
        )  # fmt: skip
        entry.calls += int(calls)
        if created and entry.calls == 0:
            del ledger._journal["settle_cells"]  # nothing settled: no entry, as before
        if inline:
            t_entry.calls += int(info[0])
            if t_created and t_entry.calls == 0:
                del ledger._journal["transfer_offsets"]
            elif t_created and created and entry.calls and info[2] < info[1]:
                # the first transfer came before the first settlement: entries in the
                # order of first use
                ledger._journal["settle_cells"] = ledger._journal.pop("settle_cells")
        sim.last_close, sim.adaptive_price, sim.expected_price = last_close, adaptive, expected
        if 0 <= offer_at < done:  # drawn at its counter, once its session is done
            rng._counter = int(counters[offer_at] + self.per_session + 1)
            sim._draw_offer_noise()
        rng._counter = int(counters[done])
        if done:
            sim.session_index = i + done - 1
        if code == DONE:
            last = end - 1
            if market == 2 and not inline and last % interval == 0:
                assert p is not None
                sim._view_source = sim.kernels.view_source(ledger, p, certainty[-1])
                sim._offset_session(last, p)
            return end
        if code == OFFSET:  # the session closed; its offset session runs in numpy
            assert p is not None
            j = i + done - 1
            rng._counter = int(counters[done - 1] + self.per_session)
            sim._view_source = sim.kernels.view_source(ledger, p, certainty[done - 1])
            sim._offset_session(j, p)
            return j + 1
        if code == OFFSET_BROKEN:
            raise RuntimeError(
                f"the compiled offset session after session {i + done - 1} stopped part-way; "
                "run with backend='numpy' and report this"
            )
        j = i + done
        if code == EXCHANGE:  # untouched: the session runs step by step
            sim._session(float(times[j]), j)
            return j + 1
        # the ledger refused a segment part-way: the numpy settlement goes on from there
        rng._counter += self.per_session
        sim.session_index = j
        r = sim.n_replicates
        orders = Orders(
            replicate=rep, unit=unit, is_buy=is_buy, price=price, qty=qty, segment=segment
        )
        settle_segments(
            ledger,
            orders,
            fill,
            (LISTED, BLOCK),
            (_nan_to_zero(clear_price[:r]), _nan_to_zero(clear_price[r:])),
            None if p is None else p.bought,
            None if p is None else p.sold,
            start=int(segments),
        )
        if p is not None:
            sim._view_source = sim.kernels.view_source(ledger, p, certainty[done])
        sim._close_session(j, p, orders, lo, hi, clear_price, volume, fill)
        return j + 1

    #: ``(session of the run, kind)`` at which the kernel acts as if its input were outside
    #: its case (see :func:`sessions_kernel`); ``(-1, 0)``: never. For the tests.
    _stop: tuple[int, int] = (-1, 0)
