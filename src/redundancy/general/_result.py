"""Frozen, JSON-ready results of the general-redundancy stage (``general.json``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .._serial import check_fields
from ..rigour import Interval

RESULT_FORMAT_VERSION = 1


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _matrix_to_json(m: Any) -> list[list[float | None]]:
    """A float matrix as nested lists, NaN as None (JSON has no NaN)."""
    rows = np.asarray(m, dtype=float).tolist()
    return [[float(v) if math.isfinite(v) else None for v in row] for row in rows]


def _matrix_from_json(m: Any) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(math.nan if v is None else float(v) for v in row) for row in m)


@dataclass(frozen=True, kw_only=True)
class CKAResult:
    """Linear and debiased linear CKA between every pair of layers.

    Attributes
    ----------
    linear : tuple of tuples of float
        ``linear[a][b]``: linear CKA of layers ``a`` and ``b`` (feature-space form from covariance blocks).
        NaN (``null`` in JSON) where a layer has no variance.
    debiased : tuple of tuples of float
        The same with the unbiased HSIC estimator (Song et al. 2012; Nguyen et al. 2021), exact over all
        items. May be slightly negative for unrelated layers; NaN where undefined.
    n_items : int
        Items the statistics were computed on.
    estimator : str
        How the numbers were computed.
    """

    linear: tuple[tuple[float, ...], ...]
    debiased: tuple[tuple[float, ...], ...]
    n_items: int
    estimator: str = (
        "NeuronStats: one float64 pass; linear CKA from covariance blocks, "
        "debiased via the unbiased HSIC estimator"
    )

    def __post_init__(self) -> None:
        for name in ("linear", "debiased"):
            m = tuple(tuple(float(v) for v in row) for row in getattr(self, name))
            if any(len(row) != len(m) for row in m):
                raise ValueError(f"CKAResult.{name} must be a square matrix")
            object.__setattr__(self, name, m)
        if len(self.linear) != len(self.debiased):
            raise ValueError("CKAResult.linear and .debiased must have the same size")

    @property
    def n_layers(self) -> int:
        return len(self.linear)

    def as_array(self, variant: str = "linear") -> np.ndarray:
        """``(n_layers, n_layers)`` float array of ``"linear"`` or ``"debiased"`` CKA."""
        if variant not in ("linear", "debiased"):
            raise ValueError(f"variant must be 'linear' or 'debiased', got {variant!r}")
        return np.array(getattr(self, variant), dtype=float).reshape(self.n_layers, self.n_layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "linear": _matrix_to_json(self.as_array("linear")),
            "debiased": _matrix_to_json(self.as_array("debiased")),
            "n_items": self.n_items,
            "estimator": self.estimator,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CKAResult:
        kw = check_fields(cls, d)
        kw["linear"] = _matrix_from_json(kw["linear"])
        kw["debiased"] = _matrix_from_json(kw["debiased"])
        return cls(**kw)


@dataclass(frozen=True, kw_only=True)
class SweepPoint:
    """The clustering cut at one distance threshold.

    Attributes
    ----------
    threshold : float
        Distance ``t`` (``1 - |r|``): merges of average distance ``<= t`` are kept.
    n_neurons : int
        Neurons clustered.
    n_clusters : int
        Flat clusters at this threshold.
    redundant_share : float
        ``1 - n_clusters / n_neurons``: the share of neurons dropped when one per cluster is kept.
    redundant_share_by_layer : tuple of float
        Per layer: ``1 - kept / neurons of that layer``, ``kept`` = representatives in that layer. Weighted
        by layer size, these average to ``redundant_share``. Depends on the representative choice.
    span_histogram : tuple of int
        ``span_histogram[k]``: clusters spanning ``k + 1`` layers (max layer - min layer + 1).
    largest_cluster : int
        Size of the largest cluster.
    representatives : tuple of int
        One flat neuron index per cluster (cluster ``i``'s at position ``i``; clusters are numbered by
        their lowest neuron).
    """

    threshold: float
    n_neurons: int
    n_clusters: int
    redundant_share: float
    redundant_share_by_layer: tuple[float, ...]
    span_histogram: tuple[int, ...]
    largest_cluster: int
    representatives: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "redundant_share", float(self.redundant_share))
        for name, kind in (
            ("redundant_share_by_layer", float),
            ("span_histogram", int),
            ("representatives", int),
        ):
            object.__setattr__(self, name, tuple(kind(v) for v in getattr(self, name)))
        for name in ("n_neurons", "n_clusters", "largest_cluster"):
            object.__setattr__(self, name, int(getattr(self, name)))
        if len(self.representatives) != self.n_clusters:
            raise ValueError("SweepPoint: one representative per cluster is required")
        if sum(self.span_histogram) != self.n_clusters:
            raise ValueError("SweepPoint: the span histogram must count every cluster once")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for name in ("redundant_share_by_layer", "span_histogram", "representatives"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepPoint:
        return cls(**check_fields(cls, d))


@dataclass(frozen=True, kw_only=True)
class NullBaseline:
    """General redundancy of a null model, computed by the same code on the same items.

    Attributes
    ----------
    kind : ``shuffled`` (each neuron's rows permuted independently: marginals kept, every
        cross-neuron correlation destroyed) or ``random-init`` (a randomly initialised model of the
        same architecture on the same tokens).
    description : how it was made (seed, window).
    cka : its layer CKA; ``sweep`` : its clustering sweep (the same thresholds as the real one).
    """

    kind: str
    description: str
    cka: CKAResult
    sweep: tuple[SweepPoint, ...]

    def at(self, threshold: float) -> SweepPoint:
        for p in self.sweep:
            if math.isclose(p.threshold, float(threshold), abs_tol=1e-9):
                return p
        raise KeyError(f"threshold {threshold} is not in the null's sweep")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "cka": self.cka.to_dict(),
            "sweep": [p.to_dict() for p in self.sweep],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NullBaseline:
        kw = check_fields(cls, d)
        kw["cka"] = CKAResult.from_dict(kw["cka"])
        kw["sweep"] = tuple(SweepPoint.from_dict(p) for p in kw["sweep"])
        return cls(**kw)


@dataclass(frozen=True, kw_only=True)
class GeneralIntervals:
    """Intervals of the general stage's numbers: a delete-a-group jackknife over sentences.

    The sentences of the store are dealt at random into ``n_groups`` groups; each replicate is the
    whole computation (statistics, CKA, correlation clustering) without one group, taken from the
    same pass (:meth:`NeuronStats.without`); the interval is ``estimate ± t(G - 1) · se``
    (:func:`redundancy.rigour.jackknife_bounds`).

    Attributes
    ----------
    method : how the intervals were made.
    n_groups, seed, level : the groups, the seed that dealt the sentences into them, the coverage.
    cka_linear_low, cka_linear_high, cka_debiased_low, cka_debiased_high : the ends of each layer
        pair's interval (matrices like :class:`CKAResult`'s).
    share_low, share_high : the ends of the redundant share's interval at each threshold of the
        sweep (same order).
    """

    method: str
    n_groups: int
    seed: int
    level: float
    cka_linear_low: tuple[tuple[float, ...], ...]
    cka_linear_high: tuple[tuple[float, ...], ...]
    cka_debiased_low: tuple[tuple[float, ...], ...]
    cka_debiased_high: tuple[tuple[float, ...], ...]
    share_low: tuple[float, ...]
    share_high: tuple[float, ...]

    _MATRICES = ("cka_linear_low", "cka_linear_high", "cka_debiased_low", "cka_debiased_high")

    def __post_init__(self) -> None:
        for name in self._MATRICES:
            m = tuple(tuple(float(v) for v in row) for row in getattr(self, name))
            object.__setattr__(self, name, m)
        for name in ("share_low", "share_high"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if len(self.share_low) != len(self.share_high):
            raise ValueError("GeneralIntervals: share_low and share_high must have the same length")

    def cka(self, variant: str = "linear") -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` arrays of ``"linear"`` or ``"debiased"`` CKA."""
        if variant not in ("linear", "debiased"):
            raise ValueError(f"variant must be 'linear' or 'debiased', got {variant!r}")
        return (
            np.array(getattr(self, f"cka_{variant}_low"), dtype=float),
            np.array(getattr(self, f"cka_{variant}_high"), dtype=float),
        )

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in self._MATRICES:
            d[name] = _matrix_to_json(getattr(self, name))
        for name in ("share_low", "share_high"):
            d[name] = [float(v) if math.isfinite(v) else None for v in getattr(self, name)]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneralIntervals:
        kw = check_fields(cls, d)
        for name in cls._MATRICES:
            kw[name] = _matrix_from_json(kw[name])
        for name in ("share_low", "share_high"):
            kw[name] = tuple(math.nan if v is None else float(v) for v in kw[name])
        return cls(**kw)


