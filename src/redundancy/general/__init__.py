"""General redundancy: neuron correlations, layer CKA and correlation clustering, from one pass over a store.

One streaming float64 pass over an activation store accumulates the item count, per-neuron sums, the
``N x N`` cross-product matrix and two small extra sums; from these alone come every neuron-pair Pearson
correlation, linear CKA and debiased linear CKA for every pair of layers. Correlation clustering
(distance ``1 - |r|``, average linkage) is then cut at a whole sweep of thresholds. See ``docs/general.md``.

Public API
----------
run_general
    The stage: store -> ``general.json`` (:class:`GeneralResult`), ``linkage.npy`` and figures.
NeuronStats
    Mergeable accumulator (``update`` / ``merge`` / ``compute`` / ``reset``) -> :class:`NeuronStatistics`.
linear_cka
    Linear or debiased linear CKA of two in-memory activation matrices.
CorrelationClusterer
    ``CorrelationClusterer(threshold=0.3, representative="random", random_state=0).fit(corr)``;
    ``REPRESENTATIVES``: the ways to pick the neuron kept per cluster.
threshold_sweep, correlation_linkage, correlation_distance, cut_tree, pick_representatives, default_thresholds
    The sweep and its pieces.
GeneralResult, CKAResult, SweepPoint
    Frozen results with ``to_dict`` / ``from_dict``; :func:`load_result` reads ``general.json``.
accumulate
    The streaming pass alone: store -> filled :class:`NeuronStats`.
accumulate_pass, GroupedPass, StatsPart
    One pass filling the real statistics, those of random groups of sentences (kept as float32
    :class:`StatsPart`, left out with ``NeuronStats.without``: the jackknife) and the shuffled null's;
    ``engine=`` runs its groups on an engine's workers (``redundancy.scale``), the same numbers.
PassGroup, accumulate_group
    One group of that pass as a task receives it, and its accumulation (what a worker runs).
GeneralIntervals, cluster_counts
    The jackknife intervals of both CKA matrices and of the redundant share at every threshold
    (``GeneralResult.intervals``, ``run_general(intervals=G)``); cluster counts of a tree at thresholds.
accumulate_with_shuffled, NullBaseline, NULLS
    The same pass filling the shuffled null's statistics too (each neuron's rows permuted
    independently); a null model's CKA and sweep (``GeneralResult.nulls``).
cka_diagnostics
    Items per feature (a warning below 10) and the gap between biased and debiased CKA.
plot_cka, plot_threshold, plot_layers, plot_spans, write_figures
    The stage's figures of a :class:`GeneralResult` (PNG files; matplotlib's Agg canvas, no pyplot).
"""

from ._cluster import (
    REPRESENTATIVES,
    CorrelationClusterer,
    cluster_counts,
    correlation_distance,
    correlation_linkage,
    cut_tree,
    default_thresholds,
    pick_representatives,
    threshold_sweep,
)
from ._plots import plot_cka, plot_layers, plot_spans, plot_threshold, write_figures
from ._result import CKAResult, GeneralIntervals, GeneralResult, NullBaseline, SweepPoint
from ._run import (
    NULLS,
    GroupedPass,
    PassGroup,
    accumulate,
    accumulate_group,
    accumulate_pass,
    accumulate_with_shuffled,
    cka_diagnostics,
    load_result,
    run_general,
)
from ._stats import NeuronStatistics, NeuronStats, StatsPart, hsic_unbiased_terms, linear_cka

__all__ = [
    "NULLS",
    "GeneralIntervals",
    "GroupedPass",
    "PassGroup",
    "StatsPart",
    "accumulate_group",
    "accumulate_pass",
    "cluster_counts",
    "REPRESENTATIVES",
    "NullBaseline",
    "accumulate_with_shuffled",
    "cka_diagnostics",
    "CKAResult",
    "CorrelationClusterer",
    "GeneralResult",
    "NeuronStatistics",
    "NeuronStats",
    "SweepPoint",
    "accumulate",
    "correlation_distance",
    "correlation_linkage",
    "cut_tree",
    "default_thresholds",
    "hsic_unbiased_terms",
    "linear_cka",
    "load_result",
    "pick_representatives",
    "plot_cka",
    "plot_layers",
    "plot_spans",
    "plot_threshold",
    "run_general",
    "threshold_sweep",
    "write_figures",
]
