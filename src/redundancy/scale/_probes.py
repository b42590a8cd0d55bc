"""The probe families on an engine: a family cut into parts, each part trained by its own task.

The fast solver trains a family of probes in one pass (:func:`redundancy.probe.fit_probe_family`);
each probe is trained as it would be alone (the same batches, its own step size and early
stopping), so the family can be cut into parts trained apart. Each part is one task that opens
the stores itself (:func:`redundancy.probe.load_probe_task`: memory maps) and trains its probes
with ``only=`` (the whole family's column blocks, the same seed): the probes equal the whole
family's to the bit when both run in the same number of torch threads (each task runs ``threads``,
default 1; ``docs/scaling.md``, "Probes on Ray", says what it takes and when threads matter).

* :func:`fit_family_on_engine`: one family, any feature sets.
* :class:`EngineFamily`: that as a drop-in ``fit_family`` for :func:`redundancy.probe.layer_probes`
  and :func:`redundancy.probe.train_curves` (checkpoints handled here, in the calling process).
* :func:`layer_probes_on_engine`: the layer experiments (per-layer, incremental, oracle).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from .._progress import Progress
from .._torch import torch_threads
from ..probe import (
    ElasticNetProbe,
    FamilyCheckpoint,
    LayerProbes,
    ProbeTask,
    fit_probe_family,
    layer_probes,
    load_probe_task,
)
from ..store import ActivationStore
from ._engine import LocalEngine, RayEngine, ScaleError, _cause

logger = logging.getLogger(__name__)

StorePath = str | os.PathLike


def split_family(costs: Sequence[float], n_parts: int) -> list[list[int]]:
    """Deal the probes of a family into at most ``n_parts`` parts of about equal cost (largest
    first, each to the lightest part), every part's indices increasing; no empty part.

    >>> split_family([1, 1, 1, 1, 2, 3, 4], 2)
    [[0, 1, 3, 6], [2, 4, 5]]
    """
    if isinstance(n_parts, bool) or not isinstance(n_parts, int) or n_parts < 1:
        raise ValueError(f"n_parts must be a positive int, got {n_parts!r}")
    k = max(1, min(n_parts, len(costs)))
    load = [0.0] * k
    parts: list[list[int]] = [[] for _ in range(k)]
    for i in sorted(range(len(costs)), key=lambda i: (-float(costs[i]), i)):
        p = load.index(min(load))
        parts[p].append(i)
        load[p] += float(costs[i])
    return [sorted(p) for p in parts if p]


@dataclass(frozen=True)
class _Part:
    """One part of a family, as a task receives it: store paths, the probe, the whole family."""

    train: str
    dev: str
    probe: ElasticNetProbe
    feature_ranges: tuple[tuple[tuple[int, int], ...], ...]
    only: tuple[int, ...]
    columns: np.ndarray | None
    stats: tuple[np.ndarray, np.ndarray] | None
    threads: int | None
    name: str


def _fit_part(part: _Part) -> list[ElasticNetProbe]:
    """Open the stores, train the part's probes as members of the whole family."""
    try:
        task = load_probe_task(part.train, part.dev)
        with torch_threads(part.threads):
            return fit_probe_family(
                part.probe,
                task.X_train,
                task.train.y,
                [list(r) for r in part.feature_ranges],
                task.X_dev,
                task.dev.y,
                columns=part.columns,
                stats=part.stats,
                only=list(part.only),
            )
    except Exception as err:
        raise ScaleError(f"{part.name}: {_cause(err)}") from err


def _store_path(ref: Any) -> str:
    path = getattr(ref, "path", ref)
    return str(os.path.abspath(os.fspath(path)))


