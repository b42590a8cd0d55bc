"""Bootstrap over sentences: resampling weights, percentile intervals, and their frozen record.

Tokens of one sentence are not independent (they share its context, and a probe's errors cluster in
hard sentences), so every interval here resamples *sentences*, never tokens: a replicate draws the
test sentences with replacement and every token of a drawn sentence comes with it. Scores whose
metric is a function of per-sentence sums (accuracy, F1 counts, confusion margins, correlation
moments) are resampled without recomputing anything per token: a replicate's sums are one product of
the ``(B, n_sentences)`` count matrix with the ``(n_sentences, k)`` per-sentence sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_BOOT = 200
"""Replicates of a resampled score (cheap: no retraining, one product per probe)."""

DEFAULT_LEVEL = 0.95


def _check_boot(n_boot: Any, level: Any, seed: Any) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise ValueError(f"n_boot must be an int >= 2, got {n_boot!r}")
    if not (isinstance(level, float | int) and 0 < level < 1):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def sentence_index(sentence_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense sentence numbers ``0 .. S-1`` of items (in order of first appearance sorted by id) and ``S``.

    >>> sentence_index(np.array([7, 7, 3, 9, 3]))
    (array([1, 1, 0, 2, 0]), 3)
    """
    uniq, dense = np.unique(np.asarray(sentence_ids), return_inverse=True)
    return dense.astype(np.int64), int(uniq.size)


