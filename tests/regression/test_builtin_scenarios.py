"""Every built-in scenario loads; every tiny variant runs with invariants checked; the
policy features of the Beijing, EU and CCER scenarios work as their rules say."""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim.engine.simulation import Simulation, simulate
from carbonsim.engine.state import OFFSET_CLASS, PROJECT_CLASS
from carbonsim.scenario import list_scenarios, load_scenario, with_overrides

BUILTIN = list_scenarios()
TINY = [n for n in BUILTIN if n.endswith("-tiny")]


def test_expected_builtins_are_listed() -> None:
    for name in ("china-national", "beijing-pilot", "ccer-2024", "eu-ets"):
        assert name in BUILTIN
        assert f"{name}-tiny" in BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_loads_and_round_trips(name: str) -> None:
    sc = load_scenario(name)
    assert sc.description
    assert sc.sources
    again = type(sc).model_validate(sc.model_dump())
    assert again.content_hash() == sc.content_hash()


@pytest.mark.parametrize("name", TINY)
def test_tiny_variant_runs_with_invariants(name: str) -> None:
    res = simulate(name, seed=0, check_invariants=True)
    assert res.market["volume"].sum() > 0
    assert len(res.units) > 0
    assert (res.units["shortfall"] >= 0).all()


def test_beijing_paid_allocation_auction() -> None:
    res = simulate("beijing-pilot-tiny", seed=0)
    m = res.market.xs(0, level="replicate")
    sold = m.loc["2014-09-19", "auction_volume"]
    assert 0 < sold <= 20_000  # never more than the supply offered
    assert np.isfinite(m.loc["2014-09-19", "auction_price"])
    # units' allocated allowances include what they won at auction
    alloc_2014 = res.units.xs(2014, level="year")["allocated"].sum()
    assert alloc_2014 > 0


@pytest.mark.parametrize(("edge", "sign"), [("high", 1), ("low", -1)])
def test_beijing_band_trigger_auction_and_buy_back(edge: str, sign: int) -> None:
    sc = load_scenario("beijing-pilot-tiny")
    # put the band where the market price sits outside it: above a low ceiling triggers
    # government auctions; below a high floor triggers buy-backs
    band = {"high": {"policy.band_trigger.high": 25.0}, "low": {"policy.band_trigger.low": 120.0}}
    sc = with_overrides(sc, {**band[edge], "policy.band_trigger.min_days": 3})
    res = simulate(sc, seed=0, check_invariants=True)
    interventions = res.market["intervention_volume"]
    assert (np.sign(interventions[interventions != 0]) == sign).all()
    assert (interventions != 0).any()


def test_eu_auctions_and_msr() -> None:
    res = simulate("eu-ets-tiny", seed=0, check_invariants=True)
    m = res.market
    assert m["auction_volume"].sum() > 0
    assert m["msr_holdings"].max() > 0  # the surplus in circulation fed the reserve
    prices = m["auction_price"].dropna()
    assert (prices >= 0).all()


def test_eu_carried_obligation() -> None:
    sc = load_scenario("eu-ets-tiny")
    # no compliance trading and no auction bids: units hold only their free allocation,
    # fall short, and the EU rule carries the obligation into the next year
    sc = with_overrides(
        sc,
        {"behaviour.strategies": [{"name": "noise"}], "behaviour.auction_participation": 0.0},
    )
    sim = Simulation(sc, seed=0, check_invariants=True)
    res = sim.run()
    assert res.market["auction_volume"].sum() == 0  # nobody bid
    u = res.units
    first, second = sorted(set(u.index.get_level_values("year")))
    short_first = u.xs(first, level="year")["shortfall"]
    assert short_first.sum() > 0
    # the second year's obligation includes the first year's shortfall
    second_rows = u.xs(second, level="year")
    covered = (
        second_rows["surrendered"] + second_rows["offsets_surrendered"] + second_rows["shortfall"]
    )
    extra = covered - second_rows["emissions"]
    np.testing.assert_allclose(extra[short_first > 0], short_first[short_first > 0], atol=1)
    # EU fine: EUR 100 per missing tonne
    np.testing.assert_allclose(
        u.xs(first, level="year")["penalty"], 100.0 * short_first, rtol=1e-12
    )


def test_ccer_legacy_credits_only_for_2024_and_new_credits_after_march_2025() -> None:
    sc = load_scenario("ccer-2024-tiny")
    sim = Simulation(sc, seed=0, check_invariants=True)
    res = sim.run()
    led = sim.ledger
    legacy = led.offset_class_index(OFFSET_CLASS)
    new = led.offset_class_index(PROJECT_CLASS)
    used = res.units.groupby(level="year")["offsets_surrendered"].sum()
    legacy_used = led.offsets_surrendered[0, legacy]
    new_used = led.offsets_surrendered[0, new]
    assert legacy_used + new_used == used.sum()
    # legacy credits count only for 2024 (new ones, issued from March 2025, may serve both)
    assert 0 < legacy_used <= used.loc[2024]
    assert new_used >= used.loc[2025] > 0
    m = res.market.xs(0, level="replicate")
    assert m.loc[:"2025-02-28", "offset_volume"].sum() <= led.offsets_issued[0, legacy]
    assert led.offsets_issued[0, new] > 0
