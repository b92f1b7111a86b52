"""``carbonsim bench``: a quick, self-contained measurement of the hot paths.

Measures, with medians over repeats, on this machine:

- call-auction clearing of ``N`` random orders (fills included) against the floor of one
  ``np.argsort`` of ``N`` float64 prices;
- clearing many small markets in one batched call against a loop of single calls;
- the continuous order book's throughput (events per second);
- end-to-end simulation of a built-in scenario, one replicate and a batch.

The full benchmark suite, with its references (pure Python, a HiGHS linear program, an
object-per-agent model), scaling curves and memory, lives in ``benchmarks/`` of the source
tree (``python -m benchmarks``); this command needs only the installed package.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

__all__ = ["BenchRow", "median_time", "run_benchmarks"]

T = TypeVar("T")


@dataclass(frozen=True)
class BenchRow:
    """One measurement: what, its median time (s), the reference's and their ratio."""

    name: str
    seconds: float
    reference: str
    reference_seconds: float

    @property
    def ratio(self) -> float:
        """Time of the measurement over the time of its reference."""
        return self.seconds / self.reference_seconds if self.reference_seconds > 0 else np.nan


def median_time(fn: Callable[[], T], repeats: int, *, warmup: bool = False) -> tuple[float, T]:
    """Median wall time of ``repeats`` calls of ``fn`` (s), and the last call's result.

    With ``warmup`` one untimed call runs first (imports, caches, page faults). Shared by
    ``carbonsim bench`` and the scripts in ``benchmarks/``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    return median_time(fn, repeats, warmup=True)[0]


def _book(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    bid_p = np.round(rng.normal(50.0, 2.0, n // 2), 2)
    ask_p = np.round(rng.normal(50.0, 2.0, n - n // 2), 2)
    bid_q = rng.integers(1, 1000, n // 2).astype(np.float64)
    ask_q = rng.integers(1, 1000, n - n // 2).astype(np.float64)
    return bid_p, bid_q, ask_p, ask_q


def run_benchmarks(*, quick: bool = False, seed: int = 0) -> list[BenchRow]:
    """Run the measurements and return one row each (quick: smaller sizes, fewer repeats)."""
    from carbonsim.clearing import call_auction, call_auction_batch, match_stream
    from carbonsim.engine.simulation import simulate
    from carbonsim.scenario import load_scenario

    rng = np.random.default_rng(seed)
    repeats = 3 if quick else 5
    rows: list[BenchRow] = []

    n = 100_000 if quick else 1_000_000
    bid_p, bid_q, ask_p, ask_q = _book(rng, n)
    prices = np.concatenate([bid_p, ask_p])
    t_clear = _median_time(lambda: call_auction(bid_p, bid_q, ask_p, ask_q), repeats)
    t_sort = _median_time(lambda: np.argsort(prices), repeats)
    rows.append(BenchRow(f"call_auction, {n:,} orders", t_clear, "one np.argsort", t_sort))

    markets, per = (500, 200) if quick else (2000, 200)
    market = np.repeat(np.arange(markets), per)
    side = rng.random(markets * per) < 0.5
    price = np.round(rng.normal(50.0, 2.0, markets * per), 2)
    qty = rng.integers(1, 1000, markets * per).astype(np.float64)
    starts = np.arange(markets) * per

    def loop() -> None:
        for s in starts:
            sl = slice(s, s + per)
            b = side[sl]
            call_auction(price[sl][b], qty[sl][b], price[sl][~b], qty[sl][~b])

    t_batch = _median_time(
        lambda: call_auction_batch(market, side, price, qty, n_markets=markets), repeats
    )
    t_loop = _median_time(loop, 1 if quick else 3)
    rows.append(
        BenchRow(f"call_auction_batch, {markets:,} x {per}", t_batch, "loop of singles", t_loop)
    )

    events = 100_000 if quick else 1_000_000
    ob_side = np.where(rng.random(events) < 0.5, 1, -1)
    ob_price = np.round(rng.normal(50.0, 1.0, events), 2)
    ob_qty = rng.integers(1, 1000, events)
    t_book = _median_time(lambda: match_stream(ob_side, ob_price, ob_qty), repeats)
    rows.append(BenchRow(f"match_stream, {events:,} events", t_book, "1 s", 1.0))

    name = "china-national-tiny" if quick else "china-national"
    sc = load_scenario(name)
    t_one = _median_time(lambda: simulate(sc, seed=seed, check_invariants=False), repeats)
    r = 10
    t_many = _median_time(
        lambda: simulate(sc, seed=seed, replicates=r, check_invariants=False), 1 if quick else 3
    )
    rows.append(BenchRow(f"simulate {name}, 1 replicate", t_one, "1 s", 1.0))
    rows.append(BenchRow(f"simulate {name}, {r} replicates", t_many, "1 replicate", t_one))
    return rows


def format_rows(rows: list[BenchRow]) -> str:
    """The rows as an aligned text table."""
    head = ("measurement", "median s", "reference", "reference s", "ratio")
    body = [
        (r.name, f"{r.seconds:.4f}", r.reference, f"{r.reference_seconds:.4f}", f"{r.ratio:.2f}")
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)
