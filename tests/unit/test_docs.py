"""The documentation generated from code is up to date."""

from __future__ import annotations

from pathlib import Path

from carbonsim.scenario.schema import reference_page, reference_table

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_scenario_reference_page_matches_the_schema() -> None:
    page = (DOCS / "scenario-reference.md").read_text(encoding="utf-8")
    assert page == reference_page(), (
        "docs/scenario-reference.md is out of date; regenerate it with the command at the top "
        "of the page"
    )


def test_reference_covers_nested_and_optional_tables() -> None:
    fields = {row["field"] for row in reference_table()}
    for expected in (
        "time.start",
        "trading.opening_price",
        "periods[].deadline",
        "periods[].stages[].share",
        "policy.band_trigger.high",
        "policy.msr.upper",
        "auctions[].reserve_price",
        "behaviour.strategies[].name",
    ):
        assert expected in fields
    # every field documents itself
    assert all(row["description"] for row in reference_table())


def test_user_guide_links_resolve() -> None:
    guide = (DOCS / "user-guide.md").read_text(encoding="utf-8")
    for target in ("scenario-reference.md", "calibration.md"):
        assert target in guide
        assert (DOCS / target).is_file()
