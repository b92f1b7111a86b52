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
import os
import platform
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from carbonsim._version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from carbonsim.ensemble import SweepResult
    from carbonsim.results import Result
    from carbonsim.scenario.schema import Scenario

#: The object ``add_subparsers`` returns; each ``_add_<name>_parser`` receives it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: Distributions ``carbonsim info`` reports: (name, what needs it). Every package of an
#: extra in pyproject.toml is here (checked by tests/unit/test_cli.py).
_REPORTED_PACKAGES: tuple[tuple[str, str], ...] = (
    ("numpy", "required"),
    ("scipy", "required"),
    ("simpy", "required"),
    ("pandas", "required"),
    ("pydantic", "required"),
    ("tqdm", "required"),
    ("matplotlib", "extra 'plot': figures"),
    ("pyarrow", "extra 'parquet': parquet files"),
    ("dask", "extra 'parallel': sweeps on a Dask cluster"),
    ("distributed", "extra 'parallel': sweeps on a Dask cluster"),
    ("exchange-calendars", "extra 'calendars': regenerate the exchange calendars"),
    ("numba", "extra 'fast': compiled continuous order book"),
    ("hypothesis", "optional: carbonsim.testing strategies"),
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
    """argparse type: an integer >= 1 (one message for 0 and for negative numbers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _check_out(path: str, *, replace: bool = True) -> None:
    """Fail with exit code 2 now, not after the work, if ``--out`` cannot be written."""
    from carbonsim._io import check_output_directory

    try:
        check_output_directory(path, replace=replace)
    except OSError as exc:
        raise UsageError(f"--out {path!r} cannot be written: {exc}") from exc


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


def _print_written(written: Sequence[Path], quiet: bool, note: str = "") -> None:
    """List the files a command wrote (only the paths with ``--quiet``, for scripts)."""
    if not quiet:
        print()
        print(f"wrote {len(written)} files" + (f" ({note})" if note else "") + ":")
    for path in written:
        print(path)


# ---------------------------------------------------------------------------- info
def _cmd_info(args: argparse.Namespace) -> int:
    """Print versions of carbonsim, Python and the dependencies (for bug reports)."""
    print(f"carbonsim {__version__}")
    print(f"python    {platform.python_version()} ({platform.platform()})")
    from carbonsim._format import format_table

    rows = []
    for name, needed_for in _REPORTED_PACKAGES:
        try:
            ver = _dist_version(name)
        except PackageNotFoundError:
            ver = "not installed"
        rows.append([name, ver, needed_for])
    print()
    print(format_table(["package", "version", "needed for"], rows))
    return EXIT_OK


def _add_info_parser(sub: Subparsers) -> None:
    p = sub.add_parser("info", help="versions of carbonsim and its dependencies")
    p.set_defaults(func=_cmd_info)


# ---------------------------------------------------------------------------- bench
def _cmd_bench(args: argparse.Namespace) -> int:
    """Time the hot paths against their references and print the table."""
    from carbonsim.bench import format_rows, run_benchmarks

    rows = run_benchmarks(quick=args.quick, seed=args.seed)
    print(format_rows(rows))
    print()
    print(
        "ratio = median time / reference time. The full suite with pure-Python, LP and "
        "object-per-agent references: python -m benchmarks (source tree)."
    )
    return EXIT_OK


def _add_bench_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "bench",
        help="time market clearing and simulation on this machine",
        description="Time call-auction clearing (vs one np.argsort), batched clearing "
        "(vs a loop), the order book, and end-to-end simulation.",
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random order books")
    p.set_defaults(func=_cmd_bench)


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
        if args.plot:
            raise UsageError("--plot needs --out DIR (figures are written as PNG files)")
        if args.trades:
            raise UsageError("--trades needs --out DIR (trades are only written to files)")
        return
    _check_out(args.out)
    if args.plot:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError(
                "--plot needs matplotlib, from the 'plot' extra: pip install 'carbonsim[plot]'"
            )
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


def _targets_inside(result: Result, name: str) -> pd.DataFrame | None:
    """The calibration targets of scenario ``name`` dated inside the run, for ``--plot``."""
    import pandas as pd

    from carbonsim.calibration import scenarios_with_targets, targets

    dates = result.market.index.get_level_values("date")
    if name not in scenarios_with_targets() or len(dates) == 0:
        return None
    table = targets(name)
    when = pd.to_datetime(table["date"])
    return table[(when >= dates.min()) & (when <= dates.max())]


def _cmd_run(args: argparse.Namespace) -> int:
    """Run a scenario, print its summary and optionally write the result tables."""
    _note_deprecated_backend(args)
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
        import functools

        extra = None
        if args.plot:  # the figures are part of the directory written as one unit
            from carbonsim.plot import save_all

            targets = _targets_inside(result, scenario.name)
            extra = functools.partial(save_all, result, scenario=scenario, targets=targets)
        try:
            written = result.export(args.out, format=args.format or "csv", extra=extra)
        except ImportError as exc:  # pyarrow vanished or is broken
            raise UsageError(
                f"--format parquet needs a working pyarrow, from the 'parquet' extra: "
                f"pip install 'carbonsim[parquet]' ({exc})"
            ) from exc
        _print_written(written, args.quiet, "the directory replaced as a whole")
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
        help="write market, units (and trades) tables and metadata.json to DIR, created if "
        "missing; DIR is replaced as a whole (no file of an earlier export survives), and a "
        "DIR holding files carbonsim did not write is refused (default: write nothing)",
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
        "--plot",
        action="store_true",
        help="also write the figures (price, volume, cumulative, compliance, offsets, and fan "
        "charts with R > 1) as PNG files into --out (needs the 'plot' extra)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="check conservation and market invariants after every event (slower)",
    )
    _add_backend_argument(p)
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no summary; print only the paths of files written",
    )
    p.set_defaults(func=_cmd_run)


def _add_backend_argument(p: argparse.ArgumentParser) -> None:
    # deprecated: carbonsim has one engine; accepted (and ignored, with a note) for one
    # release so that existing scripts keep running
    p.add_argument("--backend", choices=("numpy", "numba"), default=None, help=argparse.SUPPRESS)


def _note_deprecated_backend(args: argparse.Namespace) -> None:
    if getattr(args, "backend", None) is not None:
        print(
            "carbonsim: --backend is deprecated and ignored (carbonsim has one engine); "
            "drop it, it will be removed in the next release",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------------- sweep
def _sweep_lines(result: SweepResult) -> str:
    """The sets and, per metric, the mean (with R > 1: [p05, p95]) of every set."""
    from carbonsim._format import format_number, format_table

    legend = format_table(
        ["set", *result.params],
        [[str(row[0]), *(str(v) for v in row[1:])] for row in result.sets.itertuples()],
    )
    table = result.table(percentiles=(5.0, 95.0))
    many = int(result.provenance.get("replicates", 1)) > 1
    sets = list(result.sets.index)
    rows = []
    for metric in result.metrics:
        unit = str(table.loc[(sets[0], metric), "unit"])
        cells = []
        for s in sets:
            rec = table.loc[(s, metric)]
            cell = format_number(rec["mean"], unit)
            if many:
                low, high = format_number(rec["p05"], unit), format_number(rec["p95"], unit)
                cell += f" [{low}, {high}]"
            cells.append(cell)
        rows.append([metric, unit, *cells])
    header = ["metric", "unit", *(f"set {s}" for s in sets)]
    grid = format_table(header, rows, align="ll" + "r" * len(sets))
    note = "mean [p05, p95] over replicates" if many else "one replicate per set"
    return f"{legend}\n\n{grid}\n({note})"


def _cmd_sweep(args: argparse.Namespace) -> int:
    _note_deprecated_backend(args)
    """Run a parameter sweep and print each metric per parameter set."""
    import contextlib
    import os

    if args.scheduler is not None and args.workers is not None:
        raise UsageError(
            "--workers sets the local processes; with --scheduler the cluster's workers run "
            "the tasks"
        )
    client_class: Any = None
    if args.scheduler is not None:
        try:
            from dask.distributed import Client

            client_class = Client
        except ImportError as exc:
            raise UsageError(
                "--scheduler needs dask.distributed, from the 'parallel' extra: "
                "pip install 'carbonsim[parallel]'"
            ) from exc
    from carbonsim._io import atomic_write_with
    from carbonsim.ensemble import parse_param, sweep

    if args.out is not None:
        _check_out(args.out, replace=False)
    scenario = _resolve_scenario(args)
    params: dict[str, list[object]] = {}
    for text in args.params:
        field_path, values = parse_param(text)
        if field_path in params:
            raise UsageError(f"--param {field_path!r} is given twice")
        params[field_path] = values
    progress = not args.quiet and sys.stderr.isatty()
    with contextlib.ExitStack() as stack:
        executor = None
        if client_class is not None:
            client = stack.enter_context(client_class(args.scheduler))
            executor = client.get_executor()
        result = sweep(
            scenario,
            params,
            replicates=args.replicates,
            seed=args.seed,
            executor=executor,
            workers=args.workers,
            chunk=args.chunk,
            progress=progress,
            directory=args.out,
            plugins=args.plugins,
        )
    if not args.quiet:
        where = args.scheduler or f"up to {args.workers or os.cpu_count()} local process(es)"
        print(
            f"{scenario.name}: {result.n_sets} parameter set(s) x {args.replicates} "
            f"replicate(s), seed {args.seed}, on {where}, scenario hash {scenario.content_hash()}"
        )
        print()
        print(_sweep_lines(result))
    if args.out is not None:
        from pathlib import Path

        out = Path(args.out)
        written = [
            atomic_write_with(out / "summary.csv", result.summary.to_csv),
            atomic_write_with(out / "table.csv", result.table().to_csv),
        ]
        _print_written(written, args.quiet, "per-set results and sweep.json alongside")
    return EXIT_OK


def _add_sweep_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a parameter sweep with replicates on local processes or a Dask cluster",
        description="Run every combination of the --param values with R seeded replicates "
        "each and print the mean (and p05/p95) of every summary metric per parameter set. "
        "Results are identical whatever the workers and chunking.",
    )
    _add_scenario_arguments(p)
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="PATH=V1,V2",
        help="a field to sweep by dotted path and its values, e.g. "
        "'periods.*.offset_limit_share=0.0,0.05'; values are read as TOML when they can be "
        "(repeatable: the sets are all combinations)",
    )
    p.add_argument(
        "--replicates",
        type=_positive_int,
        default=1,
        metavar="R",
        help="replicates per parameter set (default 1)",
    )
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, metavar="N", help="root seed (default 0)"
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="local worker processes (default: one per CPU)",
    )
    p.add_argument(
        "--chunk",
        type=_positive_int,
        default=None,
        metavar="C",
        help="replicates per task (default: about two tasks per worker)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on the Dask cluster whose scheduler is at ADDRESS, e.g. tcp://host:8786 "
        "(needs the 'parallel' extra)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write summary.csv (one row per set and replicate) and table.csv, and keep each "
        "finished set in DIR: rerunning the same sweep with the same DIR resumes it",
    )
    _add_backend_argument(p)
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar and no table; print only file paths"
    )
    p.set_defaults(func=_cmd_sweep)


# ---------------------------------------------------------------------------- calibrate
def _bounds_arg(text: str) -> tuple[str, tuple[float, float]]:
    """argparse type: ``PATH=LOWER:UPPER``, the bounds of a parameter to fit."""
    path, sep, bounds = text.partition("=")
    lower, sep2, upper = bounds.partition(":")
    try:
        if not (sep and sep2 and path.strip()):
            raise ValueError
        lo, hi = float(lower), float(upper)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected PATH=LOWER:UPPER, e.g. behaviour.discount_rate=0.01:1.0, got {text!r}"
        ) from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"lower must be below upper, got {text!r}")
    return path.strip(), (lo, hi)


def _calibrate_command(args: argparse.Namespace) -> str:
    """The command line that reruns this calibration (stored as provenance)."""
    import shlex

    parts = ["carbonsim", "calibrate", str(args.scenario)]
    if args.targets is not None:
        parts += ["--targets", str(args.targets)]
    for path, (lo, hi) in args.params:
        parts += ["--param", f"{path}={lo!r}:{hi!r}"]
    parts += ["--seed", str(args.seed), "--replicates", str(args.replicates)]
    parts += ["--maxiter", str(args.maxiter)]
    if args.method != "Nelder-Mead":
        parts += ["--method", args.method]
    if args.write:
        parts.append("--write")
    if args.out is not None:
        parts += ["--out", str(args.out)]
    if args.force:
        parts.append("--force")
    return shlex.join(parts)


def _calibration_target(args: argparse.Namespace) -> Path | None:
    """Where the fit goes: ``--out``; with ``--write`` the file, or for a built-in a copy.

    A built-in scenario's file belongs to the installed package: ``--write`` writes a
    calibrated copy ``NAME.toml`` into the current directory instead (never over a file).
    Checked before the fit, so a refusal costs nothing.
    """
    from carbonsim.scenario.loader import list_scenarios

    out = None if args.out is None else Path(args.out)
    if args.write and args.scenario in list_scenarios() and not Path(args.scenario).exists():
        out = Path(f"{args.scenario}.toml")
        if out.exists():
            raise UsageError(
                f"--write on the built-in scenario {args.scenario!r} writes a calibrated copy "
                f"to {str(out)!r} (the installed package's file is never rewritten), but that "
                f"file exists: calibrate it (carbonsim calibrate {out} --write) or give --out"
            )
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(out.parent, os.W_OK) or (out.exists() and not out.is_file()):
                raise PermissionError(f"cannot write a file in {str(out.parent)!r}")
        except OSError as exc:
            raise UsageError(f"{str(out)!r} cannot be written: {exc}") from exc
    return out


def _cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit a scenario's behaviour parameters to its targets; optionally write the result.

    Exit code 0 when every target passes at the fitted values, 1 when one fails (the fit is
    then written only with ``--force``).
    """
    from pathlib import Path

    from carbonsim.calibration import fit, load_targets, targets, write_calibration
    from carbonsim.scenario.loader import load_scenario, parse_override, with_overrides

    if args.overrides and (args.write or args.out is not None):
        raise UsageError(
            "--set cannot be combined with --write or --out: the file written would not hold "
            "the overridden values; edit a copy of the scenario file and calibrate that"
        )
    if args.force and not (args.write or args.out is not None):
        raise UsageError("--force needs --write or --out")
    out = _calibration_target(args)
    scenario = load_scenario(args.scenario, calibrated=False)
    overrides = [parse_override(text) for text in args.overrides]
    if overrides:
        scenario = with_overrides(scenario, overrides)
    if args.targets is None:
        table = targets(scenario.name)
    elif Path(args.targets).is_file():
        table = load_targets(args.targets)
    else:
        table = targets(args.targets)
    parameters = {p: (b[0], b[1]) for p, b in scenario.calibration.parameters.items()}
    parameters.update(dict(args.params))
    if not parameters:
        raise UsageError(
            f"scenario {scenario.name!r} declares no parameters to fit ([calibration.parameters] "
            "is empty); give --param PATH=LOWER:UPPER"
        )
    progress = sys.stderr.isatty()
    result = fit(
        scenario,
        parameters,
        targets=table,
        seed=args.seed,
        replicates=args.replicates,
        maxiter=args.maxiter,
        method=args.method,
        progress=progress,
    )
    print(result.summary())
    failed = [str(t) for t in result.moments.index[~result.moments["passed"]]]
    if failed:
        print(f"\ntarget(s) not met within tolerance: {', '.join(failed)}", file=sys.stderr)
    if args.write or args.out is not None:
        if failed and not args.force:
            print("nothing written (--force writes a fit that misses its targets)", file=sys.stderr)
        else:
            spec = result.calibration(_calibrate_command(args))
            path = write_calibration(args.scenario, spec, out=out)
            print(f"\nwrote the [calibration] table of {path}")
    return EXIT_FAILED if failed else EXIT_OK


def _add_calibrate_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit behaviour parameters to the scenario's targets (method of simulated moments)",
        description="Fit the parameters listed in the scenario's [calibration.parameters] (or "
        "--param) so that its simulated moments meet its calibration targets "
        "(carbonsim.calibration.targets), starting from the values written in the file, with "
        "the same seed in every simulation. Prints the fitted values and each target against "
        "its simulated value; with --write rewrites only the [calibration] table of the "
        "scenario file (comments kept), with --out writes a calibrated copy. Exit code 1 when "
        "a target is not met.",
    )
    _add_scenario_arguments(p)
    p.add_argument(
        "--targets",
        default=None,
        metavar="NAME|FILE",
        help="targets of another scenario, or a targets TOML file ([[target]] rows as in "
        "carbonsim/calibration/targets.toml) (default: the scenario's own)",
    )
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        type=_bounds_arg,
        default=[],
        metavar="PATH=LOWER:UPPER",
        help="fit this field (dotted path) within bounds, in addition to (or replacing the "
        "bounds of) the scenario's [calibration.parameters] (repeatable)",
    )
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, metavar="N", help="root seed (default 0)"
    )
    p.add_argument(
        "--replicates",
        type=_positive_int,
        default=1,
        metavar="R",
        help="replicates per simulation; the moments are their means (default 1)",
    )
    p.add_argument(
        "--maxiter",
        type=_positive_int,
        default=60,
        metavar="N",
        help="optimizer iterations (Nelder-Mead: 1-2 simulations each) (default 60)",
    )
    p.add_argument(
        "--method",
        choices=("Nelder-Mead", "Powell", "COBYLA"),
        default="Nelder-Mead",
        help="scipy.optimize.minimize method, derivative-free (default Nelder-Mead)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--write",
        action="store_true",
        help="rewrite the [calibration] table of the scenario file (a built-in name: write "
        "a calibrated copy NAME.toml into the current directory, never the installed file)",
    )
    where.add_argument(
        "--out", default=None, metavar="FILE", help="write a calibrated copy of the file to FILE"
    )
    p.add_argument("--force", action="store_true", help="write even when a target is not met")
    p.set_defaults(func=_cmd_calibrate)


