"""Who delivers which vintage to whom: the ledger's integer kernels, pure numpy.

:func:`draw_oldest` takes tonnes from holdings oldest vintage first (deliveries,
surrender, cancellation, repayment of borrowing, penalty deductions); :func:`split_pool` and
:func:`split_pool_cells` split the vintages delivered into a session's pool among the buyers
in whole tonnes (pro-rata floor, then a north-west-corner pass over the remainders; see
:meth:`~carbonsim.market.ledger.Ledger.settle_trades`). All results are exact integers.
"""

from __future__ import annotations

import numpy as np

from carbonsim._cells import run_starts
from carbonsim.market.ledger.common import IntArray

__all__ = ["draw_oldest", "split_pool", "split_pool_cells", "sum_by_replicate"]


def draw_oldest(hold: IntArray, qty: IntArray, vidx: IntArray) -> tuple[IntArray, IntArray]:
    """Take ``qty`` from ``hold`` (R, M, V) over vintage indices ``vidx``, oldest first.

    Returns the tonnes taken per vintage (R, M, V) and what could not be covered (R, M).
    Only positive holdings are drawn on.
    """
    take = np.zeros_like(hold)
    rem = qty.copy()
    for v in vidx:
        t = np.minimum(rem, np.maximum(hold[:, :, v], 0))
        take[:, :, v] = t
        rem -= t
    return take, rem


def split_pool(weights: IntArray, pool: IntArray) -> IntArray:
    """Split ``pool`` (R, V) among rows with ``weights`` (R, N), in whole tonnes.

    ``weights.sum(1) == pool.sum(1)`` is required. Returns ``X`` (R, N, V) with
    ``X.sum(2) == weights`` and ``X.sum(1) == pool``: the pro-rata floor, then the remainders
    by a north-west-corner pass (rows in order, vintages oldest first).
    """
    active = np.flatnonzero(weights.any(axis=0))
    if len(active) < weights.shape[1]:
        # only buyers take part; zero rows change neither the floor nor the corner pass,
        # so splitting over the active columns gives the identical result, faster
        out = np.zeros((*weights.shape, pool.shape[1]), np.int64)
        if len(active):
            out[:, active, :] = split_pool(weights[:, active], pool)
        return out
    total = pool.sum(axis=1)
    safe = np.where(total > 0, total, 1)
    if int(weights.max(initial=0)) * int(pool.max(initial=0)) >= 2**62:
        prod = weights.astype(object)[:, :, None] * pool.astype(object)[:, None, :]
        base = (prod // safe.astype(object)[:, None, None]).astype(np.int64)
    else:
        base = weights[:, :, None] * pool[:, None, :] // safe[:, None, None]
    row = weights - base.sum(axis=2)
    col = pool - base.sum(axis=1)
    row_hi = np.cumsum(row, axis=1)
    col_hi = np.cumsum(col, axis=1)
    overlap = np.minimum(row_hi[:, :, None], col_hi[:, None, :]) - np.maximum(
        (row_hi - row)[:, :, None], (col_hi - col)[:, None, :]
    )
    return base + np.maximum(overlap, 0)


def sum_by_replicate(rep: IntArray, values: IntArray, n_rep: int) -> IntArray:
    """Sum the rows of ``values`` (P, V) per replicate; ``rep`` (P,) sorted. (R, V), exact.

    ``np.add.reduceat`` over the runs of equal ``rep``: the integer result of
    ``np.add.at(out, rep, values)`` without its per-element cost.
    """
    out = np.zeros((n_rep, *values.shape[1:]), values.dtype)
    if len(rep):
        starts = np.flatnonzero(run_starts(rep))
        out[rep[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


def split_pool_cells(rep: IntArray, weights: IntArray, pool: IntArray) -> IntArray:
    """:func:`split_pool` on participating cells only.

    ``rep`` (P,) is the replicate of each cell, cells sorted by replicate then unit;
    ``weights`` (P,) their purchases; ``pool`` (R, V). Returns (P, V): the same numbers
    :func:`split_pool` gives those cells (zero-weight rows change nothing there).
    """
    n_rep = pool.shape[0]
    total = pool.sum(axis=1)
    safe = np.where(total > 0, total, 1)
    if int(weights.max(initial=0)) * int(pool.max(initial=0)) >= 2**62:
        prod = weights.astype(object)[:, None] * pool[rep].astype(object)
        base = (prod // safe[rep].astype(object)[:, None]).astype(np.int64)
    else:
        base = weights[:, None] * pool[rep] // safe[rep][:, None]
    row = weights - base.sum(axis=1)
    col = pool - sum_by_replicate(rep, base, n_rep)
    # cumulative remainder of the rows within each replicate (cells sorted by replicate)
    csum = np.cumsum(row)
    first = np.searchsorted(rep, np.arange(n_rep))
    # cumulative sum before each replicate
    before = np.concatenate((np.zeros(1, csum.dtype), csum))[first]
    row_hi = csum - before[rep]
    col_hi = np.cumsum(col, axis=1)
    overlap = np.minimum(row_hi[:, None], col_hi[rep]) - np.maximum(
        (row_hi - row)[:, None], (col_hi - col)[rep]
    )
    return base + np.maximum(overlap, 0)
