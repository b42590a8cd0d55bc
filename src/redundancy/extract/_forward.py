"""The forward API shared by extraction and the compact model: plan -> batches -> forward -> pool.

>>> from redundancy.extract import batches, plan_segments, forward, pool   # doctest: +SKIP
>>> segs, stats = plan_segments(items, lm.tokenizer, level="token", aggregation="first",
...                             max_length=lm.max_length)                   # doctest: +SKIP
>>> for b in batches(segs, batch_size=32, max_batch_tokens=2048):           # doctest: +SKIP
...     part = [segs[i] for i in b]
...     states, left = forward(lm, part)
...     rows, items = pool(states, part, left)  # (rows, layers, hidden) float32, each row's item

``plan_segments`` turns sentences into :class:`Segment` inputs (windows for long sentences, the
positions to pool); ``batches`` orders them by length into padded batches; ``forward`` runs one
batch and returns every hidden state; ``pool`` gathers each row's positions. Extraction streams the
pooled rows into a store; :class:`redundancy.compact.CompactModel` multiplies them by its probe.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np

from ..data import SentenceExample, TokenSentence
from ._models import LoadedModel
from ._plan import PlanStats, Segment, plan_sentence_segments, plan_token_segments


def plan_segments(
    items: Sequence[TokenSentence] | Sequence[SentenceExample],
    tokenizer,
    *,
    level: str,
    aggregation: str,
    max_length: int,
    overlap: float = 0.5,
) -> tuple[list[Segment], PlanStats]:
    """Segments (model inputs and the positions to pool) for the items of one split.

    ``level`` is the task's (``token``: one row per word, windows of ``max_length`` tokens that
    overlap by ``overlap`` for long sentences; ``sentence``/``sentence_pair``: one row per item).
    """
    if level == "token":
        return plan_token_segments(
            items, tokenizer, aggregation=aggregation, max_length=max_length, overlap=overlap
        )
    return plan_sentence_segments(items, tokenizer, aggregation=aggregation, max_length=max_length)


def batches(segments: Sequence[Segment], batch_size: int, max_batch_tokens: int | None) -> list[list[int]]:
    """Segment indices in padded batches: longest first; a batch ends at ``batch_size`` inputs or
    when its padded size would pass a cap.

    The cap is the padded size of the *first* batch (itself at most ``max_batch_tokens``), so no
    later batch needs a larger buffer than an earlier one: the allocator reuses the first batch's
    freed blocks instead of growing the heap, and peak memory does not grow with the data.
    """
    order = sorted(range(len(segments)), key=lambda i: (-segments[i].length, i))
    if not order:
        return []
    widest = segments[order[0]].length
    first = min(batch_size, max(1, max_batch_tokens // widest)) if max_batch_tokens else batch_size
    cap = first * widest
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = segments[cur[0]].length if cur else segments[i].length
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * width > cap):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def pad(lm: LoadedModel, segs: Sequence[Segment]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Pad one batch on the tokenizer's side; return the model inputs and each row's left offset."""
    tok = lm.tokenizer
    width = max(s.length for s in segs)
    lengths = np.asarray([s.length for s in segs])
    left = width - lengths if tok.padding_side == "left" else np.zeros(len(segs), dtype=np.int64)
    ids = np.full((len(segs), width), tok.pad_token_id, dtype=np.int64)
    mask = np.zeros((len(segs), width), dtype=np.int64)
    types = (
        np.full((len(segs), width), tok.pad_token_type_id, dtype=np.int64)
        if "token_type_ids" in segs[0].encoding
        else None
    )
    for r, seg in enumerate(segs):
        sl = slice(left[r], left[r] + seg.length)
        ids[r, sl] = seg.encoding["input_ids"]
        mask[r, sl] = 1
        if types is not None:
            types[r, sl] = seg.encoding["token_type_ids"]
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return batch, left


def no_cache_kwargs(model) -> dict:
    """The keyword that turns a model's key/value cache off (``use_cache`` or XLNet's ``use_mems``),
    if its ``forward`` takes one: a forward pass for hidden states never needs the cache."""
    params = inspect.signature(model.forward).parameters
    if "use_mems" in params:
        return {"use_mems": False}
    if "use_cache" in params:
        return {"use_cache": False}
    return {}


def output_states(out) -> tuple:
    """Hidden states of a model output. A model cut to zero layers returns none for some
    architectures (BERT, RoBERTa, GPT-2); its ``last_hidden_state`` is then the embeddings."""
    hs = tuple(out.hidden_states or ())
    return hs if hs else (out.last_hidden_state,)


def forward(lm: LoadedModel, segs: Sequence[Segment], device: str | None = None) -> tuple[tuple, np.ndarray]:
    """Hidden states of one padded batch: a tuple of (batch, tokens, hidden) tensors, one per state
    (embeddings first), and each row's left padding. Call it under ``torch.inference_mode()``.
    ``device`` defaults to the model's."""
    import torch

    if device is None:
        device = str(next(lm.model.parameters()).device)
    batch, left = pad(lm, segs)
    inputs = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
    out = lm.model(**inputs, output_hidden_states=True, return_dict=True, **no_cache_kwargs(lm.model))
    return output_states(out), left


def pool(hidden_states, segs: Sequence[Segment], left) -> tuple[np.ndarray, np.ndarray]:
    """Pool each row's positions: float32 (rows, layers, hidden) in numpy, and the rows' items.

    Speed: only the pooled positions are gathered from each layer (the full (layers, batch,
    tokens, hidden) stack is never built); one position per row (first/last/cls) is a plain
    gather, several (mean) one ``index_add_``; the result comes out row-major, ready to write.
    """
    import torch

    counts = np.concatenate([np.diff(s.ptr) for s in segs])
    b_idx = np.concatenate([np.full(len(s.positions), b) for b, s in enumerate(segs)])
    t_idx = np.concatenate([s.positions + left[b] for b, s in enumerate(segs)])
    items = np.concatenate([s.items for s in segs])
    first = hidden_states[0]
    width, hidden = first.shape[1], first.shape[2]
    flat = torch.from_numpy(b_idx * width + t_idx).to(first.device)
    gathered = torch.stack([h.reshape(-1, hidden).index_select(0, flat) for h in hidden_states], dim=1)
    if len(counts) != len(t_idx):
        dev = first.device
        rows = torch.from_numpy(np.repeat(np.arange(len(counts)), counts)).to(dev)
        summed = torch.zeros(len(counts), *gathered.shape[1:], dtype=gathered.dtype, device=dev)
        summed.index_add_(0, rows, gathered)
        gathered = summed / torch.from_numpy(counts).to(dev, gathered.dtype)[:, None, None]
    return gathered.float().cpu().numpy(), items
