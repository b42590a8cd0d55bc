"""The report's inputs: the stage results of one run folder, typed, with where they came from."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..ablate import AblationResult
from ..general import GeneralResult
from ..pipeline import PipelineResult
from ..probe import TaskRedundancyResult
from ..store import package_versions

logger = logging.getLogger(__name__)

REPORT_FORMAT_VERSION = 1

STAGES = ("finetune", "general", "probe", "ablate", "pipeline", "compact")
"""The per-task stages the report reads, in the order of the report."""

FILES = {
    "finetune": "finetune.json",
    "general": "general.json",
    "probe": "probe.json",
    "ablate": "ablate.json",
    "pipeline": "pipeline.json",
    "compact": "compact.json",
}
"""``RUN/{folder}/{task}/{file}``: where each stage's result lies in a run folder."""

FOLDERS = {stage: stage for stage in STAGES} | {"finetune": "finetuned"}
"""The run folder's subfolder of each stage (the fine-tuned model folders are ``RUN/finetuned/{task}``)."""


def stage_file(run: Path, stage: str, task: str) -> Path:
    """Where ``stage`` leaves its result for ``task`` in the run folder ``run``."""
    return run / FOLDERS[stage] / task / FILES[stage]


_VERSIONED = ("numpy", "scipy", "matplotlib", "torch", "transformers", "tokenizers", "scikit-learn")

_STORE_FIELDS = (
    "model",
    "weights_sha256",
    "tokenizer",
    "task",
    "split",
    "level",
    "aggregation",
    "dtype",
    "n_items",
    "n_layers",
    "hidden",
    "plan_hash",
    "seed",
    "data_files",
    "complete",
    "created",
)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, eq=False)
class TaskSection:
    """Everything the run holds for one task; a stage that did not run is None.

    Attributes
    ----------
    task : str
        Task name (``pos``, ``chunking``, ...).
    finetune : dict or None
        The fine-tuning record ``RUN/finetuned/{task}/finetune.json`` as a plain dict, when the model
        analysed is the one fine-tuned on the task (see :mod:`redundancy.finetune`).
    general : GeneralResult or None
        General redundancy (``RUN/general/{task}/general.json``).
    probe : TaskRedundancyResult or None
        Probes, minimal neuron set and controls (``RUN/probe/{task}/probe.json``).
    ablate : AblationResult or None
        In-model ablation of the rankings (``RUN/ablate/{task}/ablate.json``).
    pipeline : PipelineResult or None
        The efficient-transfer pipeline (``RUN/pipeline/{task}/pipeline.json``).
    compact : dict or None
        The compact model's ``compact.json`` as a plain dict (read with ``.get``: its fields may grow).
    problems : tuple of str
        Result files that exist but could not be read (the report shows them instead of the stage).
    """

    task: str
    general: GeneralResult | None = None
    probe: TaskRedundancyResult | None = None
    ablate: AblationResult | None = None
    pipeline: PipelineResult | None = None
    compact: dict[str, Any] | None = None
    problems: tuple[str, ...] = ()
    finetune: dict[str, Any] | None = None

    @property
    def model(self) -> str | None:
        """The model id, from the first stage that names one (a fine-tuned model folder's name)."""
        for r in (self.general, self.probe, self.pipeline):
            if r is not None:
                return r.model
        return None if self.compact is None else self.compact.get("model")

    @property
    def base_model(self) -> str | None:
        """The pretrained model: the one fine-tuned into :attr:`model` when the task was fine-tuned on."""
        if self.finetune is not None and self.finetune.get("model"):
            return str(self.finetune["model"])
        return self.model

    @property
    def model_label(self) -> str | None:
        """The model as the report names it: ``M fine-tuned on TASK`` for a fine-tuned one, else ``M``."""
        if self.finetune is not None and self.base_model:
            return f"{self.base_model} fine-tuned on {self.finetune.get('task', self.task)}"
        return self.model

    @property
    def n_layers(self) -> int | None:
        """Layers of the full model (embeddings = layer 0), from the first stage that knows."""
        for r in (self.pipeline, self.probe, self.general):
            if r is not None:
                return r.n_layers
        return None if self.compact is None else self.compact.get("n_layers")

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "finetune": None if self.finetune is None else dict(self.finetune),
            "general": None if self.general is None else self.general.to_dict(),
            "probe": None if self.probe is None else self.probe.to_dict(),
            "ablate": None if self.ablate is None else self.ablate.to_dict(),
            "pipeline": None if self.pipeline is None else self.pipeline.to_dict(),
            "compact": None if self.compact is None else dict(self.compact),
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSection:
        def load(name: str, make):
            v = d.get(name)
            return None if v is None else make(v)

        return cls(
            task=d["task"],
            finetune=load("finetune", dict),
            general=load("general", GeneralResult.from_dict),
            probe=load("probe", TaskRedundancyResult.from_dict),
            pipeline=load("pipeline", PipelineResult.from_dict),
            compact=load("compact", dict),
            problems=tuple(d.get("problems", ())),
        )


