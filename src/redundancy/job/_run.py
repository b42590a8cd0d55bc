"""``redundancy run``: extract -> general -> probe -> pipeline -> compact -> report for each task.

This module only wires the stages together; each stage's work lives in its own package. Every
stage's result is cached under ``RUN/cache`` with a key of its inputs (the stores' plan hashes,
the stage's settings, the seed and package versions), so a rerun skips finished work and a run
that was interrupted resumes where it stopped.

Run folder::

    RUN/stores/{task}-{split}/      activation stores
    RUN/general/{task}/             general.json, linkage.npy, figures
    RUN/probe/{task}/               probe.json, layers.png, sizes.png
    RUN/pipeline/{task}/            pipeline.json, pipeline.md
    RUN/compact/{task}/             the compact model (see redundancy.pipeline.export_compact)
    RUN/report/                     results.json, report.md, report.html
    RUN/job.json                    config, what ran or was cached, seconds, versions
    RUN/cache/{stage}/{task}.json   cache records
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from .._serial import write_json_atomic
from .._torch import torch_threads
from ..store import package_versions
from ._cache import StageCache, cache_key
from ._config import JobConfig

logger = logging.getLogger(__name__)

_VERSIONED = ("numpy", "torch", "transformers", "tokenizers", "scikit-learn", "scipy", "fastcluster")


class RunBusyError(RuntimeError):
    """Another ``redundancy run`` holds the run folder's lock."""


class Updatable(Protocol):
    def update(self, n: int) -> object: ...


class JobProgress(Protocol):
    """How the job reports progress (the CLI draws bars; the library only calls back)."""

    def items(self, total: int, unit: str, desc: str) -> contextlib.AbstractContextManager[Updatable]:
        """A counter for one long loop (extraction, the general pass)."""

    def stage(self, stage: str, done: int, total: int) -> None:
        """Steps of the probe stages (``progress(stage, done, total)``)."""


@dataclass(frozen=True)
class StageRun:
    """One stage of one task: ``ran`` or ``cached``, with its seconds (the original run's when cached)."""

    stage: str
    task: str
    status: str
    seconds: float
    key: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class JobResult:
    """What ``run_job`` did (``job.json``)."""

    out: str
    config: dict[str, Any]
    stages: tuple[StageRun, ...]
    seconds: float
    versions: dict[str, str]
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "stages": [s.to_dict() for s in self.stages]}


