"""Scoring fitted probes on a task's dev/test splits (the metrics of :mod:`._metrics`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._estimator import ElasticNetProbe
from ._metrics import score_all
from ._results import ProbeResult
from ._task import ProbeTask, select_columns


def split_scores(task: ProbeTask, split: str, pred: np.ndarray) -> dict[str, float]:
    """Every metric of the task for predicted train class ids (or values) ``pred`` on ``split``."""
    sp = task.dev if split == "dev" else task.test
    kwargs: dict[str, Any] = {}
    if task.label_map is not None:
        kwargs = {
            "class_names": list(task.label_map.classes) + list(sp.unseen),
            "sentence_ids": sp.sentence_ids,
            "positions": sp.positions,
        }
    return score_all(task.metric, task.label_type, sp.y, pred, **kwargs)


def baseline_score(task: ProbeTask, split: str = "dev") -> float:
    """Score of a constant prediction on ``split``: train's most frequent class (NaN for regression,
    whose correlations are undefined for a constant). A probe that does not beat it has learned
    nothing from its neurons (e.g. a constant [CLS] embedding layer)."""
    sp = task.dev if split == "dev" else task.test
    if sp is None:
        raise ValueError(f"no {split} split")
    if task.label_map is None:
        return float("nan")
    majority = int(np.bincount(task.train.y[task.train.y >= 0]).argmax())
    return float(split_scores(task, split, np.full(sp.y.shape, majority, dtype=np.int64))[task.metric])


def evaluate_probe(
    task: ProbeTask, probe: ElasticNetProbe, neurons: np.ndarray, split: str
) -> dict[str, float]:
    """Scores of ``probe`` (trained on ``neurons``) on ``split`` (``dev`` or ``test``)."""
    sp, X = (task.dev, task.X_dev) if split == "dev" else (task.test, task.X_test)
    if sp is None or X is None:
        raise ValueError(f"no {split} split")
    return split_scores(task, split, probe.predict_ids(select_columns(X, neurons)))


def probe_result(
    task: ProbeTask,
    probe: ElasticNetProbe,
    neurons: np.ndarray,
    name: str,
    layers: Sequence[int] | None = None,
    *,
    X_dev: np.ndarray | None = None,
    X_test: np.ndarray | None = None,
) -> ProbeResult:
    """Score a fitted probe; ``X_dev``/``X_test`` may hold its columns already (else they are taken)."""
    X_dev = select_columns(task.X_dev, neurons) if X_dev is None else X_dev
    if task.test is not None and X_test is None:
        X_test = select_columns(task.X_test, neurons)
    return ProbeResult(
        name=name,
        n_neurons=int(neurons.size),
        layers=None if layers is None else tuple(int(i) for i in layers),
        neurons=None if layers is not None else tuple(int(i) for i in neurons),
        metric=task.metric,
        dev=split_scores(task, "dev", probe.predict_ids(X_dev)),
        test=None if task.test is None else split_scores(task, "test", probe.predict_ids(X_test)),
        seed=int(probe.random_state),
        settings=dict(probe.solver_settings_),
        n_steps=int(probe.n_iter_),
        n_epochs=float(probe.n_epochs_),
        fit_seconds=float(probe.fit_seconds_),
    )
