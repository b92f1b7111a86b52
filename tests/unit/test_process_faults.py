"""Processes killed or started the wrong way (issue #21): ``kill -9`` and the spawn guard.

Each test starts a small Python script in a subprocess, on the tiny scenario, and bounds
every wait: an export killed while writing leaves the earlier export whole, the workers of
a sweep whose process is killed exit within seconds, and a script that calls ``sweep``
outside the ``__main__`` guard fails at once with the fix in the message.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import carbonsim as cs

TINY = "china-national-tiny"

posix_only = pytest.mark.skipif(os.name != "posix", reason="kill -9 and /proc are POSIX")


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _wait_for_line(proc: subprocess.Popen[str], expected: str, timeout: float) -> None:
    """Read the child's stdout until ``expected``; fail after ``timeout`` seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"child exited ({proc.wait()}) before printing {expected!r}")
        if line.strip() == expected:
            return
    proc.kill()
    pytest.fail(f"child did not print {expected!r} within {timeout} s")


def _kill_9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


# ---------------------------------------------------------------------------- item 5
@posix_only
def test_export_killed_while_writing_keeps_the_earlier_export(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cs.simulate(TINY, seed=0).to_csv(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    script = _script(
        tmp_path,
        "slow_export.py",
        """
        import sys, time
        import carbonsim as cs
        from carbonsim import results

        res = cs.simulate("china-national-tiny", seed=1, record_trades=True)
        write = results._write_csv

        def write_then_hang(table, path):
            write(table, path)
            print("writing", flush=True)
            time.sleep(120)

        results._write_csv = write_then_hang
        res.to_csv(sys.argv[1])
        """,
    )
    with subprocess.Popen(
        [sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True
    ) as proc:
        _wait_for_line(proc, "writing", timeout=120)
        _kill_9(proc)
    # the earlier export, whole: no file of the killed run, no metadata of another
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert len(leftovers) == 1  # the killed run's temporary directory ...
    cs.simulate(TINY, seed=2).to_csv(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "slow_export.py"]  # ... gone


# ---------------------------------------------------------------------------- item 8
def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@posix_only
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.slow  # 3-8 s: starts two worker processes
def test_sweep_workers_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "long_sweep.py",
        """
        import sys
        import carbonsim as cs

        if __name__ == "__main__":
            shares = [i / 1000 for i in range(200)]
            cs.sweep("china-national-tiny", {"periods.*.offset_limit_share": shares},
                     chunk=1, workers=2, directory=sys.argv[1])
        """,
    )
    directory = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, str(script), str(directory)])
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not list(directory.glob("set-*")):  # the workers run tasks
            assert proc.poll() is None, "the sweep ended early"
            assert time.monotonic() < deadline, "no set finished within 120 s"
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) >= 2  # two workers (and multiprocessing's resource tracker)
        _kill_9(proc)
        deadline = time.monotonic() + 10
        while any(_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [w for w in workers if _running(w)] == [], "orphaned workers survived"
    finally:
        proc.kill()
        for w in workers:
            if _running(w):
                os.kill(w, signal.SIGKILL)


# ---------------------------------------------------------------------------- item 9
def test_unguarded_sweep_script_fails_at_once_saying_what_to_do(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "readme_snippet.py",
        """
        import carbonsim as cs

        sw = cs.sweep("china-national-tiny", {}, replicates=1, workers=1)
        print(sw.table())
        """,
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode != 0
    assert "RuntimeError" in proc.stderr
    assert f"script {str(script)!r} again: line 3 is not" in proc.stderr
    assert 'if __name__ == "__main__":' in proc.stderr
    assert "BrokenProcessPool" not in proc.stderr  # detected before any worker started
