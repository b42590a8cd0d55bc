"""Create, fill chunk by chunk, resume and finalise an activation store."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ._files import (
    ACTIVATIONS,
    LABELS,
    LOCK,
    MANIFEST,
    POSITIONS,
    PROGRESS,
    SENTENCE_IDS,
    RowFile,
    StoreLock,
    check_files,
    expected_files,
    fsync_dir,
    is_store_file,
    read_json,
    remove_store_files,
    save_npy,
    sha256_file,
    write_json_atomic,
)
from ._manifest import FORMAT_VERSION, StoreError, StoreManifest, describe_differences

logger = logging.getLogger(__name__)


def _format_ids(ids: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def _index_array(name: str, values: Any, n: int) -> np.ndarray:
    """A 1-D integer array of length ``n`` that fits int32, returned as int32."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) (one entry per item), got {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int32)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    info = np.iinfo(np.int32)
    if arr.min() < info.min or arr.max() > info.max:
        raise ValueError(f"{name} does not fit int32")
    return arr.astype(np.int32)


def _prepare_metadata(
    manifest: StoreManifest, labels: Any, sentence_ids: Any, positions: Any
) -> dict[str, np.ndarray]:
    """Validate the per-item arrays against the manifest and return them as the dtypes stored on disk."""
    n = manifest.n_items
    sids = _index_array("sentence_ids", sentence_ids, n)
    pos = _index_array("positions", positions, n)
    if n:
        if sids.min() < 0 or sids.max() >= manifest.n_sentences:
            raise ValueError(f"sentence_ids must lie in [0, n_sentences={manifest.n_sentences})")
        if pos.min() < 0:
            raise ValueError("positions must be >= 0")
        if manifest.level == "token":
            keys = sids.astype(np.int64) * (int(pos.max()) + 1) + pos
            if np.unique(keys).size != n:
                raise ValueError("(sentence_id, position) pairs must be unique: each word is stored once")
        else:
            if np.any(pos != 0):
                raise ValueError(f"positions must all be 0 for level={manifest.level!r}")
            if np.unique(sids).size != n:
                raise ValueError(f"sentence_ids must be unique for level={manifest.level!r}")
    arrays = {SENTENCE_IDS: sids, POSITIONS: pos}

    if manifest.label_type == "none":
        if labels is not None and np.asarray(labels).size:
            raise ValueError("label_type 'none' takes labels=None")
        return arrays
    if labels is None:
        raise ValueError(f"label_type {manifest.label_type!r} needs a labels array of shape ({n},)")
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},) (one entry per item), got {lab.shape}")
    if manifest.label_type == "class":
        lab = _index_array("labels", lab, n)
        k = len(manifest.label_names)
        if n and (lab.min() < -1 or lab.max() >= k):
            raise ValueError(f"class labels must lie in [-1, {k}) (-1 = no label; {k} label_names)")
    else:
        if lab.size and lab.dtype.kind not in "iuf":
            raise ValueError(f"real labels must be numbers, got dtype {lab.dtype}")
        with np.errstate(over="ignore"):
            lab = lab.astype(np.float32)
        if np.isinf(lab).any():
            raise ValueError("real labels must be finite (NaN = no label) and fit float32")
    arrays[LABELS] = lab
    return arrays


