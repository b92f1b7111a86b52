"""Run every benchmark: call-auction clearing, continuous order book and the engine.

From the repository root::

    python -m benchmarks            # full run (about 10 minutes on 2 cores); updates the
                                    # generated engine tables in benchmarks/README.md
    python -m benchmarks --quick    # about 2 minutes; prints only

The clearing and order-book scripts run in their own processes (their tables are printed;
their README sections are curated by hand); the engine benchmark is
:mod:`benchmarks.bench_engine`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (("call-auction clearing", "bench_clearing.py"), ("order book", "bench_order_book.py"))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmarks in turn; stop at the first one that fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not write the engine tables to the README"
    )
    args = parser.parse_args(argv)
    flags = ["--quick"] if args.quick else []
    t0 = time.perf_counter()
    for title, script in SCRIPTS:
        print(f"\n## {title} ({script})\n", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *flags], cwd=HERE.parent, check=True)
    print("\n## engine (bench_engine.py)\n", flush=True)
    from benchmarks import bench_engine

    bench_engine.main([*flags, *(["--no-readme"] if args.no_readme else [])])
    print(f"\nall benchmarks took {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
