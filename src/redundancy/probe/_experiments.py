"""Task-specific redundancy: oracle, layer-wise and incremental probes, neuron ranking, the minimal
neuron set, and controls (random / bottom-ranked neurons at the same k, probe seeds).

Every experiment trains *families* of probes through :func:`fit_probe_family`: with the fast solver
the probes of a family share one pass over the data (per-layer + incremental + oracle together;
the nested top-k sets of a ranking together); with the paper solver they are trained one by one,
exactly as the authors did. The train activations are loaded into memory once (``n x n_neurons``
float32: 1.6 GB for 150k words of a 7 x 384 model).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from ..select import (
    CONTROL_SHARES,
    MINIMAL_SET_SHARES,
    grid_sizes,
    rank_neurons,
    search_minimal_size,
    tolerance_target,
)
from ..store import ActivationStore, package_versions
from ._data import LabelMap, ProbeSplit, check_compatible, load_split
from ._estimator import ElasticNetProbe, fit_probe_family
from ._fast import activations_tensor
from ._metrics import default_metric, score_all
from ._results import (
    ControlsResult,
    CurveResult,
    MinimalSetResult,
    ProbeResult,
    SeedSpread,
    TaskRedundancyResult,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as training advances (the CLI draws bars with it)."""


@dataclass(eq=False)
class ProbeTask:
    """Train/dev/test of one task, labels aligned by name, activations loaded once.

    Build it with :func:`load_probe_task`. ``X_train``/``X_dev``/``X_test`` hold every neuron of
    the labelled items (float32); experiments select columns from them.
    """

    train: ProbeSplit
    dev: ProbeSplit
    test: ProbeSplit | None
    label_map: LabelMap | None
    metric: str
    X_train: np.ndarray
    X_dev: np.ndarray
    X_test: np.ndarray | None
    load_seconds: float

    @property
    def n_layers(self) -> int:
        return self.train.store.n_layers

    @property
    def hidden(self) -> int:
        return self.train.store.hidden

    @property
    def n_neurons(self) -> int:
        return self.train.store.n_neurons

    @property
    def label_type(self) -> str:
        return self.train.store.manifest.label_type


def _open(s: ActivationStore | str | os.PathLike) -> ActivationStore:
    return s if isinstance(s, ActivationStore) else ActivationStore.open(s)


def load_probe_task(
    train: ActivationStore | str | os.PathLike,
    dev: ActivationStore | str | os.PathLike,
    test: ActivationStore | str | os.PathLike | None = None,
    *,
    metric: str | None = None,
) -> ProbeTask:
    """Open the stores, check they match, map dev/test labels onto train's by name, load activations."""
    t0 = time.perf_counter()
    tr, dv = _open(train), _open(dev)
    te = None if test is None else _open(test)
    check_compatible(tr, *(s for s in (dv, te) if s is not None))
    label_map = LabelMap.from_store(tr) if tr.manifest.label_type == "class" else None
    sp_tr = load_split(tr, label_map)
    sp_dv = load_split(dv, label_map)
    sp_te = None if te is None else load_split(te, label_map)
    metric = metric or default_metric(tr.manifest.task, tr.manifest.label_type)
    X_tr = sp_tr.read()
    X_dv = sp_dv.read()
    X_te = None if sp_te is None else sp_te.read()
    seconds = time.perf_counter() - t0
    logger.info(
        "loaded %s: train %s, dev %s, test %s in %.1fs",
        tr.manifest.task,
        X_tr.shape,
        X_dv.shape,
        None if X_te is None else X_te.shape,
        seconds,
    )
    return ProbeTask(sp_tr, sp_dv, sp_te, label_map, metric, X_tr, X_dv, X_te, seconds)


# --------------------------------------------------------------------------- evaluation


