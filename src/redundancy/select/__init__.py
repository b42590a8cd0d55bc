"""Selecting layers and neurons from probe results (pure rules; no training here).

Public API
----------
rank_neurons(coef, method="paper" | "abs")
    Order neurons by a probe's weights: the paper's class-wise weight-mass ordering, or plain |w|.
weight_mass(coef)
    Each neuron's summed |w| over the classes.
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
from ._ranking import RANKING_METHODS, rank_neurons, weight_mass
from ._search import LayerSelector, SearchOutcome, chunk_sizes, search_minimal_size, tolerance_target

__all__ = [
    "CONTROL_SHARES",
    "MINIMAL_SET_SHARES",
    "PIPELINE_SHARES",
    "RANKING_METHODS",
    "LayerSelector",
    "SearchOutcome",
    "chunk_sizes",
    "grid_sizes",
    "rank_neurons",
    "search_minimal_size",
    "tolerance_target",
    "weight_mass",
]
