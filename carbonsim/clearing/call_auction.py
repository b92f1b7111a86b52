"""Uniform-price call auction (集合竞价) on an integer tick grid.

The clearing rule follows the exchange call-auction rules (e.g. SSE/SZSE trading rules,
call auction: maximum executable volume; all bids above and all asks below the price fill
in full; at the price at least one side fills in full; ties by the smallest unmatched
volume) with documented deterministic tie-breaks:

1. **Maximum executed volume** ``V(p) = min(D(p), S(p))``, where ``D(p)`` is the bid
   quantity at ticks ``>= p`` and ``S(p)`` the ask quantity at ticks ``<= p``.
2. **Strict price priority must be achievable**: every bid strictly above ``p`` and every
   ask strictly below ``p`` fills in full, i.e. ``D(p + 1) <= S(p)`` and
   ``S(p - 1) <= D(p)``. These prices form a non-empty interval of ticks on which ``V`` is
   constant and maximal (so this is a refinement of rule 1, never a trade-off against it).
3. **Minimum** ``|imbalance|`` with ``imbalance(p) = D(p) - S(p)``.
4. **Closest to the reference price**, distance measured in whole ticks.
5. **Lower median** of the ticks still tied: for an interval of ticks, its midpoint rounded
   down (the SSE rule takes the midpoint; the SZSE rule takes the price nearest the
   previous close, which is rule 4 with ``reference_price`` = previous close). With a
   reference price at most two ticks can remain (equidistant on either side) and the lower
   one is taken.

Every tick of the grid is a candidate, including ticks that hold no order. The result
never depends on the grid extent, so the dense grid and the compressed grid (below) give
the same answer bit for bit.

Algorithm
---------
Prices are converted to ticks once (``np.rint(price / tick)``). The bid and ask quantities
are binned per tick with ``np.bincount`` on the dense grid ``[min tick, max tick]``
(bounded by the price band when one is given); ``D`` is a reverse cumulative sum and ``S``
a cumulative sum; the price is chosen by vectorised masks and reductions; fills compare
each order's tick with the clearing tick (full above, nothing below, rationing only at the
clearing tick). Cost: ``O(N + ticks)`` with no sort. When the tick range is wide compared
with the number of orders (more than ``8 N + 65536`` ticks) the grid is compressed to the
ticks that hold an order plus one "gap" column between neighbours (a sort,
``O(N log N)``); gap columns keep every tick a candidate, so the answer is unchanged.

Many markets are cleared at once by laying their grids end to end (see
:func:`carbonsim.clearing.call_auction_batch`); cumulative sums restart at every market and
are computed in the same order as for a market alone, so a batch reproduces single-market
clearing bit for bit, also for fractional quantities.

Sources: docs/rules.md#tick-size (tick 0.01 yuan, quantity step 1 t) and
docs/rules.md#price-bands (+/-10 % (listed) and +/-30 % (block) of the previous close). The
kernel itself is generic: any tick, any band, any quantities.

Quantities
----------
Quantities are float64 (tonnes; whole numbers in the ledger). Fills are float64 arrays.
When every quantity at the marginal price is a whole number, rationing is done in whole
units (largest remainder), so fills are whole numbers and bid fills and ask fills each sum
to the volume exactly. With fractional quantities, rationing is proportional and sums
agree with the volume to floating-point rounding. The public entry points refuse a side
of a market whose quantities total ``2**53`` or more (:func:`check_qty_total`): past it
float64 does not hold every whole tonne, and fills silently stopped adding up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from carbonsim._cells import run_groups, run_starts, stable_order
from carbonsim._registry import Registry
from carbonsim._validation import as_float_array, check_in_range, check_same_length, read_only
from carbonsim.clearing.ticks import (
    MAX_ABS_TICK,
    band_ticks,
    check_tick,
    rint_ticks_range,
    ticks_to_price,
)

__all__ = [
    "ALLOCATION_RULES",
    "BAND_MODES",
    "NO_PRICE_TICK",
    "CallAuctionResult",
    "call_auction",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NO_PRICE_TICK: Final[int] = int(np.iinfo(np.int64).min)
"""``price_tick`` of a batch market that has no price (no trade and no reference price)."""

BAND_MODES: Final[tuple[str, ...]] = ("reject", "clip")
"""Valid ``band_mode`` values."""

_I64_MAX: Final[int] = int(np.iinfo(np.int64).max)
_I64_MIN: Final[int] = int(np.iinfo(np.int64).min)
_EXACT_FLOAT: Final[float] = float(2**53)
_INT_PRODUCT_LIMIT: Final[float] = float(2**62)
# Dense tick grid while it has at most this many cells per order plus the constant.
# Measured on the engine's sessions (15,000 orders over 200 markets whose grids span
# +/-10-30 % bands, ~480,000 ticks): the compressed grid clears them ~19 % faster than the
# dense one, while small books (a few thousand ticks) stay dense.
_DENSE_CELLS_PER_ORDER: Final[int] = 8
_DENSE_EXTRA_CELLS: Final[int] = 65_536

AllocationRule = Callable[[FloatArray, IntArray, FloatArray, FloatArray], FloatArray]
"""``rule(qty, group, amount, total) -> fill`` for the orders at the marginal price.

