"""Parameter sweeps and Monte Carlo ensembles on any :class:`concurrent.futures.Executor`.

:func:`sweep` runs every combination of the swept values (the Cartesian product of
``params``, in the order given: the last parameter varies fastest) with ``replicates``
seeded replicates each. The work is split into tasks, one per (parameter set, chunk of
replicates); a task runs :func:`carbonsim.simulate` with ``first_replicate`` set to the
chunk's first replicate and returns :meth:`~carbonsim.results.Result.summary_by_replicate`
(and, with ``keep_market=True``, the market table). Because replicate ``k`` of a seed is
bit-identical whichever batch computes it, the result is **identical** whatever the
executor, the number of workers and the chunking.

Executors
---------
``executor=None`` uses a local :class:`~concurrent.futures.ProcessPoolExecutor` with
``workers`` processes (default: one per CPU), started with the ``spawn`` method: forking a
process that runs threads (a progress bar, a Dask client, BLAS) is unsafe and deprecated
from Python 3.12, and ``spawn`` behaves the same on every platform. Scripts that call
:func:`sweep` therefore need the usual ``if __name__ == "__main__":`` guard. Any other
executor whose ``submit`` returns :class:`concurrent.futures.Future` objects works, e.g.
``ThreadPoolExecutor`` or a Dask cluster's ``dask.distributed.Client(...).get_executor()``;
it is used, never shut down. Tasks are top-level functions of picklable arguments (the
scenario of the parameter set, already validated in the calling process).

Local workers exit when the process that runs the sweep dies, even by ``kill -9``
(``PR_SET_PDEATHSIG`` on Linux, and everywhere a thread that waits on the parent), so no
orphaned worker keeps computing. :func:`sweep` refuses, with the fix in the message, to start
them from a script's top level outside the ``__main__`` guard, where every worker would run
the script's sweep again.

Plug-ins
--------
``plugins=`` names modules (or ``.py`` files) that register strategies or other plug-ins on
import (:func:`import_plugins`); they are imported here and in every worker before its tasks
run, so a scenario can use them on any executor whose workers can import them.

Resuming
--------
With ``directory``, each parameter set is written as soon as all its replicates are done
(parquet with pyarrow, else CSV; one file per set, written atomically next to a manifest
``sweep.json``). Calling :func:`sweep` again with the same arguments loads the finished sets
and runs only the rest, so an interrupted sweep loses at most the sets in progress. A
directory holding a different sweep (other scenario, parameters, seed, replicates or
carbonsim version) is refused rather than mixed. Each set file carries, in its own metadata
(parquet schema metadata, or a first line ``# carbonsim-set {...}`` in CSV), its set number,
the content hash of its parameter set and the hash of the whole sweep; a file is checked
before it is reused, so renamed or swapped files, or files of another sweep next to a
deleted ``sweep.json``, are an error naming the file, never silently adopted.

>>> import carbonsim as cs
>>> sw = cs.sweep("china-national-tiny", {"periods.*.offset_limit_share": [0.0, 0.05]},
...               replicates=2, seed=0)  # doctest: +SKIP
>>> sw.table().loc[(slice(None), "final_price"), ["mean", "p05", "p95"]]  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import contextlib
import ctypes
import functools
import hashlib
import importlib
import importlib.util
import inspect
import itertools
import json
import logging
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from carbonsim._io import atomic_write_text, atomic_write_with
from carbonsim._version import __version__

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from carbonsim.scenario.schema import Scenario

log = logging.getLogger(__name__)

__all__ = ["MANIFEST", "SweepResult", "import_plugins", "parse_param", "sweep"]

#: Name of the manifest file of a resumable sweep directory.
MANIFEST = "sweep.json"

_DEFAULT_PERCENTILES = (5.0, 50.0, 95.0)


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True)
class SweepResult:
    """The outcome of :func:`sweep`.

    Attributes
    ----------
    sets : pandas.DataFrame
        Index ``set`` (0..S-1); one column per swept parameter (dotted path) holding its
        value in that set.
    summary : pandas.DataFrame
        Index (``set``, ``replicate``); the parameter columns, then the metrics of
        :data:`~carbonsim.results.SUMMARY_METRICS` per replicate (their units in
        ``summary.attrs["units"]``).
    market : pandas.DataFrame or None
        With ``keep_market=True``: index (``set``, ``replicate``, ``date``), columns
        :data:`~carbonsim.results.MARKET_COLUMNS`; else None.
    provenance : dict
        carbonsim version, scenario name and content hash, seed, replicates, the swept
        values, and the content hash of each parameter set's scenario.
    """

    sets: pd.DataFrame
    summary: pd.DataFrame
    market: pd.DataFrame | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        """The swept parameters (dotted paths), in sweep order."""
        return [str(c) for c in self.sets.columns]

    @property
    def n_sets(self) -> int:
        """Number of parameter sets S."""
        return len(self.sets)

    @property
    def metrics(self) -> list[str]:
        """Names of the summary metric columns."""
        return [c for c in self.summary.columns if c not in set(self.params)]

    def table(self, percentiles: Sequence[float] = _DEFAULT_PERCENTILES) -> pd.DataFrame:
        """Mean and percentiles of every metric over the replicates of each parameter set.

        Parameters
        ----------
        percentiles : sequence of float
            Percentiles to report, in [0, 100] (linear interpolation, as
            :meth:`pandas.DataFrame.quantile`); columns are named ``p05``, ``p50``, ...

        Returns
        -------
        pandas.DataFrame
            Index (``set``, ``metric``); columns: the swept parameters, ``unit``, ``mean``
            and one per percentile. The layout of :meth:`Result.summary
            <carbonsim.results.Result.summary>`, once per parameter set.
        """
        from carbonsim.results import SUMMARY_METRICS

        qs = [float(q) for q in percentiles]
        for q in qs:
            if not 0.0 <= q <= 100.0:
                raise ValueError(f"percentiles must lie in [0, 100], got {q!r}")
        metrics = self.metrics
        grouped = self.summary[metrics].groupby(level="set", sort=True)
        columns: dict[str, pd.Series] = {"mean": grouped.mean().stack()}
        for q in qs:
            columns[f"p{q:02g}"] = grouped.quantile(q / 100.0).stack()
        stats = pd.DataFrame(columns)
        stats.index.names = ["set", "metric"]
        units = [SUMMARY_METRICS.get(str(m), ("", ""))[0] for m in stats.index.get_level_values(1)]
        stats.insert(0, "unit", units)
        if self.params:
            stats = stats.join(self.sets, on="set")
            stats = stats[[*self.params, *[c for c in stats.columns if c not in self.params]]]
        stats.attrs["provenance"] = dict(self.provenance)
        return stats


# ---------------------------------------------------------------------------- inputs
def parse_param(text: str) -> tuple[str, list[Any]]:
    """Parse a command-line sweep parameter ``"path.to.field=v1,v2,..."``.

    The values are read as one TOML array when they can be (so ``[1, 2],[3, 4]`` gives two
    arrays), else split on commas with each item read as TOML when it can be, else kept as
    a string.

    >>> parse_param("periods.*.offset_limit_share=0.0,0.05")
    ('periods.*.offset_limit_share', [0.0, 0.05])
    >>> parse_param("time.calendar=XSHG,business")
    ('time.calendar', ['XSHG', 'business'])
    """
    from carbonsim.scenario.loader import parse_override, split_assignment

    path, raw = split_assignment(text, "--param", "path.to.field=v1,v2,...")
    if not raw.strip():
        raise ValueError(f"--param {path!r} has no values: {text!r}")
    try:
        values = list(tomllib.loads(f"v = [{raw}]")["v"])
    except tomllib.TOMLDecodeError:
        values = [parse_override(f"{path}={item}")[1] for item in raw.split(",")]
    return path, values


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python objects (for validation and the manifest)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _check_params(params: Mapping[str, Any]) -> dict[str, list[Any]]:
    if not isinstance(params, Mapping):
        raise TypeError(
            "params must be a mapping of dotted path -> list of values, "
            f"got {type(params).__name__}"
        )
    out: dict[str, list[Any]] = {}
    for path, values in params.items():
        if not isinstance(path, str) or not path:
            raise TypeError(f"params keys must be non-empty dotted paths, got {path!r}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(
            values, (Sequence, np.ndarray, range)
        ):
            raise TypeError(
                f"params[{path!r}] must be a list of values, got {values!r}; "
                f"write [{values!r}] for a single value"
            )
        listed = [_plain(v) for v in values]
        if not listed:
            raise ValueError(f"params[{path!r}] is empty; give at least one value")
        out[path] = listed
    return out


def _check_plugins(plugins: Any) -> list[str]:
    if isinstance(plugins, (str, bytes)) or not isinstance(plugins, Sequence):
        raise TypeError(
            f"plugins must be a list of module names or .py files, got {plugins!r}; "
            f"write [{plugins!r}] for one"
        )
    return list(plugins)


def _check_count(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _chunks(replicates: int, chunk: int) -> list[tuple[int, int]]:
    """(first replicate, count) pairs covering ``0..replicates-1``."""
    return [(start, min(chunk, replicates - start)) for start in range(0, replicates, chunk)]


def _default_chunk(replicates: int, n_sets: int, workers: int) -> int:
    """About two tasks per worker, and as many replicates per task as that allows."""
    chunks_per_set = max(1, math.ceil(2 * workers / n_sets))
    return max(1, math.ceil(replicates / chunks_per_set))


# ---------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class _Task:
    """One unit of work: replicates ``first .. first + count - 1`` of one parameter set."""

    set: int
    scenario: Scenario
    seed: int
    first: int
    count: int
    keep_market: bool
    plugins: tuple[str, ...] = ()


@dataclass(frozen=True)
class _TaskResult:
    set: int
    first: int
    summary: pd.DataFrame
    market: pd.DataFrame | None


def _run_task(task: _Task) -> _TaskResult:
    """Run one task (a top-level function, so every executor can pickle it)."""
    from carbonsim.engine.simulation import simulate

    import_plugins(task.plugins)
    result = simulate(
        task.scenario,
        seed=task.seed,
        replicates=task.count,
        first_replicate=task.first,
    )
    summary = result.summary_by_replicate()
    summary.attrs = {}
    market = None
    if task.keep_market:
        market = result.market.copy()
        market.attrs = {}
    return _TaskResult(set=task.set, first=task.first, summary=summary, market=market)


# ---------------------------------------------------------------------------- plug-ins
def _plugin_key(spec: str) -> str:
    """A plug-in spec as workers must see it: a module name, or a file's absolute path."""
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"a plug-in is a module name or a .py file path, got {spec!r}")
    if spec.endswith(".py") or "/" in spec or os.sep in spec:
        return str(Path(spec).expanduser().resolve())
    return spec


