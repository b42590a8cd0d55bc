"""Selectivity (Hewitt & Liang 2019): probe accuracy on the task minus accuracy on a control task.

The control task keeps the activations and the word tokens but gives every word *type* one fixed
random label drawn from train's label distribution (:func:`redundancy.rigour.control_labels`). The
same probes as the real task (every layer-wise and incremental probe, the oracle, the minimal set)
are trained on it with the same template; a probe that scores as well on the control task as on
the task is reading word identity, not the property.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._progress import Progress
from ..rigour import control_labels
from ._estimator import ElasticNetProbe
from ._results import ProbeResult, SelectivityResult, SelectivityRow
from ._task import ProbeTask

logger = logging.getLogger(__name__)

CONTROL_METRIC = "accuracy"
"""Both sides of selectivity are accuracies (as in Hewitt & Liang), whatever the task's own metric."""


def item_words(data: Any, sentence_ids: np.ndarray, positions: np.ndarray) -> list[str]:
    """The word form of each item (``sentence_ids``, ``positions``) of a token task's
    :class:`redundancy.data.TaskData` (the data its store was extracted from)."""
    by_index = {s.index: s.words for s in data.items}
    out = []
    for sid, pos in zip(np.asarray(sentence_ids).tolist(), np.asarray(positions).tolist(), strict=True):
        words = by_index.get(int(sid))
        if words is None or not 0 <= int(pos) < len(words):
            raise ValueError(
                f"{data.spec.name}/{data.split}: the store's item (sentence {sid}, word {pos}) is not in the "
                "task data; the data changed since extraction (rerun the extract stage)"
            )
        out.append(words[int(pos)])
    return out


def control_task(task: ProbeTask, words: Mapping[str, Sequence[str]], seed: int = 0) -> ProbeTask:
    """``task`` with every split's labels replaced by the control task's (a fixed label per word type,
    drawn from train's label distribution); ``words[split]`` are the labelled items' word forms."""
    if task.label_map is None:
        raise ValueError("a control task needs class labels (the task has real-valued labels)")
    counts = np.bincount(
        task.train.y[task.train.y < task.label_map.n_classes], minlength=task.label_map.n_classes
    )
    splits = {"train": task.train, "dev": task.dev, "test": task.test}
    new = {}
    for name, sp in splits.items():
        if sp is None:
            new[name] = None
            continue
        w = words.get(name)
        if w is None or len(w) != sp.y.size:
            got = None if w is None else len(w)
            raise ValueError(
                f"control task: {name} needs one word per labelled item ({sp.y.size}), got {got}"
            )
        new[name] = dataclasses.replace(sp, y=control_labels(w, counts, seed), unseen=())
    return dataclasses.replace(task, **new, metric=CONTROL_METRIC, bootstrap=None)


def _accuracy(r: ProbeResult, split: str) -> float:
    scores = r.test if split == "test" else r.dev
    return (
        float("nan")
        if scores is None or scores.get(CONTROL_METRIC) is None
        else float(scores[CONTROL_METRIC])
    )


def selectivity(
    task: ProbeTask,
    probe: ElasticNetProbe,
    words: Mapping[str, Sequence[str]],
    real: Sequence[ProbeResult],
    minimal_neurons: np.ndarray | None = None,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> SelectivityResult:
    """Train the layer family (and the minimal set) on the control task of ``task``; the selectivity
    of each probe of ``real`` (named ``layer-i``, ``layers-0..i``, ``oracle``, ``minimal``)."""
    from ._experiments import layer_probes, train_neuron_sets

    ctrl = control_task(task, words, seed)
    layers = layer_probes(ctrl, probe, progress=progress)
    probes = {r.name: r for r in (*layers.layerwise, *layers.incremental, layers.oracle)}
    if minimal_neurons is not None:
        (m,) = train_neuron_sets(ctrl, probe, [np.asarray(minimal_neurons)], ["minimal"], progress=progress)
        probes["minimal"] = m
    split = "test" if task.test is not None else "dev"
    rows = []
    for r in real:
        c = probes.get(r.name)
        if c is None:
            continue
        ta, ca = _accuracy(r, split), _accuracy(c, split)
        rows.append(SelectivityRow(r.name, r.n_neurons, ta, ca, ta - ca))
    n_types = len(set(words["train"]))
    o = next((x for x in rows if x.name == "oracle"), None)
    if o is not None:
        logger.info(
            "selectivity: oracle %s accuracy %.4f, control %.4f, selectivity %.4f (%d train word types)",
            split,
            o.task_accuracy,
            o.control_accuracy,
            o.selectivity,
            n_types,
        )
    return SelectivityResult(
        split=split,
        seed=int(seed),
        n_types=n_types,
        control="a fixed random label per word type from train's label distribution (Hewitt & Liang 2019)",
        rows=tuple(rows),
        probes=tuple(probes.values()),
    )
