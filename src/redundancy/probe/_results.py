"""Frozen result records of the probing stage, each with ``to_dict`` / ``from_dict`` (plain JSON)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from .._serial import json_ready, nan_if_none
from ..rigour import Interval
from ._data import SplitInfo


def _tuples(obj: Any) -> Any:
    """JSON lists -> tuples (recursively); dicts (scores, settings) keep their JSON values."""
    if isinstance(obj, list):
        return tuple(_tuples(v) for v in obj)
    return obj


class _Record:
    """Mixin: ``to_dict`` (JSON-ready) and ``from_dict`` (nested records rebuilt, lists -> tuples)."""

    _nested: ClassVar[dict[str, type]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: json_ready(getattr(self, f.name))
            for f in fields(self)  # type: ignore[arg-type]
            if f.metadata.get("serialise", True)
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        kwargs = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in d:
                continue
            v = d[f.name]
            sub = cls._nested.get(f.name)
            if v is None:
                kwargs[f.name] = None
            elif sub is not None and isinstance(v, list):
                kwargs[f.name] = tuple(sub.from_dict(x) for x in v)
            elif sub is not None:
                kwargs[f.name] = sub.from_dict(v)
            elif isinstance(v, list):
                kwargs[f.name] = _tuples(v)
            else:
                kwargs[f.name] = v
        return cls(**kwargs)


@dataclass(frozen=True, eq=False)
class ProbeResult(_Record):
    """One trained probe: what it saw and how it scored.

    Attributes
    ----------
    name : e.g. ``oracle``, ``layer-3``, ``layers-0..3``, ``top-134``, ``random-134-s2``.
    n_neurons : number of input neurons.
    layers : the layers it saw in full (layer-wise / incremental / oracle), else None.
    neurons : flat neuron ids (``layer * hidden + unit``) for neuron selections, else None.
    metric : the task metric; ``dev[metric]`` / ``test[metric]`` are the headline scores.
    dev, test : ``{metric name: value}`` (test None when no test store was given).
    seed : ``random_state`` of the probe.
    settings : the solver settings actually used (``ElasticNetProbe.resolved_settings``).
    n_steps, n_epochs : optimizer steps and passes over the data (of the family, for joint training).
    fit_seconds : training time (a jointly trained family's time is shared evenly).
    test_interval : the test score's bootstrap interval over test sentences
        (:class:`redundancy.rigour.Interval`), when the task had a bootstrap; else None.
    test_replicates : its replicates, in memory only (not written: for paired intervals of ratios
        and differences within one run, e.g. a share of the oracle).
    """

    _nested: ClassVar[dict[str, type]] = {"test_interval": Interval}

    name: str
    n_neurons: int
    layers: tuple[int, ...] | None
    neurons: tuple[int, ...] | None
    metric: str
    dev: dict[str, float]
    test: dict[str, float] | None
    seed: int
    settings: dict[str, Any]
    n_steps: int
    n_epochs: float
    fit_seconds: float
    test_interval: Interval | None = None
    test_replicates: Any = field(default=None, repr=False, metadata={"serialise": False})

    @property
    def test_pair(self) -> tuple[float, Any] | None:
        """``(test score, its replicates)`` when a bootstrap ran in this process, else None."""
        return None if self.test_replicates is None else (self.test_score, self.test_replicates)

    @property
    def dev_score(self) -> float:
        return nan_if_none(self.dev.get(self.metric))

    @property
    def test_score(self) -> float:
        return float("nan") if self.test is None else nan_if_none(self.test.get(self.metric))


@dataclass(frozen=True, eq=False)
class MinimalSetResult(_Record):
    """The paper's minimal neuron set: the smallest top-k of the grid whose dev score is strictly
    above ``reference_dev * (1 - delta / 100)``.

    Attributes
    ----------
    delta, reference_dev, target : the tolerance in percent, the oracle's dev score, the pass mark.
    ranking_method : how the neurons were ordered (``paper`` or ``abs``).
    grid : every size of the grid (``int(share * n_neurons)``).
    evaluated : the top-k probes trained, in grid order (neurons = the ranking's first k).
    found : whether a size passed; if not, the set is all neurons (the oracle).
    complete : False when the search stopped at its time budget before finding a size.
    k, share : the size and its share of all neurons.
    neurons : the selected flat neuron ids, in ranking order.
    result : the selected probe (the oracle when nothing passed).
    """

    _nested: ClassVar[dict[str, type]] = {"evaluated": ProbeResult, "result": ProbeResult}

    delta: float
    reference_dev: float
    target: float
    ranking_method: str
    grid: tuple[int, ...]
    evaluated: tuple[ProbeResult, ...]
    found: bool
    complete: bool
    k: int
    share: float
    neurons: tuple[int, ...]
    result: ProbeResult


@dataclass(frozen=True, eq=False)
class CurveResult(_Record):
    """Score against the number of neurons for one way of choosing them, over seeds.

    Attributes
    ----------
    kind : ``top`` (the ranking's first k), ``bottom`` (its last k), ``random`` (k at random).
    sizes : the k values.
    seeds : the seeds of the neuron draw (random) or of the probe; one row of scores per seed.
    dev, test : per seed, per size (test None without a test store).
    dev_mean, dev_sd, test_mean, test_sd : over seeds, per size (sd with ddof=1; 0 for one seed).
    """

    kind: str
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    dev: tuple[tuple[float, ...], ...]
    test: tuple[tuple[float, ...], ...] | None
    dev_mean: tuple[float, ...]
    dev_sd: tuple[float, ...]
    test_mean: tuple[float, ...] | None
    test_sd: tuple[float, ...] | None


@dataclass(frozen=True, eq=False)
class SeedSpread(_Record):
    """The same probe trained with several seeds: its scores and their spread (sd with ddof=1)."""

    name: str
    seeds: tuple[int, ...]
    dev: tuple[float, ...]
    test: tuple[float, ...] | None
    dev_mean: float
    dev_sd: float
    test_mean: float | None
    test_sd: float | None


@dataclass(frozen=True, eq=False)
class RankingControls(_Record):
    """One ranking judged by the controls.

    Attributes
    ----------
    method : the ranking (``paper``, ``group-lasso``, ``l1-path``, ``probeless``, ...).
    top, bottom : probes on its first / last k neurons at the controls' sizes.
    choice_score : mean dev score of ``top`` over the sizes (what ``ranking="auto"`` maximises).
    ablation : the oracle probe's scores with the ranking's top k columns ablated offline (set to
        their train mean or to zero, see ``ControlsResult.ablation_mode``) at ``ablation_sizes``;
        None when not computed.
    seconds : time to compute the ranking itself.
    """

    _nested: ClassVar[dict[str, type]] = {"top": CurveResult, "bottom": CurveResult, "ablation": CurveResult}

    method: str
    top: CurveResult
    bottom: CurveResult | None
    choice_score: float
    ablation: CurveResult | None = None
    seconds: float = 0.0


@dataclass(frozen=True, eq=False)
class ControlsResult(_Record):
    """Controls the paper lacks: at the same k, the top-ranked vs random vs bottom-ranked neurons;
    and the oracle probe itself over several seeds.

    ``top``/``bottom`` are the chosen ranking's (at ``sizes``, the minimal set's k included);
    ``rankings`` holds every ranking compared, each with its own top/bottom curves and offline
    ablation; ``random`` and ``ablation_random`` are shared by all (random draws do not depend on a
    ranking)."""

    _nested: ClassVar[dict[str, type]] = {
        "top": CurveResult,
        "random": CurveResult,
        "bottom": CurveResult,
        "probe_seeds": SeedSpread,
        "rankings": RankingControls,
        "ablation_random": CurveResult,
    }

    sizes: tuple[int, ...]
    top: CurveResult
    random: CurveResult
    bottom: CurveResult
    probe_seeds: SeedSpread | None
    rankings: tuple[RankingControls, ...] = ()
    ablation_sizes: tuple[int, ...] = ()
    ablation_mode: str = "mean"
    ablation_random: CurveResult | None = None
    ablation_intact: float | None = None


@dataclass(frozen=True, eq=False)
class SelectivityRow(_Record):
    """One probe: its task accuracy, its control accuracy and their difference (test, else dev)."""

    name: str
    n_neurons: int
    task_accuracy: float
    control_accuracy: float
    selectivity: float


@dataclass(frozen=True, eq=False)
class SelectivityResult(_Record):
    """Selectivity of every layer-wise and incremental probe, the oracle and the minimal set.

    Attributes
    ----------
    split : where the accuracies were measured (``test``, else ``dev``).
    seed : the control task's labelling; ``n_types`` : word types in train.
    control : what the control task is.
    rows : one :class:`SelectivityRow` per probe; ``probes`` : the control probes themselves.
    """

    _nested: ClassVar[dict[str, type]] = {"rows": SelectivityRow, "probes": ProbeResult}

    split: str
    seed: int
    n_types: int
    control: str
    rows: tuple[SelectivityRow, ...]
    probes: tuple[ProbeResult, ...]

    def row(self, name: str) -> SelectivityRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)


SWEEP_TOLERANCES = (1.0, 2.0)
"""Tolerances (percent of the oracle's dev score) of the sweep's headline "largest redundant share"."""


@dataclass(frozen=True)
class SweepRow(_Record):
    """One threshold: its representatives' probe against the oracle.

    Attributes
    ----------
    threshold : the clustering threshold ``t`` (distance ``1 - |r|``).
    n_kept : cluster representatives kept (one per cluster); ``redundant_share`` : ``1 - n_kept / N``.
    dev, test : the probe's scores (task metric); ``share_of_oracle`` : ``test / oracle test``.
    test_interval, share_interval : their bootstrap intervals over test sentences (paired with the
        oracle's replicates), when the task has a bootstrap.
    """

    _nested: ClassVar[dict[str, type]] = {"test_interval": Interval, "share_interval": Interval}

    threshold: float
    n_kept: int
    redundant_share: float
    dev: float
    test: float | None
    share_of_oracle: float | None
    test_interval: Interval | None = None
    share_interval: Interval | None = None


@dataclass(frozen=True)
class SweepAccuracy(_Record):
    """The sweep with task accuracy of one task.

    Attributes
    ----------
    n_neurons : all neurons (``N``); ``representative`` : how the general stage picked one neuron per
        cluster; ``general_split`` : the split its clustering was computed on.
    oracle_dev, oracle_test : the oracle probe's scores.
    rows : one :class:`SweepRow` per threshold, ascending.
    selection : how :meth:`largest_within` picks (a sentence).
    """

    _nested: ClassVar[dict[str, type]] = {"rows": SweepRow}

    n_neurons: int
    representative: str
    general_split: str
    oracle_dev: float
    oracle_test: float | None
    rows: tuple[SweepRow, ...]
    selection: str = (
        "the largest redundant share whose probe's dev score is at least oracle dev x (1 - tolerance/100); "
        "its test score reported"
    )

    def largest_within(self, tolerance: float) -> SweepRow | None:
        """The row with the largest redundant share whose dev score stays within ``tolerance``
        percent of the oracle's dev score (selected on dev, as every choice here); None if none does."""
        floor = self.oracle_dev * (1.0 - float(tolerance) / 100.0)
        ok = [r for r in self.rows if math.isfinite(r.dev) and r.dev >= floor]
        return max(ok, key=lambda r: (r.redundant_share, -r.threshold)) if ok else None

    def summary(self) -> dict[str, Any]:
        """``{"within_1%": {...} | None, "within_2%": ...}``: the headline rows, JSON-ready."""
        out: dict[str, Any] = {}
        for tol in SWEEP_TOLERANCES:
            r = self.largest_within(tol)
            out[f"within_{tol:g}%"] = None if r is None else r.to_dict()
        return out


@dataclass(frozen=True, eq=False)
class TaskRedundancyResult(_Record):
    """The whole task-specific analysis of one task on one model.

    Attributes
    ----------
    task, metric, label_type, model : what was probed and how it is scored.
    n_layers, hidden, n_neurons : the model's shape in the stores (``n_neurons = n_layers * hidden``).
    train, dev, test : the stores used (:class:`SplitInfo`: path, plan hash, label coverage).
    solver : ``fast`` or ``paper``; probe_params : the template probe's parameters (``get_params``).
    classes : the train classes (class tasks).
    oracle : the probe on all neurons; layerwise : one per layer; incremental : layers 0..l.
    ranking_method, ranking : the neuron order from the oracle probe (flat ids, most important first).
    minimal : :class:`MinimalSetResult`.
    controls : :class:`ControlsResult` or None.
    timings : seconds per stage (``load``, ``layers``, ``ranking``, ``minimal_set``, ``controls``,
        ``analysis`` = everything but the controls, ``total``).
    versions : package versions; created : ISO-8601 UTC time; random_state : the base seed.
    ranking_probe : parameters of the probe the ranking came from when it was not the oracle, else None.
    ranking_choice : how the ranking was chosen: ``{"setting": "auto" | a method, "method": the one
        used, "reason": a sentence, "scores": {method: mean top-k dev}}``; None for old results.
    rankings : every ranking compared, ``{method: flat ids}`` (``ranking`` is the chosen one's).
    selectivity : :class:`SelectivityResult` (control task), when asked for; else None.
    sweep : :class:`SweepAccuracy` (the general sweep with task accuracy), when asked for; else None.
    """

    _nested: ClassVar[dict[str, type]] = {
        "train": SplitInfo,
        "dev": SplitInfo,
        "test": SplitInfo,
        "oracle": ProbeResult,
        "layerwise": ProbeResult,
        "incremental": ProbeResult,
        "minimal": MinimalSetResult,
        "controls": ControlsResult,
        "selectivity": SelectivityResult,
        "sweep": SweepAccuracy,
    }

    task: str
    metric: str
    label_type: str
    model: str
    n_layers: int
    hidden: int
    n_neurons: int
    train: SplitInfo
    dev: SplitInfo
    test: SplitInfo | None
    solver: str
    probe_params: dict[str, Any]
    classes: tuple[str, ...]
    oracle: ProbeResult
    layerwise: tuple[ProbeResult, ...]
    incremental: tuple[ProbeResult, ...]
    ranking_method: str
    ranking: tuple[int, ...]
    minimal: MinimalSetResult
    controls: ControlsResult | None
    timings: dict[str, float]
    versions: dict[str, str]
    created: str
    random_state: int
    ranking_probe: dict[str, Any] | None = None
    ranking_choice: dict[str, Any] | None = None
    rankings: dict[str, tuple[int, ...]] | None = None
    selectivity: SelectivityResult | None = None
    sweep: SweepAccuracy | None = None

    def summary(self) -> dict[str, Any]:
        """The headline numbers (dev and test of the task metric) as a small JSON-ready dict."""
        m = self.minimal
        out: dict[str, Any] = {
            "task": self.task,
            "model": self.model,
            "metric": self.metric,
            "solver": self.solver,
            "oracle": {
                "dev": self.oracle.dev_score,
                "test": self.oracle.test_score,
                "n_neurons": self.n_neurons,
            },
            "layerwise": [
                {"layer": i, "dev": r.dev_score, "test": r.test_score} for i, r in enumerate(self.layerwise)
            ],
            "incremental": [
                {"layers": f"0..{i}", "dev": r.dev_score, "test": r.test_score}
                for i, r in enumerate(self.incremental)
            ],
            "minimal_set": {
                "k": m.k,
                "share": m.share,
                "found": m.found,
                "delta": m.delta,
                "target": m.target,
                "dev": m.result.dev_score,
                "test": m.result.test_score,
            },
            "timings": self.timings,
        }
        if self.ranking_choice:
            out["ranking"] = {
                "method": self.ranking_method,
                "reason": self.ranking_choice.get("reason"),
                "scores": self.ranking_choice.get("scores"),
            }
        if self.controls is not None:
            c = self.controls
            i = c.sizes.index(m.k) if m.k in c.sizes else None
            if i is not None:
                pick = "test_mean" if c.top.test_mean is not None else "dev_mean"
                out["controls_at_k"] = {
                    "k": m.k,
                    "split": pick.split("_")[0],
                    "top": getattr(c.top, pick)[i],
                    "random_mean": getattr(c.random, pick)[i],
                    "random_sd": getattr(c.random, pick.replace("mean", "sd"))[i],
                    "bottom": getattr(c.bottom, pick)[i],
                }
            if c.probe_seeds is not None:
                s = c.probe_seeds
                out["oracle_seeds"] = {
                    "seeds": list(s.seeds),
                    "dev_mean": s.dev_mean,
                    "dev_sd": s.dev_sd,
                    "test_mean": s.test_mean,
                    "test_sd": s.test_sd,
                }
        return json_ready(out)
