"""Scores from scikit-learn, seqeval and scipy (no hand-written metric).

Class labels arrive as train class ids; ids ``>= n_classes`` are labels never seen in train
(see ``_data.LabelMap``): no prediction can match them, so they count as errors everywhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

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


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)


def _per_sentence(
    sid: np.ndarray, n_sent: int, cols: list[tuple[np.ndarray, np.ndarray]], width: int
) -> np.ndarray:
    """``(n_sent, width)`` sums: for each ``(column index per item, value per item)`` pair, add the
    values into the items' sentences at those columns."""
    out = np.zeros((n_sent, width))
    for col, val in cols:
        np.add.at(out, (sid, col), val)
    return out


def sentence_sums(
    metric: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sentence_ids: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    positions: np.ndarray | None = None,
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Per-sentence sufficient sums of ``metric`` and the function of summed rows that gives it.

    Returns ``(sums, statistic)``: ``sums`` is ``(n_sentences, k)`` (sentences in id order) and
    ``statistic(S)`` maps an ``(r, k)`` array of sums over sentences to ``r`` scores, so that
    ``statistic(sums.sum(0, keepdims=True))`` is :func:`score` of the data (tested) and a bootstrap
    replicate is ``statistic(counts @ sums)``. The sums: accuracy (right, items); ``f1`` (tp, fp, fn
    of the positive class); ``macro_f1`` (tp, fp, fn per class, classes present in either side
    averaged); ``chunk_f1`` (correct, predicted and gold chunks, seqeval's conlleval-style
    entities); ``mcc`` (right, items, gold and predicted counts per class: the multiclass formula
    that scikit-learn uses); ``pearson`` (the moments); ``spearman`` (the moments of the whole
    sample's ranks: a replicate keeps the full sample's ranks instead of re-ranking its draws,
    which differs only by the ties the duplicates add).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    sids, sid = np.unique(np.asarray(sentence_ids), return_inverse=True)
    n_sent, n = sids.size, y_true.size
    ones = np.ones(n)
    if metric == "accuracy":
        sums = _per_sentence(
            sid, n_sent, [(np.zeros(n, int), (y_true == y_pred).astype(float)), (ones.astype(int), ones)], 2
        )
        return sums, lambda s: _safe_div(s[:, 0], s[:, 1])
    if metric == "f1":
        if class_names is None:
            raise ValueError("metric 'f1' needs class_names to find the positive class")
        pos = class_names.index("1") if "1" in class_names else len(class_names) - 1
        t, p = y_true == pos, y_pred == pos
        cols = [
            (np.zeros(n, int), (t & p).astype(float)),
            (ones.astype(int), (~t & p).astype(float)),
            (np.full(n, 2), (t & ~p).astype(float)),
        ]
        sums = _per_sentence(sid, n_sent, cols, 3)
        return sums, lambda s: _safe_div(2 * s[:, 0], 2 * s[:, 0] + s[:, 1] + s[:, 2])
    if metric in ("macro_f1", "mcc"):
        c = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
        right = (y_true == y_pred).astype(float)
        if metric == "macro_f1":  # columns: tp per class, then fp, then fn
            cols = [(y_true, right), (c + y_pred, 1 - right), (2 * c + y_true, 1 - right)]
            sums = _per_sentence(sid, n_sent, cols, 3 * c)

            def macro(s: np.ndarray) -> np.ndarray:
                tp, fp, fn = s[:, :c], s[:, c : 2 * c], s[:, 2 * c :]
                present = (tp + fp + fn) > 0
                f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
                return _safe_div((f1 * present).sum(axis=1), present.sum(axis=1).astype(float))

            return sums, macro
        cols = [
            (np.zeros(n, int), right),
            (ones.astype(int), ones),
            (2 + y_true, ones),
            (2 + c + y_pred, ones),
        ]
        sums = _per_sentence(sid, n_sent, cols, 2 + 2 * c)

        def mcc(s: np.ndarray) -> np.ndarray:
            right_, total = s[:, 0], s[:, 1]
            t, p = s[:, 2 : 2 + c], s[:, 2 + c :]
            cov = right_ * total - (t * p).sum(axis=1)
            denom = (total**2 - (p * p).sum(axis=1)) * (total**2 - (t * t).sum(axis=1))
            return _safe_div(cov, np.sqrt(np.maximum(denom, 0.0)))

        return sums, mcc
    if metric == "chunk_f1":
        if class_names is None or positions is None:
            raise ValueError("metric 'chunk_f1' needs class_names and positions")
        from seqeval.metrics.sequence_labeling import get_entities

        names = list(class_names)
        gold = _sentences([names[i] for i in y_true], sentence_ids, positions)
        pred = _sentences([names[i] for i in y_pred], sentence_ids, positions)
        sums = np.zeros((n_sent, 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
                eg, ep = set(get_entities(g)), set(get_entities(p))
                sums[i] = (len(eg & ep), len(ep), len(eg))
        return sums, lambda s: _safe_div(2 * s[:, 0], s[:, 1] + s[:, 2])
    if metric in REAL_METRICS:
        from scipy.stats import rankdata

        yt = y_true.astype(np.float64)
        yp = y_pred.astype(np.float64)
        if metric == "spearman":
            yt, yp = rankdata(yt), rankdata(yp)
        vals = [ones, yt, yp, yt * yt, yp * yp, yt * yp]
        sums = _per_sentence(sid, n_sent, [(np.full(n, j), v) for j, v in enumerate(vals)], 6)

        def corr(s: np.ndarray) -> np.ndarray:
            m, sx, sy, sxx, syy, sxy = s.T
            cov = m * sxy - sx * sy
            var = np.maximum(m * sxx - sx * sx, 0.0) * np.maximum(m * syy - sy * sy, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)

        return sums, corr
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
