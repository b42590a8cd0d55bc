"""On-disk, memory-mapped activation stores: one folder per (model, task, split, aggregation).

A store holds ``activations.npy`` of shape ``(n_items, n_layers, hidden)`` (float16 or float32), the
per-item ``labels.npy`` / ``sentence_ids.npy`` / ``positions.npy``, a ``manifest.json`` describing how it
was made and, while it is being filled, ``progress.json``. See ``docs/store.md``.

Public API
----------
StoreManifest
    Frozen description of a store (``to_dict`` / ``from_dict``).
StoreWriter
    ``create_or_resume`` -> ``write_chunk`` (atomic, resumable) -> ``finalize``.
ActivationStore
    ``open(path, verify="fast" | "full")`` -> ``iter_batches`` / ``read`` / ``summary``.
StoreError
    Anything wrong with a store on disk; the message names the folder and the remedy.
plan_hash, default_store_name, package_versions
    Helpers for the manifest.
sha256_file
    The streamed SHA-256 of a file (the manifest's checksums; the run cache and checkpoints use it too).
DTYPES
    The activation dtypes a store holds (``float16``, ``float32``).
"""

from ._files import sha256_file
from ._manifest import (
    DTYPES,
    FORMAT_VERSION,
    StoreError,
    StoreManifest,
    default_store_name,
    package_versions,
    plan_hash,
)
from ._reader import ActivationStore
from ._writer import StoreWriter

__all__ = [
    "sha256_file",
    "DTYPES",
    "FORMAT_VERSION",
    "ActivationStore",
    "StoreError",
    "StoreManifest",
    "StoreWriter",
    "default_store_name",
    "package_versions",
    "plan_hash",
]
