"""Result tables: indexes, summary arithmetic, atomic export with provenance."""

from __future__ import annotations

import json
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
