"""Trading strategies: functions from market state to vectorized orders.

A strategy sees a :class:`~carbonsim.agents.base.MarketView` (arrays over replicates and
units) and returns :class:`~carbonsim.agents.base.Orders` for all units at once. Strategies
are plug-ins registered by name in :data:`STRATEGIES`; any plug-in can be checked with
:func:`check_strategy`.
"""

from carbonsim.agents.base import (
    STRATEGIES,
    MarketView,
    Orders,
    Segment,
    Strategy,
    check_strategy,
    make_strategy,
)
from carbonsim.agents.compliance import ComplianceTrader
from carbonsim.agents.noise import NoiseTrader

__all__ = [
    "STRATEGIES",
    "ComplianceTrader",
    "MarketView",
    "NoiseTrader",
    "Orders",
    "Segment",
    "Strategy",
    "check_strategy",
    "make_strategy",
]
