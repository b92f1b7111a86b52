"""Noise (liquidity) traders: random small buy and sell orders around the last close.

They stand in for trading motives the model does not represent (hedging, portfolio
rebalancing, mistakes) and give the order book depth between deadline peaks. A unit acts in
a session with probability ``activity``, buys or sells with equal probability, for a
lognormal share of its annual emissions, at a lognormal scatter around the last close. Sells
never exceed holdings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import ndtri

from carbonsim._random import BatchRandom
from carbonsim._validation import check_in_range, check_share
from carbonsim.agents.base import LISTED, STRATEGIES, MarketView, Orders

__all__ = ["NoiseTrader"]


@STRATEGIES.register("noise")
@dataclass(frozen=True)
class NoiseTrader:
    """Liquidity traders.

    Parameters
    ----------
    activity : float
        Probability a unit submits a noise order in a session, in [0, 1].
    size_share : float
        Median order size as a share of the unit's annual emissions, >= 0.
    size_sigma : float
        Lognormal sigma of the order size.
    price_sigma : float
        Lognormal sigma of the limit price around the last close.
    min_order : float
        Smallest order, t.
    """

    activity: float = 0.005
    size_share: float = 0.01
    size_sigma: float = 1.0
    price_sigma: float = 0.02
    min_order: float = 100.0

    name: ClassVar[str] = "noise"

    def __post_init__(self) -> None:
        check_share("NoiseTrader.activity", self.activity)
        for field_name in ("size_share", "size_sigma", "price_sigma", "min_order"):
            check_in_range(f"NoiseTrader.{field_name}", getattr(self, field_name), 0.0)

    def orders(self, view: MarketView, rng: BatchRandom) -> Orders:
        """Random orders for this session."""
        shape = view.shape
        r, u = rng.bernoulli_cells(shape, self.activity)
        # three draws at the acting cells, hashed at once: side, size, price
        draws = rng.random_draws(shape, (r, u), 3)
        is_buy = draws[0] < 0.5
        size = view.unit_size[u] * self.size_share
        qty = np.floor(size * np.exp(self.size_sigma * ndtri(draws[1])))
        qty = np.where(is_buy, qty, np.minimum(qty, np.floor(view.holdings_at(r, u))))
        price = view.last_close[r] * np.exp(self.price_sigma * ndtri(draws[2]))
        keep = qty >= max(self.min_order, 1.0)
        return Orders(
            replicate=r[keep].astype(np.int64),
            unit=u[keep].astype(np.int64),
            is_buy=is_buy[keep],
            price=price[keep],
            qty=qty[keep],
            segment=np.full(int(keep.sum()), LISTED, dtype=np.int64),
        )
