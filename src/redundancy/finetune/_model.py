"""The model side of a fine-tuning run: tokenizer, classifier head, optimizer, torch session, dev scoring."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._torch import torch_threads
from ..extract import SHIPPED, ModelError, ResolvedModel, check_device, is_byte_level
from ..probe import score_all
from ._config import FinetuneConfig
from ._data import Labels, make_batch


def _hub_kwargs(resolved: ResolvedModel) -> dict[str, Any]:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    return {"local_files_only": True} if offline and resolved.path is None else {}


@contextmanager
def _model_errors(ref: str, resolved: ResolvedModel) -> Iterator[None]:
    """Turn transformers' ``OSError`` into a :class:`ModelError` that says what to do (as ``load_model``)."""
    try:
        yield
    except OSError as err:
        if resolved.path is None:
            hint = (
                "HF_HUB_OFFLINE=1 is set and the model is not in the local Hugging Face cache"
                if _hub_kwargs(resolved)
                else "the hub could not be reached (set HF_HUB_OFFLINE=1 to fail fast offline)"
            )
            raise ModelError(
                f"cannot load {ref!r} from the Hugging Face hub: {hint}. Pass a local folder saved with "
                f"save_pretrained, or one of the shipped checkpoints: {', '.join(SHIPPED)}"
            ) from err
        raise ModelError(f"cannot load the model in {resolved.source}: {err}") from err


def load_tokenizer(ref: str, resolved: ResolvedModel):
    """A fast tokenizer as ``load_model`` makes it: byte-level BPE with ``add_prefix_space``, a pad token."""
    from transformers import AutoTokenizer

    kwargs = _hub_kwargs(resolved)
    with _model_errors(ref, resolved):
        tok = AutoTokenizer.from_pretrained(resolved.source, **kwargs)
        if is_byte_level(tok) and not getattr(tok, "add_prefix_space", False):
            tok = AutoTokenizer.from_pretrained(resolved.source, add_prefix_space=True, **kwargs)
    # GPT-2: pad with end-of-text on the right; the head pools the last non-pad token
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
        tok.padding_side = "right"
    return tok


def _head(labels: Labels) -> dict[str, Any]:
    """The classifier head's config: one output per class, or one regression output."""
    if labels.label_type == "real":
        return {"num_labels": 1, "problem_type": "regression"}
    return {
        "num_labels": len(labels.names),
        "id2label": dict(enumerate(labels.names)),
        "label2id": {n: i for i, n in enumerate(labels.names)},
        "problem_type": "single_label_classification",
    }


def load_classifier(ref: str, resolved: ResolvedModel, source: str, labels: Labels, tokenizer):
    """``AutoModelForSequenceClassification`` from ``source`` (the base model or a checkpoint)."""
    from transformers import AutoModelForSequenceClassification

    kwargs = _hub_kwargs(resolved) if source == resolved.source else {}
    with _model_errors(ref, resolved):
        model = AutoModelForSequenceClassification.from_pretrained(
            source, pad_token_id=tokenizer.pad_token_id, **_head(labels), **kwargs
        )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def make_optimizer(model, config: FinetuneConfig):
    """AdamW with HF's grouping: biases and LayerNorm weights are never decayed."""
    import torch

    norms = {
        id(p)
        for m in model.modules()
        if isinstance(m, torch.nn.LayerNorm)
        for p in m.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or id(p) in norms else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999), eps=config.adam_epsilon)


@contextmanager
def torch_session(config: FinetuneConfig):
    """Threads and RNG for the run only: the caller's thread count and RNG states are restored afterwards."""
    import torch

    device = torch.device(check_device(config.device))  # a misspelt or absent device: a ValueError naming it
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch_threads(config.threads), torch.random.fork_rng(devices=devices):
        yield device


def evaluate(model, tokenizer, features, y: np.ndarray, labels: Labels, metric: str, batch_size: int, device):
    """The task metric and its companions on one split (inputs sorted by length, padded per batch)."""
    import torch

    order = sorted(range(len(features)), key=lambda i: (-len(features[i]["input_ids"]), i))
    pred = np.empty(len(features), dtype=np.float64 if labels.label_type == "real" else np.int64)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logits = model(**make_batch(tokenizer, features, idx, None, device)).logits.float().cpu().numpy()
            pred[idx] = logits[:, 0] if labels.label_type == "real" else logits.argmax(-1)
    model.train(was_training)
    return score_all(metric, labels.label_type, y, pred, class_names=labels.names or None)
