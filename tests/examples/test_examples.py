"""Every example script runs with ``--tiny`` and prints its key lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Script -> regular expressions its ``--tiny`` output must match (one per line of output).
EXPECTED: dict[str, list[str]] = {
    "national_baseline.py": [
        r"^scenario china-national-tiny: 60 units, 2021-07-16 to 2021-12-31, seed 0, "
        r"1 replicate\(s\)$",
        r"^\s+unit\s+value$",
        r"^cumulative_volume\s+t\s+[\d,]+\.\d{3}$",
        r"^final_price\s+currency/t\s+\d+\.\d{3}$",
        r"^compliance_rate\s+share\s+0\.\d{3}$",
    ],
    "tighter_benchmarks.py": [
        r"^scenario china-national-tiny, seed 0: override "
        r"periods\.\*\.allocation_params\.benchmark_scale$",
        r"^benchmark_scale\s*$",
        r"^1\.00\s+[\d,.]+\s+[\d,.]+\s+[\d,.]+\s+[\d.]+\s+[\d,.]+\s+0\.00$",
        r"^0\.99\s+",
        r"^0\.98\s+",
    ],
    "ccer_cap.py": [
        r"^scenario china-national-tiny: periods\.\*\.offset_limit_share in \[0\.0, 0\.05\], "
        r"2 replicates, seed 0$",
        r"^metric\s+unit\s+cap 0%\s+cap 5%$",
        r"^offsets_used\s+t\s+0 \[0, 0\]\s+[\d,]+ \[[\d,]+, [\d,]+\]$",
        r"^average_price\s+currency/t\s+[\d.]+ \[[\d.]+, [\d.]+\]\s+[\d.]+ \[[\d.]+, [\d.]+\]$",
    ],
    "custom_strategy.py": [
        r"^check_strategy\(ValueTrader\(\)\): passed$",
        r"^registered strategies: .*\bvalue\b",
        r"^strategies of the variant: \[.*'value'\]$",
        r"^baseline\s+[\d.]+\s+[\d.]+\s+[\d,.]+\s+[\d.]+$",
        r"^\+ value\s+[\d.]+\s+[\d.]+\s+[\d,.]+\s+[\d.]+$",
    ],
    "beijing_band.py": [
        r"^scenario beijing-pilot-tiny: band 20-150 yuan/t, trigger after 10 sessions, seed 0$",
        r"^year\s*$",
        r"^2014\s+[\d.]+\s+[\d.]+\s+[\d,.]+\s+[\d,.]+\s+-?[\d,.]+$",
        r"^auction sessions: \d+, allowances sold: [\d,]+ t$",
    ],
    "eu_msr.py": [
        r"^scenario eu-ets-tiny: seed 0, currency EUR$",
        r"^2022\s+[\d,.]+\s+[\d,.]+\s+[\d,.]+\s+[\d.]+\s+[\d.]+$",
        r"^fewer allowances sold at auction with the reserve: -?[\d,]+ t$",
    ],
    "clearing_benchmark.py": [
        r"^\s+orders\s+call_auction ms\s+argsort ms\s+ratio\s+price\s+volume t$",
        r"^\s+10,000\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d,]+$",
        r"^\s+30,000\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d,]+$",
    ],
}


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--tiny"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=EXAMPLES.parent,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for pattern in EXPECTED[script]:
        assert re.search(pattern, proc.stdout, re.MULTILINE), (pattern, proc.stdout)
