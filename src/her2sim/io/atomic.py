"""Atomic output files: every writer of her2sim goes through :func:`atomic_path`.

The data is written to a temporary file in the target's folder (so the final rename never
crosses file systems), flushed to disk with fsync, and renamed over the target. A crash or an
error leaves either the old file or the whole new one, never a partial one; the temporary is
removed on failure, and temporaries left by killed processes are removed by the next write to
the same name (or by :func:`clean_stale`). A full disk becomes one :class:`OutputError` line:
"no space left on device while writing X; nothing was kept".
"""

from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..errors import OutputError

#: marker in the names of our temporaries: ``.{name}.{pid}.her2sim-tmp{suffix}``
TMP_MARK = ".her2sim-tmp"
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:\.her2sim-tmp.*|\.tmp)$")
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def temporary_name(path: Path) -> Path:
    """The temporary a write of ``path`` uses (same folder, hidden, same suffix so that writers
    that pick the format from the suffix, such as matplotlib, still do)."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_MARK}{path.suffix}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale(folder: Path, name: str | None = None) -> list[Path]:
    """Remove our temporaries in ``folder`` (of target ``name`` only, if given) whose writing
    process is gone; returns the removed paths."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TMP_RE.match(e.name)
        if not m or (name is not None and m.group("name") != name) or _alive(int(m.group("pid"))):
            continue
        try:
            os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError:
            pass
    return removed


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms cannot open folders; the rename is still atomic
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def as_output_error(exc: OSError, path: Path) -> OutputError:
    """One-line error for a failed write of ``path`` (after its temporary was removed)."""
    if exc.errno in _FULL:
        return OutputError(f"no space left on device while writing {path}; nothing was kept")
    return OutputError(f"cannot write {path}: {exc.strerror or exc}; nothing was kept")


@contextmanager
def atomic_path(path: str | os.PathLike, *, clean: bool = True) -> Iterator[Path]:
    """Context manager yielding a temporary path to write instead of ``path``.

    On normal exit the temporary is fsynced and renamed to ``path``; on any exception it is
    removed, and an OSError (a full disk, an I/O error) is raised as :class:`OutputError`.
    ``clean`` first removes stale temporaries of the same target left by killed processes.

    >>> with atomic_path("out.csv") as tmp:  # doctest: +SKIP
    ...     frame.to_csv(tmp)
    """
    path = Path(path)
    if clean:
        clean_stale(path.parent if str(path.parent) else Path("."), path.name)
    tmp = temporary_name(path)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise as_output_error(exc, path) from None
        raise
    _fsync_path(path.parent if str(path.parent) else Path("."), directory=True)


def atomic_write(path: str | os.PathLike, write: Callable, *, clean: bool = True) -> Path:
    """Write ``path`` atomically with ``write(f)``, ``f`` a binary file object; returns the path."""
    path = Path(path)
    with atomic_path(path, clean=clean) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (UTF-8) atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))
