"""Memory guard: estimate a run's peak memory up front and refuse runs that cannot fit.

:func:`estimate_memory` predicts the peak of the memory a :class:`~carbonsim.Simulation`
allocates while it runs (on top of the interpreter and the loaded modules), from the sizes
that drive it:

==========  =====================================================================
``R``       replicates advanced in lockstep
``N``       units: ``population.n_units``, else the preset's count
``T``       trading sessions of the calendar between ``time.start`` and ``time.end``
``V``       vintages: the emission years of all periods plus one
``P``       compliance periods (one row per unit and replicate each in the units table)
``O``       synthetic offset projects: ``offsets.projects``
==========  =====================================================================

::

    bytes = OVERHEAD
          + MARKET_FACTOR * R * T * MARKET_COLUMNS * 8    recorded session columns, table
          + UNITS_FACTOR  * R * N * P * UNIT_COLUMNS * 8  per-period rows, units table
          + STATE_ARRAYS  * R * N * 8                     per-session float64 temporaries
          + LEDGER_ARRAYS * R * N * V * 8                 int64 holdings, memo accounts, draws
          + UNIT_BYTES    * N                             units table, MAC curves, population
          + PROJECT_BYTES * O                             project table (ids, names, dates)
          + ISSUANCE_ARRAYS * R * O * 8                   one year's issuance draws, credits

Calibration
-----------
The constants were fitted (least squares on relative error, then rounded up) to runs
measured with :func:`measure_memory` in fresh subprocesses (carbonsim 0.1, numpy 2.4,
pandas 3.1): ``china-national-tiny`` with ``N`` in {60, 500, 2000, 6000} and ``R`` in
{1, 4, 16, 48}, then checked on the other built-in scenarios (``T`` up to 2,817 sessions,
``P`` up to 12 periods, ``V`` up to 13 vintages). Over those 29 runs (0.3 to 240 MB) the
estimate lies between 0.7 and 1.7 times the peak traced by :mod:`tracemalloc`, and between
0.8 and 1.2 times the growth of the resident set for the runs above 20 MB (the ones the
guard is for; the resident set of smaller runs is dominated by allocator noise). Three
larger runs confirm it: ``china-national`` with 100 replicates (estimate 609 MB, resident
set growth 554 MB), ``china-national-tiny`` with 20,000 units and 32 replicates (618 MB vs
533 MB) and ``eu-ets`` with 16 replicates (359 MB vs 332 MB). The two project terms were
fitted to ``ccer-2024-tiny`` with ``offsets.projects`` in {20,000, 100,000, 400,000} and
``R`` in {1, 8, 64, 256} (traced peaks 54 MB to 1.1 GB beyond the run without projects):
the estimate lies between 1.05 and 1.6 times them. Recorded
trades (``record_trades=True``) are not included: their number depends on the behaviour,
not on the sizes.

:func:`check_memory` compares the estimate with a limit, by default 80 % of the memory
available now (:func:`available_memory`: ``psutil`` when installed, else
``/proc/meminfo`` ``MemAvailable``, bounded by a cgroup v2 memory limit), and raises
:class:`MemoryError` saying how many replicates would fit.

Examples
--------
>>> from carbonsim.scenario import load_scenario
>>> sc = load_scenario("china-national-tiny")
>>> estimate_memory(sc, replicates=100) < estimate_memory(sc, replicates=1000)
True
>>> check_memory(sc, 1000, limit=1_000_000)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
MemoryError: a run of china-national-tiny with 1000 replicates needs about 88.9 MiB ...
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from carbonsim.scenario.schema import Scenario

__all__ = [
    "DEFAULT_FRACTION",
    "RunSize",
    "available_memory",
    "check_memory",
    "estimate_memory",
    "measure_memory",
    "run_size",
]

logger = logging.getLogger(__name__)

#: Share of the available memory a run may use when :func:`check_memory` gets no limit.
DEFAULT_FRACTION = 0.8

# Constant factors of the estimate (see the module docstring for their calibration).
OVERHEAD = 256 * 1024  # bytes: scalars, simpy events, small tables
MARKET_COLUMNS = 16  # float64 columns recorded per session and replicate
MARKET_FACTOR = 2.5  # record arrays, the DataFrame built from them, its index
UNIT_COLUMNS = 15  # columns of the units table
UNITS_FACTOR = 6.0  # (R, Y, N) period arrays, per-period rows, the concatenated table
STATE_ARRAYS = 3.5  # further float64 (R, N) arrays alive at the peak
LEDGER_ARRAYS = 8.0  # int64 (R, N, V) arrays: holdings, memo accounts, temporaries
UNIT_BYTES = 96 * 8  # bytes per unit: units table, MAC curves, population draw
PROJECT_BYTES = 560  # bytes per offset project: the project table, its strings and dates
ISSUANCE_ARRAYS = 5.0  # float64 (R, O) arrays of one year's issuance at its peak

_MEMINFO = Path("/proc/meminfo")
_CGROUP_MAX = Path("/sys/fs/cgroup/memory.max")
_CGROUP_CURRENT = Path("/sys/fs/cgroup/memory.current")


class RunSize(NamedTuple):
    """The sizes that drive a run's memory (see the module docstring)."""

    replicates: int
    """``R``."""
    units: int
    """``N``."""
    sessions: int
    """``T``."""
    vintages: int
    """``V``."""
    periods: int
    """``P``."""
    projects: int = 0
    """``O``: synthetic offset projects."""


