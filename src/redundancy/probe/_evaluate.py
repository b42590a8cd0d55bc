"""Scoring fitted probes on a task's dev/test splits (the metrics of :mod:`._metrics`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..rigour import Interval, SentenceBootstrap, percentile_interval
from ._estimator import ElasticNetProbe
from ._metrics import score_all, sentence_sums
from ._results import ProbeResult
from ._task import ProbeTask, select_columns


def split_scores(task: ProbeTask, split: str, pred: np.ndarray) -> dict[str, float]:
    """Every metric of the task for predicted train class ids (or values) ``pred`` on ``split``.

    ``pred`` holds class *ids* of the task's label map (``probe.predict``), not indices into a
    probe's ``classes_``: the two differ whenever some class never occurs in the probe's training
    labels (a control task drawn over many classes, a train cap)."""
    sp = task.dev if split == "dev" else task.test
    kwargs: dict[str, Any] = {}
    if task.label_map is not None:
        kwargs = {
            "class_names": list(task.label_map.classes) + list(sp.unseen),
            "sentence_ids": sp.sentence_ids,
            "positions": sp.positions,
        }
    return score_all(task.metric, task.label_type, sp.y, pred, **kwargs)


def split_replicates(
    task: ProbeTask, split: str, pred: np.ndarray, bootstrap: SentenceBootstrap | None = None
) -> tuple[float, np.ndarray]:
    """The task metric of predictions ``pred`` on ``split`` and its ``(n_boot,)`` bootstrap replicates
    over resampled sentences of that split (``bootstrap``: the task's own by default). Replicates of
    different probes on one task come from the same resampled sentences (paired)."""
    b = bootstrap if bootstrap is not None else task.bootstrap
    if b is None:
        raise ValueError("no bootstrap: give one, or set ProbeTask.bootstrap")
    sp = task.dev if split == "dev" else task.test
    if sp is None:
        raise ValueError(f"no {split} split")
    kwargs: dict[str, Any] = {}
    if task.label_map is not None:
        kwargs = {"class_names": list(task.label_map.classes) + list(sp.unseen), "positions": sp.positions}
    sums, statistic = sentence_sums(task.metric, sp.y, pred, sp.sentence_ids, **kwargs)
    estimate = float(np.asarray(statistic(sums.sum(axis=0, keepdims=True)))[0])
    return estimate, np.asarray(statistic(b.counts(sums.shape[0]) @ sums), dtype=np.float64)


def split_interval(
    task: ProbeTask, split: str, pred: np.ndarray, bootstrap: SentenceBootstrap | None = None
) -> Interval:
    """The :class:`redundancy.rigour.Interval` of :func:`split_replicates`."""
    b = bootstrap if bootstrap is not None else task.bootstrap
    estimate, reps = split_replicates(task, split, pred, b)
    assert b is not None
    return percentile_interval(estimate, reps, b.level, b.n_boot, b.seed)


def ratio_interval(
    num: tuple[float, np.ndarray], den: tuple[float, np.ndarray], bootstrap: SentenceBootstrap
) -> Interval:
    """The interval of ``num / den`` from paired replicates (e.g. a probe's share of the oracle)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        est = num[0] / den[0] if den[0] else float("nan")
        reps = np.where(den[1] != 0, num[1] / np.where(den[1] != 0, den[1], 1.0), np.nan)
    return percentile_interval(est, reps, bootstrap.level, bootstrap.n_boot, bootstrap.seed)


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
    return split_scores(task, split, probe.predict(select_columns(X, neurons)))


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
    test_pred = None if task.test is None else probe.predict(X_test)
    interval, reps = None, None
    b = task.bootstrap
    if b is not None and test_pred is not None:
        estimate, reps = split_replicates(task, "test", test_pred)
        interval = percentile_interval(estimate, reps, b.level, b.n_boot, b.seed)
    return ProbeResult(
        name=name,
        n_neurons=int(neurons.size),
        layers=None if layers is None else tuple(int(i) for i in layers),
        neurons=None if layers is not None else tuple(int(i) for i in neurons),
        metric=task.metric,
        dev=split_scores(task, "dev", probe.predict(X_dev)),
        test=None if test_pred is None else split_scores(task, "test", test_pred),
        seed=int(probe.random_state),
        settings=dict(probe.solver_settings_),
        n_steps=int(probe.n_iter_),
        n_epochs=float(probe.n_epochs_),
        fit_seconds=float(probe.fit_seconds_),
        test_interval=interval,
        test_replicates=reps,
    )
