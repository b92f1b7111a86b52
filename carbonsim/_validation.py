"""Input validation shared by every public entry point.

Every check raises :class:`ValueError` or :class:`TypeError` whose message names the
argument (or field path), shows the offending value and says what would be valid. The
helpers return normalised numpy arrays so callers validate and convert in one step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "as_bool_array",
    "as_float_array",
    "as_int_array",
    "check_in_range",
    "check_same_length",
    "check_share",
    "describe",
    "read_only",
]


def describe(value: Any, limit: int = 60) -> str:
    """Short printable form of ``value`` for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    idx = np.flatnonzero(bad.ravel())[0]
    pos = np.unravel_index(idx, arr.shape) if arr.ndim > 1 else (int(idx),)
    where = ", ".join(str(int(i)) for i in pos)
    return f"[{where}] = {arr.ravel()[idx].item()!r}"


def as_float_array(
    name: str,
    value: npt.ArrayLike,
    *,
    ndim: int | None = 1,
    finite: bool = True,
    nonnegative: bool = False,
    positive: bool = False,
) -> npt.NDArray[np.float64]:
    """Convert ``value`` to a float64 array and check it.

    Parameters
    ----------
    name : str
        Argument or field name used in error messages.
    value : array_like
        Real numbers. Booleans, strings and objects are rejected with ``TypeError``.
    ndim : int or None
        Required number of dimensions; ``None`` accepts any.
    finite, nonnegative, positive : bool
        Element-wise requirements.

    Returns
    -------
    ndarray of float64
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be an array of real numbers, got dtype {arr.dtype} "
            f"(value {describe(value)})"
        )
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if finite:
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"{name} must be finite (no NaN or inf), got {name}{_first_bad(arr, bad)}"
            )
    if positive:
        bad = ~(arr > 0)
        if bad.any():
            raise ValueError(f"{name} must be > 0, got {name}{_first_bad(arr, bad)}")
    elif nonnegative:
        bad = ~(arr >= 0)
        if bad.any():
            raise ValueError(f"{name} must be >= 0, got {name}{_first_bad(arr, bad)}")
    return arr


def as_int_array(
    name: str,
    value: npt.ArrayLike,
    *,
    ndim: int | None = 1,
    nonnegative: bool = False,
    lo: int | None = None,
    hi: int | None = None,
) -> npt.NDArray[np.int64]:
    """Convert ``value`` to an int64 array; floats are accepted only when integral.

    ``lo`` and ``hi`` bound the values inclusively (``hi`` exclusive is written as ``hi-1``).
    """
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise TypeError(f"{name} must hold whole numbers, got {describe(value)}")
    elif arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an array of integers, got dtype {arr.dtype} (value {describe(value)})"
        )
    out = arr.astype(np.int64, copy=False)
    if ndim is not None and out.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {out.shape}")
    if nonnegative and lo is None:
        lo = 0
    if lo is not None:
        bad = out < lo
        if bad.any():
            raise ValueError(f"{name} must be >= {lo}, got {name}{_first_bad(out, bad)}")
    if hi is not None:
        bad = out > hi
        if bad.any():
            raise ValueError(f"{name} must be <= {hi}, got {name}{_first_bad(out, bad)}")
    return out


def as_bool_array(
    name: str, value: npt.ArrayLike, *, ndim: int | None = 1
) -> npt.NDArray[np.bool_]:
    """Convert ``value`` to a boolean array; only bool (or 0/1 integer) input is accepted."""
    arr = np.asarray(value)
    if arr.dtype.kind == "b":
        out = arr
    elif arr.dtype.kind in "iu" and np.all((arr == 0) | (arr == 1)):
        out = arr.astype(bool)
    else:
        raise TypeError(f"{name} must be boolean, got dtype {arr.dtype} (value {describe(value)})")
    if ndim is not None and out.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {out.shape}")
    return out


def check_same_length(**arrays: np.ndarray) -> int:
    """Check that all arrays have the same length along axis 0 and return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(f"arrays must have the same length, got {listing}")
    return next(iter(lengths.values()), 0)


def check_in_range(
    name: str, value: float, lo: float | None = None, hi: float | None = None
) -> float:
    """Check a scalar lies in ``[lo, hi]`` (either bound optional) and is finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        raise ValueError(f"{name} must lie in [{lo_s}, {hi_s}], got {v!r}")
    return v


def check_share(name: str, value: float) -> float:
    """Check that a share (fraction) lies in [0, 1]."""
    return check_in_range(name, value, 0.0, 1.0)


def read_only(arr: np.ndarray) -> np.ndarray:
    """Mark ``arr`` read-only in place and return it (for arrays handed out in results)."""
    arr.setflags(write=False)
    return arr
