"""Compiled order generation of the built-in strategies, behind ``backend="numba"``.

:func:`compliance_orders` and :func:`noise_orders` return exactly the orders of
:meth:`ComplianceTrader.orders <carbonsim.agents.ComplianceTrader.orders>` and
:meth:`NoiseTrader.orders <carbonsim.agents.NoiseTrader.orders>`: the same random numbers
in the same draws, the same formulas element by element. The arithmetic on the acting
units runs in compiled loops; the transcendental functions stay numpy's and scipy's
(``np.exp``, ``ndtri``), called once on all the numbers of a session, because a compiled
``exp`` may differ from numpy's in the last bit. The tests compare every session's orders
with the strategies' own. A strategy subclass that overrides ``orders`` keeps its own
method: the backend maps the exact built-in types only. Importing this module does nothing
heavy; :func:`compile_kernels` imports the optional ``numba`` package and compiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from carbonsim._numba import compile_module, np_maximum, np_minimum
from carbonsim._random import BatchRandom
from carbonsim.agents.base import BLOCK, LISTED, MarketView, Orders
from carbonsim.agents.compliance import ComplianceTrader
from carbonsim.agents.noise import NoiseTrader

__all__ = ["compile_kernels", "compliance_orders", "noise_orders", "order_functions"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def compliance_sizes(
    holdings: FloatArray,
    obligation: FloatArray,
    cover: float,
    cover_sell: float,
    at_deadline: bool,
    min_order: float,
) -> tuple[IntArray, BoolArray, FloatArray]:
    """Which acting units order, whether they buy, and how many tonnes (the sizing of
    :meth:`ComplianceTrader.orders`): ``(kept positions, is_buy, qty)``."""
    n = holdings.shape[0]
    keep = np.empty(n, np.int64)
    is_buy = np.empty(n, np.bool_)
    qty = np.empty(n, np.float64)
    k = 0
    for i in range(n):
        gap = obligation[i] - holdings[i]
        short = gap > 0
        if short:
            want = cover * gap
            least = 1.0 if at_deadline else min_order
        else:
            want = np_minimum(cover_sell * (-gap), holdings[i])
            least = min_order
        q = np.floor(np_maximum(want, 0.0))
        if q >= np_maximum(least, 1.0):
            keep[k] = i
            is_buy[k] = short
            qty[k] = q
            k += 1
    return keep[:k].copy(), is_buy[:k].copy(), qty[:k].copy()


def compliance_prices(
    rep: IntArray,
    is_buy: BoolArray,
    qty: FloatArray,
    growth: FloatArray,
    block_u: FloatArray,
    last_close: FloatArray,
    expected_price: FloatArray,
    price_weight: float,
    block_threshold: float,
    block_share: float,
) -> tuple[FloatArray, IntArray]:
    """Limit prices (``reference * growth``) and segments of the compliance orders."""
    n = rep.shape[0]
    price = np.empty(n, np.float64)
    segment = np.empty(n, np.int64)
    w_other = 1.0 - price_weight
    for i in range(n):
        r = rep[i]
        reference = price_weight * last_close[r] + w_other * expected_price[r]
        price[i] = reference * growth[i]
        to_block = qty[i] >= block_threshold and block_u[i] < block_share
        segment[i] = BLOCK if to_block else LISTED
    return price, segment


def compliance_exponents(
    is_buy: BoolArray, z: FloatArray, buy_markup: float, sell_markup: float, sigma: float
) -> FloatArray:
    """``log_markup + sigma * z`` per order (the exponent of the price scatter)."""
    out = np.empty(z.shape[0], np.float64)
    for i in range(z.shape[0]):
        out[i] = (buy_markup if is_buy[i] else sell_markup) + sigma * z[i]
    return out


def noise_orders_kernel(
    rep: IntArray,
    unit: IntArray,
    buy_u: FloatArray,
    growth: FloatArray,
    holdings: FloatArray,
    unit_size: FloatArray,
    last_close: FloatArray,
    size_share: float,
    least: float,
) -> tuple[IntArray, IntArray, BoolArray, FloatArray, FloatArray]:
    """The noise orders that stay (:meth:`NoiseTrader.orders`): ``growth`` (2, K) holds
    the lognormal factors of size and price."""
    n = rep.shape[0]
    keep_r = np.empty(n, np.int64)
    keep_u = np.empty(n, np.int64)
    is_buy = np.empty(n, np.bool_)
    price = np.empty(n, np.float64)
    qty = np.empty(n, np.float64)
    k = 0
    for i in range(n):
        buy = buy_u[i] < 0.5
        size = unit_size[unit[i]] * size_share
        q = np.floor(size * growth[0, i])
        if not buy:
            q = np_minimum(q, np.floor(holdings[i]))
        if q >= least:
            keep_r[k] = rep[i]
            keep_u[k] = unit[i]
            is_buy[k] = buy
            price[k] = last_close[rep[i]] * growth[1, i]
            qty[k] = q
            k += 1
    return keep_r[:k].copy(), keep_u[:k].copy(), is_buy[:k].copy(), price[:k].copy(), qty[:k].copy()


_compiled: dict[str, Any] = {}


def compile_kernels() -> None:
    """Import numba and compile the kernels (once per process, cached on disk)."""
    compile_module(
        globals(),
        ("np_maximum", "np_minimum"),
        ("compliance_sizes", "compliance_prices", "compliance_exponents", "noise_orders_kernel"),
        _compiled,
    )


def compliance_orders(s: ComplianceTrader, view: MarketView, rng: BatchRandom) -> Orders:
    """:meth:`ComplianceTrader.orders`, compiled: the same orders bit for bit."""
    shape = view.shape
    tau = view.sessions_to_deadline
    effect = s.deadline_effect(tau)
    r, u = rng.bernoulli_cells(shape, s.hazard(tau))
    holdings = view.holdings_at(r, u)
    obligation = view.obligation_at(r, u)
    cover = s.cover_share + (1.0 - s.cover_share) * effect
    keep, is_buy, qty = _compiled["compliance_sizes"](
        holdings,
        obligation,
        cover,
        cover * (1.0 - s.bank_share),
        tau == 0,
        float(s.min_order),
    )
    r, u = r[keep], u[keep]
    draws = rng.random_draws(shape, (r, u), 2)  # the normal scatter, then the block choice
    exponent = _compiled["compliance_exponents"](
        is_buy,
        ndtri(draws[0]),
        s.spread + s.urgency_premium * effect,
        -s.spread,
        s.price_sigma,
    )
    price, segment = _compiled["compliance_prices"](
        r,
        is_buy,
        qty,
        np.exp(exponent),
        draws[1],
        view.last_close,
        view.expected_price,
        s.price_weight,
        float(view.block_threshold),
        s.block_share,
    )
    return Orders(replicate=r, unit=u, is_buy=is_buy, price=price, qty=qty, segment=segment)


def noise_orders(s: NoiseTrader, view: MarketView, rng: BatchRandom) -> Orders:
    """:meth:`NoiseTrader.orders`, compiled: the same orders bit for bit."""
    shape = view.shape
    r, u = rng.bernoulli_cells(shape, s.activity)
    # three draws at the acting units: buy or sell, size scatter, price scatter
    draws = rng.random_draws(shape, (r, u), 3)
    z = ndtri(draws[1:])
    z *= np.array([[s.size_sigma], [s.price_sigma]])
    np.exp(z, out=z)
    rep, unit, is_buy, price, qty = _compiled["noise_orders_kernel"](
        r,
        u,
        draws[0],
        z,
        view.holdings_at(r, u),
        view.unit_size,
        view.last_close,
        s.size_share,
        max(s.min_order, 1.0),
    )
    segment = np.full(rep.shape[0], LISTED, dtype=np.int64)
    return Orders(replicate=rep, unit=unit, is_buy=is_buy, price=price, qty=qty, segment=segment)


def order_functions() -> dict[type, Any]:
    """The compiled order functions by exact strategy type."""
    return {ComplianceTrader: compliance_orders, NoiseTrader: noise_orders}
