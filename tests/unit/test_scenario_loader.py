"""Scenario files: broken files give one error listing every problem with its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonsim.scenario import (
    ScenarioError,
    list_scenarios,
    load_scenario,
    parse_override,
    with_overrides,
)
from carbonsim.scenario.loader import MAX_FILE_BYTES

GOOD = """
name = "mini"
[time]
start = 2021-07-16
end = 2021-12-31
[population]
n_units = 20
total_emissions = 4.0e7
[trading]
opening_price = 48.0
[[periods]]
name = "2019-2020"
emission_years = [2019, 2020]
pre_allocation_date = 2021-07-16
verification_date = 2021-09-30
deadline = 2021-12-31
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_loads(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, GOOD))
    assert sc.name == "mini"
    assert sc.periods[0].pre_allocation_share == 0.7  # default filled in
    assert sc.trading.listed_band == 0.10


def test_syntax_error_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="TOML syntax error"):
        load_scenario(write(tmp_path, GOOD + "\nthis is not toml\n"))


def test_every_problem_is_listed_with_its_path_and_value(tmp_path: Path) -> None:
    broken = (
        GOOD.replace("opening_price = 48.0", "opening_price = -5.0")  # negative price
        .replace("n_units = 20", 'n_units = "twenty"')  # wrong type
        .replace('name = "2019-2020"', 'name = "2019-2020"\nno_such_key = 1')  # unknown key
        + "\n[offsets]\nlegacy_stock = -1\n"  # negative quantity
    )
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, broken))
    err = exc.value
    paths = {p for p, _, _ in err.problems}
    assert {"trading.opening_price", "population.n_units", "offsets.legacy_stock"} <= paths
    assert any(p.startswith("periods.0") and "no_such_key" in p for p in paths)
    text = str(err)
    assert "4 problem(s)" in text or f"{len(err.problems)} problem(s)" in text
    assert "-5.0" in text
    assert "'twenty'" in text


def test_inconsistent_dates(tmp_path: Path) -> None:
    broken = GOOD.replace("deadline = 2021-12-31", "deadline = 2021-08-01")
    with pytest.raises(ScenarioError, match="pre_allocation_date <= verification_date <= deadline"):
        load_scenario(write(tmp_path, broken))
    backwards = GOOD.replace("end = 2021-12-31", "end = 2020-01-01")
    with pytest.raises(ScenarioError, match="must not be before start"):
        load_scenario(write(tmp_path, backwards))


def test_shares_outside_unit_interval(tmp_path: Path) -> None:
    broken = GOOD.replace(
        "deadline = 2021-12-31", "deadline = 2021-12-31\noffset_limit_share = 1.5"
    )
    with pytest.raises(ScenarioError, match=r"periods\.0\.offset_limit_share"):
        load_scenario(write(tmp_path, broken))


def test_limits_out_of_order(tmp_path: Path) -> None:
    broken = GOOD + "\n[policy]\nprice_floor = 100.0\nprice_ceiling = 50.0\n"
    with pytest.raises(ScenarioError, match="price_floor"):
        load_scenario(write(tmp_path, broken))


def test_missing_required_fields_are_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, 'name = "x"\n'))
    paths = {p for p, _, _ in exc.value.problems}
    assert {"time", "population", "periods", "trading"} <= paths


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    big = GOOD + "\n# " + "x" * (MAX_FILE_BYTES + 10) + "\n"
    with pytest.raises(ScenarioError, match="larger than"):
        load_scenario(write(tmp_path, big))


def test_unknown_name_lists_builtins() -> None:
    with pytest.raises(FileNotFoundError, match="china-national"):
        load_scenario("no-such-scenario")


def test_code_in_a_file_is_only_data(tmp_path: Path) -> None:
    text = GOOD.replace('name = "mini"', "name = \"__import__('os').system('false')\"")
    sc = load_scenario(write(tmp_path, text))
    assert sc.name == "__import__('os').system('false')"


def test_overrides_by_dotted_path() -> None:
    sc = load_scenario("china-national-tiny")
    changed = with_overrides(
        sc, {"offsets.legacy_stock": 1.0e6, "periods.*.offset_limit_share": 0.03}
    )
    assert changed.offsets.legacy_stock == 1.0e6
    assert all(p.offset_limit_share == 0.03 for p in changed.periods)
    assert sc.offsets.legacy_stock != 1.0e6  # the original is unchanged (immutable)
    with pytest.raises(ValueError, match="no field 'nosuch'"):
        with_overrides(sc, {"offsets.nosuch.x": 1})
    with pytest.raises(ScenarioError, match="offset_limit_share"):
        with_overrides(sc, {"periods.0.offset_limit_share": 2.0})
    assert parse_override("a.b=1") == ("a.b", 1)
    with pytest.raises(ValueError, match=r"path\.to\.field=value"):
        parse_override("nothing")


def test_scenarios_are_immutable() -> None:
    sc = load_scenario("china-national-tiny")
    with pytest.raises(ValueError, match="frozen"):
        sc.name = "other"  # type: ignore[misc]


def test_builtins_listed() -> None:
    assert "china-national" in list_scenarios()
