"""Validation and preparation of order-book event streams.

Turns the user's arrays (sides and order types as codes or names, prices, quantities,
cancel targets, owners) into one validated stream of integer ticks and internal event
codes (:class:`EventStream`), applies the price band, and guards the book's total
quantity. Shared by :class:`~carbonsim.clearing.order_book.OrderBook` and
:func:`~carbonsim.clearing.order_book.match_stream` (both engines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from carbonsim._validation import (
    as_float_array,
    as_int_array,
    check_same_length,
    describe,
)
from carbonsim.clearing.book_records import (
    BUY,
    EV_CANCEL,
    EV_LIMIT_BUY,
    EV_LIMIT_SELL,
    EV_MARKET_BUY,
    EV_MARKET_SELL,
    EV_SKIP,
    MARKET_BUY_TICK,
    MARKET_SELL_TICK,
    MAX_BOOK_QTY,
    SELL,
    Int8Array,
    IntArray,
    OrderType,
)
from carbonsim.clearing.ticks import MAX_ABS_TICK, band_ticks

__all__ = [
    "SIDE_NAMES",
    "TYPE_NAMES",
    "BandRule",
    "EventStream",
    "band_rule",
    "check_book_total",
    "check_depth",
    "prepare_stream",
    "scalar_code",
    "scalar_whole",
    "stream_band",
]


def check_book_total(total: float, submitted: int) -> None:
    """Refuse orders that would bring the book's total quantity to :data:`MAX_BOOK_QTY`.

    ``total`` is the new quantity: an ``int``, or the float64 sum of whole non-negative
    quantities (it reaches ``2**53`` exactly when their true sum does); ``submitted`` is
    the book's total so far.
    """
    grand = submitted + total
    if not grand < MAX_BOOK_QTY:
        before = f" with the {submitted} t submitted before" if submitted else ""
        shown = str(grand) if isinstance(grand, int) else f"{grand:.0f}"
        raise ValueError(
            f"qty: the orders would total {shown} t in this book{before}, "
            f"at or above 2**53 = {MAX_BOOK_QTY} t, past which resting levels, fills and "
            "snapshots overflow or lose whole tonnes; count in larger units (e.g. "
            "kilotonnes) or spread the orders over several books"
        )


BandRule = Callable[[IntArray, npt.NDArray[np.bool_], int, int], tuple[IntArray, Any]]
"""``rule(ticks, is_limit, lo_tick, hi_tick) -> (ticks, rejected)``: apply a price band."""


def _band_reject(
    ticks: IntArray, is_limit: npt.NDArray[np.bool_], lo: int, hi: int
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Reject limit orders whose tick lies outside ``[lo, hi]``; prices unchanged."""
    return ticks, is_limit & ((ticks < lo) | (ticks > hi))


