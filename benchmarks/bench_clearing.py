"""Benchmark the call-auction clearing kernels against the floor and reference implementations.

Run from the repository root::

    python benchmarks/bench_clearing.py           # full run, under a minute on 2 cores
    python benchmarks/bench_clearing.py --quick   # under 20 s

Books: N orders, half bids around 50.10 and half asks around 49.90 yuan/t (normal, sd 1
yuan, rounded to the 0.01 tick), whole-number quantities 1..99 t. Every timing is the
median of several repeats of ``time.perf_counter``.

Columns:

* ``call_auction``: :func:`carbonsim.clearing.call_auction` with fills (the full result).
* ``argsort``: one ``np.argsort`` of the N float64 prices (the sort-based floor) and
  ``sum``: one pass over them (``prices.sum()``, the memory floor).
* ``peak memory``: peak bytes allocated during one ``call_auction`` call (tracemalloc),
  per order; the inputs themselves take 16 bytes per order (price and quantity).
* ``brute force``: :func:`carbonsim.clearing.reference.brute_force_call_auction`, pure
  Python, every tick times every order; run only up to 10^5 orders (1 repeat).
* ``LP (HiGHS)``: :func:`carbonsim.clearing.reference.welfare_lp`, two ``linprog`` solves
  (surplus, then volume); run only up to 10^4 orders.
* ``PyMarket``: ``pymarket.mechanisms.huang_auction`` (Huang et al. 2002 trade-reduction
  double auction, a different mechanism, shown for scale) when ``pymarket`` imports; up
  to 10^4 orders.

The batch section clears 2,000 markets x 200 orders with
:func:`carbonsim.clearing.call_auction_batch` and with a Python loop of single
:func:`~carbonsim.clearing.call_auction` calls (inputs split per market beforehand).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from carbonsim._random import as_generator
from carbonsim.bench import median_time as _median_time
from carbonsim.clearing import call_auction, call_auction_batch
from carbonsim.clearing.reference import brute_force_call_auction, welfare_lp

Book = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def make_book(n_orders: int, seed: int = 0) -> Book:
    """Half bids, half asks around 50 yuan/t on the 0.01 grid, whole-number quantities."""
    rng = as_generator(seed)
    nb = n_orders // 2
    na = n_orders - nb
    bid_price = np.round(50.10 + rng.normal(0.0, 1.0, nb), 2)
    ask_price = np.round(49.90 + rng.normal(0.0, 1.0, na), 2)
    bid_qty = rng.integers(1, 100, nb).astype(np.float64)
    ask_qty = rng.integers(1, 100, na).astype(np.float64)
    return bid_price, bid_qty, ask_price, ask_qty


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn`` in seconds over ``repeats`` runs (after one warm-up run
    when ``repeats > 1``)."""
    return _median_time(fn, repeats, warmup=repeats > 1)[0]


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak memory allocated while ``fn`` runs (numpy reports to tracemalloc), bytes."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _pymarket_runner(book: Book) -> Callable[[], Any] | None:
    try:
        import pymarket as pm  # type: ignore[import-not-found]
        from pymarket.mechanisms.huang_auction import (  # type: ignore[import-not-found]
            huang_auction,
        )
    except Exception:  # not installed, or an incompatible dependency
        return None
    bm = pm.BidManager()
    bp, bq, ap, aq = book
    for i, (p, q) in enumerate(zip(bp, bq, strict=True)):
        bm.add_bid(float(q), float(p), i, True)
    for i, (p, q) in enumerate(zip(ap, aq, strict=True)):
        bm.add_bid(float(q), float(p), len(bp) + i, False)
    df = bm.get_df()
    return lambda: huang_auction(df)


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "not run"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


