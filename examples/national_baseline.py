"""Baseline run of China's national ETS: print the headline summary of one scenario.

Runs the built-in ``china-national`` scenario (``--tiny``: ``china-national-tiny``, 60 units,
one compliance cycle) and prints the summary metrics. For the full scenario it also prints
the cumulative volume and turnover up to 15 July 2024, the date of the published figures
(seeds/002: above 460 Mt and nearly 27 bn yuan).

Usage::

    python examples/national_baseline.py [--tiny] [--seed N] [--replicates R] [--plots DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

import carbonsim as cs

#: Date of the published cumulative figures (seeds/002).
PUBLISHED_DATE = "2024-07-15"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the baseline and print its summary; return the exit code."""
    parser = argparse.ArgumentParser(description="Baseline run of China's national ETS.")
    parser.add_argument("--tiny", action="store_true", help="use china-national-tiny (fast)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument("--replicates", type=int, default=1, help="replicates (default 1)")
    parser.add_argument("--plots", metavar="DIR", help="also write the figures into DIR")
    args = parser.parse_args(argv)

    scenario = cs.load_scenario("china-national-tiny" if args.tiny else "china-national")
    result = cs.simulate(scenario, seed=args.seed, replicates=args.replicates)
    print(
        f"scenario {scenario.name}: {result.provenance['units']} units, "
        f"{scenario.time.start} to {scenario.time.end}, seed {args.seed}, "
        f"{result.n_replicates} replicate(s)"
    )
    print()
    table = result.summary()
    if result.n_replicates == 1:  # percentiles of one value say nothing
        table = table[["unit", "mean"]].rename(columns={"mean": "value"})
    print(table.to_string(float_format=lambda x: f"{x:,.3f}"))

    last_date = result.market.index.get_level_values("date").max()
    if last_date >= pd.Timestamp(PUBLISHED_DATE):
        until = result.summary(until=PUBLISHED_DATE)
        volume = until.loc["cumulative_volume", "mean"] / 1e6
        turnover = until.loc["cumulative_turnover", "mean"] / 1e9
        print()
        print(
            f"by {PUBLISHED_DATE}: cumulative volume {volume:,.1f} Mt (published: above 460 Mt), "
            f"turnover {turnover:,.2f} bn {scenario.currency} (published: nearly 27 bn)"
        )
    if args.plots:
        # the seed documents' figures, as circles on the cumulative plot
        targets = cs.calibration.targets(scenario.name)
        for path in result.plot.save_all(args.plots, scenario=scenario, targets=targets):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
