"""The memory guard: the estimate, the available-memory probe and the refusal message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from carbonsim.engine import memory
from carbonsim.engine.memory import (
    RunSize,
    available_memory,
    check_memory,
    estimate_memory,
    measure_memory,
    run_size,
)
from carbonsim.scenario import load_scenario, with_overrides
from carbonsim.scenario.schema import Scenario

MiB = 1024**2


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load_scenario("china-national-tiny")


def test_run_size_of_the_tiny_scenario(tiny: Scenario) -> None:
    # 60 units; 114 XSHG sessions from 16 Jul to 31 Dec 2021; vintages 2019..2021; 1 period
    assert run_size(tiny, 3) == RunSize(3, 60, 114, 3, 1)


def test_run_size_takes_the_preset_count_without_n_units() -> None:
    national = load_scenario("china-national")
    assert national.population.n_units is None
    size = run_size(national, 1)
    assert size.units == 2257  # COVERAGE["china_national_2021_2022"]
    assert size.vintages == 2023 - 2019 + 2
    assert size.periods == len(national.periods)


def test_unknown_preset_lists_the_presets(tiny: Scenario) -> None:
    bad = with_overrides(tiny, {"population.preset": "atlantis", "population.n_units": None})
    with pytest.raises(ValueError, match=r"'atlantis'.*china_national_2021_2022"):
        run_size(bad, 1)


def test_estimate_by_hand(tiny: Scenario) -> None:
    r, n, t, v, p = 2, 60, 114, 3, 1
    expected = (
        256 * 1024  # overhead
        + 2.5 * r * t * 16 * 8  # recorded market columns
        + 6.0 * r * n * p * 15 * 8  # units table rows
        + 3.5 * r * n * 8  # (R, N) float64 temporaries
        + 8.0 * r * n * v * 8  # (R, N, V) int64 arrays
        + 96 * 8 * n  # units table
    )
    assert estimate_memory(tiny, 2) == int(expected)


def test_estimate_is_affine_in_replicates_and_grows_with_every_size(tiny: Scenario) -> None:
    e1, e2, e3 = (estimate_memory(tiny, r) for r in (1, 2, 3))
    assert e3 - e2 == pytest.approx(e2 - e1, abs=1)
    assert e2 > e1
    bigger = {
        "population.n_units": 120,
        "time.end": "2022-06-30",
        "periods.0.emission_years": [2018, 2019, 2020],
        "offsets.projects": 1000,
    }
    for path, value in bigger.items():
        assert estimate_memory(with_overrides(tiny, {path: value}), 2) > e2, path


@pytest.mark.parametrize("bad", [0, -1])
def test_replicates_must_be_positive(tiny: Scenario, bad: int) -> None:
    with pytest.raises(ValueError, match="replicates must be >= 1"):
        estimate_memory(tiny, bad)


@pytest.mark.parametrize("bad", [1.5, True, "3"])
def test_replicates_must_be_an_int(tiny: Scenario, bad: object) -> None:
    with pytest.raises(TypeError, match="replicates must be an int"):
        estimate_memory(tiny, bad)  # type: ignore[arg-type]


def test_scenario_must_be_a_scenario() -> None:
    with pytest.raises(TypeError, match="scenario must be a Scenario"):
        estimate_memory("china-national-tiny", 1)  # type: ignore[arg-type]


def test_check_passes_and_returns_the_estimate(
    tiny: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 64 * 1024 * MiB)
    assert check_memory(tiny, 10) == estimate_memory(tiny, 10)


def test_check_refuses_beyond_80_percent_of_available(
    tiny: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    need = estimate_memory(tiny, 1000)
    # available such that the estimate lies between 80 % and 100 % of it
    monkeypatch.setattr(memory, "available_memory", lambda: int(need / 0.9))
    with pytest.raises(MemoryError) as info:
        check_memory(tiny, 1000)
    msg = str(info.value)
    assert "china-national-tiny with 1000 replicates" in msg
    assert f"{need / MiB:.1f} MiB" in msg  # the estimate
    assert f"{need / 0.9 / MiB:.1f} MiB available" in msg  # what is available
    assert "80%" in msg
    assert "fewer replicates" in msg
    assert "chunk" in msg
    assert "first_replicate" in msg


def test_the_advised_chunk_fits_and_one_more_does_not(tiny: Scenario) -> None:
    limit = 20 * MiB
    with pytest.raises(MemoryError, match=r"at most (\d+) replicate") as info:
        check_memory(tiny, 5000, limit=limit)
    fits = int(str(info.value).split("at most ")[1].split(" ")[0])
    assert fits > 1
    assert check_memory(tiny, fits, limit=limit) <= limit
    with pytest.raises(MemoryError):
        check_memory(tiny, fits + 1, limit=limit)


def test_nothing_fits(tiny: Scenario) -> None:
    with pytest.raises(MemoryError, match="even one replicate does not fit"):
        check_memory(tiny, 1, limit=1000)


def test_unknown_available_memory_is_not_checked(
    tiny: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    assert check_memory(tiny, 10**6) == estimate_memory(tiny, 10**6)


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-5, ValueError), (1.5, TypeError)])
def test_limit_must_be_positive_bytes(tiny: Scenario, bad: object, error: type) -> None:
    with pytest.raises(error, match="limit"):
        check_memory(tiny, 1, limit=bad)  # type: ignore[arg-type]


def _probe_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, meminfo: str | None, cg: tuple[str, str] | None
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # as if psutil were not installed
    info = tmp_path / "meminfo"
    if meminfo is not None:
        info.write_text(meminfo)
    monkeypatch.setattr(memory, "_MEMINFO", info)
    cg_max, cg_cur = tmp_path / "memory.max", tmp_path / "memory.current"
    if cg is not None:
        cg_max.write_text(cg[0])
        cg_cur.write_text(cg[1])
    monkeypatch.setattr(memory, "_CGROUP_MAX", cg_max)
    monkeypatch.setattr(memory, "_CGROUP_CURRENT", cg_cur)


MEMINFO = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n"


def test_available_memory_from_meminfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _probe_files(monkeypatch, tmp_path, MEMINFO, None)
    assert available_memory() == 8_000_000 * 1024


def test_available_memory_bounded_by_a_cgroup_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _probe_files(monkeypatch, tmp_path, MEMINFO, ("2000000000\n", "500000000\n"))
    assert available_memory() == 1_500_000_000
    _probe_files(monkeypatch, tmp_path, MEMINFO, ("max\n", "500000000\n"))
    assert available_memory() == 8_000_000 * 1024
    _probe_files(monkeypatch, tmp_path, None, ("2000000000\n", "500000000\n"))
    assert available_memory() == 1_500_000_000


def test_available_memory_unknown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _probe_files(monkeypatch, tmp_path, None, None)
    assert available_memory() is None
    _probe_files(monkeypatch, tmp_path, "MemTotal: 1 kB\n", None)
    assert available_memory() is None


def test_available_memory_uses_psutil_when_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class FakePsutil:
        @staticmethod
        def virtual_memory() -> object:
            return type("VM", (), {"available": 123_456_789})()

    _probe_files(monkeypatch, tmp_path, MEMINFO, None)
    monkeypatch.setitem(sys.modules, "psutil", FakePsutil)
    assert available_memory() == 123_456_789


def test_default_limit_uses_the_real_probe(tiny: Scenario) -> None:
    free = available_memory()
    if free is None:
        pytest.skip("this platform reports no available memory")
    assert free > 0
    assert check_memory(tiny, 1) == estimate_memory(tiny, 1)  # a tiny run always fits


def test_estimate_within_a_factor_two_of_a_measured_run(tiny: Scenario) -> None:
    """The calibration claim, re-measured: a real run in a subprocess (tracemalloc)."""
    sc = with_overrides(tiny, {"population.n_units": 1500, "population.total_emissions": 3.0e9})
    measured = measure_memory(sc, 8)
    estimate = estimate_memory(sc, 8)
    assert measured > 1 * MiB
    assert 0.5 <= estimate / measured <= 2.0, (estimate, measured)


# ------------------------------------------------------- attacks that got through (#21, 4)


def test_offset_projects_count_in_the_estimate(tiny: Scenario) -> None:
    # the guard ignored offsets.projects: 1e8 projects reached 17.7 GB in a minute
    with_projects = with_overrides(tiny, {"offsets.projects": 50_000})
    assert run_size(with_projects, 3).projects == 50_000
    extra = estimate_memory(with_projects, 3) - estimate_memory(tiny, 3)
    expected = memory.PROJECT_BYTES * 50_000 + memory.ISSUANCE_ARRAYS * 3 * 50_000 * 8
    assert extra == pytest.approx(expected, abs=1)


def test_a_huge_project_count_is_refused_before_any_work(
    tiny: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    import carbonsim as cs
    from carbonsim.engine import offset_session

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the projects were drawn before the memory check")

    monkeypatch.setattr(offset_session, "synthetic_projects", never)
    monkeypatch.setattr(memory, "available_memory", lambda: 16 * 1024**3)
    attack = with_overrides(tiny, {"offsets.projects": 10**8})
    with pytest.raises(MemoryError) as info:
        cs.simulate(attack, seed=0)
    msg = str(info.value)
    assert "100000000 offset projects" in msg
    assert "even one replicate does not fit" in msg
    assert "fewer offset projects (offsets.projects)" in msg


@pytest.mark.slow
def test_estimate_with_projects_within_a_factor_two_of_a_measured_run() -> None:
    sc = with_overrides(load_scenario("ccer-2024-tiny"), {"offsets.projects": 40_000})
    measured = measure_memory(sc, 4)
    estimate = estimate_memory(sc, 4)
    assert measured > 10 * MiB
    assert 0.5 <= estimate / measured <= 2.0, (estimate, measured)
