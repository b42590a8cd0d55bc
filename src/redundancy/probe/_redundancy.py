"""The task-specific stage: every experiment of :mod:`._experiments` on one task, timed, as one
:class:`TaskRedundancyResult`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import numpy as np
from sklearn.base import clone

from .._progress import Progress
from ..select import CONTROL_SHARES, MINIMAL_SET_SHARES, grid_sizes, rank_neurons
from ..store import package_versions
from ._estimator import ElasticNetProbe
from ._experiments import LayerProbes, layer_probes, minimal_neuron_set, neuron_controls
from ._results import ControlsResult, MinimalSetResult, TaskRedundancyResult
from ._task import ProbeTask, StoreRef, load_probe_task

logger = logging.getLogger(__name__)


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Record the seconds the block takes as ``timings[key]``."""
    t = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - t


def _as_task(
    train: StoreRef | ProbeTask, dev: StoreRef | None, test: StoreRef | None, metric: str | None
) -> ProbeTask:
    if isinstance(train, ProbeTask):
        return train
    if dev is None:
        raise ValueError("a dev store is needed (model selection and the minimal-set criterion use dev)")
    return load_probe_task(train, dev, test, metric=metric)


def _neuron_order(
    task: ProbeTask,
    layers: LayerProbes,
    ranking_probe: ElasticNetProbe | None,
    ranking: str,
    search_stride: int,
) -> np.ndarray:
    """All neurons ranked by the oracle's weights (or by ``ranking_probe`` trained on all of them)."""
    ranker = layers.estimator
    if ranking_probe is not None:
        ranker = clone(ranking_probe).fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
    return rank_neurons(ranker.scaled_coef_, ranking, search_stride=search_stride)


def _controls(
    task: ProbeTask,
    probe: ElasticNetProbe,
    order: np.ndarray,
    minimal: MinimalSetResult,
    control_shares: Sequence[float],
    n_random: int,
    probe_seeds: int,
    progress: Progress | None,
) -> ControlsResult:
    """The controls at the sizes of ``control_shares`` and the minimal set's k (when found)."""
    sizes = set(grid_sizes(task.n_neurons, control_shares))
    if minimal.found:
        sizes.add(minimal.k)
    return neuron_controls(
        task,
        probe,
        order,
        sorted(sizes),
        n_random=n_random,
        probe_seeds=probe_seeds,
        random_state=int(probe.random_state),
        progress=progress,
    )


def _log_layers(task: ProbeTask, layers: LayerProbes, seconds: float) -> None:
    oracle = layers.oracle
    logger.info(
        "oracle %s dev %.4f test %.4f (%.1fs for %d layer probes)",
        task.metric,
        oracle.dev_score,
        oracle.test_score,
        seconds,
        2 * task.n_layers - 1,
    )


def _log_minimal(minimal: MinimalSetResult) -> None:
    logger.info(
        "minimal set: k=%d (%.1f%%), dev %.4f test %.4f",
        minimal.k,
        100 * minimal.share,
        minimal.result.dev_score,
        minimal.result.test_score,
    )


def _redundancy_result(
    task: ProbeTask,
    probe: ElasticNetProbe,
    layers: LayerProbes,
    ranking: str,
    order: np.ndarray,
    minimal: MinimalSetResult,
    controls: ControlsResult | None,
    timings: dict[str, float],
    ranking_probe: ElasticNetProbe | None,
) -> TaskRedundancyResult:
    m = task.train.store.manifest
    versions = dict(package_versions(("numpy", "torch", "scikit-learn", "scipy", "seqeval")))
    return TaskRedundancyResult(
        task=m.task,
        metric=task.metric,
        label_type=m.label_type,
        model=m.model,
        n_layers=task.n_layers,
        hidden=task.hidden,
        n_neurons=task.n_neurons,
        train=task.train.info,
        dev=task.dev.info,
        test=None if task.test is None else task.test.info,
        solver=probe.solver,
        probe_params={k: v for k, v in probe.get_params().items()},
        classes=() if task.label_map is None else task.label_map.classes,
        oracle=layers.oracle,
        layerwise=layers.layerwise,
        incremental=layers.incremental,
        ranking_method=ranking,
        ranking=tuple(int(i) for i in order),
        minimal=minimal,
        controls=controls,
        timings=timings,
        versions=versions,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        random_state=int(probe.random_state),
        ranking_probe=None if ranking_probe is None else dict(ranking_probe.get_params()),
    )


