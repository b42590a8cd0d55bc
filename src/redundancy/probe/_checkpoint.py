"""Checkpoints of probe families: a killed probe stage resumes with the families it finished.

The probe stage of a 9,984-neuron model trains for many minutes, one *family* of probes (one pass
over the data with the fast solver) after another: the layer probes, the rankings' top-k curves,
the controls, the minimal-set search, the selectivity's control probes, the sweep. With a
:class:`FamilyCheckpoint` on the task (``dataclasses.replace(task, checkpoint=...)``) every finished
family is written to one folder of the checkpoint (its probes as safetensors, no pickle, and an
index with their SHA-256), and a family asked for again with the same inputs is read back instead
of trained. The key of a family is the SHA-256 of everything the fit reads: the probe's parameters,
the feature sets, the column index, the labels and weights, the data's shape, a sample of its
rows, and the checkpoint's ``scope`` (the stores' plan hashes), so a checkpoint can never answer
for other data. A family folder that fails its hashes is logged, removed and trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._serial import replace_dir, write_json_atomic
from ..store import sha256_file
from ._estimator import ElasticNetProbe
from ._io import load_probe, save_probe

logger = logging.getLogger(__name__)

_INDEX = "family.json"
_SAMPLE_ROWS = 64


class FamilyCheckpoint:
    """Finished probe families under ``folder`` (one sub-folder per family key).

    Parameters
    ----------
    folder : where the families go (created on first save).
    scope : what the data are (e.g. the stores' plan hashes): part of every key.
    """

    def __init__(self, folder: str | os.PathLike, scope: str):
        self.folder = Path(folder)
        self.scope = str(scope)
        self.hits = 0
        self.saved = 0

    def __repr__(self) -> str:
        return f"FamilyCheckpoint({str(self.folder)!r}, scope={self.scope[:12]!r})"

    def key(
        self,
        probe: ElasticNetProbe,
        X: np.ndarray,
        y: np.ndarray,
        feature_ranges: Sequence[Sequence[tuple[int, int]]],
        X_dev: np.ndarray | None,
        y_dev: np.ndarray | None,
        columns: np.ndarray | None,
        sample_weight: np.ndarray | None,
    ) -> str:
        """The SHA-256 naming one family's fit (see the module docstring)."""
        h = hashlib.sha256()
        head = {
            "scope": self.scope,
            "params": probe.get_params(),
            "ranges": [[[int(a), int(b)] for a, b in r] for r in feature_ranges],
            "shape": list(np.shape(X)),
            "dev_shape": None if X_dev is None else list(np.shape(X_dev)),
        }
        h.update(json.dumps(head, sort_keys=True, default=str).encode())
        for a in (y, y_dev, columns, sample_weight):
            h.update(b"|" if a is None else np.ascontiguousarray(a).tobytes())
        for M in (X, X_dev):
            if M is not None and len(M):
                rows = np.unique(np.linspace(0, len(M) - 1, min(_SAMPLE_ROWS, len(M))).astype(np.int64))
                h.update(np.ascontiguousarray(np.asarray(M)[rows]).tobytes())
        return h.hexdigest()

    def load(self, key: str) -> list[ElasticNetProbe] | None:
        """The family saved under ``key``, or None (not saved, or damaged: then removed)."""
        d = self.folder / key
        if not d.is_dir():
            return None
        try:
            index = json.loads((d / _INDEX).read_text())
            files = [d / name for name in index["files"]]
            for f, want in zip(files, index["sha256"], strict=True):
                if sha256_file(f) != want:
                    raise ValueError(f"{f}: its SHA-256 differs from the one written")
            probes = [load_probe(f) for f in files]
            for p in probes:  # what a fit sets beside the saved arrays (load_probe leaves them out)
                p.dev_monitor_, p.history_ = None, []
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("probe checkpoint %s is damaged (%s); training that family again", d, err)
            shutil.rmtree(d, ignore_errors=True)
            return None
        self.hits += 1
        return probes

    def save(self, key: str, probes: Sequence[ElasticNetProbe]) -> None:
        """Write a finished family (a temporary folder renamed into place whole)."""
        tmp = self.folder / f".{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        names = [f"probe-{i}.safetensors" for i in range(len(probes))]
        for p, name in zip(probes, names, strict=True):
            save_probe(p, tmp / name)
        sums = [sha256_file(tmp / name) for name in names]
        write_json_atomic(tmp / _INDEX, {"files": names, "sha256": sums})
        replace_dir(tmp, self.folder / key)
        self.saved += 1

    def fit(
        self,
        train: Callable[[], list[ElasticNetProbe]],
        probe: ElasticNetProbe,
        X: np.ndarray,
        y: np.ndarray,
        feature_ranges: Sequence[Sequence[tuple[int, int]]],
        X_dev: np.ndarray | None,
        y_dev: np.ndarray | None,
        columns: np.ndarray | None,
        sample_weight: np.ndarray | None,
        what: str = "probes",
    ) -> list[ElasticNetProbe]:
        """The family of these inputs: read back when saved whole, else ``train()``-ed and saved (the
        one read-or-train step of every family fitter: local, or on an engine)."""
        key = self.key(probe, X, y, feature_ranges, X_dev, y_dev, columns, sample_weight)
        done = self.load(key)
        if done is not None and len(done) == len(feature_ranges):
            logger.info("%s: %d probes read from the checkpoint %s", what, len(done), self.folder)
            return done
        fitted = train()
        self.save(key, fitted)
        return fitted

    def clear(self) -> None:
        """Remove every saved family (once the stage's own results are written)."""
        shutil.rmtree(self.folder, ignore_errors=True)
