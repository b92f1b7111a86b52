"""Every result column is documented, and the units table's ``year`` says what it is (#21, 10).

`carbonsim columns` (and the tables' ``attrs``) missed the four market columns of
government auctions, interventions and the reserve, and called the units table's rows
"compliance years" while a row is a compliance period indexed by its last emission year.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import carbonsim as cs
from carbonsim.cli import main
from carbonsim.engine.recorder import MARKET_COLUMNS as RECORDED_MARKET_COLUMNS
from carbonsim.results import MARKET_COLUMNS, UNIT_COLUMNS
from carbonsim.scenario import load_scenario

POLICY = ("auction_price", "auction_volume", "intervention_volume", "msr_holdings")
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def tiny() -> cs.Result:
    return cs.simulate("china-national-tiny", seed=0)


def test_every_recorded_market_column_is_documented(tiny: cs.Result) -> None:
    assert list(MARKET_COLUMNS) == list(RECORDED_MARKET_COLUMNS)
    assert list(tiny.market.columns) == list(MARKET_COLUMNS)
    assert set(POLICY) <= set(MARKET_COLUMNS)
    for name in tiny.market.columns:
        assert tiny.market.attrs["units"][name] == MARKET_COLUMNS[name][0]
        assert tiny.market.attrs["descriptions"][name]


def test_every_units_column_is_documented(tiny: cs.Result) -> None:
    assert list(tiny.units.columns) == list(UNIT_COLUMNS)
    assert set(tiny.units.attrs["descriptions"]) == set(UNIT_COLUMNS)


def test_carbonsim_columns_prints_the_policy_columns_and_what_year_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["columns"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["auction_price"].split()[1] == "currency/t"
    for name in ("auction_volume", "intervention_volume", "msr_holdings"):
        assert lines[name].split()[1] == "t", name
    assert "index 'year': the period's last emission year, 2020 for 2019-2020" in out


def test_a_units_row_is_a_compliance_period_indexed_by_its_last_emission_year() -> None:
    national = load_scenario("china-national-tiny")
    assert national.periods[0].emission_years == [2019, 2020]
    res = cs.simulate(national, seed=0, replicates=2)
    years = sorted(set(res.units.index.get_level_values("year")))
    assert years == [2020]  # one row for the two emission years 2019 and 2020
    assert len(res.units) == 2 * 60 * len(national.periods)
    assert "compliance period" in UNIT_COLUMNS["allocated"][1]
    assert "for the year" not in " ".join(text for _, text in UNIT_COLUMNS.values())


def test_the_user_guide_says_what_year_is() -> None:
    guide = (DOCS / "user-guide.md").read_text(encoding="utf-8")
    assert "year is the last emission\n# year of the period" in guide