def fit_family_on_engine(
    train: StorePath,
    dev: StorePath,
    probe: ElasticNetProbe,
    feature_ranges: Sequence[Sequence[tuple[int, int]]],
    *,
    engine: LocalEngine | RayEngine | None = None,
    n_parts: int = 2,
    columns: np.ndarray | None = None,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    threads: int | None = 1,
    what: str = "probes",
    progress: Progress | None = None,
) -> list[ElasticNetProbe]:
    """:func:`redundancy.probe.fit_probe_family` of the train store's probes, cut into ``n_parts``
    parts trained as parallel tasks; the probes in ``feature_ranges`` order.

    Parameters
    ----------
    train, dev : path
        The task's train and dev stores (dev: early stopping). On Ray, on a file system every worker
        sees at the same path: each task opens them itself (memory maps, no copy of a float32 store
        whose items are all labelled).
    probe : ElasticNetProbe
        The template (cloned for every probe).
    feature_ranges, columns, stats
        As :func:`fit_probe_family`: the family (column ranges of the train matrix, or of its
        ``columns``) and, optionally, its columns' mean and scale.
    engine : LocalEngine or RayEngine (started), optional
        Where the parts run (``engine.map``); default this process, one part after the other.
    n_parts : int
        Parts (tasks), dealt by cost (:func:`split_family`: a probe costs its number of columns).
        Each part reads every training row (the pass is per part); the products are split.
    threads : int, optional
        Torch threads in each task (Ray reserves one CPU a task); None: torch's own choice.
    what : str
        Names the family in progress and errors.
    progress : :class:`redundancy._progress.Progress`, optional
        Told the parts finished (once all are: ``engine.map`` returns together).

    Raises
    ------
    ScaleError
        A part failed (one line naming it).
    """
    sets = [tuple(sorted((int(a), int(b)) for a, b in r)) for r in feature_ranges]
    if not sets:
        return []
    costs = [sum(b - a for a, b in r) for r in sets]
    parts = split_family(costs, n_parts)
    cols = None if columns is None else np.asarray(columns, dtype=np.int64)
    st = None if stats is None else (np.asarray(stats[0], np.float64), np.asarray(stats[1], np.float64))
    jobs = [
        _Part(
            _store_path(train),
            _store_path(dev),
            clone(probe),
            tuple(sets),
            tuple(p),
            cols,
            st,
            threads,
            f"{what} part {k} of {len(parts)} ({len(p)} probes)",
        )
        for k, p in enumerate(parts)
    ]
    runner = engine or LocalEngine()
    started = not getattr(runner, "running", True)
    if started:
        runner.start()
    try:
        logger.info("%s: %d probes in %d parts on the %s engine", what, len(sets), len(parts), runner.kind)
        results = runner.map(_fit_part, jobs, names=[j.name for j in jobs])
    finally:
        if started:
            runner.stop()
    if progress is not None:
        progress(what, len(parts), len(parts), unit="part")
    fitted: list[ElasticNetProbe | None] = [None] * len(sets)
    for part, probes in zip(parts, results, strict=True):
        if len(probes) != len(part):
            raise ScaleError(f"{what}: a part returned {len(probes)} probes for {len(part)}")
        for i, p in zip(part, probes, strict=True):
            fitted[i] = p
    return [p for p in fitted if p is not None]


class EngineFamily:
    """A ``fit_family`` for :func:`redundancy.probe.layer_probes` / :func:`~redundancy.probe.train_curves`
    that trains the family on an engine (:func:`fit_family_on_engine`), reading the stores ``train``
    and ``dev``: the matrices it is handed must be theirs (:func:`redundancy.probe.load_probe_task`;
    only their shapes are checked). A ``checkpoint`` is read and written here, as
    :func:`fit_probe_family` does, so a run resumes whichever engine saved it.
    """

    def __init__(
        self,
        train: StorePath,
        dev: StorePath,
        *,
        engine: LocalEngine | RayEngine | None = None,
        n_parts: int = 2,
        threads: int | None = 1,
    ):
        self.train, self.dev = train, dev
        self.engine, self.n_parts, self.threads = engine, n_parts, threads

    def __call__(
        self,
        probe: ElasticNetProbe,
        X: np.ndarray,
        y: np.ndarray,
        feature_ranges: Sequence[Sequence[tuple[int, int]]],
        X_dev: np.ndarray | None = None,
        y_dev: np.ndarray | None = None,
        *,
        sample_weight: np.ndarray | None = None,
        columns: np.ndarray | None = None,
        stats: tuple[np.ndarray, np.ndarray] | None = None,
        progress: Progress | None = None,
        what: str = "probes",
        checkpoint: FamilyCheckpoint | None = None,
    ) -> list[ElasticNetProbe]:
        if sample_weight is not None:
            raise ValueError("sample weights do not travel to the engine's tasks (they read the stores)")
        store = ActivationStore.open(self.train)
        if X.ndim != 2 or X.shape[1] != store.n_neurons or X.shape[0] > store.n_items:
            raise ValueError(
                f"X of shape {X.shape} is not the train store's matrix ({store.path}: {store.n_items} items "
                f"x {store.n_neurons} neurons)"
            )

        def train() -> list[ElasticNetProbe]:
            return fit_family_on_engine(
                self.train,
                self.dev,
                probe,
                feature_ranges,
                engine=self.engine,
                n_parts=self.n_parts,
                columns=columns,
                stats=stats,
                threads=self.threads,
                what=what,
                progress=progress,
            )

        if checkpoint is None:
            return train()
        return checkpoint.fit(train, probe, X, y, feature_ranges, X_dev, y_dev, columns, sample_weight, what)


def layer_probes_on_engine(
    task: ProbeTask | Sequence[StorePath],
    probe: ElasticNetProbe,
    *,
    engine: LocalEngine | RayEngine | None = None,
    n_parts: int = 2,
    threads: int | None = 1,
    progress: Progress | None = None,
) -> LayerProbes:
    """:func:`redundancy.probe.layer_probes` with its family (per-layer, incremental, oracle: ``2 L -
    1`` probes) trained in ``n_parts`` parallel tasks (:func:`fit_family_on_engine`); scored here.

    ``task``: a loaded :class:`redundancy.probe.ProbeTask`, or its stores ``(train, dev[, test])``
    (opened here as memory maps, for scoring).
    """
    if not isinstance(task, ProbeTask):
        paths = list(task)
        if len(paths) not in (2, 3):
            raise ValueError(f"task: a ProbeTask or its stores (train, dev[, test]), got {len(paths)} paths")
        task = load_probe_task(*paths)
    fit = EngineFamily(
        task.train.store.path, task.dev.store.path, engine=engine, n_parts=n_parts, threads=threads
    )
    return layer_probes(task, probe, progress=progress, fit_family=fit)