def select_columns(X: np.ndarray, neurons: np.ndarray) -> np.ndarray:
    """``X[:, neurons]`` (``X``: activations, possibly a read-only view of a store's memory map): a
    view for one contiguous increasing range, else a row-major float32 copy
    (``torch.index_select``: faster than ``np.take``, and unlike numpy's fancy indexing its result
    is C-ordered, which the row gathers of minibatch training need)."""
    neurons = np.asarray(neurons, dtype=np.int64)
    if neurons.size and neurons[-1] - neurons[0] + 1 == neurons.size and np.all(np.diff(neurons) == 1):
        return X[:, neurons[0] : neurons[-1] + 1]
    if X.dtype == np.float32 and X.flags.c_contiguous:
        return torch.index_select(activations_tensor(X), 1, torch.from_numpy(neurons)).numpy()
    return np.take(X, neurons, axis=1)


def _scores(task: ProbeTask, split: str, pred: np.ndarray) -> dict[str, float]:
    sp = task.dev if split == "dev" else task.test
    kwargs: dict[str, Any] = {}
    if task.label_map is not None:
        kwargs = {
            "class_names": list(task.label_map.classes) + list(sp.unseen),
            "sentence_ids": sp.sentence_ids,
            "positions": sp.positions,
        }
    return score_all(task.metric, task.label_type, sp.y, pred, **kwargs)


def baseline_score(task: ProbeTask, split: str = "dev") -> float:
    """Score of a constant prediction on ``split``: train's most frequent class (NaN for regression,
    whose correlations are undefined for a constant). A probe that does not beat it has learned
    nothing from its neurons (e.g. a constant [CLS] embedding layer)."""
    sp = task.dev if split == "dev" else task.test
    if sp is None:
        raise ValueError(f"no {split} split")
    if task.label_map is None:
        return float("nan")
    majority = int(np.bincount(task.train.y[task.train.y >= 0]).argmax())
    return float(_scores(task, split, np.full(sp.y.shape, majority, dtype=np.int64))[task.metric])


def evaluate_probe(
    task: ProbeTask, probe: ElasticNetProbe, neurons: np.ndarray, split: str
) -> dict[str, float]:
    """Scores of ``probe`` (trained on ``neurons``) on ``split`` (``dev`` or ``test``)."""
    sp, X = (task.dev, task.X_dev) if split == "dev" else (task.test, task.X_test)
    if sp is None or X is None:
        raise ValueError(f"no {split} split")
    return _scores(task, split, probe.predict_ids(select_columns(X, neurons)))


def _result(
    task: ProbeTask,
    probe: ElasticNetProbe,
    neurons: np.ndarray,
    name: str,
    layers: Sequence[int] | None = None,
    *,
    X_dev: np.ndarray | None = None,
    X_test: np.ndarray | None = None,
) -> ProbeResult:
    """Score a fitted probe; ``X_dev``/``X_test`` may hold its columns already (else they are taken)."""
    X_dev = select_columns(task.X_dev, neurons) if X_dev is None else X_dev
    if task.test is not None and X_test is None:
        X_test = select_columns(task.X_test, neurons)
    return ProbeResult(
        name=name,
        n_neurons=int(neurons.size),
        layers=None if layers is None else tuple(int(i) for i in layers),
        neurons=None if layers is not None else tuple(int(i) for i in neurons),
        metric=task.metric,
        dev=_scores(task, "dev", probe.predict_ids(X_dev)),
        test=None if task.test is None else _scores(task, "test", probe.predict_ids(X_test)),
        seed=int(probe.random_state),
        settings=dict(probe.solver_settings_),
        n_steps=int(probe.n_iter_),
        n_epochs=float(probe.n_epochs_),
        fit_seconds=float(probe.fit_seconds_),
    )


def _stage(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(stage, done, total))


