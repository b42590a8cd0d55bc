"""Low-level file handling for the store: names, atomic JSON, checksums, .npy headers, locking."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._serial import fsync_dir, write_bytes_atomic
from ._manifest import StoreManifest, canonical_json

try:  # POSIX only; elsewhere the store works without the inter-process lock
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PROGRESS = "progress.json"
ACTIVATIONS = "activations.npy"
LABELS = "labels.npy"
SENTENCE_IDS = "sentence_ids.npy"
POSITIONS = "positions.npy"
LOCK = ".lock"
NPY_FILES = (ACTIVATIONS, LABELS, SENTENCE_IDS, POSITIONS)
KNOWN_FILES = frozenset((MANIFEST, PROGRESS, LOCK, *NPY_FILES))
_TMP_MARK = ".tmp-"


def is_store_file(name: str) -> bool:
    """True for files this package writes in a store folder (including its temporary files)."""
    return name in KNOWN_FILES or (name.startswith(".") and (_TMP_MARK in name or name.endswith(".tmp")))


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as canonical JSON (sorted keys, indent 2) to ``path`` so that readers see either
    the old or the new file, never half (through the package's one atomic writer)."""
    text = json.dumps(json.loads(canonical_json(obj)), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` without pickle, flushed to disk."""
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def sha256_file(path: Path, block_size: int = 1 << 23) -> str:
    """Streaming SHA-256 (hex) of a file, read in ``block_size`` pieces."""
    digest = hashlib.sha256()
    buf = bytearray(block_size)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header says, and where the data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def expected_size(self) -> int:
        """File size in bytes that header and data should occupy."""
        return self.offset + int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def read_npy_header(path: Path) -> NpyHeader:
    """Parse a ``.npy`` header without reading the data (raises ``ValueError`` if it is not one)."""
    with open(path, "rb") as fh:
        major, _minor = np.lib.format.read_magic(fh)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif major in (2, 3):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:  # pragma: no cover
            raise ValueError(f"unsupported .npy version {major}")
        return NpyHeader(tuple(int(s) for s in shape), np.dtype(dtype), bool(fortran), fh.tell())


def expected_files(manifest: StoreManifest) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
    """File name -> (shape, allowed dtype names) for every ``.npy`` file the manifest implies."""
    n = manifest.n_items
    files = {
        ACTIVATIONS: ((n, manifest.n_layers, manifest.hidden), (manifest.dtype,)),
        SENTENCE_IDS: ((n,), ("int32",)),
        POSITIONS: ((n,), ("int32",)),
    }
    if manifest.label_type == "class":
        files[LABELS] = ((n,), ("int32",))
    elif manifest.label_type == "real":
        files[LABELS] = ((n,), ("float32",))
    return files


def check_files(path: Path, manifest: StoreManifest) -> list[str]:
    """Cheap structural checks: each file exists, its header matches the manifest, its size is exact.

    Returns a list of problems (empty when all is well).
    """
    problems = []
    for name, (shape, dtypes) in expected_files(manifest).items():
        file = path / name
        if not file.is_file():
            problems.append(f"{name} is missing")
            continue
        try:
            header = read_npy_header(file)
        except (OSError, ValueError) as exc:
            problems.append(f"{name} has no valid .npy header ({exc})")
            continue
        if header.shape != shape or header.dtype.name not in dtypes or header.fortran_order:
            problems.append(
                f"{name} holds {header.dtype.name}{list(header.shape)}"
                f"{' (Fortran order)' if header.fortran_order else ''}, "
                f"the manifest says {'/'.join(dtypes)}{list(shape)}"
            )
            continue
        size = file.stat().st_size
        if size != header.expected_size:
            what = "truncated" if size < header.expected_size else "too long"
            problems.append(f"{name} is {what}: {size} bytes, expected {header.expected_size}")
    return problems


def check_checksums(path: Path, manifest: StoreManifest) -> list[str]:
    """Recompute the SHA-256 of every ``.npy`` file and compare with the manifest."""
    problems = []
    for name in expected_files(manifest):
        want = manifest.sha256.get(name)
        if want is None:
            problems.append(f"the manifest has no checksum for {name}")
            continue
        got = sha256_file(path / name)
        if got != want:
            problems.append(
                f"{name} is corrupted: SHA-256 {got[:12]}... differs from the manifest's {want[:12]}..."
            )
    return problems


class StoreLock:
    """An exclusive, non-blocking inter-process lock on ``<store>/.lock`` (POSIX ``lockf``).

    Guards against two processes writing one store. Locks are per process, so a second writer in the same
    process is not refused.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def acquire(self) -> bool:
        """Take the lock; False if another process holds it. Filesystems without locks count as success."""
        self._fh = open(self.path, "a+b")  # noqa: SIM115 - held until release()
        if fcntl is None:  # pragma: no cover
            return True
        try:
            fcntl.lockf(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                self.release()
                return False
            logger.warning("could not lock %s (%s); continuing without an inter-process lock", self.path, exc)
        return True

    def release(self) -> None:
        if self._fh is not None:
            try:
                if fcntl is not None:
                    fcntl.lockf(self._fh.fileno(), fcntl.LOCK_UN)
            except OSError:  # pragma: no cover
                pass
            self._fh.close()
            self._fh = None


def remove_store_files(path: Path, keep: tuple[str, ...] = (LOCK,)) -> list[str]:
    """Delete this package's files in ``path`` (manifest first); return the names of other files there."""
    manifest = path / MANIFEST
    if manifest.exists():
        manifest.unlink()
        fsync_dir(path)
    others = []
    for entry in path.iterdir():
        if entry.name in keep:
            continue
        if is_store_file(entry.name) and (entry.is_file() or entry.is_symlink()):
            entry.unlink()
        else:
            others.append(entry.name)
    fsync_dir(path)
    return sorted(others)


class RowFile:
    """Writes whole rows of a preallocated ``.npy`` file with ``os.pwrite``.

    Why not a writable memmap: every page written through a shared mapping stays in the writer's
    resident set until unmapped, so peak memory would grow with the store (2.2 GB for EWT train with
    a 384-wide model). ``pwrite`` leaves those pages to the kernel's page cache, so the writer's
    memory stays flat however many items the store holds.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "r+b")  # noqa: SIM115 - closed in close()
        version = np.lib.format.read_magic(self._fh)
        fmt = np.lib.format
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(self._fh)
        self._offset = self._fh.tell()
        self._dtype = np.dtype(dtype)
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self._dtype.itemsize

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Write ``values[i]`` to row ``rows[i]``; each run of consecutive rows goes out in one call.

        Rows are taken in the order given (no sort, no copy): callers that hand over whole
        sentences, as the extraction does, produce a few long runs.
        """
        if len(rows) == 0:
            return
        data = np.ascontiguousarray(values, dtype=self._dtype)
        flat = data.reshape(len(rows), -1).view(np.uint8)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        fd = self._fh.fileno()
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
            buf = memoryview(flat[lo:hi]).cast("B")
            pos = self._offset + int(rows[lo]) * self._row_bytes
            while buf:
                n = self._named(os.pwrite, fd, buf, pos)
                buf, pos = buf[n:], pos + n

    def flush(self) -> None:
        """Rows are on disk (fdatasync) before a commit record says so."""
        self._named(os.fdatasync, self._fh.fileno())

    def _named(self, call, *args):
        """``call(*args)``; a full disk (``ENOSPC``, which names no file) is raised naming this file.
        Nothing is committed then: the chunk stays pending and a rerun writes it again."""
        try:
            return call(*args)
        except OSError as err:
            if err.errno == errno.ENOSPC and err.filename is None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path)) from err
            raise

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            self._fh.close()
