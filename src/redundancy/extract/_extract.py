"""Run the model over a planned split and stream every layer's pooled states into a store.

Speed: segments are sorted by length and batched with dynamic padding, so little compute is spent
on pad tokens; pooling is one gather + ``index_add_`` per batch on the stacked hidden states.
Resumability: batches are grouped into chunks fixed by the plan alone, each committed atomically
by the store, so a rerun redoes only uncommitted chunks and produces the same bytes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

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
    device, threads : where and with how many CPU threads to run (not part of the plan).
    """

    aggregation: str | None = None
    batch_size: int = 32
    max_length: int | None = None
    window_overlap: float = 0.5
    dtype: Literal["float32", "float16"] = "float32"
    chunk_items: int = 4096
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


def _batches(segments: list[Segment], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(segments)), key=lambda i: (-segments[i].length, i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _chunks(batches: list[list[int]], segments: list[Segment], chunk_items: int) -> list[list[list[int]]]:
    chunks: list[list[list[int]]] = []
    cur: list[list[int]] = []
    n = 0
    for b in batches:
        cur.append(b)
        n += sum(len(segments[i].targets) for i in b)
        if n >= chunk_items:
            chunks.append(cur)
            cur, n = [], 0
    if cur:
        chunks.append(cur)
    return chunks


def _forward(lm: LoadedModel, segs: list[Segment], device: str):
    """Hidden states of one padded batch: (layers, batch, tokens, hidden), and each row's left pad."""
    import torch

    tok = lm.tokenizer
    feats = [s.encoding for s in segs]
    batch = tok.pad(feats, padding=True, return_tensors="pt")
    kwargs = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    out = lm.model(**kwargs, output_hidden_states=True, return_dict=True, **_no_cache_kwargs(lm.model))
    hs = torch.stack(out.hidden_states)  # (layers, batch, tokens, hidden)
    width = hs.shape[2]
    left = [width - s.length if tok.padding_side == "left" else 0 for s in segs]
    return hs, left


def _no_cache_kwargs(model) -> dict:
    import inspect

    params = inspect.signature(model.forward).parameters
    if "use_mems" in params:
        return {"use_mems": False}
    if "use_cache" in params:
        return {"use_cache": False}
    return {}


def pool(hs, segs: list[Segment], left: list[int]):
    """Average the listed positions of each target: (rows, layers, hidden), and the rows' items."""
    import torch

    b_idx, t_idx, row_idx, items = [], [], [], []
    for b, seg in enumerate(segs):
        for item, positions in seg.targets:
            r = len(items)
            items.append(item)
            for p in positions:
                b_idx.append(b)
                t_idx.append(p + left[b])
                row_idx.append(r)
    dev = hs.device
    gathered = hs[:, torch.tensor(b_idx, device=dev), torch.tensor(t_idx, device=dev)]  # (L, m, H)
    rows = torch.tensor(row_idx, device=dev)
    summed = torch.zeros(hs.shape[0], len(items), hs.shape[3], dtype=hs.dtype, device=dev)
    summed.index_add_(1, rows, gathered)
    counts = torch.bincount(rows, minlength=len(items)).to(hs.dtype)
    pooled = (summed / counts[None, :, None]).permute(1, 0, 2)
    return pooled, np.asarray(items, dtype=np.int64)


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


def _row_ids(data: TaskData) -> tuple[np.ndarray, np.ndarray]:
    if data.spec.level == "token":
        sent = np.concatenate([np.full(len(s.words), s.index, dtype=np.int32) for s in data.items])
        pos = np.concatenate([np.arange(len(s.words), dtype=np.int32) for s in data.items])
        return sent, pos
    return np.asarray([e.index for e in data.items], dtype=np.int32), np.zeros(len(data.items), dtype=np.int32)


def plan(data: TaskData, lm: LoadedModel, config: ExtractConfig) -> tuple[list[Segment], PlanStats, str]:
    """Segments for ``data`` and the aggregation actually used."""
    agg = config.resolved_aggregation(data.spec.level, lm.tokenizer)
    if data.spec.level == "token":
        segs, stats = plan_token_segments(
            data.items, lm.tokenizer, aggregation=agg, max_length=lm.max_length, overlap=config.window_overlap
        )
    else:
        segs, stats = plan_sentence_segments(data.items, lm.tokenizer, aggregation=agg, max_length=lm.max_length)
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
    """
    import torch

    config = config or ExtractConfig()
    if config.dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {config.dtype!r}")
    if config.threads:
        torch.set_num_threads(config.threads)
    lm = model if isinstance(model, LoadedModel) else load_model(model, device=config.device, max_length=config.max_length)
    if not data.items:
        raise ValueError(f"{data.spec.name}/{data.split}: no items to extract")
    segments, stats, agg = plan(data, lm, config)
    batches = _batches(segments, config.batch_size)
    chunks = _chunks(batches, segments, config.chunk_items)
    labels, label_names, label_type = _labels(data)
    sent_ids, positions = _row_ids(data)
    n_items = len(sent_ids)
    versions = package_versions()
    settings = {
        "aggregation": agg,
        "batch_size": config.batch_size,
        "max_length": lm.max_length,
        "window_overlap": config.window_overlap,
        "dtype": config.dtype,
        "chunk_items": config.chunk_items,
    }
    plan_id = plan_hash(
        {
            "model": lm.name,
            "weights": lm.weights_sha256,
            "task": data.spec.name,
            "split": data.split,
            "n_items": n_items,
            "files": data.files,
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
        seed=None,
        extra={"settings": settings, "plan_stats": stats.to_dict(), "notes": list(data.notes)},
        plan_hash=plan_id,
        n_chunks=len(chunks),
    )
    t0 = time.perf_counter()
    computed = 0
    with StoreWriter.create_or_resume(
        out, manifest, labels=labels, sentence_ids=sent_ids, positions=positions, overwrite=overwrite
    ) as writer:
        if not writer.complete:
            done = writer.done_chunks
            if done:
                logger.info("resuming %s: %d of %d chunks already written", out, len(done), len(chunks))
                if progress is not None:
                    progress.update(sum(len(segments[i].targets) for c in done for b in chunks[c] for i in b))
            with torch.inference_mode():
                for cid, chunk in enumerate(chunks):
                    if cid in done:
                        continue
                    rows, items = [], []
                    for b in chunk:
                        segs = [segments[i] for i in b]
                        hs, left = _forward(lm, segs, config.device)
                        pooled, it = pool(hs, segs, left)
                        rows.append(pooled.float().cpu().numpy())
                        items.append(it)
                        if progress is not None:
                            progress.update(len(it))
                    writer.write_chunk(cid, np.concatenate(items), np.concatenate(rows))
                    computed += 1
            writer.finalize()
    secs = time.perf_counter() - t0
    done_items = sum(len(segments[i].targets) for c in range(len(chunks)) for b in chunks[c] for i in b) if computed else 0
    return ExtractResult(
        store=str(out),
        n_items=n_items,
        n_sentences=len(data.items),
        n_layers=lm.n_layers,
        hidden=lm.hidden,
        n_chunks=len(chunks),
        chunks_computed=computed,
        seconds=round(secs, 3),
        items_per_s=round(done_items / secs, 1) if computed and secs > 0 else 0.0,
        stats=stats.to_dict(),
    )
