"""Sweeps: the same numbers on every executor and chunking, resumption, the CLI command.

The reference is two offset caps x two replicates of the tiny scenario, checked against
direct :func:`carbonsim.simulate` calls; every other way of running the sweep (local
processes, threads, one replicate per task, a Dask cluster, resumed from files) must give
exactly the same table.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib.machinery
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import carbonsim as cs
from carbonsim import ensemble
from carbonsim.cli import EXIT_OK, EXIT_USAGE, main
from carbonsim.ensemble import MANIFEST, SweepResult, parse_param, sweep
from carbonsim.results import SUMMARY_METRICS

TINY = "china-national-tiny"
PARAM = "periods.*.offset_limit_share"
VALUES = [0.0, 0.05]
PARAMS = {PARAM: VALUES}


class CountingExecutor(cf.ThreadPoolExecutor):
    """A thread pool that counts the tasks submitted to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


class FailingExecutor(cf.Executor):
    """Runs tasks synchronously; the ``fail_at``-th submitted task fails."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        self.calls += 1
        future: cf.Future[Any] = cf.Future()
        if self.calls == self.fail_at:
            future.set_exception(RuntimeError("worker lost"))
        else:
            future.set_result(fn(*args, **kwargs))
        return future


@pytest.fixture
def counting() -> Iterator[CountingExecutor]:
    with CountingExecutor() as ex:
        yield ex


@pytest.fixture(scope="module")
def reference() -> SweepResult:
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        return sweep(TINY, PARAMS, replicates=2, seed=0, executor=ex, chunk=2)


def _same(a: SweepResult, b: SweepResult) -> None:
    pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
    pd.testing.assert_frame_equal(a.sets, b.sets, check_exact=True)


# ---------------------------------------------------------------------------- numbers
def test_summary_equals_direct_simulation(reference: SweepResult) -> None:
    base = cs.load_scenario(TINY)
    assert reference.summary.index.names == ["set", "replicate"]
    assert list(reference.summary.columns) == [PARAM, *SUMMARY_METRICS]
    assert reference.params == [PARAM]
    assert reference.metrics == list(SUMMARY_METRICS)
    for s, value in enumerate(VALUES):
        direct = cs.simulate(
            cs.with_overrides(base, {PARAM: value}), seed=0, replicates=2
        ).summary_by_replicate()
        got = reference.summary.loc[s]
        pd.testing.assert_frame_equal(got[list(SUMMARY_METRICS)], direct, check_exact=True)
        assert (got[PARAM] == value).all()
    assert reference.summary.attrs["units"]["final_price"] == "currency/t"
    assert reference.provenance["params"] == PARAMS
    assert reference.provenance["scenario_hash"] == base.content_hash()


def test_processes_threads_and_chunks_give_identical_results(reference: SweepResult) -> None:
    processes = sweep(TINY, PARAMS, replicates=2, seed=0, workers=2)  # default executor
    _same(processes, reference)
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        one_per_task = sweep(TINY, PARAMS, replicates=2, seed=0, executor=ex, chunk=1)
    _same(one_per_task, reference)


@pytest.mark.slow  # 5-12 s: starts two worker processes
def test_dask_cluster_gives_identical_results(
    reference: SweepResult, capsys: pytest.CaptureFixture[str]
) -> None:
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    address = cluster.scheduler_address
    try:
        client = distributed.Client(cluster)
        try:
            on_dask = sweep(
                TINY, PARAMS, replicates=2, seed=0, executor=client.get_executor(), chunk=1
            )
        finally:
            client.close()
        # the command line connects its own client to the same scheduler
        argv = ["sweep", TINY, "--param", f"{PARAM}=0.0,0.05", "--replicates", "2"]
        code = main([*argv, "--scheduler", address])
    finally:
        cluster.close()
    _same(on_dask, reference)
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert f"on {address}" in out


def test_table_is_mean_and_percentiles(reference: SweepResult) -> None:
    table = reference.table()
    assert table.index.names == ["set", "metric"]
    assert list(table.columns) == [PARAM, "unit", "mean", "p05", "p50", "p95"]
    for s in (0, 1):
        v = np.sort(reference.summary.loc[s, "final_price"].to_numpy())
        row = table.loc[(s, "final_price")]
        assert row[PARAM] == VALUES[s]
        assert row["unit"] == "currency/t"
        assert row["mean"] == pytest.approx((v[0] + v[1]) / 2)
        assert row["p05"] == pytest.approx(v[0] + 0.05 * (v[1] - v[0]))
        assert row["p95"] == pytest.approx(v[0] + 0.95 * (v[1] - v[0]))
    assert list(reference.table(percentiles=[10, 2.5]).columns)[-2:] == ["p10", "p2.5"]
    with pytest.raises(ValueError, match="percentiles must lie in"):
        reference.table(percentiles=[101])


def test_sets_are_the_cartesian_product(counting: CountingExecutor) -> None:
    params = {PARAM: [0.0, 0.05], "behaviour.forecast_sigma": np.array([0.05, 0.1])}
    result = sweep(TINY, params, replicates=1, executor=counting)
    assert counting.submitted == 4
    assert result.n_sets == 4
    assert result.sets.index.name == "set"
    assert result.sets.to_dict("list") == {
        PARAM: [0.0, 0.0, 0.05, 0.05],
        "behaviour.forecast_sigma": [0.05, 0.1, 0.05, 0.1],
    }
    assert list(result.summary.columns[:2]) == [PARAM, "behaviour.forecast_sigma"]
    assert len(set(result.provenance["set_hashes"])) == 4
    assert result.summary.index.tolist() == [(s, 0) for s in range(4)]


def test_no_params_is_an_ensemble_of_the_base_scenario(counting: CountingExecutor) -> None:
    base = cs.load_scenario(TINY)
    result = sweep(base, {}, replicates=2, seed=3, executor=counting, chunk=1)
    assert counting.submitted == 2
    assert result.params == []
    assert result.n_sets == 1
    direct = cs.simulate(base, seed=3, replicates=2).summary_by_replicate()
    pd.testing.assert_frame_equal(result.summary.loc[0], direct, check_exact=True)
    assert list(result.table().columns) == ["unit", "mean", "p05", "p50", "p95"]


def test_progress_bar(capsys: pytest.CaptureFixture[str], counting: CountingExecutor) -> None:
    sweep(TINY, {}, replicates=2, executor=counting, chunk=1, progress=True)
    err = capsys.readouterr().err
    assert "sweep" in err
    assert "2/2" in err


# ---------------------------------------------------------------------------- resuming
def test_resume_after_deleting_a_set(
    reference: SweepResult, tmp_path: Path, counting: CountingExecutor
) -> None:
    first = sweep(TINY, PARAMS, replicates=2, executor=counting, chunk=1, directory=tmp_path)
    assert counting.submitted == 4
    _same(first, reference)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [
        "set-00000.summary.parquet",
        "set-00001.summary.parquet",
        MANIFEST,
    ]
    (tmp_path / "set-00001.summary.parquet").unlink()
    again = sweep(TINY, PARAMS, replicates=2, executor=counting, chunk=1, directory=tmp_path)
    assert counting.submitted == 6  # only set 1's two chunks ran again
    _same(again, reference)
    loaded = sweep(TINY, PARAMS, replicates=2, executor=counting, directory=tmp_path)
    assert counting.submitted == 6  # everything loaded
    _same(loaded, reference)


def test_resume_after_a_failed_task(
    reference: SweepResult, tmp_path: Path, counting: CountingExecutor
) -> None:
    failing = FailingExecutor(fail_at=4)  # set 1, replicate 1
    with pytest.raises(RuntimeError, match="worker lost"):
        sweep(TINY, PARAMS, replicates=2, executor=failing, chunk=1, directory=tmp_path)
    assert (tmp_path / "set-00000.summary.parquet").is_file()
    assert not (tmp_path / "set-00001.summary.parquet").exists()
    resumed = sweep(TINY, PARAMS, replicates=2, executor=counting, chunk=1, directory=tmp_path)
    assert counting.submitted == 2
    _same(resumed, reference)


def test_directory_of_another_sweep_is_refused(tmp_path: Path, counting: CountingExecutor) -> None:
    sweep(TINY, {PARAM: [0.0]}, replicates=1, executor=counting, directory=tmp_path)
    with pytest.raises(ValueError, match=r"holds a different sweep \(it differs in: replicates\)"):
        sweep(TINY, {PARAM: [0.0]}, replicates=2, executor=counting, directory=tmp_path)
    with pytest.raises(ValueError, match=r"differs in: params, set_hashes"):
        sweep(TINY, {PARAM: [0.05]}, replicates=1, executor=counting, directory=tmp_path)
    assert counting.submitted == 1


def test_csv_store_and_market_tables_round_trip_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counting: CountingExecutor
) -> None:
    monkeypatch.setattr(ensemble, "_file_format", lambda: "csv")
    fresh = sweep(
        TINY, {PARAM: [0.0]}, replicates=2, executor=counting, directory=tmp_path, keep_market=True
    )
    assert sorted(p.name for p in tmp_path.glob("set-*")) == [
        "set-00000.market.csv",
        "set-00000.summary.csv",
    ]
    loaded = sweep(
        TINY, {PARAM: [0.0]}, replicates=2, executor=counting, directory=tmp_path, keep_market=True
    )
    assert counting.submitted == 2  # the first run's two chunks; the second loaded all
    _same(loaded, fresh)
    assert fresh.market is not None
    assert loaded.market is not None
    pd.testing.assert_frame_equal(loaded.market, fresh.market, check_exact=True)
    assert fresh.market.index.names == ["set", "replicate", "date"]
    direct = cs.simulate(cs.with_overrides(cs.load_scenario(TINY), {PARAM: 0.0}), replicates=2)
    pd.testing.assert_frame_equal(fresh.market.loc[0], direct.market, check_exact=True)


# ---------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"params": [(PARAM, [0.0])]}, TypeError, "params must be a mapping"),
        ({"params": {PARAM: 0.05}}, TypeError, r"must be a list of values, got 0.05"),
        ({"params": {PARAM: "0.05"}}, TypeError, "must be a list of values"),
        ({"params": {PARAM: []}}, ValueError, "is empty"),
        ({"params": {"periods.*.no_such_field": [1]}}, ValueError, "no_such_field"),
        ({"params": {PARAM: [2.0]}}, ValueError, "offset_limit_share"),
        ({"replicates": 0}, ValueError, "replicates must be >= 1, got 0"),
        ({"replicates": 1.5}, TypeError, "replicates must be an int"),
        ({"chunk": 0}, ValueError, "chunk must be >= 1"),
        ({"workers": True}, TypeError, "workers must be an int"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"executor": object()}, TypeError, "executor must be a concurrent.futures.Executor"),
    ],
)
def test_bad_arguments_fail_before_any_work(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"params": PARAMS, **kwargs}
    with pytest.raises(error, match=match):
        sweep(TINY, **args)


def test_unknown_scenario_lists_builtins() -> None:
    with pytest.raises(FileNotFoundError, match="china-national-tiny"):
        sweep("no-such-scenario", PARAMS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a.b=0.0,0.05", ("a.b", [0.0, 0.05])),
        ("a.b = 1, 2 ,3", ("a.b", [1, 2, 3])),
        ("time.calendar=XSHG,business", ("time.calendar", ["XSHG", "business"])),
        ("x=[1, 2],[3]", ("x", [[1, 2], [3]])),
        ("flag=true,false", ("flag", [True, False])),
    ],
)
def test_parse_param(text: str, expected: tuple[str, list[Any]]) -> None:
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["no-equals", "=1,2", "a.b="])
def test_parse_param_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--param"):
        parse_param(text)


def test_deprecated_backend_keyword_warns_and_changes_nothing(reference: SweepResult) -> None:
    warns = pytest.warns(DeprecationWarning, match="one engine")
    with cf.ThreadPoolExecutor(max_workers=2) as ex, warns:
        old = sweep(TINY, PARAMS, replicates=2, seed=0, executor=ex, chunk=1, backend="numba")
    _same(reference, old)
    with pytest.raises(ValueError, match="backend: got 'gpu'"):
        sweep(TINY, PARAMS, backend="gpu")


# ---------------------------------------------------------------------------- CLI
def test_cli_sweep_prints_table_writes_and_resumes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    reference: SweepResult,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the local process pool is tested above; threads keep this test fast
    monkeypatch.setattr(ensemble, "_local_pool", cf.ThreadPoolExecutor)
    argv = ["sweep", TINY, "--param", f"{PARAM}=0.0,0.05", "--replicates", "2"]
    argv += ["--workers", "2", "--out", str(tmp_path)]
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert "china-national-tiny: 2 parameter set(s) x 2 replicate(s), seed 0" in out
    assert re.search(r"^1\s+0\.05$", out, re.MULTILINE)  # the legend of the sets
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "unit", "set", "0", "set", "1"]
    price_row = next(line for line in out.splitlines() if line.startswith("final_price"))
    mean0 = reference.table().loc[(0, "final_price"), "mean"]
    assert f"{mean0:,.2f} [" in price_row
    summary = pd.read_csv(tmp_path / "summary.csv", index_col=["set", "replicate"])
    np.testing.assert_array_equal(summary["final_price"], reference.summary["final_price"])
    assert (tmp_path / "table.csv").is_file()
    # same command again: every set is loaded from --out, nothing runs
    assert main([*argv, "--quiet"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines() == [str(tmp_path / "summary.csv"), str(tmp_path / "table.csv")]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers sets the local"),
        (["--param", f"{PARAM}=0.1"], "is given twice"),
        (["--param", "periods.*.nope=1,2"], "nope"),
        (["--param", "novalues="], "has no values"),
    ],
)
def test_cli_sweep_usage_errors(
    extra: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sweep", TINY, "--param", f"{PARAM}=0.0,0.05", *extra])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert expected in err
    assert "Traceback" not in err


def test_cli_scheduler_without_dask_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    code = main(["sweep", TINY, "--param", f"{PARAM}=0.0", "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "'parallel' extra" in err
    assert "carbonsim[parallel]" in err


# ---------------------------------------------------------------------------- set files (#21)
def _swap(a: Path, b: Path) -> None:
    tmp = a.with_name("swapping")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def test_swapped_set_files_are_refused_naming_the_file(
    tmp_path: Path, counting: CountingExecutor
) -> None:
    sweep(TINY, PARAMS, replicates=1, executor=counting, directory=tmp_path)
    _swap(tmp_path / "set-00000.summary.parquet", tmp_path / "set-00001.summary.parquet")
    with pytest.raises(
        ValueError,
        match=r"set-00000\.summary\.parquet' does not match this sweep: it holds set 1 .*swapped",
    ):
        sweep(TINY, PARAMS, replicates=1, executor=counting, directory=tmp_path)
    assert counting.submitted == 2  # nothing ran with the wrong numbers


def test_files_of_another_sweep_are_refused_without_its_manifest(
    reference: SweepResult, tmp_path: Path, counting: CountingExecutor
) -> None:
    sweep(TINY, {PARAM: [0.01, 0.02]}, replicates=2, executor=counting, directory=tmp_path)
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(
        ValueError, match=r"set-00000\.summary\.parquet' .* belongs to another sweep"
    ):
        sweep(TINY, PARAMS, replicates=2, executor=counting, directory=tmp_path)
    assert not (tmp_path / MANIFEST).exists()  # not adopted
    for path in tmp_path.glob("set-*"):
        path.unlink()
    resumed = sweep(TINY, PARAMS, replicates=2, executor=counting, directory=tmp_path)
    _same(resumed, reference)
    (tmp_path / MANIFEST).unlink()  # the same sweep's files are still its own
    again = sweep(TINY, PARAMS, replicates=2, executor=counting, directory=tmp_path)
    _same(again, reference)
    assert (tmp_path / MANIFEST).is_file()


def test_csv_set_files_carry_and_check_their_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counting: CountingExecutor
) -> None:
    monkeypatch.setattr(ensemble, "_file_format", lambda: "csv")
    first = sweep(TINY, {PARAM: [0.0]}, replicates=2, executor=counting, directory=tmp_path)
    path = tmp_path / "set-00000.summary.csv"
    lines = path.read_text().splitlines(keepends=True)
    assert lines[0].startswith("# carbonsim-set {")
    assert first.provenance["sweep_hash"] in lines[0]
    path.write_text("".join(lines[:-1]))  # replicate 1 lost
    with pytest.raises(ValueError, match=r"holds replicates \[0\], not 0\.\.1"):
        sweep(TINY, {PARAM: [0.0]}, replicates=2, executor=counting, directory=tmp_path)
    path.write_text("".join(lines[1:]))  # no header: not written by this sweep
    with pytest.raises(ValueError, match=r"set-00000\.summary\.csv' .* no carbonsim set header"):
        sweep(TINY, {PARAM: [0.0]}, replicates=2, executor=counting, directory=tmp_path)


# ---------------------------------------------------------------------------- the guard (#21)
@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("found = check()\n", 1),
        ('if __name__ == "__main__":\n    found = check()\n', None),
        ("def main():\n    return check()\n\n\nfound = main()\n", 5),
        (
            'def main():\n    return check()\n\n\nif "__main__" == __name__:\n    found = main()\n',
            None,
        ),
        ("import sys\n\nif sys.argv:\n    found = check()\n", 4),
    ],
)
def test_guard_check_finds_the_unguarded_top_level_line(
    tmp_path: Path, text: str, line: int | None
) -> None:
    path = tmp_path / "script.py"
    path.write_text(text, encoding="utf-8")
    module = types.ModuleType("__main__")
    module.__file__ = str(path)
    module.check = lambda: ensemble._unguarded_call(module)  # type: ignore[attr-defined]
    exec(compile(text, str(path), "exec"), vars(module))
    assert vars(module)["found"] == (None if line is None else (str(path), line))


def test_sweep_in_pytest_or_python_dash_m_is_not_refused() -> None:
    assert ensemble._unguarded_call(sys.modules["__main__"]) is None
    package_main = types.ModuleType("__main__")
    package_main.__file__ = ensemble.__file__
    package_main.__spec__ = importlib.machinery.ModuleSpec("carbonsim.__main__", None)
    assert ensemble._unguarded_call(package_main) is None  # spawn does not re-run it


# ---------------------------------------------------------------------------- plug-ins (#21)
@pytest.mark.usefixtures("registries_restored")
def test_tasks_import_their_plugins_before_running(tmp_path: Path) -> None:
    from carbonsim.agents import STRATEGIES
    from carbonsim.scenario.loader import load_scenario

    path = tmp_path / "issue21_task_plugin.py"
    path.write_text(
        "from carbonsim.agents import STRATEGIES\n"
        "STRATEGIES.register('issue21_task_plugin', replace=True)(STRATEGIES.get('noise'))\n",
        encoding="utf-8",
    )
    task = ensemble._Task(0, load_scenario(TINY), 0, 0, 1, False, (str(path),))
    assert "issue21_task_plugin" not in STRATEGIES
    done = ensemble._run_task(task)  # as a fresh worker would
    assert "issue21_task_plugin" in STRATEGIES
    assert list(done.summary.index) == [0]
    with pytest.raises(TypeError, match="plugins must be a list"):
        sweep(TINY, {}, plugins="issue21_task_plugin")  # type: ignore[arg-type]
    with pytest.raises(ModuleNotFoundError, match="no_such_plugin_module"):
        sweep(TINY, {}, plugins=["no_such_plugin_module"])
