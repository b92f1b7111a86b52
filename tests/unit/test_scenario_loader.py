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


# ------------------------------------------------------- attacks that got through (#21, 3)

SECOND_PERIOD = """
[[periods]]
name = "{name}"
emission_years = {years}
pre_allocation_date = {pre}
verification_date = {verify}
deadline = {deadline}
"""


def _problem(err: ScenarioError, path: str) -> tuple[str, object]:
    """The message and value of the problem reported under ``path``."""
    found = [(msg, value) for p, msg, value in err.problems if p == path]
    assert found, f"no problem at {path}: {err.problems}"
    return found[0]


def test_a_period_after_the_window_is_refused(tmp_path: Path) -> None:
    # a period wholly after time.end ran its deadline on a closed market: 629 M yuan of
    # penalties on the national scenario
    later = SECOND_PERIOD.format(
        name="2021", years="[2021]", pre="2022-03-01", verify="2022-06-30", deadline="2022-12-31"
    )
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, GOOD + later))
    msg, value = _problem(exc.value, "periods.1.pre_allocation_date")
    assert "after the simulated window" in msg
    assert "time.end (2021-12-31)" in msg
    assert "extend time.end or remove the period" in msg
    assert str(value) == "2022-03-01"


def test_a_period_before_the_window_is_refused(tmp_path: Path) -> None:
    early = GOOD.replace("start = 2021-07-16", "start = 2022-01-04").replace(
        "end = 2021-12-31", "end = 2022-12-31"
    ) + SECOND_PERIOD.format(
        name="2021", years="[2021]", pre="2022-03-01", verify="2022-06-30", deadline="2022-12-31"
    )
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, early))
    msg, value = _problem(exc.value, "periods.0.deadline")
    assert "before the simulated window" in msg
    assert "time.start (2022-01-04)" in msg
    assert str(value) == "2021-12-31"


def test_a_period_reaching_past_the_end_of_the_window_is_valid(tmp_path: Path) -> None:
    # a window cut short inside a period stays valid (scenario_documents draws such ends)
    short = GOOD.replace("end = 2021-12-31", "end = 2021-08-31")
    assert load_scenario(write(tmp_path, short)).time.end.isoformat() == "2021-08-31"


def test_an_emission_year_in_two_periods_is_refused(tmp_path: Path) -> None:
    # duplicate rows: the year's emissions were counted twice
    twice = GOOD.replace("end = 2021-12-31", "end = 2022-12-31") + SECOND_PERIOD.format(
        name="again", years="[2020, 2021]", pre="2022-03-01", verify="2022-06-30",
        deadline="2022-12-31",
    )  # fmt: skip
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, twice))
    msg, value = _problem(exc.value, "periods.1.emission_years")
    assert "emission year 2020 is already in periods.0 ('2019-2020')" in msg
    assert "counted twice" in msg
    assert value == [2020, 2021]


def test_a_tick_coarser_than_a_tenth_of_the_opening_price_is_refused(tmp_path: Path) -> None:
    # a tick far above the prices rounded every price to a few ticks (average price 0.00)
    coarse = GOOD.replace("opening_price = 48.0", "opening_price = 48.0\ntick = 100.0")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, coarse))
    msg, value = _problem(exc.value, "trading.tick")
    assert "at most a tenth of opening_price (48.0)" in msg
    assert "use a tick of at most 4.8" in msg
    assert value == 100.0


def test_toml_integers_stay_valid_where_a_decimal_is_expected(tmp_path: Path) -> None:
    text = (
        GOOD.replace("opening_price = 48.0", "opening_price = 48\ntick = 1").replace(
            "total_emissions = 4.0e7", "total_emissions = 40000000"
        )
        + "\n[offsets]\nlegacy_stock = 800000\n"
    )
    sc = load_scenario(write(tmp_path, text))
    assert (sc.trading.tick, sc.trading.opening_price) == (1.0, 48.0)
    assert isinstance(sc.trading.tick, float)
    assert sc.offsets.legacy_stock == 800_000.0


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        ("opening_price = 48.0", 'opening_price = "48.0"', "trading.opening_price",
         "must be a number, not the text '48.0': write it without quotes"),
        ("n_units = 20", 'n_units = "20"', "population.n_units",
         "must be a whole number, not the text '20'"),
        ("opening_price = 48.0", "opening_price = true", "trading.opening_price",
         "must be a number, not the boolean True"),
        ("emission_years = [2019, 2020]", 'emission_years = [2019, "2020"]',
         "periods.0.emission_years", "item 1 must be a whole number"),
        ("deadline = 2021-12-31", "deadline = 2021-12-31\nborrowing = 1",
         "periods.0.borrowing", "must be true or false (a TOML boolean), not 1"),
        ("deadline = 2021-12-31", 'deadline = 2021-12-31\nbanking_limit = "yes"',
         "periods.0.banking_limit", "must be true or false (a TOML boolean), not 'yes'"),
        ("end = 2021-12-31", "end = 20211231", "time.end",
         "must be a date (YYYY-MM-DD), not the number 20211231"),
    ],
)  # fmt: skip
def test_values_are_not_converted_from_another_kind(
    tmp_path: Path, old: str, new: str, path: str, words: str
) -> None:
    # pydantic's lax mode read "48.0" as 48.0 and 1 as True
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, GOOD.replace(old, new, 1)))
    msg, _ = _problem(exc.value, path)
    assert words in msg


def test_overrides_are_not_converted_either() -> None:
    sc = load_scenario("china-national-tiny")
    with pytest.raises(ScenarioError, match=r"behaviour\.abatement: must be true or false"):
        with_overrides(sc, {"behaviour.abatement": 1})
    with pytest.raises(ScenarioError, match=r"calibration\.fitted: entry 'behaviour\.disc"):
        with_overrides(sc, {"calibration.fitted": {"behaviour.discount_rate": "0.5"}})


@pytest.mark.parametrize(
    ("path", "value", "bound"),
    [
        ("offsets.legacy_stock", 1e19, "1000000000000"),  # was an OverflowError
        ("population.total_emissions", 1e20, "1000000000000"),  # was "verified must be >= 0"
        ("trading.block_min_size", 1e300, "1000000000000"),
        ("trading.opening_price", 1e19, "1000000000"),  # was "reference_price is too large"
        ("behaviour.choke_price", 1e300, "1000000000"),
        ("trading.tick", 1e-12, "0.000001"),
        ("periods.0.emission_years", [2019, 10**19], "[1000, 9999]"),
        ("offsets.legacy_last_year", 10**19, "9999"),
        ("periods.0.auctions_per_period", 10**12, "100000"),
        ("offsets.session_interval", 10**19, "100000"),
    ],
)
def test_values_past_the_engines_integers_are_refused_naming_the_field(
    path: str, value: object, bound: str
) -> None:
    sc = load_scenario("china-national-tiny")
    with pytest.raises(ScenarioError) as exc:
        with_overrides(sc, {path: value})
    msg, got = _problem(exc.value, path)
    assert bound in msg
    assert got == value


def test_the_largest_quantities_and_prices_run() -> None:
    import carbonsim as cs
    from carbonsim.scenario.schema import MAX_TONNES

    sc = with_overrides(
        load_scenario("china-national-tiny"),
        {
            "population.total_emissions": MAX_TONNES,
            "offsets.legacy_stock": MAX_TONNES,
            "periods.0.auction_reserve_price": 1e9,
        },
    )
    res = cs.simulate(sc, seed=0, check_invariants=True)
    assert (res.units["emissions"] >= 0).all()
