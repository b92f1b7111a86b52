"""Compliance-driven trading: demand follows expected shortfall and sharpens near deadlines.

Covered units learn their allocation and verified emissions late in the cycle, so most of
them trade only when the surrender deadline approaches. :class:`ComplianceTrader` models
this with a per-session hazard of acting that rises as the deadline nears, applied to the
unit's expected gap between obligation and holdings:

.. math::

    h(\\tau) = \\min\\bigl(1,\\; h_0 + h_1 e^{-\\tau / T}\\bigr)

where :math:`\\tau` is the number of sessions to the deadline, :math:`h_0` the ``base_rate``,
:math:`h_1` the ``deadline_rate`` and :math:`T` the ``urgency_horizon`` (sessions). An active
short unit bids for ``cover_share`` of its gap; an active long unit offers ``1 - bank_share``
of its surplus; the share covered rises to 1 as the deadline effect reaches 1, and on the
last session a short unit bids for every missing tonne. Limit prices scatter lognormally
around a reference that blends the last close and the expected price; buyers pay a
premium that grows with urgency. Orders of at least ``block_threshold`` tonnes go to the
block segment with probability ``block_share``.
All of it is vectorized over replicates and units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from carbonsim._random import BatchRandom
from carbonsim._validation import check_in_range, check_share
from carbonsim.agents.base import BLOCK, LISTED, STRATEGIES, MarketView, Orders

__all__ = ["ComplianceTrader"]

FloatArray = npt.NDArray[np.float64]


@STRATEGIES.register("compliance")
@dataclass(frozen=True)
class ComplianceTrader:
    """Units trading toward their expected compliance position.

    Parameters
    ----------
    base_rate : float
        Probability that a unit acts in a session far from the deadline, in [0, 1].
    deadline_rate : float
        Extra probability of acting at the deadline, in [0, 1].
    urgency_horizon : float
        e-folding time of the deadline effect, trading sessions, > 0.
    cover_share : float
        Share of the gap (or surplus) an active unit trades in one session, in (0, 1].
    bank_share : float
        Share of a surplus a long unit keeps (banks) instead of selling, in [0, 1].
    price_weight : float
        Weight of the last close in the reference price (the rest is the expected price).
    spread : float
        Mean log distance of bids above and asks below the reference (0.01 = 1%).
    price_sigma : float
        Standard deviation of the lognormal scatter of limit prices.
    urgency_premium : float
        Extra log premium buyers pay at the deadline (scaled by the deadline effect).
    block_share : float
        Probability that an order large enough for the block segment goes there.
    min_order : float
        Smallest order, t; smaller gaps are not traded.
    """

    base_rate: float = 0.02
    deadline_rate: float = 0.25
    urgency_horizon: float = 40.0
    cover_share: float = 0.5
    bank_share: float = 0.3
    price_weight: float = 0.7
    spread: float = 0.01
    price_sigma: float = 0.03
    urgency_premium: float = 0.03
    block_share: float = 0.6
    min_order: float = 1000.0

    name: ClassVar[str] = "compliance"

    def __post_init__(self) -> None:
        for field_name in (
            "base_rate",
            "deadline_rate",
            "bank_share",
            "price_weight",
            "block_share",
        ):
            check_share(f"ComplianceTrader.{field_name}", getattr(self, field_name))
        check_in_range("ComplianceTrader.cover_share", self.cover_share, 1e-9, 1.0)
        check_in_range("ComplianceTrader.urgency_horizon", self.urgency_horizon, 1e-9)
        for field_name in ("spread", "price_sigma", "urgency_premium", "min_order"):
            check_in_range(f"ComplianceTrader.{field_name}", getattr(self, field_name), 0.0)

    def deadline_effect(self, sessions_to_deadline: int) -> float:
        """The factor :math:`e^{-\\tau/T}` in [0, 1] for ``sessions_to_deadline`` = τ."""
        return float(self.deadline_effects(np.array([sessions_to_deadline]))[0])

    def deadline_effects(self, sessions_to_deadline: npt.NDArray[np.int64]) -> FloatArray:
        """:meth:`deadline_effect` of each of the sessions counts (K,), the same numbers."""
        return np.exp(-np.maximum(sessions_to_deadline, 0) / self.urgency_horizon)

    def hazard(self, sessions_to_deadline: int) -> float:
        """Probability that a unit acts in a session, ``sessions_to_deadline`` before it."""
        return float(self.hazards(np.array([sessions_to_deadline]))[0])

    def hazards(self, sessions_to_deadline: npt.NDArray[np.int64]) -> FloatArray:
        """:meth:`hazard` of each of the sessions counts (K,), the same numbers."""
        effect = self.deadline_effects(sessions_to_deadline)
        return np.minimum(1.0, self.base_rate + self.deadline_rate * effect)

    def orders(self, view: MarketView, rng: BatchRandom) -> Orders:
        """Bids of short units and offers of long units for this session."""
        shape = view.shape
        effect = self.deadline_effect(view.sessions_to_deadline)
        # act first, look second: only the units that act this session read their gap
        r, u = rng.bernoulli_cells(shape, self.hazard(view.sessions_to_deadline))
        holdings = view.holdings_at(r, u)
        gap = view.obligation_at(r, u) - holdings
        short = gap > 0
        # the share of the gap covered rises to 1 at the deadline, so gaps close fully
        cover = self.cover_share + (1.0 - self.cover_share) * effect
        want = np.where(short, cover * gap, cover * (1.0 - self.bank_share) * (-gap))
        # at the deadline short units buy every missing tonne, however small
        min_order = np.where(short & (view.sessions_to_deadline == 0), 1.0, self.min_order)
        # sellers never offer more than they hold (whole tonnes)
        want = np.where(short, want, np.minimum(want, holdings))
        qty = np.floor(np.maximum(want, 0.0))
        keep = qty >= np.maximum(min_order, 1.0)
        r, u, is_buy, q = r[keep], u[keep], short[keep], qty[keep]
        # only the ordering cells are drawn (identical to the same cells of a full draw)
        u2 = rng.random_draws(shape, (r, u), 2)  # the same numbers as two masked draws
        z = ndtri(u2[0])
        to_block_u = u2[1]
        reference = (
            self.price_weight * view.last_close + (1.0 - self.price_weight) * view.expected_price
        )[r]
        log_markup = np.where(is_buy, self.spread + self.urgency_premium * effect, -self.spread)
        price = reference * np.exp(log_markup + self.price_sigma * z)
        to_block = (q >= view.block_threshold) & (to_block_u < self.block_share)
        return Orders(
            replicate=r.astype(np.int64),
            unit=u.astype(np.int64),
            is_buy=is_buy,
            price=price,
            qty=q,
            segment=np.where(to_block, BLOCK, LISTED).astype(np.int64),
        )
