"""Write a fit into a scenario file: only its ``[calibration]`` table changes.

Scenario files carry comments that cite the source of every number, so a calibration is
written by editing the text, not by re-serialising the scenario: the lines of the
``[calibration]`` table and of its sub-tables (``[calibration.fitted]``, ...) are replaced by
the new table, or the table is appended when the file has none; every other line is kept
byte for byte. Before anything is written, the new text is parsed and checked: apart from
``calibration`` it must hold exactly the data of the old text, and ``calibration`` must be
the new table. Files are replaced atomically (:func:`carbonsim._io.atomic_write_text`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from carbonsim._format import toml_key, toml_value
from carbonsim._io import atomic_write_text
from carbonsim.scenario.loader import builtin_files, list_scenarios, scenario_from_dict
from carbonsim.scenario.schema import CalibrationSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

__all__ = ["render_calibration", "replace_calibration", "scenario_source", "write_calibration"]

# a table header line: [name] or [[name]], optional trailing comment
_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]#]+?)\s*\]\]?\s*(#.*)?$")
_COMMENT_OR_BLANK = re.compile(r"^\s*(#.*)?$")

_PREAMBLE = (
    "Written by 'carbonsim calibrate' (carbonsim.calibration, docs/calibration.md); rerun it",
    "rather than editing by hand. When the file is loaded, [calibration.fitted] is applied on",
    "top of the values above, which are the priors the fit started from; the targets and",
    "their sources are in carbonsim/calibration/targets.toml.",
)


def _is_calibration(header: str) -> bool:
    name = header.replace(" ", "").replace('"', "").replace("'", "")
    return name == "calibration" or name.startswith("calibration.")


def _emit(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    """Scalars and lists as ``key = value``, mappings as ``[sub.tables]``, in order."""
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for name, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append((name, value))
        else:
            lines.append(f"{toml_key(str(name))} = {toml_value(value)}")
    for name, value in tables:
        sub = [*path, toml_key(str(name))]
        if not value or not all(isinstance(v, Mapping) for v in value.values()):
            lines.extend(["", f"[{'.'.join(sub)}]"])  # (a table of tables needs no header)
        _emit(value, sub, lines)


def render_calibration(spec: CalibrationSpec | Mapping[str, Any]) -> str:
    """The ``[calibration]`` table as TOML text (with a comment on how it was written).

    Parameters
    ----------
    spec : CalibrationSpec or mapping
        The table (:meth:`carbonsim.calibration.FitResult.calibration`).

    Returns
    -------
    str
        Text starting with ``[calibration]`` and ending in a newline; sub-tables
        ``[calibration.parameters]``, ``[calibration.fitted]``, ``[calibration.provenance]``.

    Examples
    --------
    >>> text = render_calibration({"fitted": {"behaviour.discount_rate": 0.2}})
    >>> print(text.splitlines()[0]); print(text.splitlines()[-1])
    [calibration]
    "behaviour.discount_rate" = 0.2
    """
    data = spec.model_dump(mode="json") if isinstance(spec, CalibrationSpec) else dict(spec)
    CalibrationSpec.model_validate(data)  # refuse what the loader would refuse
    lines = ["[calibration]", *(f"# {line}" for line in _PREAMBLE)]
    data = {k: v for k, v in data.items() if not (isinstance(v, Mapping) and not v)}
    _emit(data, ["calibration"], lines)
    return "\n".join(lines) + "\n"


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """``(start, stop)`` line ranges of the calibration tables in a TOML text."""
    blocks: list[tuple[int, int]] = []
    start: int | None = None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m is None:
            continue
        if _is_calibration(m.group(1)):
            if start is None:
                start = i
        elif start is not None:
            stop = i
            # comments and blank lines just above the next header belong to that table
            while stop > start + 1 and _COMMENT_OR_BLANK.match(lines[stop - 1]):
                stop -= 1
            blocks.append((start, stop))
            start = None
    if start is not None:
        blocks.append((start, len(lines)))
    return blocks


def replace_calibration(text: str, spec: CalibrationSpec | Mapping[str, Any]) -> str:
    """``text`` (a scenario TOML file) with its ``[calibration]`` table replaced by ``spec``.

    Every line outside the calibration table is kept. Where the file has no calibration
    table, the new one is appended.

    Raises
    ------
    ValueError
        ``text`` is not valid TOML, or the edit would change anything but ``calibration``
        (for example a calibration written as an inline table or dotted keys elsewhere).
    """
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"the scenario file is not valid TOML: {exc}") from None
    block = render_calibration(spec).rstrip("\n").split("\n")
    lines = text.split("\n")
    blocks = _blocks(lines)
    if blocks:
        first = blocks[0][0]
        new_lines: list[str] = []
        for i, line in enumerate(lines):
            if i == first:
                new_lines.extend(block)
                end = len(new_lines)
            elif not any(a <= i < b for a, b in blocks):
                new_lines.append(line)
        # keep one blank line between the table and whatever follows it
        if end < len(new_lines) and new_lines[end].strip():
            new_lines.insert(end, "")
    else:
        new_lines = [*text.rstrip("\n").split("\n"), "", *block, ""]
    new_text = "\n".join(new_lines)
    if not new_text.endswith("\n"):
        new_text += "\n"
    problem = ""
    try:
        after = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        problem = f" (the edited text would not parse: {exc})"
    else:
        expected = tomllib.loads("\n".join(block))["calibration"]
        rest_before = {k: v for k, v in before.items() if k != "calibration"}
        rest_after = {k: v for k, v in after.items() if k != "calibration"}
        if rest_after != rest_before or after.get("calibration") != expected:
            problem = " (the edit would change more than the calibration table)"
    if problem:
        raise ValueError(
            "the [calibration] table of this file cannot be rewritten in place; write it as "
            f"a [calibration] table, not an inline table or dotted keys{problem}"
        )
    return new_text


def scenario_source(name_or_path: str | Path) -> Path:
    """The file a scenario is loaded from: a built-in scenario's TOML file, or the path.

    Resolves like :func:`carbonsim.scenario.load_scenario` (a built-in name wins unless a
    file of that name exists).

    >>> scenario_source("china-national").name
    'china-national.toml'
    """
    key = str(name_or_path)
    if key in list_scenarios() and not Path(key).exists():
        resource = builtin_files()[key]
        path = Path(str(resource))
        if not path.is_file():
            raise FileNotFoundError(
                f"built-in scenario {key!r} is not a plain file on disk ({resource}); "
                "install carbonsim from a source checkout to rewrite it"
            )
        return path
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no built-in scenario or file named {key!r}; built-in scenarios are: "
            + ", ".join(list_scenarios())
        )
    return path


def write_calibration(
    source: str | Path,
    spec: CalibrationSpec | Mapping[str, Any],
    out: str | Path | None = None,
) -> Path:
    """Rewrite the ``[calibration]`` table of a scenario file, atomically.

    Parameters
    ----------
    source : str or path-like
        A built-in scenario name or a scenario file (:func:`scenario_source`).
    spec : CalibrationSpec or mapping
        The new table.
    out : str or path-like, optional
        Write the calibrated copy here instead of rewriting ``source``.

    Returns
    -------
    pathlib.Path
        The file written. It loads as a valid scenario (checked before writing).
    """
    path = scenario_source(source)
    text = path.read_text(encoding="utf-8")
    new_text = replace_calibration(text, spec)
    target = Path(out) if out is not None else path
    scenario_from_dict(tomllib.loads(new_text), str(target))  # loads, fitted values apply
    atomic_write_text(target, new_text)
    log.info("wrote the [calibration] table of %s", target)
    return target
