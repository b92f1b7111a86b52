"""Engine mechanics on the tiny national scenario: determinism, lockstep replicates,
conservation and the per-unit accounting identities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carbonsim.engine.simulation import Simulation, simulate
from carbonsim.scenario import load_scenario, with_overrides


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    return load_scenario("china-national-tiny")


@pytest.fixture(scope="module")
def batch(tiny):  # type: ignore[no-untyped-def]
    return simulate(tiny, seed=11, replicates=3, check_invariants=True, record_trades=True)


def test_same_seed_bit_identical(tiny) -> None:  # type: ignore[no-untyped-def]
    a = simulate(tiny, seed=5)
    b = simulate(tiny, seed=5)
    pd.testing.assert_frame_equal(a.market, b.market, check_exact=True)
    pd.testing.assert_frame_equal(a.units, b.units, check_exact=True)


def test_different_seeds_differ(tiny) -> None:  # type: ignore[no-untyped-def]
    a = simulate(tiny, seed=1)
    b = simulate(tiny, seed=2)
    assert not a.market["volume"].equals(b.market["volume"])


@pytest.mark.parametrize("k", [0, 2])
def test_replicate_k_of_batch_equals_single_run(tiny, batch, k: int) -> None:  # type: ignore[no-untyped-def]
    alone = simulate(tiny, seed=11, replicates=1, first_replicate=k)
    pd.testing.assert_frame_equal(
        batch.market.xs(k, level="replicate", drop_level=False),
        alone.market,
        check_exact=True,
    )
    pd.testing.assert_frame_equal(
        batch.units.xs(k, level="replicate", drop_level=False),
        alone.units,
        check_exact=True,
    )


def test_market_table_shape_and_index(tiny, batch) -> None:  # type: ignore[no-untyped-def]
    assert batch.market.index.names == ["replicate", "date"]
    assert batch.units.index.names == ["replicate", "unit", "year"]
    n_days = batch.market.xs(0, level="replicate").shape[0]
    assert len(batch.market) == 3 * n_days
    assert batch.market.index.get_level_values("date")[0] == pd.Timestamp("2021-07-16")
    assert batch.provenance["scenario_hash"] == tiny.content_hash()


def test_trading_happens_and_volumes_add_up(batch) -> None:  # type: ignore[no-untyped-def]
    m = batch.market
    assert m["volume"].sum() > 0
    np.testing.assert_allclose(m["volume"], m["listed_volume"] + m["block_volume"])
    traded = m["volume"] > 0
    np.testing.assert_allclose(
        m.loc[traded, "turnover"] / m.loc[traded, "volume"], m.loc[traded, "vwap"]
    )


def test_listed_close_moves_within_band(batch) -> None:  # type: ignore[no-untyped-def]
    for _, m in batch.market.groupby(level="replicate"):
        assert (m["price"] >= m["band_low"] - 1e-9).all()
        assert (m["price"] <= m["band_high"] + 1e-9).all()
        ratio = m["price"].to_numpy()[1:] / m["price"].to_numpy()[:-1]
        assert (np.abs(ratio - 1.0) <= 0.10 + 1e-3).all()


def test_block_trades_meet_minimum_size(batch) -> None:  # type: ignore[no-untyped-def]
    trades = batch.trades
    assert trades is not None
    assert len(trades) > 0
    block = trades[trades["segment"] == "block"]
    # a block order is at least 100,000 t; a fill may be rationed below it
    assert (trades.groupby(["replicate", "date", "segment", "side"])["qty"].sum() > 0).all()
    listed = trades[trades["segment"] == "listed"]
    assert (listed["qty"] < 100_000).all()
    assert len(block) == 0 or (block["price"] > 0).all()


def test_trades_match_market_volume(batch) -> None:  # type: ignore[no-untyped-def]
    trades = batch.trades
    assert trades is not None
    buys = trades[trades["side"] == "buy"].groupby(["replicate", "date"])["qty"].sum()
    sells = trades[trades["side"] == "sell"].groupby(["replicate", "date"])["qty"].sum()
    pd.testing.assert_series_equal(buys, sells, check_names=False)
    vol = batch.market["volume"]
    np.testing.assert_allclose(buys.to_numpy(), vol.loc[buys.index].to_numpy())


def test_unit_accounting_identities(batch) -> None:  # type: ignore[no-untyped-def]
    u = batch.units
    # every allowance bought was sold by someone in the same replicate
    per_rep = u.groupby(level="replicate")[["bought", "sold"]].sum()
    np.testing.assert_allclose(per_rep["bought"], per_rep["sold"])
    assert (u[["allocated", "emissions", "surrendered", "shortfall", "banked"]] >= 0).all().all()
    # surrendered + offsets + shortfall cover the obligation; the obligation never exceeds
    # verified emissions (the gas exemption can only lower it)
    covered = u["surrendered"] + u["offsets_surrendered"] + u["shortfall"]
    assert (covered <= u["emissions"] + 0.5).all()
    non_gas_full = covered[(u["sector"] == "power")]
    assert len(non_gas_full) > 0
    # offsets within the 5% cap of the obligation
    assert (u["offsets_surrendered"] <= 0.05 * covered + 1).all()


def test_penalties_follow_shortfall(batch) -> None:  # type: ignore[no-untyped-def]
    u = batch.units
    assert ((u["shortfall"] > 0) == (u["penalty"] > 0)).all()


def test_abatement_reports_co_pollutants(batch) -> None:  # type: ignore[no-untyped-def]
    u = batch.units
    abated = u["abated"] > 0
    assert abated.any()
    assert (u.loc[abated, "so2_avoided"] >= 0).all()
    assert (u.loc[abated, ["so2_avoided", "nox_avoided", "pm_avoided"]].sum(axis=1) > 0).all()


def test_no_offsets_when_limit_zero(tiny) -> None:  # type: ignore[no-untyped-def]
    sc = with_overrides(tiny, {"periods.*.offset_limit_share": 0.0})
    res = simulate(sc, seed=3, check_invariants=True)
    assert res.units["offsets_surrendered"].sum() == 0


def test_price_ceiling_holds(tiny) -> None:  # type: ignore[no-untyped-def]
    sc = with_overrides(tiny, {"policy.price_ceiling": 50.0})
    res = simulate(sc, seed=3, check_invariants=True)
    assert res.market["price"].iloc[1:].max() <= 50.0 + 1e-9


def test_simulation_runs_once(tiny) -> None:  # type: ignore[no-untyped-def]
    sim = Simulation(tiny, seed=0)
    sim.run()
    with pytest.raises(RuntimeError, match="runs once"):
        sim.run()


def test_bad_arguments(tiny) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="Generator"):
        Simulation(tiny, seed=np.random.default_rng(0))
    with pytest.raises(ValueError, match="replicates"):
        Simulation(tiny, replicates=0)
    with pytest.raises(ValueError, match="first_replicate"):
        Simulation(tiny, first_replicate=-1)
    with pytest.raises(TypeError, match="Scenario"):
        Simulation("china-national-tiny")  # type: ignore[arg-type]


def test_invariant_checks_follow_the_environment(tiny, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CARBONSIM_CHECK_INVARIANTS", "1")
    assert Simulation(tiny).check_invariants
    monkeypatch.setenv("CARBONSIM_CHECK_INVARIANTS", "0")
    assert not Simulation(tiny).check_invariants
    assert Simulation(tiny, check_invariants=True).check_invariants


def test_broken_ledger_is_caught_by_the_invariant_check(tiny) -> None:  # type: ignore[no-untyped-def]
    from carbonsim.engine.simulation import InvariantError

    sim = Simulation(tiny, seed=0, check_invariants=True)
    original = sim._after_event

    def corrupt_then_check(what: str) -> None:
        if what == "verification":
            sim.ledger._allowances[0, 0, 0] += 1  # an allowance appears from nowhere
        original(what)

    sim._after_event = corrupt_then_check  # type: ignore[method-assign]
    with pytest.raises(InvariantError, match="ledger check failed after verification"):
        sim.run()


def test_memory_guard_refuses_a_run_that_would_not_fit(
    tiny, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import carbonsim.engine.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda: 50_000_000)  # 50 MB free
    sim = Simulation(tiny, seed=0, replicates=5000)
    with pytest.raises(MemoryError, match="replicates"):
        sim.run()
    assert not hasattr(sim, "ledger")  # refused before any work was done


def test_negative_true_up_on_a_sold_vintage_is_deducted_later(tiny) -> None:  # type: ignore[no-untyped-def]
    """Pre-allocate far more than the final allocation, so some units have sold allowances
    that the true-up then takes back: what they no longer hold becomes a deduction."""
    sc = with_overrides(tiny, {"periods.0.pre_allocation_share": 1.0})
    sim = Simulation(sc, seed=0, check_invariants=True)
    original = sim._make_period

    def inflate(spec):  # type: ignore[no-untyped-def]
        p = original(spec)
        p.expected_allocation = p.expected_allocation * 1.5  # pre-allocation 1.5x the final
        return p

    sim._make_period = inflate  # type: ignore[method-assign]
    sim.run()  # before the fix this raised LedgerError in claw_back
    ops = set(sim.ledger.journal().index.get_level_values("op"))
    assert {"claw_back", "deduct"} <= ops
    # the part already sold is owed against the next vintage (2021), not lost
    next_vintage = sim.ledger.vintage_index(2021)
    assert sim.ledger.pending_deductions[:, :, next_vintage].sum() > 0


def test_unit_table_rows_by_replicate_then_year_then_unit() -> None:
    # eu-ets-tiny has two periods (compliance years 2021 and 2022)
    from carbonsim.engine.simulation import build_units

    sc = load_scenario("eu-ets-tiny")
    units = simulate(sc, seed=3, replicates=3, first_replicate=2, check_invariants=False).units
    pop = build_units(sc)
    want = pd.MultiIndex.from_tuples(
        [(k, u, y) for k in (2, 3, 4) for y in (2021, 2022) for u in pop.names],
        names=["replicate", "unit", "year"],
    )
    assert units.index.equals(want)
    assert units["sector"].tolist() == list(pop.sector_labels()) * 6


def test_fundamental_price_is_the_same_whatever_the_curve_grouping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the bisection evaluates several years' abatement curves per call; one curve per call
    # (the grouping a large run falls back to) gives the same numbers bit for bit
    from carbonsim.engine import expectations as engine

    sc = load_scenario("eu-ets-tiny")
    grouped = simulate(sc, seed=2, replicates=2, check_invariants=False).market
    monkeypatch.setattr(engine, "_FUNDAMENTAL_CELLS", 1)
    alone = simulate(sc, seed=2, replicates=2, check_invariants=False).market
    assert grouped["fundamental_price"].notna().any()
    assert grouped.to_numpy().tobytes() == alone.to_numpy().tobytes()


def test_offset_bid_scatter_is_a_scenario_parameter() -> None:
    # offsets.bid_sigma scatters units' offset bids; a wider scatter lets the highest
    # bids reach further above (1 - discount) x the expected price, so offsets clear higher
    from carbonsim.scenario.loader import with_overrides

    sc = load_scenario("china-national-tiny")
    assert sc.offsets.bid_sigma == 0.05
    narrow = simulate(sc, seed=2, replicates=2, check_invariants=False).market
    wide_sc = with_overrides(sc, {"offsets.bid_sigma": 0.4})
    wide = simulate(wide_sc, seed=2, replicates=2, check_invariants=False).market
    assert narrow["offset_volume"].sum() > 0
    assert wide["offset_price"].mean() > narrow["offset_price"].mean()
    with pytest.raises(ValueError, match="bid_sigma"):
        with_overrides(sc, {"offsets.bid_sigma": -0.1})
