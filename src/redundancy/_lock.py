"""The run folder's lock: ``RUN/.lock``, held (``flock``, exclusive) by ``redundancy run`` for the
whole run with the holder's pid written inside, and checked by the commands that write into a run
folder (``extract --out``, ``finetune``, ``report``) so that they refuse to write under a busy one.

``flock`` locks belong to an open file description, so a second ``open`` of the lock file, even in
the same process, sees the lock; the check only takes a shared lock for an instant and never writes.

>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> with hold_lock(run):
...     holder_pid(run) == os.getpid()
True
>>> check_unlocked(run / "report")  # nothing holds the lock any more: no error
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


class FolderBusyError(RuntimeError):
    """A folder is locked by another process; ``folder`` is the locked one, ``pid`` its holder (None
    when the lock file names none)."""

    def __init__(self, message: str, *, folder: str | os.PathLike, pid: int | None):
        super().__init__(message)
        self.folder = Path(folder)
        self.pid = pid


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _holder(pid: int | None) -> str:
    return f"pid {pid}" if pid is not None else "a process that did not record its pid"


@contextlib.contextmanager
def hold_lock(folder: str | os.PathLike, busy: type[FolderBusyError] = FolderBusyError) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.lock`` (created if missing) and write this process's pid
    into it; raise ``busy`` naming the holder's pid when another open file holds the lock. The pid is
    cleared before the lock is released."""
    import fcntl

    folder = Path(folder)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            raise busy(
                f"{folder}: another `redundancy run` is using this run folder ({_holder(pid)}); "
                "wait for it to finish or use another --out",
                folder=folder,
                pid=pid,
            ) from None
        with contextlib.suppress(OSError):  # the pid only informs; a full disk must not stop the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _locked_by_other(lock: Path) -> tuple[bool, int | None]:
    """Whether another open file holds ``lock`` exclusively, and the pid it records."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:  # gone meanwhile, or unreadable: nothing we can check
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, None
    finally:
        os.close(fd)


def holder_pid(folder: str | os.PathLike) -> int | None:
    """The pid recorded in ``folder/.lock`` (None when there is no lock file or it names none)."""
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_pid(fd)
    finally:
        os.close(fd)


def check_unlocked(path: str | os.PathLike) -> None:
    """Raise :class:`FolderBusyError` when ``path`` or a folder above it holds a ``.lock`` that
    another process has locked (``redundancy run`` working there); the message names its pid.

    ``path`` need not exist yet. Meant for the start of a command, before it writes anything: the
    check closes the file it opens, which would drop this process's own ``lockf`` locks on it.
    """
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        lock = folder / LOCK_FILE
        if not lock.is_file():
            continue
        busy, pid = _locked_by_other(lock)
        if busy:
            where = "this folder" if folder == path else f"the run folder {folder}"
            raise FolderBusyError(
                f"{path}: {where} is in use by another `redundancy run` ({_holder(pid)}); "
                "wait for it to finish or write elsewhere",
                folder=folder,
                pid=pid,
            )
