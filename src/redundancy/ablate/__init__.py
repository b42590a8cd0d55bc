"""Stage 5b: the causal check of a neuron ranking, inside the model.

Public API
----------
run_ablation(data, model, train_store, dev_store, probe, rankings, workdir, share=0.05, ...)
    Ablate each ranking's top ``share`` of the neurons (and random sets of the same size) inside the
    model through every later layer, score the probe trained on the intact model, and set the drop
    beside the paper's offline column dropping -> :class:`AblationResult` (``ablate.json``).
ablation_hooks(model, n_states, hidden, neurons, values)
    The forward hooks (a context manager): hidden-state units replaced wherever the model computes them.
AblationResult, AblationRow
    Frozen results with ``to_dict`` / ``from_dict``.
"""

from ._hooks import ablation_hooks, layer_modules
from ._run import MODES, AblationResult, AblationRow, neuron_sets, run_ablation

__all__ = [
    "MODES",
    "AblationResult",
    "AblationRow",
    "ablation_hooks",
    "layer_modules",
    "neuron_sets",
    "run_ablation",
]
