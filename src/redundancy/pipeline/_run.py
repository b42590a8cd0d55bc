"""The efficient-transfer pipeline: LayerSelector -> correlation clustering -> feature selection.

:func:`run_pipeline` trains the incremental probes, picks a layer per ``delta_layer``, computes the
correlations once, and builds one :class:`PipelineRow` per (tolerance pair, threshold);
:class:`_Work` holds what those rows share (the clustered probe and the top-k probes of each
``(layer, threshold)``, trained once however many rows ask for them).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sklearn.base import clone

from .._progress import Progress
from ..general import CorrelationClusterer, NeuronStats
from ..probe import (
    ElasticNetProbe,
    PathSettings,
    ProbeTask,
    baseline_score,
    choose_ranking,
    evaluate_probe,
    fit_probe_family,
    load_probe_task,
    neuron_rankings,
    ratio_interval,
    select_columns,
    split_replicates,
    top_curves,
    train_neuron_sets,
)
from ..rigour import SentenceBootstrap, percentile_interval
from ..select import (
    CONTROL_SHARES,
    PIPELINE_SHARES,
    RANKING_METHODS,
    RANKINGS,
    WEIGHT_RANKINGS,
    LayerSelector,
    grid_sizes,
    rank_neurons,
    search_minimal_size,
    tolerance_target,
)
from ..store import ActivationStore, package_versions
from ._result import PipelineResult, PipelineRow

logger = logging.getLogger(__name__)


DEFAULT_GRID: tuple[tuple[float, float], ...] = ((3.0, 1.0), (2.0, 1.0), (1.0, 1.0))
DEFAULT_THRESHOLDS: tuple[float | None, ...] = (None, 0.3)

_STATS_ROWS = 8192  # rows per NeuronStats.update

_Key = tuple[int, float | None]  # (selected layer, clustering threshold)


def _score(task: ProbeTask, probe: ElasticNetProbe, neurons: np.ndarray, split: str) -> float:
    if split == "test" and task.test is None:
        return float("nan")
    return float(evaluate_probe(task, probe, neurons, split)[task.metric])


@dataclass(frozen=True)
class _Fitted:
    """A trained probe's neurons (flat, in its column order), scores and estimator."""

    neurons: np.ndarray
    dev: float
    test: float
    estimator: ElasticNetProbe
    pair: tuple[float, np.ndarray] | None = None  # (test, its bootstrap replicates) with a bootstrap


def _fitted(task: ProbeTask, estimator: ElasticNetProbe, neurons: np.ndarray) -> _Fitted:
    """``estimator`` (trained on ``neurons``) scored on dev and test (and the test score's bootstrap
    replicates when the task has a bootstrap)."""
    dev, test = _score(task, estimator, neurons, "dev"), _score(task, estimator, neurons, "test")
    pair = None
    if task.bootstrap is not None and task.test is not None:
        pair = split_replicates(task, "test", estimator.predict(select_columns(task.X_test, neurons)))
    return _Fitted(neurons, dev, test, estimator, pair)


@dataclass(frozen=True)
class _Selection:
    """What feature selection kept: the neurons of the first passing top-k (``passed``), else all
    the clustered neurons; their probe's dev and test scores."""

    neurons: np.ndarray
    dev: float
    test: float
    passed: bool
    pair: tuple[float, np.ndarray] | None = None


@dataclass(frozen=True)
class _Settings:
    """The knobs of the clustering and feature-selection steps (see :func:`run_pipeline`)."""

    seed: int
    shares: Sequence[float]
    ranking: str
    search_stride: int
    search_chunk: int
    order: np.ndarray | None  # a ranking of all neurons (ranking not paper/abs), else None


