"""The general-redundancy sweep with task accuracy: how much of the model is redundant *without loss*.

The general stage says how many neurons fall into clusters at each correlation threshold ``t``; it
does not say whether the task can still be solved from one neuron per cluster. This is the part of
the authors' code (``run_cc_all``) that turns a threshold into "redundant without loss": for every
threshold, a probe is retrained on that threshold's cluster representatives of *all* neurons (train
only, early stopping on dev, test reported), and its score is compared with the oracle's. All the
thresholds' probes are trained as one family over gathered columns (one pass over the data with
the fast solver).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._progress import Progress
from ._estimator import ElasticNetProbe
from ._evaluate import ratio_interval
from ._experiments import train_curves
from ._results import ProbeResult, SweepAccuracy, SweepRow
from ._task import ProbeTask

SWEEP_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""The thresholds whose representatives are probed by default (those of the general sweep)."""


def sweep_accuracy(
    task: ProbeTask,
    probe: ElasticNetProbe,
    points: Sequence[tuple[float, Any]],
    oracle: ProbeResult,
    *,
    representative: str = "random",
    general_split: str = "train",
    progress: Progress | None = None,
) -> SweepAccuracy:
    """Retrain ``probe`` on the representatives of every threshold and score it against ``oracle``.

    Parameters
    ----------
    task : the probe task (train/dev/test activations).
    probe : the template (cloned for every probe).
    points : ``(threshold, representatives)`` pairs: flat neuron ids kept at that threshold (e.g.
        :class:`redundancy.general.SweepPoint`'s ``representatives``).
    oracle : the probe on all neurons (its test replicates, when present, pair the intervals).
    representative, general_split : recorded (how and on which split the clusters were made).
    """
    n = task.n_neurons
    pts = sorted(((float(t), np.asarray(r, dtype=np.int64)) for t, r in points), key=lambda p: p[0])
    for t, reps in pts:
        if reps.size == 0 or reps.min() < 0 or reps.max() >= n or np.unique(reps).size != reps.size:
            raise ValueError(f"threshold {t:g}: representatives must be distinct neuron ids in [0, {n})")
    curves = [(reps, [reps.size], [f"t={t:g}"]) for t, reps in pts]
    results = (
        [c[0] for c in train_curves(task, probe, curves, stage="sweep", progress=progress)] if pts else []
    )
    b = task.bootstrap
    den = None
    if b is not None and oracle.test_replicates is not None and math.isfinite(oracle.test_score):
        den = (float(oracle.test_score), np.asarray(oracle.test_replicates))
    rows = []
    for (t, reps), r in zip(pts, results, strict=True):
        test = r.test_score if task.test is not None and math.isfinite(r.test_score) else None
        share = None if test is None or not oracle.test_score else test / float(oracle.test_score)
        share_iv = None
        if den is not None and r.test_replicates is not None and test is not None:
            share_iv = ratio_interval((float(test), np.asarray(r.test_replicates)), den, b)
        rows.append(
            SweepRow(
                threshold=t,
                n_kept=int(reps.size),
                redundant_share=1.0 - reps.size / n,
                dev=float(r.dev_score),
                test=None if test is None else float(test),
                share_of_oracle=share,
                test_interval=r.test_interval,
                share_interval=share_iv,
            )
        )
    return SweepAccuracy(
        n_neurons=n,
        representative=representative,
        general_split=general_split,
        oracle_dev=float(oracle.dev_score),
        oracle_test=float(oracle.test_score) if math.isfinite(oracle.test_score) else None,
        rows=tuple(rows),
    )
