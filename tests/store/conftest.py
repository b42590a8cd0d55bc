"""Shared fixtures for the activation-store tests: small fake extractions with scattered chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from synthetic import store_manifest

from redundancy.store import StoreManifest, StoreWriter, plan_hash


@dataclass
class FakeExtraction:
    """What an extraction run would produce: a manifest, per-item metadata, values and a chunking."""

    manifest: StoreManifest
    values: np.ndarray  # float64 (n_items, n_layers, hidden)
    labels: np.ndarray | None
    sentence_ids: np.ndarray
    positions: np.ndarray
    chunks: list[np.ndarray]  # item indices of each chunk: scattered, uneven

    def open_writer(self, path: Path, **kwargs) -> StoreWriter:
        return StoreWriter.create_or_resume(
            path, self.manifest, self.labels, self.sentence_ids, self.positions, **kwargs
        )

    def write(self, writer: StoreWriter, chunk_ids=None) -> None:
        """Write the given chunks (default: every pending one, last to first)."""
        ids = sorted(writer.pending(), reverse=True) if chunk_ids is None else chunk_ids
        for cid in ids:
            idx = self.chunks[cid]
            writer.write_chunk(cid, idx, self.values[idx])

    def build(self, path: Path) -> Path:
        """Create, fill and finalise a store at ``path``."""
        with self.open_writer(path) as writer:
            self.write(writer)
            writer.finalize()
        return path

    def expected(self) -> np.ndarray:
        """The values as stored (cast to the store dtype), as float32."""
        return self.values.astype(self.manifest.dtype).astype(np.float32)

    def with_manifest(self, **changes) -> FakeExtraction:
        return replace(self, manifest=replace(self.manifest, **changes))


def make_fake(
    *,
    dtype: str = "float32",
    n_sentences: int = 6,
    n_layers: int = 3,
    hidden: int = 4,
    n_chunks: int = 4,
    label_type: str = "class",
    level: str = "token",
    seed: int = 0,
    plan: dict | None = None,
) -> FakeExtraction:
    rng = np.random.default_rng(seed)
    if level == "token":
        lengths = rng.integers(1, 6, size=n_sentences)
        sentence_ids = np.repeat(np.arange(n_sentences), lengths).astype(np.int32)
        positions = np.concatenate([np.arange(k) for k in lengths]).astype(np.int32)
    else:
        sentence_ids = np.arange(n_sentences, dtype=np.int32)
        positions = np.zeros(n_sentences, dtype=np.int32)
    n = sentence_ids.size
    label_names: tuple[str, ...] = ()
    if label_type == "class":
        label_names = ("DET", "NOUN", "VERB")
        labels = rng.integers(-1, len(label_names), size=n).astype(np.int32)
    elif label_type == "real":
        labels = rng.normal(size=n).astype(np.float32)
        labels[0] = np.nan
    else:
        labels = None
    values = rng.normal(scale=3.0, size=(n, n_layers, hidden))
    order = rng.permutation(n)  # scattered, like length-sorted batches
    chunks = [np.sort(c) if i % 2 else c for i, c in enumerate(np.array_split(order, n_chunks))]
    plan = plan if plan is not None else {"model": "tiny", "dtype": dtype, "seed": seed, "n_chunks": n_chunks}
    manifest = store_manifest(
        model="org/tiny-model",
        weights_sha256="weights-sha256-0123",
        model_source="cache",
        tokenizer="org/tiny-model",
        task="pos",
        split="train",
        level=level,
        aggregation="last",
        dtype=dtype,
        n_items=n,
        n_layers=n_layers,
        hidden=hidden,
        n_sentences=n_sentences,
        label_type=label_type,
        label_names=label_names,
        plan_hash=plan_hash(plan),
        n_chunks=n_chunks,
        seed=seed,
        data_files={"data/pos/train.conllu": "ab" * 32},
        versions={"numpy": np.__version__},
        extra={"batch_size": 8, "max_length": 512},
    )
    return FakeExtraction(manifest, values, labels, sentence_ids, positions, chunks)


@pytest.fixture(scope="session")
def fake():
    """``fake(**options)`` makes a :class:`FakeExtraction`."""
    return make_fake


def npy_digests(path: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.glob("*.npy"))}


@pytest.fixture(scope="session")
def digests():
    """``digests(path)``: SHA-256 of every .npy file in a store folder."""
    return npy_digests
