"""The efficient-transfer pipeline: LayerSelector -> correlation clustering -> feature selection."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sklearn.base import clone

from ..general import CorrelationClusterer, NeuronStats
from ..probe import (
    ElasticNetProbe,
    ProbeTask,
    baseline_score,
    evaluate_probe,
    fit_probe_family,
    load_probe_task,
    select_columns,
    train_neuron_sets,
)
from ..probe._experiments import Progress
from ..select import (
    PIPELINE_SHARES,
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


def _stage(progress: Progress | None, stage: str):
    return None if progress is None else (lambda done, total: progress(stage, done, total))


def _train_correlation(task: ProbeTask, n_cols: int) -> np.ndarray:
    """Pearson correlations of the first ``n_cols`` neurons (whole layers) on the train items,
    from :class:`redundancy.general.NeuronStats` (one float64 streaming pass)."""
    h = task.hidden
    stats = NeuronStats(n_cols // h, h)
    X = task.X_train
    for start in range(0, X.shape[0], _STATS_ROWS):
        stats.update(X[start : start + _STATS_ROWS, :n_cols])
    return stats.compute(correlation=True).correlation


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
    ranking: str = "paper",
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
    ranking, search_stride : how kept neurons are ranked (:func:`redundancy.select.rank_neurons`).
    search_chunk : grid sizes trained together (nested top-k sets; default 25 fast, 1 paper);
        the answer is the same as one by one.
    metric : override the task's metric.

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
    grid = tuple((float(a), float(b)) for a, b in grid)
    thresholds = tuple(None if t is None else float(t) for t in thresholds)
    if not grid or not thresholds:
        raise ValueError("grid and thresholds must not be empty")
    for t in thresholds:
        if t is not None and not (np.isfinite(t) and t >= 0):
            raise ValueError(f"thresholds must be None or finite and >= 0, got {t}")
    if isinstance(train_store, ProbeTask):
        task = train_store
    else:
        if dev_store is None:
            raise ValueError("a dev store is needed (every selection step uses dev)")
        task = load_probe_task(train_store, dev_store, test_store, metric=metric)
    timings = {"load": task.load_seconds}
    L, h, N = task.n_layers, task.hidden, task.n_neurons
    if search_chunk is None:
        search_chunk = 25 if probe.solver == "fast" else 1

    # 1. incremental probes (one family: nested column ranges 0..(l+1)h)
    t0 = time.perf_counter()
    fitted = fit_probe_family(
        probe,
        task.X_train,
        task.train.y,
        [[(0, (i + 1) * h)] for i in range(L)],
        task.X_dev,
        task.dev.y,
        progress=_stage(progress, "incremental"),
    )
    incremental = []
    for i, est in enumerate(fitted):
        cols = np.arange((i + 1) * h)
        dev, test = _score(task, est, cols, "dev"), _score(task, est, cols, "test")
        incremental.append(_Fitted(cols, dev, test, est))
    oracle = incremental[-1]
    timings["incremental"] = time.perf_counter() - t0
    logger.info("oracle dev %.4f test %.4f", oracle.dev, oracle.test)

    # 2. layer selection for every delta_layer (cheap), to know how far correlations are needed
    selectors = {
        dl: LayerSelector(dl).fit([f.dev for f in incremental], oracle.dev) for dl in {a for a, _ in grid}
    }
    corr = None
    if any(t is not None for t in thresholds):
        t0 = time.perf_counter()
        top = max(s.selected_layer_ for s in selectors.values())
        corr = _train_correlation(task, (top + 1) * h)
        timings["correlation"] = time.perf_counter() - t0

    clustered: dict[tuple[int, float | None], _Fitted] = {}
    scans: dict[tuple[int, float | None], tuple[np.ndarray, dict[int, tuple[np.ndarray, float, float]]]] = {}
    timings["clustering"] = 0.0
    timings["selection"] = 0.0

    def cluster_step(layer: int, t: float | None) -> _Fitted:
        key = (layer, t)
        if key not in clustered:
            if t is None:
                clustered[key] = incremental[layer]
            else:
                t1 = time.perf_counter()
                m = (layer + 1) * h
                cc = CorrelationClusterer(t, representative="random", random_state=seed).fit(
                    corr[:m, :m], layer_of=np.repeat(np.arange(layer + 1), h)
                )
                kept = np.sort(np.asarray(cc.representatives_, dtype=np.int64))
                est = clone(probe).fit(
                    select_columns(task.X_train, kept),
                    task.train.y,
                    select_columns(task.X_dev, kept),
                    task.dev.y,
                )
                dev, test = _score(task, est, kept, "dev"), _score(task, est, kept, "test")
                clustered[key] = _Fitted(kept, dev, test, est)
                timings["clustering"] += time.perf_counter() - t1
                logger.info(
                    "layers 0..%d, t=%g: %d of %d neurons kept, dev %.4f", layer, t, kept.size, m, dev
                )
        return clustered[key]

    def feature_selection(layer: int, t: float | None, delta_neuron: float):
        """(neurons, dev, test, passed) of the first passing top-k, else of the clustered probe."""
        base = cluster_step(layer, t)
        key = (layer, t)
        if key not in scans:
            rank = rank_neurons(base.estimator.scaled_coef_, ranking, search_stride=search_stride)
            order = base.neurons[rank]
            scans[key] = (order, {})
        order, done = scans[key]
        sizes = grid_sizes(N, shares, max_size=base.neurons.size)
        target = tolerance_target(base.dev, delta_neuron)
        t1 = time.perf_counter()

        def evaluate(part: list[int]) -> list[float]:
            todo = [k for k in part if k not in done]
            if todo:
                res = train_neuron_sets(
                    task,
                    probe,
                    [order[:k] for k in todo],
                    [f"top-{k}" for k in todo],
                    stage=f"feature selection (0..{layer}, t={t})",
                    progress=progress,
                )
                for k, r in zip(todo, res, strict=True):
                    done[k] = (order[:k], r.dev_score, r.test_score)
            return [done[k][1] for k in part]

        outcome = search_minimal_size(sizes, evaluate, target, chunk=search_chunk, budget=N)
        timings["selection"] += time.perf_counter() - t1
        if outcome.size is None:
            return base.neurons, base.dev, base.test, False
        neurons, dev, test = done[outcome.size]
        return neurons, dev, test, True

    baseline = baseline_score(task, "dev")
    rows = []
    for delta_layer, delta_neuron in grid:
        sel = selectors[delta_layer]
        layer = int(sel.selected_layer_)
        inc = incremental[layer]
        for t in thresholds:
            base = cluster_step(layer, t)
            neurons, dev, test, passed = feature_selection(layer, t, delta_neuron)
            row = PipelineRow(
                delta_layer=delta_layer,
                delta_neuron=delta_neuron,
                threshold=t,
                oracle_dev=oracle.dev,
                oracle_test=oracle.test,
                selected_layer=layer,
                layer_passed=bool(sel.passed_),
                n_layer_neurons=int(inc.neurons.size),
                layer_dev=inc.dev,
                layer_test=inc.test,
                n_after_clustering=int(base.neurons.size),
                cc_dev=base.dev,
                cc_test=base.test,
                n_selected=int(len(neurons)),
                fs_passed=passed,
                share_of_all=len(neurons) / N,
                dev=float(dev),
                test=float(test),
                share_of_oracle=float(test) / oracle.test if oracle.test else float("nan"),
                neurons=tuple(sorted(int(i) for i in neurons)),
                clustered_neurons=tuple(sorted(int(i) for i in base.neurons)),
            )
            logger.info(
                "delta (%g, %g), t=%s: layer %d, %d -> %d -> %d neurons, dev %.4f test %.4f",
                delta_layer,
                delta_neuron,
                t,
                layer,
                inc.neurons.size,
                base.neurons.size,
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
                    delta_layer,
                    delta_neuron,
                    t,
                    layer,
                    row.n_selected,
                    row.dev,
                    baseline,
                    layer,
                )
            rows.append(row)
    timings["total"] = sum(timings.values())

    m = task.train.store.manifest
    return PipelineResult(
        task=m.task,
        metric=task.metric,
        model=m.model,
        n_layers=L,
        hidden=h,
        n_neurons=N,
        grid=grid,
        thresholds=thresholds,
        ranking_method=ranking,
        shares=tuple(float(s) for s in shares),
        seed=int(seed),
        probe_seed=int(probe.random_state),
        solver=probe.solver,
        probe_params=dict(probe.get_params()),
        train=task.train.info,
        dev=task.dev.info,
        test=None if task.test is None else task.test.info,
        incremental_dev=tuple(f.dev for f in incremental),
        incremental_test=tuple(f.test for f in incremental),
        rows=tuple(rows),
        timings=timings,
        versions=dict(package_versions(("numpy", "torch", "scikit-learn", "scipy", "fastcluster"))),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        baseline_dev=baseline,
    )
