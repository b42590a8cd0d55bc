"""The experiment config of ``redundancy run``: one TOML file naming the model, tasks and stages.

Every key has a default, and each default is the owning stage's own (``[probe] l1`` is
``ElasticNetProbe``'s ``l1``, ``[pipeline] grid`` is ``redundancy.pipeline.DEFAULT_GRID``, ...), so
the smallest config is ``tasks = ["pos"]``. Unknown keys and wrong types are refused with the file
and key named: a typo must not silently fall back to a default. Values are checked whenever a
config is built (``__post_init__``), so ``dataclasses.replace`` (the CLI's overrides) is checked too.

Compute settings (``threads``, ``[probe] threads``, ``[engine]``) say how fast, not what: they are
resolved once (:attr:`JobConfig.compute`) and enter no cache key.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._serial import json_ready
from ..ablate import MODES as ABLATION_MODES
from ..ablate import run_ablation
from ..data import TASKS
from ..extract import SENTENCE_AGGREGATIONS, TOKEN_AGGREGATIONS, ExtractConfig
from ..finetune import FinetuneConfig
from ..general import REPRESENTATIVES, run_general
from ..pipeline import DEFAULT_GRID, DEFAULT_THRESHOLDS, choose_row, run_pipeline
from ..probe import SOLVERS, ElasticNetProbe, run_task_redundancy
from ..rigour import DEFAULT_BOOT, DEFAULT_LEVEL, SentenceBootstrap
from ..scale import EngineSettings
from ..select import RANKING_METHODS
from ..store import DTYPES

logger = logging.getLogger(__name__)

STAGES = ("finetune", "extract", "general", "probe", "ablate", "pipeline", "compact", "report")
DEFAULT_STAGES = STAGES[1:]  # fine-tuning is for sentence tasks, and opt-in
SPLITS = ("train", "dev", "test")  # the splits a task's analysis reads (train and dev required)
AGGREGATIONS = tuple(dict.fromkeys(TOKEN_AGGREGATIONS + SENTENCE_AGGREGATIONS))


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file (when read from one) and the key."""


def _default(owner: Any, name: str) -> Any:
    """The default of parameter ``name`` of a function or class: the one place that value is stated."""
    return inspect.signature(owner).parameters[name].default


def _one_of(choices: tuple[Any, ...]) -> str:
    return "must be one of " + ", ".join(map(str, choices))