def _check_replicates(replicates: int) -> int:
    if isinstance(replicates, bool) or not isinstance(replicates, int):
        raise TypeError(f"replicates must be an int, got {replicates!r}")
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    return replicates


def run_size(scenario: Scenario, replicates: int) -> RunSize:
    """The sizes ``(R, N, T, V, P, O)`` of a run of ``scenario`` with ``replicates``.

    Parameters
    ----------
    scenario : Scenario
    replicates : int
        ``R``, >= 1.

    Returns
    -------
    RunSize

    Raises
    ------
    ValueError
        If the population preset is unknown (the message lists the presets).
    """
    from carbonsim.engine.calendar import trading_days
    from carbonsim.market.population import COVERAGE
    from carbonsim.scenario.schema import Scenario

    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a Scenario, got {type(scenario).__name__}")
    r = _check_replicates(replicates)
    pop = scenario.population
    if pop.n_units is not None:
        n = pop.n_units
    elif pop.preset is not None and pop.preset in COVERAGE:
        n = COVERAGE[pop.preset].n_units
    else:
        raise ValueError(
            f"population.preset {pop.preset!r} is not a coverage preset; valid presets: "
            + ", ".join(sorted(COVERAGE))
        )
    days = trading_days(scenario.time.start, scenario.time.end, scenario.time.calendar)
    years = [y for p in scenario.periods for y in p.emission_years]
    vintages = max(years) - min(years) + 2
    projects = int(scenario.offsets.projects)
    return RunSize(r, int(n), len(days), vintages, len(scenario.periods), projects)


def _estimate(size: RunSize) -> float:
    r, n, t, v, p, o = size
    return (
        OVERHEAD
        + MARKET_FACTOR * r * t * MARKET_COLUMNS * 8
        + UNITS_FACTOR * r * n * p * UNIT_COLUMNS * 8
        + STATE_ARRAYS * r * n * 8
        + LEDGER_ARRAYS * r * n * v * 8
        + UNIT_BYTES * n
        + PROJECT_BYTES * o
        + ISSUANCE_ARRAYS * r * o * 8
    )


def estimate_memory(scenario: Scenario, replicates: int) -> int:
    """Estimated peak memory of a run, bytes, beyond what the interpreter already holds.

    See the module docstring for the formula and its accuracy (0.7 to 1.7 times the
    measured peaks on the built-in scenarios). Costs one calendar look-up; nothing
    is simulated.

    Parameters
    ----------
    scenario : Scenario
        The scenario to run.
    replicates : int
        Replicates ``R`` run in lockstep in one :class:`~carbonsim.Simulation`.

    Returns
    -------
    int
        Bytes.
    """
    return math.ceil(_estimate(run_size(scenario, replicates)))


def _read_meminfo() -> int | None:
    try:
        text = _MEMINFO.read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            try:
                return int(parts[1]) * 1024  # reported in kB
            except (IndexError, ValueError):
                return None
    return None


def _cgroup_room() -> int | None:
    """Bytes left below a cgroup v2 memory limit, or None without a limit."""
    try:
        limit = _CGROUP_MAX.read_text(encoding="ascii").strip()
        used = _CGROUP_CURRENT.read_text(encoding="ascii").strip()
    except OSError:
        return None
    if limit == "max":
        return None
    try:
        return max(int(limit) - int(used), 0)
    except ValueError:
        return None


def available_memory() -> int | None:
    """Memory available to this process now, bytes; None when it cannot be told.

    ``psutil.virtual_memory().available`` when psutil is installed, else ``MemAvailable``
    from ``/proc/meminfo``; either is lowered to the room left under a cgroup v2 memory
    limit (containers), when there is one.
    """
    try:  # optional; imported by name so that type checkers need no stubs
        psutil = importlib.import_module("psutil")
    except ImportError:
        free = _read_meminfo()
    else:
        free = int(psutil.virtual_memory().available)
    room = _cgroup_room()
    if room is not None:
        free = room if free is None else min(free, room)
    return free


def _mib(n: float) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    return f"{n / 1024**2:.1f} MiB"