@dataclass(frozen=True, kw_only=True)
class GeneralResult:
    """Everything the general-redundancy stage found for one store (``general.json``).

    Attributes
    ----------
    store : str
        Store folder read.
    model, weights_sha256, task, split, aggregation : str
        From the store's manifest.
    input_hash : str
        The store's ``plan_hash``: identifies the activations these numbers come from.
    n_items, n_layers, hidden : int
        Shape of the activations used (``N = n_layers * hidden`` neurons, flat ``layer * hidden + unit``).
    seed : int
        Seed of the random representative picks.
    representative : {"random", "central"}
        How one neuron per cluster was chosen.
    report_threshold : float
        The threshold quoted as the headline (the paper's 0.3); it is one of the sweep's thresholds.
    zero_variance : tuple of int
        Flat indices of zero-variance neurons (correlation 0 with every other neuron).
    cka : CKAResult
    sweep : tuple of SweepPoint
        One cut per threshold, ascending.
    estimator : dict
        What computed the numbers (correlation, distance, linkage, library).
    seconds : dict of str to float
        Wall time of each step.
    files : tuple of str
        Files written next to ``general.json``.
    versions : dict of str to str
        Package versions.
    created : str
        ISO-8601 UTC time.
    format_version : int
    nulls : tuple of NullBaseline
        The null models computed beside the real numbers (``nulls=`` of :func:`run_general`).
    intervals : GeneralIntervals or None
        Jackknife intervals over sentences of the CKA matrices and of the redundant share at every
        threshold (``intervals=`` of :func:`run_general`).
    """

    store: str
    model: str
    weights_sha256: str
    task: str
    split: str
    aggregation: str
    input_hash: str
    n_items: int
    n_layers: int
    hidden: int
    seed: int
    representative: str
    report_threshold: float
    zero_variance: tuple[int, ...]
    cka: CKAResult
    sweep: tuple[SweepPoint, ...]
    estimator: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=_utc_now)
    format_version: int = RESULT_FORMAT_VERSION
    nulls: tuple[NullBaseline, ...] = ()
    intervals: GeneralIntervals | None = None

    def __post_init__(self) -> None:
        if self.intervals is not None and len(self.intervals.share_low) != len(self.sweep):
            raise ValueError("GeneralResult: the intervals need one share interval per sweep point")
        object.__setattr__(self, "zero_variance", tuple(int(i) for i in self.zero_variance))
        object.__setattr__(self, "sweep", tuple(self.sweep))
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "nulls", tuple(self.nulls))
        object.__setattr__(self, "report_threshold", float(self.report_threshold))
        if self.representative not in ("random", "central"):
            raise ValueError(
                f"GeneralResult.representative must be 'random' or 'central', got {self.representative!r}"
            )
        if not any(math.isclose(p.threshold, self.report_threshold, abs_tol=1e-9) for p in self.sweep):
            raise ValueError(f"GeneralResult: report_threshold {self.report_threshold} is not in the sweep")

    @property
    def n_neurons(self) -> int:
        return self.n_layers * self.hidden

    @property
    def thresholds(self) -> tuple[float, ...]:
        return tuple(p.threshold for p in self.sweep)

    def at(self, threshold: float | None = None) -> SweepPoint:
        """The sweep point at ``threshold`` (default: ``report_threshold``)."""
        t = self.report_threshold if threshold is None else float(threshold)
        for p in self.sweep:
            if math.isclose(p.threshold, t, abs_tol=1e-9):
                return p
        raise KeyError(f"threshold {t} is not in the sweep {list(self.thresholds)}")

    def share_interval(self, threshold: float | None = None) -> Interval | None:
        """The redundant share at ``threshold`` (default: the report's) with its jackknife interval."""
        if self.intervals is None:
            return None
        p = self.at(threshold)
        i = self.sweep.index(p)
        return self._interval(p.redundant_share, self.intervals.share_low[i], self.intervals.share_high[i])

    def cka_interval(self, a: int, b: int, variant: str = "linear") -> Interval | None:
        """CKA of layers ``a`` and ``b`` with its jackknife interval."""
        if self.intervals is None:
            return None
        low, high = self.intervals.cka(variant)
        return self._interval(float(self.cka.as_array(variant)[a, b]), float(low[a, b]), float(high[a, b]))

    def _interval(self, estimate: float, low: float, high: float) -> Interval:
        iv = self.intervals
        assert iv is not None
        return Interval(estimate, low, high, iv.level, iv.n_groups, iv.seed, "sentence group", "jackknife")

    def summary(self) -> dict[str, Any]:
        """A short JSON-ready digest: headline share, CKA matrices (2 decimals), share vs threshold."""
        p = self.at()

        def r2(m: np.ndarray) -> list[list[float | None]]:
            return _matrix_to_json(np.round(m, 2))

        return {
            "store": self.store,
            "model": self.model,
            "n_items": self.n_items,
            "n_neurons": self.n_neurons,
            "zero_variance": len(self.zero_variance),
            "report_threshold": self.report_threshold,
            "n_clusters": p.n_clusters,
            "redundant_share": round(p.redundant_share, 4),
            "redundant_share_by_layer": [round(v, 4) for v in p.redundant_share_by_layer],
            "redundant_share_by_threshold": {
                f"{q.threshold:g}": round(q.redundant_share, 4) for q in self.sweep
            },
            "cka_linear": r2(self.cka.as_array("linear")),
            "cka_debiased": r2(self.cka.as_array("debiased")),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["zero_variance"] = list(self.zero_variance)
        d["cka"] = self.cka.to_dict()
        d["sweep"] = [p.to_dict() for p in self.sweep]
        d["files"] = list(self.files)
        d["estimator"] = dict(self.estimator)
        d["seconds"] = dict(self.seconds)
        d["versions"] = dict(self.versions)
        d["nulls"] = [n.to_dict() for n in self.nulls]
        d["intervals"] = None if self.intervals is None else self.intervals.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneralResult:
        kw = check_fields(cls, d)
        version = kw.get("format_version", RESULT_FORMAT_VERSION)
        if isinstance(version, int) and version > RESULT_FORMAT_VERSION:
            raise ValueError(
                f"general result format_version {version} is newer than this code supports "
                f"({RESULT_FORMAT_VERSION}); upgrade the redundancy package"
            )
        kw["cka"] = CKAResult.from_dict(kw["cka"])
        kw["sweep"] = tuple(SweepPoint.from_dict(p) for p in kw["sweep"])
        kw["nulls"] = tuple(NullBaseline.from_dict(n) for n in kw.get("nulls", ()))
        if kw.get("intervals") is not None:
            kw["intervals"] = GeneralIntervals.from_dict(kw["intervals"])
        return cls(**kw)
