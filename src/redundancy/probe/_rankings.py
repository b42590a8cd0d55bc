"""Neuron rankings computed from a task's train split, and the offline ablation of ranked columns.

:func:`neuron_rankings` computes the rankings of :data:`redundancy.select.RANKINGS` on train only:
``paper`` (the reference: the oracle probe's class-wise weight mass), the entry orders of a
group-lasso and of a lasso path (:func:`path_ranking`, the fast solver walking the penalty down),
and NeuroX's probe-free ``probeless`` ranking (class means). The probe stage selects among them on
dev (:func:`redundancy.probe.run_task_redundancy`, ``ranking="auto"``) and reports test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._progress import Progress
from ..select import entry_ranking, probeless_ranking, rank_neurons
from ._estimator import ElasticNetProbe
from ._evaluate import split_scores
from ._path import PathOutput, fit_path
from ._task import ProbeTask, select_columns

logger = logging.getLogger(__name__)

_MEAN_ROWS = 16384  # rows per chunk of the class means


@dataclass(frozen=True)
class PathSettings:
    """How :func:`path_ranking` walks the path (see :func:`redundancy.probe._path.fit_path`).

    The defaults were chosen on MiniLM EWT POS (train only; dev and test untouched): a large step
    (``lr = 0.1``, standardised scale) so that the probe settles at each penalty value before the next
    one (with the probes' small default step the path reads marginal correlations, and its top
    neurons are near-copies of one another); 30 values from ``lambda_max`` down to 1 % of it (by then
    nearly every neuron is in); 4 passes over at most ``max_rows`` train rows (the first ones),
    batches of 1,024.
    """

    lr: float = 0.1
    batch_size: int = 1024
    n_lambdas: int = 30
    epochs: float = 4.0
    min_ratio: float = 0.01
    max_rows: int | None = 60_000


def _codes(task: ProbeTask) -> tuple[np.ndarray, int, bool]:
    """Train labels as 0..K-1 codes (or values), the number of outputs, and whether it is regression."""
    y = task.train.y
    if task.label_type == "real":
        return np.asarray(y, dtype=np.float64), 1, True
    classes, codes = np.unique(y, return_inverse=True)
    return codes.astype(np.int64), int(classes.size), False


def path_ranking(
    task: ProbeTask,
    *,
    group: bool,
    columns: np.ndarray | None = None,
    l2: float = 1e-5,
    seed: int = 0,
    settings: PathSettings | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, PathOutput]:
    """The entry order of a group-lasso (``group``) or lasso path on train, over ``columns`` (flat
    neuron ids; default all): returns the ranked flat ids and the path.

    What it optimises: the penalised train loss ``CE + lambda * penalty(W)`` at each of the path's
    penalty values, warm-started from the previous one; the ranking is the order in which neurons
    join the solution (:func:`redundancy.select.entry_ranking`).
    """
    settings = settings or PathSettings()
    cols = np.arange(task.n_neurons) if columns is None else np.asarray(columns, dtype=np.int64)
    rows = (
        task.X_train.shape[0] if settings.max_rows is None else min(settings.max_rows, task.X_train.shape[0])
    )
    X = select_columns(task.X_train[:rows], cols)
    y, K, regression = _codes(task)
    what = "ranking: group-lasso path" if group else "ranking: l1 path"

    def report(step: int, total: int) -> None:
        if progress is not None:
            progress(what, step, total)

    out = fit_path(
        X,
        y[:rows],
        n_outputs=K,
        regression=regression,
        group=group,
        l2=l2,
        lr=settings.lr,
        batch_size=settings.batch_size,
        n_lambdas=settings.n_lambdas,
        epochs=settings.epochs,
        min_ratio=settings.min_ratio,
        seed=seed,
        progress=report,
    )
    return cols[entry_ranking(out.entry, out.strength)], out


def class_means(X: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n) mean activation of each class (float64 sums), streamed over row chunks (one
    ``index_add_`` per chunk: no one-hot matrix, which CCG's thousand-odd classes would make large);
    classes without rows get NaN rows."""
    import torch

    sums = torch.zeros((n_classes, X.shape[1]), dtype=torch.float64)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    for s in range(0, X.shape[0], _MEAN_ROWS):
        chunk = torch.from_numpy(np.asarray(X[s : s + _MEAN_ROWS], dtype=np.float64))
        sums.index_add_(0, torch.from_numpy(np.asarray(y[s : s + _MEAN_ROWS], dtype=np.int64)), chunk)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums.numpy() / counts[:, None]


