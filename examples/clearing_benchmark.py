"""How fast is the call auction? Time it against one ``np.argsort`` of the same orders.

Clears one uniform-price call auction (:func:`carbonsim.clearing.call_auction`) on ``n``
random orders, half bids and half asks, with prices scattered around 50 yuan/t on a
0.01 tick and whole-tonne quantities, and compares the time with a single
``np.argsort`` of the ``n`` prices: sorting is the classic way to build the supply and
demand curves, so the ratio says how far the kernel is from that floor. Best of
``--repeat`` runs; timings vary with the machine. The full benchmarks, with reference
implementations, live in ``benchmarks/``.

Usage::

    python examples/clearing_benchmark.py [--tiny] [--repeat K] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from carbonsim.clearing import call_auction

SIZES = (100_000, 300_000, 1_000_000)
TINY_SIZES = (10_000, 30_000)


def best_time(fn: Callable[[], Any], repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls of ``fn``, seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    """Time the kernel on each size and print a table; return the exit code."""
    parser = argparse.ArgumentParser(description="Time call_auction against np.argsort.")
    parser.add_argument("--tiny", action="store_true", help="small sizes (10k, 30k orders)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random orders")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    print(
        f"{'orders':>10} {'call_auction ms':>16} {'argsort ms':>11} {'ratio':>6} "
        f"{'price':>7} {'volume t':>12}"
    )
    for n in TINY_SIZES if args.tiny else SIZES:
        half = n // 2
        bid_price = np.round(rng.normal(50.0, 2.0, half), 2)
        ask_price = np.round(rng.normal(50.0, 2.0, n - half), 2)
        bid_qty = rng.integers(1, 1_000, half).astype(np.float64)
        ask_qty = rng.integers(1, 1_000, n - half).astype(np.float64)
        prices = np.concatenate([bid_price, ask_price])
        result = call_auction(bid_price, bid_qty, ask_price, ask_qty, reference_price=50.0)
        t_auction = best_time(
            lambda bp=bid_price, bq=bid_qty, ap=ask_price, aq=ask_qty: call_auction(
                bp, bq, ap, aq, reference_price=50.0
            ),
            args.repeat,
        )
        t_sort = best_time(lambda p=prices: np.argsort(p), args.repeat)
        print(
            f"{n:>10,} {1e3 * t_auction:>16.2f} {1e3 * t_sort:>11.2f} "
            f"{t_auction / t_sort:>6.1f} {result.price:>7.2f} {result.volume:>12,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