def _import_plugin(spec: str) -> ModuleType:
    key = _plugin_key(spec)
    if os.path.isabs(key):
        path = Path(key)
        if not path.is_file():
            raise FileNotFoundError(f"plug-in file {spec!r} not found")
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        name = f"carbonsim_plugin_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
        if name in sys.modules:
            return sys.modules[name]
        found = importlib.util.spec_from_file_location(name, path)
        if found is None or found.loader is None:
            raise ImportError(f"plug-in file {spec!r} cannot be imported as a module")
        module = importlib.util.module_from_spec(found)
        sys.modules[name] = module
        try:
            found.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    try:
        return importlib.import_module(key)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        top = key.split(".")[0]
        if exc.name != top or cwd in sys.path or os.path.abspath("") in sys.path:
            raise
    # a module in the current directory, which a console script does not search: add it
    # (workers started from here inherit the search path)
    sys.path.append(cwd)
    return importlib.import_module(key)


def import_plugins(specs: Sequence[str]) -> list[ModuleType]:
    """Import plug-in modules, so that their registrations (strategies, rules...) run.

    Parameters
    ----------
    specs : sequence of str
        Module names (searched on ``sys.path``, then in the current directory) or paths of
        ``.py`` files. A module already imported is not imported again.

    Returns
    -------
    list of module
        The imported modules, in order.

    Raises
    ------
    ImportError, FileNotFoundError
        A module that cannot be found; any exception the module raises on import.
    """
    if isinstance(specs, str):
        raise TypeError(f"plugins must be a list of module names or files, got {specs!r}")
    return [_import_plugin(spec) for spec in specs]


