"""Throughput of the continuous double auction book (events per second).

Usage::

    python benchmarks/bench_order_book.py          # 1e4, 1e5 and 1e6 events
    python benchmarks/bench_order_book.py --quick  # 1e4 and 1e5 events

The stream is a realistic one: limit orders around a mid price that follows a random walk
(buys below and sells above the mid with a spread of a few ticks, so about half of the orders
trade), 2 % market orders and 3 % cancels of recent orders. Every engine gets the same
stream; the time is the median over repeats of the whole call, validation and result arrays
included. Engines:

- ``reference``: a straightforward pure-Python book, each side one list kept sorted by
  price-time priority with ``bisect.insort``, cancels by linear search (up to 1e5 events;
  on 1e6 it would take minutes).
- ``OrderBook.submit``: the interactive API, one call per event (only on 1e4 events).
- ``match_stream python``: the plain-Python engine (the default).
- ``match_stream numba``: the compiled engine, when numba is installed (compilation, about a
  second, happens in a warm-up call that is not timed).

The script checks that every engine produces the same trades as ``match_stream`` before it
reports a time for it.
"""

from __future__ import annotations

import argparse
import bisect
import importlib.util
import os
import platform
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from carbonsim.bench import median_time
from carbonsim.clearing.compiled import random_events
from carbonsim.clearing.order_book import BUY, BookResult, OrderBook, OrderType, match_stream

Stream = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Trades = list[tuple[int, int, int, int]]


def make_stream(n: int, seed: int = 0) -> Stream:
    """``side, price, qty, order_type, cancel_of`` for ``n`` events
    (:func:`carbonsim.clearing.compiled.random_events`, cancels within 500 events)."""
    ev = random_events(np.random.default_rng(seed), n, cancel_window=500)
    return ev["side"], ev["price"], ev["qty"], ev["order_type"], ev["cancel_of"]


# --------------------------------------------------------------------------------------------
# Engines: each returns the trades as (buy, sell, tick, qty) tuples
# --------------------------------------------------------------------------------------------


def run_reference(s: Stream, tick: float = 0.01) -> Trades:
    """Sorted-list book: obviously correct, no cleverness."""
    side, price, qty, otype, cancel_of = (a.tolist() for a in s)
    bids: list[tuple[int, int]] = []  # (-tick, id), best first
    asks: list[tuple[int, int]] = []  # (tick, id), best first
    remaining: dict[int, int] = {}
    trades: Trades = []
    for i in range(len(side)):
        if otype[i] == OrderType.CANCEL:
            target = cancel_of[i]
            if target in remaining:
                book = bids if side[target] == BUY else asks
                for k, entry in enumerate(book):
                    if entry[1] == target:
                        del book[k]
                        break
                del remaining[target]
            continue
        limit = round(price[i] / tick) if otype[i] == OrderType.LIMIT else None
        q = qty[i]
        is_buy = side[i] == BUY
        opposite = asks if is_buy else bids
        while q and opposite:
            key, o = opposite[0]
            level = key if is_buy else -key
            if limit is not None and (level > limit if is_buy else level < limit):
                break
            fill = min(q, remaining[o])
            trades.append((i, o, level, fill) if is_buy else (o, i, level, fill))
            q -= fill
            remaining[o] -= fill
            if remaining[o] == 0:
                del remaining[o]
                opposite.pop(0)
        if q and limit is not None:
            remaining[i] = q
            bisect.insort(bids if is_buy else asks, (-limit if is_buy else limit, i))
    return trades


def as_tuples(res: BookResult) -> Trades:
    t = res.trades
    cols = (t.buy_order, t.sell_order, t.price_tick, t.qty)
    return list(zip(*(c.tolist() for c in cols), strict=True))


def run_match_stream(backend: str) -> Callable[[Stream], Trades]:
    def run(s: Stream) -> Trades:
        side, price, qty, otype, cancel_of = s
        res = match_stream(side, price, qty, order_type=otype, cancel_of=cancel_of, backend=backend)
        return as_tuples(res)

    return run


def run_interactive(s: Stream) -> Trades:
    side, price, qty, otype, cancel_of = (a.tolist() for a in s)
    book = OrderBook()
    trades: Trades = []
    for i in range(len(side)):
        if otype[i] == OrderType.CANCEL:
            res = book.cancel(cancel_of[i], depth=0)
        else:
            res = book.submit(side[i], price[i], qty[i], order_type=otype[i], depth=0)
        trades += as_tuples(res)
    return trades


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1e6-event stream")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    have_numba = importlib.util.find_spec("numba") is not None

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"numpy {np.__version__}; numba {'installed' if have_numba else 'not installed'}")
    if have_numba:
        t0 = time.perf_counter()
        run_match_stream("numba")(make_stream(100))
        print(f"numba compilation (first call): {time.perf_counter() - t0:.2f} s")
    print()
    print("| events | engine | trades | median time (s) | events/s | vs reference |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        s = make_stream(n)
        repeats = 3 if n >= 1_000_000 else 5
        engines: list[tuple[str, Callable[[Stream], Trades], int]] = []
        if n <= 100_000:
            engines.append(("reference (sorted lists)", run_reference, 3))
        if n <= 10_000:
            engines.append(("OrderBook.submit, one call per event", run_interactive, 3))
        engines.append(("match_stream, python", run_match_stream("python"), repeats))
        if have_numba:
            engines.append(("match_stream, numba", run_match_stream("numba"), repeats))
        expected: Trades | None = None
        ref_rate: float | None = None
        for name, fn, reps in engines:
            seconds, trades = median_time(partial(fn, s), reps)
            if expected is None:
                expected = trades
            elif trades != expected:
                raise SystemExit(f"{name} disagrees with the first engine on {n} events")
            rate = n / seconds
            if name.startswith("reference"):
                ref_rate = rate
            speedup = f"{rate / ref_rate:.2g}x" if ref_rate else "-"
            print(f"| {n:,} | {name} | {len(trades):,} | {seconds:.4f} | {rate:,.0f} | {speedup} |")


if __name__ == "__main__":
    main()