def run_task_redundancy(
    train: StoreRef | ProbeTask,
    dev: StoreRef | None = None,
    test: StoreRef | None = None,
    *,
    probe: ElasticNetProbe | None = None,
    delta: float = 1.0,
    ranking: str = "paper",
    search_stride: int = 1000,
    ranking_probe: ElasticNetProbe | None = None,
    shares: Sequence[float] = MINIMAL_SET_SHARES,
    search_chunk: int | None = None,
    max_search_seconds: float | None = None,
    controls: bool = True,
    control_shares: Sequence[float] = CONTROL_SHARES,
    n_random: int = 3,
    probe_seeds: int = 3,
    metric: str | None = None,
    progress: Progress | None = None,
) -> TaskRedundancyResult:
    """The whole task-specific analysis of one task: oracle, layer-wise and incremental probes,
    neuron ranking from the oracle, the minimal neuron set (dev within ``delta`` percent of the
    oracle; test reported) and, if ``controls``, random / bottom neurons at the same k and the
    oracle over ``probe_seeds`` seeds.

    Parameters
    ----------
    train, dev, test : stores (or folders) of one task and model; ``train`` may be a loaded
        :class:`ProbeTask` (then ``dev``/``test`` are ignored).
    probe : the probe template (default ``ElasticNetProbe()``: fast solver, l1 = l2 = 1e-5).
    delta : tolerance in percent for the minimal set (the paper: 1).
    ranking : ``paper`` (class-wise weight mass) or ``abs``; ``search_stride`` for ``paper``.
    ranking_probe : rank with this probe, trained on all neurons, instead of the oracle (not in the
        paper). With the paper's tiny penalty, weights spread over correlated neurons and the top
        of the ranking is no better than random neurons (see docs/probe.md); a sparser probe
        (e.g. ``ElasticNetProbe(l1=3e-3)``) ranks much better.
    shares : the grid of the minimal-set search (default: the paper's, 0.1 % steps to 10 %, then
        15-50 % by 5, 60-90 % by 10).
    control_shares : sizes for the controls' curves (the minimal k is added).
    n_random : draws of random neurons; probe_seeds : seeds of the oracle probe (0 to skip).
    metric : override the task's metric.
    progress : a :class:`redundancy._progress.Progress`, called with each experiment's name.
    """
    probe = ElasticNetProbe() if probe is None else probe
    task = _as_task(train, dev, test, metric)
    timings = {"load": task.load_seconds}
    with _timed(timings, "layers"):
        layers = layer_probes(task, probe, progress=progress)
    _log_layers(task, layers, timings["layers"])
    with _timed(timings, "ranking"):
        order = _neuron_order(task, layers, ranking_probe, ranking, search_stride)
    with _timed(timings, "minimal_set"):
        minimal = minimal_neuron_set(
            task,
            probe,
            order,
            layers.oracle,
            delta=delta,
            shares=shares,
            ranking_method=ranking,
            chunk=search_chunk,
            max_seconds=max_search_seconds,
            progress=progress,
        )
    _log_minimal(minimal)
    timings["analysis"] = timings["load"] + timings["layers"] + timings["ranking"] + timings["minimal_set"]
    ctrl = None
    if controls:
        with _timed(timings, "controls"):
            ctrl = _controls(task, probe, order, minimal, control_shares, n_random, probe_seeds, progress)
    timings["total"] = sum(v for k, v in timings.items() if k != "analysis")
    return _redundancy_result(task, probe, layers, ranking, order, minimal, ctrl, timings, ranking_probe)
