"""``redundancy run``: extract -> general -> probe -> pipeline -> compact -> report for each task.

This module only wires the stages together; each stage's work lives in its own package. Every
stage's result is cached under ``RUN/cache`` with a key of exactly what it reads (see ``_keys``:
the stores' plan hashes, the stage's settings, the seed and package versions; never threads,
device or engine), so a rerun skips finished work and a run that was interrupted resumes where it
stopped.

Run folder::

    RUN/stores/{task}-{split}/      activation stores
    RUN/general/{task}/             general.json, linkage.npy, figures
    RUN/probe/{task}/               probe.json, layers.png, sizes.png
    RUN/pipeline/{task}/            pipeline.json, pipeline.md
    RUN/compact/{task}/             the compact model (see export_compact)
    RUN/report/                     results.json, report.md, report.html
    RUN/job.json                    config, what ran or was cached, seconds, versions
    RUN/cache/{stage}/{task}.json   cache records
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from .._lock import FolderBusyError, hold_lock
from .._progress import Progress, no_progress
from .._serial import write_json_atomic
from .._torch import torch_threads
from ..store import package_versions
from ._cache import StageCache, stage_key
from ._config import SPLITS, STAGES, JobConfig
from ._keys import (
    ablate_inputs,
    compact_inputs,
    extract_inputs,
    finetune_inputs,
    general_inputs,
    max_tokens,
    pipeline_inputs,
    pipeline_ranking_from_probe,
    probe_inputs,
)

logger = logging.getLogger(__name__)

_VERSIONED = ("numpy", "torch", "transformers", "tokenizers", "scikit-learn", "scipy", "fastcluster")


class RunBusyError(FolderBusyError):
    """Another ``redundancy run`` holds the run folder's lock (its pid is ``pid``)."""


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
    """State shared by the stages of one run: the config and its compute settings (resolved once),
    the cache, the progress callback, the model loaded at most once, what ran."""

    def __init__(self, config: JobConfig, out: Path, force: frozenset[str], progress: Progress | None):
        self.config = config
        self.compute = config.compute
        self.out = out
        self.cache = StageCache(out)
        self.force = force
        self.progress: Progress = progress or no_progress
        self.runs: list[StageRun] = []
        self.versions = package_versions(_VERSIONED)
        self._lm: tuple[str, Any] | None = None
        self._weights: dict[str, str] = {}
        self._engine: Any = None
        self.t0 = time.perf_counter()

    @property
    def on_ray(self) -> bool:
        """Whether the distributable work runs on Ray (``[engine] kind = "ray"``): the extraction,
        the general stage's passes and the probe stage's layer family."""
        return self.compute.engine.kind == "ray"

    def engine(self):
        """The run's engine (``[engine]``), started on first use and stopped by :meth:`close`."""
        if self._engine is None:
            from ..scale import make_engine

            self._engine = make_engine(self.compute.engine).start()
        return self._engine

    def release_workers(self) -> None:
        """Let the engine's workers (one model each) go before the analysis stages need the memory."""
        if self._engine is not None:
            self._engine.release()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.stop()
            self._engine = None

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
            lm = load_model(ref, device=self.compute.device, max_length=self.config.extract.max_length)
            self._lm = (ref, lm)
        return self._lm[1]

    def cached(self, stage: str, task: str, inputs: dict[str, Any], run: Callable[[], list[Path]]) -> str:
        """Run ``run`` unless a record with the same key exists; return the key."""
        key = stage_key(stage, inputs, self.versions)
        hit = None if stage in self.force else self.cache.lookup(stage, task, key)
        damage = None if hit is None else self.cache.check(hit)
        if damage is not None:
            logger.warning(
                "%s/%s: %s is not what the stage wrote (%s): removing the stage's outputs and recomputing",
                task,
                stage,
                self.out / damage.file,
                damage.reason,
            )
            self.cache.remove_outputs(hit)
            hit = None
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


@dataclass(frozen=True)
class _Target:
    """One analysis: a task, the model analysed, and the name its results go under (``label``:
    the task, or ``{task}.pretrained`` for the pretrained side of a fine-tuning comparison)."""

    task: str
    label: str
    model: str


# ------------------------------------------------------------------ finetune and extract