# ---------------------------------------------------------------------------- storage
def _file_format() -> str:
    """``"parquet"`` when pyarrow is importable, else ``"csv"``."""
    return "parquet" if importlib.util.find_spec("pyarrow") is not None else "csv"


#: The first characters of a CSV set file: its header line (JSON follows).
_CSV_HEADER = "# carbonsim-set "
#: The parquet schema metadata key holding a set file's header.
_PARQUET_KEY = b"carbonsim_set"


def _digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(_manifest_text(document).encode()).hexdigest()


@dataclass(frozen=True)
class _Store:
    """The files of a resumable sweep directory.

    Each file carries a header (:meth:`header`): the set number, the content hash of its
    parameter set and the hash of the sweep, checked by :meth:`read` before any reuse.
    """

    directory: Path
    fmt: str
    sweep_hash: str
    set_hashes: tuple[str, ...]
    replicates: int

    def path(self, set_number: int, table: str) -> Path:
        return self.directory / f"set-{set_number:05d}.{table}.{self.fmt}"

    def header(self, set_number: int, table: str) -> dict[str, Any]:
        return {
            "set": set_number,
            "set_hash": self.set_hashes[set_number],
            "sweep_hash": self.sweep_hash,
            "table": table,
        }

    def write(self, set_number: int, summary: pd.DataFrame, market: pd.DataFrame | None) -> None:
        # the market first: the summary file marks the set as finished
        if market is not None:
            self._write_file(set_number, "market", market)
        self._write_file(set_number, "summary", summary)

    def _write_file(self, set_number: int, table: str, frame: pd.DataFrame) -> None:
        header = json.dumps(self.header(set_number, table), sort_keys=True)
        writer = functools.partial(self._write, frame, header)
        atomic_write_with(self.path(set_number, table), writer)

    def _write(self, frame: pd.DataFrame, header: str, path: Path) -> None:
        frame = frame.copy()
        frame.attrs = {}
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(frame)
            meta = {**(arrow.schema.metadata or {}), _PARQUET_KEY: header.encode()}
            pq.write_table(arrow.replace_schema_metadata(meta), path)
        else:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(f"{_CSV_HEADER}{header}\n")
                frame.to_csv(fh)

    def finished(self, set_number: int, keep_market: bool) -> bool:
        return self.path(set_number, "summary").is_file() and (
            not keep_market or self.path(set_number, "market").is_file()
        )

    def _found_header(self, path: Path) -> Any:
        try:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                raw = (pq.read_schema(path).metadata or {}).get(_PARQUET_KEY)
                return None if raw is None else json.loads(raw)
            with open(path, encoding="utf-8") as fh:
                first = fh.readline()
            return json.loads(first[len(_CSV_HEADER) :]) if first.startswith(_CSV_HEADER) else None
        except (ValueError, UnicodeDecodeError):
            return None
        except Exception as exc:  # pyarrow's errors for a file that is not parquet
            if type(exc).__module__.startswith("pyarrow"):
                return None
            raise

    def check(self, set_number: int, table: str) -> None:
        """Raise ``ValueError`` naming the file unless it holds this set of this sweep."""
        path = self.path(set_number, table)
        found = self._found_header(path)
        wanted = self.header(set_number, table)
        if not isinstance(found, dict):
            problem = "it has no carbonsim set header (it was not written by this sweep)"
        elif found.get("sweep_hash") != self.sweep_hash:
            problem = (
                f"it belongs to another sweep (sweep hash {str(found.get('sweep_hash'))[:12]}, "
                f"this sweep's is {self.sweep_hash[:12]})"
            )
        elif found.get("set") != set_number or found.get("set_hash") != wanted["set_hash"]:
            problem = (
                f"it holds set {found.get('set')!r} (parameter set hash "
                f"{str(found.get('set_hash'))[:12]}), not set {set_number} (hash "
                f"{str(wanted['set_hash'])[:12]}): files were renamed or swapped"
            )
        elif found.get("table") != table:
            problem = f"it holds the {found.get('table')!r} table, not {table!r}"
        else:
            return
        raise ValueError(_mismatch(path, problem))

    def read(self, set_number: int, table: str) -> pd.DataFrame:
        """The table of a finished set, after :meth:`check` of its file and replicates."""
        self.check(set_number, table)
        path = self.path(set_number, table)
        if self.fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            # text in, exact floats out: Python's shortest repr (how pandas writes floats)
            # parses back to the same float64, which pandas' fast CSV parser does not promise
            raw = pd.read_csv(path, dtype=str, skiprows=1)
            keys = ["replicate", "date"] if table == "market" else ["replicate"]
            levels: list[pd.Index] = [pd.Index(raw["replicate"].astype(np.int64))]
            if table == "market":  # dates as text: restore the engine's dtype
                levels.append(pd.DatetimeIndex(pd.to_datetime(raw["date"])).as_unit("us"))
            frame = raw.drop(columns=keys).astype(np.float64)
            frame.index = (
                pd.MultiIndex.from_arrays(levels, names=keys)
                if len(levels) > 1
                else levels[0].rename("replicate")
            )
        frame.attrs = {}
        found = sorted(set(frame.index.get_level_values("replicate").tolist()))
        if found != list(range(self.replicates)):
            shown = f"{found[:5]}{'...' if len(found) > 5 else ''}"
            problem = f"it holds replicates {shown}, not 0..{self.replicates - 1}"
            raise ValueError(_mismatch(path, problem))
        return frame


