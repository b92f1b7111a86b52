"""Atomic file output: a failed or interrupted write never leaves a half-written file.

Files
    Each file is written to a temporary sibling and moved into place with
    :func:`os.replace`, which is atomic on POSIX and Windows when source and target share a
    directory. A failure removes the temporary file and leaves any earlier file intact.

Directories
    :func:`atomic_directory` writes a whole set of files (a result export) into a temporary
    sibling directory and swaps it in for the target as one unit (one
    ``renameat2(RENAME_EXCHANGE)`` on Linux, else two renames): readers see the old set or
    the new one, never a mix, and a file of an earlier export that the new one does not
    write (a stale ``trades.csv``) is gone. The set lists its files in a manifest; a
    directory holding anything else (files carbonsim did not write) is never replaced.

Temporary names start with ``.<target name>.carbonsim-<host>-<pid>-``; what a killed
process leaves behind is removed by the next write to the same target on the same host
(once that process is gone). New files and directories get the modes the umask gives
(``0o666 & ~umask``, ``0o777 & ~umask``); a replaced file keeps its mode.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from carbonsim._version import __version__

__all__ = [
    "atomic_directory",
    "atomic_path",
    "atomic_write_text",
    "atomic_write_with",
    "check_output_directory",
    "check_replaceable",
    "current_umask",
]

#: ``written_by`` of a manifest written by :func:`atomic_directory` starts with this.
_WRITER = "carbonsim"


# ---------------------------------------------------------------------------- modes
def current_umask() -> int:
    """The process's umask (read without changing it where the OS allows)."""
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open("/proc/self/status", encoding="ascii") as fh,
    ):
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def _file_mode(target: Path) -> int:
    """The mode of the file that replaces ``target``: its own, else the umask's default."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


# ---------------------------------------------------------------------------- temporary names
def _tag() -> str:
    host = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:32] or "host"
    return f"carbonsim-{host}-"


def _prefix(name: str) -> str:
    return f".{name}.{_tag()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists
        return True
    return True


#: Directories whose leftovers :func:`atomic_path` has already removed in this process.
_SCANNED: set[str] = set()


def _remove_stale(parent: Path, name: str | None = None) -> None:
    """Remove temporary entries in ``parent`` left by dead processes of this host.

    Those of target ``name``, or with ``name=None`` those of any target.
    """
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    start = re.escape(_prefix(name)) if name is not None else r"\..+\." + re.escape(_tag())
    pattern = re.compile(start + r"(\d+)-")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        found = pattern.match(entry.name)
        if found is None:
            continue
        pid = int(found.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _temp_prefix(name: str) -> str:
    return f"{_prefix(name)}{os.getpid()}-"


# ---------------------------------------------------------------------------- files
@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success move it onto ``target``.

    The temporary file has the mode ``target`` will have: that of the file it replaces,
    else ``0o666 & ~umask``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.abspath(target.parent)
    if key not in _SCANNED:  # once per directory: a sweep writes thousands of files
        _SCANNED.add(key)
        _remove_stale(target.parent)
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(target.name), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _file_mode(target))
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def atomic_write_with(target: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


# ---------------------------------------------------------------------------- directories
def _entries(directory: Path) -> list[str]:
    """Every entry under ``directory`` as a relative POSIX path (directories end in /)."""
    found: list[str] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        rel = Path(root).relative_to(directory)
        for d in dirs:
            found.append((rel / d).as_posix() + ("" if Path(root, d).is_symlink() else "/"))
        found.extend((rel / f).as_posix() for f in files)
    return sorted(found)


def _listed(manifest: Path) -> set[str] | None:
    """The entries a carbonsim manifest lists, or None if it is missing or not carbonsim's."""
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = doc.get("files") if isinstance(doc, dict) else None
    writer = doc.get("written_by") if isinstance(doc, dict) else None
    if not (isinstance(writer, str) and writer.startswith(_WRITER) and isinstance(files, list)):
        return None
    return {str(f) for f in files}


def _real(target: Path) -> Path:
    """``target`` made absolute, a symbolic link at its last component followed."""
    return target.resolve() if target.is_symlink() else Path(os.path.abspath(target))