def _targets(job: _Job, task: str) -> list[_Target]:
    """What to analyse for ``task``: the configured model, or (stage ``finetune``) the model
    fine-tuned on the task, and beside it the pretrained one when ``compare_pretrained``."""
    c = job.config
    if "finetune" not in c.stages:
        return [_Target(task, task, c.model)]
    out = job.out / "finetuned" / task
    job.cached(
        "finetune", task, finetune_inputs(c, task, job.weights(c.model)), partial(_finetune, job, task, out)
    )
    targets = [_Target(task, task, str(out))]
    if c.finetune.compare_pretrained:
        targets.append(_Target(task, f"{task}.pretrained", c.model))
    return targets


def _finetune(job: _Job, task: str, out: Path) -> list[Path]:
    """Fine-tune the config's model on ``task`` into ``out``; ``finetune`` resumes from
    ``out/checkpoint`` after an interruption and returns at once on a finished run of the same
    recipe and data."""
    from ..finetune import finetune

    c = job.config
    config = c.finetune.finetune_config(threads=job.compute.threads, device=job.compute.device)
    finetune(task, c.model, out, config, data_dir=c.data_dir, progress=job.progress)
    return [out / "finetune.json", out / "config.json"]


def _splits(task: str) -> tuple[str, ...]:
    from ..data import TASKS

    spec = TASKS[task]
    missing = [s for s in ("train", "dev") if s not in spec.splits]
    if missing:
        raise ValueError(f"task {task!r} has no {' or '.join(missing)} split; probes need train and dev")
    return tuple(s for s in SPLITS if s in spec.splits)


def _store_dir(job: _Job, label: str, split: str) -> Path:
    return job.out / "stores" / f"{label}-{split}"


def _plan_hash(store: Path, hint: str = "") -> str:
    from ..store import ActivationStore, StoreError

    try:
        return ActivationStore.open(store).manifest.plan_hash
    except StoreError as err:
        if not hint:
            raise
        raise StoreError(f"{err}; {hint}", path=store) from None


def _extract(job: _Job, target: _Target, split: str) -> str:
    """Extract one split (cached); returns the store's plan hash."""
    from ..data import load_task
    from ..extract import items_sha256

    c = job.config
    cap = max_tokens(c, target.task, split)
    data = load_task(target.task, split, c.data_dir, max_tokens=cap, max_items=c.extract.max_items)
    store = _store_dir(job, target.label, split)
    inputs = extract_inputs(
        c,
        model=target.model,
        weights=job.weights(target.model),
        task=target.task,
        split=split,
        items=items_sha256(data),
        files=data.files,
    )
    run = partial(_extract_store, job, target, data, store)
    return _cached_store(job, f"{target.label}-{split}", inputs, run, store)


def _cached_store(
    job: _Job, task: str, inputs: dict[str, Any], run: Callable[[], list[Path]], store: Path
) -> str:
    """The extract stage of one store (cached); a cached store that fails its quick check (a
    record left before the cache kept its files' hashes) is removed and extracted again."""
    from ..store import StoreError

    job.cached("extract", task, inputs, run)
    try:
        return _plan_hash(store)
    except StoreError as err:
        logger.warning("%s/extract: %s; removing the store and extracting it again", task, err)
        shutil.rmtree(store, ignore_errors=True)
        job.cache.forget("extract", task)
        job.runs[:] = [r for r in job.runs if (r.stage, r.task) != ("extract", task)]  # not "cached"
        job.cached("extract", task, inputs, run)
        return _plan_hash(store)


def _extract_store(job: _Job, target: _Target, data, store: Path) -> list[Path]:
    from ..extract import extract

    config = job.config.extract.extract_config(job.compute.threads, job.compute.device)
    if job.on_ray:  # workers load the model and compute the chunks; this process commits them
        from ..scale import extract_on_engine

        return _extract_verified(
            store,
            lambda: extract_on_engine(
                data, target.model, store, config, job.engine(), overwrite=True, progress=job.progress
            ),
        )
    return _extract_verified(
        store,
        lambda: extract(data, job.model(target.model), store, config, overwrite=True, progress=job.progress),
    )


