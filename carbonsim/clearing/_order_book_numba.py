"""Compiled matching kernel behind ``match_stream(..., backend="numba")``.

Importing this module does nothing heavy; the first call of :func:`match_ranked` imports the
optional ``numba`` package (``carbonsim[fast]``; ``ModuleNotFoundError`` without it) and
compiles the kernel (about two seconds, once per process).
The rules are exactly those of :meth:`carbonsim.clearing.order_book.OrderBook._run`, which
the tests check trade by trade. The data layout differs: limit prices arrive as ranks of the
distinct limit ticks of the stream (so level arrays have at most ``n`` entries), each level is
a doubly linked FIFO of order ids (``O(1)`` cancels), and the best bid and ask are pointers
into the level arrays that move to the next non-empty level when theirs empties (a scan over
empty levels: short for realistic streams, ``O(L)`` in the worst case).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import numpy.typing as npt

from carbonsim.clearing.book_records import (
    EV_CANCEL,
    EV_LIMIT_BUY,
    EV_LIMIT_SELL,
    EV_MARKET_BUY,
    EV_MARKET_SELL,
)

__all__ = ["match_ranked"]

IntArray = npt.NDArray[np.int64]

# the internal event codes of the book (compiled in as constants)
_LIMIT_BUY = EV_LIMIT_BUY
_LIMIT_SELL = EV_LIMIT_SELL
_MARKET_BUY = EV_MARKET_BUY
_MARKET_SELL = EV_MARKET_SELL
_CANCEL = EV_CANCEL


def _match_kernel(
    code: npt.NDArray[np.int8],
    level: IntArray,
    qty: IntArray,
    target: IntArray,
    n_levels: int,
) -> tuple[IntArray, IntArray, IntArray, npt.NDArray[np.bool_]]:
    n = code.shape[0]
    head_b = np.full(n_levels, -1, np.int64)
    tail_b = np.full(n_levels, -1, np.int64)
    head_a = np.full(n_levels, -1, np.int64)
    tail_a = np.full(n_levels, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    prv = np.full(n, -1, np.int64)
    rem = np.zeros(n, np.int64)
    gone = np.zeros(n, np.int64)
    applied = np.zeros(n, np.bool_)
    out = np.empty(4 * n, np.int64)  # every trade exhausts at least one order: T <= n
    nt = 0
    best_b = -1  # empty bid side
    best_a = n_levels  # empty ask side
    for i in range(n):
        c = code[i]
        q = qty[i]
        if c in (_LIMIT_BUY, _MARKET_BUY):
            p = level[i] if c == _LIMIT_BUY else n_levels - 1
            while q > 0 and best_a <= p:
                o = head_a[best_a]
                r = rem[o]
                k = 4 * nt
                out[k] = i
                out[k + 1] = o
                out[k + 2] = best_a
                nt += 1
                if r <= q:
                    out[k + 3] = r
                    q -= r
                    rem[o] = 0
                    nx = nxt[o]
                    head_a[best_a] = nx
                    if nx == -1:
                        tail_a[best_a] = -1
                        best_a += 1
                        while best_a < n_levels and head_a[best_a] == -1:
                            best_a += 1
                    else:
                        prv[nx] = -1
                else:
                    out[k + 3] = q
                    rem[o] = r - q
                    q = 0
            if q > 0:
                if c == _LIMIT_BUY:
                    rem[i] = q
                    t = tail_b[p]
                    if t == -1:
                        head_b[p] = i
                    else:
                        nxt[t] = i
                        prv[i] = t
                    tail_b[p] = i
                    if p > best_b:
                        best_b = p
                else:
                    gone[i] = q
        elif c in (_LIMIT_SELL, _MARKET_SELL):
            p = level[i] if c == _LIMIT_SELL else 0
            while q > 0 and best_b >= p:
                o = head_b[best_b]
                r = rem[o]
                k = 4 * nt
                out[k] = o
                out[k + 1] = i
                out[k + 2] = best_b
                nt += 1
                if r <= q:
                    out[k + 3] = r
                    q -= r
                    rem[o] = 0
                    nx = nxt[o]
                    head_b[best_b] = nx
                    if nx == -1:
                        tail_b[best_b] = -1
                        best_b -= 1
                        while best_b >= 0 and head_b[best_b] == -1:
                            best_b -= 1
                    else:
                        prv[nx] = -1
                else:
                    out[k + 3] = q
                    rem[o] = r - q
                    q = 0
            if q > 0:
                if c == _LIMIT_SELL:
                    rem[i] = q
                    t = tail_a[p]
                    if t == -1:
                        head_a[p] = i
                    else:
                        nxt[t] = i
                        prv[i] = t
                    tail_a[p] = i
                    if p < best_a:
                        best_a = p
                else:
                    gone[i] = q
        elif c == _CANCEL:
            o = target[i]
            r = rem[o]
            if r > 0:
                gone[o] = r
                rem[o] = 0
                applied[i] = True
                lv = level[o]
                before = prv[o]
                after = nxt[o]
                is_bid = code[o] == _LIMIT_BUY
                if before == -1:
                    if is_bid:
                        head_b[lv] = after
                    else:
                        head_a[lv] = after
                else:
                    nxt[before] = after
                if after == -1:
                    if is_bid:
                        tail_b[lv] = before
                    else:
                        tail_a[lv] = before
                else:
                    prv[after] = before
                if is_bid:
                    if lv == best_b and head_b[lv] == -1:
                        while best_b >= 0 and head_b[best_b] == -1:
                            best_b -= 1
                elif lv == best_a and head_a[lv] == -1:
                    while best_a < n_levels and head_a[best_a] == -1:
                        best_a += 1
        # any other code: rejected by the band, never enters the book
    return out[: 4 * nt].copy(), rem, gone, applied


_KERNEL: Any = None  # the compiled kernel, built on first use


def _compiled() -> Any:
    """The kernel compiled by numba (imported and compiled on the first call)."""
    global _KERNEL
    if _KERNEL is None:
        numba = importlib.import_module("numba")
        _KERNEL = numba.njit(nogil=True)(_match_kernel)
    return _KERNEL


def match_ranked(
    code: npt.ArrayLike,
    level: npt.ArrayLike,
    qty: npt.ArrayLike,
    target: npt.ArrayLike,
    n_levels: int,
) -> tuple[IntArray, IntArray, IntArray, npt.NDArray[np.bool_]]:
    """Match a prepared stream whose limit prices are level ranks.

    Parameters
    ----------
    code : array_like of int8, shape (n,)
        Internal event codes of ``order_book.py`` (0 limit buy, 1 limit sell, 2 market buy,
        3 market sell, 4 cancel, 5 rejected).
    level : array_like of int64, shape (n,)
        Rank of each limit order's tick among the distinct limit ticks (ascending, ``0 ..
        n_levels - 1``); ignored on other rows.
    qty : array_like of int64, shape (n,)
        Quantity, tonnes.
    target : array_like of int64, shape (n,)
        Row cancelled by each cancel row (earlier than the row), ignored elsewhere.
    n_levels : int
        Number of distinct limit ticks.

    Returns
    -------
    trades : ndarray of int64, shape (4 * T,)
        Trades flattened as ``(buy, sell, level, qty)`` rows in execution order.
    rem, gone : ndarray of int64, shape (n,)
        Resting quantity and cancelled or expired quantity per row, tonnes.
    applied : ndarray of bool, shape (n,)
        Cancel rows that removed a resting order.

    Raises
    ------
    ModuleNotFoundError
        When numba is not installed.
    """
    result: tuple[IntArray, IntArray, IntArray, npt.NDArray[np.bool_]] = _compiled()(
        np.ascontiguousarray(code, dtype=np.int8),
        np.ascontiguousarray(level, dtype=np.int64),
        np.ascontiguousarray(qty, dtype=np.int64),
        np.ascontiguousarray(target, dtype=np.int64),
        int(n_levels),
    )
    return result
