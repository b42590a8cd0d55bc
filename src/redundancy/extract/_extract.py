"""Run the model over a planned split and stream every layer's pooled states into a store.

Speed: segments are sorted by length and batched with dynamic padding, so little compute is spent
on pad tokens; pooling is one gather + ``index_add_`` per batch on the stacked hidden states.
Resumability: batches are grouped into chunks fixed by the plan alone, each committed atomically
by the store, so a rerun redoes only uncommitted chunks and produces the same bytes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from .._torch import torch_threads
from ..data import TaskData
from ..store import StoreManifest, StoreWriter, plan_hash
from ._models import LoadedModel, load_model
from ._plan import PlanStats, Segment, plan_sentence_segments, plan_token_segments
from ._versions import package_versions

logger = logging.getLogger(__name__)


class Progress(Protocol):
    """Anything with ``update(n)`` (a tqdm bar, for instance)."""

    def update(self, n: int) -> object: ...


@dataclass(frozen=True)
class ExtractConfig:
    """Settings of one extraction; all of them (but ``threads`` and ``device``) enter the plan hash.

    Attributes
    ----------
    aggregation : how rows are pooled. Token tasks: ``first``, ``last`` (default, as NeuroX) or
        ``mean`` subword of each word. Sentence tasks: ``cls`` (default), ``last`` or ``mean`` token.
    batch_size : sequences per forward pass (after sorting by length).
    max_length : longest input in tokens; ``None`` takes the model's limit.
    window_overlap : share of a window kept as context for the next one (token tasks).
    dtype : stored dtype, ``float32`` or ``float16``.
    chunk_items : rows per committed chunk (the unit of resume).
    max_batch_tokens : cap on padded tokens per batch, so a few very long inputs cannot blow up
        peak memory; ``None`` for no cap.
    device, threads : where and with how many CPU threads to run (not part of the plan).
    """

    aggregation: str | None = None
    batch_size: int = 32
    max_length: int | None = None
    window_overlap: float = 0.5
    dtype: Literal["float32", "float16"] = "float32"
    chunk_items: int = 4096
    max_batch_tokens: int | None = 2048
    device: str = "cpu"
    threads: int | None = None

    def resolved_aggregation(self, level: str, tokenizer=None) -> str:
        if self.aggregation is not None:
            return self.aggregation
        if level == "token":
            return "last"
        return "cls" if tokenizer is None or tokenizer.cls_token_id is not None else "last"


@dataclass(frozen=True)
class ExtractResult:
    """What an extraction did; serialisable to JSON."""

    store: str
    n_items: int
    n_sentences: int
    n_layers: int
    hidden: int
    n_chunks: int
    chunks_computed: int
    seconds: float
    items_per_s: float
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _batches(segments: list[Segment], batch_size: int, max_batch_tokens: int | None) -> list[list[int]]:
    """Longest first; a batch ends at ``batch_size`` inputs or when its padded size would pass a cap.

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
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = segments[cur[0]].length if cur else segments[i].length
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * width > cap):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def _chunks(batches: list[list[int]], segments: list[Segment], chunk_items: int) -> list[list[list[int]]]:
    chunks: list[list[list[int]]] = []
    cur: list[list[int]] = []
    n = 0
    for b in batches:
        cur.append(b)
        n += sum(segments[i].n_rows for i in b)
        if n >= chunk_items:
            chunks.append(cur)
            cur, n = [], 0
    if cur:
        chunks.append(cur)
    return chunks


def _pad(lm: LoadedModel, segs: list[Segment]) -> tuple[dict[str, np.ndarray], np.ndarray]:
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


def _forward(lm: LoadedModel, segs: list[Segment], device: str):
    """Hidden states of one padded batch: a tuple of (batch, tokens, hidden), one per layer, and each
    row's left padding."""
    import torch

    batch, left = _pad(lm, segs)
    kwargs = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
    out = lm.model(**kwargs, output_hidden_states=True, return_dict=True, **_no_cache_kwargs(lm.model))
    return out.hidden_states, left


def _no_cache_kwargs(model) -> dict:
    import inspect

    params = inspect.signature(model.forward).parameters
    if "use_mems" in params:
        return {"use_mems": False}
    if "use_cache" in params:
        return {"use_cache": False}
    return {}


