"""Synthetic activations with a planted linear rule, and a store writer (probe and pipeline tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redundancy.store import StoreManifest, StoreWriter, plan_hash

TAGS = ("DET", "NOUN", "VERB", "ADJ")


def planted(
    n: int,
    n_layers: int = 3,
    hidden: int = 8,
    *,
    seed: int = 0,
    planted_layer: int = 1,
    units=(2, 5),
    n_classes: int = 4,
    noise: float = 0.05,
):
    """Activations (n, n_layers, hidden) and labels decided by a linear rule on two planted units.

    Class = argmax of ``A @ x[planted units]`` for fixed directions ``A``; all other units are noise
    with large, varied scales (so standardisation matters).
    """
    scales = np.random.default_rng(12345).uniform(0.5, 5.0, size=(1, n_layers, hidden))  # same in every split
    rng = np.random.default_rng(seed)
    acts = rng.normal(size=(n, n_layers, hidden)) * scales
    angles = np.linspace(0, 2 * np.pi, n_classes, endpoint=False)
    A = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 4.0
    z = acts[:, planted_layer, list(units)] / scales[0, planted_layer, list(units)]
    y = (z @ A.T + noise * rng.normal(size=(n, n_classes))).argmax(1)
    return acts.astype(np.float32), y.astype(np.int32)


def write_store(
    path: Path,
    acts: np.ndarray,
    labels: np.ndarray,
    label_names,
    *,
    split="train",
    task="toy",
    label_type="class",
    sentence_len: int = 5,
) -> Path:
    n, L, h = acts.shape
    sentence_ids = (np.arange(n) // sentence_len).astype(np.int32)
    positions = (np.arange(n) % sentence_len).astype(np.int32)
    manifest = StoreManifest(
        model="org/planted",
        weights_sha256="0" * 64,
        model_source="synthetic",
        tokenizer="org/planted",
        task=task,
        split=split,
        level="token",
        aggregation="last",
        dtype="float32",
        n_items=n,
        n_layers=L,
        hidden=h,
        n_sentences=int(sentence_ids[-1]) + 1,
        label_type=label_type,
        label_names=tuple(label_names),
        plan_hash=plan_hash({"split": split, "n": n}),
        n_chunks=1,
        seed=0,
        data_files={"mem": "0" * 64},
        versions={"numpy": np.__version__},
        extra={},
    )
    with StoreWriter.create_or_resume(path, manifest, labels, sentence_ids, positions) as w:
        w.write_chunk(0, np.arange(n), acts)
        w.finalize()
    return path