def group_sums(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group sums of ``values`` (``(n,)`` or ``(n, k)``) -> ``(n_groups, k)`` float64.

    >>> group_sums(np.array([[1, 0], [1, 1], [0, 1]]), np.array([0, 0, 1]), 2).tolist()
    [[2.0, 1.0], [0.0, 1.0]]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    out = np.zeros((n_groups, v.shape[1]))
    np.add.at(out, np.asarray(groups), v)
    return out


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval.

    Attributes
    ----------
    estimate : the statistic on the data as observed (not the replicates' mean).
    low, high : the interval's ends (``level`` central coverage); NaN when undefined.
    level : nominal coverage, e.g. 0.95.
    n_boot : replicates drawn; ``seed`` : their seed; ``unit`` : what was resampled (``sentence``).
    method : ``percentile`` (replicates' quantiles) or ``normal`` (estimate ± z · replicates' sd, for
        few replicates).
    """

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int
    seed: int
    unit: str = "sentence"
    method: str = "percentile"

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Interval:
        keys = {"estimate", "low", "high", "level", "n_boot", "seed", "unit", "method"}
        if set(d) != keys:
            raise ValueError(f"an interval needs exactly the keys {sorted(keys)}, got {sorted(d)}")
        nan = float("nan")
        return cls(
            estimate=nan if d["estimate"] is None else float(d["estimate"]),
            low=nan if d["low"] is None else float(d["low"]),
            high=nan if d["high"] is None else float(d["high"]),
            level=float(d["level"]),
            n_boot=int(d["n_boot"]),
            seed=int(d["seed"]),
            unit=str(d["unit"]),
            method=str(d["method"]),
        )

    def scaled(self, factor: float) -> Interval:
        """The same interval with every value multiplied by ``factor`` (e.g. 100 for points)."""
        return Interval(
            self.estimate * factor,
            self.low * factor,
            self.high * factor,
            self.level,
            self.n_boot,
            self.seed,
            self.unit,
            self.method,
        )

    def format(self, digits: int = 2, factor: float = 1.0) -> str:
        """``95.01 [94.80, 95.20]`` (values times ``factor``).

        >>> Interval(0.9501, 0.948, 0.952, 0.95, 200, 0).format(2, 100)
        '95.01 [94.80, 95.20]'
        """
        v = self.scaled(factor)
        return f"{v.estimate:.{digits}f} [{v.low:.{digits}f}, {v.high:.{digits}f}]"


def percentile_interval(
    estimate: float, replicates: np.ndarray, level: float, n_boot: int, seed: int, method: str = "percentile"
) -> Interval:
    """The :class:`Interval` of ``replicates`` (NaN replicates, e.g. an undefined correlation, are
    left out; with fewer than half defined the interval is NaN)."""
    r = np.asarray(replicates, dtype=np.float64)
    ok = r[np.isfinite(r)]
    nan = float("nan")
    if ok.size < max(2, r.size // 2):
        return Interval(float(estimate), nan, nan, level, n_boot, seed, method=method)
    alpha = (1.0 - level) / 2.0
    if method == "normal":
        from scipy.stats import norm

        half = float(norm.ppf(1 - alpha)) * float(ok.std(ddof=1))
        return Interval(
            float(estimate),
            float(estimate) - half,
            float(estimate) + half,
            level,
            n_boot,
            seed,
            method=method,
        )
    lo, hi = np.quantile(ok, [alpha, 1.0 - alpha])
    return Interval(float(estimate), float(lo), float(hi), level, n_boot, seed, method=method)


@dataclass(frozen=True)
class SentenceBootstrap:
    """Resample sentences with replacement: ``n_boot`` replicates, seeded, at coverage ``level``.

    One instance draws the same replicates for every statistic over the same sentences (a *paired*
    bootstrap), so the interval of a difference or a ratio of two probes' scores comes from the same
    resampled test sets.

    Examples
    --------
    >>> b = SentenceBootstrap(n_boot=500, seed=0)
    >>> correct = np.r_[np.ones(900), np.zeros(100)]          # 1,000 tokens, 90 % right
    >>> sid = np.repeat(np.arange(100), 10)                   # in 100 sentences of 10 tokens
    >>> iv = b.interval(sid, np.c_[correct, np.ones(1000)], lambda s: s[:, 0] / s[:, 1])
    >>> round(iv.estimate, 3), iv.low < 0.9 < iv.high
    (0.9, True)
    """

    n_boot: int = DEFAULT_BOOT
    seed: int = 0
    level: float = DEFAULT_LEVEL

    def __post_init__(self) -> None:
        _check_boot(self.n_boot, self.level, self.seed)

    def counts(self, n_sentences: int) -> np.ndarray:
        """``(n_boot, n_sentences)`` float64: how often each sentence is drawn in each replicate
        (multinomial; a function of ``seed`` and ``n_sentences`` alone)."""
        if n_sentences < 1:
            raise ValueError("the bootstrap needs at least one sentence")
        rng = np.random.default_rng([int(self.seed), int(n_sentences)])
        draws = rng.integers(0, n_sentences, size=(self.n_boot, n_sentences))
        out = np.zeros((self.n_boot, n_sentences))
        np.add.at(out, (np.arange(self.n_boot)[:, None], draws), 1.0)
        return out

    def replicate_sums(self, sentence_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``(n_boot, k)``: the per-item ``values`` (``(n,)`` or ``(n, k)``) summed over each replicate's
        resampled sentences."""
        dense, n_sent = sentence_index(sentence_ids)
        return self.counts(n_sent) @ group_sums(values, dense, n_sent)

    def interval(
        self,
        sentence_ids: np.ndarray,
        values: np.ndarray,
        statistic: Callable[[np.ndarray], np.ndarray],
        method: str = "percentile",
    ) -> Interval:
        """The interval of ``statistic`` (rows of summed ``values`` -> one value per row), whose estimate
        is ``statistic`` of the plain sums."""
        v = np.asarray(values, dtype=np.float64)
        v2 = v[:, None] if v.ndim == 1 else v
        estimate = float(np.asarray(statistic(v2.sum(axis=0, keepdims=True)))[0])
        reps = np.asarray(statistic(self.replicate_sums(sentence_ids, v2)), dtype=np.float64)
        return percentile_interval(estimate, reps, self.level, self.n_boot, self.seed, method)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_boot": int(self.n_boot),
            "seed": int(self.seed),
            "level": float(self.level),
            "unit": "sentence",
        }


def poisson_weights(n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_groups)`` Poisson(1) weights: the streaming bootstrap (Hanley & MacGibbon 2006;
    Chamandy et al. 2012), where each sentence enters each replicate ``w`` times without the
    replicates ever holding the data; a function of the seed and ``n_groups`` alone."""
    rng = np.random.default_rng([int(seed), int(n_groups), 1])
    return rng.poisson(1.0, size=(n_boot, n_groups)).astype(np.float64)


def sentence_groups(sentence_ids: np.ndarray, n_groups: int, seed: int) -> np.ndarray:
    """Group ``0 .. n_groups-1`` of every item: the sentences dealt at random into ``n_groups`` groups
    of (nearly) equal sentence counts, every token of a sentence in its sentence's group.

    A function of the seed and the set of sentence ids alone.

    >>> g = sentence_groups(np.array([5, 5, 8, 9, 9, 9, 2]), 2, seed=0)
    >>> bool(g[0] == g[1] and g[3] == g[4] == g[5]), sorted(np.bincount(g).tolist())
    (True, [3, 4])
    """
    if isinstance(n_groups, bool) or not isinstance(n_groups, int | np.integer) or n_groups < 2:
        raise ValueError(f"n_groups must be an int >= 2, got {n_groups!r}")
    dense, n_sent = sentence_index(sentence_ids)
    if n_sent < n_groups:
        raise ValueError(f"{n_groups} groups need at least {n_groups} sentences, got {n_sent}")
    rng = np.random.default_rng([int(seed), int(n_sent), 2])
    return (rng.permutation(n_sent) % n_groups)[dense]


def jackknife_bounds(
    estimate: Any, leave_outs: Any, level: float = DEFAULT_LEVEL, bounds: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The delete-a-group jackknife interval of a statistic, elementwise over arrays.

    ``leave_outs[g]`` is the statistic recomputed without group ``g`` (``G`` groups of sentences drawn
    at random, :func:`sentence_groups`). The jackknife variance is ``(G - 1) / G · Σ_g (θ₋g - θ̄)²``
    and the interval ``θ̂ ± t(G - 1) · se`` (Student's t with ``G - 1`` degrees of freedom, so a few
    groups give a wider, not a wrong, interval). Clipped to ``bounds`` when given; NaN where any
    leave-out is undefined.

    >>> lo, hi = jackknife_bounds(0.5, [0.49, 0.51, 0.50, 0.52, 0.48])
    >>> bool(lo < 0.5 < hi)
    True
    """
    from scipy.stats import t as student_t

    r = np.asarray(leave_outs, dtype=np.float64)
    g = r.shape[0]
    if g < 2:
        raise ValueError(f"the jackknife needs at least 2 groups, got {g}")
    _check_boot(g, level, 0)
    est = np.asarray(estimate, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        var = (g - 1) / g * ((r - r.mean(axis=0)) ** 2).sum(axis=0)
    half = float(student_t.ppf(0.5 + level / 2.0, g - 1)) * np.sqrt(var)
    low, high = est - half, est + half
    if bounds is not None:
        low, high = np.clip(low, *bounds), np.clip(high, *bounds)
    return low, high
