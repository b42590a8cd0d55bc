"""The task-specific stage: every experiment of :mod:`._experiments` on one task, timed, as one
:class:`TaskRedundancyResult`."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.base import clone

from .._progress import Progress
from ..select import CONTROL_SHARES, MINIMAL_SET_SHARES, RANKING_METHODS, RANKINGS, grid_sizes
from ..store import package_versions
from ._compare import choose_ranking, ranking_controls, top_curves
from ._estimator import ElasticNetProbe
from ._experiments import LayerProbes, layer_probes, minimal_neuron_set
from ._io import save_probe
from ._rankings import PathSettings, applicable, neuron_rankings
from ._results import ControlsResult, MinimalSetResult, TaskRedundancyResult
from ._selectivity import selectivity
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


def _ranker(task: ProbeTask, layers: LayerProbes, ranking_probe: ElasticNetProbe | None) -> ElasticNetProbe:
    """The probe whose weights give the weight rankings: the oracle, or ``ranking_probe`` trained on
    all neurons."""
    if ranking_probe is None:
        return layers.estimator
    return clone(ranking_probe).fit(task.X_train, task.train.y, task.X_dev, task.dev.y)


def _methods(ranking: str, rankings: Sequence[str], task: ProbeTask) -> tuple[str, ...]:
    """The rankings to compute: ``rankings`` and the one asked for (checked, in a stable order)."""
    if ranking not in RANKING_METHODS:
        raise ValueError(f"ranking must be one of {RANKING_METHODS}, got {ranking!r}")
    bad = [m for m in rankings if m not in RANKING_METHODS or m == "auto"]
    if bad:
        raise ValueError(f"rankings must be among {RANKING_METHODS[1:]}, got {bad}")
    methods = tuple(dict.fromkeys([*rankings, *([] if ranking == "auto" else [ranking])]))
    methods = applicable(methods, task)
    if not methods:
        raise ValueError("no ranking to compute for ranking='auto' (rankings is empty)")
    if ranking != "auto" and ranking not in methods:
        raise ValueError(f"the {ranking} ranking does not apply to this task (real-valued labels)")
    return methods


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
    orders: dict[str, np.ndarray],
    choice: dict,
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
        ranking=tuple(int(i) for i in orders[ranking]),
        minimal=minimal,
        controls=controls,
        timings=timings,
        versions=versions,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        random_state=int(probe.random_state),
        ranking_probe=None if ranking_probe is None else dict(ranking_probe.get_params()),
        ranking_choice=choice,
        rankings={m: tuple(int(i) for i in o) for m, o in orders.items()},
    )


def run_task_redundancy(
    train: StoreRef | ProbeTask,
    dev: StoreRef | None = None,
    test: StoreRef | None = None,
    *,
    probe: ElasticNetProbe | None = None,
    delta: float = 1.0,
    ranking: str = "auto",
    rankings: Sequence[str] = RANKINGS,
    search_stride: int = 1000,
    ranking_probe: ElasticNetProbe | None = None,
    shares: Sequence[float] = MINIMAL_SET_SHARES,
    search_chunk: int | None = None,
    max_search_seconds: float | None = None,
    controls: bool = True,
    control_shares: Sequence[float] = CONTROL_SHARES,
    n_random: int = 5,
    probe_seeds: int = 3,
    ablation_shares: Sequence[float] = (0.01, 0.05, 0.1),
    ablation_mode: str = "mean",
    path: PathSettings | None = None,
    save_oracle: str | os.PathLike | None = None,
    save_incremental: str | os.PathLike | None = None,
    metric: str | None = None,
    control_words: Mapping[str, Sequence[str]] | None = None,
    control_seed: int = 0,
    fit_family: Callable[..., list[ElasticNetProbe]] | None = None,
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
    ranking : the ranking of the minimal set and of the controls' headline curves: ``auto`` (the
        default: of ``rankings``, the one whose top-k probes at the controls' sizes score best on
        dev, on average), ``paper`` (the class-wise weight mass of the oracle: the paper exactly),
        ``group-lasso`` / ``l1-path`` (entry order of a sparse path on train), ``probeless``
        (NeuroX's class-mean spread) or ``abs``; ``search_stride`` for ``paper``.
    rankings : the rankings computed and compared (default all of :data:`redundancy.select.RANKINGS`).
    ranking_probe : rank with this probe, trained on all neurons, instead of the oracle (not in the
        paper). With the paper's tiny penalty, weights spread over correlated neurons and the top
        of the ranking is no better than random neurons (see docs/probe.md); a sparser probe
        (e.g. ``ElasticNetProbe(l1=3e-3)``) ranks much better.
    shares : the grid of the minimal-set search (default: the paper's, 0.1 % steps to 10 %, then
        15-50 % by 5, 60-90 % by 10).
    control_shares : sizes for the controls' curves (the minimal k is added).
    n_random : draws of random neurons; probe_seeds : seeds of the oracle probe (0 to skip).
    ablation_shares, ablation_mode : offline ablation in the oracle probe of each ranking's top k
        (k = share of all neurons) and of ``n_random`` random k, columns set to their train
        ``mean`` or to ``zero``; empty shares skip it.
    path : how the path rankings walk their penalty (:class:`PathSettings`).
    save_oracle : also write the fitted oracle probe there (:func:`redundancy.probe.save_probe`;
        the in-model ablation scores it).
    save_incremental : also write the fitted incremental probes (layers 0..l, every l) into this
        folder as ``incremental-{l}.safetensors`` (:func:`redundancy.pipeline.run_pipeline` can start
        from them instead of training them again).
    metric : override the task's metric.
    control_words : the labelled items' word forms per split (``train``, ``dev``, ``test``; see
        :func:`item_words`): also train the same layer family and the minimal set on the control task
        of Hewitt & Liang (seed ``control_seed``) and report every probe's selectivity.
    fit_family : trains the layer family (per-layer, incremental, oracle) instead of
        :func:`fit_probe_family` (same arguments): e.g. ``redundancy.scale.EngineFamily``, which
        splits it over an engine's workers.
    progress : a :class:`redundancy._progress.Progress`, called with each experiment's name.
    """
    probe = ElasticNetProbe() if probe is None else probe
    task = _as_task(train, dev, test, metric)
    # without controls nothing compares the rankings: compute only the one asked for
    methods = _methods(ranking, rankings if controls or ranking == "auto" else (), task)
    if controls and n_random < 1:
        raise ValueError(f"n_random must be >= 1 for the controls, got {n_random}")
    timings = {"load": task.load_seconds}
    with _timed(timings, "layers"):
        layers = layer_probes(task, probe, progress=progress, fit_family=fit_family)
    _log_layers(task, layers, timings["layers"])
    if save_oracle is not None:
        Path(save_oracle).parent.mkdir(parents=True, exist_ok=True)
        save_probe(layers.estimator, save_oracle)
    if save_incremental is not None:
        Path(save_incremental).mkdir(parents=True, exist_ok=True)
        for layer, est in enumerate(layers.incremental_estimators):
            save_probe(est, Path(save_incremental) / incremental_file(layer))
    with _timed(timings, "ranking"):
        ranker = _ranker(task, layers, ranking_probe)
        seed = int(probe.random_state)
        orders, rank_seconds = neuron_rankings(
            task,
            methods,
            ranker,
            search_stride=search_stride,
            seed=seed,
            path=path or PathSettings(),
            progress=progress,
        )
    sizes = grid_sizes(task.n_neurons, control_shares)
    with _timed(timings, "ranking_choice"):
        need_tops = controls or (ranking == "auto" and len(orders) > 1)
        tops = top_curves(task, probe, orders, sizes, progress) if need_tops else {}
        if tops:
            chosen, choice = choose_ranking(ranking, tops)
        else:
            chosen = methods[0] if ranking == "auto" else ranking
            choice = _only(chosen, ranking)
    logger.info("%s: %s", task.train.store.manifest.task, choice["reason"])
    with _timed(timings, "minimal_set"):
        minimal = minimal_neuron_set(
            task,
            probe,
            orders[chosen],
            layers.oracle,
            delta=delta,
            shares=shares,
            ranking_method=chosen,
            chunk=search_chunk,
            max_seconds=max_search_seconds,
            progress=progress,
        )
    _log_minimal(minimal)
    timings["analysis"] = sum(
        timings[k] for k in ("load", "layers", "ranking", "ranking_choice", "minimal_set")
    )
    ctrl = None
    if controls:
        with _timed(timings, "controls"):
            ctrl = ranking_controls(
                task,
                probe,
                layers.estimator,
                orders,
                tops,
                sizes,
                chosen,
                minimal,
                n_random=n_random,
                probe_seeds=probe_seeds,
                random_state=seed,
                ablation_sizes=grid_sizes(task.n_neurons, ablation_shares),
                ablation_mode=ablation_mode,
                seconds=rank_seconds,
                progress=progress,
            )
    sel = None
    if control_words is not None:
        with _timed(timings, "selectivity"):
            real = [*layers.layerwise, *layers.incremental, layers.oracle]
            real.append(dataclasses.replace(minimal.result, name="minimal"))
            sel = selectivity(
                task,
                probe,
                control_words,
                real,
                np.asarray(minimal.neurons),
                seed=control_seed,
                progress=progress,
            )
    timings["total"] = sum(v for k, v in timings.items() if k != "analysis")
    result = _redundancy_result(
        task, probe, layers, chosen, orders, choice, minimal, ctrl, timings, ranking_probe
    )
    return result if sel is None else dataclasses.replace(result, selectivity=sel)


def incremental_file(layer: int) -> str:
    """The file name of the incremental probe on layers 0..``layer`` (``save_incremental``)."""
    return f"incremental-{int(layer)}.safetensors"


def _only(method: str, setting: str) -> dict:
    """The choice record when nothing was compared."""
    why = "the only ranking computed" if setting == "auto" else f"ranking = {setting!r} was asked for"
    return {"setting": setting, "method": method, "reason": why, "scores": {}}
