"""The ``carbonsim`` command.

Exit codes: 0 success, 1 the work failed (e.g. a run raised), 2 bad usage or bad input.
Errors are printed without a traceback unless ``--debug`` is given.

Each subcommand has a ``_add_<name>_parser(sub)`` function that declares its arguments and
sets ``func`` to a ``_cmd_<name>(args) -> int`` function; :data:`_COMMANDS` lists them in
the order ``--help`` shows them. Heavy modules (numpy, pandas, pydantic, the engine) are
imported inside the ``_cmd_*`` functions, so building the parser and ``carbonsim --help``
stay fast.
"""

from __future__ import annotations

import argparse
import logging
import platform
import re
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import TYPE_CHECKING, TypeAlias

from carbonsim import __version__

if TYPE_CHECKING:
    from carbonsim.results import Result
    from carbonsim.scenario.schema import Scenario

#: The object ``add_subparsers`` returns; each ``_add_<name>_parser`` receives it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

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


class UsageError(ValueError):
    """Bad usage or input detected by the command itself (exit code 2)."""


# ---------------------------------------------------------------------------- helpers
def _non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    """The positional scenario and the repeatable ``--set`` shared by scenario commands."""
    parser.add_argument(
        "scenario",
        metavar="NAME|FILE",
        help="a built-in scenario name (see 'carbonsim scenarios') or a scenario TOML file",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field by dotted path, e.g. periods.0.offset_limit_share=0.0 or "
        "'periods.*.borrowing=true'; the value is read as TOML when it can be (repeatable)",
    )


def _resolve_scenario(args: argparse.Namespace) -> Scenario:
    """Load ``args.scenario`` and apply the ``--set`` overrides in order.

    Raises
    ------
    FileNotFoundError
        Neither a built-in name nor a file (the message lists the built-in names).
    ValueError
        A malformed ``--set``, or a :class:`~carbonsim.scenario.loader.ScenarioError` naming
        every invalid field path.
    """
    from carbonsim.scenario.loader import load_scenario, parse_override, with_overrides

    scenario = load_scenario(args.scenario)
    overrides = [parse_override(text) for text in args.overrides]
    if overrides:
        scenario = with_overrides(scenario, overrides)
    return scenario


# ---------------------------------------------------------------------------- info
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


def _add_info_parser(sub: Subparsers) -> None:
    p = sub.add_parser("info", help="versions of carbonsim and its dependencies")
    p.set_defaults(func=_cmd_info)


# ---------------------------------------------------------------------------- scenarios
def _cmd_scenarios(args: argparse.Namespace) -> int:
    """List the built-in scenarios with their one-line descriptions.

    A built-in file that fails to load is listed with its first error line, and the exit
    code is then 1.
    """
    from carbonsim._format import format_table
    from carbonsim.scenario.loader import list_scenarios, load_scenario

    rows: list[list[str]] = []
    status = EXIT_OK
    for name in list_scenarios():
        try:
            description = load_scenario(name).description
        except ValueError as exc:
            description = f"(invalid: {str(exc).splitlines()[-1].strip()})"
            status = EXIT_FAILED
        rows.append([name, description])
    print(format_table(["name", "description"], rows))
    return status


def _add_scenarios_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "scenarios",
        help="list the built-in scenarios",
        description="List the built-in scenarios with their one-line descriptions.",
    )
    p.set_defaults(func=_cmd_scenarios)


# ---------------------------------------------------------------------------- show
def _cmd_show(args: argparse.Namespace) -> int:
    """Print the resolved scenario (after ``--set``) as TOML, or JSON with ``--json``."""
    import json

    from carbonsim._format import to_toml

    scenario = _resolve_scenario(args)
    if args.json:
        print(json.dumps(scenario.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return EXIT_OK
    n = len(args.overrides)
    print(f"# scenario {scenario.name!r} as resolved by carbonsim {__version__}", end="")
    print(f" with {n} override(s)" if n else "")
    print(f"# content hash {scenario.content_hash()}")
    print(to_toml(scenario.model_dump()), end="")
    return EXIT_OK


def _add_show_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "show",
        help="print a scenario with every field resolved",
        description="Print the scenario after defaults and --set overrides are applied: as "
        "TOML (a field set to None is shown as a comment, TOML has no null) or as JSON.",
    )
    _add_scenario_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    p.set_defaults(func=_cmd_show)


# ---------------------------------------------------------------------------- run
def _check_output_options(args: argparse.Namespace) -> None:
    """Reject option combinations that would be silently ignored, before any work."""
    if args.out is None:
        if args.format is not None:
            raise UsageError("--format needs --out DIR (files are only written with --out)")
        if args.trades:
            raise UsageError("--trades needs --out DIR (trades are only written to files)")
        return
    if args.format == "parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise UsageError(
                "--format parquet needs pyarrow, from the 'parquet' extra: "
                "pip install 'carbonsim[parquet]'"
            )


def _summary_lines(result: Result) -> str:
    """The run summary as an aligned table: one value per metric, or mean/p05/p95."""
    from carbonsim._format import format_number, format_table

    table = result.summary()
    if result.n_replicates == 1:
        header = ["metric", "unit", "value"]
        columns = ["mean"]
    else:
        header = ["metric", "unit", "mean", "p05", "p95"]
        columns = ["mean", "p05", "p95"]
    rows = []
    for metric, rec in table.iterrows():
        unit = str(rec["unit"])
        rows.append([str(metric), unit, *(format_number(rec[c], unit) for c in columns)])
    return format_table(header, rows, align="ll" + "r" * len(columns))


