"""Straightforward reference implementations of the clearing mechanisms.

These are written for clarity, not speed, and serve the tests and the benchmarks:

* :func:`brute_force_call_auction` evaluates every tick between the lowest and the highest
  order price with plain Python loops (``O(ticks * orders)``) and applies the price rule
  of :mod:`carbonsim.clearing.call_auction` literally: maximum volume, strict price
  priority, minimum ``|imbalance|``, nearest to the reference, lower median.
* :func:`brute_force_sealed_bid` walks the bids from the highest price down.
* :func:`welfare_lp` solves the welfare-maximising allocation of a divisible book as a
  linear programme with ``scipy.optimize.linprog(method="highs")``: first maximise the
  surplus ``sum(bid_price * x) - sum(ask_price * y)`` subject to ``sum(x) == sum(y)`` and
  ``0 <= x, y <= qty``; then, keeping the surplus optimal, maximise the volume (zero-surplus
  trades between a bid and an ask at the same price make the surplus-optimal volume
  non-unique). That maximal efficient volume equals the maximum volume executable at a
  uniform price (the competitive equilibrium quantity).

With whole-number quantities the brute force uses Python integers and is exact.
scipy is imported only when :func:`welfare_lp` is called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "ReferenceAuctionResult",
    "ReferenceSealedBidResult",
    "WelfareResult",
    "brute_force_call_auction",
    "brute_force_sealed_bid",
    "welfare_lp",
]

Number = int | float


@dataclass(frozen=True)
class ReferenceAuctionResult:
    """Brute-force call-auction outcome (lists aligned with the inputs)."""

    price_tick: int | None
    volume: Number
    imbalance: Number | None
    bid_fill: list[Number]
    ask_fill: list[Number]
    bid_rejected: list[bool]
    ask_rejected: list[bool]


@dataclass(frozen=True)
class ReferenceSealedBidResult:
    """Brute-force sealed-bid outcome."""

    price_tick: int | None
    volume: Number
    fills: list[Number]
    rejected: list[bool]


@dataclass(frozen=True)
class WelfareResult:
    """Welfare-maximising allocation of a divisible book.

    ``surplus`` is in currency (tick prices times quantity times ``tick``); ``volume`` is
    the largest volume among the surplus-maximising allocations.
    """

    volume: float
    surplus: float
    bid_fill: npt.NDArray[np.float64]
    ask_fill: npt.NDArray[np.float64]


def _to_numbers(values: npt.ArrayLike) -> list[Number]:
    raw = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
    if all(v == math.floor(v) for v in raw):
        return [int(v) for v in raw]
    return raw


def _ticks(prices: npt.ArrayLike, tick: float) -> list[int]:
    # Python's round() on a float rounds half to even, like np.rint.
    return [round(float(p) / tick) for p in np.asarray(prices, dtype=np.float64).ravel()]


def _snap_band(price_band: tuple[float, float], tick: float) -> tuple[int, int]:
    lo, hi = (float(v) / tick for v in price_band)
    return (
        math.ceil(lo - 1e-9 * max(1.0, abs(lo))),
        math.floor(hi + 1e-9 * max(1.0, abs(hi))),
    )


def _ration(qty: list[Number], amount: Number, allocation: str) -> list[Number]:
    """Hand out ``amount`` among orders with quantities ``qty`` (in input order)."""
    if allocation == "price_time":
        out: list[Number] = []
        left = amount
        for q in qty:
            take = min(q, max(left, 0))
            out.append(take)
            left -= q
        return out
    if allocation != "pro_rata":
        raise ValueError(f"unknown allocation {allocation!r}")
    total = sum(qty)
    if total == 0:
        return [0 for _ in qty]
    # Whole-unit rationing whenever the marginal orders and the amount are whole numbers.
    if amount == math.floor(amount) and all(q == math.floor(q) for q in qty) and amount <= total:
        amount, qty = int(amount), [int(q) for q in qty]
        total = sum(qty)
        base = [amount * q // total for q in qty]
        rem = [amount * q % total for q in qty]
        left = amount - sum(base)
        for i in sorted(range(len(qty)), key=lambda i: (-rem[i], i))[: int(left)]:
            base[i] += 1
        return list(base)
    share = min(amount / total, 1.0)
    return [q * share for q in qty]


def brute_force_call_auction(
    bid_price: Sequence[float] | npt.ArrayLike,
    bid_qty: Sequence[float] | npt.ArrayLike,
    ask_price: Sequence[float] | npt.ArrayLike,
    ask_qty: Sequence[float] | npt.ArrayLike,
    *,
    tick: float = 0.01,
    reference_price: float | None = None,
    allocation: str = "pro_rata",
    price_band: tuple[float, float] | None = None,
    band_mode: str = "reject",
) -> ReferenceAuctionResult:
    """Clear a call auction by trying every tick between the lowest and highest order.

    Same arguments and rule as :func:`carbonsim.clearing.call_auction` (inputs are not
    validated). Returns ticks and plain Python numbers.
    """
    bt, at = _ticks(bid_price, tick), _ticks(ask_price, tick)
    bq, aq = _to_numbers(bid_qty), _to_numbers(ask_qty)
    b_rej = [False] * len(bt)
    a_rej = [False] * len(at)
    ref_t = None if reference_price is None else round(float(reference_price) / tick)
    lo_t, hi_t = (None, None) if price_band is None else _snap_band(price_band, tick)
    if lo_t is not None and hi_t is not None:
        for ticks, qty, rej in ((bt, bq, b_rej), (at, aq, a_rej)):
            for i, t in enumerate(ticks):
                if lo_t <= t <= hi_t:
                    continue
                if band_mode == "clip":
                    ticks[i] = min(max(t, lo_t), hi_t)
                else:
                    rej[i] = True
                    qty[i] = 0
        if ref_t is not None:
            ref_t = min(max(ref_t, lo_t), hi_t)

    def no_trade() -> ReferenceAuctionResult:
        imbalance = None
        if ref_t is not None:
            d = sum(q for t, q in zip(bt, bq, strict=True) if t >= ref_t)
            s = sum(q for t, q in zip(at, aq, strict=True) if t <= ref_t)
            imbalance = d - s
        return ReferenceAuctionResult(
            ref_t, 0, imbalance, [0] * len(bt), [0] * len(at), b_rej, a_rej
        )

    if not bt or not at:
        return no_trade()
    rows = []
    for p in range(min(bt + at), max(bt + at) + 1):
        d = sum(q for t, q in zip(bt, bq, strict=True) if t >= p)
        d_above = sum(q for t, q in zip(bt, bq, strict=True) if t > p)
        s = sum(q for t, q in zip(at, aq, strict=True) if t <= p)
        s_below = sum(q for t, q in zip(at, aq, strict=True) if t < p)
        rows.append((p, min(d, s), d, s, d_above, s_below))
    best = max(r[1] for r in rows)
    if best <= 0:
        return no_trade()
    cands = [r for r in rows if r[1] == best and r[4] <= best and r[5] <= best]
    if not cands:
        raise AssertionError("no maximum-volume price honours strict price priority")
    least = min(abs(r[2] - r[3]) for r in cands)
    cands = [r for r in cands if abs(r[2] - r[3]) == least]
    if ref_t is not None:
        near = min(abs(r[0] - ref_t) for r in cands)
        cands = [r for r in cands if abs(r[0] - ref_t) == near]
    p, vol, d, s, d_above, s_below = sorted(cands)[(len(cands) - 1) // 2]

    bid_fill: list[Number] = [q if t > p else 0 for t, q in zip(bt, bq, strict=True)]
    ask_fill: list[Number] = [q if t < p else 0 for t, q in zip(at, aq, strict=True)]
    for ticks, qty, fill, amount in (
        (bt, bq, bid_fill, vol - d_above),
        (at, aq, ask_fill, vol - s_below),
    ):
        idx = [i for i, t in enumerate(ticks) if t == p]
        for i, f in zip(idx, _ration([qty[i] for i in idx], amount, allocation), strict=True):
            fill[i] = f
    return ReferenceAuctionResult(p, vol, d - s, bid_fill, ask_fill, b_rej, a_rej)


def brute_force_sealed_bid(
    bid_price: Sequence[float] | npt.ArrayLike,
    bid_qty: Sequence[float] | npt.ArrayLike,
    *,
    supply: float,
    reserve_price: float,
    tick: float = 0.01,
    allocation: str = "pro_rata",
) -> ReferenceSealedBidResult:
    """Uniform-price sealed-bid auction, walking price levels from the top.

    Same rule as :func:`carbonsim.clearing.sealed_bid_auction`.
    """
    bt = _ticks(bid_price, tick)
    bq = _to_numbers(bid_qty)
    x = float(reserve_price) / tick
    reserve_t = math.ceil(x - 1e-9 * max(1.0, abs(x)))
    sup: Number = int(supply) if float(supply) == math.floor(float(supply)) else float(supply)
    rejected = [t < reserve_t for t in bt]
    fills: list[Number] = [0] * len(bt)
    levels = sorted({t for t, q, r in zip(bt, bq, rejected, strict=True) if q > 0 and not r})
    if not levels or sup == 0:
        return ReferenceSealedBidResult(None, 0, fills, rejected)
    sold: Number = 0
    price = levels[0]
    for level in reversed(levels):
        idx = [i for i, t in enumerate(bt) if t == level and not rejected[i]]
        at_level = sum(bq[i] for i in idx)
        if sold + at_level >= sup:
            for i, f in zip(
                idx, _ration([bq[i] for i in idx], sup - sold, allocation), strict=True
            ):
                fills[i] = f
            sold = sup
            price = level
            break
        for i in idx:
            fills[i] = bq[i]
        sold += at_level
    return ReferenceSealedBidResult(price, sold, fills, rejected)


def welfare_lp(
    bid_price: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    ask_price: npt.ArrayLike,
    ask_qty: npt.ArrayLike,
    *,
    tick: float = 0.01,
) -> WelfareResult:
    """Welfare-maximising allocation of a divisible book (scipy HiGHS linear programme).

    Prices enter in ticks (integers, shifted so the lowest is 0) so the objective is exact
    in the solver's input.
    Stage 1 maximises the surplus; stage 2 maximises the traded volume subject to the
    surplus staying within ``1e-9`` (relative) of the optimum.
    """
    from scipy.optimize import linprog

    b = np.asarray(_ticks(bid_price, tick), dtype=np.float64)
    a = np.asarray(_ticks(ask_price, tick), dtype=np.float64)
    bq = np.asarray(bid_qty, dtype=np.float64)
    aq = np.asarray(ask_qty, dtype=np.float64)
    nb, na = b.size, a.size
    if nb == 0 or na == 0:
        return WelfareResult(0.0, 0.0, np.zeros(nb), np.zeros(na))
    # Shifting all prices by one constant leaves the surplus unchanged (sum x == sum y) and
    # keeps the coefficients small, which HiGHS's tolerances need.
    shift = min(b.min(), a.min())
    cost = np.concatenate((-(b - shift), a - shift))  # minimise -(surplus in ticks)
    a_eq = np.concatenate((np.ones(nb), -np.ones(na)))[None, :]
    bounds = list(zip(np.zeros(nb + na), np.concatenate((bq, aq)), strict=True))
    first = linprog(cost, A_eq=a_eq, b_eq=[0.0], bounds=bounds, method="highs")
    if first.status != 0:
        raise RuntimeError(f"linprog (surplus) failed: {first.message}")
    best = -float(first.fun)
    slack = 1e-9 * max(1.0, abs(best))
    second = linprog(
        np.concatenate((-np.ones(nb), np.zeros(na))),
        A_ub=cost[None, :],
        b_ub=[-best + slack],
        A_eq=a_eq,
        b_eq=[0.0],
        bounds=bounds,
        method="highs",
    )
    if second.status != 0:
        raise RuntimeError(f"linprog (volume) failed: {second.message}")
    x = np.asarray(second.x, dtype=np.float64)
    return WelfareResult(float(x[:nb].sum()), best * tick, x[:nb], x[nb:])
