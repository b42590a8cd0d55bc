"""Scores from scikit-learn, seqeval and scipy (no hand-written metric).

Class labels arrive as train class ids; ids ``>= n_classes`` are labels never seen in train
(see ``_data.LabelMap``): no prediction can match them, so they count as errors everywhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "chunk_f1", "f1", "mcc", "pearson", "spearman")
REAL_METRICS = ("pearson", "spearman")


def default_metric(task: str, label_type: str) -> str:
    """The task's metric from the data registry; accuracy / pearson for tasks it does not know."""
    try:
        from ..data import get_task

        return get_task(task).metric
    except (KeyError, ValueError, ImportError):
        return "accuracy" if label_type == "class" else "pearson"


def _sentences(labels: Sequence[str], sentence_ids: np.ndarray, positions: np.ndarray) -> list[list[str]]:
    """Tags grouped by sentence, in word order (sentences in id order)."""
    order = np.lexsort((positions, sentence_ids))
    sid = np.asarray(sentence_ids)[order]
    lab = [labels[i] for i in order]
    cuts = np.flatnonzero(np.diff(sid)) + 1
    bounds = [0, *cuts.tolist(), len(lab)]
    return [lab[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def score(
    metric: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    sentence_ids: np.ndarray | None = None,
    positions: np.ndarray | None = None,
) -> float:
    """One metric, in [0, 1] (MCC and the correlations in [-1, 1]).

    Parameters
    ----------
    metric : one of ``accuracy``, ``macro_f1`` (mean F1 over the classes present in ``y_true`` or
        ``y_pred``), ``chunk_f1`` (seqeval, conlleval-style, over sentences), ``f1`` (binary; the
        positive class is ``"1"`` if it is a class name, else the last class), ``mcc``,
        ``pearson``, ``spearman``.
    y_true, y_pred : class ids or real values.
    class_names : names of the ids (train classes, then unseen names); needed by ``chunk_f1`` and ``f1``.
    sentence_ids, positions : needed by ``chunk_f1`` to rebuild the sentences.
    """
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D of one length, got {y_true.shape} and {y_pred.shape}"
        )
    if y_true.size == 0:
        return float("nan")
    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    if metric == "macro_f1":
        return float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    if metric == "mcc":
        return float(matthews_corrcoef(y_true, y_pred))
    if metric == "f1":
        if class_names is None:
            raise ValueError("metric 'f1' needs class_names to find the positive class")
        pos = class_names.index("1") if "1" in class_names else len(class_names) - 1
        return float(f1_score(y_true == pos, y_pred == pos, zero_division=0))
    if metric == "chunk_f1":
        if class_names is None or sentence_ids is None or positions is None:
            raise ValueError("metric 'chunk_f1' needs class_names, sentence_ids and positions")
        from seqeval.metrics import f1_score as chunk_f1

        names = list(class_names)
        gold = _sentences([names[i] for i in y_true], sentence_ids, positions)
        pred = _sentences([names[i] for i in y_pred], sentence_ids, positions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns about tags that are not IOB (e.g. "O" alone)
            return float(chunk_f1(gold, pred))
    if metric in REAL_METRICS:
        from scipy.stats import pearsonr, spearmanr

        yt = y_true.astype(np.float64)
        yp = y_pred.astype(np.float64)
        if np.ptp(yt) == 0 or np.ptp(yp) == 0:
            return float("nan")  # a constant input has no correlation
        r = pearsonr(yt, yp)[0] if metric == "pearson" else spearmanr(yt, yp)[0]
        return float(r)
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")


def metrics_for(metric: str, label_type: str) -> tuple[str, ...]:
    """The metrics reported beside the task's own: accuracy and macro-F1 for classes, both
    correlations for real labels."""
    if label_type == "class":
        base = ("accuracy", "macro_f1")
        return base if metric in base else (metric, *base)
    return ("pearson", "spearman") if metric in ("pearson", "spearman") else (metric, "pearson", "spearman")


def score_all(
    metric: str,
    label_type: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    **kwargs,
) -> dict[str, float]:
    """The task metric and the companions of :func:`metrics_for`, as ``{name: value}``."""
    return {m: score(m, y_true, y_pred, **kwargs) for m in metrics_for(metric, label_type)}