def _cmd_run(args: argparse.Namespace) -> int:
    """Run a scenario, print its summary and optionally write the result tables."""
    from carbonsim.engine.simulation import simulate

    _check_output_options(args)
    scenario = _resolve_scenario(args)
    progress = not args.quiet and sys.stderr.isatty()
    log.info("running %s, seed %s, %d replicate(s)", scenario.name, args.seed, args.replicates)
    result = simulate(
        scenario,
        seed=args.seed,
        replicates=args.replicates,
        record_trades=args.trades,
        check_invariants=args.check,
        progress=progress,
    )
    if not args.quiet:
        reps = f"{args.replicates} replicate" + ("s" if args.replicates != 1 else "")
        print(
            f"{scenario.name}: seed {args.seed}, {reps}, {scenario.time.start} to "
            f"{scenario.time.end}, scenario hash {scenario.content_hash()}"
        )
        if args.check:
            print("invariants checked after every event: all held")
        print()
        print(_summary_lines(result))
    if args.out is not None:
        fmt = args.format or "csv"
        try:
            written = result.to_parquet(args.out) if fmt == "parquet" else result.to_csv(args.out)
        except ImportError as exc:  # pyarrow vanished or is broken
            raise UsageError(
                f"--format parquet needs a working pyarrow, from the 'parquet' extra: "
                f"pip install 'carbonsim[parquet]' ({exc})"
            ) from exc
        if not args.quiet:
            print()
            print(f"wrote {len(written)} files:")
        for path in written:
            print(path)
    return EXIT_OK


def _add_run_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run",
        help="simulate a scenario and print its summary",
        description="Simulate a scenario, print the summary metrics (see 'carbonsim columns') "
        "and, with --out, write the market and unit tables.",
    )
    _add_scenario_arguments(p)
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, metavar="N", help="root seed (default 0)"
    )
    p.add_argument(
        "--replicates",
        type=_positive_int,
        default=1,
        metavar="R",
        help="Monte Carlo replicates; with R > 1 the summary shows mean, p05 and p95 (default 1)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write market, units (and trades) tables to DIR, created if missing "
        "(default: write nothing)",
    )
    p.add_argument(
        "--format",
        choices=("csv", "parquet"),
        default=None,
        help="file format for --out: csv (plus metadata.json) or parquet (needs the "
        "'parquet' extra) (default csv)",
    )
    p.add_argument(
        "--trades", action="store_true", help="record every filled order (written with --out)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="check conservation and market invariants after every event (slower)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no summary; print only the paths of files written",
    )
    p.set_defaults(func=_cmd_run)


# ---------------------------------------------------------------------------- schema
_CLASS_REPR = re.compile(r"<class '(?:[\w]+\.)*(\w+)'>")


def _cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of a scenario file, or the field reference as markdown."""
    from carbonsim.scenario.schema import json_schema, reference_table

    if args.markdown:
        from carbonsim._format import markdown_table

        keys = ["field", "type", "unit", "default", "description"]
        rows = [[row[k] for k in keys] for row in reference_table()]
        for row in rows:  # "<class 'float'>" -> "float"
            row[1] = _CLASS_REPR.sub(r"\1", row[1])
        print(markdown_table(keys, rows))
        return EXIT_OK
    import json

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def _add_schema_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "schema",
        help="the scenario file format (JSON Schema or markdown reference)",
        description="Print the JSON Schema of a scenario file, or with --markdown one table "
        "row per field: dotted path, type, unit, default, description.",
    )
    p.add_argument(
        "--markdown", action="store_true", help="print the field reference as a markdown table"
    )
    p.set_defaults(func=_cmd_schema)


# ---------------------------------------------------------------------------- columns
def _cmd_columns(args: argparse.Namespace) -> int:
    """Print the unit and meaning of every result column and summary metric."""
    from carbonsim._format import format_table
    from carbonsim.results import MARKET_COLUMNS, SUMMARY_METRICS, UNIT_COLUMNS

    sections = (
        (
            "market table (market.csv): one row per replicate and trading date",
            MARKET_COLUMNS,
        ),
        (
            "units table (units.csv): one row per replicate, unit and compliance year",
            UNIT_COLUMNS,
        ),
        (
            "summary metrics ('carbonsim run' output): per replicate, then mean/p05/p95",
            SUMMARY_METRICS,
        ),
    )
    for i, (title, columns) in enumerate(sections):
        if i:
            print()
        print(title)
        rows = [[name, unit or "-", text] for name, (unit, text) in columns.items()]
        print(format_table(["column", "unit", "description"], rows))
    return EXIT_OK


def _add_columns_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "columns",
        help="what every result column and summary metric means",
        description="Print the unit and description of every column of the market and "
        "units tables and of every summary metric. Prices are in the scenario's currency.",
    )
    p.set_defaults(func=_cmd_columns)


# ---------------------------------------------------------------------------- parser
#: Functions adding one subcommand each, in the order ``--help`` lists them.
_COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _add_scenarios_parser,
    _add_show_parser,
    _add_run_parser,
    _add_schema_parser,
    _add_columns_parser,
    _add_info_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``carbonsim`` command."""
    parser = argparse.ArgumentParser(
        prog="carbonsim",
        description="Simulate carbon emissions-trading markets (China national ETS, Beijing "
        "pilot, CCER, EU ETS) and benchmark market clearing.",
        epilog="Exit codes: 0 success, 1 the work failed, 2 bad usage or bad input.",
    )
    parser.add_argument("--version", action="version", version=f"carbonsim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
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