``qty`` (K,) quantities sorted by ``group`` (K,) (market id, non-decreasing, input order
kept within a group); ``amount`` and ``total`` are indexed by group id: the quantity to
hand out and the total quantity of the group's orders. Returns fills (K,).
"""

ALLOCATION_RULES: Registry[AllocationRule] = Registry("allocation rule")
"""Rationing rules at the marginal price, by name: ``"pro_rata"`` and ``"price_time"``."""


# ----------------------------------------------------------------------------- helpers


def _segment_cumsum(
    values: FloatArray, offsets: IntArray, whole: bool, *, overwrite: bool = False
) -> FloatArray:
    """Inclusive cumulative sum restarting at every segment, as ``np.cumsum`` per segment.

    ``values`` is the concatenation of segments; segment ``m`` is
    ``values[offsets[m]:offsets[m + 1]]`` (each non-empty). The result equals ``np.cumsum``
    applied to every segment alone, bit for bit. When ``whole`` (every value a whole
    number) and the total is below ``2**53`` every partial sum is exact, so one global
    cumulative sum is taken after subtracting each segment's predecessor total at its
    first element. Otherwise segments are grouped by power-of-two length, padded with
    zeros into 2-D blocks and summed along rows (a trailing zero adds exactly), with a
    loop over at most 64 length classes. ``values`` may be a reversed view; with
    ``overwrite`` it may be used as scratch space (then it no longer holds the input).
    """
    n_seg = offsets.size - 1
    if n_seg <= 1:
        return np.cumsum(values)
    starts = offsets[:-1]
    if whole:
        seg_total = np.add.reduceat(values, starts)
        if float(seg_total.sum()) < _EXACT_FLOAT:
            shifted = values if overwrite else np.array(values, dtype=np.float64, copy=True)
            shifted[starts[1:]] -= seg_total[:-1]
            return np.cumsum(shifted, out=shifted)
    lengths = np.diff(offsets)
    out = np.empty(values.size)
    width_class = np.ceil(np.log2(lengths)).astype(np.int64)
    for c in np.unique(width_class):
        segs = np.flatnonzero(width_class == c)
        lens = lengths[segs]
        n_cells = int(lens.sum())
        row = np.repeat(np.arange(segs.size), lens)
        col = np.arange(n_cells) - np.repeat(np.cumsum(lens) - lens, lens)
        src = np.repeat(starts[segs], lens) + col
        block = np.zeros((segs.size, 1 << int(c)))
        block[row, col] = values[src]
        np.cumsum(block, axis=1, out=block)
        out[src] = block[row, col]
    return out


def _group_starts(group: IntArray) -> IntArray:
    """Start positions of the runs of equal values in a sorted ``group`` array."""
    return np.flatnonzero(run_starts(group))


@ALLOCATION_RULES.register("pro_rata")
def _pro_rata(
    qty: FloatArray, group: IntArray, amount: FloatArray, total: FloatArray
) -> FloatArray:
    """Proportional rationing with largest-remainder rounding to whole units.

    In a group whose quantities and amount are whole numbers, order ``i`` first gets
    ``floor(amount * q_i / total)``; the units left over go one each to the largest
    remainders, ties to the earlier order. Otherwise ``q_i * min(amount / total, 1)``.
    """
    if qty.size == 0:
        return np.zeros(0)
    starts, g_of = run_groups(group)
    gid = group[starts]
    a_g = amount[gid]
    t_g = total[gid]
    share = np.divide(a_g, t_g, out=np.zeros_like(a_g), where=t_g > 0)
    fill = qty * np.minimum(share, 1.0)[g_of]

    q_whole = qty == np.rint(qty)
    g_whole = (
        np.logical_and.reduceat(q_whole, starts)
        & (a_g == np.rint(a_g))
        & (np.maximum.reduceat(qty, starts) * a_g < _INT_PRODUCT_LIMIT)
        & (t_g < _EXACT_FLOAT)
        & (a_g <= t_g)
    )
    if g_whole.any():
        w = g_whole[g_of]
        qi = np.where(w, qty, 0.0).astype(np.int64)
        ai = np.where(g_whole, a_g, 0.0).astype(np.int64)
        ti = np.add.reduceat(qi, starts)
        num = ai[g_of] * qi
        den = np.maximum(ti, 1)[g_of]
        base = num // den
        rem = num - base * den
        left = ai - np.add.reduceat(base, starts)
        order = np.lexsort((np.arange(qty.size), -rem, g_of))
        rank = np.arange(qty.size) - starts[g_of[order]]
        bonus = np.zeros(qty.size, dtype=np.int64)
        bonus[order] = rank < left[g_of[order]]
        fill = np.where(w, (base + bonus).astype(np.float64), fill)
    return fill


@ALLOCATION_RULES.register("price_time")
def _price_time(
    qty: FloatArray, group: IntArray, amount: FloatArray, total: FloatArray
) -> FloatArray:
    """Rationing in arrival (input) order: earlier orders fill first, in full."""
    if qty.size == 0:
        return np.zeros(0)
    starts = _group_starts(group)
    inclusive = _segment_cumsum(qty, np.append(starts, qty.size), _is_whole(qty))
    before = np.empty_like(inclusive)
    before[1:] = inclusive[:-1]
    before[starts] = 0.0
    left = np.maximum(amount[group] - before, 0.0)
    return np.minimum(qty, left)


def allocate_marginal(
    rule: AllocationRule,
    qty: FloatArray,
    group: IntArray | None,
    amount: FloatArray,
    total: FloatArray,
) -> FloatArray:
    """Fill the marginal orders: in full where the amount covers the group's total, not at
    all where it is zero, and by ``rule`` (groups sorted stably, input order kept) between.
    """
    grp = np.zeros(qty.size, dtype=np.int64) if group is None else group
    full = amount >= total
    none = amount <= 0.0
    fill = np.where(full[grp], qty, 0.0)
    part = ~(full | none)
    if not part.any():
        return fill
    if group is None:
        return rule(qty, grp, amount, total)
    idx = np.flatnonzero(part[grp])
    idx = idx[stable_order(grp[idx])]
    fill[idx] = rule(qty[idx], grp[idx], amount, total)
    return fill


def check_allocation(allocation: str) -> AllocationRule:
    """Look up an allocation rule; unknown names raise listing the valid ones."""
    return ALLOCATION_RULES.get(allocation)


def check_band_mode(band_mode: str) -> str:
    """Validate ``band_mode`` against :data:`BAND_MODES`."""
    if not isinstance(band_mode, str) or band_mode not in BAND_MODES:
        raise ValueError(
            f"band_mode must be one of {', '.join(repr(m) for m in BAND_MODES)}, got {band_mode!r}"
        )
    return band_mode


def apply_band(
    ticks: IntArray,
    qty: FloatArray,
    lo_t: IntArray | int,
    hi_t: IntArray | int,
    band_mode: str,
) -> tuple[IntArray, FloatArray, BoolArray]:
    """Apply a price band to orders: returns ``(ticks, effective qty, rejected)``.

    ``"reject"``: orders outside ``[lo_t, hi_t]`` get quantity 0 and are flagged (their tick
    is clipped only to keep the grid inside the band). ``"clip"``: ticks are clipped.
    """
    clipped = np.clip(ticks, lo_t, hi_t)
    if band_mode == "clip":
        return clipped, qty, np.zeros(ticks.shape, dtype=bool)
    rejected = clipped != ticks
    return clipped, np.where(rejected, 0.0, qty), rejected


# ----------------------------------------------------------------------------- engine


@dataclass(frozen=True, eq=False)
class Cleared:
    """Raw output of :func:`clear_markets` (ticks, per-market arrays, per-order fills)."""

    price_tick: IntArray
    has_price: BoolArray
    traded: BoolArray
    volume: FloatArray
    demand: FloatArray
    supply: FloatArray
    bid_fill: FloatArray
    ask_fill: FloatArray


@dataclass(frozen=True, eq=False)
class _Grid:
    """Columns of all markets laid end to end; a column covers the ticks ``lo..hi``.

    Dense grids have one column per tick (``lo == hi == col - base[market]``) and store
    no per-column arrays; compressed grids store ``seg``, ``lo``, ``hi`` and ``count``.
    """

    dense: bool
    offsets: IntArray  # (M + 1,) first column of each market, then the total
    base: IntArray  # (M,) dense: column = base[market] + tick
    seg: IntArray | None  # (C,) market of each column (compressed)
    lo: IntArray | None  # (C,)
    hi: IntArray | None  # (C,)
    count: IntArray | None  # (C,) ticks in the column (0: unused column)
    mn: IntArray  # (M,) lowest tick holding an order
    mx: IntArray  # (M,) highest tick holding an order
    nonempty: BoolArray  # (M,)
    cell_bid: IntArray  # (n_bids,) column of each bid
    cell_ask: IntArray  # (n_asks,) column of each ask

    def market_of(self, cols: IntArray) -> IntArray:
        """Market of each column in ``cols``."""
        if self.seg is not None:
            return self.seg[cols]
        return np.searchsorted(self.offsets, cols, side="right") - 1

    def bounds(self, cols: IntArray, mkt: IntArray) -> tuple[IntArray, IntArray, IntArray]:
        """``(lo, hi, count)`` of the columns ``cols`` of markets ``mkt``."""
        if self.lo is None or self.hi is None or self.count is None:
            lo = cols - self.base[mkt]
            return lo, lo, np.ones(cols.size, dtype=np.int64)
        return self.lo[cols], self.hi[cols], self.count[cols]


def _market_ranges(
    bt: IntArray, bm: IntArray | None, at: IntArray, am: IntArray | None, n_markets: int
) -> tuple[IntArray, IntArray, BoolArray]:
    if bm is None or am is None:
        both = [a for a in (bt, at) if a.size]
        if not both:
            return np.zeros(1, np.int64), np.full(1, -1, np.int64), np.zeros(1, bool)
        lo = min(int(a.min()) for a in both)
        hi = max(int(a.max()) for a in both)
        return np.array([lo], np.int64), np.array([hi], np.int64), np.ones(1, bool)
    mn = np.full(n_markets, _I64_MAX, dtype=np.int64)
    mx = np.full(n_markets, _I64_MIN, dtype=np.int64)
    for ticks, mkt in ((bt, bm), (at, am)):
        np.minimum.at(mn, mkt, ticks)
        np.maximum.at(mx, mkt, ticks)
    nonempty = mn <= mx
    mn[~nonempty] = 0
    mx[~nonempty] = -1
    return mn, mx, nonempty


def _dense_grid(
    bt: IntArray,
    bm: IntArray | None,
    at: IntArray,
    am: IntArray | None,
    mn: IntArray,
    mx: IntArray,
    nonempty: BoolArray,
    overwrite: bool,
) -> _Grid:
    """One column per tick of ``[mn, mx]`` (one empty column for a market without orders);
    ``overwrite`` lets single-market cells reuse the tick arrays."""
    widths = np.where(nonempty, mx - mn + 1, 1)
    offsets = np.zeros(widths.size + 1, dtype=np.int64)
    np.cumsum(widths, out=offsets[1:])
    base = offsets[:-1] - mn
    if bm is None or am is None:
        cell_bid = np.subtract(bt, mn[0], out=bt if overwrite else None)
        cell_ask = np.subtract(at, mn[0], out=at if overwrite else None)
    else:
        cell_bid = base[bm]
        cell_bid += bt
        cell_ask = base[am]
        cell_ask += at
    return _Grid(True, offsets, base, None, None, None, None, mn, mx, nonempty, cell_bid, cell_ask)


def _market_tick_order(ticks: IntArray, mkt: IntArray, n_markets: int) -> IntArray:
    """``np.lexsort((ticks, mkt))``: by market, then tick, ties in input order.

    The stable order of the combined key ``mkt * span + tick``
    (:func:`~carbonsim._cells.stable_order`) where it fits in 62 bits, the two-key sort
    otherwise.
    """
    if ticks.size == 0:
        return np.zeros(0, dtype=np.intp)
    lo = int(ticks.min())
    span = int(ticks.max()) - lo + 1
    if span * max(n_markets, 1) >= 2**62:
        return np.lexsort((ticks, mkt))
    key = mkt * span
    key += ticks
    return stable_order(key)


def _compressed_grid(
    bt: IntArray, bm: IntArray | None, at: IntArray, am: IntArray | None, n_markets: int
) -> _Grid:
    """Columns for the ticks holding an order and for the gaps between them (one sort)."""
    ticks = np.concatenate((bt, at))
    if bm is None or am is None:
        mkt = np.zeros(ticks.size, dtype=np.int64)
    else:
        mkt = np.concatenate((bm, am))
    order = _market_tick_order(ticks, mkt, n_markets)
    st, sm = ticks[order], mkt[order]
    new = np.ones(st.size, dtype=bool)
    new[1:] = (st[1:] != st[:-1]) | (sm[1:] != sm[:-1])
    uid = np.cumsum(new) - 1
    inverse = np.empty(ticks.size, dtype=np.int64)
    inverse[order] = uid
    u_t, u_m = st[new], sm[new]
    k = np.bincount(u_m, minlength=n_markets)
    nonempty = k > 0
    n_cols_m = np.where(nonempty, 2 * k - 1, 1)
    offsets = np.zeros(n_markets + 1, dtype=np.int64)
    np.cumsum(n_cols_m, out=offsets[1:])
    first_u = np.cumsum(k) - k
    rank = np.arange(u_t.size) - first_u[u_m]
    col_u = offsets[:-1][u_m] + 2 * rank
    n_cols = int(offsets[-1])
    lo = np.zeros(n_cols, dtype=np.int64)
    hi = np.full(n_cols, -1, dtype=np.int64)
    lo[col_u] = u_t
    hi[col_u] = u_t
    has_next = np.zeros(u_t.size, dtype=bool)
    has_next[:-1] = u_m[1:] == u_m[:-1]
    gaps = np.flatnonzero(has_next)
    lo[col_u[gaps] + 1] = u_t[gaps] + 1
    hi[col_u[gaps] + 1] = u_t[gaps + 1] - 1
    mn = np.zeros(n_markets, dtype=np.int64)
    mx = np.full(n_markets, -1, dtype=np.int64)
    mn[nonempty] = u_t[first_u[nonempty]]
    mx[nonempty] = u_t[first_u[nonempty] + k[nonempty] - 1]
    seg = np.repeat(np.arange(n_markets, dtype=np.int64), n_cols_m)
    cells = col_u[inverse]
    return _Grid(
        False,
        offsets,
        np.zeros(n_markets, dtype=np.int64),
        seg,
        lo,
        hi,
        hi - lo + 1,
        mn,
        mx,
        nonempty,
        cells[: bt.size],
        cells[bt.size :],
    )


def _is_whole(*arrays: FloatArray) -> bool:
    return all(bool(np.array_equal(a, np.rint(a))) for a in arrays)


def clear_markets(
    bid_tick: IntArray,
    bid_qty: FloatArray,
    bid_market: IntArray | None,
    ask_tick: IntArray,
    ask_qty: FloatArray,
    ask_market: IntArray | None,
    *,
    n_markets: int,
    ref_tick: IntArray,
    has_ref: BoolArray,
    fallback_tick: IntArray,
    rule: AllocationRule,
    overwrite_ticks: bool = False,
    tick_range: tuple[int, int] | None = None,
) -> Cleared:
    """Clear ``n_markets`` call auctions on their tick grids (validated integer input).

    ``bid_market``/``ask_market`` ``None`` means a single market. ``fallback_tick`` is the
    price reported where no trade happens (used where ``has_ref``). ``overwrite_ticks``
    allows the tick arrays to be reused as scratch space (the caller owns fresh copies).
    ``tick_range`` is the known ``(min, max)`` tick of a single market's orders.
    """
    n_orders = bid_tick.size + ask_tick.size
    if tick_range is not None and bid_market is None:
        mn, mx = np.array([tick_range[0]]), np.array([tick_range[1]])
        nonempty = np.ones(1, dtype=bool)
    else:
        mn, mx, nonempty = _market_ranges(bid_tick, bid_market, ask_tick, ask_market, n_markets)
    n_dense = float(np.sum(np.where(nonempty, (mx - mn + 1).astype(np.float64), 1.0)))
    if n_dense <= _DENSE_CELLS_PER_ORDER * n_orders + _DENSE_EXTRA_CELLS:
        grid = _dense_grid(
            bid_tick, bid_market, ask_tick, ask_market, mn, mx, nonempty, overwrite_ticks
        )
    else:
        logger.debug("tick range of %.0f cells for %d orders: compressed grid", n_dense, n_orders)
        grid = _compressed_grid(bid_tick, bid_market, ask_tick, ask_market, n_markets)

    offsets = grid.offsets
    n_cols = int(offsets[-1])
    starts = offsets[:-1]
    ends = offsets[1:] - 1
    # bincount with float weights returns float64; astype documents it for the type checker
    cell_bid = np.bincount(grid.cell_bid, weights=bid_qty, minlength=n_cols).astype(
        np.float64, copy=False
    )
    cell_ask = np.bincount(grid.cell_ask, weights=ask_qty, minlength=n_cols).astype(
        np.float64, copy=False
    )
    # Whole numbers with totals below 2**53: every partial sum below is exact.
    whole = (
        n_markets > 1
        and float(cell_bid.sum()) < _EXACT_FLOAT
        and float(cell_ask.sum()) < _EXACT_FLOAT
        and _is_whole(bid_qty, ask_qty)
    )
    # S: asks at or below the column; D: bids at or above it (per market).
    # With whole numbers the cell arrays serve as scratch space; cell totals at the price
    # are then recovered exactly as differences of the cumulative sums.
    supply = _segment_cumsum(cell_ask, offsets, whole, overwrite=True)
    rev_offsets = n_cols - offsets[::-1]
    demand = _segment_cumsum(cell_bid[::-1], rev_offsets, whole, overwrite=True)[::-1]

    # Strict price priority achievable: D(p + 1) <= S(p) and S(p - 1) <= D(p); and V > 0.
    feasible = np.ones(n_cols, dtype=bool)
    np.less_equal(demand[1:], supply[:-1], out=feasible[:-1])
    feasible[ends] = True
    from_below = np.ones(n_cols, dtype=bool)
    np.less_equal(supply[:-1], demand[1:], out=from_below[1:])
    from_below[starts] = True
    feasible &= from_below
    feasible &= demand > 0.0
    feasible &= supply > 0.0
    if grid.count is not None:
        feasible &= grid.count > 0
    cand = np.flatnonzero(feasible)  # a short run of columns per trading market

    traded = np.zeros(n_markets, dtype=bool)
    price = np.zeros(n_markets, dtype=np.int64)
    col = np.zeros(n_markets, dtype=np.int64)
    if cand.size:
        c_mkt = grid.market_of(cand)
        g_start, g_of = run_groups(c_mkt)
        g_mkt = c_mkt[g_start]
        traded[g_mkt] = True
        lo, hi, count = grid.bounds(cand, c_mkt)
        # Tie-break 1: minimum |imbalance|.
        abs_imb = np.abs(demand[cand] - supply[cand])
        tied = abs_imb == np.minimum.reduceat(abs_imb, g_start)[g_of]
        g_price = np.zeros(g_start.size, dtype=np.int64)
        g_ref = has_ref[g_mkt]
        if g_ref.any():
            # Tie-break 2: nearest tick to the reference; the lower of two equidistant ticks.
            ref = np.where(g_ref, ref_tick[g_mkt], 0)
            ref_c = ref[g_of]
            dist = np.maximum(np.maximum(lo - ref_c, ref_c - hi), 0)
            dist = np.where(tied, dist, _I64_MAX)
            d_min = np.minimum.reduceat(dist, g_start)
            d_safe = np.where(g_ref, d_min, 0)
            below = (ref - d_safe)[g_of]
            has_below = np.logical_or.reduceat(
                tied & (dist == d_min[g_of]) & (lo <= below) & (below <= hi), g_start
            )
            g_price = np.where(g_ref, np.where(has_below, ref - d_safe, ref + d_safe), 0)
        if not g_ref.all():
            # Tie-break 3 (no reference): lower median of the tied ticks.
            n_tied = np.where(tied & ~g_ref[g_of], count, 0)
            k_tied = np.add.reduceat(n_tied, g_start)
            j = (np.maximum(k_tied - 1, 0) // 2)[g_of]
            cum = np.cumsum(n_tied)
            excl = cum - n_tied - np.concatenate(([0], cum))[g_start][g_of]
            pick = np.flatnonzero((n_tied > 0) & (excl <= j) & (j < excl + n_tied))
            g_price[g_of[pick]] = lo[pick] + j[pick] - excl[pick]
        holds = np.flatnonzero(tied & (lo <= g_price[g_of]) & (g_price[g_of] <= hi))
        price[g_mkt] = g_price
        col[c_mkt[holds]] = cand[holds]

    has_price = traded | has_ref
    price = np.where(traded, price, np.where(has_ref, fallback_tick, 0))

    # Demand and supply at the price where nothing trades (the fallback price).
    look = has_ref & ~traded & nonempty & (grid.mn <= price) & (price <= grid.mx)
    if look.any():
        if grid.seg is None or grid.lo is None or grid.hi is None:  # dense grid
            col = np.where(look, grid.base + price, col)
        else:
            seg, lo_c, hi_c = grid.seg, grid.lo, grid.hi
            hit = np.flatnonzero(
                look[seg] & (lo_c <= price[seg]) & (price[seg] <= hi_c) & (hi_c >= lo_c)
            )
            col[seg[hit]] = hit
    inside = traded | look
    above = has_price & nonempty & (price > grid.mx)
    below_range = has_price & nonempty & (price < grid.mn)
    d_at = np.where(inside, demand[col], np.where(below_range, demand[starts], 0.0))
    s_at = np.where(inside, supply[col], np.where(above, supply[ends], 0.0))
    d_at = np.where(has_price, d_at, np.nan)
    s_at = np.where(has_price, s_at, np.nan)
    vol = np.where(traded, np.minimum(d_at, s_at), 0.0)

    # Rationing at the price: what is left after the strictly better orders.
    at_end = col == ends
    at_start = col == starts
    d_above = np.where(at_end, 0.0, demand[np.minimum(col + 1, n_cols - 1)])
    s_below = np.where(at_start, 0.0, supply[np.maximum(col - 1, 0)])
    bid_amount = np.where(traded, vol - d_above, 0.0)
    ask_amount = np.where(traded, vol - s_below, 0.0)
    if whole:
        bid_total = np.where(traded, d_at - d_above, 0.0)
        ask_total = np.where(traded, s_at - s_below, 0.0)
    else:
        bid_total = np.where(traded, cell_bid[col], 0.0)
        ask_total = np.where(traded, cell_ask[col], 0.0)

    # Fills: within a market, column order is tick order and the price lies in column
    # ``col``; a market without a trade gets a sentinel column that no order passes.
    col_bid = np.where(traded, col, _I64_MAX)
    col_ask = np.where(traded, col, _I64_MIN)
    fills = []
    for cells, qty, mkt, col_side, amount, total, strictly in (
        (grid.cell_bid, bid_qty, bid_market, col_bid, bid_amount, bid_total, np.greater),
        (grid.cell_ask, ask_qty, ask_market, col_ask, ask_amount, ask_total, np.less),
    ):
        col_o = col_side[0] if mkt is None else col_side[mkt]
        fill = np.where(strictly(cells, col_o), qty, 0.0)
        marginal = np.flatnonzero(cells == col_o)
        if marginal.size:
            group = None if mkt is None else mkt[marginal]
            fill[marginal] = allocate_marginal(rule, qty[marginal], group, amount, total)
        fills.append(fill)

    return Cleared(
        price_tick=price,
        has_price=has_price,
        traded=traded,
        volume=vol,
        demand=d_at,
        supply=s_at,
        bid_fill=fills[0],
        ask_fill=fills[1],
    )


# ----------------------------------------------------------------------------- public API


@dataclass(frozen=True, eq=False)
class CallAuctionResult:
    """Outcome of one uniform-price call auction.

    Attributes
    ----------
    price : float
        Clearing price, currency per tonne, on the tick grid. Without a trade: the
        reference price (snapped to the grid and clipped into the band) or NaN.
    price_tick : int or None
        ``price`` in ticks; ``None`` when ``price`` is NaN.
    volume : float
        Executed quantity, tonnes (0 without a trade).
    imbalance : float
        ``demand - supply`` at ``price``, tonnes (NaN when ``price`` is NaN).
    demand, supply : float
        Bid quantity at or above ``price`` and ask quantity at or below it, tonnes.
    executable : bool
        Whether anything trades (``volume > 0``).
    bid_fill, ask_fill : ndarray of float64, shapes (n_bids,), (n_asks,)
        Filled quantity per order, aligned with the inputs, tonnes; ``0 <= fill <= qty``.
    bid_rejected, ask_rejected : ndarray of bool, shapes (n_bids,), (n_asks,)
        Orders excluded by the price band (``band_mode="reject"``); all False otherwise.
    n_bids_filled, n_asks_filled : int
        Orders with a positive fill.
    tick : float
        Price step used, currency per tonne.
    """

    price: float
    price_tick: int | None
    volume: float
    imbalance: float
    demand: float
    supply: float
    executable: bool
    bid_fill: FloatArray
    ask_fill: FloatArray
    bid_rejected: BoolArray
    ask_rejected: BoolArray
    n_bids_filled: int
    n_asks_filled: int
    tick: float


def check_qty_total(name: str, total: float, where: str = "") -> None:
    """Refuse quantities whose total reaches ``2**53`` t.

    Past ``2**53`` float64 does not hold every whole number: cumulative demand and supply,
    volumes and fills would be rounded and no longer add up. ``total`` is the float64 sum
    of non-negative quantities, which reaches ``2**53`` exactly when the true sum of whole
    numbers does (each partial sum is exact below it, and rounding is monotone).
    """
    if not total < _EXACT_FLOAT:
        raise ValueError(
            f"{name}{where} totals {total:.0f} t, at or above 2**53 = {2**53} t: past it "
            "float64 cannot hold every whole tonne, so fills and volumes would not add up; "
            "count in larger units (e.g. kilotonnes) or split the orders over several calls"
        )


def validate_side(
    price_name: str, price: npt.ArrayLike, qty_name: str, qty: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Validate one side of a book: finite real prices, non-negative finite quantities
    whose total stays below ``2**53`` (:func:`check_qty_total`)."""
    p = as_float_array(price_name, price)
    q = as_float_array(qty_name, qty, nonnegative=True)
    check_same_length(**{price_name: p, qty_name: q})
    check_qty_total(qty_name, float(q.sum()))
    return p, q