def train_neuron_sets(
    task: ProbeTask,
    probe: ElasticNetProbe,
    neuron_sets: Sequence[np.ndarray],
    names: Sequence[str],
    *,
    stage: str = "probes",
    progress: Progress | None = None,
) -> list[ProbeResult]:
    """Train one probe per neuron set and score it. Nested sets (each a prefix of the last) are
    trained as one family over the columns of the largest (one pass with the fast solver)."""
    sets = [np.asarray(s, dtype=np.int64) for s in neuron_sets]
    if not sets:
        return []
    longest = max(sets, key=len)
    nested = all(np.array_equal(s, longest[: s.size]) for s in sets)
    if not nested:
        out = []
        for i, (s, n) in enumerate(zip(sets, names, strict=True)):
            p = clone(probe).fit(
                select_columns(task.X_train, s), task.train.y, select_columns(task.X_dev, s), task.dev.y
            )
            out.append(_result(task, p, s, n))
            if progress is not None:
                progress(stage, i + 1, len(sets))
        return out
    # columns of the largest set, taken once per split; every probe reads a prefix of them
    X = select_columns(task.X_train, longest)
    Xd = select_columns(task.X_dev, longest)
    Xt = None if task.X_test is None else select_columns(task.X_test, longest)
    ranges = [[(0, int(s.size))] for s in sets]
    probes = fit_probe_family(
        probe, X, task.train.y, ranges, Xd, task.dev.y, progress=_stage(progress, stage)
    )
    return [
        _result(task, p, s, n, X_dev=Xd[:, : s.size], X_test=None if Xt is None else Xt[:, : s.size])
        for p, s, n in zip(probes, sets, names, strict=True)
    ]


# --------------------------------------------------------------------------- experiments


@dataclass(frozen=True, eq=False)
class LayerProbes:
    """The layer experiments: ``oracle`` (all layers), ``layerwise`` (one per layer),
    ``incremental`` (layers 0..l; the last is the oracle), and the fitted oracle ``estimator``."""

    oracle: ProbeResult
    layerwise: tuple[ProbeResult, ...]
    incremental: tuple[ProbeResult, ...]
    estimator: ElasticNetProbe


def layer_probes(task: ProbeTask, probe: ElasticNetProbe, *, progress: Progress | None = None) -> LayerProbes:
    """The oracle (all layers), one probe per layer, and incremental probes on layers 0..l.

    The incremental probe on every layer *is* the oracle, and the one on layer 0 is the layer-0
    probe: each is trained once and reported under both names. With the fast solver all
    ``2 * n_layers - 1`` distinct probes share one pass over the data.
    """
    L, h = task.n_layers, task.hidden
    ranges = [[(i * h, (i + 1) * h)] for i in range(L)] + [[(0, (i + 1) * h)] for i in range(1, L)]
    fitted = fit_probe_family(
        probe, task.X_train, task.train.y, ranges, task.X_dev, task.dev.y, progress=_stage(progress, "layers")
    )
    layerwise = tuple(
        _result(task, fitted[i], np.arange(i * h, (i + 1) * h), f"layer-{i}", [i]) for i in range(L)
    )
    if L == 1:
        oracle = _result(task, fitted[0], np.arange(h), "oracle", [0])
        return LayerProbes(oracle, layerwise, (oracle,), fitted[0])
    incremental = [layerwise[0]]
    for top in range(1, L):
        name = "oracle" if top == L - 1 else f"layers-0..{top}"
        incremental.append(
            _result(task, fitted[L + top - 1], np.arange((top + 1) * h), name, list(range(top + 1)))
        )
    return LayerProbes(incremental[-1], layerwise, tuple(incremental), fitted[-1])


def oracle_probe(task: ProbeTask, probe: ElasticNetProbe) -> tuple[ProbeResult, ElasticNetProbe]:
    """The probe on all neurons of all layers, alone; returns its result and the fitted probe."""
    p = clone(probe).fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
    return _result(task, p, np.arange(task.n_neurons), "oracle", list(range(task.n_layers))), p


