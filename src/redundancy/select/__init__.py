"""Selecting layers and neurons from probe results (pure rules; no training here).

Public API
----------
rank_neurons(coef, method="paper" | "abs")
    Order neurons by a probe's weights: the paper's class-wise weight-mass ordering, or plain |w|.
weight_mass(coef)
    Each neuron's summed |w| over the classes.
entry_ranking(entry, strength)
    Neurons by the step at which they enter a regularisation path (group-lasso or L1 path).
probeless_ranking(class_means), pairwise_spread(class_means)
    NeuroX's probe-free ranking: neurons by the spread of their class means.
RANKINGS, RANKING_METHODS
    The rankings the probe stage compares (``paper``, ``group-lasso``, ``l1-path``, ``probeless``)
    and the accepted ``ranking`` values (those, ``abs`` and ``auto``: the best of them by dev).
grid_sizes(n_total, shares, max_size=None)
    The paper's neuron counts ``int(p * n_total)``.
PIPELINE_SHARES, MINIMAL_SET_SHARES, CONTROL_SHARES
    The 27-share pipeline grid, the 112-share minimal-set grid (0.1 % steps to 10 %), our control grid.
tolerance_target(reference, delta)
    ``reference * (1 - delta / 100)``; a score passes when strictly above it.
search_minimal_size(sizes, evaluate, target, chunk=1, budget=None) -> SearchOutcome
    The paper's scan for the first size that passes (evaluated in groups, see ``chunk_sizes``).
LayerSelector(delta).fit(incremental_scores, oracle_score)
    ``selected_layer_``: the lowest layer whose incremental probe passes.

Training lives in :mod:`redundancy.probe`, which uses these rules; this package imports nothing
from it, so it stays a set of small, testable functions.
"""

from ._grids import CONTROL_SHARES, MINIMAL_SET_SHARES, PIPELINE_SHARES, grid_sizes
from ._ranking import RANKING_METHODS, RANKINGS, WEIGHT_RANKINGS, rank_neurons, weight_mass
from ._search import LayerSelector, SearchOutcome, chunk_sizes, search_minimal_size, tolerance_target
from ._selection import entry_ranking, pairwise_spread, probeless_ranking

__all__ = [
    "CONTROL_SHARES",
    "MINIMAL_SET_SHARES",
    "PIPELINE_SHARES",
    "RANKINGS",
    "RANKING_METHODS",
    "WEIGHT_RANKINGS",
    "LayerSelector",
    "SearchOutcome",
    "chunk_sizes",
    "entry_ranking",
    "grid_sizes",
    "pairwise_spread",
    "probeless_ranking",
    "rank_neurons",
    "search_minimal_size",
    "tolerance_target",
    "weight_mass",
]
