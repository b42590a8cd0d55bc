"""Frozen records of a fine-tuning run (``out/finetune.json``), each with ``to_dict`` / ``from_dict``."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from .._serial import check_fields, json_ready, nan_if_none
from ._config import FinetuneConfig

RESULT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class LossPoint:
    """Mean training loss over the ``log_every`` steps that end at ``step`` (1-based), and the lr then."""

    step: int
    epoch: float
    loss: float
    lr: float

    def to_dict(self) -> dict[str, Any]:
        return json_ready({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossPoint:
        d = check_fields(cls, d)
        return cls(int(d["step"]), float(d["epoch"]), nan_if_none(d["loss"]), float(d["lr"]))


@dataclass(frozen=True)
class DevScore:
    """Scores on the dev split after ``step`` steps (``epoch`` passes); ``scores`` maps metric -> value."""

    step: int
    epoch: float
    scores: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return json_ready({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DevScore:
        d = check_fields(cls, d)
        scores = {str(k): nan_if_none(v) for k, v in d["scores"].items()}
        return cls(int(d["step"]), float(d["epoch"]), scores, float(d["seconds"]))


@dataclass(frozen=True)
class SplitSummary:
    """What one split held: its size, source files (path -> SHA-256), the items' hash and carve seed.

    ``n_at_max_length`` counts inputs that fill ``max_length`` tokens: truncated ones (or exactly that long).
    """

    split: str
    n_items: int
    files: dict[str, str]
    items_sha256: str
    carve_seed: int | None
    n_at_max_length: int = 0

    def to_dict(self) -> dict[str, Any]:
        return json_ready({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitSummary:
        return cls(**check_fields(cls, d))


@dataclass(frozen=True, kw_only=True)
class FinetuneResult:
    """One fine-tuning run, as saved in ``out/finetune.json``.

    Attributes
    ----------
    model, model_source, base_weights_sha256 : the base model's name, folder (or hub id) and weights hash.
    out, weights_sha256 : the saved fine-tuned folder and the hash of its weights.
    task, label_type, labels, metric : the task; ``labels`` are the train split's sorted class names
        (head output ``i`` is ``labels[i]``), ``()`` for a regression head.
    config : the :class:`FinetuneConfig` of the run (of its last invocation, when resumed).
    train, dev : the splits used (``dev`` None when none was given).
    max_length : the input limit actually used (``config.max_length`` capped by the model's).
    steps, total_steps, steps_per_epoch : steps done, steps of the whole recipe, steps per pass.
    finished : ``steps == total_steps``; False when ``max_steps`` stopped the run early.
    loss_log : mean training loss every ``log_every`` steps.
    dev_scores : dev scores at each epoch end (and where the run stopped).
    train_seconds, train_examples, examples_per_s : time in optimizer steps (all invocations together),
        examples processed, and their ratio.
    eval_seconds : time spent scoring the dev split.
    resumed_at : the step each resumed invocation started from.
    seeds : ``{"seed": recipe seed, "carve_seed": the train/dev carve's seed}``.
    versions : package versions of the (last) invocation.
    """

    model: str
    model_source: str
    base_weights_sha256: str
    out: str
    weights_sha256: str
    task: str
    label_type: str
    labels: tuple[str, ...]
    metric: str
    config: FinetuneConfig
    train: SplitSummary
    dev: SplitSummary | None
    max_length: int
    steps: int
    total_steps: int
    steps_per_epoch: int
    finished: bool
    loss_log: tuple[LossPoint, ...]
    dev_scores: tuple[DevScore, ...]
    train_seconds: float
    train_examples: int
    examples_per_s: float
    eval_seconds: float
    resumed_at: tuple[int, ...]
    seeds: dict[str, int | None]
    versions: dict[str, str]
    format_version: int = RESULT_FORMAT_VERSION

    @property
    def dev_score(self) -> float:
        """The task metric on dev after the last step (NaN without a dev split)."""
        if not self.dev_scores:
            return math.nan
        return nan_if_none(self.dev_scores[-1].scores.get(self.metric))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: json_ready(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneResult:
        d = check_fields(cls, d)
        if d.get("format_version", RESULT_FORMAT_VERSION) != RESULT_FORMAT_VERSION:
            raise ValueError(f"finetune.json format {d['format_version']} is not {RESULT_FORMAT_VERSION}")
        d["labels"] = tuple(d["labels"])
        d["config"] = FinetuneConfig.from_dict(d["config"])
        d["train"] = SplitSummary.from_dict(d["train"])
        d["dev"] = None if d["dev"] is None else SplitSummary.from_dict(d["dev"])
        d["loss_log"] = tuple(LossPoint.from_dict(x) for x in d["loss_log"])
        d["dev_scores"] = tuple(DevScore.from_dict(x) for x in d["dev_scores"])
        d["resumed_at"] = tuple(int(x) for x in d["resumed_at"])
        return cls(**d)

    def summary(self) -> dict[str, Any]:
        """The headline numbers, for the command line."""
        return {
            "out": self.out,
            "model": self.model,
            "task": self.task,
            "finished": self.finished,
            "steps": f"{self.steps}/{self.total_steps}",
            "metric": self.metric,
            "dev_score": json_ready(self.dev_score),
            "dev": self.dev_scores[-1].to_dict()["scores"] if self.dev_scores else None,
            "last_loss": json_ready(self.loss_log[-1].loss) if self.loss_log else None,
            "train_seconds": round(self.train_seconds, 1),
            "examples_per_s": round(self.examples_per_s, 2),
        }