def minimal_neuron_set(
    task: ProbeTask,
    probe: ElasticNetProbe,
    ranking: np.ndarray,
    oracle: ProbeResult,
    *,
    delta: float = 1.0,
    shares: Sequence[float] = MINIMAL_SET_SHARES,
    ranking_method: str = "paper",
    chunk: int | None = None,
    max_seconds: float | None = None,
    progress: Progress | None = None,
) -> MinimalSetResult:
    """The smallest top-k of the ranking (k over ``shares`` of all neurons) whose dev score is
    strictly above ``oracle_dev * (1 - delta / 100)``; its test score comes with it.

    Consecutive sizes are trained together (nested top-k sets: one pass with the fast solver),
    up to ``chunk`` sizes and ``n_neurons`` summed columns per group, so a group costs about one
    oracle pass (default ``chunk`` 25 for fast, 1 for paper, which trains one by one anyway).
    ``max_seconds`` bounds the search (the first group is always trained); when it runs out the
    result says ``complete=False`` and the set falls back to all neurons.
    """
    N = task.n_neurons
    ranking = np.asarray(ranking, dtype=np.int64)
    grid = grid_sizes(N, shares)
    target = tolerance_target(oracle.dev_score, delta)
    if chunk is None:
        chunk = 25 if probe.solver == "fast" else 1
    evaluated: dict[int, ProbeResult] = {}
    t0 = time.perf_counter()
    out_of_time = False

    def evaluate(sizes: list[int]) -> list[float]:
        nonlocal out_of_time
        if evaluated and max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            out_of_time = True
            return [float("-inf")] * len(sizes)
        sets = [ranking[:k] for k in sizes]
        res = train_neuron_sets(
            task, probe, sets, [f"top-{k}" for k in sizes], stage="minimal set", progress=progress
        )
        for k, r in zip(sizes, res, strict=True):
            evaluated[k] = r
        return [r.dev_score for r in res]

    outcome = search_minimal_size(grid, evaluate, target, chunk=chunk, budget=N)
    found = outcome.size is not None
    k = outcome.size if found else N
    result = evaluated[k] if found else oracle
    return MinimalSetResult(
        delta=float(delta),
        reference_dev=float(oracle.dev_score),
        target=float(target),
        ranking_method=ranking_method,
        grid=grid,
        evaluated=tuple(evaluated[s] for s in grid if s in evaluated),
        found=found,
        complete=not out_of_time,
        k=int(k),
        share=k / N,
        neurons=tuple(int(i) for i in ranking[:k]),
        result=result,
    )


def _curve(
    kind: str, sizes: Sequence[int], seeds: Sequence[int], rows: list[list[ProbeResult]], has_test: bool
) -> CurveResult:
    dev = np.array([[r.dev_score for r in row] for row in rows], dtype=np.float64)
    test = np.array([[r.test_score for r in row] for row in rows], dtype=np.float64) if has_test else None

    def sd(a):
        return np.std(a, axis=0, ddof=1) if a.shape[0] > 1 else np.zeros(a.shape[1])

    return CurveResult(
        kind=kind,
        sizes=tuple(int(k) for k in sizes),
        seeds=tuple(int(s) for s in seeds),
        dev=tuple(tuple(r) for r in dev.tolist()),
        test=None if test is None else tuple(tuple(r) for r in test.tolist()),
        dev_mean=tuple(dev.mean(0).tolist()),
        dev_sd=tuple(sd(dev).tolist()),
        test_mean=None if test is None else tuple(test.mean(0).tolist()),
        test_sd=None if test is None else tuple(sd(test).tolist()),
    )


