"""Determinism: pinned results of the tiny national scenario, repeatability, batch invariance.

The pins below are the SHA-256 digests of a canonical byte serialisation of the ``market``
and ``units`` tables (:func:`carbonsim.testing.result_digest`: every float bit, no
rounding, independent of the pandas version and byte order) of ``china-national-tiny`` run
with seed 0, and a few totals rounded to six significant digits.

When the model changes ON PURPOSE, regenerate them and commit them with the change::

    python -m carbonsim.testing.regenerate --update tests/regression/test_determinism.py

If only the digests fail and the rounded summary still matches, the change is in the last
bits of some floats (a reordered sum, another numpy/BLAS or CPU); if nothing was meant to
change, find the commit with ``git bisect`` rather than regenerating.

The digests are pinned per family of numpy's float64 ``exp``/``log`` kernels
(:func:`~carbonsim.testing.regenerate.float_kernels`: numpy's AVX-512 code or the C
library's), which give different last bits of some lognormal draws; ``--update`` keeps only
this machine's family, ``--add`` pins this family beside the others. A run whose digests
equal any family's pins passes; on a machine of a family without pins whose digests match
none the digest tests skip and the rounded summary still runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carbonsim.engine.simulation import simulate
from carbonsim.results import Result
from carbonsim.scenario import load_scenario
from carbonsim.testing import assert_results_equal, result_digest
from carbonsim.testing.regenerate import (
    PINNED_SCENARIO,
    PINNED_SEED,
    float_kernels,
    pinned_block,
    pinned_result,
    pinned_summary,
)

# Regenerate: python -m carbonsim.testing.regenerate --update <this file> (see the docstring)
# BEGIN PINNED
PINNED_DIGESTS = {
    "avx512f": {
        "market": "5990d7cc45e7ae6cafb75ac1d9b76d6817eec170b38d12778c2a56d31d04d25c",
        "units": "b500140b15dc126408fc7481a6a84bf1a1fa2c70378cbaa2fedaaabdeea3add8",
    },
}
PINNED_SUMMARY = {
    "volume": 3025660.0,
    "turnover": 78167000.0,
    "mean_price": 26.9891,
    "last_price": 16.99,
    "allocated": 238280000.0,
    "emissions": 237137000.0,
    "abated": 4216290.0,
    "surrendered": 236326000.0,
    "penalty": 200000.0,
}
# END PINNED

HOW_TO_UPDATE = (
    "If the model changed on purpose, regenerate the pins and commit them with the change:\n"
    "    python -m carbonsim.testing.regenerate --update tests/regression/test_determinism.py\n"
    "If nothing was meant to change, find the commit that changed the results (git bisect)."
)


def _pins(digests: dict[str, str]) -> dict[str, str]:
    """The pinned digests to compare ``digests`` with: the pins of any kind they equal (the
    kind is told by numpy's CPU features, which may not be all that decides the last bits),
    else this machine's kind's; skips where that kind has none."""
    for pins in PINNED_DIGESTS.values():
        if digests == pins:
            return pins
    family = float_kernels()
    if family not in PINNED_DIGESTS:
        pytest.skip(
            f"no digests pinned for numpy's {family!r} float64 kernels (pinned: "
            f"{', '.join(sorted(PINNED_DIGESTS))}); pin them with "
            "python -m carbonsim.testing.regenerate --add tests/regression/test_determinism.py"
        )
    return PINNED_DIGESTS[family]


@pytest.fixture(scope="module")
def pinned() -> Result:
    return pinned_result()


@pytest.fixture(scope="module")
def batch() -> Result:
    return simulate(PINNED_SCENARIO, seed=PINNED_SEED, replicates=3)


def test_pinned_digests(pinned: Result) -> None:
    digests = result_digest(pinned)
    pins = _pins(digests)
    if digests != pins:
        changed = [k for k in pins if digests.get(k) != pins[k]]
        summary_same = pinned_summary(pinned) == PINNED_SUMMARY
        pytest.fail(
            f"the results of {PINNED_SCENARIO} (seed {PINNED_SEED}) changed in the "
            f"{' and '.join(changed)} table(s); the rounded summary "
            + (
                "still matches, so only the last bits of some floats differ.\n"
                if summary_same
                else "differs too (see test_pinned_summary).\n"
            )
            + HOW_TO_UPDATE
            + "\nThe new pins of this machine would be:\n"
            + pinned_block(pinned)
        )


def test_pinned_summary(pinned: Result) -> None:
    summary = pinned_summary(pinned)
    assert summary.keys() == PINNED_SUMMARY.keys()
    wrong = {
        k: (summary[k], PINNED_SUMMARY[k])
        for k in summary
        if not np.isclose(summary[k], PINNED_SUMMARY[k], rtol=2e-6, atol=0.0)
    }
    assert not wrong, (
        f"totals of {PINNED_SCENARIO} (seed {PINNED_SEED}) changed, (now, pinned): {wrong}\n"
        + HOW_TO_UPDATE
    )


def test_pinned_run_is_nontrivial(pinned: Result) -> None:
    """The pinned run exercises trading, abatement and compliance (a pin of an empty run
    would catch little)."""
    s = pinned_summary(pinned)
    assert s["volume"] > 0
    assert s["abated"] > 0
    assert s["surrendered"] > 0
    assert pinned.market["price"].nunique() > 10


def test_same_seed_twice_gives_identical_digests(pinned: Result) -> None:
    again = simulate(load_scenario(PINNED_SCENARIO), seed=PINNED_SEED)
    assert result_digest(again) == result_digest(pinned)
    assert_results_equal(again, pinned)


def test_another_seed_gives_other_digests(pinned: Result) -> None:
    other = simulate(PINNED_SCENARIO, seed=PINNED_SEED + 1)
    digests = result_digest(other)
    assert digests["market"] != result_digest(pinned)["market"]
    assert digests["units"] != result_digest(pinned)["units"]


def test_batch_of_three_equals_three_single_runs(pinned: Result, batch: Result) -> None:
    singles = [pinned] + [
        simulate(PINNED_SCENARIO, seed=PINNED_SEED, first_replicate=k) for k in (1, 2)
    ]
    joined = Result(
        market=pd.concat([s.market for s in singles]),
        units=pd.concat([s.units for s in singles]),
    )
    assert_results_equal(batch, joined)
    # and the canonical digests agree replicate by replicate
    for k, single in enumerate(singles):
        part = Result(
            market=batch.market.xs(k, level="replicate", drop_level=False),
            units=batch.units.xs(k, level="replicate", drop_level=False),
        )
        assert result_digest(part) == result_digest(single)


def test_replicate_zero_of_the_batch_matches_the_pins(batch: Result) -> None:
    part = Result(
        market=batch.market.xs(0, level="replicate", drop_level=False),
        units=batch.units.xs(0, level="replicate", drop_level=False),
    )
    digests = result_digest(part)
    assert digests == _pins(digests), HOW_TO_UPDATE


@pytest.mark.parametrize(
    "name", ["china-national-tiny", "beijing-pilot-tiny", "ccer-2024-tiny", "eu-ets-tiny"]
)
def test_invariant_checks_change_no_result(name: str) -> None:
    """Users run with invariant checks off, the tests with them on (and the session loop
    then re-validates its settlement input through the public method): the checks must
    change no number."""
    checked = simulate(name, seed=5, replicates=2, check_invariants=True)
    fast = simulate(name, seed=5, replicates=2, check_invariants=False)
    assert result_digest(fast) == result_digest(checked)
