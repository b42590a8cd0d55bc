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


def store_manifest(**fields) -> StoreManifest:
    """A :class:`StoreManifest` of a synthetic store: defaults for every field, ``fields`` override them.

    The one manifest builder of the tests (probe, pipeline, report, general and store tests)."""
    defaults = dict(
        model="org/planted",
        weights_sha256="0" * 64,
        model_source="synthetic",
        tokenizer="org/planted",
        task="toy",
        split="train",
        level="token",
        aggregation="last",
        dtype="float32",
        label_type="class",
        label_names=(),
        n_chunks=1,
        seed=0,
        data_files={"mem": "0" * 64},
        versions={"numpy": np.__version__},
        extra={},
    )
    defaults.update(fields)
    if "plan_hash" not in defaults:
        defaults["plan_hash"] = plan_hash({"split": defaults["split"], "n": defaults["n_items"]})
    return StoreManifest(**defaults)


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
    sentence_ids: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    chunks: list[np.ndarray] | None = None,
    **manifest_fields,
) -> Path:
    """Write a finished store of ``acts`` (n, n_layers, hidden) and ``labels`` at ``path``.

    Sentences are ``sentence_len`` consecutive items unless ``sentence_ids`` / ``positions`` are
    given; ``chunks`` (item indices per chunk, default one chunk) are written in order; any other
    keyword overrides a manifest field (see :func:`store_manifest`)."""
    n, L, h = acts.shape
    if sentence_ids is None:
        sentence_ids = (np.arange(n) // sentence_len).astype(np.int32)
        positions = (np.arange(n) % sentence_len).astype(np.int32)
    chunks = [np.arange(n)] if chunks is None else chunks
    manifest = store_manifest(
        **{
            "task": task,
            "split": split,
            "n_items": n,
            "n_layers": L,
            "hidden": h,
            "n_sentences": int(sentence_ids.max()) + 1,
            "label_type": label_type,
            "label_names": tuple(label_names),
            "n_chunks": len(chunks),
            **manifest_fields,
        }
    )
    with StoreWriter.create_or_resume(path, manifest, labels, sentence_ids, positions) as w:
        for cid, idx in enumerate(chunks):
            w.write_chunk(cid, idx, acts[idx])
        w.finalize()
    return path