@dataclass(frozen=True, eq=False)
class Report:
    """A run's results, ready to be written (:func:`redundancy.report.write_report`).

    Attributes
    ----------
    title : str
    sections : tuple of TaskSection
        One per task, in report order.
    provenance : dict
        Where the numbers come from: ``created``, ``run_dir``, ``versions`` (of the reporting
        environment), ``stage_versions``, ``models``, ``stores`` (plan and data hashes), ``inputs``
        (the plan hashes each stage read), ``seeds`` and ``job`` (``RUN/job.json``, or None).
    format_version : int
    """

    title: str
    sections: tuple[TaskSection, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = REPORT_FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", tuple(self.sections))
        names = [s.task for s in self.sections]
        if len(set(names)) != len(names):
            raise ValueError(f"Report: a task appears twice among {names}")

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(s.task for s in self.sections)

    def section(self, task: str) -> TaskSection:
        for s in self.sections:
            if s.task == task:
                return s
        raise KeyError(f"task {task!r} is not in the report (tasks: {list(self.tasks)})")

    def to_dict(self) -> dict[str, Any]:
        """``results.json`` without the derived summary: title, task order, every result, provenance."""
        prov = {k: v for k, v in self.provenance.items() if k != "job"}
        return {
            "format_version": self.format_version,
            "title": self.title,
            "tasks": list(self.tasks),
            "sections": {s.task: s.to_dict() for s in self.sections},
            "provenance": prov,
            "job": self.provenance.get("job"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """Read back :meth:`to_dict` (or a whole ``results.json``; derived keys are ignored)."""
        version = d.get("format_version", REPORT_FORMAT_VERSION)
        if isinstance(version, int) and version > REPORT_FORMAT_VERSION:
            raise ValueError(
                f"report format_version {version} is newer than this code supports ({REPORT_FORMAT_VERSION})"
            )
        sections = d["sections"]
        return cls(
            title=d["title"],
            sections=tuple(TaskSection.from_dict(sections[t]) for t in d["tasks"]),
            provenance={**d.get("provenance", {}), "job": d.get("job")},
            format_version=REPORT_FORMAT_VERSION,
        )


def load_results(path: str | os.PathLike) -> Report:
    """Read ``results.json`` (a file, or the report folder holding it) back into a :class:`Report`."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    return Report.from_dict(json.loads(p.read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------------------------- collect


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _load_stage(stage: str, path: Path):
    data = _read_json(path)
    if stage == "general":
        return GeneralResult.from_dict(data)
    if stage == "probe":
        return TaskRedundancyResult.from_dict(data)
    if stage == "pipeline":
        return PipelineResult.from_dict(data)
    if stage == "ablate":
        return AblationResult.from_dict(data)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _config_tasks(job: dict[str, Any] | None) -> list[str]:
    """Task names in the order of the job's config (``config.tasks``: names, or tables naming a task)."""
    if not isinstance(job, dict):
        return []
    config = job.get("config")
    tasks = config.get("tasks") if isinstance(config, dict) else None
    if tasks is None:
        tasks = job.get("tasks")
    out: list[str] = []
    items: Iterable[Any] = (
        tasks.keys() if isinstance(tasks, dict) else tasks if isinstance(tasks, list) else ()
    )
    for t in items:
        name = (t.get("task") or t.get("name")) if isinstance(t, dict) else t
        if isinstance(name, str) and name not in out:
            out.append(name)
    return out


def _stores(run: Path) -> list[dict[str, Any]]:
    """The manifests of ``RUN/stores/*`` (a few fields each; the arrays are not opened)."""
    out = []
    root = run / "stores"
    if not root.is_dir():
        return out
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        mf = d / "manifest.json"
        if not mf.is_file():
            logger.warning("store folder %s has no manifest.json; left out of the provenance", d)
            continue
        try:
            m = _read_json(mf)
        except (OSError, ValueError) as err:
            logger.warning("store manifest %s could not be read (%s); left out", mf, err)
            continue
        out.append({"name": d.name, **{k: m.get(k) for k in _STORE_FIELDS}})
    return out


def _entry(task: str | None, stage: str, name: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"task": task, "stage": stage, "name": name, "value": value, **extra}


def _provenance(
    run: Path, sections: list[TaskSection], stores: list[dict[str, Any]], job: dict[str, Any] | None
) -> dict[str, Any]:
    """Versions, models with weight hashes, store hashes, the plan hash each stage read, and seeds."""
    stage_versions: dict[str, dict[str, str]] = {}
    models: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    seeds: list[dict[str, Any]] = []

    def add_model(model: Any, sha: Any, source: str) -> None:
        if model is None:
            return
        for m in models:  # a result without a weights hash joins the entry of the same model
            if m["model"] == model and (sha is None or m["weights_sha256"] in (sha, None)):
                m["weights_sha256"] = m["weights_sha256"] or sha
                m["sources"].append(source)
                return
        models.append({"model": model, "weights_sha256": sha, "sources": [source]})

    def add_input(task: str, stage: str, split: str, store: str, plan: str) -> None:
        inputs.append({"task": task, "stage": stage, "split": split, "store": store, "plan_hash": plan})

    for s in stores:
        add_model(s.get("model"), s.get("weights_sha256"), f"store {s['name']}")
        if s.get("seed") is not None:
            seeds.append(_entry(s.get("task"), "extract", f"{s['name']} seed", s["seed"]))
    for sec in sections:
        t, g, p, q, c = sec.task, sec.general, sec.probe, sec.pipeline, sec.compact
        ft = sec.finetune
        if ft is not None:
            add_model(ft.get("model"), ft.get("base_weights_sha256"), f"finetune/{t} (base)")
            add_model(sec.model, ft.get("weights_sha256"), f"finetune/{t} (fine-tuned)")
            if isinstance(ft.get("versions"), dict):
                stage_versions[f"finetune/{t}"] = dict(ft["versions"])
            for name, value in (ft.get("seeds") or {}).items():
                seeds.append(_entry(t, "finetune", str(name), value))
        if g is not None:
            stage_versions[f"general/{t}"] = dict(g.versions)
            add_model(g.model, g.weights_sha256, f"general/{t}")
            add_input(t, "general", g.split, g.store, g.input_hash)
            seeds.append(_entry(t, "general", f"representatives ({g.representative})", g.seed))
        for stage, r in (("probe", p), ("pipeline", q)):
            if r is None:
                continue
            stage_versions[f"{stage}/{t}"] = dict(r.versions)
            add_model(r.model, None, f"{stage}/{t}")
            for info in (r.train, r.dev, r.test):
                if info is not None:
                    add_input(t, stage, info.split, info.path, info.plan_hash)
        if p is not None:
            seeds.append(_entry(t, "probe", "random_state", p.random_state))
        if q is not None:
            seeds.append(_entry(t, "pipeline", "clustering seed", q.seed))
            seeds.append(_entry(t, "pipeline", "probe seed", q.probe_seed))
        if c is not None:
            add_model(c.get("model"), c.get("weights_sha256"), f"compact/{t}")
            if c.get("seed") is not None:
                seeds.append(_entry(t, "compact", "seed", c.get("seed")))
    if isinstance(job, dict):
        if isinstance(job.get("versions"), dict):
            stage_versions["job"] = dict(job["versions"])
        config = job.get("config")
        if isinstance(config, dict) and config.get("seed") is not None:
            seeds.append(_entry(None, "job", "config seed", config["seed"]))
        if isinstance(job.get("seeds"), dict):
            seeds += [_entry(None, "job", str(k), v) for k, v in job["seeds"].items()]
    return {
        "created": _utc_now(),
        "run_dir": str(run.resolve()),
        "versions": package_versions(_VERSIONED),
        "stage_versions": stage_versions,
        "models": models,
        "stores": stores,
        "inputs": inputs,
        "seeds": seeds,
        "job": job,
    }


def collect(run_dir: str | os.PathLike, title: str | None = None) -> Report:
    """Gather a run folder's results into a :class:`Report`.

    Reads ``RUN/{general,probe,pipeline,compact}/{task}/*.json``, the fine-tuning records
    ``RUN/finetuned/{task}/finetune.json``, the store manifests under
    ``RUN/stores`` and ``RUN/job.json`` (optional). Tasks come in the order of the job's config, then
    any others found on disk, sorted. A stage without a result is None (the report says "not run");
    a result file that cannot be read is logged, listed in ``TaskSection.problems`` and treated as
    missing, so one damaged file does not hide the rest of the run.

    Parameters
    ----------
    run_dir : path
        The run folder written by ``redundancy run``.
    title : str, optional
        The report's title (default: the job config's ``title``, else ``Redundancy report``).
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"run folder {run} does not exist")
    job = None
    job_file = run / "job.json"
    if job_file.is_file():
        try:
            job = _read_json(job_file)
        except (OSError, ValueError) as err:
            logger.warning("%s could not be read (%s); tasks are ordered by name", job_file, err)
    stores = _stores(run)

    found: set[str] = {s["task"] for s in stores if isinstance(s.get("task"), str)}
    for stage in STAGES:
        root = run / FOLDERS[stage]
        if root.is_dir():
            found |= {p.name for p in root.iterdir() if p.is_dir()}
    planned = _config_tasks(job)
    order = planned + sorted(found - set(planned))

    sections = []
    for task in order:
        kw: dict[str, Any] = {}
        problems = []
        for stage in STAGES:
            path = stage_file(run, stage, task)
            if not path.is_file():
                continue
            try:
                kw[stage] = _load_stage(stage, path)
            except (OSError, ValueError, KeyError, TypeError) as err:
                logger.warning("%s could not be read: %s", path, err)
                problems.append(f"{stage}: {path} could not be read ({type(err).__name__}: {err})")
        sections.append(TaskSection(task=task, problems=tuple(problems), **kw))
        logger.info("report: task %s: %s", task, ", ".join(k for k in STAGES if k in kw) or "no results")
    if title is None:
        config = job.get("config") if isinstance(job, dict) else None
        title = (
            config.get("title") if isinstance(config, dict) and config.get("title") else "Redundancy report"
        )
    return Report(
        title=str(title), sections=tuple(sections), provenance=_provenance(run, sections, stores, job)
    )
