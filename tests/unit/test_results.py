"""Result tables: indexes, summary arithmetic, atomic export with provenance."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carbonsim._io import atomic_path, atomic_write_text
from carbonsim.results import MARKET_COLUMNS, UNIT_COLUMNS, Result


def _result(n_rep: int = 2) -> Result:
    dates = pd.to_datetime(["2023-12-28", "2023-12-29", "2024-01-02"])
    idx = pd.MultiIndex.from_product([range(n_rep), dates], names=["replicate", "date"])
    volume = np.tile([100.0, 200.0, 300.0], n_rep)
    price = np.tile([50.0, 60.0, 70.0], n_rep)
    market = pd.DataFrame({c: np.zeros(len(idx)) for c in MARKET_COLUMNS}, index=idx)
    market["volume"] = volume
    market["price"] = price
    market["vwap"] = price
    market["turnover"] = volume * price
    uidx = pd.MultiIndex.from_product(
        [range(n_rep), ["u0", "u1"], [2023]], names=["replicate", "unit", "year"]
    )
    units = pd.DataFrame({c: np.zeros(len(uidx)) for c in UNIT_COLUMNS}, index=uidx)
    units["sector"] = "power"
    units["shortfall"] = np.tile([0.0, 10.0], n_rep)
    units["abated"] = 5.0
    units["penalty"] = np.tile([0.0, 1000.0], n_rep)
    units["offsets_surrendered"] = 2.0
    return Result(market=market, units=units, provenance={"seed": 0, "scenario": "test"})


def test_indexes_are_named_and_attrs_carry_units() -> None:
    res = _result()
    assert res.market.index.names == ["replicate", "date"]
    assert res.units.index.names == ["replicate", "unit", "year"]
    assert res.market.attrs["units"]["price"] == "currency/t"
    assert res.market.attrs["provenance"]["seed"] == 0
    assert res.n_replicates == 2


def test_wrong_index_rejected() -> None:
    res = _result()
    with pytest.raises(ValueError, match=r"market must be indexed by \(replicate, date\)"):
        Result(market=res.market.reset_index(), units=res.units)


def test_summary_by_replicate_arithmetic() -> None:
    per = _result().summary_by_replicate()
    row = per.loc[0]
    assert row["cumulative_volume"] == 600.0
    assert row["cumulative_turnover"] == 100 * 50 + 200 * 60 + 300 * 70
    assert row["average_price"] == pytest.approx(38_000 / 600)
    assert row["final_price"] == 70.0
    assert row["compliance_rate"] == 0.5
    assert row["abatement"] == 10.0
    assert row["penalties"] == 1000.0
    assert row["offsets_used"] == 4.0


def test_summary_window() -> None:
    per = _result().summary_by_replicate(until="2023-12-31")
    assert per.loc[0, "cumulative_volume"] == 300.0
    assert per.loc[0, "trading_days"] == 2.0


def test_summary_across_replicates() -> None:
    table = _result(3).summary()
    assert table.index.name == "metric"
    assert table.loc["cumulative_volume", "mean"] == 600.0
    assert table.loc["cumulative_volume", "unit"] == "t"
    assert list(table.columns) == ["unit", "mean", "p05", "p50", "p95"]


def test_csv_export_with_provenance(tmp_path: Path) -> None:
    files = _result().to_csv(tmp_path / "out")
    names = sorted(p.name for p in files)
    assert names == ["market.csv", "metadata.json", "units.csv"]
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["provenance"]["scenario"] == "test"
    assert meta["columns"]["market"]["price"]["unit"] == "currency/t"
    back = pd.read_csv(tmp_path / "out" / "market.csv", index_col=[0, 1])
    assert back["volume"].sum() == 1200.0


def test_parquet_export_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    _result().to_parquet(tmp_path)
    table = pq.read_table(tmp_path / "market.parquet")
    meta = json.loads(table.schema.metadata[b"carbonsim"])
    assert meta["provenance"]["seed"] == 0
    assert table.to_pandas()["volume"].sum() == 1200.0


def test_atomic_write_failure_keeps_earlier_file(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")

    def interrupted_write() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


# ---------------------------------------------------------------------------- one unit (#21)
def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _other() -> Result:
    """Another run: three replicates and its own provenance."""
    return dataclasses.replace(_result(3), provenance={"seed": 7, "scenario": "other"})


def test_rerun_without_trades_leaves_no_stale_trades_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    trades = pd.DataFrame({"price": [50.0], "qty": [10.0]})
    dataclasses.replace(_result(), trades=trades).to_csv(out)
    assert _names(out) == ["market.csv", "metadata.json", "trades.csv", "units.csv"]
    _result().to_csv(out)
    assert _names(out) == ["market.csv", "metadata.json", "units.csv"]
    assert json.loads((out / "metadata.json").read_text())["files"] == ["market.csv", "units.csv"]
    assert _names(tmp_path) == ["out"]  # no temporary file or directory left behind


def test_two_exports_into_one_directory_never_mix(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def other_run_finishes_meanwhile(tmp: Path) -> list[Path]:
        assert _other().to_csv(out)  # lands while the first export is half written
        return []

    _result().export(out, extra=other_run_finishes_meanwhile)
    # the export that finished last is there, whole: its tables with its own metadata
    meta = json.loads((out / "metadata.json").read_text())
    market = pd.read_csv(out / "market.csv", index_col=[0, 1])
    assert meta["provenance"] == {"seed": 0, "scenario": "test"}
    assert market.index.get_level_values(0).nunique() == 2
    assert _names(out) == ["market.csv", "metadata.json", "units.csv"]
    assert _names(tmp_path) == ["out"]


def test_failed_export_keeps_the_earlier_export_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _result().to_csv(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(tmp: Path) -> list[Path]:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _other().export(out, extra=crash)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _names(tmp_path) == ["out"]


def test_directory_with_files_carbonsim_did_not_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(
        FileExistsError, match=r"did not write \(notes\.txt; it has no metadata\.json listing"
    ):
        _result().to_csv(mine)
    assert _names(mine) == ["notes.txt"]
    out = tmp_path / "out"
    _result().to_csv(out)
    (out / "extra.csv").write_text("added by hand")
    with pytest.raises(FileExistsError, match=r"extra\.csv; they are not listed"):
        _other().to_csv(out)
    assert (out / "extra.csv").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        _result().to_csv(tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(FileExistsError, match="it is the current directory or holds it"):
        _result().to_csv(".")  # an empty directory, but the one we are in
    monkeypatch.chdir(tmp_path)
    _result().to_csv(empty)  # an empty directory is fine
    assert _names(tmp_path) == ["empty", "file", "mine", "out"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_exported_files_follow_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        _result().to_csv(tmp_path / "csv")
        if importlib.util.find_spec("pyarrow") is not None:
            _result().to_parquet(tmp_path / "parquet")
        atomic_write_text(tmp_path / "one.txt", "x")
        kept = tmp_path / "kept.txt"
        kept.write_text("x")
        kept.chmod(0o640)
        atomic_write_text(kept, "y")  # a replaced file keeps its mode
    finally:
        os.umask(old)
    for directory in [p for p in tmp_path.iterdir() if p.is_dir()]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o777 & ~mask
        for path in directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path
    assert stat.S_IMODE((tmp_path / "one.txt").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640


def test_leftovers_of_a_dead_process_are_removed_by_the_next_export(tmp_path: Path) -> None:
    from carbonsim import _io

    out = tmp_path / "out"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = tmp_path / f"{_io._prefix('out')}{pid}-abcd.tmp"
    stale.mkdir()
    (stale / "market.csv").write_text("half")
    alive = tmp_path / f"{_io._prefix('out')}{os.getppid()}-abcd.tmp"  # a live process's
    alive.mkdir()
    _result().to_csv(out)
    assert _names(tmp_path) == sorted(["out", alive.name])
    # the temporary file of one file written atomically (a sweep's set file), killed
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / f"{_io._prefix('set-00000.summary.parquet')}{pid}-x1y2.tmp").write_text("half")
    atomic_write_text(sweep / "sweep.json", "{}")
    assert _names(sweep) == ["sweep.json"]