def pool(hidden_states, segs: list[Segment], left) -> tuple[np.ndarray, np.ndarray]:
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


def _labels(data: TaskData) -> tuple[np.ndarray, list[str], str]:
    spec = data.spec
    if spec.level == "token":
        raw = [lab for s in data.items for lab in (s.labels or [None] * len(s.words))]
    else:
        raw = [e.label for e in data.items]
    if all(v is None for v in raw):
        return np.zeros(0, dtype=np.int32), [], "none"
    if spec.label_type == "real":
        return np.asarray(raw, dtype=np.float32), [], "real"
    names = sorted({str(v) for v in raw if v is not None})
    index = {n: i for i, n in enumerate(names)}
    return np.asarray([index[str(v)] if v is not None else -1 for v in raw], dtype=np.int32), names, "class"


def items_sha256(data: TaskData) -> str:
    """SHA-256 of the items' text and labels, in order: two splits with the same shape but other
    sentences (another carve seed, another cap) never share a plan."""
    h = hashlib.sha256()
    for it in data.items:
        if data.spec.level == "token":
            fields = ("\x1f".join(it.words), "\x1f".join(it.labels or ()))
        else:
            fields = (it.text, it.text_pair or "", "" if it.label is None else str(it.label))
        h.update(("\x1e".join(fields) + "\x1d").encode("utf-8"))
    return h.hexdigest()


def _row_ids(data: TaskData) -> tuple[np.ndarray, np.ndarray]:
    if data.spec.level == "token":
        sent = np.concatenate([np.full(len(s.words), s.index, dtype=np.int32) for s in data.items])
        pos = np.concatenate([np.arange(len(s.words), dtype=np.int32) for s in data.items])
        return sent, pos
    return np.asarray([e.index for e in data.items], dtype=np.int32), np.zeros(
        len(data.items), dtype=np.int32
    )


def plan(data: TaskData, lm: LoadedModel, config: ExtractConfig) -> tuple[list[Segment], PlanStats, str]:
    """Segments for ``data`` and the aggregation actually used."""
    agg = config.resolved_aggregation(data.spec.level, lm.tokenizer)
    if data.spec.level == "token":
        segs, stats = plan_token_segments(
            data.items, lm.tokenizer, aggregation=agg, max_length=lm.max_length, overlap=config.window_overlap
        )
    else:
        segs, stats = plan_sentence_segments(
            data.items, lm.tokenizer, aggregation=agg, max_length=lm.max_length
        )
    return segs, stats, agg


