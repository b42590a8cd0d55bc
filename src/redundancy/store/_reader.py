"""Open a finished activation store and stream selections of it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._files import (
    ACTIVATIONS,
    LABELS,
    MANIFEST,
    POSITIONS,
    PROGRESS,
    SENTENCE_IDS,
    check_checksums,
    check_files,
    expected_files,
    read_json,
)
from ._manifest import StoreError, StoreManifest

Verify = Literal["fast", "full"]


def _incomplete_message(path: Path, manifest: StoreManifest) -> str:
    try:
        progress = read_json(path / PROGRESS)
        done = len(progress["chunks"])
        count = f"{done} of {manifest.n_chunks} chunks committed"
    except (OSError, ValueError, KeyError, TypeError):
        count = f"0 of {manifest.n_chunks} chunks known to be committed: {PROGRESS} is missing or unreadable"
    return (
        f"activation store {path}: is incomplete ({count}); its extraction was interrupted. "
        "Rerun the same extract command to resume it (finished chunks are kept)."
    )


class ActivationStore:
    """A finished, read-only activation store: a memory-mapped ``(n_items, n_layers, hidden)`` array.

    Open one with :meth:`open`. Features are addressed either by layer (all ``hidden`` units of each
    chosen layer) or by flat neuron index ``layer * hidden + unit`` (layer-major).

    Examples
    --------
    >>> store = ActivationStore.open("runs/stores/bert-base-cased__pos__train__last")  # doctest: +SKIP
    >>> for X, y in store.iter_batches(4096, layers=[0, 12]):                           # doctest: +SKIP
    ...     model.partial_fit(X, y)
    """

    def __init__(
        self,
        path: Path,
        manifest: StoreManifest,
        activations: np.memmap,
        labels: np.ndarray | None,
        sentence_ids: np.ndarray,
        positions: np.ndarray,
    ):
        self.path = path
        self._manifest = manifest
        self._activations: np.memmap | None = activations
        self._labels = labels
        self._sentence_ids = sentence_ids
        self._positions = positions

    @classmethod
    def open(cls, path: str | os.PathLike, verify: Verify = "fast") -> ActivationStore:
        """Open the complete store at ``path`` after checking it.

        Parameters
        ----------
        path : path-like
            The store folder.
        verify : {"fast", "full"}
            ``"fast"``: the manifest parses and says complete, every file exists, each ``.npy`` header has
            the manifest's shape and dtype and each file has exactly the size its header implies (catches
            truncation). ``"full"``: also recompute every file's SHA-256 and compare with the manifest
            (catches corrupted bytes; reads the whole store once).

        Raises
        ------
        StoreError
            Missing folder or manifest, incomplete store (with the chunk counts), or failed checks.
        """
        if verify not in ("fast", "full"):
            raise ValueError(f"verify must be 'fast' or 'full', got {verify!r}")
        path = Path(path)
        if not path.is_dir():
            raise StoreError(
                f"activation store {path}: no such folder; run the extraction to create it", path=path
            )
        if not (path / MANIFEST).is_file():
            raise StoreError(
                f"activation store {path}: no {MANIFEST}, so this is not an activation store or its creation "
                "was interrupted; rerun the extract command to (re)create it",
                path=path,
            )
        try:
            manifest = StoreManifest.from_dict(read_json(path / MANIFEST))
        except (OSError, ValueError, TypeError) as exc:
            raise StoreError(
                f"activation store {path}: {MANIFEST} cannot be read ({exc}); rerun the extract command "
                "with overwrite to rebuild the store",
                path=path,
            ) from exc
        if not manifest.complete:
            raise StoreError(_incomplete_message(path, manifest), path=path)
        problems = check_files(path, manifest)
        if not problems and verify == "full":
            problems = check_checksums(path, manifest)
        if problems:
            raise StoreError(
                f"activation store {path}: failed {verify} verification: {'; '.join(problems)}. "
                "Rerun the extract command with overwrite to rebuild it.",
                path=path,
            )
        activations = np.load(path / ACTIVATIONS, mmap_mode="r", allow_pickle=False)
        labels = np.load(path / LABELS, allow_pickle=False) if LABELS in expected_files(manifest) else None
        sentence_ids = np.load(path / SENTENCE_IDS, allow_pickle=False)
        positions = np.load(path / POSITIONS, allow_pickle=False)
        for array in (labels, sentence_ids, positions):
            if array is not None:
                array.setflags(write=False)
        return cls(path, manifest, activations, labels, sentence_ids, positions)

    # ------------------------------------------------------------------ metadata

    @property
    def manifest(self) -> StoreManifest:
        return self._manifest

    @property
    def n_items(self) -> int:
        return self._manifest.n_items

    @property
    def n_layers(self) -> int:
        return self._manifest.n_layers

    @property
    def hidden(self) -> int:
        return self._manifest.hidden

    @property
    def n_neurons(self) -> int:
        """``n_layers * hidden``: the width of the flat (layer-major) feature layout."""
        return self._manifest.n_neurons

    @property
    def dtype(self) -> np.dtype:
        """Storage dtype of the activations."""
        return np.dtype(self._manifest.dtype)

    @property
    def labels(self) -> np.ndarray | None:
        """Read-only ``(n_items,)`` int32 class ids (-1 = no label) or float32 values; None if unlabeled."""
        return self._labels

    @property
    def label_names(self) -> tuple[str, ...]:
        return self._manifest.label_names

    @property
    def sentence_ids(self) -> np.ndarray:
        """Read-only ``(n_items,)`` int32: the sentence/example each item belongs to."""
        return self._sentence_ids

    @property
    def positions(self) -> np.ndarray:
        """Read-only ``(n_items,)`` int32: word position in its sentence (0 for sentence tasks)."""
        return self._positions

    @property
    def activations(self) -> np.memmap:
        """Read-only memory map of shape ``(n_items, n_layers, hidden)`` in the storage dtype."""
        if self._activations is None:
            raise StoreError(f"activation store {self.path}: is closed", path=self.path)
        return self._activations

    # ------------------------------------------------------------------ selections

    def _feature_index(self, layers: Sequence[int] | None, neurons: Any) -> np.ndarray | None:
        """Flat column indices for a selection, or None for every column."""
        if layers is not None and neurons is not None:
            raise ValueError("pass layers or neurons, not both")
        if layers is not None:
            lay = np.asarray(layers)
            if lay.ndim != 1 or lay.size == 0 or lay.dtype.kind not in "iu":
                raise ValueError(f"layers must be a non-empty list of ints, got {layers!r}")
            if lay.min() < 0 or lay.max() >= self.n_layers:
                raise ValueError(f"layers must lie in [0, {self.n_layers}), got {lay.tolist()}")
            if np.unique(lay).size != lay.size:
                raise ValueError(f"layers has repeats: {lay.tolist()}")
            return (lay.astype(np.int64)[:, None] * self.hidden + np.arange(self.hidden)).ravel()
        if neurons is not None:
            neu = np.asarray(neurons)
            if neu.ndim != 1 or neu.size == 0 or neu.dtype.kind not in "iu":
                raise ValueError(
                    "neurons must be a non-empty 1-D array of ints (flat = layer * hidden + unit)"
                )
            if neu.min() < 0 or neu.max() >= self.n_neurons:
                raise ValueError(f"neurons must lie in [0, {self.n_neurons}) (n_layers * hidden)")
            if np.unique(neu).size != neu.size:
                raise ValueError("neurons has repeats")
            return neu.astype(np.int64)
        return None

    def _item_index(self, items: Any) -> np.ndarray | None:
        if items is None:
            return None
        idx = np.asarray(items)
        if idx.dtype == np.bool_:
            if idx.shape != (self.n_items,):
                raise ValueError(f"a boolean items mask must have shape ({self.n_items},), got {idx.shape}")
            return np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ValueError("items must be a 1-D array of item indices (or a boolean mask)")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_items):
            raise ValueError(f"items must lie in [0, {self.n_items})")
        return idx

    def iter_batches(
        self,
        batch_size: int = 4096,
        *,
        layers: Sequence[int] | None = None,
        neurons: Any = None,
        items: Any = None,
        dtype: Any = np.float32,
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Stream ``(X, y)`` batches of a selection without materialising the store.

        Parameters
        ----------
        batch_size : int
            Rows per batch (the last one may be shorter).
        layers : sequence of int, optional
            Keep every unit of these layers; columns are layer ``layers[0]``'s ``hidden`` units, then
            ``layers[1]``'s, ... (the order given; no repeats).
        neurons : int array, optional
            Keep these flat neurons (``layer * hidden + unit``), in the order given (no repeats).
            Not together with ``layers``. Neither: all ``n_layers * hidden`` columns.
        items : int array or boolean mask, optional
            Rows to visit, in this order (repeats allowed, e.g. bootstrap samples). Default: all, in order.
        dtype : float dtype
            Dtype of ``X`` (a fresh, writeable array).

        Yields
        ------
        X : ndarray of shape (b, n_selected_features)
        y : ndarray of shape (b,) or None
            The labels of the same rows (None for unlabeled stores).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"dtype must be a floating dtype, got {dtype}")
        cols = self._feature_index(layers, neurons)
        idx = self._item_index(items)
        return self._batches(int(batch_size), cols, idx, dtype)  # arguments checked now, not at first next()

    def _batches(
        self, batch_size: int, cols: np.ndarray | None, idx: np.ndarray | None, dtype: np.dtype
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        flat = self.activations.reshape(self.n_items, self.n_neurons)
        total = self.n_items if idx is None else idx.size
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            if idx is None:
                rows: np.ndarray = flat[start:stop]  # a view of the map; copied below
                y = None if self._labels is None else self._labels[start:stop].copy()
            else:
                rows = flat[idx[start:stop]]  # fancy indexing reads and copies just these rows
                y = None if self._labels is None else self._labels[idx[start:stop]]
            selected = rows if cols is None else np.take(rows, cols, axis=1)
            if idx is None and cols is None:  # a view of the map: copy it out
                X = np.array(selected, dtype=dtype, copy=True)
            else:  # already a fresh array: cast only if needed
                X = np.asarray(selected, dtype=dtype)
            yield X.view(np.ndarray), y

    def read(
        self,
        items: Any = None,
        layers: Sequence[int] | None = None,
        neurons: Any = None,
        *,
        dtype: Any = np.float32,
    ) -> np.ndarray:
        """Materialise a selection as one ``(n_selected_items, n_selected_features)`` array.

        Same selection rules as :meth:`iter_batches`. Meant for small selections (a few layers or
        neurons, a subset of items): the result lives in memory. For everything, stream with
        :meth:`iter_batches` or index :attr:`activations`.
        """
        cols = self._feature_index(layers, neurons)
        idx = self._item_index(items)
        n_rows = self.n_items if idx is None else idx.size
        n_cols = self.n_neurons if cols is None else cols.size
        out = np.empty((n_rows, n_cols), dtype=np.dtype(dtype))
        start = 0
        for X, _ in self.iter_batches(layers=layers, neurons=neurons, items=idx, dtype=dtype):
            out[start : start + X.shape[0]] = X
            start += X.shape[0]
        return out

    # ------------------------------------------------------------------ description

    def summary(self, top: int = 10) -> dict[str, Any]:
        """JSON-serialisable description for ``redundancy store info``.

        Includes path, shape, dtype, bytes on disk, model, task, split, aggregation, label counts (the
        ``top`` most frequent class labels, or value statistics for real labels), completeness, creation
        time and package versions.
        """
        m = self._manifest
        size = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        labels: dict[str, Any] = {"type": m.label_type, "n_labels": len(m.label_names)}
        if self._labels is not None and m.label_type == "class":
            known = self._labels[self._labels >= 0]
            counts = np.bincount(known, minlength=len(m.label_names))
            order = np.argsort(-counts, kind="stable")[:top]
            labels["top"] = [[m.label_names[i], int(counts[i])] for i in order if counts[i] > 0]
            labels["n_unlabeled"] = int(self._labels.size - known.size)
        elif self._labels is not None and m.label_type == "real":
            known = self._labels[~np.isnan(self._labels)].astype(np.float64)
            labels["n_unlabeled"] = int(self._labels.size - known.size)
            if known.size:
                labels.update(
                    min=float(known.min()),
                    max=float(known.max()),
                    mean=float(known.mean()),
                    std=float(known.std()),
                )
        return {
            "path": str(self.path),
            "shape": list(m.shape),
            "dtype": m.dtype,
            "size_bytes": int(size),
            "model": m.model,
            "weights_sha256": m.weights_sha256,
            "model_source": m.model_source,
            "tokenizer": m.tokenizer,
            "task": m.task,
            "split": m.split,
            "level": m.level,
            "aggregation": m.aggregation,
            "n_sentences": m.n_sentences,
            "n_chunks": m.n_chunks,
            "labels": labels,
            "complete": m.complete,
            "created": m.created,
            "plan_hash": m.plan_hash,
            "format_version": m.format_version,
            "versions": dict(m.versions),
        }

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Drop the memory map (arrays already handed out stay valid)."""
        self._activations = None

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self._manifest
        return (
            f"ActivationStore({str(self.path)!r}, {m.model}/{m.task}/{m.split}/{m.aggregation}, "
            f"shape={m.shape}, dtype={m.dtype})"
        )