def check_memory(scenario: Scenario, replicates: int, *, limit: int | None = None) -> int:
    """Raise :class:`MemoryError` before a run whose estimated peak exceeds the limit.

    Parameters
    ----------
    scenario : Scenario
        The scenario to run.
    replicates : int
        Replicates ``R`` run in one :class:`~carbonsim.Simulation`.
    limit : int, optional
        Largest acceptable estimate, bytes. By default :data:`DEFAULT_FRACTION` of
        :func:`available_memory`; when that cannot be told, nothing is checked.

    Returns
    -------
    int
        The estimate, bytes (:func:`estimate_memory`).

    Raises
    ------
    MemoryError
        With the estimate, the memory available, the limit and what to do: how many
        replicates fit in one run, and how to run the rest in chunks.
    """
    size = run_size(scenario, replicates)
    need = math.ceil(_estimate(size))
    free: int | None = None
    if limit is None:
        free = available_memory()
        if free is None:
            logger.info("available memory unknown: run of %s not checked", _mib(need))
            return need
        cap = int(DEFAULT_FRACTION * free)
        cap_text = f"{DEFAULT_FRACTION:.0%} of the {_mib(free)} available"
    else:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an int number of bytes or None, got {limit!r}")
        if limit <= 0:
            raise ValueError(f"limit must be > 0 bytes, got {limit}")
        cap = limit
        cap_text = f"the limit of {_mib(limit)}"
    logger.debug("estimated peak memory %s for %s (limit %s)", _mib(need), size, _mib(cap))
    if need <= cap:
        return need
    per_replicate = _estimate(RunSize(1, *size[1:])) - _estimate(RunSize(0, *size[1:]))
    fits = int((cap - _estimate(RunSize(0, *size[1:]))) // per_replicate)
    if fits >= 1:
        advice = (
            f"at most {fits} replicate(s) fit in one run: run fewer replicates, or run the "
            f"{size.replicates} in chunks of {fits} (Simulation(..., replicates={fits}, "
            f"first_replicate=k) for k = 0, {fits}, {2 * fits}, ...; or carbonsim.sweep(..., "
            f"chunk={fits})) - replicate k is identical whichever chunk computes it"
        )
    else:
        projects = " or fewer offset projects (offsets.projects)" if size.projects else ""
        advice = (
            "even one replicate does not fit: use fewer units (population.n_units)"
            f"{projects} or a shorter time window, or free memory"
        )
    projects_text = f", {size.projects} offset projects" if size.projects else ""
    raise MemoryError(
        f"a run of {scenario.name} with {size.replicates} replicates needs about "
        f"{_mib(need)} ({size.units} units, {size.sessions} sessions, {size.vintages} "
        f"vintages, {size.periods} periods{projects_text}), more than {cap_text}; {advice}"
    )


_MEASURE = """
import json, resource, sys, tracemalloc
import carbonsim as cs
from carbonsim.engine.simulation import Simulation
from carbonsim.scenario.schema import Scenario

args = json.loads(sys.stdin.read())
scenario = Scenario.model_validate_json(args["scenario"])
cs.simulate("china-national-tiny", seed=1)  # load every module the engine imports lazily
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
def rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:  # no /proc: the high-water mark so far
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
before = rss()
if args["trace"]:
    tracemalloc.start()
Simulation(scenario, seed=args["seed"], replicates=args["replicates"]).run()
out = {}
if args["trace"]:
    out["traced"] = tracemalloc.get_traced_memory()[1]
else:
    out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale - before
print(json.dumps(out))
"""


def measure_memory(
    scenario: Scenario, replicates: int, *, seed: int = 0, trace: bool = True
) -> int:
    """Measure the peak memory of a real run in a fresh Python subprocess, bytes.

    The tool the constants of :func:`estimate_memory` were calibrated with. The child
    imports carbonsim and runs the tiny scenario once (so lazily imported modules are not
    counted), then runs ``scenario`` with ``replicates``.

    Parameters
    ----------
    scenario : Scenario
    replicates : int
    seed : int
        Root seed of the run.
    trace : bool
        True: the peak traced by :mod:`tracemalloc` (numpy and Python allocations; slows
        the run down). False: the growth of the peak resident set size over the
        resident set before the run (``ru_maxrss``; Unix), which also counts allocator
        overhead and memory outside Python's allocators, but reads 0 when the run stays
        below the high-water mark the child had already reached.

    Returns
    -------
    int
        Bytes.

    Raises
    ------
    RuntimeError
        If the child process fails (its standard error is included).
    """
    _check_replicates(replicates)
    payload = json.dumps(
        {
            "scenario": scenario.model_dump_json(),
            "replicates": replicates,
            "seed": seed,
            "trace": bool(trace),
        }
    )
    env = dict(os.environ)
    env.pop("PYTHONTRACEMALLOC", None)
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return max(int(out["traced" if trace else "rss"]), 0)
