"""Beijing pilot: paid allocation by auction and the 20-150 yuan band with interventions.

Runs ``beijing-pilot`` (``--tiny``: ``beijing-pilot-tiny``) and prints, per year, the
closing price range, the volume traded, the allowances sold at government auctions and the
government's band interventions (positive: allowances auctioned because the price stayed
above the band; negative: allowances bought back because it stayed below). ``--band LOW HIGH``
moves the band to see the interventions react.

Usage::

    python examples/beijing_band.py [--tiny] [--seed N] [--band LOW HIGH]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import carbonsim as cs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the Beijing scenario and print the yearly table; return the exit code."""
    parser = argparse.ArgumentParser(description="Beijing pilot: auctions and price band.")
    parser.add_argument("--tiny", action="store_true", help="use beijing-pilot-tiny (fast)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument(
        "--band", nargs=2, type=float, metavar=("LOW", "HIGH"), help="override the band"
    )
    args = parser.parse_args(argv)

    scenario = cs.load_scenario("beijing-pilot-tiny" if args.tiny else "beijing-pilot")
    if args.band:
        low, high = args.band
        scenario = cs.with_overrides(
            scenario, {"policy.band_trigger.low": low, "policy.band_trigger.high": high}
        )
    trig = scenario.policy.band_trigger
    assert trig is not None
    result = cs.simulate(scenario, seed=args.seed)
    market = result.market.xs(
        result.market.index.get_level_values("replicate")[0], level="replicate"
    )
    yearly = market.groupby(market.index.year).agg(
        price_min=("price", "min"),
        price_max=("price", "max"),
        volume_t=("volume", "sum"),
        auctioned_t=("auction_volume", "sum"),
        intervention_t=("intervention_volume", "sum"),
    )
    yearly.index.name = "year"
    print(
        f"scenario {scenario.name}: band {trig.low:g}-{trig.high:g} {scenario.currency}/t, "
        f"trigger after {trig.min_days} sessions, seed {args.seed}"
    )
    print(yearly.to_string(float_format=lambda x: f"{x:,.2f}"))
    auctions = market[market["auction_volume"] > 0]
    sold = auctions["auction_volume"].sum()
    print(f"auction sessions: {len(auctions)}, allowances sold: {sold:,.0f} t")
    return 0


if __name__ == "__main__":
    sys.exit(main())
