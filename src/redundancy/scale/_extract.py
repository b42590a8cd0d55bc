"""Extraction on an engine: workers holding the model compute whole chunks of the store's plan, the
calling process commits each through the store's resumable writer.

The store stays one folder (one ``activations.npy``, as the local extraction writes it): the plan
(:func:`redundancy.extract.plan_store`) fixes every chunk's rows, a worker computes a chunk with
the local code (:func:`redundancy.extract.compute_chunk`), and chunks are committed atomically in
whatever order they finish. So the store is the local one, byte for byte, and a rerun computes
only the chunks not committed yet. See docs/scaling.md.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import Counter, Progress
from .._torch import torch_threads
from ..data import TaskData
from ..extract import (
    ExtractConfig,
    ExtractResult,
    LoadedModel,
    Segment,
    StorePlan,
    check_device,
    compute_chunk,
    load_model,
    plan_store,
)
from ..store import StoreWriter
from ._engine import LocalEngine, RayEngine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ModelSpec:
    """What a worker loads: the same model in every worker (``random_init``: the seeded null)."""

    ref: str
    device: str
    max_length: int | None
    random_init: int | None


@dataclass(frozen=True)
class _Chunk:
    """One piece of work: a chunk of the plan, its batches of model inputs."""

    chunk_id: int
    batches: list[list[Segment]]
    device: str
    threads: int | None


def _load(spec: _ModelSpec) -> LoadedModel:
    return load_model(spec.ref, device=spec.device, max_length=spec.max_length, random_init=spec.random_init)


def _plan(lm: LoadedModel, work: tuple[TaskData, ExtractConfig]) -> StorePlan:
    data, config = work
    return plan_store(data, lm, config)


def _compute(lm: LoadedModel, work: _Chunk) -> tuple[np.ndarray, np.ndarray]:
    with torch_threads(work.threads):
        return compute_chunk(lm, work.batches, work.device)


@contextlib.contextmanager
def _running(engine: LocalEngine | RayEngine) -> Iterator[None]:
    """The engine started for the block; stopped after it only if it was started here."""
    started = not engine.running
    engine.start()
    try:
        yield
    finally:
        if started:
            engine.stop()


def extract_on_engine(
    data: TaskData,
    model: str,
    out: str | Path,
    config: ExtractConfig | None = None,
    engine: LocalEngine | RayEngine | None = None,
    *,
    random_init: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ExtractResult:
    """Extract ``data`` with the model ``model`` (a name or folder each worker loads, with
    ``random_init`` as :func:`redundancy.extract.load_model` takes it) into the store ``out``,
    the chunks computed by ``engine``'s workers (default: this process).

    The store, its resume and its bytes are those of :func:`redundancy.extract.extract`: a rerun
    on an interrupted store computes only the chunks it lacks; a complete one does nothing. On Ray
    every worker holds one model (reserving ``config.threads`` CPUs, default 1; or one GPU each,
    running on ``cuda``, when the cluster has GPUs), and a worker that dies mid-chunk is restarted
    and the chunk computed again. A chunk that fails raises one :class:`ScaleError` naming it
    (``extract pos/train chunk 3: ...``); the chunks committed before stay committed.
    ``progress`` hears ``("extract TASK/SPLIT", rows done, rows, unit)`` after each chunk.
    """
    config = config or ExtractConfig()
    engine = engine or LocalEngine()
    out = Path(out)
    what = f"extract {data.spec.name}/{data.split}"
    with _running(engine):
        gpus = 0
        device, threads = config.device, config.threads
        if isinstance(engine, RayEngine):
            gpus = 1 if engine.gpus() else 0
            if gpus:
                device = "cuda"  # Ray gives each worker its own GPU as cuda:0
            elif config.device != "cpu":
                raise ValueError(f"device {config.device!r}: the Ray cluster has no GPU; use cpu")
            threads = threads or 1  # one CPU per worker unless told: torch would take the whole node
        else:
            check_device(config.device)
        spec = _ModelSpec(model, device, config.max_length, random_init)
        pool = engine.workers(_load, spec, cpus=threads or 1, gpus=gpus)
        sp = pool.call(_plan, (data, config), name=f"{what} plan")
        return _fill(sp, pool, out, what, device, threads, overwrite, progress)


def _fill(
    sp: StorePlan,
    pool: Any,
    out: Path,
    what: str,
    device: str,
    threads: int | None,
    overwrite: bool,
    progress: Progress | None,
) -> ExtractResult:
    """Create or resume the store of ``sp`` and commit each chunk the workers return."""
    m = sp.manifest
    counter = Counter(progress, what, m.n_items, sp.unit)
    t0 = time.perf_counter()
    computed = n_computed = 0
    with StoreWriter.create_or_resume(
        out,
        m,
        labels=sp.labels,
        sentence_ids=sp.sentence_ids,
        positions=sp.positions,
        overwrite=overwrite,
    ) as writer:
        if not writer.complete:
            todo = writer.pending()
            done = writer.done_chunks
            if done:
                logger.info("resuming %s: %d of %d chunks already written", out, len(done), sp.n_chunks)
                counter.update(sum(sp.chunk_rows(c) for c in done))
            logger.info("%s: %d chunk(s) on %d worker(s)", what, len(todo), pool.n_workers)
            work = [_Chunk(c, sp.chunk_batches(c), device, threads) for c in todo]
            names = [f"{what} chunk {c}" for c in todo]
            with contextlib.closing(pool.imap_unordered(_compute, work, names=names)) as results:
                for i, (items, values) in results:
                    writer.write_chunk(todo[i], items, values)
                    counter.update(len(items))
                    n_computed += len(items)
                    computed += 1
            writer.finalize()
    return sp.result(out, computed, n_computed, time.perf_counter() - t0)