def _mismatch(path: Path, problem: str) -> str:
    return (
        f"sweep file {str(path)!r} does not match this sweep: {problem}. Delete that file "
        "(its set is computed again) or use another directory"
    )


def _manifest_text(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"


def _open_store(directory: Path, manifest: dict[str, Any]) -> _Store:
    """Check that an existing manifest describes the same sweep (written by the caller)."""
    target = directory / MANIFEST
    fmt = str(manifest["format"])
    if target.is_file():
        found = json.loads(target.read_text(encoding="utf-8"))
        wanted = json.loads(_manifest_text(manifest))
        differ = sorted(k for k in wanted if k != "format" and found.get(k) != wanted[k])
        if len(differ) > 1 and "sweep_hash" in differ:  # it follows from the rest
            differ.remove("sweep_hash")
        if differ:
            raise ValueError(
                f"directory {str(directory)!r} holds a different sweep (it differs in: "
                f"{', '.join(differ)}); use another directory or delete {str(target)!r}"
            )
        fmt = str(found.get("format", manifest["format"]))
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"{str(target)!r}: unknown format {fmt!r}; expected parquet or csv")
    return _Store(
        directory,
        fmt,
        sweep_hash=str(manifest["sweep_hash"]),
        set_hashes=tuple(manifest["set_hashes"]),
        replicates=int(manifest["replicates"]),
    )