def bench_single(sizes: list[int], quick: bool) -> list[str]:
    lines = [
        "| N orders | call_auction (ms) | argsort (ms) | sum (ms) | call_auction / argsort "
        "| peak memory (bytes/order) | brute force (ms) | LP HiGHS (ms) | PyMarket Huang (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pymarket_seen = False
    for n in sizes:
        book = make_book(n)
        prices = np.concatenate((book[0], book[2]))
        repeats = 3 if quick else (5 if n >= 10**6 else 9)
        t_ca = median_time(partial(call_auction, *book), repeats)
        t_sort = median_time(partial(np.argsort, prices), repeats)
        t_sum = median_time(prices.sum, repeats)
        mem = peak_bytes(partial(call_auction, *book)) / n
        small = n <= (10**3 if quick else 10**4)
        brute = n <= (10**3 if quick else 10**5)
        t_bf = median_time(partial(brute_force_call_auction, *book), 1) if brute else None
        t_lp = median_time(partial(welfare_lp, *book), 1 if n > 10**3 else 3) if small else None
        t_pm = None
        if small:
            runner = _pymarket_runner(book)
            if runner is not None:
                pymarket_seen = True
                t_pm = median_time(runner, 1 if n > 10**3 else 3)
        lines.append(
            f"| {n:,} | {_ms(t_ca)} | {_ms(t_sort)} | {_ms(t_sum)} | {t_ca / t_sort:.2f} "
            f"| {mem:.0f} | {_ms(t_bf)} | {_ms(t_lp)} | {_ms(t_pm)} |"
        )
        print(lines[-1], flush=True)
    if not pymarket_seen:
        lines.append("")
        lines.append(
            "PyMarket: not importable here "
            "(`pip install pymarket` plus networkx, pulp, matplotlib)."
        )
    return lines


def make_batch(n_markets: int, per_market: int, seed: int = 1) -> dict[str, Any]:
    rng = as_generator(seed)
    n = n_markets * per_market
    market = np.repeat(np.arange(n_markets), per_market)
    side = np.tile(np.arange(per_market) % 2 == 0, n_markets)
    centre = np.repeat(np.round(rng.uniform(30.0, 80.0, n_markets), 2), per_market)
    price = np.round(centre + np.where(side, 0.1, -0.1) + rng.normal(0.0, 1.0, n), 2)
    qty = rng.integers(1, 100, n).astype(np.float64)
    return {"market": market, "side": side, "price": price, "qty": qty, "n_markets": n_markets}


def bench_batch(quick: bool) -> list[str]:
    n_markets, per_market = 2000, 200
    b = make_batch(n_markets, per_market)
    books = []
    for m in range(n_markets):
        sl = slice(m * per_market, (m + 1) * per_market)
        s, p, q = b["side"][sl], b["price"][sl], b["qty"][sl]
        books.append((p[s], q[s], p[~s], q[~s]))

    def loop() -> None:
        for book in books:
            call_auction(*book)

    def batch() -> None:
        call_auction_batch(b["market"], b["side"], b["price"], b["qty"], n_markets=n_markets)

    t_loop = median_time(loop, 1 if quick else 3)
    t_batch = median_time(batch, 3 if quick else 9)
    lines = [
        "| markets x orders | call_auction_batch (ms) | loop of call_auction (ms) | speed-up |",
        "|---|---:|---:|---:|",
        f"| {n_markets:,} x {per_market} | {_ms(t_batch)} | {_ms(t_loop)} "
        f"| {t_loop / t_batch:.1f}x |",
    ]
    print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = parser.parse_args(argv)
    sizes = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    print(
        f"# carbonsim call-auction clearing; numpy {np.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        + (" (quick)" if args.quick else ""),
        flush=True,
    )
    t0 = time.perf_counter()
    print("(rows print as they finish; the tables follow)", flush=True)
    single = bench_single(sizes, args.quick)
    batch = bench_batch(args.quick)
    print(f"\nTotal {time.perf_counter() - t0:.0f} s\n", flush=True)
    print("\n".join(["### Single market", "", *single, "", "### Many markets", "", *batch]))


if __name__ == "__main__":
    main()