# ---------------------------------------------------------------------------- schema


def _cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of a scenario file, or the field reference as markdown."""
    from carbonsim.scenario.schema import json_schema, reference_markdown

    if args.markdown:
        print(reference_markdown())
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
            "units table (units.csv): one row per replicate, unit and compliance period "
            "(year: its last emission year)",
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
    _add_sweep_parser,
    _add_calibrate_parser,
    _add_schema_parser,
    _add_columns_parser,
    _add_bench_parser,
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
    _add_common_arguments(parser, after=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    for command in sub.choices.values():
        _add_common_arguments(command, after=True)
    return parser


def _add_common_arguments(parser: argparse.ArgumentParser, *, after: bool) -> None:
    """``--debug`` and ``--plugin``, accepted before and after the subcommand.

    After it they go to their own ``*_after`` names (absent unless given), so that a
    subcommand's defaults never overwrite what was given before it; :func:`main` merges.
    """
    suffix, unset = ("_after", argparse.SUPPRESS) if after else ("", None)
    parser.add_argument(
        "--debug",
        dest="debug" + suffix,
        action="store_true",
        default=unset or False,
        help="show tracebacks on errors",
    )
    parser.add_argument(
        "--plugin",
        dest="plugins" + suffix,
        action="append",
        default=unset or [],
        metavar="MODULE",
        help="import MODULE (a module name, or a .py file) first, so the strategies and other "
        "plug-ins it registers can be named in the scenario; sweep workers import it too "
        "(repeatable)",
    )


def _import_plugins(specs: Sequence[str]) -> None:
    from carbonsim.ensemble import import_plugins

    for spec in specs:
        try:
            import_plugins([spec])
        except Exception as exc:
            message = f"--plugin {spec!r} cannot be imported: {type(exc).__name__}: {exc}"
            raise UsageError(message) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carbonsim`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = bool(args.debug or getattr(args, "debug_after", False))
    args.plugins = [*args.plugins, *getattr(args, "plugins_after", [])]
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        _import_plugins(args.plugins)
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
