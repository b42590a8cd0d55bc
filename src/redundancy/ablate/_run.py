"""The causal check: ablate a ranking's top neurons inside the model and score the probe that was
trained on the intact model, beside random neurons and beside the paper's offline column dropping.

Each ablated forward pass is an ordinary extraction (:func:`redundancy.extract.extract`) of the
evaluation sentences with :func:`ablation_hooks` active, into a temporary store; the oracle probe
(trained by the probe stage on the intact train split) is scored on it with the probe package's own
label mapping and metrics. The ablated neurons themselves are also set to their replacement in the
probe's input, so they read the same value whichever way the model reports its hidden states.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import Progress
from .._serial import check_fields, json_ready, nan_if_none
from ..data import TaskData
from ..extract import ExtractConfig, LoadedModel, extract, load_model
from ..probe import ElasticNetProbe, ablated_scores, load_probe_task
from ..store import package_versions
from ._hooks import ablation_hooks

logger = logging.getLogger(__name__)

MODES = ("mean", "zero")


@dataclass(frozen=True)
class AblationRow:
    """One ablated neuron set: ``kind`` ``top`` (a ranking's first k) or ``random``; the probe's
    score with the set ablated inside the model (``in_model``) and offline (``offline``: the
    columns replaced in the stored intact activations, the paper's way), and the drops from the
    intact score."""

    name: str
    kind: str
    ranking: str | None
    seed: int | None
    k: int
    in_model: float
    offline: float
    in_model_drop: float
    offline_drop: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: json_ready(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AblationRow:
        kw = check_fields(cls, d, "ablation row")
        for name in ("in_model", "offline", "in_model_drop", "offline_drop"):
            kw[name] = nan_if_none(kw[name])
        return cls(**kw)


@dataclass(frozen=True)
class AblationResult:
    """In-model ablation of one task (``ablate.json``).

    Attributes
    ----------
    task, model, metric, split : what was ablated, and where it was scored.
    mode : ``mean`` (each neuron replaced by its train mean) or ``zero``.
    n_sentences, n_items : the evaluation sentences (the first ones of the split) and their rows.
    n_neurons, share, k : all neurons, the share ablated, and k.
    intact : the probe's score on the intact model over the same sentences.
    rows : one :class:`AblationRow` per ablated set.
    seconds, versions, created : provenance.
    """

    task: str
    model: str
    metric: str
    split: str
    mode: str
    n_sentences: int
    n_items: int
    n_neurons: int
    share: float
    k: int
    intact: float
    rows: tuple[AblationRow, ...]
    seconds: float
    versions: dict[str, str]
    created: str

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: json_ready(getattr(self, f.name)) for f in fields(self) if f.name != "rows"}
        d["rows"] = [r.to_dict() for r in self.rows]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AblationResult:
        kw = check_fields(cls, d, "ablate.json")
        kw["rows"] = tuple(AblationRow.from_dict(r) for r in kw["rows"])
        kw["intact"] = nan_if_none(kw["intact"])
        return cls(**kw)

    def summary(self) -> dict[str, Any]:
        """Mean drops per ranking and for random sets (in-model and offline)."""
        out: dict[str, Any] = {"k": self.k, "intact": self.intact}
        groups: dict[str, list[AblationRow]] = {}
        for r in self.rows:
            groups.setdefault(r.ranking if r.kind == "top" else "random", []).append(r)
        for name, rows in groups.items():
            out[name] = {
                "in_model_drop": float(np.mean([r.in_model_drop for r in rows])),
                "offline_drop": float(np.mean([r.offline_drop for r in rows])),
                "n": len(rows),
            }
        return json_ready(out)


def neuron_sets(
    rankings: Mapping[str, Sequence[int]], n_neurons: int, k: int, n_random: int, seed: int
) -> list[tuple[str, str, str | None, int | None, np.ndarray]]:
    """``(name, kind, ranking, seed, neurons)``: each ranking's first ``k``, then ``n_random`` random
    sets of ``k`` (seeds ``seed + 2000 + r``)."""
    out = [(f"top[{m}]", "top", m, None, np.asarray(o[:k], dtype=np.int64)) for m, o in rankings.items()]
    for r in range(n_random):
        s = seed + 2000 + r
        perm = np.random.default_rng(s).permutation(n_neurons)[:k]
        out.append((f"random-s{s}", "random", None, s, np.sort(perm)))
    return out


def run_ablation(
    data: TaskData,
    model: str | LoadedModel,
    train_store: str | Path,
    dev_store: str | Path,
    probe: ElasticNetProbe,
    rankings: Mapping[str, Sequence[int]],
    workdir: str | Path,
    *,
    share: float = 0.05,
    n_random: int = 3,
    mode: str = "mean",
    seed: int = 0,
    config: ExtractConfig | None = None,
    progress: Progress | None = None,
) -> AblationResult:
    """Ablate each ranking's top ``share`` of the neurons (and ``n_random`` random sets of the same
    size) inside ``model`` on ``data`` (the evaluation sentences: a test split, or its first
    sentences), and score ``probe`` (trained on all neurons of the intact model, on the train
    store) on each; the offline drop of the same columns beside it.

    ``workdir`` holds the temporary stores (removed at the end). ``config`` is the extraction's
    (its settings must match the train store's, as for any store a probe reads).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not 0 < share < 1:
        raise ValueError(f"share must lie in (0, 1), got {share}")
    t0 = time.perf_counter()
    lm = model if isinstance(model, LoadedModel) else load_model(model)
    n = lm.n_layers * lm.hidden
    if probe.coef_.shape[1] != n:
        raise ValueError(f"the probe reads {probe.coef_.shape[1]} neurons, the model has {n}")
    k = max(1, int(share * n))
    values = probe.mean_ if mode == "mean" else np.zeros(n)
    work = Path(workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = config or ExtractConfig()
    try:
        intact_store = work / "intact"
        extract(data, lm, intact_store, config, progress=progress)
        intact_task = load_probe_task(train_store, dev_store, intact_store)
        intact = ablated_scores(intact_task, probe, [np.empty(0, dtype=np.int64)], "test")[0]
        rows = []
        for name, kind, ranking, s, neurons in neuron_sets(rankings, n, k, n_random, seed):
            store = work / name
            with ablation_hooks(lm.model, lm.n_layers, lm.hidden, neurons, values[neurons]):
                extract(data, lm, store, config, progress=progress)
            task = load_probe_task(train_store, dev_store, store)
            in_model = ablated_scores(task, probe, [neurons], "test", mode=mode)[0]
            offline = ablated_scores(intact_task, probe, [neurons], "test", mode=mode)[0]
            rows.append(
                AblationRow(name, kind, ranking, s, k, in_model, offline, intact - in_model, intact - offline)
            )
            logger.info(
                "%s: %s in the model %.4f, offline %.4f (intact %.4f)",
                data.spec.name,
                name,
                in_model,
                offline,
                intact,
            )
            shutil.rmtree(store, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return AblationResult(
        task=data.spec.name,
        model=lm.name,
        metric=intact_task.metric,
        split=data.split,
        mode=mode,
        n_sentences=len(data.items),
        n_items=int(data.n_items),
        n_neurons=n,
        share=float(share),
        k=k,
        intact=float(intact),
        rows=tuple(rows),
        seconds=round(time.perf_counter() - t0, 3),
        versions=dict(package_versions(("numpy", "torch", "transformers", "tokenizers"))),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
