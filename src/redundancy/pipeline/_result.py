"""Frozen records of the efficient-transfer pipeline, with ``to_dict`` / ``from_dict`` (plain JSON)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from typing import Any

from .._serial import json_ready, nan_if_none
from ..probe import SplitInfo
from ..rigour import Interval

logger = logging.getLogger(__name__)

_FLOAT_FIELDS = (
    "oracle_dev",
    "oracle_test",
    "layer_dev",
    "layer_test",
    "cc_dev",
    "cc_test",
    "share_of_all",
    "dev",
    "test",
    "share_of_oracle",
)


_INTERVALS = ("test_interval", "share_interval")


@dataclass(frozen=True)
class PipelineRow:
    """One run of LayerSelector -> correlation clustering -> feature selection.

    Attributes
    ----------
    delta_layer, delta_neuron : the tolerances in percent (the paper's (3, 1), (2, 1), (1, 1)).
    threshold : the clustering threshold ``t`` (None: no clustering step).
    oracle_dev, oracle_test : the oracle probe (all neurons of all layers).
    selected_layer : the LayerSelector's ``l``; ``layer_passed`` False when no layer passed (last taken).
    n_layer_neurons : neurons of layers 0..l; ``layer_dev``/``layer_test``: that incremental probe.
    n_after_clustering : neurons kept by the clustering (``n_layer_neurons`` when ``threshold`` is None).
    cc_dev, cc_test : the probe retrained on the kept neurons (the incremental probe when no clustering);
        ``cc_dev`` is the reference of the feature selection.
    n_selected : neurons of the final probe; ``fs_passed`` False when no grid size passed (all kept).
    share_of_all : ``n_selected / all neurons of the model``.
    dev, test : the final probe's scores; ``share_of_oracle``: ``test / oracle_test``.
    neurons : the final flat neuron indices (``layer * hidden + unit``), sorted.
    clustered_neurons : the neurons kept by the clustering (all of layers 0..l without it), sorted.
    test_interval, share_interval : bootstrap intervals over test sentences of ``test`` and of
        ``share_of_oracle`` (paired with the oracle's), when the run had a bootstrap; else None.
    """

    delta_layer: float
    delta_neuron: float
    threshold: float | None
    oracle_dev: float
    oracle_test: float
    selected_layer: int
    layer_passed: bool
    n_layer_neurons: int
    layer_dev: float
    layer_test: float
    n_after_clustering: int
    cc_dev: float
    cc_test: float
    n_selected: int
    fs_passed: bool
    share_of_all: float
    dev: float
    test: float
    share_of_oracle: float
    neurons: tuple[int, ...]
    clustered_neurons: tuple[int, ...]
    test_interval: Interval | None = None
    share_interval: Interval | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in _FLOAT_FIELDS:
                v = json_ready(v)
            elif f.name in ("neurons", "clustered_neurons"):
                v = [int(i) for i in v]
            elif f.name in _INTERVALS:
                v = None if v is None else v.to_dict()
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineRow:
        kw = {f.name: d[f.name] for f in fields(cls) if f.name not in _INTERVALS}
        for name in _INTERVALS:  # absent in results written before the bootstrap
            kw[name] = None if d.get(name) is None else Interval.from_dict(d[name])
        for name in _FLOAT_FIELDS:
            kw[name] = nan_if_none(kw[name])
        kw["neurons"] = tuple(int(i) for i in kw["neurons"])
        kw["clustered_neurons"] = tuple(int(i) for i in kw["clustered_neurons"])
        if kw["threshold"] is not None:
            kw["threshold"] = float(kw["threshold"])
        return cls(**kw)


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.2f}"


def _with_ci(x: float, iv: Interval | None) -> str:
    """``95.01 [94.80, 95.20]`` (in %) with an interval, else the value alone."""
    if iv is None or math.isnan(iv.low) or math.isnan(x):
        return _pct(x)
    return f"{_pct(x)} [{_pct(iv.low)}, {_pct(iv.high)}]"


@dataclass(frozen=True)
class PipelineResult:
    """The pipeline over a grid of tolerance pairs and clustering thresholds, for one task.

    Attributes
    ----------
    task, metric, model : what was probed and how it was scored.
    n_layers, hidden, n_neurons : the model's layout (all neurons: ``n_layers * hidden``).
    grid : the ``(delta_layer, delta_neuron)`` pairs; thresholds : the clustering thresholds (None = no CC).
    ranking_method : how kept neurons are ranked (``paper``: class-wise weight mass).
    shares : the feature-selection grid (shares of *all* neurons).
    seed : the clustering seed (random representative); probe_seed : the probe's ``random_state``.
    solver, probe_params : the probe template.
    train, dev, test : where the splits came from (with their stores' plan hashes).
    incremental_dev, incremental_test : the incremental probes on layers 0..l, l = 0..L-1 (the last is
        the oracle).
    rows : one :class:`PipelineRow` per (pair, threshold), pairs outer, thresholds inner.
    timings : seconds per stage; versions : package versions; created : ISO time.
    baseline_dev : dev score of always predicting train's majority class (NaN for regression, or in
        results written before it was recorded); rows at or below it are flagged in the table.
    ranking_choice : for a ranking other than ``paper``/``abs``: which ranking of all neurons ordered
        the kept neurons, where it came from and why (``{"setting", "method", "source", "reason"}``);
        None otherwise (and in older results).
    """

    task: str
    metric: str
    model: str
    n_layers: int
    hidden: int
    n_neurons: int
    grid: tuple[tuple[float, float], ...]
    thresholds: tuple[float | None, ...]
    ranking_method: str
    shares: tuple[float, ...]
    seed: int
    probe_seed: int
    solver: str
    probe_params: dict[str, Any]
    train: SplitInfo
    dev: SplitInfo
    test: SplitInfo | None
    incremental_dev: tuple[float, ...]
    incremental_test: tuple[float, ...]
    rows: tuple[PipelineRow, ...]
    timings: dict[str, float]
    versions: dict[str, str]
    created: str
    baseline_dev: float = math.nan
    ranking_choice: dict[str, Any] | None = None

    @property
    def oracle_dev(self) -> float:
        return self.incremental_dev[-1]

    @property
    def oracle_test(self) -> float:
        return self.incremental_test[-1]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("train", "dev", "test"):
                v = None if v is None else v.to_dict()
            elif f.name == "rows":
                v = [r.to_dict() for r in v]
            elif f.name == "grid":
                v = [[float(a), float(b)] for a, b in v]
            elif f.name in ("thresholds", "shares"):
                v = list(v)
            elif f.name in ("incremental_dev", "incremental_test"):
                v = [json_ready(x) for x in v]
            elif f.name in ("probe_params", "timings", "versions"):
                v = dict(v)
            elif f.name in ("baseline_dev", "ranking_choice"):
                v = json_ready(v)
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineResult:
        optional = ("baseline_dev", "ranking_choice")
        kw = {f.name: d[f.name] for f in fields(cls) if f.name not in optional}
        kw["baseline_dev"] = nan_if_none(d.get("baseline_dev"))
        kw["ranking_choice"] = d.get("ranking_choice")
        for name in ("train", "dev", "test"):
            kw[name] = None if kw[name] is None else SplitInfo.from_dict(kw[name])
        kw["rows"] = tuple(PipelineRow.from_dict(r) for r in kw["rows"])
        kw["grid"] = tuple((float(a), float(b)) for a, b in kw["grid"])
        kw["thresholds"] = tuple(None if t is None else float(t) for t in kw["thresholds"])
        kw["shares"] = tuple(float(s) for s in kw["shares"])
        kw["incremental_dev"] = tuple(nan_if_none(x) for x in kw["incremental_dev"])
        kw["incremental_test"] = tuple(nan_if_none(x) for x in kw["incremental_test"])
        return cls(**kw)

    def table_markdown(self) -> str:
        """The paper's layout: per clustering setting and tolerance pair, the selected layer, the
        neurons kept (count and share of all neurons) and the test score beside the oracle's."""
        oracle_line = (
            f"| Oracle | all | {self.n_layers - 1} | {self.n_neurons} | {self.n_neurons} | 100.00 "
            f"| {_pct(self.oracle_test)} | {_pct(1.0 if self.oracle_test else math.nan)} |"
        )
        lines = [
            f"Efficient-transfer pipeline: {self.model}, task {self.task}, test {self.metric} in % "
            f"(dev-based selection; oracle dev {_pct(self.oracle_dev)}; majority-class dev "
            f"{_pct(self.baseline_dev)}).",
            "",
            "| clustering t | δ (layer, neuron) | selected layer | neurons after CC | neurons "
            "| % of all | test | % of oracle |",
            "|---|---|---|---|---|---|---|---|",
            oracle_line,
        ]
        for t in self.thresholds:
            for r in self.rows:
                if r.threshold != t:
                    continue
                lines.append(
                    f"| {'none' if t is None else f'{t:g}'} | ({r.delta_layer:g}, {r.delta_neuron:g}) "
                    f"| {r.selected_layer}{'' if r.layer_passed else '*'} | {r.n_after_clustering} "
                    f"| {r.n_selected}{'' if r.fs_passed else '*'} | {100 * r.share_of_all:.2f} "
                    f"| {_with_ci(r.test, r.test_interval)} "
                    f"| {_with_ci(r.share_of_oracle, r.share_interval)} |"
                )
        iv = next((r.test_interval for r in self.rows if r.test_interval is not None), None)
        if iv is not None:
            lines += [
                "",
                f"[low, high]: {100 * iv.level:g} % bootstrap intervals over test sentences ({iv.n_boot} "
                f"replicates, seed {iv.seed}; the share of the oracle paired with the oracle's replicates).",
            ]
        weak = [r for r in self.rows if r.dev <= self.baseline_dev]
        if weak:
            lines += [
                "",
                f"Warning: {len(weak)} row(s) score no better on dev than always predicting the "
                "majority class: their selection carries no information.",
            ]
        if any(not (r.layer_passed and r.fs_passed) for r in self.rows):
            lines += [
                "",
                "\\* no layer (or no size) passed its tolerance: "
                "the last layer (or all clustered neurons) kept.",
            ]
        return "\n".join(lines) + "\n"


def load_result(path) -> PipelineResult:
    """Read a ``pipeline.json`` written by ``redundancy pipeline`` (or ``json.dump(result.to_dict())``)."""
    import json
    from pathlib import Path

    return PipelineResult.from_dict(json.loads(Path(path).read_text()))


def choose_row(result: PipelineResult, min_share: float = 0.97) -> PipelineRow:
    """The pipeline row to export, chosen on **dev** only (test never enters the choice).

    Among rows whose dev score is at least ``min_share * oracle_dev``, the one with the fewest
    selected neurons (ties: the higher dev, then the earlier row); if no row qualifies, the row with
    the highest dev. Rows with a NaN dev score are never chosen.

    Parameters
    ----------
    result : a :class:`PipelineResult`.
    min_share : the share of the oracle's dev score a row must keep (default 0.97, the paper's
        "about 97 %" of the oracle).
    """
    rows = [r for r in result.rows if not math.isnan(r.dev)]
    if not rows:
        raise ValueError("the pipeline result has no row with a dev score")
    target = min_share * result.oracle_dev
    good = [r for r in rows if r.dev >= target]
    if good:
        return min(good, key=lambda r: (r.n_selected, -r.dev))
    logger.warning(
        "no row keeps %.1f%% of the oracle's dev score %.4f; taking the row with the highest dev",
        100 * min_share,
        result.oracle_dev,
    )
    return max(rows, key=lambda r: r.dev)