def check_replaceable(target: str | Path, manifest: str = "metadata.json") -> None:
    """Raise unless :func:`atomic_directory` may replace ``target``.

    It may when ``target`` is missing, an empty directory, or a directory holding only what
    an earlier :func:`atomic_directory` wrote there (the entries its ``manifest`` lists).

    Raises
    ------
    FileExistsError
        ``target`` is not a directory, or holds files carbonsim did not write (named).
    """
    real = _real(Path(target))
    if not os.path.lexists(real):
        return
    if not real.is_dir():
        raise FileExistsError(f"{str(target)!r} exists and is not a directory")
    try:
        cwd: Path | None = Path.cwd()
    except OSError:  # the working directory is gone
        cwd = None
    physical = Path(os.path.realpath(real))
    if cwd is not None and (physical == cwd or physical in cwd.parents):
        raise FileExistsError(
            f"refusing to replace {str(target)!r}: it is the current directory or holds "
            "it, and an export replaces its directory as a whole; write to a new "
            "subdirectory instead"
        )
    entries = _entries(real)
    if not entries:
        return
    listed = _listed(real / manifest)
    foreign = [e for e in entries if e != manifest and (listed is None or e not in listed)]
    if listed is not None and not foreign:
        return
    tops = list(dict.fromkeys(e.split("/", 1)[0] + ("/" if "/" in e else "") for e in foreign))
    shown = ", ".join(tops[:5]) + (f" and {len(tops) - 5} more" if len(tops) > 5 else "")
    why = (
        f"it has no {manifest} listing what carbonsim wrote"
        if listed is None
        else f"they are not listed in its {manifest}"
    )
    raise FileExistsError(
        f"refusing to replace {str(target)!r}: it holds files carbonsim did not write "
        f"({shown}; {why}). An export replaces its directory as a whole; write to a new or "
        "empty directory, or move those files away"
    )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.ENOENT:
        raise FileNotFoundError(code, os.strerror(code), str(b))
    return False  # EINVAL, ENOSYS, EOPNOTSUPP...: the file system cannot; rename instead


def _swap_in(tmp: Path, real: Path, manifest: str) -> None:
    """Put directory ``tmp`` at ``real``, replacing what is there; last writer wins."""
    for _ in range(20):
        check_replaceable(real, manifest)  # again: someone may have written there meanwhile
        if not os.path.lexists(real):
            try:
                os.rename(tmp, real)
                return
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    continue  # another run got there first: replace its output in turn
                raise
        try:
            if _exchange(tmp, real):
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old directory
                return
        except FileNotFoundError:
            continue
        aside = real.parent / f"{_temp_prefix(real.name)}{secrets.token_hex(4)}.old"
        try:
            os.rename(real, aside)
        except FileNotFoundError:
            continue
        try:
            os.rename(tmp, real)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                shutil.rmtree(aside, ignore_errors=True)
                continue
            os.rename(aside, real)
            raise
        shutil.rmtree(aside, ignore_errors=True)
        return
    raise OSError(f"could not move the new {str(real)!r} into place: it keeps being replaced")


@contextlib.contextmanager
def atomic_directory(
    target: str | Path,
    *,
    manifest: str = "metadata.json",
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[Path]:
    """Yield an empty temporary directory; on success swap it in for ``target`` as one unit.

    On success ``manifest`` is written into the directory: ``metadata`` plus ``files`` (every
    entry written, sorted) and ``written_by``; then the directory replaces ``target``. On
    failure (or ``KeyboardInterrupt``) the temporary directory is removed and ``target`` is
    left as it was. A symbolic link at ``target`` is followed: the directory it points to is
    replaced and the link kept.

    Raises
    ------
    FileExistsError
        Before anything is written, if ``target`` holds files carbonsim did not write
        (:func:`check_replaceable`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with atomic_directory(d) as tmp:
    ...     _ = (tmp / "a.txt").write_text("one")
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt', 'metadata.json']
    """
    target = Path(target)
    real = _real(target)
    check_replaceable(real, manifest)
    real.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(real.parent, real.name)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(real.name), suffix=".tmp", dir=real.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())
        yield tmp
        doc = {
            **(metadata or {}),
            "files": [e for e in _entries(tmp) if e != manifest],
            "written_by": f"{_WRITER} {__version__}",
        }
        atomic_write_text(tmp / manifest, json.dumps(doc, indent=2, sort_keys=True) + "\n")
        _swap_in(tmp, real, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_output_directory(target: str | Path, *, replace: bool = True) -> None:
    """Fail now, before any work, if output cannot be written to ``target``.

    With ``replace=True`` the directory will be replaced as a unit
    (:func:`atomic_directory`): it must be replaceable and its parent writable. With
    ``replace=False`` files will be written inside it (a resumable sweep). Missing parent
    directories are created.

    Raises
    ------
    OSError
        ``FileExistsError`` (see :func:`check_replaceable`), ``NotADirectoryError``,
        ``PermissionError``...: what writing would have raised later.
    """
    real = _real(Path(target))
    if replace:
        check_replaceable(real)
    elif os.path.lexists(real) and not real.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(target))
    where = real.parent if replace else real
    try:
        where.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a part of the path is a file
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", exc.filename) from exc
    os.rmdir(tempfile.mkdtemp(prefix=_temp_prefix(real.name), suffix=".probe", dir=where))