def _extract_verified(store: Path, extract_into: Callable[[], object]) -> list[Path]:
    """Extract (or resume) ``store``, then hash it against its manifest before the stage is recorded
    (the record keeps the manifest's hashes). A store that was complete but damaged before this
    extraction, which then found nothing to do, fails here and is extracted again from nothing."""
    from ..store import ActivationStore, StoreError

    extract_into()
    try:
        ActivationStore.open(store, verify="full")
    except StoreError as err:
        logger.warning("%s; removing the store and extracting it again from nothing", err)
        shutil.rmtree(store)
        extract_into()
        ActivationStore.open(store, verify="full")
    return [store]


def _stores(job: _Job, target: _Target) -> dict[str, str]:
    """Each split's store plan hash: extracted now (stage ``extract``) or found in the run folder."""
    splits = _splits(target.task)
    if "extract" in job.config.stages:
        stores = {split: _extract(job, target, split) for split in splits}
        job.release_workers()
        return stores
    hint = "add 'extract' to the config's stages"
    return {split: _plan_hash(_store_dir(job, target.label, split), hint) for split in splits}


# ------------------------------------------------------------------ the analysis stages


class _LazyProbeTask:
    """Loads the probe task (all splits' activations in RAM) at most once per task, on first use."""

    def __init__(self, job: _Job, label: str, splits: tuple[str, ...]):
        self.job, self.label, self.splits = job, label, splits
        self._value = None

    def get(self):
        if self._value is None:
            from ..probe import load_probe_task

            d = {s: _store_dir(self.job, self.label, s) for s in self.splits}
            task = load_probe_task(d["train"], d["dev"], d.get("test"))
            c = self.job.config
            self._value = replace(task, bootstrap=c.rigour.sentence_bootstrap(c.seed))
        return self._value


@dataclass(frozen=True)
class _Analysis:
    """One target's stores (split -> plan hash) and its activations, loaded on first use."""

    target: _Target
    stores: dict[str, str]
    data: _LazyProbeTask

    @property
    def label(self) -> str:
        return self.target.label


def _pipeline_json(job: _Job, a: _Analysis) -> Path:
    return job.out / "pipeline" / a.label / "pipeline.json"