def call_auction(
    bid_price: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    ask_price: npt.ArrayLike,
    ask_qty: npt.ArrayLike,
    *,
    tick: float = 0.01,
    reference_price: float | None = None,
    allocation: str = "pro_rata",
    price_band: tuple[float, float] | None = None,
    band_mode: str = "reject",
) -> CallAuctionResult:
    """Clear a call auction at the single price that maximises executed volume.

    See the module docstring for the full price rule. Summary: maximum volume with strict
    price priority; then minimum ``|demand - supply|``; then the tick nearest to
    ``reference_price``; then the lower median of the tied ticks. Every bid strictly above
    the price and every ask strictly below it fills in full; at the price the side with
    the excess is rationed by ``allocation``.

    Parameters
    ----------
    bid_price, bid_qty : array_like of float, shape (n_bids,)
        Buy limit prices (currency per tonne, finite) and quantities (tonnes, ``>= 0``).
    ask_price, ask_qty : array_like of float, shape (n_asks,)
        Sell limit prices and quantities.
    tick : float, default 0.01
        Price step, currency per tonne. Prices are snapped to ticks with
        ``np.rint(price / tick)``.
    reference_price : float, optional
        E.g. the previous close. Breaks remaining ties (nearest tick) and is the reported
        price when nothing trades (snapped and clipped into the band).
    allocation : {"pro_rata", "price_time"}, default "pro_rata"
        Rationing at the clearing price: proportional to quantity in whole units
        (largest remainder, ties to the earlier order), or in input (arrival) order.
    price_band : (float, float), optional
        Lowest and highest admissible prices (see
        :func:`carbonsim.clearing.band_from_reference`), snapped inward to the grid.
    band_mode : {"reject", "clip"}, default "reject"
        ``"reject"``: orders priced outside the band are excluded (fill 0, flagged in
        ``bid_rejected``/``ask_rejected``). ``"clip"``: their prices are moved to the band
        edge (a bid above ``hi`` becomes a bid at ``hi``). The price lies in the band.

    Returns
    -------
    CallAuctionResult

    Raises
    ------
    TypeError
        Non-numeric or boolean prices or quantities.
    ValueError
        NaN or infinite prices, negative or non-finite quantities, bid or ask quantities
        totalling ``2**53`` t or more, mismatched lengths, ``tick <= 0``, unknown
        ``allocation`` (the message lists the valid names) or ``band_mode``, or an empty or
        inverted band.

    Examples
    --------
    >>> r = call_auction([51.0, 50.0], [10, 10], [49.0, 50.0], [5, 10])
    >>> r.price, r.volume, r.imbalance
    (50.0, 15.0, 5.0)
    >>> r.bid_fill.tolist(), r.ask_fill.tolist()
    ([10.0, 5.0], [5.0, 10.0])
    >>> call_auction([49.0], [10], [51.0], [10], reference_price=50.0).volume
    0.0
    """
    tick = check_tick(tick)
    bp, bq = validate_side("bid_price", bid_price, "bid_qty", bid_qty)
    ap, aq = validate_side("ask_price", ask_price, "ask_qty", ask_qty)
    rule = check_allocation(allocation)
    band_mode = check_band_mode(band_mode)
    ref_t: IntArray = np.zeros(1, dtype=np.int64)
    has_ref = np.zeros(1, dtype=bool)
    if reference_price is not None:
        ref = check_in_range("reference_price", reference_price)
        ref_f = np.rint(ref / tick)
        if abs(ref_f) > MAX_ABS_TICK:
            raise ValueError(f"reference_price is too large for tick {tick!r}, got {ref!r}")
        ref_t[0] = int(ref_f)
        has_ref[0] = True
    bt, b_range = rint_ticks_range("bid_price", bp, tick)
    at, a_range = rint_ticks_range("ask_price", ap, tick)
    ranges = [r for r in (b_range, a_range) if r is not None]
    lo_hi = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
    fallback = ref_t
    if price_band is None:
        bid_rej = np.zeros(bp.size, dtype=bool)
        ask_rej = np.zeros(ap.size, dtype=bool)
    else:
        lo_t, hi_t = band_ticks(price_band, tick, 1)
        lo_b, hi_b = int(lo_t[0]), int(hi_t[0])
        bt, bq, bid_rej = apply_band(bt, bq, lo_b, hi_b, band_mode)
        at, aq, ask_rej = apply_band(at, aq, lo_b, hi_b, band_mode)
        if lo_hi is not None:  # clipping is monotone: the range is clipped too
            lo_hi = (min(max(lo_hi[0], lo_b), hi_b), min(max(lo_hi[1], lo_b), hi_b))
        fallback = np.clip(ref_t, lo_t, hi_t)
    out = clear_markets(
        bt,
        bq,
        None,
        at,
        aq,
        None,
        n_markets=1,
        ref_tick=ref_t,
        has_ref=has_ref,
        fallback_tick=fallback,
        rule=rule,
        overwrite_ticks=True,
        tick_range=lo_hi,
    )
    has_price = bool(out.has_price[0])
    p_tick = int(out.price_tick[0]) if has_price else None
    price = float(ticks_to_price(out.price_tick[:1], tick)[0]) if has_price else float("nan")
    demand = float(out.demand[0])
    supply = float(out.supply[0])
    return CallAuctionResult(
        price=price,
        price_tick=p_tick,
        volume=float(out.volume[0]),
        imbalance=demand - supply,
        demand=demand,
        supply=supply,
        executable=bool(out.traded[0]),
        bid_fill=read_only(out.bid_fill),
        ask_fill=read_only(out.ask_fill),
        bid_rejected=read_only(bid_rej),
        ask_rejected=read_only(ask_rej),
        n_bids_filled=int(np.count_nonzero(out.bid_fill)),
        n_asks_filled=int(np.count_nonzero(out.ask_fill)),
        tick=tick,
    )
