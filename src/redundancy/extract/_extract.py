"""Run the model over a planned split and stream every layer's pooled states into a store.

Speed: segments are sorted by length and batched with dynamic padding, so little compute is spent
on pad tokens; pooling is one gather + ``index_add_`` per batch on the stacked hidden states.
Resumability: batches are grouped into chunks fixed by the plan alone, each committed atomically
by the store, so a rerun redoes only uncommitted chunks and produces the same bytes.

The two steps are public so that other engines (``redundancy.scale``: Ray actors) compute exactly
the same rows: :func:`plan_store` fixes the store's manifest, metadata and chunks,
:func:`compute_chunk` computes one chunk's rows.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .._progress import Counter, Progress
from .._torch import torch_threads
from ..data import TaskData
from ..store import StoreManifest, StoreWriter, package_versions, plan_hash
from ._forward import batches, forward, plan_segments, pool
from ._models import LoadedModel, check_device, load_model
from ._plan import SENTENCE_AGGREGATIONS, TOKEN_AGGREGATIONS, PlanStats, Segment

logger = logging.getLogger(__name__)


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

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, naming the field (``batch_size: must be >= 1, got 0``);
        the job's ``[extract]`` table and the CLI's flags come through here too."""

        def require(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}")

        def count(name: str, optional: bool) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            require(isinstance(value, int) and not isinstance(value, bool), name, "must be an integer")
            require(value >= 1, name, "must be >= 1")

        names = tuple(dict.fromkeys(TOKEN_AGGREGATIONS + SENTENCE_AGGREGATIONS))
        require(self.aggregation in (None, *names), "aggregation", "must be one of " + ", ".join(names))
        count("batch_size", optional=False)
        count("max_length", optional=True)
        count("chunk_items", optional=False)
        count("max_batch_tokens", optional=True)
        count("threads", optional=True)
        overlap = self.window_overlap
        require(
            isinstance(overlap, int | float) and not isinstance(overlap, bool) and 0 <= overlap < 1,
            "window_overlap",
            "must lie in [0, 1)",
        )
        require(self.dtype in ("float32", "float16"), "dtype", "must be float32 or float16")
        require(isinstance(self.device, str) and bool(self.device), "device", "must be a torch device name")
        check_device(self.device, available=False)

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


