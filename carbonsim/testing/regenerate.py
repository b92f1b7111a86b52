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

The digests are pinned per family of numpy's float64 ``exp``/``log`` kernels
(:func:`float_kernels`): numpy computes them with its own AVX-512 code where the CPU has
AVX512F and with the C library's elsewhere, and the two differ in the last bit of some
results, so the same seed gives bit-identical results on machines of one family (and
whatever the executor, backend or batch split), not across families. ``--update`` writes
this machine's family and drops the others' pins, which a change of the model makes
stale; ``--add`` adds or replaces this family's pins and keeps the others (pinning a
second family of machines without changing the model).
"""

from __future__ import annotations

import argparse
import ast
import importlib
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
    "float_kernels",
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


def float_kernels() -> str:
    """The family of numpy's float64 ``exp``/``log`` kernels on this machine: ``"avx512f"``
    where numpy dispatches them to its AVX-512 code, ``"baseline"`` where it calls the C
    library's functions (the family decides the last bits of lognormal draws)."""
    features: dict[str, bool] = {}
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # 2.x, 1.x
        try:
            features = importlib.import_module(name).__cpu_features__
        except (ImportError, AttributeError):
            continue
        break
    return "avx512f" if features.get("AVX512F", False) else "baseline"


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


def pinned_block(result: Result, others: dict[str, dict[str, str]] | None = None) -> str:
    """The Python source of the pins of ``result``: ``PINNED_DIGESTS`` (this machine's
    :func:`float_kernels` family, plus the families in ``others``) and ``PINNED_SUMMARY``."""
    digests = dict(others or {})
    digests[float_kernels()] = result_digest(result)
    lines = ["PINNED_DIGESTS = {"]
    for family in sorted(digests):
        lines.append(f'    "{family}": {{')
        lines += [f'        "{k}": "{v}",' for k, v in digests[family].items()]
        lines.append("    },")
    lines += ["}", "PINNED_SUMMARY = {"]
    lines += [f'    "{k}": {v!r},' for k, v in pinned_summary(result).items()]
    lines += ["}"]
    return "\n".join(lines) + "\n"


def _pinned_digests(block: str) -> dict[str, dict[str, str]]:
    """The ``PINNED_DIGESTS`` literal of a pinned block (empty where there is none)."""
    for node in ast.parse(block).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PINNED_DIGESTS" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, dict):
                return value
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the pins, or write them into a test file with ``--update``."""
    parser = argparse.ArgumentParser(
        prog="python -m carbonsim.testing.regenerate",
        description="Print (or update) the pinned result digests of the determinism test.",
    )
    parser.add_argument("--scenario", default=PINNED_SCENARIO, help="built-in name or file")
    parser.add_argument("--seed", type=int, default=PINNED_SEED, help="root seed")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--update",
        metavar="FILE",
        type=Path,
        help="rewrite the block between '# BEGIN PINNED' and '# END PINNED' in FILE with "
        "this machine's pins, dropping other CPU families' (stale after a model change)",
    )
    target.add_argument(
        "--add",
        metavar="FILE",
        type=Path,
        help="as --update, but keep the pinned digests of other CPU families (pin a second "
        "kind of machine when the model has not changed)",
    )
    args = parser.parse_args(argv)
    result = pinned_result(args.scenario, args.seed)
    path = args.update or args.add
    if path is None:
        sys.stdout.write(pinned_block(result))
        return 0
    from carbonsim._io import atomic_write_text

    text = path.read_text(encoding="utf-8")
    found = _MARKERS.findall(text)
    if len(found) != 1:
        parser.error(
            f"{path} must hold exactly one block between '# BEGIN PINNED' and '# END PINNED' lines"
        )
    others = _pinned_digests(found[0][1]) if args.add is not None else {}
    block = pinned_block(result, others)
    new = _MARKERS.sub(lambda m: m.group(1) + block + m.group(3), text)
    atomic_write_text(path, new)
    sys.stdout.write(f"updated the pins in {path}:\n{block}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