class _Job:
    """State shared by the stages of one run: the config, the cache, the model loaded at most once."""

    def __init__(self, config: JobConfig, out: Path, force: frozenset[str], progress: JobProgress | None):
        self.config = config
        self.out = out
        self.cache = StageCache(out)
        self.force = force
        self.progress = progress
        self.runs: list[StageRun] = []
        self.versions = package_versions(_VERSIONED)
        self._lm: tuple[str, Any] | None = None
        self._weights: dict[str, str] = {}
        self.t0 = time.perf_counter()

    # -------------------------------------------------------------- shared resources

    def weights(self, ref: str) -> str:
        """SHA-256 of a model's weight files (without loading the model)."""
        if ref not in self._weights:
            from ..extract import resolve_model, weights_hash

            self._weights[ref] = weights_hash(resolve_model(ref).path)
        return self._weights[ref]

    def model(self, ref: str):
        """The loaded model ``ref``; one model is held at a time (a fine-tuned one per task)."""
        if self._lm is None or self._lm[0] != ref:
            from ..extract import load_model

            self._lm = None
            self._lm = (ref, load_model(ref, max_length=self.config.extract.max_length))
        return self._lm[1]

    @contextlib.contextmanager
    def items(self, total: int, unit: str, desc: str) -> Iterator[Updatable | None]:
        if self.progress is None:
            yield None
        else:
            with self.progress.items(total, unit, desc) as bar:
                yield bar

    def stage_progress(self) -> Callable[[str, int, int], None] | None:
        return None if self.progress is None else self.progress.stage

    # -------------------------------------------------------------- caching

    def cached(self, stage: str, task: str, inputs: dict[str, Any], run: Callable[[], list[Path]]) -> str:
        """Run ``run`` unless a record with the same key exists; return the key."""
        key = cache_key({"stage": stage, **inputs, "versions": self.versions})
        hit = None if stage in self.force else self.cache.lookup(stage, task, key)
        if hit is not None:
            logger.info("%s/%s: cached (%s), skipped", task, stage, hit.finished)
            self.runs.append(StageRun(stage, task, "cached", hit.seconds, key))
        else:
            self.cache.forget(stage, task)
            logger.info("%s/%s: running", task, stage)
            t0 = time.perf_counter()
            outputs = run()
            seconds = time.perf_counter() - t0
            self.cache.record(stage, task, key, inputs, outputs, seconds)
            self.runs.append(StageRun(stage, task, "ran", round(seconds, 3), key))
            logger.info("%s/%s: done in %.1fs", task, stage, seconds)
        self.write_job()
        return key

    def write_job(self) -> JobResult:
        result = JobResult(
            out=str(self.out),
            config=self.config.to_dict(),
            stages=tuple(self.runs),
            seconds=round(time.perf_counter() - self.t0, 3),
            versions=self.versions,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        write_json_atomic(self.out / "job.json", result.to_dict())
        return result


def _targets(job: _Job, task: str) -> list[_Target]:
    """What to analyse for ``task``: the configured model, or (stage ``finetune``) the model
    fine-tuned on the task, and beside it the pretrained one when ``compare_pretrained``."""
    c = job.config
    if "finetune" not in c.stages:
        return [_Target(task, task, c.model)]
    from ..finetune import FinetuneConfig, finetune

    f = c.finetune
    out = job.out / "finetuned" / task
    config = FinetuneConfig(
        lr=f.lr,
        max_epochs=f.max_epochs,
        batch_size=f.batch_size,
        max_length=f.max_length,
        seed=f.seed,
        max_train_examples=f.max_train_examples,
        checkpoint_every=f.checkpoint_every,
        threads=c.threads,
    )

    def run() -> list[Path]:
        # finetune() resumes from out/checkpoint after an interruption, and returns at once when
        # out already holds a finished run of the same recipe and data
        with job.items(0, "ex", f"finetune {task}") as bar:
            finetune(task, c.model, out, config, data_dir=c.data_dir, progress=bar)
        return [out / "finetune.json", out / "config.json"]

    inputs = {"model": c.model, "weights": job.weights(c.model), "task": task, "finetune": f.to_dict()}
    job.cached("finetune", task, inputs, run)
    targets = [_Target(task, task, str(out))]
    if f.compare_pretrained:
        targets.append(_Target(task, f"{task}.pretrained", c.model))
    return targets


def _splits(task: str) -> tuple[str, ...]:
    from ..data import TASKS

    spec = TASKS[task]
    missing = [s for s in ("train", "dev") if s not in spec.splits]
    if missing:
        raise ValueError(f"task {task!r} has no {' or '.join(missing)} split; probes need train and dev")
    return tuple(s for s in ("train", "dev", "test") if s in spec.splits)


@dataclass(frozen=True)
class _Target:
    """One analysis: a task, the model analysed, and the name its results go under (``label``:
    the task, or ``{task}.pretrained`` for the pretrained side of a fine-tuning comparison)."""

    task: str
    label: str
    model: str


def _store_dir(job: _Job, label: str, split: str) -> Path:
    return job.out / "stores" / f"{label}-{split}"


def _extract(job: _Job, target: _Target, split: str) -> str:
    """Extract one split (cached); returns the store's plan hash."""
    from ..data import TASKS, load_task
    from ..extract import ExtractConfig, extract, items_sha256
    from ..store import ActivationStore

    c = job.config
    task = target.task
    spec = TASKS[task]
    cap = c.extract.max_train_tokens if split == "train" and spec.level == "token" else None
    data = load_task(task, split, c.data_dir, max_tokens=cap, max_items=c.extract.max_items)
    settings = {k: v for k, v in c.extract.to_dict().items() if k not in ("max_train_tokens",)} | {
        "max_tokens": cap
    }
    store = _store_dir(job, target.label, split)
    inputs = {
        "model": target.model,
        "weights": job.weights(target.model),
        "task": task,
        "split": split,
        "items": items_sha256(data),
        "files": data.files,
        "settings": settings,
    }

    def run() -> list[Path]:
        config = ExtractConfig(
            aggregation=c.extract.aggregation,
            batch_size=c.extract.batch_size,
            max_length=c.extract.max_length,
            dtype=c.extract.dtype,
        )
        unit = "word" if spec.level == "token" else "ex"
        with job.items(data.n_items, unit, f"extract {target.label}/{split}") as bar:
            extract(data, job.model(target.model), store, config, overwrite=True, progress=bar)
        ActivationStore.open(store)  # verify before recording
        return [store]

    job.cached("extract", f"{target.label}-{split}", inputs, run)
    return ActivationStore.open(store).manifest.plan_hash


def _probe_template(job: _Job):
    from ..probe import ElasticNetProbe

    p = job.config.probe
    return ElasticNetProbe(l1=p.l1, l2=p.l2, solver=p.solver, random_state=job.config.seed)


class _LazyProbeTask:
    """Loads the probe task (all splits' activations in RAM) at most once per task, on first use."""

    def __init__(self, job: _Job, task: str, splits: tuple[str, ...]):
        self.job, self.task, self.splits = job, task, splits
        self._value = None

    def get(self):
        if self._value is None:
            from ..probe import load_probe_task

            d = {s: _store_dir(self.job, self.task, s) for s in self.splits}
            self._value = load_probe_task(d["train"], d["dev"], d.get("test"))
        return self._value


def _run_task(job: _Job, target: _Target) -> None:
    c = job.config
    task = target.label  # results, caches and folders go under the label
    splits = _splits(target.task)
    stages = set(c.stages)
    plans: dict[str, str] = {}
    for split in splits:
        if "extract" in stages:
            plans[split] = _extract(job, target, split)
        else:
            from ..store import ActivationStore, StoreError

            store = _store_dir(job, task, split)
            try:
                plans[split] = ActivationStore.open(store).manifest.plan_hash
            except StoreError as err:
                raise StoreError(f"{err}; add 'extract' to the config's stages", path=store) from None
    loaded = _LazyProbeTask(job, task, splits)
    probe_threads = c.probe.threads or c.threads
    probe_inputs = {"stores": plans, "probe": c.probe.to_dict(), "seed": c.seed}

    if "general" in stages:
        g = c.general
        if g.split not in plans:
            raise ValueError(f"task {task!r} has no {g.split!r} split for the general stage")
        out = job.out / "general" / task

        def run_general_stage() -> list[Path]:
            from ..general import run_general
            from ..store import ActivationStore

            store = ActivationStore.open(_store_dir(job, task, g.split))
            with job.items(store.n_items, "item", f"general {task}/{g.split}") as bar:
                run_general(
                    store,
                    out,
                    step=g.step,
                    report_threshold=g.report_threshold,
                    seed=c.seed,
                    representative=g.representative,
                    progress=bar,
                )
            return [out / "general.json"]

        job.cached(
            "general",
            task,
            {"store": plans[g.split], "general": g.to_dict(), "seed": c.seed},
            run_general_stage,
        )

    if "probe" in stages:
        out = job.out / "probe" / task

        def run_probe_stage() -> list[Path]:
            from sklearn.base import clone

            from ..probe import plot_layers, plot_sizes, run_task_redundancy

            p = c.probe
            probe = _probe_template(job)
            result = run_task_redundancy(
                loaded.get(),
                probe=probe,
                delta=p.delta,
                ranking=p.ranking,
                ranking_probe=None if p.rank_l1 is None else clone(probe).set_params(l1=p.rank_l1),
                controls=p.controls,
                n_random=p.random_draws,
                probe_seeds=p.seeds,
                progress=job.stage_progress(),
            )
            out.mkdir(parents=True, exist_ok=True)
            plot_layers(result, out / "layers.png")
            plot_sizes(result, out / "sizes.png")
            write_json_atomic(out / "probe.json", result.to_dict())
            return [out / "probe.json"]

        with torch_threads(probe_threads):
            job.cached("probe", task, probe_inputs, run_probe_stage)

    pipeline_key = None
    if "pipeline" in stages:
        out = job.out / "pipeline" / task

        def run_pipeline_stage() -> list[Path]:
            from ..pipeline import run_pipeline

            result = run_pipeline(
                loaded.get(),
                grid=c.pipeline.grid,
                thresholds=c.pipeline.thresholds,
                probe=_probe_template(job),
                seed=c.seed,
                progress=job.stage_progress(),
            )
            out.mkdir(parents=True, exist_ok=True)
            (out / "pipeline.md").write_text(result.table_markdown())
            write_json_atomic(out / "pipeline.json", result.to_dict())
            return [out / "pipeline.json", out / "pipeline.md"]

        pipeline_inputs = {**probe_inputs, "pipeline": c.pipeline.to_dict()}
        with torch_threads(probe_threads):
            pipeline_key = job.cached("pipeline", task, pipeline_inputs, run_pipeline_stage)

    if "compact" in stages:
        out = job.out / "compact" / task
        source = job.out / "pipeline" / task / "pipeline.json"

        def run_compact_stage() -> list[Path]:
            from ..pipeline import choose_row, export_compact, load_result

            if not source.is_file():
                raise FileNotFoundError(
                    f"{source}: no pipeline result; add 'pipeline' to the config's stages"
                )
            row = choose_row(load_result(source), min_share=c.compact.min_share)
            export_compact(
                loaded.get(),
                row,
                job.model(target.model),
                out,
                probe=_probe_template(job),
                seed=c.seed,
                overwrite=True,
            )
            return [out / "compact.json"]

        inputs = {
            "pipeline": pipeline_key or _file_key(source),
            "compact": c.compact.to_dict(),
            "weights": job.weights(target.model),
            "seed": c.seed,
        }
        with torch_threads(probe_threads):
            job.cached("compact", task, inputs, run_compact_stage)


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``RUN/.lock`` for the whole run: two runs on one folder would
    redo the same stages and overwrite each other's files."""
    import fcntl

    with (out / ".lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(
                f"{out}: another `redundancy run` is using this run folder; wait for it or use --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _file_key(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def run_job(
    config: JobConfig,
    *,
    out: str | Path | None = None,
    force: tuple[str, ...] = (),
    progress: JobProgress | None = None,
) -> JobResult:
    """Run the config's stages for each of its tasks, skipping what the cache says is done.

    Parameters
    ----------
    config : the experiment (see :func:`load_config`).
    out : the run folder (default ``config.out``).
    force : stages to redo even when cached (``"all"`` for every stage).
    progress : progress callbacks (the CLI's bars); None for none.
    """

    from ._config import STAGES

    out = Path(out if out is not None else config.out)
    config = replace(config, out=str(out))
    force_set = frozenset(STAGES if "all" in force else force)
    unknown = force_set - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) to force: {sorted(unknown)}; known: {list(STAGES)}")
    out.mkdir(parents=True, exist_ok=True)
    with torch_threads(config.threads), _run_lock(out):
        job = _Job(config, out, force_set, progress)
        for task in config.tasks:
            for target in _targets(job, task):
                _run_task(job, target)
                gc.collect()  # the task's activations (often GBs) go before the next task loads its own
        if "report" in config.stages:
            t0 = time.perf_counter()
            from ..report import collect, write_report

            report = collect(out)
            write_report(report, out / "report")
            job.runs.append(StageRun("report", "all", "ran", round(time.perf_counter() - t0, 3), ""))
        result = job.write_job()
    logger.info("run finished in %.1fs: %s", result.seconds, json.dumps([s.status for s in result.stages]))
    return result
