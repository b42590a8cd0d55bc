"""The fine-tuning recipe: one frozen dataclass whose defaults are the paper's (Hugging Face run_glue's)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from .._serial import check_fields

# Fields that only decide when to stop, where to run or what to log: a run resumed with other values
# still ends with the same weights, so they stay out of the checkpoint's fingerprint.
_NOT_RECIPE = frozenset(
    {"max_steps", "checkpoint_every", "log_every", "keep_checkpoint", "eval_batch_size", "threads", "device"}
)


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """How to fine-tune a model with a classification (or regression) head on a sentence task.

    The defaults are those of Hugging Face's ``run_glue.py`` of 2020, the script the paper's fine-tuned
    models come from (PAPER.md only says "fine-tuned"): AdamW (no weight decay, eps 1e-8), lr 5e-5,
    3 epochs, batch 8, max length 128, seed 42, gradient clipping at norm 1.0, no warm-up and a linear
    decay of the learning rate to 0 over all steps of ``max_epochs``.

    Attributes
    ----------
    lr : peak learning rate of AdamW.
    max_epochs : passes over the train split (a float trains a share of the last pass); it fixes the number
        of steps ``ceil(max_epochs * ceil(n_train / batch_size))`` and hence the learning-rate schedule.
    batch_size : examples per optimizer step (the last batch of an epoch may be smaller).
    max_length : longest input in tokens (pairs truncated ``longest_first``); capped by the model's limit.
    seed : seeds the head's initialisation, the data order of every epoch and dropout.
    weight_decay, adam_epsilon, max_grad_norm, warmup_steps : the rest of the optimizer recipe.
    max_train_examples : keep only the first N examples of the train split (``None``: all).
    max_steps : stop after this many optimizer steps in all. A stop, not a shorter recipe: the schedule
        is still the one of ``max_epochs``, so rerunning without it resumes and ends as an uninterrupted run.
    checkpoint_every : also write the resumable checkpoint every N steps (``None``: at epoch ends only).
    log_every : record the mean training loss every N steps in ``FinetuneResult.loss_log``.
    keep_checkpoint : keep ``out/checkpoint/`` after the run finished (it is removed by default).
    eval_batch_size : examples per forward pass when scoring the dev split.
    threads : CPU threads for torch during the run (``None``: torch's own choice).
    device : ``cpu``, ``cuda``, ``cuda:1``, ...
    """

    lr: float = 5e-5
    max_epochs: float = 3.0
    batch_size: int = 8
    max_length: int = 128
    seed: int = 42
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    max_train_examples: int | None = None
    max_steps: int | None = None
    checkpoint_every: int | None = 500
    log_every: int = 50
    keep_checkpoint: bool = False
    eval_batch_size: int = 32
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        positive_int = ("batch_size", "max_length", "log_every", "eval_batch_size")
        optional_int = ("max_train_examples", "max_steps", "checkpoint_every", "threads")
        for name in positive_int + optional_int:
            value = getattr(self, name)
            if value is None and name in optional_int:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FinetuneConfig.{name} must be a positive integer, not {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"FinetuneConfig.seed must be an integer >= 0, not {self.seed!r}")
        if not self.lr > 0:
            raise ValueError(f"FinetuneConfig.lr must be > 0, not {self.lr!r}")
        if not self.max_epochs > 0:
            raise ValueError(f"FinetuneConfig.max_epochs must be > 0, not {self.max_epochs!r}")
        if self.weight_decay < 0 or self.adam_epsilon <= 0 or self.max_grad_norm <= 0:
            raise ValueError("weight_decay must be >= 0; adam_epsilon and max_grad_norm > 0")
        if (
            isinstance(self.warmup_steps, bool)
            or not isinstance(self.warmup_steps, int)
            or self.warmup_steps < 0
        ):
            raise ValueError(
                f"FinetuneConfig.warmup_steps must be an integer >= 0, not {self.warmup_steps!r}"
            )

    def recipe(self) -> dict[str, Any]:
        """The fields that shape the final weights (all but stop, logging and placement settings)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_RECIPE}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneConfig:
        return cls(**check_fields(cls, d))
