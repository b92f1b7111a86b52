"""A custom trading strategy as a plug-in: define it, check it, register it, run it.

:class:`ValueTrader` trades on the gap between the market's expected price and the last
close: when the expected price is more than ``threshold`` above the close, active units bid
for a slice of their annual emissions at the midpoint of the two prices; when it is more
than ``threshold`` below, they offer (never more than they hold). Everything is vectorized
over replicates and units, and all randomness comes from the ``rng`` the engine passes in,
so replicate ``k`` is the same in any batch.

The script runs :func:`carbonsim.agents.check_strategy` on it, registers it as ``"value"``
in :data:`carbonsim.agents.STRATEGIES`, adds it to the scenario's strategies with the
override ``behaviour.strategies`` and compares the run with the baseline.

Usage::

    python examples/custom_strategy.py [--tiny] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

import carbonsim as cs
from carbonsim.agents import STRATEGIES, MarketView, Orders, Strategy, check_strategy

if TYPE_CHECKING:
    from carbonsim._random import BatchRandom


@dataclass(frozen=True)
class ValueTrader:
    """Buy below and sell above the expected price.

    Parameters
    ----------
    activity : float
        Probability that a unit acts in a session, in [0, 1].
    threshold : float
        Relative gap between expected price and last close that triggers trading.
    size_share : float
        Order size as a share of the unit's annual emissions.
    """

    activity: float = 0.01
    threshold: float = 0.05
    size_share: float = 0.002

    name: ClassVar[str] = "value"

    def orders(self, view: MarketView, rng: BatchRandom) -> Orders:
        """Orders of one session for all replicates (R) and units (N)."""
        shape = view.holdings.shape  # (R, N)
        active = rng.random(shape) < self.activity
        gap = (view.expected_price / view.last_close - 1.0)[:, None]  # (R, 1)
        buy = active & (gap > self.threshold)
        sell = active & (gap < -self.threshold)
        qty = np.floor(np.broadcast_to(view.unit_size * self.size_share, shape))
        qty = np.where(sell, np.minimum(qty, np.floor(view.holdings)), qty)
        price = np.broadcast_to(view.last_close[:, None] * (1.0 + gap / 2.0), shape)
        return Orders.from_grid((buy | sell) & (qty >= 1.0), buy, price, qty)


def main(argv: Sequence[str] | None = None) -> int:
    """Check, register and run the plug-in; return the exit code."""
    parser = argparse.ArgumentParser(description="Run a scenario with a custom strategy.")
    parser.add_argument("--tiny", action="store_true", help="use china-national-tiny (fast)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    args = parser.parse_args(argv)

    strategy = ValueTrader()
    assert isinstance(strategy, Strategy)  # the protocol, checked at runtime
    check_strategy(strategy)
    print("check_strategy(ValueTrader()): passed")
    STRATEGIES.register("value", replace=True)(ValueTrader)
    print(f"registered strategies: {', '.join(STRATEGIES.names())}")

    base = cs.load_scenario("china-national-tiny" if args.tiny else "china-national")
    strategies = [s.model_dump() for s in base.behaviour.strategies]
    strategies.append({"name": "value", "params": {"activity": 0.01, "threshold": 0.05}})
    variant = cs.with_overrides(base, {"behaviour.strategies": strategies})
    print(f"strategies of the variant: {[s.name for s in variant.behaviour.strategies]}")
    print()
    columns = ["average_price", "final_price", "cumulative_volume", "compliance_rate"]
    print(f"{'run':<10}" + "".join(f"{c:>20}" for c in columns))
    for label, scenario in (("baseline", base), ("+ value", variant)):
        row = cs.simulate(scenario, seed=args.seed).summary_by_replicate().iloc[0]
        print(f"{label:<10}" + "".join(f"{row[c]:>20,.2f}" for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
