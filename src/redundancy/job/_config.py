"""The experiment config of ``redundancy run``: one TOML file naming the model, tasks and stages.

Every key has a default (the paper's settings), so the smallest config is ``tasks = ["pos"]``.
Unknown keys and wrong types are refused with the file and key named: a typo must not silently
fall back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._serial import json_ready

STAGES = ("finetune", "extract", "general", "probe", "pipeline", "compact", "report")
DEFAULT_STAGES = STAGES[1:]  # fine-tuning is for sentence tasks, and opt-in


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


class _Section:
    def to_dict(self) -> dict[str, Any]:
        return json_ready(dataclasses.asdict(self))


@dataclass(frozen=True)
class ExtractSettings(_Section):
    """``[extract]``: how activations are stored (see :class:`redundancy.extract.ExtractConfig`).

    ``max_train_tokens`` caps train splits of token tasks at whole sentences (the paper: 150,000
    words); ``max_items`` caps every split (for quick trials).
    """

    aggregation: str | None = None
    batch_size: int = 32
    max_length: int | None = None
    dtype: str = "float32"
    max_train_tokens: int | None = 150_000
    max_items: int | None = None


@dataclass(frozen=True)
class GeneralSettings(_Section):
    """``[general]``: general redundancy on one split of each task (the paper: train)."""

    split: str = "train"
    step: float = 0.05
    report_threshold: float = 0.3
    representative: str = "random"


@dataclass(frozen=True)
class ProbeSettings(_Section):
    """``[probe]``: the probe template and the task-specific analysis (see ``redundancy probe``).

    ``threads`` applies to the probe, pipeline and compact stages (default None: the job's
    ``threads``). On an idle 2-core machine two threads run CCG's probes 1.7x faster than one; on
    cores shared with other jobs, 1 avoids the stalls of oversubscribed threads.
    """

    solver: str = "fast"
    l1: float = 1e-5
    l2: float = 1e-5
    delta: float = 1.0
    ranking: str = "paper"
    rank_l1: float | None = None
    controls: bool = True
    seeds: int = 3
    random_draws: int = 3
    threads: int | None = None


@dataclass(frozen=True)
class PipelineSettings(_Section):
    """``[pipeline]``: tolerance pairs and clustering thresholds (None = no clustering step)."""

    grid: tuple[tuple[float, float], ...] = ((3.0, 1.0), (2.0, 1.0), (1.0, 1.0))
    thresholds: tuple[float | None, ...] = (None, 0.3)


@dataclass(frozen=True)
class CompactSettings(_Section):
    """``[compact]``: which pipeline row becomes the saved compact model (chosen on dev)."""

    min_share: float = 0.97


@dataclass(frozen=True)
class FinetuneSettings(_Section):
    """``[finetune]``: the per-task fine-tuning of sentence tasks (stage ``finetune``; see
    :class:`redundancy.finetune.FinetuneConfig`, whose defaults are the paper's recipe).

    ``compare_pretrained``: also analyse the pretrained model on the same task, under the name
    ``{task}.pretrained``, so the report sets the two side by side.
    """

    max_epochs: float = 3.0
    lr: float = 5e-5
    batch_size: int = 8
    max_length: int = 128
    seed: int = 42
    max_train_examples: int | None = None
    checkpoint_every: int | None = 500
    compare_pretrained: bool = True


@dataclass(frozen=True)
class JobConfig:
    """A whole experiment.

    Attributes
    ----------
    model : local folder, hub id, or a shipped checkpoint name (default ``all-MiniLM-L6-v2``).
    tasks : task names (``redundancy data list``), run in this order.
    stages : which of ``finetune, extract, general, probe, pipeline, compact, report`` to run (default:
        all but ``finetune``); a stage whose inputs another stage makes needs that stage's results on
        disk (run earlier or listed too). ``finetune`` fine-tunes the model on each (sentence) task
        first and analyses the fine-tuned model.
    out : the run folder (relative paths are taken from the current directory).
    seed : seeds the probes, the clustering representatives and the controls.
    threads : CPU threads for torch (None: torch's choice).
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
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    compact: CompactSettings = field(default_factory=CompactSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    source: str = ""

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
    "pipeline": PipelineSettings,
    "compact": CompactSettings,
    "finetune": FinetuneSettings,
}


def _fail(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {message}")


def _number(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(source, key, f"expected a finite number, got {value!r}")
    return float(value)


def _threshold(value: Any, source: str, key: str) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    t = _number(value, source, key)
    if t < 0:
        raise _fail(source, key, f'thresholds must be >= 0 or "none", got {value!r}')
    return t


def _coerce(name: str, annotation: str, value: Any, source: str, key: str) -> Any:
    """Check one scalar or list value against its field's annotation (given as a string)."""
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
            a, b = (_number(v, source, f"{key}[{i}]") for v in pair)
            if not (0 <= a < 100 and 0 <= b < 100):
                raise _fail(source, f"{key}[{i}]", "tolerances are percentages in [0, 100)")
            pairs.append((a, b))
        return tuple(pairs)
    if name == "thresholds":
        if not isinstance(value, list) or not value:
            raise _fail(source, key, 'expected a list of thresholds, e.g. ["none", 0.3]')
        return tuple(_threshold(v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if name in ("tasks", "stages"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise _fail(source, key, "expected a non-empty list of names")
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


def _build(cls: type, d: Any, source: str, prefix: str) -> Any:
    if not isinstance(d, dict):
        raise _fail(source, prefix or "(top level)", "expected a table")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        where = prefix or "(top level)"
        raise _fail(source, where, f"unknown key(s) {unknown}; known: {sorted(fields)}")
    kw: dict[str, Any] = {}
    for name, value in d.items():
        key = f"{prefix}{name}"
        if name in _SECTIONS and cls is JobConfig:
            kw[name] = _build(_SECTIONS[name], value, source, f"{name}.")
        else:
            kw[name] = _coerce(name, str(fields[name].type), value, source, key)
    if cls is JobConfig:
        kw["source"] = source
        config = cls(**kw)
        _validate(config)
        return config
    return cls(**kw)


def _validate(c: JobConfig) -> None:
    from ..data import TASKS

    src = c.source
    bad = [t for t in c.tasks if t not in TASKS]
    if bad:
        raise _fail(src, "tasks", f"unknown task(s) {bad}; known: {sorted(TASKS)}")
    if len(set(c.tasks)) != len(c.tasks):
        raise _fail(src, "tasks", "a task is listed twice")
    bad = [s for s in c.stages if s not in STAGES]
    if bad:
        raise _fail(src, "stages", f"unknown stage(s) {bad}; known: {list(STAGES)}")
    if "finetune" in c.stages:
        token = [t for t in c.tasks if TASKS[t].level == "token"]
        if token:
            raise _fail(src, "stages", f"finetune is for sentence tasks; {token} are token tasks")
        f = c.finetune
        if f.max_epochs <= 0 or f.lr <= 0 or f.batch_size < 1 or f.max_length < 2:
            raise _fail(src, "finetune", "max_epochs, lr, batch_size and max_length must be positive")
        if (f.max_train_examples is not None and f.max_train_examples < 1) or (
            f.checkpoint_every is not None and f.checkpoint_every < 1
        ):
            raise _fail(src, "finetune", "max_train_examples and checkpoint_every must be >= 1")
    if c.threads is not None and c.threads < 1:
        raise _fail(src, "threads", "must be >= 1")
    e = c.extract
    if e.dtype not in ("float32", "float16"):
        raise _fail(src, "extract.dtype", "must be float32 or float16")
    if e.aggregation not in (None, "first", "last", "mean", "cls"):
        raise _fail(src, "extract.aggregation", "must be first, last, mean or cls")
    for name in ("batch_size", "max_length", "max_train_tokens", "max_items"):
        v = getattr(e, name)
        if v is not None and v < 1:
            raise _fail(src, f"extract.{name}", "must be >= 1")
    if c.general.split not in ("train", "dev", "test"):
        raise _fail(src, "general.split", "must be train, dev or test")
    if not 0 < c.general.step <= 1:
        raise _fail(src, "general.step", "must lie in (0, 1]")
    if c.general.representative not in ("random", "central"):
        raise _fail(src, "general.representative", "must be random or central")
    p = c.probe
    if p.solver not in ("fast", "paper"):
        raise _fail(src, "probe.solver", "must be fast or paper")
    if p.ranking not in ("paper", "abs"):
        raise _fail(src, "probe.ranking", "must be paper or abs")
    if p.l1 < 0 or p.l2 < 0 or (p.rank_l1 is not None and p.rank_l1 < 0):
        raise _fail(src, "probe", "penalties must be >= 0")
    if not 0 <= p.delta < 100:
        raise _fail(src, "probe.delta", "must lie in [0, 100)")
    if p.threads is not None and p.threads < 1:
        raise _fail(src, "probe.threads", "must be >= 1")
    if p.seeds < 0 or p.random_draws < 0:
        raise _fail(src, "probe", "seeds and random_draws must be >= 0")
    if not 0 < c.compact.min_share <= 1:
        raise _fail(src, "compact.min_share", "must lie in (0, 1]")


def load_config(path: str | Path) -> JobConfig:
    """Read and check a TOML experiment config."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return _build(JobConfig, raw, str(path), "")