def _file_key(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def _general_inputs(job: _Job, a: _Analysis, keys: Mapping[str, str]) -> dict[str, Any]:
    split = job.config.general.split
    if split not in a.stores:
        raise ValueError(f"task {a.label!r} has no {split!r} split for the general stage")
    stores = dict(a.stores)
    if "random-init" in job.config.rigour.nulls:
        stores[f"{split}.random-init"] = _extract_random_init(job, a.target, split)
    return general_inputs(job.config, stores)


def _random_init_dir(job: _Job, label: str, split: str) -> Path:
    return job.out / "stores" / f"{label}-{split}.random-init"


def _extract_random_init(job: _Job, target: _Target, split: str) -> str:
    """The random-init null's store of one split (the same tokens through a randomly initialised
    model of the same architecture, seeded with the job's seed; cached like any extraction)."""
    from ..data import load_task
    from ..extract import extract, items_sha256, load_model

    c = job.config
    cap = max_tokens(c, target.task, split)
    data = load_task(target.task, split, c.data_dir, max_tokens=cap, max_items=c.extract.max_items)
    store = _random_init_dir(job, target.label, split)
    weights = f"random-init-s{c.seed}:{job.weights(target.model)}"
    inputs = extract_inputs(
        c,
        model=target.model,
        weights=weights,
        task=target.task,
        split=split,
        items=items_sha256(data),
        files=data.files,
    )

    def run() -> list[Path]:
        config = c.extract.extract_config(job.compute.threads, job.compute.device)
        if job.on_ray:
            from ..scale import extract_on_engine

            return _extract_verified(
                store,
                lambda: extract_on_engine(
                    data,
                    target.model,
                    store,
                    config,
                    job.engine(),
                    random_init=c.seed,
                    overwrite=True,
                    progress=job.progress,
                ),
            )
        lm = load_model(
            target.model, device=job.compute.device, max_length=c.extract.max_length, random_init=c.seed
        )
        return _extract_verified(
            store, lambda: extract(data, lm, store, config, overwrite=True, progress=job.progress)
        )

    plan = _cached_store(job, f"{target.label}-{split}.random-init", inputs, run, store)
    job.release_workers()
    return plan


def _general(job: _Job, a: _Analysis) -> list[Path]:
    from ..general import run_general
    from ..store import ActivationStore

    g, out = job.config.general, job.out / "general" / a.label
    store = ActivationStore.open(_store_dir(job, a.label, g.split))
    nulls = job.config.rigour.nulls
    null_stores = {"random-init": _random_init_dir(job, a.label, g.split)} if "random-init" in nulls else {}
    run_general(
        store,
        out,
        step=g.step,
        report_threshold=g.report_threshold,
        seed=job.config.seed,
        representative=g.representative,
        nulls=nulls,
        null_stores=null_stores,
        intervals=job.config.rigour.general_groups,
        level=job.config.rigour.level,
        engine=job.engine() if job.on_ray else None,  # the passes' groups on the workers
        progress=job.progress,
    )
    return [out]  # general.json, linkage.npy and the figures


def _general_json(job: _Job, a: _Analysis) -> Path:
    return job.out / "general" / a.label / "general.json"


def _probe_inputs(job: _Job, a: _Analysis, keys: Mapping[str, str]) -> dict[str, Any]:
    general = None
    if job.config.probe.sweep_thresholds:
        general = keys.get("general") or _file_key(_general_json(job, a))
    return probe_inputs(job.config, a.stores, general=general)


def _probe(job: _Job, a: _Analysis) -> list[Path]:
    from sklearn.base import clone

    from ..probe import (
        FamilyCheckpoint,
        incremental_file,
        plot_layers,
        plot_rankings,
        plot_sizes,
        plot_sweep,
        run_task_redundancy,
    )

    p, out = job.config.probe, job.out / "probe" / a.label
    probe = p.template(job.config.seed)
    # finished probe families survive a kill inside the stage; removed once probe.json is written
    checkpoint = FamilyCheckpoint(out / ".checkpoint", scope=json.dumps(a.stores, sort_keys=True))
    task = replace(a.data.get(), checkpoint=checkpoint)
    result = run_task_redundancy(
        task,
        probe=probe,
        delta=p.delta,
        ranking=p.ranking,
        rankings=p.rankings,
        ablation_shares=p.ablation_shares,
        ablation_mode=p.ablation_mode,
        ranking_probe=None if p.rank_l1 is None else clone(probe).set_params(l1=p.rank_l1),
        controls=p.controls,
        n_random=p.random_draws,
        probe_seeds=p.n_seeds,
        save_oracle=out / "oracle.safetensors",
        save_incremental=out / "incremental",
        control_words=_control_words(job, a) if job.config.rigour.selectivity else None,
        control_seed=job.config.seed,
        fit_family=_engine_family(job, a),
        progress=job.progress,
    )
    if p.sweep_thresholds:
        result = replace(result, sweep=_sweep(job, a, task, probe, result))
    out.mkdir(parents=True, exist_ok=True)
    plot_layers(result, out / "layers.png")
    plot_sizes(result, out / "sizes.png")
    plot_rankings(result, out / "rankings.png")
    if result.sweep is not None:
        plot_sweep(result, out / "sweep.png")
    write_json_atomic(out / "probe.json", result.to_dict())
    if checkpoint.hits:
        logger.info("%s/probe: %d probe families read from the checkpoint", a.label, checkpoint.hits)
    checkpoint.clear()
    layers = [out / "incremental" / incremental_file(i) for i in range(result.n_layers)]
    return [out / "probe.json", out / "oracle.safetensors", *layers]


def _engine_family(job: _Job, a: _Analysis) -> Any:
    """On Ray, the layer family's trainer (``redundancy.scale.EngineFamily``: the family cut into one
    part per worker, each reading the stores itself); None (this process) otherwise."""
    if not job.on_ray:
        return None
    from ..scale import EngineFamily

    engine = job.engine()
    train, dev = (_store_dir(job, a.label, s) for s in ("train", "dev"))
    return EngineFamily(train, dev, engine=engine, n_parts=engine.n_workers)


def _sweep(job: _Job, a: _Analysis, task: Any, probe: Any, result: Any) -> Any:
    """The general sweep with task accuracy: the probe stage's oracle against probes on the general
    stage's representatives at each of ``[probe] sweep_thresholds`` (those of its sweep)."""
    from ..general import load_result
    from ..probe import sweep_accuracy

    path = _general_json(job, a)
    if not path.is_file():
        raise ValueError(
            f"{a.label}: [probe] sweep_thresholds needs the general stage's result {path}; "
            "add 'general' to the stages (or run it first)"
        )
    g = load_result(path)
    points = []
    for t in job.config.probe.sweep_thresholds:
        try:
            points.append((t, g.at(t).representatives))
        except KeyError:
            logger.warning(
                "%s: threshold %g is not in the general sweep %s; skipped", a.label, t, g.thresholds
            )
    return sweep_accuracy(
        task,
        probe,
        points,
        result.oracle,
        representative=g.representative,
        general_split=g.split,
        progress=job.progress,
    )


def _control_words(job: _Job, a: _Analysis) -> dict[str, list[str]] | None:
    """The word form of every labelled item of each split, for the control task (token tasks only;
    None with a log line for sentence tasks, whose items are not words)."""
    from ..data import TASKS, load_task
    from ..probe import item_words

    if TASKS[a.target.task].level != "token":
        logger.info("%s: selectivity needs word tokens; not computed for a sentence task", a.label)
        return None
    c, task = job.config, a.data.get()
    out = {}
    for split, sp in (("train", task.train), ("dev", task.dev), ("test", task.test)):
        if sp is None:
            continue
        cap = max_tokens(c, a.target.task, split)
        data = load_task(a.target.task, split, c.data_dir, max_tokens=cap, max_items=c.extract.max_items)
        out[split] = item_words(data, sp.sentence_ids, sp.positions)
    return out


def _ablate_inputs(job: _Job, a: _Analysis, keys: Mapping[str, str]) -> dict[str, Any]:
    probe = keys.get("probe") or _file_key(_probe_json(job, a))
    return ablate_inputs(job.config, a.stores, probe=probe, weights=job.weights(a.target.model))


def _ablate(job: _Job, a: _Analysis) -> list[Path]:
    from ..ablate import run_ablation
    from ..data import load_task
    from ..probe import TaskRedundancyResult, load_probe

    c, out = job.config, job.out / "ablate" / a.label
    path = _probe_json(job, a)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no probe result to ablate; add 'probe' to the config's stages")
    r = TaskRedundancyResult.from_dict(json.loads(path.read_text()))
    rankings = {}
    for name in c.ablate.rankings:
        method = r.ranking_method if name == "auto" else name
        order = r.ranking if method == r.ranking_method else (r.rankings or {}).get(method)
        if order is None:
            raise ValueError(f"{path}: has no {method!r} ranking to ablate; add it to [probe] rankings")
        rankings.setdefault(method, order)
    split = "test" if "test" in a.stores else "dev"
    caps = [x for x in (c.ablate.max_sentences, c.extract.max_items) if x is not None]
    data = load_task(a.target.task, split, c.data_dir, max_items=min(caps) if caps else None)
    stores = {s: _store_dir(job, a.label, s) for s in ("train", "dev")}
    result = run_ablation(
        data,
        job.model(a.target.model),
        stores["train"],
        stores["dev"],
        load_probe(path.parent / "oracle.safetensors"),
        rankings,
        out / "work",
        share=c.ablate.share,
        n_random=c.ablate.random_draws,
        mode=c.ablate.mode,
        seed=c.seed,
        config=c.extract.extract_config(job.compute.threads, job.compute.device),
        progress=job.progress,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "ablate.json", result.to_dict())
    return [out / "ablate.json"]


def _probe_json(job: _Job, a: _Analysis) -> Path:
    return job.out / "probe" / a.label / "probe.json"


def _pipeline_inputs(job: _Job, a: _Analysis, keys: Mapping[str, str]) -> dict[str, Any]:
    probe = keys.get("probe") or _file_key(_probe_json(job, a))
    return pipeline_inputs(job.config, a.stores, probe=probe)


def _pipeline(job: _Job, a: _Analysis) -> list[Path]:
    from ..pipeline import run_pipeline

    c, out = job.config, job.out / "pipeline" / a.label
    order, source, given = None, None, None
    if pipeline_ranking_from_probe(c):  # keyed on the probe stage: its ranking and incremental probes
        order, source = _probe_stage_ranking(job, a)
        given = _probe_stage_incremental(job, a)
    result = run_pipeline(
        a.data.get(),
        grid=c.pipeline.grid,
        thresholds=c.pipeline.thresholds,
        probe=c.probe.template(c.seed),
        seed=c.seed,
        ranking=c.pipeline.ranking,
        neuron_order=order,
        ranking_source=source,
        incremental_probes=given,
        progress=job.progress,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.md").write_text(result.table_markdown())
    write_json_atomic(out / "pipeline.json", result.to_dict())
    return [out / "pipeline.json", out / "pipeline.md"]


def _probe_stage_incremental(job: _Job, a: _Analysis) -> list | None:
    """The probe stage's incremental probes (trained with the pipeline's probe template and seed),
    or None (then the pipeline trains them) when its folder lacks them (a probe stage of an older
    version)."""
    from ..probe import TaskRedundancyResult, incremental_file, load_probe

    folder = _probe_json(job, a).parent / "incremental"
    r = TaskRedundancyResult.from_dict(json.loads(_probe_json(job, a).read_text()))
    paths = [folder / incremental_file(i) for i in range(r.n_layers)]
    if not all(p.is_file() for p in paths):
        logger.info("%s: no incremental probes from the probe stage; the pipeline trains them", folder)
        return None
    return [load_probe(p) for p in paths]


def _probe_stage_ranking(job: _Job, a: _Analysis) -> tuple[list[int], dict]:
    """The probe stage's ranking for the pipeline's ``[pipeline] ranking``: its chosen one for
    ``auto``, else the named one (it must be among ``[probe] rankings``)."""
    from ..probe import TaskRedundancyResult

    path, want = _probe_json(job, a), job.config.pipeline.ranking
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no probe result for the pipeline's ranking; run the probe stage")
    r = TaskRedundancyResult.from_dict(json.loads(path.read_text()))
    if want == "auto":
        why = (r.ranking_choice or {}).get("reason", f"ranking = {r.ranking_method!r}")
        return list(r.ranking), {"method": r.ranking_method, "source": f"probe stage ({path})", "reason": why}
    if not r.rankings or want not in r.rankings:
        raise ValueError(f"{path}: has no {want!r} ranking; add it to [probe] rankings")
    return list(r.rankings[want]), {"method": want, "source": f"probe stage ({path})", "reason": "asked for"}


def _compact_inputs(job: _Job, a: _Analysis, keys: Mapping[str, str]) -> dict[str, Any]:
    pipeline = keys.get("pipeline") or _file_key(_pipeline_json(job, a))
    return compact_inputs(job.config, a.stores, pipeline=pipeline, weights=job.weights(a.target.model))


def _compact(job: _Job, a: _Analysis) -> list[Path]:
    from ..compact import export_compact
    from ..pipeline import choose_row, load_result

    c, source, out = job.config, _pipeline_json(job, a), job.out / "compact" / a.label
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no pipeline result; add 'pipeline' to the config's stages")
    row = choose_row(load_result(source), min_share=c.compact.min_share)
    model = job.model(a.target.model)
    export_compact(a.data.get(), row, model, out, probe=c.probe.template(c.seed), overwrite=True)
    return [out]  # compact.json, the model and the probe: every file of it is checked on reuse


@dataclass(frozen=True)
class _Stage:
    """One analysis stage: its key's inputs (given the keys of the stages before it), its work,
    and whether it runs with ``[probe] threads``."""

    name: str
    inputs: Callable[[_Job, _Analysis, Mapping[str, str]], dict[str, Any]]
    run: Callable[[_Job, _Analysis], list[Path]]
    probe_threads: bool


_ANALYSIS_STAGES = (
    _Stage("general", _general_inputs, _general, probe_threads=False),
    _Stage("probe", _probe_inputs, _probe, probe_threads=True),
    _Stage("ablate", _ablate_inputs, _ablate, probe_threads=False),
    _Stage("pipeline", _pipeline_inputs, _pipeline, probe_threads=True),
    _Stage("compact", _compact_inputs, _compact, probe_threads=True),
)


def _run_task(job: _Job, target: _Target) -> None:
    """One target: its stores, then each listed analysis stage in order, cached by what it reads."""
    splits = _splits(target.task)
    a = _Analysis(target, _stores(job, target), _LazyProbeTask(job, target.label, splits))
    keys: dict[str, str] = {}
    for stage in _ANALYSIS_STAGES:
        if stage.name not in job.config.stages:
            continue
        inputs = stage.inputs(job, a, keys)
        with torch_threads(job.compute.probe_threads if stage.probe_threads else None):
            keys[stage.name] = job.cached(stage.name, a.label, inputs, partial(stage.run, job, a))


# ------------------------------------------------------------------ the run


def _report(job: _Job) -> None:
    from ..report import collect, write_report

    t0 = time.perf_counter()
    write_report(collect(job.out), job.out / "report")
    job.runs.append(StageRun("report", "all", "ran", round(time.perf_counter() - t0, 3), ""))


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``RUN/.lock`` for the whole run, with this process's pid in it:
    two runs on one folder would redo the same stages and overwrite each other's files, and the
    other commands refuse to write under a locked run folder (``redundancy._lock``)."""
    with hold_lock(out, busy=RunBusyError):
        yield


# What a writer killed mid-way leaves, by the names the package gives it: the atomic writer's
# temporary file (``_serial.atomic_file``: ``.NAME.XXXXXXXX.tmp``), a compact model's unfinished
# folder (``.NAME.partial-XXXXXXXX``) and a fine-tuning checkpoint's (``.checkpoint-XXXXXXXX``).
_LEFTOVER = re.compile(r"\.(?:.+\.[a-z0-9_]{8}\.tmp|.+\.partial-[a-z0-9_]{8}|checkpoint-[a-z0-9_]{8})")


def _remove_leftovers(out: Path) -> None:
    """Remove what a killed run left half-written in its folder: the temporary files and folders of
    ``_LEFTOVER``, and the old folder of a replacement (``_serial.replace_dir``) cut off after its
    new folder was in place (``NAME.old`` beside ``NAME``). Called while this run holds the
    folder's lock: no other process writes there, so none of them is still being written."""
    stale = [
        p
        for p in out.rglob("*")
        if _LEFTOVER.fullmatch(p.name)
        or (p.name.endswith(".old") and p.is_dir() and p.with_name(p.name[: -len(".old")]).exists())
    ]
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists() or p.is_symlink():
            p.unlink(missing_ok=True)
    if stale:
        names = ", ".join(str(p.relative_to(out)) for p in stale[:5])
        logger.info("%s: removed %d leftovers of an interrupted run (%s)", out, len(stale), names)


def _forced(force: tuple[str, ...]) -> frozenset[str]:
    forced = frozenset(STAGES if "all" in force else force)
    unknown = forced - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) to force: {sorted(unknown)}; known: {list(STAGES)}")
    return forced


def run_job(
    config: JobConfig,
    *,
    out: str | Path | None = None,
    force: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> JobResult:
    """Run the config's stages for each of its tasks, skipping what the cache says is done.

    Parameters
    ----------
    config : the experiment (see :func:`load_config`).
    out : the run folder (default ``config.out``).
    force : stages to redo even when cached (``"all"`` for every stage).
    progress : a :class:`redundancy._progress.Progress` (the CLI's bars: ``stage_bars``); None for none.
    """
    out = Path(out if out is not None else config.out)
    config = replace(config, out=str(out))
    forced = _forced(tuple(force))
    out.mkdir(parents=True, exist_ok=True)
    with torch_threads(config.compute.threads), _run_lock(out):
        _remove_leftovers(out)
        job = _Job(config, out, forced, progress)
        try:
            for task in config.tasks:
                for target in _targets(job, task):
                    _run_task(job, target)
                    gc.collect()  # the task's activations (often GBs) go before the next task loads its own
            if "report" in config.stages:
                _report(job)
            result = job.write_job()
        finally:
            job.close()  # the engine: its workers, and the Ray cluster if the run started one
    logger.info("run finished in %.1fs: %s", result.seconds, json.dumps([s.status for s in result.stages]))
    return result
