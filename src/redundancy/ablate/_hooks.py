"""Forward hooks that ablate neurons of the hidden states inside a transformer, so the change
reaches every later layer (the paper's ablation only drops probe columns after the fact)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np


def layer_modules(model, n_layers: int):
    """The model's list of transformer layers: the first ``torch.nn.ModuleList`` with ``n_layers``
    members (BERT's ``encoder.layer``, GPT-2's ``h``, XLNet's ``layer``, ...)."""
    import torch

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return name, module
    raise ValueError(f"{type(model).__name__}: found no list of {n_layers} transformer layers to hook")


def _replace(h, units, values) -> None:
    h[..., units] = values.to(dtype=h.dtype, device=h.device)


@contextlib.contextmanager
def ablation_hooks(
    model, n_states: int, hidden: int, neurons: Sequence[int], values: Sequence[float]
) -> Iterator[int]:
    """Within the block, hidden state ``l`` of ``model`` has its units ``neurons`` (flat ids
    ``l * hidden + unit``) replaced by ``values`` wherever the model computes it, so every later
    layer sees the ablated state: state 0 (the embeddings) as layer 0's input (a pre-hook), state
    ``l >= 1`` as layer ``l - 1``'s output (a hook). Replacement is in place, so the model's own
    ``hidden_states`` show it too. Yields the number of hooks; they are removed on the way out.
    """
    import torch

    neurons = np.asarray(neurons, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if neurons.shape != values.shape:
        raise ValueError(f"{neurons.size} neurons but {values.size} values")
    if neurons.size and (neurons.min() < 0 or neurons.max() >= n_states * hidden):
        raise ValueError(f"neurons must be flat ids below {n_states} * {hidden}")
    _, layers = layer_modules(model, n_states - 1)
    layer_of, unit = np.divmod(neurons, hidden)
    handles = []
    for state in np.unique(layer_of):
        sel = layer_of == state
        units = torch.from_numpy(unit[sel])
        vals = torch.from_numpy(values[sel])
        if state == 0:

            def pre(module, args, kwargs, units=units, vals=vals):
                h = args[0] if args else kwargs["hidden_states"]
                _replace(h, units, vals)

            handles.append(layers[0].register_forward_pre_hook(pre, with_kwargs=True))
        else:

            def post(module, args, output, units=units, vals=vals):
                h = output[0] if isinstance(output, tuple | list) or hasattr(output, "to_tuple") else output
                _replace(h, units, vals)

            handles.append(layers[int(state) - 1].register_forward_hook(post))
    try:
        yield len(handles)
    finally:
        for handle in handles:
            handle.remove()