# ---------------------------------------------------------------------------- workers
def _die() -> None:
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _watch_parent(parent_pid: int) -> None:
    """Wait until the process that started this worker is gone, then end this worker."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # its end of a pipe closes when it dies (a handle on Windows)
    else:  # pragma: no cover - every pool worker is a multiprocessing child
        while os.getppid() == parent_pid:
            time.sleep(0.5)
    _die()


def _worker_init(parent_pid: int) -> None:
    """Initializer of the local pool's workers: die with the process that runs the sweep.

    Without it a ``kill -9`` of that process leaves the workers running (each holds the
    write end of the task queue, so none ever sees it close).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the line above
        _die()
    watcher = threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="carbonsim-parent-watch", daemon=True
    )
    watcher.start()


@contextlib.contextmanager
def _local_pool(workers: int) -> Iterator[cf.ProcessPoolExecutor]:
    pool = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_GUARD_FIX = (
    "Put the code that runs the sweep under the guard, as in the README:\n\n"
    '    if __name__ == "__main__":\n'
    "        sw = cs.sweep(...)\n\n"
    "or pass an executor that needs no new processes, e.g. "
    "executor=concurrent.futures.ThreadPoolExecutor()."
)


def _is_main_guard(node: ast.stmt, line: int) -> bool:
    """Whether ``line`` is in the body of ``if __name__ == "__main__":`` (statement ``node``)."""
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)):
        return False
    test = node.test
    sides = [test.left, *test.comparators]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    values = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    if not (len(sides) == 2 and names and values and isinstance(test.ops[0], ast.Eq)):
        return False
    last = node.body[-1]
    return node.body[0].lineno <= line <= (last.end_lineno or last.lineno)


def _unguarded_call(main: ModuleType | None) -> tuple[str, int] | None:
    """(script, line) when the ``__main__`` script runs this call at its top level unguarded.

    Spawned workers run such a script again (as ``__mp_main__``); a module run as
    ``python -m pkg`` (``pkg.__main__``), an interactive session or ``python -c`` is not.
    """
    path = getattr(main, "__file__", None)
    if main is None or not isinstance(path, str):
        return None
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if isinstance(name, str) and (name == "__main__" or name.endswith(".__main__")):
        return None
    frame = inspect.currentframe()
    while frame is not None and not (
        frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)
    ):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return None if _is_main_guard(node, line) else (path, line)
    return None


