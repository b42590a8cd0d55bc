"""Stage cache of ``redundancy run``: a stage is skipped when its inputs' key matches the record
it left when it last finished and its outputs are still there.

A record is written (atomically) only after the stage's outputs are complete, so an interrupted
stage has no record and is redone; extraction itself resumes chunk by chunk inside the store.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._serial import json_ready, write_json_atomic
from ..store import plan_hash


def cache_key(inputs: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``inputs`` (the stores' plan hash, on JSON-ready values)."""
    return plan_hash(json_ready(inputs))


def stage_key(stage: str, inputs: dict[str, Any], versions: dict[str, str]) -> str:
    """The key a stage's record is matched on: its name, its inputs and the package versions."""
    return cache_key({"stage": stage, **inputs, "versions": versions})


@dataclass(frozen=True)
class StageRecord:
    """What a finished stage left: its key, inputs, outputs (relative to the run folder) and time."""

    stage: str
    task: str
    key: str
    inputs: dict[str, Any]
    outputs: tuple[str, ...]
    seconds: float
    finished: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "outputs": list(self.outputs)}


class StageCache:
    """Records under ``RUN/cache/<stage>/<task>.json``."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "cache"

    def _path(self, stage: str, task: str) -> Path:
        return self.root / stage / f"{task}.json"

    def lookup(self, stage: str, task: str, key: str) -> StageRecord | None:
        """The record if it has ``key`` and all its outputs exist, else None."""
        path = self._path(stage, task)
        try:
            d = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if d.get("key") != key:
            return None
        if not all((self.run_dir / o).exists() for o in d.get("outputs", ())):
            return None
        return StageRecord(**{**d, "outputs": tuple(d["outputs"])})

    def record(
        self, stage: str, task: str, key: str, inputs: dict[str, Any], outputs: list[Path], seconds: float
    ) -> StageRecord:
        rec = StageRecord(
            stage=stage,
            task=task,
            key=key,
            inputs=json_ready(inputs),
            outputs=tuple(str(Path(o).resolve().relative_to(self.run_dir.resolve())) for o in outputs),
            seconds=round(seconds, 3),
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        write_json_atomic(self._path(stage, task), rec.to_dict())
        return rec

    def forget(self, stage: str, task: str) -> None:
        self._path(stage, task).unlink(missing_ok=True)