def neuron_controls(
    task: ProbeTask,
    probe: ElasticNetProbe,
    ranking: np.ndarray,
    sizes: Sequence[int],
    *,
    n_random: int = 3,
    probe_seeds: int = 3,
    random_state: int = 0,
    progress: Progress | None = None,
) -> ControlsResult:
    """At each k of ``sizes``: the top-ranked, ``n_random`` random draws and the bottom-ranked k
    neurons; and the oracle retrained with ``probe_seeds`` seeds (``random_state + s``).

    Random draws are nested prefixes of one permutation per seed (``random_state + 1000 + r``),
    so each draw's sizes train as one family.
    """
    ranking = np.asarray(ranking, dtype=np.int64)
    sizes = tuple(sorted({int(k) for k in sizes if 1 <= k <= task.n_neurons}))
    has_test = task.test is not None

    def curve_rows(order: np.ndarray, label: str) -> list[ProbeResult]:
        return train_neuron_sets(
            task,
            probe,
            [order[:k] for k in sizes],
            [f"{label}-{k}" for k in sizes],
            stage=f"controls: {label}",
            progress=progress,
        )

    top = _curve("top", sizes, [probe.random_state], [curve_rows(ranking, "top")], has_test)
    bottom = _curve(
        "bottom", sizes, [probe.random_state], [curve_rows(ranking[::-1].copy(), "bottom")], has_test
    )
    rand_seeds = [random_state + 1000 + r for r in range(n_random)]
    rows = []
    for s in rand_seeds:
        perm = np.random.default_rng(s).permutation(task.n_neurons)
        rows.append(curve_rows(perm, f"random-s{s}"))
    random = _curve("random", sizes, rand_seeds, rows, has_test)
    spread = None
    if probe_seeds > 0:
        seeds = [random_state + s for s in range(probe_seeds)]
        res = []
        for i, s in enumerate(seeds):
            r, _ = oracle_probe(task, clone(probe).set_params(random_state=s))
            res.append(r)
            if progress is not None:
                progress("controls: probe seeds", i + 1, len(seeds))
        dev = np.array([r.dev_score for r in res])
        test = np.array([r.test_score for r in res]) if has_test else None
        ddof = 1 if len(res) > 1 else 0
        spread = SeedSpread(
            name="oracle",
            seeds=tuple(seeds),
            dev=tuple(dev.tolist()),
            test=None if test is None else tuple(test.tolist()),
            dev_mean=float(dev.mean()),
            dev_sd=float(dev.std(ddof=ddof)),
            test_mean=None if test is None else float(test.mean()),
            test_sd=None if test is None else float(test.std(ddof=ddof)),
        )
    return ControlsResult(sizes=sizes, top=top, random=random, bottom=bottom, probe_seeds=spread)