def _first_difference(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
    i = int(np.argmin(same))
    return f"first difference at item {i}: {a[i].item()!r} (store) vs {b[i].item()!r} (this run)"


class StoreWriter:
    """Fills an activation store chunk by chunk; resumable after a crash.

    Make one with :meth:`create_or_resume`, never directly. Each :meth:`write_chunk` commits atomically;
    :meth:`finalize` checks that every chunk is there, writes checksums and marks the store complete.

    Examples
    --------
    >>> with StoreWriter.create_or_resume(path, manifest, labels, sentence_ids, positions) as writer:
    ...     if not writer.complete:
    ...         for chunk_id in writer.pending():
    ...             rows = chunk_items[chunk_id]  # the plan fixes each chunk's rows
    ...             writer.write_chunk(chunk_id, rows, extract(rows))
    ...         writer.finalize()  # doctest: +SKIP
    """

    def __init__(
        self,
        path: Path,
        manifest: StoreManifest,
        metadata: dict[str, np.ndarray],
        *,
        done_chunks: frozenset[int],
        n_items_written: int,
        activations: RowFile | None,
        lock: StoreLock | None,
    ):
        self.path = path
        self._manifest = manifest
        self._metadata = metadata
        self._done = done_chunks
        self._n_written = n_items_written
        self._mm = activations
        self._lock = lock
        self._closed = False

    # ------------------------------------------------------------------ opening

    @classmethod
    def create_or_resume(
        cls,
        path: str | os.PathLike,
        manifest: StoreManifest,
        labels: np.ndarray | None,
        sentence_ids: np.ndarray,
        positions: np.ndarray,
        overwrite: bool = False,
    ) -> StoreWriter:
        """Create a store at ``path``, or resume the incomplete one there, or recognise a complete one.

        Parameters
        ----------
        path : path-like
            The store folder; created if missing. A folder holding other files is refused.
        manifest : StoreManifest
            What this run will store; ``complete`` and ``sha256`` are ignored.
        labels : array of shape (n_items,) or None
            Class ids (``-1`` = no label) for ``label_type="class"``, real values (NaN = no label) for
            ``"real"``, ``None`` for ``"none"``.
        sentence_ids, positions : int arrays of shape (n_items,)
            Sentence/example index of each item, and word position in its sentence (0 for sentence tasks).
        overwrite : bool
            Replace an existing store that cannot be resumed (different plan or shape, different metadata,
            damaged or unreadable files). A store that matches this run is resumed (or found complete) either
            way; delete the folder to force a fresh extraction.

        Returns
        -------
        StoreWriter
            ``writer.complete`` is True when the store was already complete (nothing left to do).

        Raises
        ------
        StoreError
            The store cannot be resumed and ``overwrite`` is False, the folder is not a store, another
            process is writing it, or the disk is too small.
        ValueError
            The arrays disagree with the manifest (shape, range, uniqueness).
        """
        path = Path(path)
        if not isinstance(manifest, StoreManifest):
            raise TypeError(f"manifest must be a StoreManifest, got {type(manifest).__name__}")
        manifest = dataclasses.replace(manifest, complete=False, sha256={})
        metadata = _prepare_metadata(manifest, labels, sentence_ids, positions)
        if path.exists() and not path.is_dir():
            raise StoreError(
                f"activation store {path}: exists and is not a folder; choose another path", path=path
            )
        path.mkdir(parents=True, exist_ok=True)
        lock = StoreLock(path / LOCK)
        if not lock.acquire():
            raise StoreError(
                f"activation store {path}: another process is writing it (lock on {LOCK} held); "
                "wait for it to finish or stop it, then rerun",
                path=path,
            )
        try:
            return cls._open(path, manifest, metadata, overwrite, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open(
        cls,
        path: Path,
        manifest: StoreManifest,
        metadata: dict[str, np.ndarray],
        overwrite: bool,
        lock: StoreLock,
    ) -> StoreWriter:
        if not (path / MANIFEST).exists():
            names = os.listdir(path)
            others = sorted(n for n in names if not is_store_file(n))
            if others:
                raise StoreError(
                    f"activation store {path}: the folder is not empty and is not an activation store "
                    f"(no {MANIFEST}; holds {_format_ids(others, 5)}); choose an empty or new folder",
                    path=path,
                )
            if any(n != LOCK for n in names):
                logger.info("%s: found the leftovers of an interrupted creation; starting afresh", path)
            return cls._create(path, manifest, metadata, lock)

        existing, problem = cls._inspect(path, manifest, metadata)
        if problem is not None:
            if not overwrite:
                raise StoreError(
                    f"activation store {path}: cannot resume it: {problem}. Pass overwrite=True "
                    "(the CLI's overwrite option) to replace it, or choose another output folder.",
                    path=path,
                )
            logger.warning("%s: replacing the existing store (overwrite=True): %s", path, problem)
            return cls._create(path, manifest, metadata, lock)

        assert existing is not None
        if existing.complete:
            if (path / PROGRESS).exists():  # finalize was cut off between the manifest and this
                (path / PROGRESS).unlink()
                fsync_dir(path)
                logger.info("%s: removed the %s left by an interrupted finalize", path, PROGRESS)
            lock.release()
            logger.info("%s: store is already complete; nothing to do", path)
            return cls(
                path,
                existing,
                metadata,
                done_chunks=frozenset(range(existing.n_chunks)),
                n_items_written=existing.n_items,
                activations=None,
                lock=None,
            )

        done, n_written = _read_progress(path, existing)
        mm = RowFile(path / ACTIVATIONS)
        logger.info(
            "%s: resuming: %d of %d chunks already committed (%d of %d items)",
            path,
            len(done),
            existing.n_chunks,
            n_written,
            existing.n_items,
        )
        return cls(
            path, existing, metadata, done_chunks=done, n_items_written=n_written, activations=mm, lock=lock
        )

    @staticmethod
    def _inspect(
        path: Path, manifest: StoreManifest, metadata: dict[str, np.ndarray]
    ) -> tuple[StoreManifest | None, str | None]:
        """Read the existing store; return (its manifest, why it cannot be resumed or None)."""
        try:
            existing = StoreManifest.from_dict(read_json(path / MANIFEST))
        except (OSError, ValueError, TypeError) as exc:
            return None, f"its {MANIFEST} cannot be read ({exc})"
        hard, soft = existing.plan_differences(manifest)
        if hard:
            return existing, (
                "it was made with a different plan: " + describe_differences(existing, manifest, hard)
            )
        if soft:
            logger.warning(
                "%s: resuming although %s differ: %s",
                path,
                "/".join(soft),
                describe_differences(existing, manifest, soft),
            )
        problems = check_files(path, existing)
        if problems:
            return existing, "it is damaged: " + "; ".join(problems)
        for name, array in metadata.items():
            on_disk = np.load(path / name, allow_pickle=False)
            if not np.array_equal(on_disk, array, equal_nan=array.dtype.kind == "f"):
                return existing, f"its {name} differs from this run's ({_first_difference(on_disk, array)})"
        return existing, None

    @classmethod
    def _create(
        cls, path: Path, manifest: StoreManifest, metadata: dict[str, np.ndarray], lock: StoreLock
    ) -> StoreWriter:
        others = remove_store_files(path)
        if others:
            logger.warning("%s: leaving unrelated files in the store folder: %s", path, others)
        n_bytes = int(np.prod(manifest.shape, dtype=np.int64)) * np.dtype(manifest.dtype).itemsize
        free = shutil.disk_usage(path).free
        if n_bytes > free:
            raise StoreError(
                f"activation store {path}: needs {n_bytes / 2**30:.2f} GiB for {ACTIVATIONS} but only "
                f"{free / 2**30:.2f} GiB are free; free some space, choose another folder, or store float16",
                path=path,
            )
        for name, array in metadata.items():
            save_npy(path / name, array)
        target = path / ACTIVATIONS
        mm = np.lib.format.open_memmap(target, mode="w+", dtype=manifest.dtype, shape=manifest.shape)
        mm.flush()
        del mm
        _preallocate(target, path)
        _write_progress(path, manifest, [], 0)
        write_json_atomic(path / MANIFEST, manifest.to_dict())  # last: its presence marks a finished creation
        logger.info(
            "%s: created store for %s / %s / %s (%s, shape %s, %d chunks)",
            path,
            manifest.model,
            manifest.task,
            manifest.split,
            manifest.dtype,
            manifest.shape,
            manifest.n_chunks,
        )
        mm = RowFile(target)
        return cls(
            path, manifest, metadata, done_chunks=frozenset(), n_items_written=0, activations=mm, lock=lock
        )

    # ------------------------------------------------------------------ state

    @property
    def manifest(self) -> StoreManifest:
        """The store's manifest (the one on disk when resuming; ``complete=True`` after :meth:`finalize`)."""
        return self._manifest

    @property
    def complete(self) -> bool:
        """True when the store is finalised (already on opening, or after :meth:`finalize`)."""
        return self._manifest.complete

    @property
    def done_chunks(self) -> frozenset[int]:
        """Ids of the committed chunks."""
        return self._done

    @property
    def n_items_written(self) -> int:
        """Rows written by the committed chunks."""
        return self._n_written

    def is_done(self, chunk_id: int) -> bool:
        """Whether chunk ``chunk_id`` is committed."""
        return int(chunk_id) in self._done

    def pending(self, n_chunks: int | None = None) -> list[int]:
        """Chunk ids in ``range(n_chunks)`` still to write, in increasing order.

        ``n_chunks`` defaults to the manifest's; a different value raises ``ValueError``.
        """
        if n_chunks is not None and int(n_chunks) != self._manifest.n_chunks:
            raise ValueError(f"n_chunks={n_chunks} disagrees with the manifest's {self._manifest.n_chunks}")
        return [c for c in range(self._manifest.n_chunks) if c not in self._done]

    # ------------------------------------------------------------------ writing

    def _check_writable(self) -> None:
        if self.complete:
            raise StoreError(
                f"activation store {self.path}: is complete; nothing may be written to it", path=self.path
            )
        if self._closed or self._mm is None:
            raise StoreError(
                f"activation store {self.path}: this writer is closed; call create_or_resume again",
                path=self.path,
            )

    def write_chunk(self, chunk_id: int, item_index: np.ndarray, values: np.ndarray) -> None:
        """Write the rows ``item_index`` of one chunk and commit the chunk atomically.

        Parameters
        ----------
        chunk_id : int
            In ``[0, n_chunks)``, not yet committed.
        item_index : int array of shape (k,)
            Store rows to fill; any order, need not be contiguous, no repeats.
        values : float array of shape (k, n_layers, hidden)
            Activations; cast to the store dtype. All must be finite after the cast.

        Raises
        ------
        StoreError
            The chunk is already committed, a value is NaN/inf (or overflows the store dtype), or the
            writer is complete or closed. Nothing of the chunk is committed then.
        ValueError
            Bad chunk id, indices or shape.
        """
        self._check_writable()
        m = self._manifest
        if isinstance(chunk_id, bool) or not isinstance(chunk_id, int | np.integer):
            raise ValueError(f"chunk_id must be an int, got {type(chunk_id).__name__}")
        cid = int(chunk_id)
        if not 0 <= cid < m.n_chunks:
            raise ValueError(f"chunk_id {cid} is outside [0, {m.n_chunks})")
        if cid in self._done:
            raise StoreError(
                f"activation store {self.path}: chunk {cid} is already committed; check writer.is_done() "
                "or iterate over writer.pending()",
                path=self.path,
            )
        idx = np.asarray(item_index)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ValueError(f"item_index must be a 1-D integer array, got {idx.dtype}{list(idx.shape)}")
        idx = idx.astype(np.int64)
        k = idx.shape[0]
        if k:
            if idx.min() < 0 or idx.max() >= m.n_items:
                raise ValueError(f"item_index must lie in [0, {m.n_items})")
            if np.unique(idx).size != k:
                raise ValueError("item_index has repeated items")
        vals = np.asarray(values)
        if vals.shape != (k, m.n_layers, m.hidden):
            raise ValueError(
                f"values must have shape ({k}, {m.n_layers}, {m.hidden}) (items, layers, hidden), "
                f"got {vals.shape}"
            )
        if vals.size and vals.dtype.kind not in "iuf":
            raise ValueError(f"values must be real numbers, got dtype {vals.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            cast = vals.astype(m.dtype, copy=False)
        # A float64 sum is finite exactly when every value is, without an elementwise temporary.
        if not np.isfinite(cast.sum(dtype=np.float64)):
            raise StoreError(self._non_finite_message(cid, idx, vals, cast), path=self.path)

        assert self._mm is not None
        self._mm.write(idx, cast)
        self._mm.flush()  # fsync: the rows are on disk before the commit record says so
        done = sorted(self._done | {cid})
        n_written = self._n_written + k
        _write_progress(self.path, m, done, n_written)
        self._done = frozenset(done)
        self._n_written = n_written
        logger.debug(
            "%s: committed chunk %d (%d items; %d of %d chunks)", self.path, cid, k, len(done), m.n_chunks
        )

    def _non_finite_message(self, cid: int, idx: np.ndarray, vals: np.ndarray, cast: np.ndarray) -> str:
        bad_rows = ~np.isfinite(cast.reshape(len(idx), -1)).all(axis=1)
        row = int(np.argmax(bad_rows))
        item = int(idx[row])
        flat = int(np.argmax(~np.isfinite(cast[row].ravel())))
        layer, unit = divmod(flat, self._manifest.hidden)
        original = vals[row].ravel()[flat]
        if np.isfinite(original):
            what = (
                f"value {float(original):.6g} overflows {self._manifest.dtype}; store float32 or check "
                "the model's activations"
            )
        else:
            what = f"value {float(original)}"
        sid = int(self._metadata[SENTENCE_IDS][item])
        pos = int(self._metadata[POSITIONS][item])
        return (
            f"activation store {self.path}: chunk {cid} has a non-finite activation at item {item} "
            f"(sentence {sid}, position {pos}), layer {layer}, unit {unit}: {what}. "
            f"{int(bad_rows.sum())} of {len(idx)} rows are affected; the chunk was not committed."
        )

    # ------------------------------------------------------------------ finishing

    def finalize(self) -> StoreManifest:
        """Check that every chunk is committed, checksum the files and mark the store complete.

        Writes ``manifest.json`` with ``complete=True`` and the SHA-256 of each ``.npy`` file (atomically),
        then removes ``progress.json``. Idempotent on a complete store. Releases the writer.

        Raises
        ------
        StoreError
            Some chunks are missing (listed), or the committed chunks did not write ``n_items`` rows.
        """
        if self.complete:
            return self._manifest
        self._check_writable()
        m = self._manifest
        missing = self.pending()
        if missing:
            raise StoreError(
                f"activation store {self.path}: cannot finalise: {len(missing)} of {m.n_chunks} chunks are "
                f"not committed: {_format_ids(missing)}",
                path=self.path,
            )
        if self._n_written != m.n_items:
            raise StoreError(
                f"activation store {self.path}: cannot finalise: the {m.n_chunks} chunks wrote "
                f"{self._n_written} rows but the store has {m.n_items} items; the chunking does not cover "
                "every item exactly once. Rerun with overwrite=True after fixing the chunking.",
                path=self.path,
            )
        assert self._mm is not None
        self._mm.close()
        self._mm = None
        checksums = {name: sha256_file(self.path / name) for name in expected_files(m)}
        final = dataclasses.replace(m, complete=True, sha256=checksums)
        write_json_atomic(self.path / MANIFEST, final.to_dict())
        (self.path / PROGRESS).unlink(missing_ok=True)
        fsync_dir(self.path)
        self._manifest = final
        self.close()
        logger.info("%s: store complete (%d items, %d chunks)", self.path, m.n_items, m.n_chunks)
        return final

    def close(self) -> None:
        """Flush and release the memory map and the lock. Committed chunks stay; the store can be resumed."""
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self._closed = True

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self._manifest
        state = "complete" if self.complete else f"{len(self._done)}/{m.n_chunks} chunks"
        return f"StoreWriter({str(self.path)!r}, shape={m.shape}, dtype={m.dtype}, {state})"


def _preallocate(target: Path, store: Path) -> None:
    """Reserve the disk blocks of a freshly created file so a full disk fails now, not as SIGBUS later."""
    if not hasattr(os, "posix_fallocate"):  # pragma: no cover - macOS, Windows
        return
    size = target.stat().st_size
    if size == 0:
        return
    with open(target, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, size)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                fh.close()
                target.unlink(missing_ok=True)
                raise StoreError(
                    f"activation store {store}: not enough disk space for {ACTIVATIONS} "
                    f"({size / 2**30:.2f} GiB); free some space or choose another folder",
                    path=store,
                ) from exc
            logger.debug("posix_fallocate unsupported on %s (%s); the file stays sparse", target, exc)
            return
        os.fsync(fh.fileno())


def _write_progress(path: Path, manifest: StoreManifest, chunks: list[int], n_items_written: int) -> None:
    write_json_atomic(
        path / PROGRESS,
        {
            "format_version": FORMAT_VERSION,
            "plan_hash": manifest.plan_hash,
            "n_chunks": manifest.n_chunks,
            "chunks": chunks,
            "n_items_written": n_items_written,
        },
    )


def _read_progress(path: Path, manifest: StoreManifest) -> tuple[frozenset[int], int]:
    """Committed chunks and rows; anything doubtful means "start over", which is always safe."""
    file = path / PROGRESS
    try:
        progress = read_json(file)
        chunks = progress["chunks"]
        n_written = progress["n_items_written"]
        ok = (
            progress.get("plan_hash") == manifest.plan_hash
            and progress.get("n_chunks") == manifest.n_chunks
            and isinstance(chunks, list)
            and all(isinstance(c, int) and 0 <= c < manifest.n_chunks for c in chunks)
            and len(set(chunks)) == len(chunks)
            and isinstance(n_written, int)
            and 0 <= n_written <= manifest.n_items
        )
    except FileNotFoundError:
        logger.warning("%s: %s is missing; redoing every chunk", path, PROGRESS)
        return frozenset(), 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("%s: %s is unreadable (%s); redoing every chunk", path, PROGRESS, exc)
        return frozenset(), 0
    if not ok:
        logger.warning("%s: %s does not match the manifest; redoing every chunk", path, PROGRESS)
        return frozenset(), 0
    return frozenset(chunks), n_written
