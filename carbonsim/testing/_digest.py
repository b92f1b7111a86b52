"""A canonical byte serialisation of result tables and its SHA-256 digest.

The serialisation does not depend on the pandas version, the platform's byte order or the
resolution pandas picked for a datetime column, so equal tables give equal digests
everywhere; floats keep every bit (no rounding, no text formatting).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from carbonsim.results import Result

__all__ = ["result_digest", "table_digest"]


def _column_bytes(values: Any) -> tuple[str, bytes]:
    """``(kind, bytes)`` of one column or index level, canonical across versions."""
    import pandas as pd

    dtype = getattr(values, "dtype", None)
    if dtype is not None and pd.api.types.is_datetime64_any_dtype(dtype):
        stamps = pd.DatetimeIndex(values)
        if stamps.tz is not None:
            stamps = stamps.tz_convert("UTC").tz_localize(None)
        return "datetime64[ns]", np.ascontiguousarray(stamps.as_unit("ns").asi8, "<i8").tobytes()
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "f":
        f = np.ascontiguousarray(arr, dtype="<f8")
        f = np.where(np.isnan(f), np.nan, f)  # one NaN bit pattern
        return "float64", f.astype("<f8").tobytes()
    if kind in "iu":
        return "int64", np.ascontiguousarray(arr, dtype="<i8").tobytes()
    if kind == "b":
        return "bool", np.ascontiguousarray(arr, dtype=np.uint8).tobytes()
    # strings, categories and anything else: their text, NaN/None as a marker
    text = "\x1f".join("\x00" if v is None or v != v else str(v) for v in arr.tolist())
    return "text", text.encode("utf-8")


def table_digest(frame: pd.DataFrame) -> str:
    """SHA-256 (hex) of a canonical serialisation of a DataFrame.

    Covered: the index level names and values, the column names in order and every value.
    Floats are serialised as their little-endian IEEE-754 bits (NaN canonicalised), integers
    as little-endian int64, datetimes as int64 nanoseconds (UTC), everything else as text.
    Two frames that :func:`carbonsim.testing.assert_results_equal` finds identical have the
    same digest on any platform and pandas version.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()

    def put(label: str, kind: str, data: bytes) -> None:
        head = f"{label}\x1e{kind}\x1e{len(data)}\x1e".encode()
        h.update(head)
        h.update(data)

    put("shape", "int64", np.asarray(frame.shape, dtype="<i8").tobytes())
    for level in range(frame.index.nlevels):
        name = frame.index.names[level]
        kind, data = _column_bytes(frame.index.get_level_values(level))
        put(f"index:{name}", kind, data)
    for col in frame.columns:
        kind, data = _column_bytes(frame[col])
        put(f"column:{col}", kind, data)
    return h.hexdigest()


def result_digest(result: Result) -> dict[str, str]:
    """SHA-256 digests of a result's tables: ``{"market": ..., "units": ...}``.

    ``"trades"`` is included when the result recorded trades. Provenance is not hashed (it
    names the batch and the carbonsim version, which do not change the numbers). See
    :func:`table_digest` for the serialisation.

    Parameters
    ----------
    result : Result

    Returns
    -------
    dict of str to str
        Table name -> 64 hex digits.

    Examples
    --------
    >>> import carbonsim as cs
    >>> digest = result_digest(cs.simulate("china-national-tiny", seed=0))
    >>> sorted(digest), len(digest["market"])
    (['market', 'units'], 64)
    """
    out = {"market": table_digest(result.market), "units": table_digest(result.units)}
    if result.trades is not None:
        out["trades"] = table_digest(result.trades)
    return out