def _band_clip(
    ticks: IntArray, is_limit: npt.NDArray[np.bool_], lo: int, hi: int
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Move limit prices outside ``[lo, hi]`` to the nearest edge; nothing is rejected."""
    return np.where(is_limit, np.clip(ticks, lo, hi), ticks), np.zeros_like(is_limit)


# --------------------------------------------------------------------------------------------
# Input parsing
# --------------------------------------------------------------------------------------------


def _as_str_array(arr: np.ndarray) -> np.ndarray | None:
    """Strings as a numpy unicode array, or ``None`` when ``arr`` does not hold strings."""
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "O" and arr.size and all(isinstance(v, str) for v in arr.ravel()):
        return arr.astype(str)
    return None


def _parse_codes(
    name: str, value: Any, names: dict[str, int], n: int | None
) -> npt.NDArray[np.int8]:
    """Map names (case-insensitive) or integer codes to int8 codes; ``n`` broadcasts a scalar."""
    arr = np.asarray(value)
    if n is not None and arr.ndim == 0:
        arr = np.full(n, arr.item(), dtype=arr.dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    valid_codes = sorted(set(names.values()))
    listing = _listing(names)
    strings = _as_str_array(arr)
    if strings is not None:
        lowered = np.char.lower(strings)
        out = np.full(arr.shape, -128, dtype=np.int8)
        for key, code in names.items():
            out[lowered == key] = code
        bad = out == -128
    elif arr.dtype.kind in "iu" or arr.size == 0:
        ints = arr.astype(np.int64)
        bad = ~np.isin(ints, valid_codes)
        out = np.where(bad, 0, ints).astype(np.int8)
    else:
        raise TypeError(
            f"{name} must hold the names {listing}, got dtype {arr.dtype} (value {describe(value)})"
        )
    if bad.any():
        idx = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{idx}] = {arr[idx].item()!r} is not valid; use {listing}")
    return out


def _listing(names: dict[str, int]) -> str:
    return ", ".join(repr(k) for k in names) + " or the codes " + str(sorted(set(names.values())))


def scalar_code(name: str, value: object, names: dict[str, int]) -> int:
    """Scalar version of :func:`_parse_codes`."""
    code: int | None
    if isinstance(value, str):
        code = names.get(value.lower())
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        code = int(value) if int(value) in names.values() else None
    else:
        raise TypeError(f"{name} must be one of {_listing(names)}, got {describe(value)}")
    if code is None:
        raise ValueError(f"{name} = {value!r} is not valid; use {_listing(names)}")
    return code


def scalar_whole(name: str, value: object, *, lo: int, hi: int | None = 2**63 - 1) -> int:
    """A whole number in ``[lo, hi]`` (integral floats accepted; ``hi=None``: no upper
    bound), as ``int``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a whole number, got {describe(value)}")
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {name} = {value!r}")
        if value != round(value):
            raise TypeError(f"{name} must be a whole number, got {value!r}")
    v = int(value)
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {name} = {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {name} = {v}")
    return v


def check_depth(depth: int | None) -> int | None:
    """``None`` or a whole number of levels ``>= 0``."""
    return None if depth is None else int(as_int_array("depth", depth, ndim=0, lo=0))


SIDE_NAMES: Final = {"buy": BUY, "sell": SELL}
TYPE_NAMES: Final = {
    "limit": int(OrderType.LIMIT),
    "market": int(OrderType.MARKET),
    "cancel": int(OrderType.CANCEL),
}


_BAND_RULES: Final[dict[str, BandRule]] = {"reject": _band_reject, "clip": _band_clip}


def band_rule(band_mode: object) -> BandRule:
    """Validate ``band_mode`` (``"reject"`` or ``"clip"``) and return its rule."""
    if not isinstance(band_mode, str) or band_mode not in _BAND_RULES:
        valid = ", ".join(repr(m) for m in _BAND_RULES)
        raise ValueError(f"band_mode must be one of {valid}, got {describe(band_mode)}")
    return _BAND_RULES[band_mode]


def stream_band(price_band: object, tick: float) -> tuple[int, int] | None:
    """``price_band`` snapped inward to ticks (shared rule of the clearing kernels), or None."""
    if price_band is None:
        return None
    lo_t, hi_t = band_ticks(price_band, tick)
    return int(lo_t[0]), int(hi_t[0])


@dataclass(frozen=True)
class EventStream:
    """A validated stream, ready for a matching loop (all arrays shape ``(n,)``)."""

    code: Int8Array  # internal event code (EV_LIMIT_BUY ... EV_SKIP)
    tick: IntArray  # limit tick, market sentinel, 0 for cancels
    qty: IntArray  # 0 for cancels
    target: IntArray  # global id cancelled, -1 for other rows
    side: Int8Array
    order_type: Int8Array
    owner: IntArray


def prepare_stream(
    side: Any,
    price: Any,
    qty: Any,
    order_type: Any,
    cancel_of: Any,
    owner: Any,
    *,
    tick: float,
    band: tuple[int, int] | None,
    band_rule: BandRule,
    base: int,
    submitted: int = 0,
) -> EventStream:
    """Validate a stream of events and convert it to integer codes and ticks; ``submitted``
    is the quantity the book holds from earlier calls (see :data:`MAX_BOOK_QTY`)."""
    side_a = _parse_codes("side", side, SIDE_NAMES, None)
    price_a = as_float_array("price", price, finite=False)
    qty_raw = np.asarray(qty)
    if qty_raw.dtype.kind == "f" and qty_raw.ndim == 1:
        if not np.all(np.isfinite(qty_raw)):
            idx = int(np.flatnonzero(~np.isfinite(qty_raw))[0])
            raise ValueError(f"qty must be finite whole tonnes, got qty[{idx}] = {qty_raw[idx]!r}")
        if np.any(qty_raw >= MAX_BOOK_QTY):  # before an int64 cast could wrap
            idx = int(np.flatnonzero(qty_raw >= MAX_BOOK_QTY)[0])
            check_book_total(float(qty_raw[idx]), 0)
    qty_a = as_int_array("qty", qty_raw, nonnegative=True)
    n = check_same_length(side=side_a, price=price_a, qty=qty_a)
    if order_type is None:
        type_a = np.zeros(n, dtype=np.int8)
    else:
        type_a = _parse_codes("order_type", order_type, TYPE_NAMES, n)
        check_same_length(side=side_a, order_type=type_a)
    is_limit = type_a == OrderType.LIMIT
    is_cancel = type_a == OrderType.CANCEL
    is_new = ~is_cancel

    # Prices: only limit rows need one (market and cancel rows may hold NaN).
    price_lim = as_float_array("price", np.where(is_limit, price_a, 1.0), positive=True)
    ratio = price_lim / tick
    if np.any(ratio > MAX_ABS_TICK):
        idx = int(np.flatnonzero(ratio > MAX_ABS_TICK)[0])
        raise ValueError(f"price[{idx}] = {price_a[idx].item()!r} is too large for tick = {tick!r}")
    ticks = np.rint(ratio).astype(np.int64)
    if np.any(ticks < 1):
        idx = int(np.flatnonzero(ticks < 1)[0])
        raise ValueError(
            f"price[{idx}] = {price_a[idx].item()!r} rounds to 0 ticks of {tick!r}; "
            "limit prices must be at least one tick"
        )
    qty_a = np.where(is_new, qty_a, 0)
    if np.any(is_new & (qty_a < 1)):
        idx = int(np.flatnonzero(is_new & (qty_a < 1))[0])
        raise ValueError(f"qty must be >= 1 for limit and market orders, got qty[{idx}] = 0")
    check_book_total(float(qty_a.sum(dtype=np.float64)), submitted)

    if cancel_of is None:
        if is_cancel.any():
            raise ValueError("cancel_of is required when order_type contains 'cancel'")
        target = np.full(n, -1, dtype=np.int64)
    else:
        target = as_int_array("cancel_of", cancel_of, lo=-1)
        check_same_length(side=side_a, cancel_of=target)
        stray = ~is_cancel & (target >= 0)
        if stray.any():
            idx = int(np.flatnonzero(stray)[0])
            raise ValueError(
                f"cancel_of[{idx}] = {int(target[idx])} but order_type[{idx}] is not 'cancel'; "
                "use -1 on rows that are not cancels"
            )
        ids = base + np.arange(n, dtype=np.int64)
        bad = is_cancel & ((target < 0) | (target >= ids))
        if bad.any():
            idx = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"cancel_of[{idx}] = {int(target[idx])} must be the id of an earlier event "
                f"(0 <= cancel_of < {int(ids[idx])})"
            )
        target = np.where(is_cancel, target, -1)

    if owner is None:
        owner_a = np.full(n, -1, dtype=np.int64)
    else:
        owner_a = as_int_array("owner", owner, lo=-1)
        check_same_length(side=side_a, owner=owner_a)

    rejected = np.zeros(n, dtype=bool)
    if band is not None:
        ticks, rejected = band_rule(ticks, is_limit, band[0], band[1])
        rejected = np.asarray(rejected, dtype=bool)

    is_buy = side_a == BUY
    is_market = type_a == OrderType.MARKET
    code = np.select(
        [rejected, is_cancel, is_limit & is_buy, is_limit, is_market & is_buy],
        [EV_SKIP, EV_CANCEL, EV_LIMIT_BUY, EV_LIMIT_SELL, EV_MARKET_BUY],
        EV_MARKET_SELL,
    ).astype(np.int8)
    market_tick = np.where(is_buy, MARKET_BUY_TICK, MARKET_SELL_TICK)
    tick_a = np.select([is_limit, is_market], [ticks, market_tick], 0).astype(np.int64)
    return EventStream(code, tick_a, qty_a.astype(np.int64), target, side_a, type_a, owner_a)
