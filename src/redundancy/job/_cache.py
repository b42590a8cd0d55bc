"""Stage cache of ``redundancy run``: a stage is skipped when its inputs' key matches the record
it left when it last finished and its outputs are still there, unchanged.

A record is written (atomically) only after the stage's outputs are complete, so an interrupted
stage has no record and is redone; extraction itself resumes chunk by chunk inside the store.

The record holds every output file's size and SHA-256 (a store's from its own manifest, hashed at
finalisation) with the file's ``stat`` stamp (mtime, ctime, inode). A lookup trusts a file whose
size and stamp are those recorded — any write to it, or a restored mtime, changes its ctime — and
hashes any other; a file missing, resized or with another hash makes the lookup a miss, and the
job removes that stage's outputs and recomputes them (:meth:`StageCache.check`). Not caught: a
change below the file system (a disk's bit rot) that leaves the stamp as it was;
``redundancy store info --verify full`` hashes a store regardless.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._serial import json_ready, write_json_atomic
from ..store import plan_hash, sha256_file

logger = logging.getLogger(__name__)


def cache_key(inputs: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``inputs`` (the stores' plan hash, on JSON-ready values)."""
    return plan_hash(json_ready(inputs))


def stage_key(stage: str, inputs: dict[str, Any], versions: dict[str, str]) -> str:
    """The key a stage's record is matched on: its name, its inputs and the package versions."""
    return cache_key({"stage": stage, **inputs, "versions": versions})


@dataclass(frozen=True)
class StageRecord:
    """What a finished stage left: its key, inputs, outputs (relative to the run folder), time, and
    ``files``: each output file (relative path) -> ``{size, sha256, stamp}`` (records written before
    the files were kept have none and are checked for existence only)."""

    stage: str
    task: str
    key: str
    inputs: dict[str, Any]
    outputs: tuple[str, ...]
    seconds: float
    finished: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "outputs": list(self.outputs)}


@dataclass(frozen=True)
class Damage:
    """Why a record's outputs cannot be trusted: the file (relative to the run folder) and what is wrong."""

    file: str
    reason: str


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _output_files(path: Path) -> list[Path]:
    """The files an output is made of: itself, or every file under a folder but hidden ones (locks)."""
    if path.is_file():
        return [path]
    return sorted(
        f
        for f in path.rglob("*")
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
    )


def _manifest_hashes(folder: Path) -> dict[str, str]:
    """A store folder's own SHA-256 per file (its manifest's, computed when the store was finalised)."""
    try:
        d = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    sha = d.get("sha256") if isinstance(d, dict) and d.get("complete") else None
    return {k: v for k, v in sha.items() if isinstance(v, str)} if isinstance(sha, dict) else {}


class StageCache:
    """Records under ``RUN/cache/<stage>/<task>.json``."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "cache"

    def _path(self, stage: str, task: str) -> Path:
        return self.root / stage / f"{task}.json"

    def lookup(self, stage: str, task: str, key: str) -> StageRecord | None:
        """The record if it has ``key`` and all its outputs exist, else None (see :meth:`check` for
        whether they are intact)."""
        path = self._path(stage, task)
        try:
            d = json.loads(path.read_text())
            if d.get("key") != key:
                return None
            rec = StageRecord(**{**d, "outputs": tuple(d["outputs"])})
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("%s: unreadable stage record; the stage reruns", path)
            return None
        if not all((self.run_dir / o).exists() for o in rec.outputs):
            return None
        return rec

    def check(self, rec: StageRecord) -> Damage | None:
        """The first output file of ``rec`` that is missing or not what the stage wrote, else None.

        A file whose size and stat stamp are the recorded ones is trusted; any other is hashed. Stamps
        of files that hash right (a run folder copied elsewhere) are refreshed in the record."""
        refreshed = {}
        for rel, want in rec.files.items():
            f = self.run_dir / rel
            try:
                st = f.stat()
            except FileNotFoundError:
                return Damage(rel, "missing")
            if st.st_size != want["size"]:
                return Damage(rel, f"{st.st_size} bytes, {want['size']} written")
            if _stamp(st) == want["stamp"]:
                continue
            if sha256_file(f) != want["sha256"]:
                return Damage(rel, "its SHA-256 differs from the one written")
            refreshed[rel] = {**want, "stamp": _stamp(st)}
        if refreshed:
            fresh = StageRecord(**{**rec.__dict__, "files": {**rec.files, **refreshed}})
            write_json_atomic(self._path(rec.stage, rec.task), fresh.to_dict())
        return None

    def remove_outputs(self, rec: StageRecord) -> None:
        """Delete a damaged stage's outputs (and its record), so the stage recomputes from nothing."""
        for out in rec.outputs:
            p = self.run_dir / out
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        self.forget(rec.stage, rec.task)

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
            files=self._fingerprints(outputs),
        )
        write_json_atomic(self._path(stage, task), rec.to_dict())
        return rec

    def _fingerprints(self, outputs: list[Path]) -> dict[str, dict[str, Any]]:
        root = self.run_dir.resolve()
        files = {}
        for out in outputs:
            out = Path(out).resolve()
            known = _manifest_hashes(out) if out.is_dir() else {}
            for f in _output_files(out):
                st = f.stat()
                rel = f.relative_to(out).as_posix() if out.is_dir() else ""
                sha = known.get(rel) or sha256_file(f)
                files[str(f.relative_to(root))] = {"size": st.st_size, "sha256": sha, "stamp": _stamp(st)}
        return files

    def forget(self, stage: str, task: str) -> None:
        self._path(stage, task).unlink(missing_ok=True)