def probeless_order(task: ProbeTask, columns: np.ndarray | None = None) -> np.ndarray:
    """NeuroX's probe-free ranking (:func:`redundancy.select.probeless_ranking`) on train's class
    means over ``columns`` (default all); ranked flat ids."""
    if task.label_type == "real":
        raise ValueError("the probeless ranking needs classes; this task has real-valued labels")
    cols = np.arange(task.n_neurons) if columns is None else np.asarray(columns, dtype=np.int64)
    y, K, _ = _codes(task)
    means = class_means(select_columns(task.X_train, cols), y, K)
    return cols[probeless_ranking(means)]


def applicable(methods: Sequence[str], task: ProbeTask) -> tuple[str, ...]:
    """``methods`` without those the task cannot have (``probeless`` on real-valued labels)."""
    out = tuple(m for m in methods if not (m == "probeless" and task.label_type == "real"))
    if len(out) < len(methods):
        logger.info("%s: the probeless ranking needs classes; left out", task.train.store.manifest.task)
    return out


def neuron_rankings(
    task: ProbeTask,
    methods: Sequence[str],
    ranker: ElasticNetProbe,
    *,
    columns: np.ndarray | None = None,
    search_stride: int = 1000,
    seed: int = 0,
    path: PathSettings | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each ranking of ``methods`` over ``columns`` (default all; ``ranker`` was trained on exactly
    those columns, in order, and gives ``paper``/``abs``), as flat ids; and the seconds each took."""
    cols = np.arange(task.n_neurons) if columns is None else np.asarray(columns, dtype=np.int64)
    orders: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for m in methods:
        t0 = time.perf_counter()
        if m in ("paper", "abs"):
            orders[m] = cols[rank_neurons(ranker.scaled_coef_, m, search_stride=search_stride)]
        elif m in ("group-lasso", "l1-path"):
            orders[m], _ = path_ranking(
                task,
                group=m == "group-lasso",
                columns=cols,
                l2=ranker.l2,
                seed=seed,
                settings=path,
                progress=progress,
            )
        elif m == "probeless":
            orders[m] = probeless_order(task, cols)
        else:
            raise ValueError(f"unknown ranking {m!r}")
        seconds[m] = time.perf_counter() - t0
    return orders, seconds


def ablated_scores(
    task: ProbeTask,
    probe: ElasticNetProbe,
    column_sets: Sequence[np.ndarray],
    split: str = "test",
    *,
    mode: str = "mean",
) -> list[float]:
    """The task metric of ``probe`` (trained on all neurons) on ``split`` with each set's columns
    ablated offline: replaced by their train mean (``mode="mean"``: they then add nothing to the
    logits) or set to zero (``"zero"``, the paper's). One product with all columns, then each set's
    contribution is taken out."""
    if mode not in ("mean", "zero"):
        raise ValueError(f"mode must be 'mean' or 'zero', got {mode!r}")
    X = task.X_test if split == "test" else task.X_dev
    if X is None:
        raise ValueError(f"no {split} split")
    W = probe.coef_.T.astype(np.float64)  # (n, K), raw scale
    Z = probe.decision_function(X)
    Z = Z.reshape(X.shape[0], -1)
    out = []
    for cols in column_sets:
        cols = np.sort(np.asarray(cols, dtype=np.int64))
        Xc = select_columns(X, cols).astype(np.float64)
        if mode == "mean":
            Xc = Xc - probe.mean_[cols]
        z = Z - Xc @ W[cols]
        pred = z[:, 0] if probe.classes_ is None else probe.classes_[z.argmax(axis=1)]  # ids, not indices
        out.append(float(split_scores(task, split, pred)[task.metric]))
    return out
