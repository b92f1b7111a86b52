"""Load scenarios from TOML files or built-in names, and apply dotted-path overrides.

Scenario files are data only: loading parses TOML (never executes code), refuses files
larger than :data:`MAX_FILE_BYTES`, not UTF-8, or nested deeper than :data:`MAX_DEPTH`, and
validates against :mod:`carbonsim.scenario.schema`; every number must be finite (TOML's
``nan`` and ``inf`` are refused everywhere but the free-form ``calibration.provenance``).
Every problem is reported at once, each with its field path and offending value, in a
:class:`ScenarioError`; whatever the content of the file, loading raises nothing else.

Calibrated scenarios
--------------------
A file's ``[calibration]`` table may hold ``fitted`` values (dotted path -> value, written by
``carbonsim calibrate``). :func:`load_scenario` and :func:`scenario_from_dict` validate the
file as written, then apply ``fitted`` as overrides, so the scenario runs with the fitted
behaviour while the rest of the file keeps the priors the fit started from
(``calibrated=False`` returns the priors). The applied values stay in
``scenario.calibration.fitted``, so re-validating a dumped scenario is idempotent.
:func:`with_overrides` never re-applies ``fitted``: an explicit override wins, and a fitted
entry whose path it touches is dropped from ``calibration.fitted`` (it no longer describes
the scenario), so a dumped and re-loaded copy keeps the override.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from carbonsim.scenario.schema import Scenario

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "ScenarioError",
    "builtin_files",
    "list_scenarios",
    "load_scenario",
    "parse_override",
    "scenario_from_dict",
    "with_overrides",
]

#: Largest scenario file accepted, bytes.
MAX_FILE_BYTES = 1_000_000
#: Deepest nesting of tables and arrays accepted.
MAX_DEPTH = 12

_BUILTIN_PACKAGE = "carbonsim.scenario.builtin"


class ScenarioError(ValueError):
    """A scenario could not be loaded; ``problems`` lists (field path, message, value)."""

    def __init__(self, source: str, problems: list[tuple[str, str, Any]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"invalid scenario {source}: {len(problems)} problem(s)"]
        for path, msg, value in problems:
            shown = "" if value is _MISSING else f" (got {_short(value)})"
            lines.append(f"  - {path or '<root>'}: {msg}{shown}")
        super().__init__("\n".join(lines))


_MISSING = object()


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # e.g. an int beyond the int-to-str digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _depth(obj: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(obj, Mapping):
        return max([_depth(v, level + 1) for v in obj.values()], default=level + 1)
    if isinstance(obj, list):
        return max([_depth(v, level + 1) for v in obj], default=level + 1)
    return level


# Free-form records whose numbers may be anything (not read by the model).
_ANY_NUMBER = frozenset({"calibration.provenance"})


def _non_finite(obj: Any, path: str, out: list[tuple[str, str, Any]]) -> None:
    """Append a problem for every NaN or infinite number in ``obj`` (depth-checked)."""
    if path in _ANY_NUMBER:
        return
    if isinstance(obj, float):
        if not math.isfinite(obj):
            out.append((path, "must be a finite number (no NaN or inf)", obj))
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            _non_finite(value, f"{path}.{key}" if path else str(key), out)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            _non_finite(value, f"{path}.{i}", out)


def scenario_from_dict(
    data: Mapping[str, Any], source: str = "<dict>", *, calibrated: bool = True
) -> Scenario:
    """Validate a mapping as a :class:`Scenario`; raise :class:`ScenarioError` listing problems.

    Parameters
    ----------
    data : mapping
        The scenario as parsed from TOML (or dumped by :meth:`Scenario.model_dump`).
    source : str
        Name of the input, used in error messages.
    calibrated : bool
        Apply ``calibration.fitted`` as dotted-path overrides after validating (default).
        With False the scenario is returned as written (the priors of a calibration).
    """
    scenario = _validate(data, source)
    if calibrated and scenario.calibration.fitted:
        scenario = _apply_fitted(scenario, source)
    return scenario


def _apply_fitted(scenario: Scenario, source: str) -> Scenario:
    """``scenario`` with its ``calibration.fitted`` values set by dotted path."""
    data = scenario.model_dump(mode="json")
    problems: list[tuple[str, str, Any]] = []
    for path, value in scenario.calibration.fitted.items():
        if str(path).split(".")[0] == "calibration":  # would rewrite the fit it comes from
            problems.append(
                (
                    f"calibration.fitted.{path}",
                    "a fitted value cannot set the calibration table",
                    value,
                )
            )
            continue
        try:
            _apply_override(data, str(path), value)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            problems.append((f"calibration.fitted.{path}", str(exc), value))
    if problems:
        raise ScenarioError(source, problems)
    return _validate(data, f"{source} (calibration.fitted applied)")


def _validate(data: Mapping[str, Any], source: str) -> Scenario:
    """Validate ``data`` as written (no calibration applied)."""
    if not isinstance(data, Mapping):
        raise ScenarioError(source, [("", "a scenario must be a table of fields", data)])
    if _depth(data) > MAX_DEPTH:
        raise ScenarioError(source, [("", f"nested deeper than {MAX_DEPTH} levels", _MISSING)])
    non_finite: list[tuple[str, str, Any]] = []
    _non_finite(data, "", non_finite)
    try:
        scenario = Scenario.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            value = err.get("input", _MISSING)
            if err["type"] == "missing":
                value = _MISSING
            ctx = err.get("ctx") or {}
            if "field" in ctx:  # a cross-field check names the field it refuses
                path = ".".join(p for p in (path, str(ctx["field"])) if p)
                value = ctx.get("value", _MISSING)
            elif not err["loc"]:  # the whole document: its repr says nothing
                value = _MISSING
            problems.append((path, err["msg"], value))
        seen = {p[0] for p in problems}
        problems += [p for p in non_finite if p[0] not in seen]
        raise ScenarioError(source, problems) from None
    if non_finite:
        raise ScenarioError(source, non_finite)
    return scenario


def builtin_files() -> dict[str, Any]:
    """The TOML file of each built-in scenario, by name (package resources, not paths).

    Each entry is an :mod:`importlib.resources` traversable (``.name``, ``.read_text()``);
    it is a plain file on disk unless carbonsim is installed zipped.

    >>> builtin_files()["china-national"].name
    'china-national.toml'
    """
    root = resources.files(_BUILTIN_PACKAGE)
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in root.iterdir()
        if entry.name.endswith(".toml")
    }


def list_scenarios() -> list[str]:
    """Names of the built-in scenarios, sorted."""
    return sorted(builtin_files())


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, [("", f"TOML syntax error: {exc}", _MISSING)]) from None
    except ValueError as exc:  # an integer longer than Python's int-to-str digit limit
        raise ScenarioError(source, [("", f"TOML value error: {exc}", _MISSING)]) from None
    except RecursionError:  # arrays or inline tables nested beyond the parser's stack
        raise ScenarioError(
            source, [("", f"nested deeper than {MAX_DEPTH} levels", _MISSING)]
        ) from None


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the name cannot name a file (too long, ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _read_file(path: Path) -> str:
    """The text of a scenario file: at most :data:`MAX_FILE_BYTES`, UTF-8."""
    source = str(path)
    with path.open("rb") as fh:  # read one byte more than allowed: the size is checked
        raw = fh.read(MAX_FILE_BYTES + 1)  # on what is read, not on a stat that can change
    if len(raw) > MAX_FILE_BYTES:
        size = max(path.stat().st_size, len(raw))
        raise ScenarioError(
            source, [("", f"file is {size} bytes, larger than {MAX_FILE_BYTES}", _MISSING)]
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            source, [("", f"a TOML file must be UTF-8 text: {exc}", _MISSING)]
        ) from None


def load_scenario(name_or_path: str | Path, *, calibrated: bool = True) -> Scenario:
    """Load a built-in scenario by name, or a scenario TOML file by path.

    Parameters
    ----------
    name_or_path : str or path-like
        A name from :func:`list_scenarios` or the path of a ``.toml`` file.
    calibrated : bool
        Apply the file's ``calibration.fitted`` values (default). With False the scenario
        is returned as written: the priors that ``carbonsim calibrate`` starts from.

    Raises
    ------
    ScenarioError
        If the file is too large, not UTF-8, not valid TOML, nested too deeply, or fails
        validation (every problem listed).
    FileNotFoundError
        If it is neither a built-in name nor an existing file (or cannot name a file, e.g.
        too long); the message lists the names.
    OSError
        If an existing file cannot be read (e.g. permission denied).
    """
    builtin = builtin_files()
    key = str(name_or_path)
    path = Path(name_or_path)
    is_file = _is_file(path)
    if key in builtin and not is_file:
        text = builtin[key].read_text(encoding="utf-8")
        return scenario_from_dict(_read_toml(text, key), key, calibrated=calibrated)
    if not is_file:
        names = ", ".join(sorted(builtin)) or "(none)"
        raise FileNotFoundError(
            f"no built-in scenario or file named {key!r}; built-in scenarios are: {names}"
        )
    data = _read_toml(_read_file(path), str(path))
    return scenario_from_dict(data, str(path), calibrated=calibrated)


def split_assignment(text: str, what: str, form: str) -> tuple[str, str]:
    """Split ``"path=raw"`` at the first ``=``: the stripped path and the raw rest.

    ``what`` and ``form`` name the argument and its expected shape in the errors (an
    ``=`` missing, an empty path).
    """
    if "=" not in text:
        raise ValueError(f"{what} must look like {form}, got {text!r}")
    path, raw = text.split("=", 1)
    path = path.strip()
    if not path:
        raise ValueError(f"{what} has an empty field path: {text!r}")
    return path, raw


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``"path.to.field=value"``; the value is read as a TOML value when it can be.

    >>> parse_override("offsets.legacy_stock=3.2e7")
    ('offsets.legacy_stock', 32000000.0)
    >>> parse_override("time.calendar=business")
    ('time.calendar', 'business')
    """
    path, raw = split_assignment(text, "override", "path.to.field=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def _set_path(data: Any, parts: list[str], value: Any, full: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(data, list):
        try:
            index = int(head)
            target = data[index]
        except (ValueError, IndexError):
            raise ValueError(
                f"override {full!r}: {head!r} is not an index of a list of {len(data)}"
            ) from None
        if not rest:
            data[index] = value
            return
        _set_path(target, rest, value, full)
        return
    if not isinstance(data, dict):
        raise ValueError(f"override {full!r}: cannot descend into a {type(data).__name__}")
    if not rest:
        data[head] = value
        return
    if head not in data:
        raise ValueError(f"override {full!r}: no field {head!r}; fields here: {sorted(data)}")
    if data[head] is None:
        data[head] = {}
    _set_path(data[head], rest, value, full)


def _apply_override(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at dotted ``path`` in the dumped scenario ``data`` (``*``: every item)."""
    parts = path.split(".")
    if "*" in parts:
        star = parts.index("*")
        container: Any = data
        for p in parts[:star]:
            container = container[int(p)] if isinstance(container, list) else container[p]
        if not isinstance(container, list):
            raise ValueError(f"override {path!r}: '*' must follow a list field")
        for i in range(len(container)):
            _set_path(data, [*parts[:star], str(i), *parts[star + 1 :]], value, path)
    else:
        _set_path(data, parts, value, path)


def _overlap(a: list[str], b: list[str]) -> bool:
    """Whether two dotted paths touch the same field: one is a prefix of the other, ``*``
    matching any list index."""
    return all(x == y or "*" in (x, y) for x, y in zip(a, b, strict=False))


def with_overrides(
    scenario: Scenario, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]]
) -> Scenario:
    """A validated copy of ``scenario`` with fields set by dotted path.

    List items are addressed by index (``periods.0.offset_limit_share``); ``periods.*.x``
    sets ``x`` in every period. ``calibration.fitted`` is not re-applied, and a fitted entry
    whose path an override touches is removed from it (see the module docstring).

    >>> from carbonsim.scenario import load_scenario
    >>> sc = load_scenario("china-national-tiny")
    >>> with_overrides(sc, {"periods.*.offset_limit_share": 0.0}).periods[0].offset_limit_share
    0.0
    """
    items = overrides.items() if isinstance(overrides, Mapping) else overrides
    data = scenario.model_dump(mode="json")
    touched: list[list[str]] = []
    for path, value in items:
        _apply_override(data, str(path), value)
        touched.append(str(path).split("."))
    calibration = data.get("calibration")
    fitted = calibration.get("fitted") if isinstance(calibration, dict) else None
    if isinstance(fitted, dict) and fitted:
        for key in list(fitted):
            if any(t[0] != "calibration" and _overlap(t, key.split(".")) for t in touched):
                del fitted[key]
    return _validate(data, f"{scenario.name} with overrides")