@dataclass(frozen=True)
class StorePlan:
    """Everything an extraction fixes before it runs the model: the store's manifest and per-item
    metadata, the model inputs (``segments``) and how they fall into batches and chunks.

    A chunk's rows depend on the plan and the chunk id alone, so chunks may be computed in any
    order, by any process holding the same model (:func:`compute_chunk`), and committed as they
    come. ``chunks[c]`` lists chunk ``c``'s batches, each a list of indices into ``segments``.
    """

    manifest: StoreManifest
    segments: list[Segment]
    chunks: list[list[list[int]]]
    labels: np.ndarray
    sentence_ids: np.ndarray
    positions: np.ndarray
    stats: PlanStats
    unit: str

    @property
    def n_chunks(self) -> int:
        return len(self.chunks)

    def chunk_batches(self, chunk_id: int) -> list[list[Segment]]:
        """The segments of chunk ``chunk_id``, batch by batch (what :func:`compute_chunk` takes)."""
        return [[self.segments[i] for i in b] for b in self.chunks[chunk_id]]

    def chunk_rows(self, chunk_id: int) -> int:
        """How many store rows chunk ``chunk_id`` fills."""
        return sum(self.segments[i].n_rows for b in self.chunks[chunk_id] for i in b)

    def result(self, store: str | Path, computed: int, rows: int, seconds: float) -> ExtractResult:
        """The :class:`ExtractResult` of extracting this plan into ``store``: ``computed`` chunks of
        ``rows`` rows in all were computed (the others were committed before) in ``seconds``."""
        m = self.manifest
        return ExtractResult(
            store=str(store),
            n_items=m.n_items,
            n_sentences=m.n_sentences,
            n_layers=m.n_layers,
            hidden=m.hidden,
            n_chunks=self.n_chunks,
            chunks_computed=computed,
            seconds=round(seconds, 3),
            items_per_s=round(rows / seconds, 1) if seconds > 0 else 0.0,
            stats=self.stats.to_dict(),
        )


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
    segs, stats = plan_segments(
        data.items,
        lm.tokenizer,
        level=data.spec.level,
        aggregation=agg,
        max_length=lm.max_length,
        overlap=config.window_overlap,
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
    ``progress`` (:class:`redundancy._progress.Progress`) hears ``("extract TASK/SPLIT", rows done,
    rows, "word" or "ex")`` after each batch. ``config.threads`` holds for this call only: torch's
    thread count is restored afterwards.
    """
    config = config or ExtractConfig()
    check_device(config.device)
    with torch_threads(config.threads):
        return _extract(data, model, Path(out), config, overwrite=overwrite, progress=progress)


def plan_store(data: TaskData, lm: LoadedModel, config: ExtractConfig) -> StorePlan:
    """The store an extraction of ``data`` with ``lm`` and ``config`` writes: its manifest (with the
    plan hash), metadata arrays, segments, batches and chunks. Deterministic: the same inputs give
    the same plan in any process."""
    if config.max_length is not None and config.max_length != lm.max_length:
        raise ValueError(
            f"config.max_length={config.max_length} but the loaded model was set up for {lm.max_length}; "
            "pass max_length to load_model, or a model name to extract"
        )
    if not data.items:
        raise ValueError(f"{data.spec.name}/{data.split}: no items to extract")
    segments, stats, agg = plan(data, lm, config)
    chunks = _chunks(
        batches(segments, config.batch_size, config.max_batch_tokens), segments, config.chunk_items
    )
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
    return StorePlan(
        manifest=manifest,
        segments=segments,
        chunks=chunks,
        labels=labels,
        sentence_ids=sent_ids,
        positions=positions,
        stats=stats,
        unit="word" if data.spec.level == "token" else "ex",
    )


def compute_chunk(
    lm: LoadedModel,
    chunk: list[list[Segment]],
    device: str | None = None,
    *,
    rows: np.ndarray | None = None,
    items: np.ndarray | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The store rows of one chunk (its batches of segments: ``StorePlan.chunk_batches(c)``):
    ``(items, values)``, the item indices ``(k,)`` int64 and their pooled activations
    ``(k, n_layers, hidden)`` float32.

    ``rows`` and ``items`` are optional buffers of at least ``k`` rows, filled and returned as views
    (the local extraction reuses two of them); ``on_batch(n)`` hears each batch's row count.
    """
    import torch

    k = sum(s.n_rows for b in chunk for s in b)
    if rows is None:
        rows = np.empty((k, lm.n_layers, lm.hidden), dtype=np.float32)
    if items is None:
        items = np.empty(k, dtype=np.int64)
    n = 0
    with torch.inference_mode():
        for segs in chunk:
            hs, left = forward(lm, segs, device)
            pooled, it = pool(hs, segs, left)
            del hs
            rows[n : n + len(it)] = pooled
            items[n : n + len(it)] = it
            n += len(it)
            if on_batch is not None:
                on_batch(len(it))
    return items[:n], rows[:n]


def _extract(
    data: TaskData,
    model: str | LoadedModel,
    out: Path,
    config: ExtractConfig,
    *,
    overwrite: bool,
    progress: Progress | None,
) -> ExtractResult:
    lm = (
        model
        if isinstance(model, LoadedModel)
        else load_model(model, device=config.device, max_length=config.max_length)
    )
    sp = plan_store(data, lm, config)
    n_items = sp.manifest.n_items
    counter = Counter(progress, f"extract {data.spec.name}/{data.split}", n_items, sp.unit)
    t0 = time.perf_counter()
    computed = n_computed = 0
    with StoreWriter.create_or_resume(
        out,
        sp.manifest,
        labels=sp.labels,
        sentence_ids=sp.sentence_ids,
        positions=sp.positions,
        overwrite=overwrite,
    ) as writer:
        if not writer.complete:
            done = writer.done_chunks
            if done:
                logger.info("resuming %s: %d of %d chunks already written", out, len(done), sp.n_chunks)
                counter.update(sum(sp.chunk_rows(c) for c in done))
            # Rows go into two preallocated buffers, used in turn: a background thread commits one
            # chunk (checks, pwrite, fsync) while the model fills the other; at most one chunk waits,
            # so memory stays bounded. Per-batch results die at once, so nothing long-lived sits
            # between the model's large temporaries and the C heap does not fragment as batches go
            # by (peak memory stays flat in the number of items).
            most = max(sp.chunk_rows(c) for c in range(sp.n_chunks))
            rows = [np.empty((most, lm.n_layers, lm.hidden), dtype=np.float32) for _ in range(2)]
            items = [np.empty(most, dtype=np.int64) for _ in range(2)]
            turn = 0
            with ThreadPoolExecutor(1, thread_name_prefix="store") as committer:
                pending = None
                for cid in range(sp.n_chunks):
                    if cid in done:
                        continue
                    it, values = compute_chunk(
                        lm,
                        sp.chunk_batches(cid),
                        config.device,
                        rows=rows[turn],
                        items=items[turn],
                        on_batch=counter.update,
                    )
                    if pending is not None:
                        pending.result()
                    pending = committer.submit(writer.write_chunk, cid, it, values)
                    n_computed += len(it)
                    computed += 1
                    turn = 1 - turn
                if pending is not None:
                    pending.result()
            writer.finalize()
    return sp.result(out, computed, n_computed, time.perf_counter() - t0)
