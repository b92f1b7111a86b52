"""Regenerate the pinned results of the determinism regression test.

``tests/regression/test_determinism.py`` pins the SHA-256 digests (:func:`result_digest`)
of the tables of :data:`PINNED_SCENARIO` run with :data:`PINNED_SEED`, plus a few totals
rounded to six significant digits (:func:`pinned_summary`). When the model changes on
purpose, the pins change with it::

    python -m carbonsim.testing.regenerate                  # print the new pins
    python -m carbonsim.testing.regenerate --update tests/regression/test_determinism.py

``--update`` rewrites the blocks between the ``# BEGIN PINNED`` and ``# END PINNED``
marker lines of that file (atomically); commit the new pins together with the change that
explains them.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from carbonsim.testing._digest import result_digest

if TYPE_CHECKING:
    from carbonsim.results import Result

__all__ = [
    "PINNED_SCENARIO",
    "PINNED_SEED",
    "main",
    "pinned_block",
    "pinned_result",
    "pinned_summary",
]

#: Built-in scenario whose results are pinned.
PINNED_SCENARIO = "china-national-tiny"
#: Root seed of the pinned run (one replicate).
PINNED_SEED = 0

_MARKERS = re.compile(r"(# BEGIN PINNED\n)(.*?)(# END PINNED\n)", re.DOTALL)


def pinned_result(scenario: str = PINNED_SCENARIO, seed: int = PINNED_SEED) -> Result:
    """Run the pinned configuration (one replicate) and return its result."""
    from carbonsim.engine.simulation import simulate

    return simulate(scenario, seed=seed)


def pinned_summary(result: Result) -> dict[str, float]:
    """Totals of a result rounded to six significant digits (a coarse, readable pin).

    Market: summed volume and turnover, mean and last closing price. Units: summed
    allocation, emissions, abatement, surrender and penalties.
    """
    m, u = result.market, result.units
    values = {
        "volume": float(m["volume"].sum()),
        "turnover": float(m["turnover"].sum()),
        "mean_price": float(m["price"].mean()),
        "last_price": float(m["price"].iloc[-1]),
        "allocated": float(u["allocated"].sum()),
        "emissions": float(u["emissions"].sum()),
        "abated": float(u["abated"].sum()),
        "surrendered": float(u["surrendered"].sum()),
        "penalty": float(u["penalty"].sum()),
    }
    return {k: float(f"{v:.6g}") for k, v in values.items()}


def pinned_block(result: Result) -> str:
    """The Python source of the pins of ``result``: ``PINNED_DIGESTS`` and ``PINNED_SUMMARY``."""
    lines = ["PINNED_DIGESTS = {"]
    lines += [f'    "{k}": "{v}",' for k, v in result_digest(result).items()]
    lines += ["}", "PINNED_SUMMARY = {"]
    lines += [f'    "{k}": {v!r},' for k, v in pinned_summary(result).items()]
    lines += ["}"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the pins, or write them into a test file with ``--update``."""
    parser = argparse.ArgumentParser(
        prog="python -m carbonsim.testing.regenerate",
        description="Print (or update) the pinned result digests of the determinism test.",
    )
    parser.add_argument("--scenario", default=PINNED_SCENARIO, help="built-in name or file")
    parser.add_argument("--seed", type=int, default=PINNED_SEED, help="root seed")
    parser.add_argument(
        "--update",
        metavar="FILE",
        type=Path,
        help="rewrite the block between '# BEGIN PINNED' and '# END PINNED' in FILE",
    )
    args = parser.parse_args(argv)
    block = pinned_block(pinned_result(args.scenario, args.seed))
    if args.update is None:
        sys.stdout.write(block)
        return 0
    from carbonsim._io import atomic_write_text

    text = args.update.read_text(encoding="utf-8")
    if len(_MARKERS.findall(text)) != 1:
        parser.error(
            f"{args.update} must hold exactly one block between '# BEGIN PINNED' and "
            "'# END PINNED' lines"
        )
    new = _MARKERS.sub(lambda m: m.group(1) + block + m.group(3), text)
    atomic_write_text(args.update, new)
    sys.stdout.write(f"updated the pins in {args.update}:\n{block}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
