"""CCER offsets: issuance, eligibility, usage caps, legacy stock, offset market (hand-worked)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from carbonsim._random import replicate_seeds
from carbonsim.market.offsets import (
    FIRST_ISSUANCE,
    LEGACY_CCER_FIRST_CYCLE_T,
    OFFSET_CUTOFF_Z,
    OFFSET_LOTS,
    RELAUNCH_DATE,
    BeijingOffsetCap,
    OffsetProjects,
    beijing_offset_use,
    beijing_usage_cap,
    clear_offset_bids,
    clear_offset_classes,
    eligible,
    issued_credits,
    legacy_ccer_stock,
    methodologies,
    methodology_table,
    synthetic_projects,
    usage_cap,
    year_fraction,
)


def make_projects(**overrides: Any) -> OffsetProjects:
    """One offshore-wind project, 10,000 t/yr, crediting 2025-2035, lag 180 d, no noise."""
    fields: dict[str, Any] = {
        "ids": ["A"],
        "methodology": ["offshore_wind"],
        "capacity": [10_000.0],
        "registration": ["2024-06-01"],
        "crediting_start": ["2025-01-01"],
        "crediting_end": ["2035-01-01"],
        "issuance_lag": [180],
        "sigma": [0.0],
        "covered_entity": [False],
        "region": ["other"],
        "marginal_cost": [15.0],
    }
    fields.update(overrides)
    return OffsetProjects(**fields)


# ------------------------------------------------------------------ methodologies


def test_relaunch_methodologies_and_local_schemes_are_registered() -> None:
    table = methodology_table()
    for code in ("afforestation", "solar_thermal", "offshore_wind", "mangrove"):
        assert table.loc[code, "post_relaunch"]
        assert table.loc[code, "national"]
    assert not table.loc["legacy", "post_relaunch"]
    assert not table.loc["low_carbon_travel", "national"]
    assert not table.loc["hydrogen_fcv", "national"]
    assert table.loc["afforestation", "reference"] == "CCER-14-001-V01"
    assert table.attrs["units"]["marginal_cost"] == "yuan/t"


def test_unknown_methodology_lists_valid_codes() -> None:
    with pytest.raises(ValueError, match=r"OffsetProjects.methodology.*'windmill'.*afforestation"):
        make_projects(methodology=["windmill"])
    with pytest.raises(KeyError, match="valid names"):
        methodologies.get("windmill")


# ------------------------------------------------------------------ projects table


class TestOffsetProjectsValidation:
    def test_arrays_normalised_and_read_only(self) -> None:
        p = make_projects()
        assert p.registration.dtype == np.dtype("datetime64[D]")
        assert p.ids.name == "project"
        assert len(p) == p.n == 1
        with pytest.raises(ValueError, match="read-only"):
            p.capacity[0] = 1.0

    def test_negative_capacity_names_field_and_row(self) -> None:
        with pytest.raises(ValueError, match=r"OffsetProjects.capacity must be >= 0.*\[0\]"):
            make_projects(capacity=[-1.0])

    def test_length_mismatch(self) -> None:
        with pytest.raises(ValueError, match=r"OffsetProjects.sigma must have one entry per"):
            make_projects(sigma=[0.1, 0.2])

    def test_duplicate_ids(self) -> None:
        frame = synthetic_projects(2, rng=0).to_frame()
        frame.index = pd.Index(["A", "A"])
        with pytest.raises(ValueError, match="duplicate 'A'"):
            OffsetProjects.from_frame(frame)

    def test_crediting_end_must_follow_start(self) -> None:
        with pytest.raises(ValueError, match="crediting_end must be after crediting_start"):
            make_projects(crediting_end=["2024-01-01"])

    def test_bad_date_and_bad_types(self) -> None:
        with pytest.raises(ValueError, match=r"OffsetProjects\.registration"):
            make_projects(registration=["not a date"])
        with pytest.raises(TypeError, match=r"OffsetProjects\.registration"):
            make_projects(registration=[20240101])
        with pytest.raises(TypeError, match=r"OffsetProjects\.covered_entity"):
            make_projects(covered_entity=["yes"])
        with pytest.raises(ValueError, match=r"OffsetProjects\.region"):
            make_projects(region=[""])

    def test_frame_round_trip(self) -> None:
        p = synthetic_projects(6, rng=3)
        q = OffsetProjects.from_frame(p.to_frame())
        pd.testing.assert_frame_equal(p.to_frame(), q.to_frame())
        with pytest.raises(ValueError, match="missing columns"):
            OffsetProjects.from_frame(p.to_frame().drop(columns="sigma"))


def test_synthetic_projects_reproducible_and_consistent() -> None:
    a = synthetic_projects(200, rng=7)
    b = synthetic_projects(200, rng=7)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    legacy = a.methodology == "legacy"
    assert legacy.any()
    assert (a.registration[legacy] < np.datetime64("2017-03-14")).all()
    assert (a.registration[~legacy] >= RELAUNCH_DATE).all()
    inclusive = np.isin(a.methodology, ["low_carbon_travel", "hydrogen_fcv"])
    assert (a.region[inclusive] == "beijing").all()
    assert (a.crediting_end > a.crediting_start).all()
    only = synthetic_projects(5, rng=1, codes=["mangrove"])
    assert (only.methodology == "mangrove").all()
    with pytest.raises(ValueError, match="weights"):
        synthetic_projects(5, rng=1, codes=["mangrove"], weights=[1.0, 2.0])
    assert len(synthetic_projects(0, rng=1)) == 0


# ------------------------------------------------------------------ issuance


def test_year_fraction_actual_actual() -> None:
    start = np.array(["2024-01-01", "2025-07-01", "2020-02-01"], dtype="datetime64[D]")
    end = np.array(["2025-01-01", "2026-01-01", "2023-02-01"], dtype="datetime64[D]")
    np.testing.assert_allclose(
        year_fraction(start, end), [1.0, 184 / 365, 335 / 366 + 2 + 31 / 365]
    )
    assert year_fraction(np.datetime64("2025-05-01"), np.datetime64("2025-01-01")) == 0.0


def test_full_year_issues_capacity_after_lag() -> None:
    out = issued_credits(make_projects(), "2025-01-01", "2026-01-01", rng=0)
    assert out.credits.shape == (1, 1)
    assert out.credits.dtype == np.int64
    assert out.credits[0, 0] == 10_000
    # 2026-01-01 + 180 days = 2026-06-30
    assert out.issue_date[0] == np.datetime64("2026-06-30")
    assert out.vintage == 2025
    np.testing.assert_allclose(out.expected, [10_000.0])


def test_partial_crediting_period_prorated_and_floored() -> None:
    # crediting starts 1 July 2025: 184 of 365 days of 2025 -> 10,000 * 184 / 365 = 5,041.1
    p = make_projects(crediting_start=["2025-07-01"])
    out = issued_credits(p, "2025-01-01", "2026-01-01", rng=0)
    assert out.credits[0, 0] == 5_041


def test_lag_pushes_issuance_into_next_year() -> None:
    # first half of 2025 (181 days), lag 200 days: 2025-07-01 + 200 d = 2026-01-17
    p = make_projects(issuance_lag=[200])
    out = issued_credits(p, "2025-01-01", "2025-07-01", rng=0)
    assert out.issue_date[0] == np.datetime64("2026-01-17")
    assert out.issue_date[0].astype("datetime64[Y]") == np.datetime64("2026", "Y")
    assert out.credits[0, 0] == 4_958  # floor(10,000 * 181 / 365) = floor(4,958.9)


def test_first_issuance_defers_2024_credits_to_march_2025() -> None:
    p = make_projects(
        ids=["early", "late"],
        methodology=["afforestation", "solar_thermal"],
        capacity=[3_650.0, 7_300.0],
        registration=["2024-01-22", "2024-02-01"],
        crediting_start=["2024-01-22", "2024-02-01"],
        crediting_end=["2054-01-22", "2034-02-01"],
        issuance_lag=[30, 420],
        sigma=[0.0, 0.0],
        covered_entity=[False, False],
        region=["beijing", "other"],
        marginal_cost=[30.0, 25.0],
    )
    undeferred = issued_credits(p, "2024-01-01", "2024-07-01", rng=0)
    assert undeferred.issue_date[0] == np.datetime64("2024-07-31")  # would be in 2024
    out = issued_credits(p, "2024-01-01", "2024-07-01", rng=0, first_issuance=FIRST_ISSUANCE)
    assert np.datetime64("2025-03-01") == FIRST_ISSUANCE
    # nothing issued before March 2025; a later date (lag 420 d -> 2025-08-25) is kept
    assert out.issue_date.tolist() == [np.datetime64("2025-03-01"), np.datetime64("2025-08-25")]
    # quantities are not changed by deferral: 3,650 * 161/366 and 7,300 * 151/366
    assert out.credits[0].tolist() == [1_605, 3_011]
    np.testing.assert_array_equal(out.credits, undeferred.credits)


def test_no_issuance_before_registration() -> None:
    p = make_projects(registration=["2027-03-01"])
    out = issued_credits(p, "2025-01-01", "2026-01-01", rng=0)
    assert out.issue_date[0] == np.datetime64("2027-03-01")


def test_zero_outside_crediting_period() -> None:
    p = make_projects(crediting_start=["2013-01-01"], crediting_end=["2017-03-14"])
    out = issued_credits(p, "2025-01-01", "2026-01-01", rng=0, replicates=5)
    assert out.credits.shape == (5, 1)
    assert (out.credits == 0).all()


def test_noise_is_mean_one_lognormal_and_reproducible() -> None:
    p = make_projects(sigma=[0.2])
    a = issued_credits(p, "2025-01-01", "2026-01-01", rng=42, replicates=20_000)
    b = issued_credits(p, "2025-01-01", "2026-01-01", rng=42, replicates=20_000)
    np.testing.assert_array_equal(a.credits, b.credits)
    assert a.credits.min() >= 0
    # standard error of the mean: 10,000 * 0.2 / sqrt(20,000) = 14 t
    assert abs(a.credits.mean() - 10_000) < 60
    logs = np.log(a.credits[:, 0])
    assert abs(logs.std() - 0.2) < 0.01


def test_per_replicate_streams_do_not_depend_on_batch_size() -> None:
    p = make_projects(sigma=[0.3])
    seeds = replicate_seeds(11, 3)
    batch = issued_credits(p, "2025-01-01", "2026-01-01", rng=seeds)
    assert batch.credits.shape == (3, 1)
    for k in range(3):
        alone = issued_credits(p, "2025-01-01", "2026-01-01", rng=[seeds[k]])
        np.testing.assert_array_equal(alone.credits[0], batch.credits[k])
    assert len(set(batch.credits[:, 0].tolist())) == 3
    with pytest.raises(ValueError, match="replicates must be 1 or len"):
        issued_credits(p, "2025-01-01", "2026-01-01", rng=seeds, replicates=2)


def test_issuance_argument_validation() -> None:
    p = make_projects()
    with pytest.raises(ValueError, match="period_end must be after period_start"):
        issued_credits(p, "2025-01-01", "2025-01-01", rng=0)
    with pytest.raises(ValueError, match="replicates must be >= 1"):
        issued_credits(p, "2025-01-01", "2026-01-01", rng=0, replicates=0)
    with pytest.raises(TypeError, match="period_start must be a date"):
        issued_credits(p, 2025, "2026-01-01", rng=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="projects must be OffsetProjects"):
        issued_credits("x", "2025-01-01", "2026-01-01", rng=0)  # type: ignore[arg-type]


# ------------------------------------------------------------------ eligibility


@pytest.fixture
def portfolio() -> OffsetProjects:
    return OffsetProjects(
        ids=["new", "legacy", "covered", "unregistered", "inclusive"],
        methodology=["offshore_wind", "legacy", "solar_thermal", "mangrove", "hydrogen_fcv"],
        capacity=[1.0] * 5,
        registration=["2024-03-01", "2015-01-01", "2024-03-01", "2025-05-01", "2024-05-01"],
        crediting_start=["2024-03-01", "2015-01-01", "2024-03-01", "2025-05-01", "2024-05-01"],
        crediting_end=["2034-03-01", "2022-01-01", "2034-03-01", "2055-05-01", "2029-05-01"],
        issuance_lag=[180] * 5,
        sigma=[0.0] * 5,
        covered_entity=[False, False, True, False, False],
        region=["other", "other", "other", "beijing", "beijing"],
        marginal_cost=[1.0] * 5,
    )


def test_eligibility_before_2025_accepts_legacy(portfolio: OffsetProjects) -> None:
    got = eligible(portfolio, as_of="2024-12-31")
    assert got.tolist() == [True, True, False, False, False]


def test_eligibility_from_2025_requires_post_relaunch_registration(
    portfolio: OffsetProjects,
) -> None:
    got = eligible(portfolio, as_of="2025-12-31")
    assert got.tolist() == [True, False, False, True, False]
    # explicit override of the automatic rule
    got = eligible(portfolio, as_of="2025-12-31", require_post_relaunch=False)
    assert got.tolist() == [True, True, False, True, False]


def test_eligibility_covered_entity_and_registration_date(portfolio: OffsetProjects) -> None:
    assert eligible(portfolio, as_of="2025-03-01", exclude_covered=False).tolist() == [
        True,
        False,
        True,
        False,  # registered 1 May 2025, after as_of
        False,
    ]


def test_eligibility_beijing_accepts_carbon_inclusive(portfolio: OffsetProjects) -> None:
    got = eligible(portfolio, as_of="2025-12-31", scheme="beijing")
    assert got.tolist() == [True, False, False, True, True]


def test_eligibility_vintage_range(portfolio: OffsetProjects) -> None:
    got = eligible(portfolio, as_of="2025-12-31", vintage_range=(2020, 2023))
    assert got.tolist() == [False] * 5
    got = eligible(
        portfolio, as_of="2025-12-31", vintage_range=(2021, 2024), require_post_relaunch=False
    )
    # legacy crediting 2015-2021 overlaps 2021; "unregistered" starts 2025
    assert got.tolist() == [True, True, False, False, False]


def test_eligibility_argument_errors(portfolio: OffsetProjects) -> None:
    with pytest.raises(ValueError, match="scheme must be one of"):
        eligible(portfolio, as_of="2025-01-01", scheme="eu")
    with pytest.raises(ValueError, match="vintage_range"):
        eligible(portfolio, as_of="2025-01-01", vintage_range=(2025, 2020))
    with pytest.raises(ValueError, match="as_of must be a date"):
        eligible(portfolio, as_of="someday")


# ------------------------------------------------------------------ caps


def test_usage_cap_five_percent_floored() -> None:
    got = usage_cap([[1_000, 1_019, 0, 20, 39]])
    assert got.dtype == np.int64
    assert got.tolist() == [[50, 50, 0, 1, 1]]
    # 0.29 * 100 is 28.999999999999996 in binary; the cap is still 29 t
    assert usage_cap([100], share=0.29).tolist() == [29]
    assert usage_cap(8_194_000_000.0).item() == 409_700_000
    with pytest.raises(ValueError, match="share must lie in"):
        usage_cap([100], share=1.5)
    with pytest.raises(ValueError, match=r"obligation must be >= 0"):
        usage_cap([-1.0])


def test_beijing_cap_half_local() -> None:
    cap = beijing_usage_cap([100_000, 10_010, 1_010, 0])
    assert cap.total.tolist() == [5_000, 500, 50, 0]
    assert cap.nonlocal_max.tolist() == [2_500, 250, 25, 0]  # 2.5% of allocation


def test_beijing_offset_use_local_first() -> None:
    cap = BeijingOffsetCap(
        total=np.array([5_000, 5_000, 5_000]), nonlocal_max=np.array([2_500] * 3)
    )
    local, nonlocal_ = beijing_offset_use(
        cap, local_available=[1_000, 4_000, 9_000], nonlocal_available=[10_000, 10_000, 10_000]
    )
    assert local.tolist() == [1_000, 4_000, 5_000]
    assert nonlocal_.tolist() == [2_500, 1_000, 0]
    # the remaining obligation limits the total
    local, nonlocal_ = beijing_offset_use(cap, [1_000] * 3, [10_000] * 3, need=[500, 2_000, 0])
    assert local.tolist() == [500, 1_000, 0]
    assert nonlocal_.tolist() == [0, 1_000, 0]
    with pytest.raises(TypeError, match="cap must be BeijingOffsetCap"):
        beijing_offset_use((1, 2), [1], [1])  # type: ignore[arg-type]


def test_legacy_stock_exact_total() -> None:
    assert legacy_ccer_stock([1, 1, 1], total=10).tolist() == [4, 3, 3]
    stock = legacy_ccer_stock([3.0, 1.0, 0.0, 2.0])
    assert stock.sum() == LEGACY_CCER_FIRST_CYCLE_T == 32_700_000
    assert stock.tolist() == [16_350_000, 5_450_000, 0, 10_900_000]
    batch = legacy_ccer_stock([[1, 2], [2, 1]], total=7)
    assert batch.tolist() == [[2, 5], [5, 2]]
    with pytest.raises(ValueError, match="positive sum"):
        legacy_ccer_stock([0, 0])
    with pytest.raises(ValueError, match="total must be a non-negative int"):
        legacy_ccer_stock([1, 1], total=-5)


def _offset_ledger(stock: list[int]) -> Any:
    from carbonsim.market.ledger import Ledger

    ledger = Ledger(len(stock), ["a", "b", "c"], [2021, 2022], offset_classes=("ccer", "ccer_new"))
    ledger.issue_offsets("ccer", np.asarray(stock, np.int64))
    return ledger


def test_offset_classes_clear_bids_under_the_cap_against_the_lots() -> None:
    ledger = _offset_ledger([1_000, 0])
    # bidders: replicate 0 units a, b, c and replicate 1 unit a (no stock there)
    flat = np.array([0, 1, 2, 3])
    cap = np.array([400.0, 300.0, 500.0, 100.0])
    surrendered = np.array([0, 100, 0, 0])
    bid_price = np.array([60.0, 55.0, 10.0, 80.0])  # unit c bids below every offer
    ask_price = np.full((2, OFFSET_LOTS), 20.0)
    levels = np.rint(np.array([[60.0, 60.0]]) / 0.01) - 1.0
    volume, turnover = clear_offset_classes(
        ledger, ["ccer"], [0], flat, cap, surrendered, bid_price, ask_price,
        tick=0.01, levels=levels,
    )  # fmt: skip
    got = ledger.offsets[:, :, 0]
    # demand 400 + 200 (cap less surrendered) = 600 of the 1,000 offered: all filled
    assert got[0].tolist() == [400, 200, 0]
    assert got[1].tolist() == [0, 0, 0]  # no offers in replicate 1
    assert volume.tolist() == [600.0, 0.0]
    price = turnover[0] / volume[0]
    assert 20.0 <= price <= 55.0
    assert ledger.project_offsets[0, 0] == 400
    np.testing.assert_allclose(ledger.cash[0].sum() + ledger.project_cash[0], 0.0, atol=1e-6)
    ledger.check()


def test_offset_classes_ration_the_lots_pro_rata_when_demand_exceeds_them() -> None:
    ledger = _offset_ledger([300])
    flat = np.array([0, 1])
    cap = np.array([400.0, 200.0])
    bid_price = np.array([50.0, 50.0])
    ask_price = np.full((1, OFFSET_LOTS), 20.0)
    levels = np.rint(np.array([[50.0]]) / 0.01) - 1.0
    volume, _ = clear_offset_classes(
        ledger, ["ccer"], [0], flat, cap, np.zeros(2, np.int64), bid_price, ask_price,
        tick=0.01, levels=levels,
    )  # fmt: skip
    assert volume.tolist() == [300.0]
    assert ledger.offsets[0, :2, 0].tolist() == [200, 100]  # 2:1, whole credits
    assert ledger.project_offsets[0, 0] == 0


def test_offset_bids_cut_off_changes_nothing() -> None:
    # the demand cut-off leaves out bids that could neither fill nor move the price
    from carbonsim.clearing import call_auction_batch

    rng = np.random.default_rng(5)
    bid_market = np.repeat(np.arange(3), 40)
    bid_price = 50.0 * np.exp(0.05 * rng.standard_normal(120))
    bid_qty = rng.integers(1, 500, 120).astype(float)
    ask_market = np.repeat(np.arange(3), OFFSET_LOTS)
    ask_price = 20.0 * np.exp(0.3 * rng.standard_normal(3 * OFFSET_LOTS))
    ask_qty = np.full(3 * OFFSET_LOTS, 100.0)
    levels = np.rint(50.0 * np.exp(0.05 * OFFSET_CUTOFF_Z)[:, None] / 0.01) - 1.0
    levels = np.repeat(levels, 3, axis=1)
    price, volume, fill = clear_offset_bids(
        bid_market, bid_price, bid_qty, ask_market, ask_price, ask_qty,
        n_markets=3, tick=0.01, levels=levels,
    )  # fmt: skip
    full = call_auction_batch(
        np.concatenate([bid_market, ask_market]),
        np.concatenate([np.ones(120, bool), np.zeros(3 * OFFSET_LOTS, bool)]),
        np.concatenate([bid_price, ask_price]),
        np.concatenate([bid_qty, ask_qty]),
        n_markets=3,
        tick=0.01,
    )
    np.testing.assert_array_equal(price, full.price)
    np.testing.assert_array_equal(volume, full.volume)
    np.testing.assert_array_equal(fill, full.fill[:120])
    assert volume.sum() > 0
