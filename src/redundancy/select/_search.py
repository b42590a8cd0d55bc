"""Selection rules on dev scores: the minimal top-k search and the LayerSelector."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator

logger = logging.getLogger(__name__)


def tolerance_target(reference: float, delta: float) -> float:
    """The paper's pass mark: ``reference * (1 - delta / 100)``; a score must be strictly above it.

    ``delta`` is a relative tolerance in percent (the paper's 1, 2, 3). For metrics that can be
    negative (MCC, Pearson) the rule is applied as written, which the paper does too.
    """
    if not np.isfinite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite percentage >= 0, got {delta}")
    return float(reference) * (1.0 - float(delta) / 100.0)


@dataclass(frozen=True)
class SearchOutcome:
    """What :func:`search_minimal_size` found.

    Attributes
    ----------
    size : the first size whose score passed, or None if none did.
    scores : size -> score for every size evaluated (a prefix of the grid, in chunks).
    target : the pass mark (scores must be strictly above it).
    """

    size: int | None
    scores: dict[int, float]
    target: float


def chunk_sizes(sizes: Sequence[int], chunk: int = 1, budget: int | None = None) -> list[list[int]]:
    """Consecutive groups of ``sizes``: at most ``chunk`` sizes and, if ``budget`` is given, at most
    ``budget`` neurons summed over the group (a group always holds at least one size).

    >>> chunk_sizes([2, 5, 8, 400, 900], chunk=3, budget=1000)
    [[2, 5, 8], [400], [900]]
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    groups: list[list[int]] = []
    for k in (int(s) for s in sizes):
        g = groups[-1] if groups else None
        if g is not None and len(g) < chunk and (budget is None or sum(g) + k <= budget):
            g.append(k)
        else:
            groups.append([k])
    return groups


def search_minimal_size(
    sizes: Sequence[int],
    evaluate: Callable[[list[int]], Sequence[float]],
    target: float,
    *,
    chunk: int = 1,
    budget: int | None = None,
) -> SearchOutcome:
    """The smallest size in ``sizes`` (in the given order) whose score is strictly above ``target``.

    This is the paper's linear scan (retrain on the top k for each k of the grid and stop at the
    first that passes). ``evaluate`` receives consecutive groups of sizes (:func:`chunk_sizes`),
    so a caller that can train several sizes together (nested top-k sets share their data pass)
    gets them in one call; every size before the answer is evaluated, so the answer is the same
    as with ``chunk=1``. Sizes after the first pass inside the last group are evaluated too.
    """
    sizes = [int(k) for k in sizes]
    scores: dict[int, float] = {}
    for part in chunk_sizes(sizes, chunk, budget):
        got = list(evaluate(part))
        if len(got) != len(part):
            raise ValueError(f"evaluate returned {len(got)} scores for {len(part)} sizes")
        for k, s in zip(part, got, strict=True):
            scores[k] = float(s)
        for k in part:
            if scores[k] > target:
                logger.info("minimal size %d: score %.4f > target %.4f", k, scores[k], target)
                return SearchOutcome(k, scores, float(target))
    return SearchOutcome(None, scores, float(target))


class LayerSelector(BaseEstimator):
    """The pipeline's LayerSelector: the lowest layer ``l`` whose incremental probe (layers 0..l)
    scores strictly above ``oracle * (1 - delta / 100)`` on dev; the last layer if none does.

    A scikit-learn estimator (``get_params`` / ``set_params`` / ``clone``); ``__init__`` only stores.

    Parameters
    ----------
    delta : float
        Relative tolerance in percent (the paper: 3, 2 or 1).

    Attributes
    ----------
    selected_layer_ : int
    target_ : float
    passed_ : bool  (False when no layer passed and the last one was taken)

    Examples
    --------
    >>> LayerSelector(delta=3.0).fit([0.80, 0.93, 0.96, 0.97], oracle_score=0.97).selected_layer_
    2
    """

    def __init__(self, delta: float = 3.0):
        self.delta = delta

    def fit(self, incremental_scores: Sequence[float], oracle_score: float) -> LayerSelector:
        """Select the layer from the incremental dev scores (layer 0 first) and the oracle's."""
        scores = np.asarray(incremental_scores, dtype=np.float64)
        if scores.ndim != 1 or scores.size == 0:
            raise ValueError("incremental_scores must be a non-empty 1-D sequence (layer 0 first)")
        self.target_ = tolerance_target(oracle_score, self.delta)
        passing = np.flatnonzero(scores > self.target_)
        self.passed_ = bool(passing.size)
        self.selected_layer_ = int(passing[0]) if passing.size else int(scores.size - 1)
        return self
