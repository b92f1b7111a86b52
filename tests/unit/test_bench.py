"""``carbonsim bench``: the table is produced; no timing is asserted."""

from __future__ import annotations

import math

import pytest

from carbonsim.bench import BenchRow, format_rows
from carbonsim.cli import EXIT_OK, main


def test_bench_quick_prints_every_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("call_auction,", "call_auction_batch,", "match_stream,", "simulate "):
        assert name in out
    assert "one np.argsort" in out
    assert "python -m benchmarks" in out
    assert "numba" not in out  # one engine


def test_rows_and_ratio() -> None:
    row = BenchRow("x", 2.0, "ref", 4.0)
    assert row.ratio == 0.5
    assert math.isnan(BenchRow("x", 1.0, "ref", 0.0).ratio)
    table = format_rows([row])
    assert table.splitlines()[0].split() == [
        "measurement",
        "median",
        "s",
        "reference",
        "reference",
        "s",
        "ratio",
    ]
    assert "0.50" in table