def extract(
    data: TaskData,
    model: str | LoadedModel,
    out: str | Path,
    config: ExtractConfig | None = None,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ExtractResult:
    """Extract every layer's activations for ``data`` into the store folder ``out``.

    Rerunning the same call on an interrupted store resumes it; on a complete one it does nothing.
    ``config.threads`` holds for this call only: torch's thread count is restored afterwards.
    """
    config = config or ExtractConfig()
    if config.dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {config.dtype!r}")
    with torch_threads(config.threads):
        return _extract(data, model, Path(out), config, overwrite=overwrite, progress=progress)


def _extract(
    data: TaskData,
    model: str | LoadedModel,
    out: Path,
    config: ExtractConfig,
    *,
    overwrite: bool,
    progress: Progress | None,
) -> ExtractResult:
    import torch

    lm = (
        model
        if isinstance(model, LoadedModel)
        else load_model(model, device=config.device, max_length=config.max_length)
    )
    if config.max_length is not None and config.max_length != lm.max_length:
        raise ValueError(
            f"config.max_length={config.max_length} but the loaded model was set up for {lm.max_length}; "
            "pass max_length to load_model, or a model name to extract"
        )
    if not data.items:
        raise ValueError(f"{data.spec.name}/{data.split}: no items to extract")
    segments, stats, agg = plan(data, lm, config)
    batches = _batches(segments, config.batch_size, config.max_batch_tokens)
    chunks = _chunks(batches, segments, config.chunk_items)
    labels, label_names, label_type = _labels(data)
    sent_ids, positions = _row_ids(data)
    n_items = len(sent_ids)
    versions = package_versions()
    items_hash = items_sha256(data)
    settings = {
        "aggregation": agg,
        "batch_size": config.batch_size,
        "max_length": lm.max_length,
        "window_overlap": config.window_overlap,
        "dtype": config.dtype,
        "chunk_items": config.chunk_items,
        "max_batch_tokens": config.max_batch_tokens,
    }
    plan_id = plan_hash(
        {
            "model": lm.name,
            "weights": lm.weights_sha256,
            "task": data.spec.name,
            "split": data.split,
            "n_items": n_items,
            "files": data.files,
            "items": items_hash,
            "settings": settings,
            "versions": {k: versions.get(k) for k in ("torch", "transformers", "tokenizers")},
        }
    )
    manifest = StoreManifest(
        model=lm.name,
        model_source=lm.resolved.source,
        weights_sha256=lm.weights_sha256,
        tokenizer=type(lm.tokenizer).__name__,
        task=data.spec.name,
        split=data.split,
        level=data.spec.level,
        aggregation=agg,
        dtype=config.dtype,
        n_items=n_items,
        n_layers=lm.n_layers,
        hidden=lm.hidden,
        n_sentences=len(data.items),
        label_names=label_names,
        label_type=label_type,
        data_files=dict(data.files),
        versions=versions,
        seed=data.seed,
        extra={
            "settings": settings,
            "items_sha256": items_hash,
            "plan_stats": stats.to_dict(),
            "notes": list(data.notes),
        },
        plan_hash=plan_id,
        n_chunks=len(chunks),
    )
    t0 = time.perf_counter()
    computed = n_computed = 0
    with StoreWriter.create_or_resume(
        out, manifest, labels=labels, sentence_ids=sent_ids, positions=positions, overwrite=overwrite
    ) as writer:
        if not writer.complete:
            done = writer.done_chunks
            if done:
                logger.info("resuming %s: %d of %d chunks already written", out, len(done), len(chunks))
                if progress is not None:
                    progress.update(sum(segments[i].n_rows for c in done for b in chunks[c] for i in b))
            # One background thread commits chunk k (checks, pwrite, fsync) while the model computes
            # chunk k + 1; at most one chunk waits, so memory stays bounded.
            # Rows go into two preallocated buffers, used in turn: a background thread commits one
            # chunk (checks, pwrite, fsync) while the model fills the other. Per-batch results die at
            # once, so nothing long-lived sits between the model's large temporaries and the C heap
            # does not fragment as batches go by (peak memory stays flat in the number of items).
            most = max(sum(segments[i].n_rows for b in c for i in b) for c in chunks)
            rows = [np.empty((most, lm.n_layers, lm.hidden), dtype=np.float32) for _ in range(2)]
            items = [np.empty(most, dtype=np.int64) for _ in range(2)]
            turn = 0
            with torch.inference_mode(), ThreadPoolExecutor(1, thread_name_prefix="store") as committer:
                pending = None
                for cid, chunk in enumerate(chunks):
                    if cid in done:
                        continue
                    n = 0
                    for b in chunk:
                        segs = [segments[i] for i in b]
                        hs, left = _forward(lm, segs, config.device)
                        pooled, it = pool(hs, segs, left)
                        del hs
                        rows[turn][n : n + len(it)] = pooled
                        items[turn][n : n + len(it)] = it
                        n += len(it)
                        if progress is not None:
                            progress.update(len(it))
                    if pending is not None:
                        pending.result()
                    pending = committer.submit(writer.write_chunk, cid, items[turn][:n], rows[turn][:n])
                    n_computed += n
                    computed += 1
                    turn = 1 - turn
                if pending is not None:
                    pending.result()
            writer.finalize()
    secs = time.perf_counter() - t0
    return ExtractResult(
        store=str(out),
        n_items=n_items,
        n_sentences=len(data.items),
        n_layers=lm.n_layers,
        hidden=lm.hidden,
        n_chunks=len(chunks),
        chunks_computed=computed,
        seconds=round(secs, 3),
        items_per_s=round(n_computed / secs, 1) if secs > 0 else 0.0,
        stats=stats.to_dict(),
    )
