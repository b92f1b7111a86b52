"""Price <-> integer-tick conversion and price-band helpers for the clearing kernels.

Every clearing kernel converts prices to integer ticks once, with ``np.rint(price / tick)``
(round half to even), works on integers, and converts the clearing tick back with
:func:`ticks_to_price`. ``floor(price / tick)`` is never used: ``4.35 / 0.01`` is
``434.99999999999994`` in binary floating point and would land one tick low.

Band limits are snapped *inward* to the tick grid (the lower limit up, the upper limit
down, with a relative tolerance of ``1e-9`` for binary drift such as
``50 * 1.1 = 55.00000000000001``), so a band never admits a price outside the limits.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from carbonsim._validation import as_float_array, check_in_range, describe

__all__ = [
    "MAX_ABS_TICK",
    "band_from_reference",
    "price_to_ticks",
    "ticks_to_price",
]

logger = logging.getLogger(__name__)

MAX_ABS_TICK: Final[int] = 2**52
"""Largest admissible ``|price / tick|``: ticks and tick arithmetic stay exact in float64."""

_SNAP_TOL: Final[float] = 1e-9


def check_tick(tick: float) -> float:
    """Validate the tick size (price step, currency per tonne): finite and ``> 0``."""
    value = check_in_range("tick", tick)
    if value <= 0.0:
        raise ValueError(f"tick must be > 0 (currency per tonne), got {value!r}")
    return value


def _decimal_scale(tick: float) -> tuple[float, float]:
    """Return ``(k, 10**d)`` with ``tick == k / 10**d`` for the smallest ``d <= 15``.

    ``(tick, 1.0)`` when ``tick`` has no short decimal form (e.g. ``1/3``).
    """
    for d in range(16):
        scaled = tick * 10.0**d
        k = round(scaled)
        if k >= 1 and abs(scaled - k) <= _SNAP_TOL * scaled:
            return float(k), 10.0**d
    return tick, 1.0


def ticks_to_price(ticks: npt.ArrayLike, tick: float = 0.01) -> npt.NDArray[np.float64]:
    """Convert integer ticks to prices without binary drift.

    When ``tick`` has a short decimal form ``k / 10**d`` the price is computed as
    ``(ticks * k) / 10**d``: the product is an exact integer and the single division is
    correctly rounded, so ``5001`` ticks of ``0.01`` give exactly the float ``50.01``
    (``5001 * 0.01`` would give ``50.010000000000005``). Otherwise ``ticks * tick``.

    Parameters
    ----------
    ticks : array_like of int, shape (...)
        Prices in ticks.
    tick : float, default 0.01
        Price step, currency per tonne, ``> 0``.

    Returns
    -------
    ndarray of float64, shape (...)
        Prices, currency per tonne.

    Examples
    --------
    >>> ticks_to_price([5001, 4500], 0.01).tolist()
    [50.01, 45.0]
    """
    tick = check_tick(tick)
    k, scale = _decimal_scale(tick)
    arr = np.asarray(ticks, dtype=np.float64)
    return (arr * k) / scale


def price_to_ticks(
    price: npt.ArrayLike, tick: float = 0.01, *, name: str = "price"
) -> npt.NDArray[np.int64]:
    """Convert prices to integer ticks with ``np.rint(price / tick)``.

    Parameters
    ----------
    price : array_like of float, shape (n,)
        Finite prices, currency per tonne. Prices off the grid snap to the nearest tick
        (half to even).
    tick : float, default 0.01
        Price step, currency per tonne, ``> 0``.
    name : str, default "price"
        Argument name used in error messages.

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    TypeError
        If ``price`` is not real-valued (strings, objects and booleans are refused).
    ValueError
        If a price is NaN or infinite, or ``|price / tick|`` exceeds ``MAX_ABS_TICK``.

    Examples
    --------
    >>> price_to_ticks([4.35, 0.29, 50.0]).tolist()  # floor(4.35 / 0.01) would give 434
    [435, 29, 5000]
    """
    tick = check_tick(tick)
    arr = as_float_array(name, price)
    return rint_ticks(name, arr, tick)


def rint_ticks(name: str, price: npt.NDArray[np.float64], tick: float) -> npt.NDArray[np.int64]:
    """``np.rint(price / tick)`` as int64, with the magnitude guard (validated input)."""
    return rint_ticks_range(name, price, tick)[0]


def rint_ticks_range(
    name: str, price: npt.NDArray[np.float64], tick: float
) -> tuple[npt.NDArray[np.int64], tuple[int, int] | None]:
    """``np.rint(price / tick)`` as int64 and its ``(min, max)`` (``None`` when empty).

    The float intermediate is released before returning, so a large call holds one int
    array per side; the range comes from the magnitude guard's pass and saves another.
    """
    out = np.divide(price, tick)
    np.rint(out, out=out)
    if not out.size:
        return out.astype(np.int64), None
    lo, hi = float(out.min()), float(out.max())
    if max(-lo, hi) > MAX_ABS_TICK:
        raise ValueError(
            f"{name} is too large for tick {tick!r}: |{name} / tick| must be <= "
            f"2**52, got a price of {max(-lo, hi) * tick!r}"
        )
    return out.astype(np.int64), (int(lo), int(hi))


def snap_up(value: npt.ArrayLike, tick: float) -> npt.NDArray[np.int64]:
    """Smallest tick whose price is ``>= value`` (tolerating binary drift), element-wise."""
    x = np.asarray(value, dtype=np.float64) / tick
    return np.ceil(x - _SNAP_TOL * np.maximum(1.0, np.abs(x))).astype(np.int64)


def snap_down(value: npt.ArrayLike, tick: float) -> npt.NDArray[np.int64]:
    """Largest tick whose price is ``<= value`` (tolerating binary drift), element-wise."""
    x = np.asarray(value, dtype=np.float64) / tick
    return np.floor(x + _SNAP_TOL * np.maximum(1.0, np.abs(x))).astype(np.int64)


def band_ticks(
    price_band: object, tick: float, n_markets: int = 1
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Validate ``price_band = (lo, hi)`` and snap it inward to ticks.

    ``lo`` and ``hi`` are scalars or arrays of shape ``(n_markets,)``. Returns int64 arrays
    ``(lo_t, hi_t)`` of shape ``(n_markets,)``.
    """
    lo, hi = _band_pair(price_band)
    bounds = []
    for label, value in (("price_band[0]", lo), ("price_band[1]", hi)):
        arr = as_float_array(label, value, ndim=None)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n_markets):
            raise ValueError(
                f"{label} must be a scalar or have shape ({n_markets},), got shape {arr.shape}"
            )
        arr = np.broadcast_to(arr, (n_markets,))
        if arr.size and float(np.max(np.abs(arr))) / tick > MAX_ABS_TICK:
            raise ValueError(f"{label} is too large for tick {tick!r}, got {describe(value)}")
        bounds.append(arr)
    lo_p, hi_p = bounds
    bad = lo_p > hi_p
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"price_band must satisfy lo <= hi, got lo={lo_p[i]!r} > hi={hi_p[i]!r}"
            + (f" for market {i}" if n_markets > 1 else "")
        )
    lo_t, hi_t = snap_up(lo_p, tick), snap_down(hi_p, tick)
    empty = lo_t > hi_t
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise ValueError(
            f"price_band=({lo_p[i]!r}, {hi_p[i]!r}) contains no price on the tick grid "
            f"(tick {tick!r})" + (f" for market {i}" if n_markets > 1 else "")
        )
    return lo_t, hi_t


