"""One task's train/dev/test stores opened for the probes: labels aligned by name, activations loaded.

:func:`open_splits` is the one loader of the package's probe stages (stores opened and checked,
labels mapped onto train's classes, the metric chosen); :func:`load_probe_task` adds the
activations of every neuron, :func:`redundancy.probe.train_probe` reads only its selection.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ..rigour import SentenceBootstrap
from ..store import ActivationStore
from ._checkpoint import FamilyCheckpoint
from ._data import LabelMap, ProbeSplit, check_compatible, load_split
from ._fast import activations_tensor, column_stats
from ._metrics import default_metric

logger = logging.getLogger(__name__)

StoreRef = ActivationStore | str | os.PathLike
"""A store, or the folder of one."""


@dataclass(frozen=True, eq=False)
class TaskSplits:
    """The labelled items of train/dev/test (test optional), labels mapped onto train's classes
    (``label_map``; None for real-valued labels), and the task's ``metric``."""

    train: ProbeSplit
    dev: ProbeSplit
    test: ProbeSplit | None
    label_map: LabelMap | None
    metric: str


@dataclass(frozen=True, eq=False)
class ProbeTask:
    """Train/dev/test of one task, labels aligned by name, activations loaded once.

    Build it with :func:`load_probe_task`. ``X_train``/``X_dev``/``X_test`` hold every neuron of
    the labelled items (float32); experiments select columns from them. With a ``bootstrap``
    (:class:`redundancy.rigour.SentenceBootstrap`; ``dataclasses.replace(task, bootstrap=...)``),
    every probe scored on the task carries the interval of its test score over resampled test
    sentences (the same replicates for every probe: paired). With a ``checkpoint``
    (:class:`redundancy.probe.FamilyCheckpoint`), every family of probes trained on the task is
    saved as it finishes and read back when asked for again (a killed stage resumes).
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
    bootstrap: SentenceBootstrap | None = None
    checkpoint: FamilyCheckpoint | None = None

    @property
    def n_layers(self) -> int:
        return self.train.store.n_layers

    @cached_property
    def train_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Every train column's mean and standard deviation (float64, as the fast solver standardises;
        constant columns get 1), computed on first use: a column's statistics do not depend on the
        probe, so the families of a stage index these instead of each passing over the data."""
        mean, std = column_stats(activations_tensor(self.X_train), True)
        return mean.numpy(), std.numpy()

    def stats_of(self, neurons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:attr:`train_stats` of ``neurons`` (in their order)."""
        mean, std = self.train_stats
        return mean[neurons], std[neurons]

    @property
    def hidden(self) -> int:
        return self.train.store.hidden

    @property
    def n_neurons(self) -> int:
        return self.train.store.n_neurons

    @property
    def label_type(self) -> str:
        return self.train.store.manifest.label_type


def open_store(s: StoreRef) -> ActivationStore:
    """``s`` itself if it is a store, else the store in folder ``s``."""
    return s if isinstance(s, ActivationStore) else ActivationStore.open(s)


def open_splits(
    train: StoreRef, dev: StoreRef, test: StoreRef | None = None, *, metric: str | None = None
) -> TaskSplits:
    """Open the stores, check they match, map dev/test labels onto train's by name (no activations
    read); ``metric`` defaults to the task's."""
    tr, dv = open_store(train), open_store(dev)
    te = None if test is None else open_store(test)
    check_compatible(tr, *(s for s in (dv, te) if s is not None))
    label_map = LabelMap.from_store(tr) if tr.manifest.label_type == "class" else None
    sp_tr = load_split(tr, label_map)
    sp_dv = load_split(dv, label_map)
    sp_te = None if te is None else load_split(te, label_map)
    metric = metric or default_metric(tr.manifest.task, tr.manifest.label_type)
    return TaskSplits(sp_tr, sp_dv, sp_te, label_map, metric)


def load_probe_task(
    train: StoreRef, dev: StoreRef, test: StoreRef | None = None, *, metric: str | None = None
) -> ProbeTask:
    """Open the stores, check they match, map dev/test labels onto train's by name, load activations."""
    t0 = time.perf_counter()
    s = open_splits(train, dev, test, metric=metric)
    X_tr = s.train.read()
    X_dv = s.dev.read()
    X_te = None if s.test is None else s.test.read()
    seconds = time.perf_counter() - t0
    logger.info(
        "loaded %s: train %s, dev %s, test %s in %.1fs",
        s.train.store.manifest.task,
        X_tr.shape,
        X_dv.shape,
        None if X_te is None else X_te.shape,
        seconds,
    )
    return ProbeTask(s.train, s.dev, s.test, s.label_map, s.metric, X_tr, X_dv, X_te, seconds)


def select_columns(X: np.ndarray, neurons: np.ndarray) -> np.ndarray:
    """``X[:, neurons]`` (``X``: activations, possibly a read-only view of a store's memory map): a
    view for one contiguous increasing range, else a row-major float32 copy
    (``torch.index_select``: faster than ``np.take``, and unlike numpy's fancy indexing its result
    is C-ordered, which the row gathers of minibatch training need).

    >>> X = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> np.shares_memory(select_columns(X, np.array([1, 2])), X)
    True
    >>> select_columns(X, np.array([3, 0])).tolist()
    [[3.0, 0.0], [7.0, 4.0], [11.0, 8.0]]
    """
    neurons = np.asarray(neurons, dtype=np.int64)
    if neurons.size and neurons[-1] - neurons[0] + 1 == neurons.size and np.all(np.diff(neurons) == 1):
        return X[:, neurons[0] : neurons[-1] + 1]
    if X.dtype == np.float32 and X.flags.c_contiguous:
        return torch.index_select(activations_tensor(X), 1, torch.from_numpy(neurons)).numpy()
    return np.take(X, neurons, axis=1)