def run_task_redundancy(
    train: ActivationStore | str | os.PathLike | ProbeTask,
    dev: ActivationStore | str | os.PathLike | None = None,
    test: ActivationStore | str | os.PathLike | None = None,
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
    """
    probe = ElasticNetProbe() if probe is None else probe
    if isinstance(train, ProbeTask):
        task = train
    else:
        if dev is None:
            raise ValueError("a dev store is needed (model selection and the minimal-set criterion use dev)")
        task = load_probe_task(train, dev, test, metric=metric)
    timings = {"load": task.load_seconds}

    t = time.perf_counter()
    layers = layer_probes(task, probe, progress=progress)
    oracle, layerwise, incremental = layers.oracle, layers.layerwise, layers.incremental
    timings["layers"] = time.perf_counter() - t
    logger.info(
        "oracle %s dev %.4f test %.4f (%.1fs for %d layer probes)",
        task.metric,
        oracle.dev_score,
        oracle.test_score,
        timings["layers"],
        2 * task.n_layers - 1,
    )

    t = time.perf_counter()
    ranker = layers.estimator
    if ranking_probe is not None:
        ranker = clone(ranking_probe).fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
    order = rank_neurons(ranker.scaled_coef_, ranking, search_stride=search_stride)
    timings["ranking"] = time.perf_counter() - t

    t = time.perf_counter()
    minimal = minimal_neuron_set(
        task,
        probe,
        order,
        oracle,
        delta=delta,
        shares=shares,
        ranking_method=ranking,
        chunk=search_chunk,
        max_seconds=max_search_seconds,
        progress=progress,
    )
    timings["minimal_set"] = time.perf_counter() - t
    logger.info(
        "minimal set: k=%d (%.1f%%), dev %.4f test %.4f",
        minimal.k,
        100 * minimal.share,
        minimal.result.dev_score,
        minimal.result.test_score,
    )
    timings["analysis"] = timings["load"] + timings["layers"] + timings["ranking"] + timings["minimal_set"]

    ctrl = None
    if controls:
        t = time.perf_counter()
        sizes = set(grid_sizes(task.n_neurons, control_shares))
        if minimal.found:
            sizes.add(minimal.k)
        ctrl = neuron_controls(
            task,
            probe,
            order,
            sorted(sizes),
            n_random=n_random,
            probe_seeds=probe_seeds,
            random_state=int(probe.random_state),
            progress=progress,
        )
        timings["controls"] = time.perf_counter() - t
    timings["total"] = sum(v for k, v in timings.items() if k != "analysis")

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
        oracle=oracle,
        layerwise=layerwise,
        incremental=incremental,
        ranking_method=ranking,
        ranking=tuple(int(i) for i in order),
        minimal=minimal,
        controls=ctrl,
        timings=timings,
        versions=versions,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        random_state=int(probe.random_state),
        ranking_probe=None if ranking_probe is None else dict(ranking_probe.get_params()),
    )


def train_probe(
    train: ActivationStore | str | os.PathLike,
    dev: ActivationStore | str | os.PathLike,
    test: ActivationStore | str | os.PathLike | None = None,
    *,
    neurons: Sequence[int] | None = None,
    layers: Sequence[int] | None = None,
    probe: ElasticNetProbe | None = None,
    metric: str | None = None,
) -> ProbeResult:
    """One probe on a selection of the stores (``neurons`` or ``layers``; default all), scored.

    The fast solver reads the selected columns into memory once; the paper solver streams the
    train store in data order, 128 rows per step, re-reading it every epoch (as the authors'
    generator did), so it never holds the train selection in memory.
    """
    from ._paper import rebatch

    probe = ElasticNetProbe() if probe is None else probe
    tr, dv = _open(train), _open(dev)
    te = None if test is None else _open(test)
    check_compatible(tr, *(s for s in (dv, te) if s is not None))
    label_map = LabelMap.from_store(tr) if tr.manifest.label_type == "class" else None
    sp_tr, sp_dv = load_split(tr, label_map), load_split(dv, label_map)
    sp_te = None if te is None else load_split(te, label_map)
    if neurons is not None and layers is not None:
        raise ValueError("pass neurons or layers, not both")
    if layers is not None:
        cols = (np.asarray(layers, dtype=np.int64)[:, None] * tr.hidden + np.arange(tr.hidden)).ravel()
    elif neurons is not None:
        cols = np.asarray(neurons, dtype=np.int64)
    else:
        cols = np.arange(tr.n_neurons)
    sel = None if cols.size == tr.n_neurons and np.array_equal(cols, np.arange(tr.n_neurons)) else cols
    X_dv = sp_dv.read(neurons=sel)
    X_te = None if sp_te is None else sp_te.read(neurons=sel)
    settings = probe.resolved_settings(sp_tr.items.size)
    t0 = time.perf_counter()
    if settings["solver"] == "paper" and not settings["standardize"]:
        fitted = clone(probe)
        fitted._validate_params()
        fitted.classes_ = None if label_map is None else np.arange(label_map.n_classes)
        items = None if sp_tr.items.size == tr.n_items else sp_tr.items
        y_all = sp_tr.y

        def batches():
            def source():
                start = 0
                for X, _ in tr.iter_batches(128 * 64, neurons=sel, items=items):
                    yield X, y_all[start : start + X.shape[0]]
                    start += X.shape[0]

            return rebatch(source(), settings["batch_size"])

        K = 1 if label_map is None else label_map.n_classes
        fitted._fit_paper(batches, None, cols.size, K, label_map is None, settings, sp_tr.y)
        fitted.solver_settings_ = settings
        fitted.fit_seconds_ = time.perf_counter() - t0
    else:
        fitted = clone(probe).fit(sp_tr.read(neurons=sel), sp_tr.y, X_dv, sp_dv.y)
    metric = metric or default_metric(tr.manifest.task, tr.manifest.label_type)
    task = ProbeTask(
        sp_tr, sp_dv, sp_te, label_map, metric, np.empty((0, cols.size), np.float32), X_dv, X_te, 0.0
    )
    if sel is None:
        name = "oracle"
    elif layers is not None:
        name = "layers-" + ",".join(str(int(i)) for i in layers)
    else:
        name = f"neurons-{cols.size}"
    result = _result(task, fitted, np.arange(cols.size), name, layers)
    return result if layers is not None else replace(result, neurons=tuple(int(i) for i in cols))