def _band_pair(price_band: object) -> tuple[Any, Any]:
    if isinstance(price_band, (str, bytes)) or not hasattr(price_band, "__len__"):
        raise TypeError(f"price_band must be a pair (lo, hi) or None, got {describe(price_band)}")
    items = list(price_band)  # type: ignore[call-overload]
    if len(items) != 2:
        raise ValueError(
            f"price_band must have exactly two entries (lo, hi), got {describe(price_band)}"
        )
    return items[0], items[1]


def band_from_reference(
    reference_price: float, fraction: float, *, tick: float = 0.01
) -> tuple[float, float]:
    """Price band ``reference * (1 -/+ fraction)`` snapped inward to the tick grid.

    Serves the exchange price limits (docs/rules.md#price-bands: ``+/-10 %`` of the previous
    close for listed agreements, ``+/-30 %`` for block agreements). Pass the result as
    ``price_band``.

    Parameters
    ----------
    reference_price : float
        Reference (e.g. previous closing) price, currency per tonne, ``> 0``.
    fraction : float
        Half-width of the band as a fraction of the reference, in ``[0, 1]``.
    tick : float, default 0.01
        Price step, currency per tonne, ``> 0``.

    Returns
    -------
    (lo, hi) : tuple of float
        Lowest and highest admissible prices, on the tick grid, ``lo <= hi``.

    Raises
    ------
    ValueError
        If the reference is not positive, the fraction is outside ``[0, 1]``, or the band
        holds no tick.

    Examples
    --------
    >>> band_from_reference(50.0, 0.10)
    (45.0, 55.0)
    >>> band_from_reference(61.37, 0.10)
    (55.24, 67.5)
    """
    tick = check_tick(tick)
    ref = check_in_range("reference_price", reference_price)
    if ref <= 0.0:
        raise ValueError(f"reference_price must be > 0, got {ref!r}")
    frac = check_in_range("fraction", fraction, 0.0, 1.0)
    lo_t = int(snap_up(ref * (1.0 - frac), tick))
    hi_t = int(snap_down(ref * (1.0 + frac), tick))
    if lo_t > hi_t:
        raise ValueError(
            f"band {ref!r} * (1 -/+ {frac!r}) contains no price on the tick grid (tick {tick!r})"
        )
    prices = ticks_to_price([lo_t, hi_t], tick)
    return float(prices[0]), float(prices[1])
