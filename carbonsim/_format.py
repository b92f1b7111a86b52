"""Plain-text formatting for the command line: aligned tables, numbers, markdown and TOML.

Only the standard library is used, so the helpers are cheap to import.

>>> print(format_table(["name", "value"], [["a", "1"], ["bb", "22"]], align="lr"))
name  value
----  -----
a         1
bb       22
>>> format_number(20799090.0, "currency")
'20,799,090'
>>> format_number(53.984, "currency/t")
'53.98'
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "format_number",
    "format_table",
    "markdown_table",
    "to_toml",
    "toml_key",
    "toml_value",
]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_WIDTH = 100  # longer arrays are written one item a line


def format_number(value: float | int | None, unit: str = "") -> str:
    """Format a number for a table, according to its unit.

    Parameters
    ----------
    value : float, int or None
        The number; None and NaN are shown as ``n/a``.
    unit : str
        Its unit: prices (``.../t``) get two decimals, shares (``share``) three, and other
        quantities are rounded to whole numbers from 1,000 up. Large numbers get thousands
        separators.

    Returns
    -------
    str

    Examples
    --------
    >>> format_number(0.716666, "share"), format_number(114.0, "days")
    ('0.717', '114')
    >>> format_number(float("nan"), "t"), format_number(1234.5, "t")
    ('n/a', '1,234')
    """
    if value is None:
        return "n/a"
    x = float(value)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if unit == "share":
        return f"{x:.3f}"
    if unit.endswith("/t"):
        return f"{x:,.2f}"
    if abs(x) >= 1000 or x.is_integer():
        return f"{x:,.0f}"
    if abs(x) < 1:
        return f"{x:.3g}"
    return f"{x:,.2f}"


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None
) -> str:
    """An aligned plain-text table with a header row and a rule under it.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : sequence of sequences of str
        Cells, already formatted; every row has ``len(header)`` cells.
    align : str, optional
        One character per column, ``"l"`` (left) or ``"r"`` (right); all left by default.
        The last column is not padded when it is left-aligned (no trailing blanks).

    Returns
    -------
    str
        The table without a trailing newline.
    """
    ncol = len(header)
    align = align or "l" * ncol
    if len(align) != ncol or set(align) - {"l", "r"}:
        raise ValueError(f"align must be {ncol} characters 'l' or 'r', got {align!r}")
    for row in rows:
        if len(row) != ncol:
            raise ValueError(f"every row needs {ncol} cells, got {len(row)}: {list(row)!r}")
    widths = [max([len(header[j]), *(len(row[j]) for row in rows)]) for j in range(ncol)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if a == "r" else cell.ljust(w)
            for cell, w, a in zip(cells, widths, align, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table; ``|`` and newlines in cells are escaped.

    >>> print(markdown_table(["type"], [["float | None"]]))
    | type |
    | --- |
    | float \\| None |
    """

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(cell(h) for h in header) + " |"]
    out.append("| " + " | ".join("---" for _ in header) + " |")
    out.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)
    return "\n".join(out)


# ---------------------------------------------------------------------------- TOML
def toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, else a quoted string.

    >>> toml_key("n_units"), toml_key("china national")
    ('n_units', '"china national"')
    """
    return name if _BARE_KEY.match(name) else json.dumps(name, ensure_ascii=False)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _inline_ok(value: Any) -> bool:
    """Whether ``value`` can be written on one line (TOML has no null)."""
    if value is None:
        return False
    if isinstance(value, Mapping):
        return all(_inline_ok(v) for v in value.values())
    if isinstance(value, list):
        return all(_inline_ok(v) for v in value)
    return True


def toml_value(value: Any) -> str:
    """``value`` as an inline TOML value (mappings as inline tables; None is not handled).

    >>> toml_value({"floor": 5.0, "years": [2021, 2022], "on": True})
    '{ floor = 5.0, years = [2021, 2022], on = true }'
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (dt.date, dt.time)):  # dt.datetime is a dt.date
        return value.isoformat()
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return (
            "{ "
            + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
            + " }"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _as_table(value: Any, top: bool) -> bool:
    """Whether ``value`` is written as a ``[table]`` or ``[[array of tables]]``."""
    if _is_table_array(value):
        return True
    if isinstance(value, Mapping):
        return (top and bool(value)) or not _inline_ok(value)
    return False


def _table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    tables: list[tuple[str, Any]] = []
    for name, value in data.items():
        if value is None:
            lines.append(f"# {toml_key(name)}: not set")
        elif _as_table(value, top=not path):
            tables.append((name, value))
        elif not _inline_ok(value):
            lines.append(f"# {toml_key(name)}: a list holding None, not representable in TOML")
        else:
            text = f"{toml_key(name)} = {toml_value(value)}"
            if len(text) > _WIDTH and isinstance(value, list):  # one item a line
                text = (
                    f"{toml_key(name)} = [\n"
                    + "".join(f"  {toml_value(v)},\n" for v in value)
                    + "]"
                )
            lines.append(text)
    for name, value in tables:
        sub = [*path, toml_key(name)]
        if isinstance(value, Mapping):
            lines.extend(["", f"[{'.'.join(sub)}]"])
            _table(value, sub, lines)
        else:
            for item in value:
                lines.extend(["", f"[[{'.'.join(sub)}]]"])
                _table(item, sub, lines)


def to_toml(data: Mapping[str, Any]) -> str:
    """Write a nested mapping as TOML text.

    Top-level mappings become ``[tables]``, deeper ones inline tables (unless they hold
    None), lists of mappings become ``[[arrays of tables]]``, dates are TOML dates, and long
    arrays are written one item a line. TOML has no
    null, so a None value is written as a comment (``# name: not set``); otherwise the text
    reads back to the same data with :mod:`tomllib`.

    Parameters
    ----------
    data : mapping
        Keys are strings; values are str, int, float, bool, date, None, lists or mappings.

    Returns
    -------
    str
        TOML text ending in a newline.

    Examples
    --------
    >>> print(to_toml({"name": "x", "floor": None, "time": {"start": dt.date(2021, 7, 16)}}))
    name = "x"
    # floor: not set
    <BLANKLINE>
    [time]
    start = 2021-07-16
    <BLANKLINE>
    """
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"