def _check_spawn_is_safe() -> None:
    """Refuse, with the fix, to start spawn workers that would run the sweep again."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "carbonsim.sweep() was called while a worker process was importing the main "
            'script: the script calls sweep() outside `if __name__ == "__main__":`. ' + _GUARD_FIX
        )
    where = _unguarded_call(sys.modules.get("__main__"))
    if where is not None:
        raise RuntimeError(
            "carbonsim.sweep() runs its tasks in worker processes started with 'spawn', and "
            f"each worker imports your script {where[0]!r} again: line {where[1]} is not "
            'under `if __name__ == "__main__":`, so every worker would start the sweep '
            "again (and fail). " + _GUARD_FIX
        )


# ---------------------------------------------------------------------------- sweep
def _progress_bar(progress: bool, total: int, initial: int) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="sweep", unit="task")


def sweep(
    scenario: Scenario | str | os.PathLike[str],
    params: Mapping[str, Sequence[Any]],
    *,
    replicates: int = 1,
    seed: int = 0,
    executor: cf.Executor | None = None,
    workers: int | None = None,
    chunk: int | None = None,
    progress: bool = False,
    directory: str | os.PathLike[str] | None = None,
    keep_market: bool = False,
    plugins: Sequence[str] = (),
    backend: str | None = None,
) -> SweepResult:
    """Run every combination of parameter values, with seeded replicates, on an executor.

    Parameters
    ----------
    scenario : Scenario, str or path-like
        The base scenario, a built-in scenario name or the path of a TOML file.
    params : mapping of str to sequence
        Dotted field path (as in :func:`~carbonsim.scenario.loader.with_overrides`, e.g.
        ``"periods.*.offset_limit_share"``) -> values to sweep. The parameter sets are the
        Cartesian product, numbered in row-major order (the last path varies fastest).
        ``{}`` gives one set: the base scenario (a plain Monte Carlo ensemble).
    replicates : int
        Replicates per parameter set, >= 1. Replicate ``k`` of every set uses the ``k``-th
        child of ``SeedSequence(seed)`` (common random numbers across sets).
    seed : int
        Root seed, >= 0.
    executor : concurrent.futures.Executor, optional
        Where tasks run; None: a local process pool (see the module notes). A given
        executor is not shut down.
    workers : int, optional
        Processes of the local pool (default ``os.cpu_count()``); also sets the default
        ``chunk`` for any executor.
    chunk : int, optional
        Replicates per task, >= 1 (default: about two tasks per worker). Larger chunks
        batch more replicates into one vectorized simulation.
    progress : bool
        Show a tqdm progress bar over tasks.
    directory : str or path-like, optional
        Make the sweep resumable: finished parameter sets are written here and loaded,
        not recomputed, by a later call with the same arguments.
    keep_market : bool
        Also return (and store) the market table of every replicate (large).
    plugins : sequence of str
        Modules or ``.py`` files to import, here and in every worker before its tasks,
        so that the plug-ins they register (e.g. a strategy the scenario names) exist
        there too (:func:`import_plugins`).
    backend : None
        Deprecated and ignored: carbonsim has one engine (a value warns).

    Returns
    -------
    SweepResult
        Identical for every executor, number of workers, chunk size and resumption.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, or a path or value the scenario rejects (the message names the field
        path); a ``directory`` holding a different sweep, or a set file that does not match
        this sweep (named).
    RuntimeError
        With the local pool, when called from a script's top level outside the
        ``if __name__ == "__main__":`` guard (spawned workers would run it again).
    Exception
        The first exception raised by a task, after the tasks not yet started are cancelled
        and the running ones have finished: every set completed by then is in
        ``directory``, so the same call resumes from there.
    """
    from carbonsim._deprecation import check_deprecated_backend
    from carbonsim.results import SUMMARY_METRICS
    from carbonsim.scenario.loader import load_scenario, with_overrides
    from carbonsim.scenario.schema import Scenario

    plugin_keys = tuple(_plugin_key(p) for p in _check_plugins(plugins))
    import_plugins(plugin_keys)
    if isinstance(scenario, Scenario):
        base = scenario
    else:
        base = load_scenario(scenario if isinstance(scenario, str) else Path(scenario))
    swept = _check_params(params)
    n_replicates = _check_count("replicates", replicates)
    assert n_replicates is not None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    seed = int(seed)
    check_deprecated_backend(backend)
    n_workers = _check_count("workers", workers, allow_none=True)
    chunk = _check_count("chunk", chunk, allow_none=True)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}"
        )
    if executor is None:
        _check_spawn_is_safe()

    paths = list(swept)
    combos = list(itertools.product(*(swept[p] for p in paths)))
    scenarios = [with_overrides(base, list(zip(paths, combo, strict=True))) for combo in combos]
    sets = pd.DataFrame({p: [combo[i] for combo in combos] for i, p in enumerate(paths)})
    sets.index = pd.RangeIndex(len(combos), name="set")
    provenance: dict[str, Any] = {
        "carbonsim_version": __version__,
        "scenario": base.name,
        "scenario_hash": base.content_hash(),
        "seed": seed,
        "replicates": n_replicates,
        "params": swept,
        "set_hashes": [sc.content_hash() for sc in scenarios],
    }
    if plugin_keys:
        provenance["plugins"] = list(plugin_keys)
    provenance["sweep_hash"] = _digest(provenance)

    store = None
    manifest = {**provenance, "format": _file_format()}
    if directory is not None:
        store = _open_store(Path(directory), manifest)

    summaries: dict[int, pd.DataFrame] = {}
    markets: dict[int, pd.DataFrame] = {}
    if store is not None:
        for s in range(len(scenarios)):
            if store.finished(s, keep_market):
                summaries[s] = store.read(s, "summary")
                if keep_market:
                    markets[s] = store.read(s, "market")
        if summaries:
            log.info("sweep: %d of %d sets loaded from %s", len(summaries), len(combos), directory)
        # written only now: after the files found were checked against this sweep
        if not (store.directory / MANIFEST).is_file():
            atomic_write_text(store.directory / MANIFEST, _manifest_text(manifest))

    size = chunk or _default_chunk(n_replicates, len(combos), n_workers or os.cpu_count() or 1)
    pieces = _chunks(n_replicates, min(size, n_replicates))
    tasks = [
        _Task(s, sc, seed, first, count, keep_market, plugin_keys)
        for s, sc in enumerate(scenarios)
        if s not in summaries
        for first, count in pieces
    ]
    bar = _progress_bar(progress, len(combos) * len(pieces), len(summaries) * len(pieces))
    try:
        if tasks:
            with contextlib.ExitStack() as stack:
                pool = executor
                if pool is None:
                    local = min(n_workers or os.cpu_count() or 1, len(tasks))
                    pool = stack.enter_context(_local_pool(local))
                _collect(pool, tasks, len(pieces), summaries, markets, store, bar)
    finally:
        if bar is not None:
            bar.close()

    summary = pd.concat([summaries[s] for s in range(len(combos))], keys=range(len(combos)))
    summary.index.names = ["set", "replicate"]
    if paths:
        summary = summary.join(sets, on="set")
        summary = summary[[*paths, *[c for c in summary.columns if c not in paths]]]
    summary.attrs["units"] = {c: SUMMARY_METRICS[c][0] for c in summary if c in SUMMARY_METRICS}
    summary.attrs["provenance"] = provenance
    market = None
    if keep_market:
        market = pd.concat([markets[s] for s in range(len(combos))], keys=range(len(combos)))
        market.index.names = ["set", "replicate", "date"]
        market.attrs["provenance"] = provenance
    return SweepResult(sets=sets, summary=summary, market=market, provenance=provenance)


def _collect(
    pool: cf.Executor,
    tasks: list[_Task],
    per_set: int,
    summaries: dict[int, pd.DataFrame],
    markets: dict[int, pd.DataFrame],
    store: _Store | None,
    bar: Any,
) -> None:
    """Submit the tasks, gather chunks by set, write each set when it is complete.

    After a task fails, the tasks not started are cancelled, the running ones are still
    collected (so every set they complete is written), and the first error is raised.
    """
    pending: dict[int, list[_TaskResult]] = {}
    futures = [pool.submit(_run_task, task) for task in tasks]
    error: BaseException | None = None
    try:
        for future in cf.as_completed(futures):
            try:
                done = future.result()
            except cf.CancelledError:
                continue
            except Exception as exc:
                if error is None:
                    error = exc
                    for other in futures:
                        other.cancel()
                continue
            if bar is not None:
                bar.update(1)
            parts = pending.setdefault(done.set, [])
            parts.append(done)
            if len(parts) < per_set:
                continue
            parts.sort(key=lambda p: p.first)
            summary = pd.concat([p.summary for p in parts])
            market = None
            if parts[0].market is not None:
                market = pd.concat([p.market for p in parts if p.market is not None])
                markets[done.set] = market
            summaries[done.set] = summary
            del pending[done.set]
            if store is not None:
                store.write(done.set, summary, market)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    if error is not None:
        raise error
