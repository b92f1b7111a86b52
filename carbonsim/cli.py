"""The ``carbonsim`` command.

Exit codes: 0 success, 1 the work failed (e.g. a run raised), 2 bad usage or bad input.
Errors are printed without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

from carbonsim import __version__

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_REPORTED_PACKAGES = (
    "numpy",
    "scipy",
    "simpy",
    "pandas",
    "pydantic",
    "matplotlib",
    "pyarrow",
    "dask",
)


def _cmd_info(args: argparse.Namespace) -> int:
    """Print versions of carbonsim, Python and the dependencies (for bug reports)."""
    print(f"carbonsim {__version__}")
    print(f"python    {platform.python_version()} ({platform.platform()})")
    for name in _REPORTED_PACKAGES:
        try:
            ver = _dist_version(name)
        except PackageNotFoundError:
            ver = "not installed"
        print(f"{name:<9} {ver}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``carbonsim`` command."""
    parser = argparse.ArgumentParser(
        prog="carbonsim",
        description="Simulate carbon emissions-trading markets (China national ETS, Beijing "
        "pilot, CCER, EU ETS) and benchmark market clearing.",
    )
    parser.add_argument("--version", action="version", version=f"carbonsim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_info = sub.add_parser("info", help="versions of carbonsim and its dependencies")
    p_info.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carbonsim`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"carbonsim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("carbonsim: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # the work itself failed
        if args.debug:
            raise
        print(f"carbonsim: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
