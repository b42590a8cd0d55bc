"""The record of a compact model folder: its layout, ``compact.json`` (:class:`CompactInfo`) and
how it is read and written.

Layout of a compact folder (see ``docs/pipeline.md``)::

    model/              AutoModel.from_pretrained(...) loads it: l transformer layers, tokenizer beside
    probe.safetensors   coef (K, k) float32 raw scale, intercept (K,), mean/scale (k,), neurons (k,) int64
    compact.json        what it is, where it came from, the row's scores (:class:`CompactInfo`)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .._serial import check_fields, json_ready, nan_if_none

FORMAT_VERSION = 1
"""Version of the compact folder layout written here; other versions are refused on load."""

INFO_FILE = "compact.json"
PROBE_FILE = "probe.safetensors"
MODEL_DIR = "model"


@dataclass(frozen=True)
class CompactInfo:
    """Everything ``compact.json`` records about a compact model.

    Attributes
    ----------
    format_version : layout version (:data:`FORMAT_VERSION`).
    task, level, aggregation, label_type : from the train store (``level`` token, sentence or
        sentence_pair; ``label_type`` class or real).
    classes : class names in the probe's output order; None for regression.
    metric : the task's metric (the scores below are in it, as fractions).
    selected_layer : l; the compact model computes hidden states 0..l (l transformer layers).
    hidden : width of one hidden state.
    n_layers_full, n_neurons_full : hidden states and neurons of the full model.
    neurons : flat indices ``layer * hidden + unit`` into hidden states 0..l, the probe's columns.
    delta_layer, delta_neuron, threshold, dev, test, oracle_dev, oracle_test : the exported pipeline row.
    probe_dev : the dev score of the probe retrained at export (equals ``dev`` up to solver noise).
    probe_params, seed : the probe template and the seed it was trained with.
    model, model_source, weights_sha256 : the original model (as in the train store's manifest).
    train_store, train_plan_hash : the store the probe was trained on.
    compact_weights_sha256 : hash of ``model/``'s weight files (checked on load).
    identity_modules : top-level modules of the model to replace by the identity after loading (a
        final norm that the full model applies only after its *last* layer, e.g. GPT-2's ``ln_f``).
    max_length, window_overlap : the extraction's input limit and window overlap, so long
        sentences are windowed as they were for the probe's training rows.
    size_bytes : the compact folder's files but ``compact.json`` itself (the model, tokenizer and probe:
        a number that does not change with the paths this record holds); full_model_bytes : the
        original's weight files (None when they were not in a local folder).
    versions : package versions; created : ISO time (UTC).
    """

    format_version: int
    task: str
    level: str
    aggregation: str
    label_type: str
    classes: tuple[str, ...] | None
    metric: str
    selected_layer: int
    hidden: int
    n_layers_full: int
    n_neurons_full: int
    neurons: tuple[int, ...]
    delta_layer: float
    delta_neuron: float
    threshold: float | None
    dev: float
    test: float
    oracle_dev: float
    oracle_test: float
    probe_dev: float
    probe_params: dict[str, Any]
    seed: int
    model: str
    model_source: str
    weights_sha256: str
    train_store: str
    train_plan_hash: str
    compact_weights_sha256: str
    identity_modules: tuple[str, ...]
    max_length: int
    window_overlap: float
    size_bytes: int
    full_model_bytes: int | None
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def n_states(self) -> int:
        """Hidden states the compact model computes: the embeddings and ``selected_layer`` layers."""
        return self.selected_layer + 1

    def to_dict(self) -> dict[str, Any]:
        return {f.name: json_ready(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompactInfo:
        kw = check_fields(cls, d, INFO_FILE)
        for name in ("dev", "test", "oracle_dev", "oracle_test", "probe_dev"):
            kw[name] = nan_if_none(kw[name])
        kw["classes"] = None if kw["classes"] is None else tuple(str(c) for c in kw["classes"])
        kw["neurons"] = tuple(int(i) for i in kw["neurons"])
        kw["identity_modules"] = tuple(kw["identity_modules"])
        if kw["threshold"] is not None:
            kw["threshold"] = float(kw["threshold"])
        return cls(**kw)


def read_info(path: str | os.PathLike) -> CompactInfo:
    """``compact.json`` of the compact folder ``path``; a clear ``ValueError`` naming the file if it
    is missing, unreadable, or of another format version."""
    file = Path(path) / INFO_FILE
    if not file.is_file():
        raise ValueError(f"{file}: missing; {path} is not a compact model folder (see export_compact)")
    try:
        d = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: unreadable ({err})") from err
    version = d.get("format_version") if isinstance(d, dict) else None
    if version != FORMAT_VERSION:
        raise ValueError(f"{file}: format_version {version!r}, this code reads version {FORMAT_VERSION}")
    try:
        return CompactInfo.from_dict(d)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{file}: {err}") from err


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def write_info(folder: Path, info: CompactInfo) -> CompactInfo:
    """Write ``compact.json`` with ``size_bytes`` counting every other file of the folder."""
    info = replace(info, size_bytes=folder_bytes(folder) - _info_bytes(folder))
    # a plain write: the folder is still the export's temporary one, renamed into place whole
    (folder / INFO_FILE).write_text(json.dumps(info.to_dict(), indent=1) + "\n")
    return info


def _info_bytes(folder: Path) -> int:
    f = folder / INFO_FILE
    return f.stat().st_size if f.is_file() else 0
