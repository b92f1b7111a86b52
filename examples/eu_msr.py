"""EU ETS: a declining cap, auctions and the market stability reserve.

Runs ``eu-ets`` (``--tiny``: ``eu-ets-tiny``) with and without the market stability reserve
and prints, per year, the allowances sold at auction, the reserve's holdings and the closing
price of both runs. The reserve withholds part of the surplus in circulation from the
auctions; in a long market, where auction sales are limited by demand, that changes sales
and prices little.

Usage::

    python examples/eu_msr.py [--tiny] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

import carbonsim as cs


def yearly(result: cs.Result) -> pd.DataFrame:
    """Auctioned volume, reserve holdings and closing price per year (first replicate)."""
    m = result.market.xs(result.market.index.get_level_values("replicate")[0], level="replicate")
    return m.groupby(m.index.year).agg(
        auctioned_t=("auction_volume", "sum"),
        msr_t=("msr_holdings", "last"),
        price=("price", "last"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the EU scenario with and without the reserve; return the exit code."""
    parser = argparse.ArgumentParser(description="EU ETS with and without the MSR.")
    parser.add_argument("--tiny", action="store_true", help="use eu-ets-tiny (fast)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    args = parser.parse_args(argv)

    scenario = cs.load_scenario("eu-ets-tiny" if args.tiny else "eu-ets")
    without = cs.with_overrides(scenario, {"policy.msr": None})
    with_msr = yearly(cs.simulate(scenario, seed=args.seed))
    no_msr = yearly(cs.simulate(without, seed=args.seed))
    table = with_msr.join(no_msr.add_suffix("_no_msr"))[
        ["auctioned_t", "auctioned_t_no_msr", "msr_t", "price", "price_no_msr"]
    ]
    table.index.name = "year"
    print(f"scenario {scenario.name}: seed {args.seed}, currency {scenario.currency}")
    print(table.to_string(float_format=lambda x: f"{x:,.2f}"))
    fewer = table["auctioned_t_no_msr"].sum() - table["auctioned_t"].sum()
    # auction sales are limited by demand: in a long market withholding supply changes little
    print(f"fewer allowances sold at auction with the reserve: {fewer:,.0f} t")
    return 0


if __name__ == "__main__":
    sys.exit(main())
