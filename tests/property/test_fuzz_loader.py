"""Fuzzing the scenario loader: whatever the input, a Scenario or a ScenarioError.

Inputs: random bytes, byte-level mutations of a real scenario file, random text, random
valid TOML documents of random shapes, the tiny scenario with values replaced by random
values of random types, keys deleted and added, random ``calibration.fitted`` overrides,
deep nesting (beyond MAX_DEPTH and beyond the parser's stack), huge files, huge integers,
non-UTF-8 files and impossible file names. ``load_scenario`` and ``scenario_from_dict``
must return a valid :class:`Scenario` (finite numbers, idempotent re-validation) or raise
:class:`ScenarioError` listing the problems (``FileNotFoundError`` for a missing file) and
nothing else: no TypeError, KeyError, RecursionError or pydantic internals. Loading is
data only: Python code in a file stays a string and never runs.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsim.scenario import Scenario, ScenarioError, load_scenario, scenario_from_dict
from carbonsim.scenario.loader import MAX_DEPTH, MAX_FILE_BYTES, builtin_files
from carbonsim.testing.strategies import scenario_documents

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TINY = "china-national-tiny"
TINY_TEXT = builtin_files()[TINY].read_text(encoding="utf-8")
TINY_DOC: dict[str, Any] = tomllib.loads(TINY_TEXT)

# ------------------------------------------------------------------------------ TOML writer


def _string(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_string(str(k))} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"not a TOML value: {v!r}")


def to_toml(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """TOML text of ``doc``: scalars and arrays first, then ``[sub.tables]``."""
    lines = []
    if prefix:
        lines.append("[" + ".".join(_string(p) for p in prefix) + "]")
    tables = {}
    for k, v in doc.items():
        if isinstance(v, dict) and v and len(prefix) < 4:
            tables[k] = v
        else:
            lines.append(f"{_string(str(k))} = {_value(v)}")
    text = "\n".join(lines) + "\n"
    for k, v in tables.items():
        text += to_toml(v, (*prefix, str(k)))
    return text


# ------------------------------------------------------------------------------ strategies

keys = st.text(min_size=0, max_size=12)
scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),  # NaN and infinities included
    st.text(max_size=30),
    st.dates(),
    st.datetimes(),
)
toml_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
toml_documents = st.dictionaries(keys, toml_values, max_size=8)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value (tables, arrays and leaves) of a parsed document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


TINY_PATHS = list(_paths(TINY_DOC))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _tables(doc: Any) -> list[tuple[Any, ...]]:
    return [()] + [p for p in _paths(doc) if isinstance(_get(doc, p), dict)]


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """The tiny scenario with random values replaced, keys deleted and keys added."""
    doc = copy.deepcopy(TINY_DOC)
    for _ in range(draw(st.integers(0, 4))):  # replace a value by one of a random type
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        _get(doc, path[:-1])[path[-1]] = draw(toml_values)
    for _ in range(draw(st.integers(0, 2))):  # delete a key or an array item
        paths = list(_paths(doc))
        if paths:
            path = draw(st.sampled_from(paths))
            del _get(doc, path[:-1])[path[-1]]
    for _ in range(draw(st.integers(0, 2))):  # add a key to a table
        table = _get(doc, draw(st.sampled_from(_tables(doc))))
        table[draw(keys)] = draw(toml_values)
    return doc


@st.composite
def byte_mutations(draw: st.DrawFn) -> bytes:
    """The tiny scenario file with a few bytes flipped, inserted or deleted."""
    data = bytearray(TINY_TEXT.encode())
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[i : i + draw(st.integers(1, 40))]
    return bytes(data)


@st.composite
def fitted_documents(draw: st.DrawFn) -> dict[str, Any]:
    """The tiny scenario with random ``calibration.fitted`` overrides (and bounds)."""
    doc = copy.deepcopy(TINY_DOC)
    dotted = [".".join(str(p) for p in path) for path in TINY_PATHS]
    dotted += ["calibration", "calibration.fitted", "calibration.fitted.name", "calibration.x"]
    path = st.one_of(
        st.sampled_from(dotted),
        st.sampled_from(dotted).map(lambda p: p.replace(".0.", ".*.")),
        st.text(max_size=20),
    )
    fitted = draw(st.dictionaries(path, st.floats(-1e6, 1e6), max_size=3))
    calibration: dict[str, Any] = {"fitted": fitted}
    if draw(st.booleans()):
        calibration["parameters"] = {
            p: sorted(draw(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=2))) for p in fitted
        }
    doc["calibration"] = calibration
    return doc


# ------------------------------------------------------------------------------ the property

_DIRS: list[Path] = []  # this module's scratch directory (hypothesis tests take no tmp_path)


@pytest.fixture(autouse=True, scope="module")
def _scratch(tmp_path_factory: pytest.TempPathFactory) -> None:
    _DIRS.append(tmp_path_factory.mktemp("fuzz"))


def _write(data: bytes | str, name: str = "fuzz.toml") -> Path:
    path = _DIRS[-1] / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def _walk_numbers(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_numbers(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk_numbers(v, f"{path}.{i}")
    elif isinstance(obj, float):
        yield path, obj


def outcome(
    load: Callable[[], Scenario], shown: Any, *, calibrated: bool = True
) -> Scenario | ScenarioError:
    """Run ``load``: a valid Scenario or a ScenarioError, anything else fails the test.

    A Scenario must hold finite numbers only and validate to itself again (``calibrated``:
    whether ``load`` applied ``calibration.fitted``).
    """
    try:
        scenario = load()
    except ScenarioError as exc:
        error = exc
    except Exception as exc:
        pytest.fail(
            f"loading leaked {type(exc).__module__}.{type(exc).__name__}: {exc!s:.300}\n"
            f"input: {shown!r:.600}"
        )
    else:
        return _check_scenario(scenario, calibrated)
    assert error.problems, "a ScenarioError must list at least one problem"
    assert all(isinstance(p[0], str) and isinstance(p[1], str) for p in error.problems)
    assert str(error).startswith("invalid scenario")
    return error


def _check_scenario(scenario: Scenario, calibrated: bool) -> Scenario:
    assert isinstance(scenario, Scenario)
    dumped = scenario.model_dump()
    dumped["calibration"]["provenance"] = {}
    bad = [(p, v) for p, v in _walk_numbers(dumped) if not math.isfinite(v)]
    assert not bad, f"a loaded scenario holds non-finite numbers: {bad}"
    again = scenario_from_dict(scenario.model_dump(), calibrated=calibrated)
    assert again == scenario, "re-validating a loaded scenario changed it"
    return scenario


@given(st.binary(max_size=3000))
def test_random_bytes(data: bytes) -> None:
    outcome(lambda: load_scenario(_write(data)), data)


@given(byte_mutations())
def test_mutated_scenario_bytes(data: bytes) -> None:
    outcome(lambda: load_scenario(_write(data)), data)


@given(st.text(max_size=2000))
def test_random_text(text: str) -> None:
    outcome(lambda: load_scenario(_write(text)), text)


@given(toml_documents)
def test_random_toml_documents(doc: dict[str, Any]) -> None:
    text = to_toml(doc)
    result = outcome(lambda: load_scenario(_write(text)), text)
    assert isinstance(result, ScenarioError)  # a random shape is never a scenario
    outcome(lambda: scenario_from_dict(doc), doc)


@given(mutated_documents())
def test_tiny_scenario_with_random_values_keys_and_deletions(doc: dict[str, Any]) -> None:
    from_dict = outcome(lambda: scenario_from_dict(doc), doc)
    from_file = outcome(lambda: load_scenario(_write(to_toml(doc))), doc)
    # the file and the mapping are the same document: the same verdict
    assert type(from_dict) is type(from_file)
    if isinstance(from_dict, Scenario):
        assert from_dict == from_file


@given(fitted_documents())
def test_random_calibration_overrides(doc: dict[str, Any]) -> None:
    outcome(lambda: scenario_from_dict(doc), doc)
    outcome(lambda: load_scenario(_write(to_toml(doc))), doc)
    outcome(lambda: scenario_from_dict(doc, calibrated=False), doc, calibrated=False)


@given(scenario_documents())
def test_valid_documents_load_from_files(doc: dict[str, Any]) -> None:
    """The perturbed tiny scenarios of carbonsim.testing are valid, as files too."""
    from_dict = scenario_from_dict(doc)
    from_file = load_scenario(_write(to_toml(doc)))
    assert from_file == from_dict
    outcome(lambda: from_file, doc)


@settings(max_examples=25)
@given(
    st.integers(1, 3000),
    st.sampled_from(["array", "inline", "header", "dotted"]),
)
def test_deep_nesting(depth: int, form: str) -> None:
    if form == "array":
        text = "name = " + "[" * depth + "]" * depth
    elif form == "inline":
        text = "name = " + "{a = " * depth + "1" + "}" * depth
    elif form == "header":
        text = "[" + ".".join(["a"] * depth) + "]\nb = 1\n"
    else:
        text = ".".join(["a"] * depth) + " = 1\n"
    result = outcome(lambda: load_scenario(_write(text)), text[:80])
    assert isinstance(result, ScenarioError)
    if depth > MAX_DEPTH + 1:
        assert "nested deeper" in str(result)


@settings(max_examples=10)
@given(st.integers(MAX_DEPTH, 5000))
def test_deep_nesting_of_mappings(depth: int) -> None:
    doc = copy.deepcopy(TINY_DOC)
    inner: dict[str, Any] = {}
    doc["population"]["options"] = inner
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    result = outcome(lambda: scenario_from_dict(doc), "deep options")
    assert "nested deeper" in str(result)


def test_a_mapping_that_contains_itself() -> None:
    doc: dict[str, Any] = copy.deepcopy(TINY_DOC)
    doc["population"]["options"] = doc
    assert "nested deeper" in str(outcome(lambda: scenario_from_dict(doc), "cycle"))


# ------------------------------------------------------------------------------ examples


def test_the_toml_writer_round_trips() -> None:
    """The fuzz harness itself: the writer produces the document it was given."""
    assert tomllib.loads(to_toml(TINY_DOC)) == TINY_DOC
    odd = {"a b": {'q"\\\x7f\x00': [1, 2.5, "x\ny"], "é": {"deep": [dt.date(2021, 1, 1)]}}}
    assert tomllib.loads(to_toml(odd)) == odd


def test_files_larger_than_the_limit_are_refused() -> None:
    padded = TINY_TEXT + "#" * (MAX_FILE_BYTES - len(TINY_TEXT.encode()) - 1) + "\n"
    assert len(padded.encode()) == MAX_FILE_BYTES
    assert load_scenario(_write(padded)).name == TINY  # exactly at the limit: accepted
    too_big = padded + "#"
    with pytest.raises(ScenarioError, match=f"larger than {MAX_FILE_BYTES}"):
        load_scenario(_write(too_big))
    with pytest.raises(ScenarioError, match="larger than"):
        load_scenario(_write(b"a = 1\n" * 2_000_000))


def test_huge_integers_are_refused() -> None:
    text = TINY_TEXT.replace("seed = 20210716", "seed = " + "9" * 5000)
    with pytest.raises(ScenarioError, match="TOML value error"):
        load_scenario(_write(text))
    doc = copy.deepcopy(TINY_DOC)
    doc["name"] = 10**5000  # beyond Python's int-to-str digit limit: still a clean error
    with pytest.raises(ScenarioError, match=r"name: .*\(got <int>\)"):
        scenario_from_dict(doc)


def test_non_utf8_files_are_refused() -> None:
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(_write(TINY_TEXT.encode("utf-16")))
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(_write(b"name = '\xff'\n"))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    text = TINY_TEXT.replace("opening_price = 48.0", f"opening_price = {value}")
    with pytest.raises(ScenarioError, match=r"trading\.opening_price: "):
        load_scenario(_write(text))
    text = TINY_TEXT.replace("activity = 0.005", f"activity = {value}")
    with pytest.raises(
        ScenarioError, match=r"behaviour\.strategies\.1\.params\.activity: must be a finite"
    ):
        load_scenario(_write(text))


def test_non_finite_numbers_are_listed_with_the_other_problems() -> None:
    doc = copy.deepcopy(TINY_DOC)
    doc["trading"]["tick"] = float("nan")
    doc["offsets"]["discount"] = 2.0
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(doc)
    paths = [p for p, _, _ in info.value.problems]
    assert "trading.tick" in paths
    assert "offsets.discount" in paths


def test_provenance_may_hold_any_number() -> None:
    doc = copy.deepcopy(TINY_DOC)
    doc["calibration"] = {"provenance": {"objective": float("nan")}}
    assert math.isnan(scenario_from_dict(doc).calibration.provenance["objective"])


@pytest.mark.parametrize(
    "name",
    [
        "no-such-scenario",
        "a" * 5000,  # longer than any file name may be
        "/" + "b" * 300 + ".toml",  # a path component longer than allowed
        "with\x00nul.toml",
        ".",  # a directory
    ],
)
def test_missing_or_impossible_files(name: str) -> None:
    with pytest.raises(FileNotFoundError, match="built-in scenarios are"):
        load_scenario(name)


def test_loading_never_executes_code(tmp_path: Path) -> None:
    sentinel = tmp_path / "executed"
    code = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    text = TINY_TEXT.replace('name = "china-national-tiny"', f"name = {_string(code)}").replace(
        'description = "', f'description = "{{{{ {code} }}}} $(touch {sentinel}) '
    )
    text += f"\n# {code}\n"
    scenario = load_scenario(_write(text))
    assert scenario.name == code  # a string, kept verbatim
    assert code in scenario.description
    assert not sentinel.exists()
    # an expression is not a TOML value: a syntax error, never evaluated
    with pytest.raises(ScenarioError, match="TOML syntax error"):
        load_scenario(_write(TINY_TEXT.replace("seed = 20210716", f"seed = {code}")))
    assert not sentinel.exists()
    # a value that would evaluate to an int stays a string, and a string is no seed
    with pytest.raises(ScenarioError, match=r"population\.seed"):
        load_scenario(_write(TINY_TEXT.replace("seed = 20210716", 'seed = "1 + 1"')))


@pytest.mark.parametrize(
    "path", ["calibration.fitted.x", "calibration.parameters.a", "calibration"]
)
def test_a_fitted_value_cannot_rewrite_the_calibration(path: str) -> None:
    """Found by fuzzing: 'calibration.fitted.x' added 'x' to fitted on load, so the loaded
    scenario no longer re-validated (its new fitted entry 'x' is no field)."""
    doc = copy.deepcopy(TINY_DOC)
    doc["calibration"] = {"fitted": {path: 1.0}}
    with pytest.raises(ScenarioError, match="cannot set the calibration table"):
        scenario_from_dict(doc)
    assert scenario_from_dict(doc, calibrated=False).calibration.fitted == {path: 1.0}