def _train_correlation(task: ProbeTask, n_cols: int) -> np.ndarray:
    """Pearson correlations of the first ``n_cols`` neurons (whole layers) on the train items,
    from :class:`redundancy.general.NeuronStats` (one float64 streaming pass)."""
    h = task.hidden
    stats = NeuronStats(n_cols // h, h)
    X = task.X_train
    for start in range(0, X.shape[0], _STATS_ROWS):
        stats.update(X[start : start + _STATS_ROWS, :n_cols])
    return stats.compute(correlation=True).correlation


class _TopK:
    """The ``evaluate`` of :func:`search_minimal_size` over one ranking (``order``): the top-k probes
    asked for, each trained once; ``done`` maps k to (neurons, dev, test)."""

    def __init__(
        self,
        task: ProbeTask,
        probe: ElasticNetProbe,
        order: np.ndarray,
        stage: str,
        progress: Progress | None,
    ):
        self.task, self.probe, self.order, self.stage, self.progress = task, probe, order, stage, progress
        self.done: dict[int, tuple[np.ndarray, float, float, tuple | None]] = {}

    def __call__(self, part: list[int]) -> list[float]:
        todo = [k for k in part if k not in self.done]
        if todo:
            res = train_neuron_sets(
                self.task,
                self.probe,
                [self.order[:k] for k in todo],
                [f"top-{k}" for k in todo],
                stage=self.stage,
                progress=self.progress,
            )
            for k, r in zip(todo, res, strict=True):
                self.done[k] = (self.order[:k], r.dev_score, r.test_score, r.test_pair)
        return [self.done[k][1] for k in part]


class _Work:
    """The clustered probes and top-k scans of one pipeline run, per ``(layer, threshold)``, each
    computed on first request; ``timings`` sums the seconds of clustering and selection."""

    def __init__(
        self,
        task: ProbeTask,
        probe: ElasticNetProbe,
        incremental: list[_Fitted],
        corr: np.ndarray | None,
        settings: _Settings,
        progress: Progress | None,
    ):
        self.task, self.probe, self.incremental, self.corr = task, probe, incremental, corr
        self.settings, self.progress = settings, progress
        self.clustered: dict[_Key, _Fitted] = {}
        self.scans: dict[_Key, _TopK] = {}
        self.timings = {"clustering": 0.0, "selection": 0.0}

    def cluster(self, layer: int, t: float | None) -> _Fitted:
        """The probe on layers 0..``layer`` after clustering at ``t`` (None: the incremental probe)."""
        key = (layer, t)
        if key not in self.clustered:
            if t is None:
                self.clustered[key] = self.incremental[layer]
            else:
                t1 = time.perf_counter()
                self.clustered[key] = self._train_clustered(layer, t)
                self.timings["clustering"] += time.perf_counter() - t1
        return self.clustered[key]

    def _train_clustered(self, layer: int, t: float) -> _Fitted:
        task, h = self.task, self.task.hidden
        m = (layer + 1) * h
        cc = CorrelationClusterer(t, representative="random", random_state=self.settings.seed).fit(
            self.corr[:m, :m], layer_of=np.repeat(np.arange(layer + 1), h)
        )
        kept = np.sort(np.asarray(cc.representatives_, dtype=np.int64))
        est = clone(self.probe).fit(
            select_columns(task.X_train, kept), task.train.y, select_columns(task.X_dev, kept), task.dev.y
        )
        fitted = _fitted(task, est, kept)
        logger.info("layers 0..%d, t=%g: %d of %d neurons kept, dev %.4f", layer, t, kept.size, m, fitted.dev)
        return fitted

    def _scan(self, layer: int, t: float | None) -> _TopK:
        """The top-k scan over the clustered probe's ranking of its neurons."""
        key = (layer, t)
        if key not in self.scans:
            base, s = self.cluster(layer, t), self.settings
            if s.order is None:  # the paper: rank by the clustered probe's own weights
                rank = rank_neurons(base.estimator.scaled_coef_, s.ranking, search_stride=s.search_stride)
            else:  # the kept neurons in the order of the ranking of all neurons
                position = np.empty(s.order.size, dtype=np.int64)
                position[s.order] = np.arange(s.order.size)
                rank = np.argsort(position[base.neurons], kind="stable")
            stage = f"feature selection (0..{layer}, t={t})"
            self.scans[key] = _TopK(self.task, self.probe, base.neurons[rank], stage, self.progress)
        return self.scans[key]

    def select(self, layer: int, t: float | None, delta_neuron: float) -> _Selection:
        """The first top-k of the clustered probe's ranking within ``delta_neuron`` of its dev score."""
        base, s, N = self.cluster(layer, t), self.settings, self.task.n_neurons
        scan = self._scan(layer, t)
        sizes = grid_sizes(N, s.shares, max_size=base.neurons.size)
        target = tolerance_target(base.dev, delta_neuron)
        t1 = time.perf_counter()
        outcome = search_minimal_size(sizes, scan, target, chunk=s.search_chunk, budget=N)
        self.timings["selection"] += time.perf_counter() - t1
        if outcome.size is None:
            return _Selection(base.neurons, base.dev, base.test, False, base.pair)
        neurons, dev, test, pair = scan.done[outcome.size]
        return _Selection(neurons, dev, test, True, pair)


def _check_grid(
    grid: Sequence[tuple[float, float]], thresholds: Sequence[float | None]
) -> tuple[tuple[tuple[float, float], ...], tuple[float | None, ...]]:
    """``grid`` and ``thresholds`` as float tuples, checked."""
    grid = tuple((float(a), float(b)) for a, b in grid)
    thresholds = tuple(None if t is None else float(t) for t in thresholds)
    if not grid or not thresholds:
        raise ValueError("grid and thresholds must not be empty")
    for t in thresholds:
        if t is not None and not 0 <= t <= 1:  # NaN fails too
            raise ValueError(f"thresholds must be None or distances 1 - |r| in [0, 1], got {t}")
    return grid, thresholds


def _as_task(
    train: ActivationStore | str | os.PathLike | ProbeTask,
    dev: ActivationStore | str | os.PathLike | None,
    test: ActivationStore | str | os.PathLike | None,
    metric: str | None,
) -> ProbeTask:
    if isinstance(train, ProbeTask):
        return train
    if dev is None:
        raise ValueError("a dev store is needed (every selection step uses dev)")
    return load_probe_task(train, dev, test, metric=metric)


def _incremental(
    task: ProbeTask,
    probe: ElasticNetProbe,
    progress: Progress | None,
    given: Sequence[ElasticNetProbe] | None = None,
) -> list[_Fitted]:
    """Probes on layers 0..l for every l (one family: nested column ranges 0..(l+1)h), scored;
    ``given`` (fitted on layers 0..l, in order) are scored instead of trained."""
    h = task.hidden
    if given is not None:
        given = list(given)
        widths = [int(np.asarray(est.coef_).shape[-1]) for est in given]
        if widths != [(i + 1) * h for i in range(task.n_layers)]:
            raise ValueError(
                f"incremental_probes must be {task.n_layers} probes on layers 0..l "
                f"({[(i + 1) * h for i in range(task.n_layers)]} neurons), got {widths}"
            )
        return [_fitted(task, est, np.arange((i + 1) * h)) for i, est in enumerate(given)]
    fitted = fit_probe_family(
        probe,
        task.X_train,
        task.train.y,
        [[(0, (i + 1) * h)] for i in range(task.n_layers)],
        task.X_dev,
        task.dev.y,
        progress=progress,
        what="incremental",
    )
    return [_fitted(task, est, np.arange((i + 1) * h)) for i, est in enumerate(fitted)]


def _row(
    deltas: tuple[float, float],
    t: float | None,
    selector: LayerSelector,
    inc: _Fitted,
    base: _Fitted,
    chosen: _Selection,
    oracle: _Fitted,
    n_neurons: int,
    bootstrap: SentenceBootstrap | None = None,
) -> PipelineRow:
    """One row of the result: the layer step (``inc``), the clustering (``base``), the selection;
    with a ``bootstrap``, the intervals of the final test score and of its share of the oracle's
    (paired: the same resampled test sentences for both)."""
    test_iv = share_iv = None
    if bootstrap is not None and chosen.pair is not None and oracle.pair is not None:
        b = bootstrap
        test_iv = percentile_interval(chosen.pair[0], chosen.pair[1], b.level, b.n_boot, b.seed)
        share_iv = ratio_interval(chosen.pair, oracle.pair, b)
    return PipelineRow(
        delta_layer=deltas[0],
        delta_neuron=deltas[1],
        threshold=t,
        oracle_dev=oracle.dev,
        oracle_test=oracle.test,
        selected_layer=int(selector.selected_layer_),
        layer_passed=bool(selector.passed_),
        n_layer_neurons=int(inc.neurons.size),
        layer_dev=inc.dev,
        layer_test=inc.test,
        n_after_clustering=int(base.neurons.size),
        cc_dev=base.dev,
        cc_test=base.test,
        n_selected=int(len(chosen.neurons)),
        fs_passed=chosen.passed,
        share_of_all=len(chosen.neurons) / n_neurons,
        dev=float(chosen.dev),
        test=float(chosen.test),
        share_of_oracle=float(chosen.test) / oracle.test if oracle.test else float("nan"),
        neurons=tuple(sorted(int(i) for i in chosen.neurons)),
        clustered_neurons=tuple(sorted(int(i) for i in base.neurons)),
        test_interval=test_iv,
        share_interval=share_iv,
    )


def _log_row(row: PipelineRow, baseline: float) -> None:
    """The row in one line; a warning when it does no better than the majority class on dev."""
    logger.info(
        "delta (%g, %g), t=%s: layer %d, %d -> %d -> %d neurons, dev %.4f test %.4f",
        row.delta_layer,
        row.delta_neuron,
        row.threshold,
        row.selected_layer,
        row.n_layer_neurons,
        row.n_after_clustering,
        row.n_selected,
        row.dev,
        row.test,
    )
    if row.dev <= baseline:
        logger.warning(
            "delta (%g, %g), t=%s: the selected probe (layer %d, %d neurons, dev %.4f) is no "
            "better than always predicting train's majority class (dev %.4f): the oracle is too "
            "weak for the tolerances to mean anything, or layer %d carries no signal (e.g. a "
            "constant [CLS] embedding)",
            row.delta_layer,
            row.delta_neuron,
            row.threshold,
            row.selected_layer,
            row.n_selected,
            row.dev,
            baseline,
            row.selected_layer,
        )


def _rows(
    work: _Work,
    grid: tuple[tuple[float, float], ...],
    thresholds: tuple[float | None, ...],
    selectors: dict[float, LayerSelector],
    baseline: float,
) -> list[PipelineRow]:
    """One row per tolerance pair and threshold, in that order."""
    incremental, N = work.incremental, work.task.n_neurons
    rows = []
    for deltas in grid:
        sel = selectors[deltas[0]]
        layer = int(sel.selected_layer_)
        for t in thresholds:
            base = work.cluster(layer, t)
            chosen = work.select(layer, t, deltas[1])
            row = _row(
                deltas, t, sel, incremental[layer], base, chosen, incremental[-1], N, work.task.bootstrap
            )
            _log_row(row, baseline)
            rows.append(row)
    return rows


def _result(
    task: ProbeTask,
    probe: ElasticNetProbe,
    work: _Work,
    rows: list[PipelineRow],
    grid: tuple[tuple[float, float], ...],
    thresholds: tuple[float | None, ...],
    timings: dict[str, float],
    baseline: float,
    choice: dict | None,
) -> PipelineResult:
    m, s = task.train.store.manifest, work.settings
    return PipelineResult(
        task=m.task,
        metric=task.metric,
        model=m.model,
        n_layers=task.n_layers,
        hidden=task.hidden,
        n_neurons=task.n_neurons,
        grid=grid,
        thresholds=thresholds,
        ranking_method=s.ranking if choice is None else choice["method"],
        shares=tuple(float(x) for x in s.shares),
        seed=int(s.seed),
        probe_seed=int(probe.random_state),
        solver=probe.solver,
        probe_params=dict(probe.get_params()),
        train=task.train.info,
        dev=task.dev.info,
        test=None if task.test is None else task.test.info,
        incremental_dev=tuple(f.dev for f in work.incremental),
        incremental_test=tuple(f.test for f in work.incremental),
        rows=tuple(rows),
        timings=timings,
        versions=dict(package_versions(("numpy", "torch", "scikit-learn", "scipy", "fastcluster"))),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        baseline_dev=baseline,
        ranking_choice=choice,
    )


def run_pipeline(
    train_store: ActivationStore | str | os.PathLike | ProbeTask,
    dev_store: ActivationStore | str | os.PathLike | None = None,
    test_store: ActivationStore | str | os.PathLike | None = None,
    *,
    grid: Sequence[tuple[float, float]] = DEFAULT_GRID,
    thresholds: Sequence[float | None] = DEFAULT_THRESHOLDS,
    probe: ElasticNetProbe | None = None,
    seed: int = 0,
    shares: Sequence[float] = PIPELINE_SHARES,
    ranking: str = "auto",
    neuron_order: Sequence[int] | None = None,
    ranking_source: dict | None = None,
    incremental_probes: Sequence[ElasticNetProbe] | None = None,
    search_stride: int = 1000,
    search_chunk: int | None = None,
    metric: str | None = None,
    progress: Progress | None = None,
) -> PipelineResult:
    """The paper's efficient-transfer pipeline (LayerSelector -> CC -> FS) for every tolerance pair
    of ``grid`` and every clustering threshold of ``thresholds``.

    Parameters
    ----------
    train_store, dev_store, test_store : stores (or folders) of one task and model; ``train_store``
        may be a loaded :class:`redundancy.probe.ProbeTask` (then the others are ignored).
        ``test_store`` may be None (test scores NaN).
    grid : ``(delta_layer, delta_neuron)`` pairs in percent (the paper: (3, 1), (2, 1), (1, 1)).
    thresholds : clustering thresholds ``t``; None skips the clustering step (the paper: none and 0.3).
    probe : the probe template (default ``ElasticNetProbe(random_state=seed)``).
    seed : seed of the clustering's random representative per cluster.
    shares : feature-selection grid, shares of *all* neurons (the paper's 27, ``PIPELINE_SHARES``).
    ranking : how the kept neurons are ranked for feature selection. ``paper`` (the paper exactly)
        or ``abs``: by the weights of the probe on them (:func:`redundancy.select.rank_neurons`,
        ``search_stride``); any other ranking orders them as a ranking of *all* neurons does:
        ``neuron_order`` when given (the probe stage's, e.g. ``probe.json``'s ``ranking``; describe
        it in ``ranking_source``), else computed here on train from the oracle
        (:func:`redundancy.probe.neuron_rankings`) — for ``auto`` (the default) each of
        :data:`redundancy.select.RANKINGS`, the one whose top-k probes score best on dev.
    incremental_probes : the probes of step 1 already fitted (with ``probe``'s settings and seed, e.g.
        the probe stage's, ``run_task_redundancy(save_incremental=...)``): scored, not trained again.
    search_chunk : grid sizes trained together (nested top-k sets; default 25 fast, 1 paper);
        the answer is the same as one by one.
    metric : override the task's metric.
    progress : a :class:`redundancy._progress.Progress`, called with each step's name.

    Steps (all selection on dev, scores reported on test):

    1. incremental probes on layers 0..l for every l (one family; the last is the oracle);
    2. ``LayerSelector(delta_layer)``: lowest l with incremental dev strictly above
       ``oracle_dev * (1 - delta_layer / 100)``, else the last layer;
    3. if ``t`` is not None: correlation clustering of the neurons of layers 0..l (Pearson on the
       train items, distance ``1 - |r|``, average linkage, cut at ``t``, one random neuron per
       cluster seeded by ``seed``), a probe retrained on the kept neurons; its dev score ``CC_dev``
       is the reference of step 4 (without clustering: the incremental probe on 0..l);
    4. rank the kept neurons with that probe; retrain on the top k, ``k = int(p * all neurons)``
       for p in ``shares`` (sizes above the kept count skipped), and stop at the first k whose dev
       is strictly above ``CC_dev * (1 - delta_neuron / 100)``; if none, keep all clustered neurons.

    Work is shared: the probes of one (l, t) serve every pair that selects l, and correlations are
    computed once for the highest layer needed.
    """
    probe = ElasticNetProbe(random_state=seed) if probe is None else probe
    grid, thresholds = _check_grid(grid, thresholds)
    task = _as_task(train_store, dev_store, test_store, metric)
    timings = {"load": task.load_seconds}
    if search_chunk is None:
        search_chunk = 25 if probe.solver == "fast" else 1
    t0 = time.perf_counter()
    incremental = _incremental(task, probe, progress, incremental_probes)
    timings["incremental"] = time.perf_counter() - t0
    oracle = incremental[-1]
    logger.info("oracle dev %.4f test %.4f", oracle.dev, oracle.test)
    # layer selection for every delta_layer (cheap), to know how far correlations are needed
    selectors = {
        dl: LayerSelector(dl).fit([f.dev for f in incremental], oracle.dev) for dl in {a for a, _ in grid}
    }
    corr = None
    if any(t is not None for t in thresholds):
        t0 = time.perf_counter()
        top = max(s.selected_layer_ for s in selectors.values())
        corr = _train_correlation(task, (top + 1) * task.hidden)
        timings["correlation"] = time.perf_counter() - t0
    order, choice = _global_order(task, probe, oracle, ranking, neuron_order, ranking_source, seed, progress)
    settings = _Settings(seed, shares, ranking, search_stride, search_chunk, order)
    work = _Work(task, probe, incremental, corr, settings, progress)
    baseline = baseline_score(task, "dev")
    rows = _rows(work, grid, thresholds, selectors, baseline)
    timings.update(work.timings)
    timings["total"] = sum(timings.values())
    return _result(task, probe, work, rows, grid, thresholds, timings, baseline, choice)


def _global_order(
    task: ProbeTask,
    probe: ElasticNetProbe,
    oracle: _Fitted,
    ranking: str,
    neuron_order: Sequence[int] | None,
    source: dict | None,
    seed: int,
    progress: Progress | None,
) -> tuple[np.ndarray | None, dict | None]:
    """The ranking of all neurons that orders the kept ones (None for ``paper``/``abs``), and the
    record of where it came from."""
    if ranking not in RANKING_METHODS:
        raise ValueError(f"ranking must be one of {RANKING_METHODS}, got {ranking!r}")
    if ranking in WEIGHT_RANKINGS:
        if neuron_order is not None:
            logger.warning("neuron_order is not used with ranking=%r (the probes' own weights rank)", ranking)
        return None, None
    if neuron_order is not None:
        order = np.asarray(neuron_order, dtype=np.int64)
        if order.shape != (task.n_neurons,) or not np.array_equal(np.sort(order), np.arange(task.n_neurons)):
            raise ValueError(f"neuron_order must be a permutation of the {task.n_neurons} neurons")
        info = dict(source or {})
        info.setdefault("method", ranking)
        return order, {"setting": ranking, "source": "given"} | info
    methods = [m for m in RANKINGS if m != "probeless" or task.label_type != "real"]
    methods = methods if ranking == "auto" else [ranking]
    orders, _ = neuron_rankings(
        task, methods, oracle.estimator, seed=seed, path=PathSettings(), progress=progress
    )
    if ranking != "auto":
        return orders[ranking], {
            "setting": ranking,
            "method": ranking,
            "source": "computed",
            "reason": "asked for",
        }
    sizes = grid_sizes(task.n_neurons, CONTROL_SHARES)
    method, choice = choose_ranking("auto", top_curves(task, probe, orders, sizes, progress))
    logger.info("pipeline ranking: %s", choice["reason"])
    return orders[method], choice | {"source": "computed"}