class _Section:
    """One TOML table; ``TABLE`` names it in messages (``extract.batch_size: must be >= 1``)."""

    TABLE = ""
    ALIASES: dict[str, str] = {}  # deprecated key -> its new name

    def to_dict(self) -> dict[str, Any]:
        return json_ready(dataclasses.asdict(self))

    def _require(self, ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{self.TABLE}.{key}: {message}")


@dataclass(frozen=True)
class ExtractSettings(_Section):
    """``[extract]``: how activations are stored (-> :class:`redundancy.extract.ExtractConfig`).

    ``max_train_tokens`` caps train splits of token tasks at whole sentences (the paper: 150,000
    words); ``max_items`` caps every split (for quick trials). ``chunk_items`` is the rows per
    committed chunk of a store, the unit an interrupted extraction resumes from: it changes neither
    the stored activations nor any cache key (see ``_keys.extract_inputs``).
    """

    TABLE = "extract"

    aggregation: str | None = None
    batch_size: int = ExtractConfig.batch_size
    max_length: int | None = ExtractConfig.max_length
    dtype: str = ExtractConfig.dtype
    max_train_tokens: int | None = 150_000
    max_items: int | None = None
    chunk_items: int = ExtractConfig.chunk_items

    def __post_init__(self) -> None:
        self._require(self.aggregation in (None, *AGGREGATIONS), "aggregation", _one_of(AGGREGATIONS))
        self._require(self.dtype in DTYPES, "dtype", _one_of(DTYPES))
        for name in ("max_train_tokens", "max_items"):
            value = getattr(self, name)
            self._require(value is None or value >= 1, name, f"must be >= 1, got {value}")
        try:  # the rest are ExtractConfig's, refused there in the same words as in Python and the CLI
            self.extract_config(None, "cpu")
        except ValueError as err:
            raise ConfigError(f"{self.TABLE}.{err}") from None

    def extract_config(self, threads: int | None, device: str) -> ExtractConfig:
        return ExtractConfig(
            aggregation=self.aggregation,
            batch_size=self.batch_size,
            max_length=self.max_length,
            dtype=self.dtype,
            chunk_items=self.chunk_items,
            device=device,
            threads=threads,
        )


@dataclass(frozen=True)
class GeneralSettings(_Section):
    """``[general]``: general redundancy on one split of each task (the paper: train); the rest are
    :func:`redundancy.general.run_general`'s parameters."""

    TABLE = "general"

    split: str = "train"
    step: float = _default(run_general, "step")
    report_threshold: float = _default(run_general, "report_threshold")
    representative: str = _default(run_general, "representative")

    def __post_init__(self) -> None:
        self._require(self.split in SPLITS, "split", _one_of(SPLITS))
        self._require(0 < self.step <= 1, "step", "must lie in (0, 1]")
        self._require(0 <= self.report_threshold <= 1, "report_threshold", "must lie in [0, 1]")
        self._require(self.representative in REPRESENTATIVES, "representative", _one_of(REPRESENTATIVES))


@dataclass(frozen=True)
class ProbeSettings(_Section):
    """``[probe]``: the probe template (``solver``, ``l1``, ``l2``: :class:`ElasticNetProbe`'s) and the
    task-specific analysis (the rest: :func:`redundancy.probe.run_task_redundancy`'s).

    ``n_seeds`` is how many seeds the oracle is trained with for the seed control (``seeds``, its
    old name, is still read, with a warning). ``threads`` is a compute setting of the probe,
    pipeline and compact stages (default None: the job's ``threads``); it enters no cache key. On
    an idle 2-core machine two threads run CCG's probes 1.7x faster than one; on cores shared with
    other jobs, 1 avoids the stalls of oversubscribed threads.

    ``sweep_thresholds`` (default none; ``redundancy.probe.SWEEP_THRESHOLDS``, 0.1 ... 0.9, in
    examples/paper.toml): the general sweep with task accuracy — a probe retrained on the general
    stage's cluster representatives of all neurons at each of these thresholds (they must be in the
    general sweep), scored against the oracle (``probe.json`` ``sweep``). The probe stage then reads
    ``general.json`` and follows the general stage's key.
    """

    TABLE = "probe"
    ALIASES = {"seeds": "n_seeds"}

    solver: str = _default(ElasticNetProbe, "solver")
    l1: float = _default(ElasticNetProbe, "l1")
    l2: float = _default(ElasticNetProbe, "l2")
    delta: float = _default(run_task_redundancy, "delta")
    ranking: str = _default(run_task_redundancy, "ranking")
    rankings: tuple[str, ...] = _default(run_task_redundancy, "rankings")
    rank_l1: float | None = None
    controls: bool = _default(run_task_redundancy, "controls")
    n_seeds: int = _default(run_task_redundancy, "probe_seeds")
    random_draws: int = _default(run_task_redundancy, "n_random")
    ablation_shares: tuple[float, ...] = _default(run_task_redundancy, "ablation_shares")
    ablation_mode: str = _default(run_task_redundancy, "ablation_mode")
    sweep_thresholds: tuple[float, ...] = ()
    threads: int | None = None

    def __post_init__(self) -> None:
        self._require(self.solver in SOLVERS, "solver", _one_of(SOLVERS))
        self._require(
            all(0 <= t <= 1 for t in self.sweep_thresholds), "sweep_thresholds", "thresholds lie in [0, 1]"
        )
        self._require(self.ranking in RANKING_METHODS, "ranking", _one_of(RANKING_METHODS))
        bad = [m for m in self.rankings if m not in RANKING_METHODS[1:]]
        self._require(not bad, "rankings", f"unknown {bad}; " + _one_of(RANKING_METHODS[1:]))
        self._require(self.ranking != "auto" or len(self.rankings) > 0, "rankings", "auto needs at least one")
        self._require(all(0 < x < 1 for x in self.ablation_shares), "ablation_shares", "shares lie in (0, 1)")
        self._require(self.ablation_mode in ("mean", "zero"), "ablation_mode", _one_of(("mean", "zero")))
        for name in ("l1", "l2", "rank_l1"):
            value = getattr(self, name)
            self._require(value is None or value >= 0, name, "penalties must be >= 0")
        self._require(0 <= self.delta < 100, "delta", "must lie in [0, 100)")
        self._require(self.threads is None or self.threads >= 1, "threads", "must be >= 1")
        self._require(self.n_seeds >= 0, "n_seeds", "must be >= 0")
        self._require(self.random_draws >= 1, "random_draws", "must be >= 1 (the controls' random sets)")

    def template(self, seed: int) -> ElasticNetProbe:
        """The probe every probe, pipeline and compact stage clones."""
        return ElasticNetProbe(l1=self.l1, l2=self.l2, solver=self.solver, random_state=seed)

    def template_settings(self) -> dict[str, Any]:
        """What :meth:`template` reads (with the job's seed)."""
        return {"solver": self.solver, "l1": self.l1, "l2": self.l2}

    def analysis_settings(self) -> dict[str, Any]:
        """What the probe stage reads: the template and the analysis, not ``threads`` (nor an empty
        ``sweep_thresholds``: the keys of runs from before it existed stay valid)."""
        return {
            k: v
            for k, v in self.to_dict().items()
            if k != "threads" and not (k == "sweep_thresholds" and not v)
        }


@dataclass(frozen=True)
class AblateSettings(_Section):
    """``[ablate]``: the causal check of the probe stage's rankings inside the model (stage
    ``ablate``, :func:`redundancy.ablate.run_ablation`): ablate each listed ranking's top ``share``
    of the neurons (``auto``: the ranking the probe stage used) and ``random_draws`` random sets of
    that size, through every later layer, on the first ``max_sentences`` test sentences (dev when
    a task has no test split), replaced by their train ``mean`` or by ``zero``."""

    TABLE = "ablate"

    rankings: tuple[str, ...] = ("auto", "paper")
    share: float = _default(run_ablation, "share")
    random_draws: int = _default(run_ablation, "n_random")
    mode: str = _default(run_ablation, "mode")
    max_sentences: int | None = 300

    def __post_init__(self) -> None:
        bad = [m for m in self.rankings if m not in RANKING_METHODS]
        self._require(not bad, "rankings", f"unknown {bad}; " + _one_of(RANKING_METHODS))
        self._require(0 < self.share < 1, "share", "must lie in (0, 1)")
        self._require(self.random_draws >= 0, "random_draws", "must be >= 0")
        self._require(self.mode in ABLATION_MODES, "mode", _one_of(ABLATION_MODES))
        self._require(self.max_sentences is None or self.max_sentences >= 1, "max_sentences", "must be >= 1")


@dataclass(frozen=True)
class PipelineSettings(_Section):
    """``[pipeline]``: tolerance pairs (percent) and clustering thresholds (None = no clustering
    step); defaults :data:`redundancy.pipeline.DEFAULT_GRID` and ``DEFAULT_THRESHOLDS``.
    ``ranking`` orders the kept neurons for feature selection (:func:`run_pipeline`'s; ``paper``
    reproduces the paper). Any ranking but ``paper``/``abs`` is taken from the probe stage's
    ``probe.json`` when the job runs that stage (``auto``: the ranking it chose on dev).
    """

    TABLE = "pipeline"

    grid: tuple[tuple[float, float], ...] = DEFAULT_GRID
    thresholds: tuple[float | None, ...] = DEFAULT_THRESHOLDS
    ranking: str = _default(run_pipeline, "ranking")

    def __post_init__(self) -> None:
        self._require(len(self.grid) > 0, "grid", "expected at least one [delta_layer, delta_neuron] pair")
        for i, (a, b) in enumerate(self.grid):
            self._require(
                0 <= a < 100 and 0 <= b < 100, f"grid[{i}]", "tolerances are percentages in [0, 100)"
            )
        self._require(
            len(self.thresholds) > 0, "thresholds", 'expected a list of thresholds, e.g. ["none", 0.3]'
        )
        for i, t in enumerate(self.thresholds):
            ok = t is None or 0 <= t <= 1
            self._require(ok, f"thresholds[{i}]", f'thresholds are distances in [0, 1] or "none", got {t!r}')
        self._require(self.ranking in RANKING_METHODS, "ranking", _one_of(RANKING_METHODS))


@dataclass(frozen=True)
class CompactSettings(_Section):
    """``[compact]``: which pipeline row becomes the saved compact model (chosen on dev; the default
    is :func:`choose_row`'s)."""

    TABLE = "compact"

    min_share: float = _default(choose_row, "min_share")

    def __post_init__(self) -> None:
        self._require(0 < self.min_share <= 1, "min_share", "must lie in (0, 1]")


@dataclass(frozen=True)
class FinetuneSettings(_Section):
    """``[finetune]``: the per-task fine-tuning of sentence tasks (stage ``finetune``): the fields of
    :class:`redundancy.finetune.FinetuneConfig` a config may set, with its defaults (the paper's
    recipe).

    ``compare_pretrained``: also analyse the pretrained model on the same task, under the name
    ``{task}.pretrained``, so the report sets the two side by side.
    """

    TABLE = "finetune"

    max_epochs: float = FinetuneConfig.max_epochs
    lr: float = FinetuneConfig.lr
    batch_size: int = FinetuneConfig.batch_size
    max_length: int = FinetuneConfig.max_length
    seed: int = FinetuneConfig.seed
    max_train_examples: int | None = FinetuneConfig.max_train_examples
    checkpoint_every: int | None = FinetuneConfig.checkpoint_every
    compare_pretrained: bool = True

    def __post_init__(self) -> None:
        self._require(self.max_length >= 2, "max_length", "must be >= 2")
        try:
            self.finetune_config()
        except ValueError as err:
            raise ConfigError(f"{self.TABLE}: {err}") from None

    def finetune_config(self, threads: int | None = None, device: str = "cpu") -> FinetuneConfig:
        kw = {k: v for k, v in dataclasses.asdict(self).items() if k != "compare_pretrained"}
        return FinetuneConfig(**kw, threads=threads, device=device)


RIGOUR_NULLS = ("shuffled", "random-init")


@dataclass(frozen=True)
class RigourSettings(_Section):
    """``[rigour]``: error bars and baselines (see docs/rigour.md).

    ``bootstrap``: replicates of the sentence bootstrap of every probe and pipeline test score (0: no
    intervals); ``level``: their coverage; ``selectivity``: train the probe stage's layer family and
    minimal set on the control task of Hewitt & Liang (token tasks; a fixed random label per word
    type) and report every probe's selectivity; ``nulls``: null models of the general stage,
    ``shuffled`` (each neuron's rows permuted independently, in the same pass) and ``random-init``
    (a randomly initialised model of the same architecture, seeded, extracted on the same tokens);
    ``general_groups``: intervals of the general stage's CKA and redundant share, a delete-a-group
    jackknife over this many random groups of sentences (0: none; from the same pass, each group
    costing ``4 N²`` bytes and one more clustering tree).
    """

    TABLE = "rigour"

    bootstrap: int = DEFAULT_BOOT
    level: float = DEFAULT_LEVEL
    selectivity: bool = False
    nulls: tuple[str, ...] = ()
    general_groups: int = 0

    def __post_init__(self) -> None:
        bad = [k for k in self.nulls if k not in RIGOUR_NULLS]
        self._require(not bad, "nulls", f"unknown {bad}; {_one_of(RIGOUR_NULLS)}")
        self._require(self.bootstrap == 0 or self.bootstrap >= 2, "bootstrap", "must be 0 (off) or >= 2")
        self._require(0 < self.level < 1, "level", "must lie in (0, 1)")
        self._require(
            self.general_groups == 0 or self.general_groups >= 2, "general_groups", "must be 0 (off) or >= 2"
        )

    def sentence_bootstrap(self, seed: int) -> SentenceBootstrap | None:
        return None if self.bootstrap == 0 else SentenceBootstrap(self.bootstrap, seed, self.level)


@dataclass(frozen=True)
class EngineSection(_Section):
    """``[engine]``: where the distributable stages run (:class:`redundancy.scale.EngineSettings`):
    ``kind = "local"`` (this process, the default) or ``"ray"``; with ``ray``, ``address`` (the
    cluster to join, ``HOST:6379``; none: a local cluster started by the run) and ``num_cpus`` (the
    local cluster's CPUs, or the most this run uses of a joined one). A compute setting: it changes
    where the work runs, not a byte of what it writes, so it enters no cache key. Wired so far:
    the extraction (and the random-init null's); the other stages run in this process."""

    TABLE = "engine"

    kind: str = EngineSettings.kind
    address: str | None = EngineSettings.address
    num_cpus: int | None = EngineSettings.num_cpus

    def __post_init__(self) -> None:
        try:  # EngineSettings' own checks, in the same words as in Python and the CLI
            self.settings()
        except ValueError as err:
            raise ConfigError(f"{self.TABLE}.{err}") from None

    def settings(self) -> EngineSettings:
        return EngineSettings(kind=self.kind, address=self.address, num_cpus=self.num_cpus)


@dataclass(frozen=True)
class Compute:
    """Where and with how many threads the stages run, resolved once from a config; never part of
    a cache key (it changes how fast, not what comes out).

    ``threads``: torch's CPU threads for the whole run (None: torch's choice); ``probe_threads``:
    those of the probe, pipeline and compact stages; ``device``: where models run; ``engine``:
    where the extraction runs (``[engine]``: this process or a Ray cluster).
    """

    threads: int | None = None
    probe_threads: int | None = None
    device: str = "cpu"
    engine: EngineSettings = field(default_factory=EngineSettings)


@dataclass(frozen=True)
class JobConfig:
    """A whole experiment.

    Attributes
    ----------
    model : local folder, hub id, or a shipped checkpoint name (default ``all-MiniLM-L6-v2``).
    tasks : task names (``redundancy data list``), run in this order.
    stages : which of ``finetune, extract, general, probe, ablate, pipeline, compact, report`` to
        run (default: all but ``finetune``); a stage whose inputs another stage makes needs that
        stage's results on disk (run earlier or listed too). ``finetune`` fine-tunes the model on
        each (sentence) task first and analyses the fine-tuned model.
    out : the run folder (relative paths are taken from the current directory).
    seed : seeds the probes, the clustering representatives and the controls.
    threads : CPU threads for torch (None: torch's choice); see :attr:`compute`.
    engine : ``[engine]``, where the extraction runs (this process or Ray); see :attr:`compute`.
    data_dir : task data folder (None: ``$REDUNDANCY_DATA``, else ``../shared/data``).
    title : the report's title.
    source : the file the config was read from ("" when built in code).
    """

    model: str = "all-MiniLM-L6-v2"
    tasks: tuple[str, ...] = ("pos",)
    stages: tuple[str, ...] = DEFAULT_STAGES
    out: str = "runs/default"
    seed: int = 0
    threads: int | None = None
    data_dir: str | None = None
    title: str = "Redundancy report"
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    general: GeneralSettings = field(default_factory=GeneralSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    ablate: AblateSettings = field(default_factory=AblateSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    compact: CompactSettings = field(default_factory=CompactSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    rigour: RigourSettings = field(default_factory=RigourSettings)
    engine: EngineSection = field(default_factory=EngineSection)
    source: str = ""

    def __post_init__(self) -> None:
        _check_job(self)

    @property
    def compute(self) -> Compute:
        """The run's compute settings: ``[probe] threads`` falls back to ``threads``."""
        return Compute(
            threads=self.threads,
            probe_threads=self.probe.threads or self.threads,
            engine=self.engine.settings(),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (thresholds ``None`` stay null); ``from_dict(to_dict())`` gives the same config."""
        return json_ready(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> JobConfig:
        """Build from plain values (a parsed TOML table, or ``to_dict()`` output)."""
        d = dict(d)
        source = d.pop("source", None) or source
        return _build(cls, d, source, "")


_SECTIONS = {
    "extract": ExtractSettings,
    "general": GeneralSettings,
    "probe": ProbeSettings,
    "ablate": AblateSettings,
    "pipeline": PipelineSettings,
    "compact": CompactSettings,
    "finetune": FinetuneSettings,
    "rigour": RigourSettings,
    "engine": EngineSection,
}


def _fail(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {message}")


def _check_job(c: JobConfig) -> None:
    """The top-level keys and what spans sections (the sections check themselves)."""
    src = c.source or "config"
    for name, cls in _SECTIONS.items():
        if not isinstance(getattr(c, name), cls):
            raise _fail(src, name, f"expected {cls.__name__}, got {type(getattr(c, name)).__name__}")
    bad = [t for t in c.tasks if t not in TASKS]
    if bad:
        raise _fail(src, "tasks", f"unknown task(s) {bad}; known: {sorted(TASKS)}")
    if not c.tasks:
        raise _fail(src, "tasks", "expected a non-empty list of names")
    if len(set(c.tasks)) != len(c.tasks):
        raise _fail(src, "tasks", "a task is listed twice")
    bad = [s for s in c.stages if s not in STAGES]
    if bad:
        raise _fail(src, "stages", f"unknown stage(s) {bad}; known: {list(STAGES)}")
    if "finetune" in c.stages:
        token = [t for t in c.tasks if TASKS[t].level == "token"]
        if token:
            raise _fail(src, "stages", f"finetune is for sentence tasks; {token} are token tasks")
    if c.threads is not None and c.threads < 1:
        raise _fail(src, "threads", "must be >= 1")
    if c.seed < 0:
        raise _fail(src, "seed", "must be >= 0")


def _number(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(source, key, f"expected a finite number, got {value!r}")
    return float(value)


def _threshold(value: Any, source: str, key: str) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    return _number(value, source, key)


def _coerce(name: str, annotation: str, value: Any, source: str, key: str) -> Any:
    """Check one scalar or list value's type against its field's annotation (given as a string);
    ranges are the dataclasses' own checks."""
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise _fail(source, key, "must not be null")
    if name == "grid":
        if not isinstance(value, list) or not value:
            raise _fail(source, key, "expected a list of [delta_layer, delta_neuron] pairs")
        pairs = []
        for i, pair in enumerate(value):
            if not isinstance(pair, list) or len(pair) != 2:
                raise _fail(source, f"{key}[{i}]", f"expected [delta_layer, delta_neuron], got {pair!r}")
            pairs.append(tuple(_number(v, source, f"{key}[{i}]") for v in pair))
        return tuple(pairs)
    if name == "thresholds":
        if not isinstance(value, list) or not value:
            raise _fail(source, key, 'expected a list of thresholds, e.g. ["none", 0.3]')
        return tuple(_threshold(v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if name in ("ablation_shares", "sweep_thresholds"):
        if not isinstance(value, list):
            example = "[0.01, 0.05]" if name == "ablation_shares" else "[0.1, 0.2, 0.3]"
            raise _fail(source, key, f"expected a list of numbers, e.g. {example}")
        return tuple(_number(v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if name in ("tasks", "stages", "rankings"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise _fail(source, key, "expected a non-empty list of names")
        return tuple(value)
    if name == "nulls":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(source, key, 'expected a list of null model names, e.g. ["shuffled", "random-init"]')
        return tuple(value)
    if annotation.startswith("bool"):
        if not isinstance(value, bool):
            raise _fail(source, key, f"expected true or false, got {value!r}")
        return value
    if annotation.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, key, f"expected an integer, got {value!r}")
        return value
    if annotation.startswith("float"):
        return _number(value, source, key)
    if annotation.startswith("str"):
        if not isinstance(value, str):
            raise _fail(source, key, f"expected a string, got {value!r}")
        return value
    raise AssertionError(f"internal: no rule for {annotation}")  # pragma: no cover


def _renamed(cls: type, d: dict[str, Any], source: str, prefix: str) -> dict[str, Any]:
    """``d`` with deprecated keys under their new names (a warning each; both given is an error)."""
    for old, new in getattr(cls, "ALIASES", {}).items():
        if old in d:
            if new in d:
                raise _fail(source, f"{prefix}{old}", f"is the old name of {prefix}{new}; give only {new}")
            logger.warning("%s: %s%s is deprecated; call it %s%s", source, prefix, old, prefix, new)
            d = {(new if k == old else k): v for k, v in d.items()}
    return d


def _suggest(name: str, fields: Any, cls: type) -> str | None:
    """What a misspelt key probably meant: the closest key of the same table, or the table a
    top-level key belongs in (``batch_size`` -> ``'batch_size' under [extract]``); None when none is close."""
    close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.75)
    if close:
        return repr(close[0])
    if cls is JobConfig:
        homes = [t for t, sec in _SECTIONS.items() if name in {f.name for f in dataclasses.fields(sec)}]
        if homes:
            return f"{name!r} under [{homes[0]}]"
    return None


def _build(cls: type, d: Any, source: str, prefix: str) -> Any:
    if not isinstance(d, dict):
        raise _fail(source, prefix[:-1] or "(top level)", f"expected a table, got {d!r}")
    d = _renamed(cls, d, source, prefix)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        guesses = {k: g for k in unknown if (g := _suggest(k, fields, cls)) is not None}
        if len(unknown) == 1 and guesses:
            hint = f" (did you mean {guesses[unknown[0]]}?)"
        else:
            hint = "".join(f"; for {k!r} did you mean {g}?" for k, g in guesses.items())
        where = f"[{prefix[:-1]}]" if prefix else "(top level)"
        raise _fail(source, where, f"unknown key(s) {unknown}{hint}; known: {sorted(fields)}")
    kw: dict[str, Any] = {}
    for name, value in d.items():
        key = f"{prefix}{name}"
        if name in _SECTIONS and cls is JobConfig:
            kw[name] = _build(_SECTIONS[name], value, source, f"{name}.")
        else:
            kw[name] = _coerce(name, str(fields[name].type), value, source, key)
    if cls is JobConfig:
        return cls(**kw, source=source)  # checks itself, naming the source
    try:
        return cls(**kw)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_config(path: str | Path) -> JobConfig:
    """Read and check a TOML experiment config."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{path}: is a folder; pass the TOML config file (e.g. examples/default.toml)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 ({err.reason})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return _build(JobConfig, raw, str(path), "")
