"""Shared helpers for the stage results' ``to_dict`` / ``from_dict`` (plain JSON values, NaN as null,
strict field checks) and the package's one way to write files and folders atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath
from typing import Any, BinaryIO

import numpy as np


def check_fields(cls: type, d: Any, what: str | None = None) -> dict[str, Any]:
    """Check ``d`` against the dataclass ``cls``: a JSON object, no unknown keys, no missing required ones.

    Returns a shallow copy of ``d`` ready for ``cls(**...)``. ``what`` names the object in messages.
    """
    what = what or cls.__name__
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"{what} has unknown keys {unknown}")
    missing = sorted(
        n
        for n, f in fields.items()
        if n not in d and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise ValueError(f"{what} is missing keys {missing}")
    return dict(d)


def check_file_name(name: Any, what: str) -> str:
    """``name`` when it is a plain file name that stays inside its folder; else ``ValueError`` naming
    ``what``: no ``/`` or ``\\``, no ``..``, not absolute, not empty (names read from a manifest or a
    record must not point outside the folder they describe).

    >>> check_file_name("activations.npy", "manifest")
    'activations.npy'
    >>> check_file_name("../x.npy", "manifest")
    Traceback (most recent call last):
    ...
    ValueError: manifest: '../x.npy' is not a plain file name in its folder (no /, \\, .. or absolute paths)
    """
    if (
        not isinstance(name, str)
        or name in ("", ".")
        or ".." in name
        or any(c in name for c in "/\\\0")
        or os.path.isabs(name)
        or PureWindowsPath(name).drive
    ):
        raise ValueError(
            f"{what}: {name!r} is not a plain file name in its folder (no /, \\, .. or absolute paths)"
        )
    return name


def json_ready(obj: Any) -> Any:
    """Dataclasses, tuples, numpy scalars/arrays -> JSON-ready Python values (NaN -> None).

    A nested dataclass with its own ``to_dict`` is asked for it; other dataclasses are walked field by field.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return obj.to_dict()
        return {f.name: json_ready(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.integer | np.bool_):
        return obj.item()
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return None if math.isnan(x) else x
    return obj


def nan_if_none(x: float | None) -> float:
    """JSON null -> NaN (the inverse of :func:`json_ready` for a score)."""
    return math.nan if x is None else float(x)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success flush, fsync and rename it
    over ``path`` (then fsync the folder), so readers see the old file or the new one, never half.
    When the block raises, the temporary file is removed and ``path`` is untouched; a full disk
    (``ENOSPC`` while writing) is raised as an ``OSError`` whose ``filename`` is ``path``.

    The one atomic file writer of the package (stage results, figures, arrays, predictions, manifests).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with atomic_file(d / "a.bin") as f:
    ...     _ = f.write(b"new")
    >>> (d / "a.bin").read_bytes(), sorted(p.name for p in d.iterdir())
    (b'new', ['a.bin'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        _raise_naming(err, path)
        raise
    fsync_dir(path.parent)


def _raise_naming(err: BaseException, path: str | os.PathLike) -> None:
    """For a full disk (``ENOSPC``), raise an ``OSError`` whose ``filename`` is ``path``, the file being
    written, not a temporary one or none (so that the CLI can say "no space left on device writing
    PATH"); else return."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC and err.filename != str(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename/creation inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as f:
        f.write(data)


def write_npy_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` (no pickle) through :func:`atomic_file`, streamed: no second copy in memory."""
    with atomic_file(path) as f:
        np.save(f, array, allow_pickle=False)


def replace_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the finished folder ``tmp`` at ``target``, replacing an old one: the old folder is moved
    aside to ``TARGET.old`` first and removed last, so an interruption leaves either folder whole
    (:func:`recover_dir` puts a set-aside one back). When the second rename fails (a full disk,
    say), the old folder is put back at once and the error raised; ``tmp`` stays for the caller to
    remove.

    The one "replace a folder atomically" helper of the package (compact models, checkpoints).
    """
    tmp, target = Path(tmp), Path(target)
    old = target.with_name(target.name + ".old")
    recover_dir(target)  # an earlier replacement cut off between its renames: its old folder is the one
    if old.exists():
        shutil.rmtree(old)
    moved = target.exists()
    if moved:
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException as err:
        if moved:
            recover_dir(target)
        _raise_naming(err, target)
        raise
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def recover_dir(target: str | os.PathLike) -> None:
    """After an interrupted :func:`replace_dir`: when ``target`` is missing but ``TARGET.old`` is
    there, move it back."""
    target = Path(target)
    old = target.with_name(target.name + ".old")
    if not target.exists() and old.exists():
        os.replace(old, target)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write a stage result as JSON with :func:`write_bytes_atomic`. ``obj`` goes through
    :func:`json_ready` first, so NaN is written as null and the file is strict JSON (a value JSON
    cannot hold raises before anything is written). (Store manifests use ``redundancy.store``'s
    canonical writer.)"""
    text = json.dumps(json_ready(obj), indent=1, allow_nan=False, ensure_ascii=False)
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))
