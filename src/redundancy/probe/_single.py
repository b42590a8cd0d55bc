"""One probe on a selection of a task's stores (``redundancy probe --neurons`` and friends)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial

import numpy as np
from sklearn.base import clone

from ..store import ActivationStore
from ._estimator import ElasticNetProbe
from ._evaluate import probe_result
from ._paper import rebatch
from ._results import ProbeResult
from ._task import ProbeTask, StoreRef, TaskSplits, open_splits

_READ_ROWS = 128 * 64  # rows per read from the store when streaming the paper solver's batches


def _columns(
    store: ActivationStore, neurons: Sequence[int] | None, layers: Sequence[int] | None
) -> np.ndarray:
    """Flat neuron indices of ``layers`` (whole layers), else ``neurons``, else every neuron."""
    if neurons is not None and layers is not None:
        raise ValueError("pass neurons or layers, not both")
    if layers is not None:
        h = store.hidden
        return (np.asarray(layers, dtype=np.int64)[:, None] * h + np.arange(h)).ravel()
    if neurons is not None:
        return np.asarray(neurons, dtype=np.int64)
    return np.arange(store.n_neurons)


def _store_rows(
    store: ActivationStore, y: np.ndarray, neurons: np.ndarray | None, items: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(X, y)`` blocks of the store's rows ``items`` (all when None), in data order."""
    start = 0
    for X, _ in store.iter_batches(_READ_ROWS, neurons=neurons, items=items):
        yield X, y[start : start + X.shape[0]]
        start += X.shape[0]


def _paper_batches(
    store: ActivationStore, y: np.ndarray, neurons: np.ndarray | None, items: np.ndarray | None, size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of the paper solver's batches, streamed from the store."""
    return rebatch(_store_rows(store, y, neurons, items), size)


def _fit_streamed(
    probe: ElasticNetProbe, s: TaskSplits, sel: np.ndarray | None, n_cols: int, settings: dict
) -> ElasticNetProbe:
    """The paper solver on raw features, its train batches read from the store every epoch."""
    t0 = time.perf_counter()
    tr = s.train
    fitted = clone(probe)
    fitted._validate_params()
    fitted.classes_ = None if s.label_map is None else np.arange(s.label_map.n_classes)
    items = None if tr.items.size == tr.store.n_items else tr.items
    batches = partial(_paper_batches, tr.store, tr.y, sel, items, settings["batch_size"])
    K = 1 if s.label_map is None else s.label_map.n_classes
    fitted._fit_paper(batches, None, n_cols, K, s.label_map is None, settings, tr.y)
    fitted.solver_settings_ = settings
    fitted.fit_seconds_ = time.perf_counter() - t0
    return fitted


def _probe_name(sel: np.ndarray | None, layers: Sequence[int] | None, n_cols: int) -> str:
    if sel is None:
        return "oracle"
    if layers is not None:
        return "layers-" + ",".join(str(int(i)) for i in layers)
    return f"neurons-{n_cols}"


def train_probe(
    train: StoreRef,
    dev: StoreRef,
    test: StoreRef | None = None,
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
    probe = ElasticNetProbe() if probe is None else probe
    s = open_splits(train, dev, test, metric=metric)
    n_all = s.train.store.n_neurons
    cols = _columns(s.train.store, neurons, layers)
    sel = None if cols.size == n_all and np.array_equal(cols, np.arange(n_all)) else cols
    X_dv = s.dev.read(neurons=sel)
    X_te = None if s.test is None else s.test.read(neurons=sel)
    settings = probe.resolved_settings(s.train.items.size)
    if settings["solver"] == "paper" and not settings["standardize"]:
        fitted = _fit_streamed(probe, s, sel, cols.size, settings)
    else:
        fitted = clone(probe).fit(s.train.read(neurons=sel), s.train.y, X_dv, s.dev.y)
    X_none = np.empty((0, cols.size), np.float32)
    task = ProbeTask(s.train, s.dev, s.test, s.label_map, s.metric, X_none, X_dv, X_te, 0.0)
    result = probe_result(task, fitted, np.arange(cols.size), _probe_name(sel, layers, cols.size), layers)
    return result if layers is not None else replace(result, neurons=tuple(int(i) for i in cols))
