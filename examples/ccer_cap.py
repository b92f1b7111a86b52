"""CCER cap: prices and offset use with no offsets allowed vs the 5% usage limit.

Sweeps ``periods.*.offset_limit_share`` over 0 and 0.05 (the share of a unit's obligation it
may cover with CCER credits, docs/rules.md#offset-limit) with seeded replicates, using
:func:`carbonsim.sweep` on local worker processes (``--scheduler ADDRESS`` runs it on a Dask
cluster instead), and prints the mean and the 5-95% range of each metric per cap.

Usage::

    python examples/ccer_cap.py [--tiny] [--replicates R] [--workers N] [--scheduler ADDR]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

import carbonsim as cs

PARAM = "periods.*.offset_limit_share"
METRICS = ("average_price", "final_price", "offsets_used", "compliance_rate", "penalties")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep and print the comparison; return the exit code."""
    parser = argparse.ArgumentParser(description="Compare CCER usage caps of 0% and 5%.")
    parser.add_argument("--tiny", action="store_true", help="use china-national-tiny (fast)")
    parser.add_argument("--replicates", type=int, default=None, help="default 2 tiny, 8 full")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="local processes")
    parser.add_argument("--scheduler", default=None, help="address of a Dask scheduler")
    args = parser.parse_args(argv)

    name = "china-national-tiny" if args.tiny else "china-national"
    replicates = args.replicates or (2 if args.tiny else 8)
    with contextlib.ExitStack() as stack:
        executor = None
        if args.scheduler:
            from dask.distributed import Client

            executor = stack.enter_context(Client(args.scheduler)).get_executor()
        result = cs.sweep(
            name,
            {PARAM: [0.0, 0.05]},
            replicates=replicates,
            seed=args.seed,
            executor=executor,
            workers=args.workers,
        )
    table = result.table(percentiles=(5, 95))
    print(f"scenario {name}: {PARAM} in [0.0, 0.05], {replicates} replicates, seed {args.seed}")
    print("mean [5%, 95%] over replicates")
    print()
    print(f"{'metric':<16} {'unit':<11} {'cap 0%':>36} {'cap 5%':>36}")
    for metric in METRICS:
        unit = str(table.loc[(0, metric), "unit"])
        cells = []
        for s in result.sets.index:
            rec = table.loc[(s, metric)]
            low, mean, high = (_fmt(rec[c], unit) for c in ("p05", "mean", "p95"))
            cells.append(f"{mean} [{low}, {high}]")
        print(f"{metric:<16} {unit:<11} {cells[0]:>36} {cells[1]:>36}")
    return 0


def _fmt(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value:.3f}"
    if unit.endswith("/t"):
        return f"{value:,.2f}"
    return f"{value:,.0f}"


if __name__ == "__main__":
    sys.exit(main())
