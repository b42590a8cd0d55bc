"""Correlation clustering of neurons (distance ``1 - |r|``, average linkage) and the threshold sweep."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ._result import SweepPoint

logger = logging.getLogger(__name__)

REPRESENTATIVES = ("random", "central")
CUT_TOLERANCE = 1e-12
"""Merge heights within this of a threshold count as at or below it (``1 - |r|`` of exact copies may
come out as 1e-16 instead of 0)."""

_BLOCK = 256  # rows per block when reading the correlation matrix


def default_thresholds(step: float = 0.05) -> tuple[float, ...]:
    """``0.0, step, 2 step, ..., 1.0`` (rounded to 10 decimals; 1.0 always included).

    Examples
    --------
    >>> default_thresholds(0.25)
    (0.0, 0.25, 0.5, 0.75, 1.0)
    """
    if not (isinstance(step, numbers.Real) and 0 < step <= 1):
        raise ValueError(f"step must lie in (0, 1], got {step!r}")
    k = int(np.floor(1.0 / step + 1e-9))
    values = {round(i * float(step), 10) for i in range(k + 1)} | {1.0}
    return tuple(sorted(values))


def _check_thresholds(thresholds: Iterable[float]) -> tuple[float, ...]:
    ts = tuple(float(t) for t in thresholds)
    if not ts:
        raise ValueError("thresholds must not be empty")
    if any(not 0 <= t <= 1 for t in ts):  # NaN fails too
        raise ValueError(f"thresholds must be distances 1 - |r| in [0, 1], got {list(ts)}")
    return tuple(sorted(set(ts)))


def _check_corr(corr: Any) -> np.ndarray:
    c = np.asarray(corr)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"corr must be a square (N, N) matrix, got shape {c.shape}")
    if c.shape[0] < 1:
        raise ValueError("corr must hold at least one neuron")
    if c.dtype.kind != "f":
        c = c.astype(np.float64)
    return c


def correlation_distance(corr: Any) -> np.ndarray:
    """Condensed distance vector ``1 - |r|`` (the upper triangle, as ``scipy.spatial.distance.squareform``).

    Read block by block: no second ``N x N`` array is made. Checks that ``corr`` is finite and symmetric
    (to 1e-6); values are clipped to ``[0, 1]``.
    """
    c = _check_corr(corr)
    n = c.shape[0]
    out = np.empty(n * (n - 1) // 2, dtype=np.float64)
    pos = 0
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        upper = np.asarray(c[start:stop, start:], dtype=np.float64)
        lower = np.asarray(c[start:, start:stop], dtype=np.float64).T
        if not (np.isfinite(upper).all() and np.isfinite(lower).all()):
            raise ValueError("corr holds NaN or infinite values")
        if np.max(np.abs(upper - lower), initial=0.0) > 1e-6:
            raise ValueError("corr must be symmetric")
        for i in range(stop - start):
            row = upper[i, i + 1 :]
            out[pos : pos + row.size] = row
            pos += row.size
    np.abs(out, out=out)
    np.subtract(1.0, out, out=out)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def correlation_linkage(corr: Any) -> np.ndarray:
    """Average-linkage tree of the neurons under the distance ``1 - |r|`` (``fastcluster``).

    Returns
    -------
    ndarray of shape (N - 1, 4)
        SciPy linkage matrix (usable with ``scipy.cluster.hierarchy.fcluster``, ``dendrogram``...).
    """
    dist = correlation_distance(corr)
    if dist.size == 0:
        return np.zeros((0, 4))
    return _average_linkage(dist)


def _average_linkage(dist: np.ndarray) -> np.ndarray:
    """fastcluster's average linkage, working in place on ``dist`` (which it overwrites).

    ``fastcluster.linkage(..., preserve_input=False)`` 1.3 still copies its input once (``array(X)``
    on entry): ``4 N²`` bytes more for nothing. Its own wrapper is called directly when present.
    """
    import fastcluster

    n = int(round((1 + np.sqrt(1 + 8 * dist.size)) / 2))
    wrap = getattr(fastcluster, "linkage_wrap", None)
    codes = getattr(fastcluster, "mthidx", None)
    if (
        wrap is None
        or not isinstance(codes, dict)
        or "average" not in codes
        or dist.dtype != np.float64
        or not dist.flags.c_contiguous
        or n * (n - 1) // 2 != dist.size
    ):
        return fastcluster.linkage(dist, method="average", preserve_input=False)
    z = np.empty((n - 1, 4))
    wrap(n, dist, z, codes["average"])
    return z


def cut_tree(linkage: np.ndarray, threshold: float, n: int | None = None) -> np.ndarray:
    """Flat clusters of a linkage tree at distance ``threshold``, numbered 0.. by their lowest member."""
    from scipy.cluster.hierarchy import fcluster

    z = np.asarray(linkage, dtype=np.float64)
    size = z.shape[0] + 1 if n is None else n
    if z.shape[0] == 0:
        return np.zeros(size, dtype=np.int64)
    raw = fcluster(z, float(threshold) + CUT_TOLERANCE, criterion="distance")
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()]


def cluster_counts(linkage: np.ndarray, thresholds: Iterable[float], n: int | None = None) -> np.ndarray:
    """The number of flat clusters of an average-linkage tree at each threshold, without cutting it.

    Average linkage is monotone (a merge is never lower than the merges below it), so cutting at
    ``t`` undoes exactly the merges higher than ``t``: ``n - #(heights <= t)`` clusters, the count
    :func:`cut_tree` gives (same tolerance). For the jackknife's replicates, which need only counts.

    >>> z = np.array([[0, 1, 0.1, 2], [2, 3, 0.5, 3]])
    >>> cluster_counts(z, [0.0, 0.1, 0.3, 1.0]).tolist()
    [3, 2, 2, 1]
    """
    z = np.asarray(linkage, dtype=np.float64)
    size = z.shape[0] + 1 if n is None else int(n)
    heights = np.sort(z[:, 2]) if z.shape[0] else np.zeros(0)
    ts = np.asarray(list(thresholds), dtype=np.float64) + CUT_TOLERANCE
    return size - np.searchsorted(heights, ts, side="right")


def _members(labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Neurons sorted by cluster (ascending inside each) and the start offset of each cluster."""
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])
    return order, starts


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def pick_representatives(
    labels: np.ndarray,
    how: str = "random",
    *,
    corr: Any = None,
    random_state: Any = 0,
) -> np.ndarray:
    """One neuron per cluster: ``representatives[i]`` belongs to cluster ``i``.

    ``"random"``: uniformly at random within each cluster (the paper's choice), reproducible from
    ``random_state``. ``"central"``: the member with the largest mean ``|r|`` to the members of its
    cluster (ties: the lowest index); needs ``corr``.
    """
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if labels.size else 0
    if how == "random":
        perm = _rng(random_state).permutation(labels.size)
        reps = np.empty(k, dtype=np.int64)
        seen = labels[perm]
        _, first = np.unique(seen, return_index=True)  # the first member of each cluster in random order
        reps[seen[first]] = perm[first]
        return reps
    if how != "central":
        raise ValueError(f"representative must be one of {REPRESENTATIVES}, got {how!r}")
    if corr is None:
        raise ValueError("representative='central' needs the correlation matrix")
    c = _check_corr(corr)
    order, starts = _members(labels, k)
    reps = order[starts[:-1]].astype(np.int64)  # singletons and pairs: the lowest member
    for cluster in np.flatnonzero(np.diff(starts) > 2):
        idx = order[starts[cluster] : starts[cluster + 1]]
        sums = np.empty(idx.size)
        rows = max(1, (4 * 2**20) // idx.size)
        for lo in range(0, idx.size, rows):
            part = idx[lo : lo + rows]
            sums[lo : lo + part.size] = np.abs(c[np.ix_(part, idx)]).sum(axis=1)
        reps[cluster] = idx[int(np.argmax(sums))]
    return reps


def _sweep_point(
    threshold: float, labels: np.ndarray, reps: np.ndarray, layer_of: np.ndarray, n_layers: int
) -> SweepPoint:
    n = labels.size
    k = reps.size
    lo = np.full(k, n_layers, dtype=np.int64)
    hi = np.full(k, -1, dtype=np.int64)
    np.minimum.at(lo, labels, layer_of)
    np.maximum.at(hi, labels, layer_of)
    spans = np.bincount(hi - lo + 1, minlength=n_layers + 1)[1:]
    per_layer = np.bincount(layer_of, minlength=n_layers)
    kept = np.bincount(layer_of[reps], minlength=n_layers)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(per_layer > 0, 1.0 - kept / np.maximum(per_layer, 1), 0.0)
    return SweepPoint(
        threshold=threshold,
        n_neurons=n,
        n_clusters=k,
        redundant_share=1.0 - k / n,
        redundant_share_by_layer=tuple(share.tolist()),
        span_histogram=tuple(spans.tolist()),
        largest_cluster=int(np.bincount(labels).max()),
        representatives=tuple(reps.tolist()),
    )


def _layer_of(layer_of: Any, n: int) -> tuple[np.ndarray, int]:
    if layer_of is None:
        return np.zeros(n, dtype=np.int64), 1
    lay = np.asarray(layer_of)
    if lay.shape != (n,) or (lay.size and (lay.dtype.kind not in "iu" or lay.min() < 0)):
        raise ValueError(f"layer_of must be {n} non-negative ints (the layer of each neuron)")
    return lay.astype(np.int64), int(lay.max()) + 1


class CorrelationClusterer(BaseEstimator):
    """Correlation clustering of neurons, as in Dalvi et al. (2020).

    Distance ``1 - |r|`` between neurons, agglomerative clustering with average linkage
    (``fastcluster``), the tree cut at distance ``threshold``; one neuron per cluster is kept, the rest
    count as redundant.

    Parameters
    ----------
    threshold : float
        Cut distance in ``[0, 1]`` (the paper's 0.3: neurons correlated above about 0.7 end together).
    representative : {"random", "central"}
        ``"random"``: a uniformly random member (the paper's choice); ``"central"``: the member with the
        largest mean ``|r|`` to its cluster.
    random_state : int, numpy Generator or None
        Seed of the random pick.

    Attributes
    ----------
    linkage_ : ndarray of shape (N - 1, 4)
        The average-linkage tree (SciPy format); cut it again with :func:`cut_tree` or :meth:`sweep`.
    labels_ : ndarray of shape (N,)
        Cluster of each neuron, numbered 0.. in the order of each cluster's lowest neuron.
    n_clusters_ : int
    representatives_ : ndarray of shape (n_clusters_,)
        The kept neuron of each cluster.
    redundant_share_ : float
        ``1 - n_clusters_ / N``.
    n_features_in_ : int
        ``N``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 3))
    >>> X = np.column_stack([x, x[:, 0] * 2 + 0.01 * rng.normal(size=200)])  # neuron 3 copies neuron 0
    >>> cc = CorrelationClusterer(threshold=0.3).fit(np.corrcoef(X.T))
    >>> cc.labels_.tolist(), cc.n_clusters_
    ([0, 1, 2, 0], 3)
    """

    # what each parameter must be, in words (checked by ``fit``; ``__init__`` only stores, as
    # scikit-learn asks; ``get_params`` / ``set_params`` / ``clone`` come from ``BaseEstimator``)
    _PARAMETER_RULES: dict[str, Any] = {
        "threshold": "a distance 1 - |r| in [0, 1]",
        "representative": REPRESENTATIVES,
        "random_state": "an int, a numpy Generator or None",
    }

    def __init__(self, threshold: float = 0.3, *, representative: str = "random", random_state: Any = 0):
        self.threshold = threshold
        self.representative = representative
        self.random_state = random_state

    def _validate_params(self) -> None:
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0 <= t <= 1:
            raise ValueError(f"threshold must be {self._PARAMETER_RULES['threshold']}, got {t!r}")
        if self.representative not in REPRESENTATIVES:
            raise ValueError(f"representative must be one of {REPRESENTATIVES}, got {self.representative!r}")
        rs = self.random_state
        if not (
            rs is None
            or isinstance(rs, np.random.Generator)
            or (isinstance(rs, numbers.Integral) and not isinstance(rs, bool))
        ):
            want = self._PARAMETER_RULES["random_state"]
            raise ValueError(f"random_state must be {want}, got {rs!r}")

    def fit(
        self, corr: Any, y: Any = None, *, layer_of: Any = None, linkage: np.ndarray | None = None
    ) -> CorrelationClusterer:
        """Cluster the neurons of the ``(N, N)`` correlation matrix ``corr``.

        Parameters
        ----------
        corr : array of shape (N, N)
            Pearson correlations (symmetric; zero-variance neurons with 0 off the diagonal).
        y : ignored
        layer_of : int array of shape (N,), optional
            Layer of each neuron; recorded for :meth:`sweep` (default: all in one layer).
        linkage : array of shape (N - 1, 4), optional
            A tree already built from ``corr`` by :func:`correlation_linkage` (skips rebuilding it).
        """
        self._validate_params()
        c = _check_corr(corr)
        n = c.shape[0]
        self._layer_of, self._n_layers = _layer_of(layer_of, n)
        z = correlation_linkage(c) if linkage is None else np.asarray(linkage, dtype=np.float64)
        if z.shape != (n - 1, 4):
            raise ValueError(f"linkage must have shape ({n - 1}, 4), got {z.shape}")
        self.linkage_ = z
        self.n_features_in_ = n
        self.labels_ = cut_tree(z, self.threshold, n)
        self.n_clusters_ = int(self.labels_.max()) + 1
        self.representatives_ = pick_representatives(
            self.labels_, self.representative, corr=c, random_state=self.random_state
        )
        self.redundant_share_ = 1.0 - self.n_clusters_ / n
        return self

    def sweep(self, thresholds: Iterable[float], corr: Any = None) -> tuple[SweepPoint, ...]:
        """Cut the fitted tree at every threshold (``corr`` is needed for ``representative="central"``)."""
        if not hasattr(self, "linkage_"):
            raise ValueError("CorrelationClusterer is not fitted yet; call fit(corr) first")
        return _sweep_tree(
            self.linkage_,
            thresholds,
            self.n_features_in_,
            self._layer_of,
            self._n_layers,
            self.representative,
            corr,
            self.random_state,
        )


def _sweep_tree(
    z: np.ndarray,
    thresholds: Iterable[float],
    n: int,
    layer_of: np.ndarray,
    n_layers: int,
    representative: str,
    corr: Any,
    random_state: Any,
) -> tuple[SweepPoint, ...]:
    points = []
    for t in _check_thresholds(thresholds):
        labels = cut_tree(z, t, n)
        # A fresh generator per threshold: the pick at t does not depend on which other thresholds ran.
        reps = pick_representatives(labels, representative, corr=corr, random_state=random_state)
        points.append(_sweep_point(t, labels, reps, layer_of, n_layers))
    return tuple(points)


def threshold_sweep(
    corr: Any,
    thresholds: Sequence[float] | None = None,
    *,
    layer_of: Any = None,
    representative: str = "random",
    random_state: Any = 0,
    linkage: np.ndarray | None = None,
) -> tuple[SweepPoint, ...]:
    """Build the average-linkage tree once and cut it at every threshold.

    With an int seed, each point equals ``CorrelationClusterer(t, representative=..., random_state=seed)
    .fit(corr)`` at that threshold (same labels, same representatives): every cut draws from a fresh
    generator.

    Parameters
    ----------
    corr : array of shape (N, N)
    thresholds : sequence of float, optional
        Default :func:`default_thresholds` (0.0 ... 1.0 by 0.05).
    layer_of : int array of shape (N,), optional
        Layer of each neuron, for the per-layer shares and the span histogram.
    representative, random_state
        As in :class:`CorrelationClusterer`.
    linkage : array, optional
        A tree already built from ``corr``.
    """
    cc = CorrelationClusterer(threshold=0.0, representative=representative, random_state=random_state)
    cc._validate_params()
    c = _check_corr(corr)
    n = c.shape[0]
    lay, n_layers = _layer_of(layer_of, n)
    z = correlation_linkage(c) if linkage is None else np.asarray(linkage, dtype=np.float64)
    ts = default_thresholds() if thresholds is None else thresholds
    return _sweep_tree(z, ts, n, lay, n_layers, representative, c, random_state)
