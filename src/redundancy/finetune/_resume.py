"""Resume bookkeeping: what a run's weights depend on (its fingerprint), finished runs and checkpoints
of the same run, and the log a checkpoint carries so that a resumed run continues it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._checkpoint import Checkpoint, find_checkpoint
from ._config import FinetuneConfig
from ._result import DevScore, FinetuneResult, LossPoint

RESULT_FILE = "finetune.json"


def fingerprint(
    config: FinetuneConfig,
    model: str,
    base_hash: str,
    task: str,
    labels: tuple[str, ...],
    train: str,
    dev: str | None,
) -> dict[str, Any]:
    """What the final weights depend on: a checkpoint or finished run with another fingerprint is refused."""
    return json.loads(
        json.dumps(
            {
                "recipe": config.recipe(),
                "model": model,
                "base_weights_sha256": base_hash,
                "task": task,
                "labels": list(labels),
                "train_items_sha256": train,
                "dev_items_sha256": dev,
            }
        )
    )


def _result_fingerprint(r: FinetuneResult) -> dict[str, Any]:
    dev = None if r.dev is None else r.dev.items_sha256
    return fingerprint(r.config, r.model, r.base_weights_sha256, r.task, r.labels, r.train.items_sha256, dev)


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The fields (recipe entries by name) in which two fingerprints differ.

    >>> differences({"task": "rte", "recipe": {"lr": 1.0}}, {"task": "rte", "recipe": {"lr": 2.0}})
    ['lr']
    """
    out = [k for k in a if k != "recipe" and a.get(k) != b.get(k)]
    ra, rb = a.get("recipe", {}), b.get("recipe", {})
    return out + [k for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)]


def finished_result(out: Path, fp: dict[str, Any]) -> FinetuneResult | None:
    """The result of a finished run in ``out`` with fingerprint ``fp``; an error if it was another run."""
    path = out / RESULT_FILE
    if not path.is_file():
        return None
    done = FinetuneResult.from_dict(json.loads(path.read_text()))
    diff = differences(fp, _result_fingerprint(done))
    if diff:
        raise ValueError(
            f"{out} already holds a fine-tuned model of another run (it differs in: {', '.join(diff)}); "
            "choose another output folder or delete it"
        )
    return done if done.finished else None


def matching_checkpoint(out: Path, fp: dict[str, Any]) -> Checkpoint | None:
    """The checkpoint in ``out``, if any; an error if another run (fingerprint) wrote it."""
    ckpt = find_checkpoint(out)
    if ckpt is not None:
        diff = differences(fp, ckpt.state["fingerprint"])
        if diff:
            raise ValueError(
                f"{ckpt.folder} was written by another run (it differs in: {', '.join(diff)}); "
                "delete it to start afresh, or choose another output folder"
            )
    return ckpt


@dataclass
class TrainLog:
    """What the run has recorded so far (saved in every checkpoint, so a resumed run continues it).

    >>> log = TrainLog([], [], [0.0, 0.0])
    >>> TrainLog.from_dict(log.to_dict()) == log
    True
    """

    loss_log: list[LossPoint]
    dev_scores: list[DevScore]
    window: list[float]  # [sum of step losses, steps] since the last loss point
    train_seconds: float = 0.0
    train_examples: int = 0
    eval_seconds: float = 0.0
    resumed_at: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss_log": [p.to_dict() for p in self.loss_log],
            "dev_scores": [s.to_dict() for s in self.dev_scores],
            "window": list(self.window),
            "train_seconds": self.train_seconds,
            "train_examples": self.train_examples,
            "eval_seconds": self.eval_seconds,
            "resumed_at": list(self.resumed_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainLog:
        return cls(
            [LossPoint.from_dict(p) for p in d["loss_log"]],
            [DevScore.from_dict(s) for s in d["dev_scores"]],
            [float(x) for x in d["window"]],
            float(d["train_seconds"]),
            int(d["train_examples"]),
            float(d["eval_seconds"]),
            tuple(int(x) for x in d["resumed_at"]),
        )


def checkpoint_state(step: int, fp: dict[str, Any], log: TrainLog) -> dict[str, Any]:
    """The JSON state a checkpoint at ``step`` carries (the optimizer's is added when it is saved)."""
    return {"step": step, "fingerprint": fp, "log": log.to_dict()}
