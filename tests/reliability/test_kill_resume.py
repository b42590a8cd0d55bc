"""Kill and resume: ``redundancy run`` and ``redundancy finetune`` killed with SIGKILL at seeded random
moments, then resumed, end with exactly what an uninterrupted run writes: the same files (nothing
half-written or temporary left), the same numbers, byte-identical stores and clustering, the same
probe and model weights.

``_driver.py`` runs the work in a child process that SIGKILLs itself at a chosen *event* (a progress
call, a log record of ``redundancy``, a rename into place or a removal; see its docstring). An
uninterrupted run in its own folder records its events; the targets are drawn from them, spread over
every stage, and run as one *chain*: start, die at target 1, restart, die at target 2, ..., then run
to the end. A chain costs about one run plus one resumed stage per kill; the children are forked
from one process that imported the package once, so a kill does not cost a start-up too.
``KILL_RESUME_SEED=N`` draws other moments.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from run_results import differences, numbers, write_tiny_job

DRIVER = Path(__file__).with_name("_driver.py")
SEED = int(os.environ.get("KILL_RESUME_SEED", "20260611"))  # another seed: other moments
# kills drawn in each stage
QUOTAS = {"extract": 5, "general": 3, "probe": 5, "pipeline": 4, "compact": 3, "report": 2}
STORE_FILES = ("activations.npy", "labels.npy", "sentence_ids.npy", "positions.npy")


def _job(run: Path, tiny) -> Path:
    """The tiny job of test_corruption.py with small batches and chunks: 5 chunks per store."""
    return write_tiny_job(run, tiny("bert"), "batch_size = 8", "chunk_items = 40")


class _Driver:
    """``_driver.py serve``: each call runs ``_driver.py ARGS`` in a child forked from one process
    that imported the package once; returns the child's exit status (-9: killed) and output."""

    def __init__(self, folder: Path):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.folder, self.calls = folder, 0
        self.errors = (folder / "server.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            env=env,
        )

    def __call__(self, *args: str | Path) -> tuple[int, str]:
        log = self.folder / f"call-{self.calls}.log"
        self.calls += 1
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": [str(a) for a in args], "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, f"the driver died: {(self.folder / 'server.log').read_text()[-4000:]}"
        return json.loads(answer)["rc"], log.read_text() if log.is_file() else ""

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.errors.close()


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    if not hasattr(os, "fork"):  # pragma: no cover - CI runs Linux
        pytest.skip("the driver forks its runs")
    driver = _Driver(tmp_path_factory.mktemp("driver"))
    yield driver
    driver.close()


def _ok(result: tuple[int, str], what: str) -> None:
    rc, log = result
    assert rc == 0, f"{what} failed ({rc}):\n{log[-4000:]}"


def _chain(drive: _Driver, base: list[str | Path], targets: list[int], events: Path, note: Path) -> list[int]:
    """Run ``base`` killed at each target in turn, then to the end; the exit statuses."""
    codes = []
    for t in targets:
        rc, log = drive(*base, "--clean", events, "--target", t, "--note", note)
        assert rc in (0, -9), f"resume before target {t} crashed ({rc}):\n{log[-4000:]}"
        codes.append(rc)
        if rc == 0:  # the run got past every later target: nothing left to kill
            break
    _ok(drive(*base), "the final resume")
    return codes


def _died_at(note: Path) -> list[dict]:
    return [json.loads(line) for line in note.read_text().splitlines()] if note.is_file() else []


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(path)


def _same_tensors(a: Path, b: Path) -> bool:
    """The arrays of two safetensors files (a probe file's metadata holds its fit time)."""
    x, y = _tensors(a), _tensors(b)
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def _files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}


def _targets(events: list[list[str]], rng: random.Random) -> list[int]:
    """Positions drawn per stage (extraction: inside its chunks)."""
    by_stage: dict[str, list[int]] = {s: [] for s in QUOTAS}
    for i, (key, stage) in enumerate(events):
        if stage == "extract" and not (key.startswith("progress|extract") or key.endswith("progress.json")):
            continue  # extraction: between a chunk's forward passes and its commit
        if stage in by_stage:
            by_stage[stage].append(i)
    picked = set()
    for stage, quota in QUOTAS.items():
        assert len(by_stage[stage]) >= quota, f"the recorded run has too few {stage} events"
        picked.update(rng.sample(by_stage[stage], quota))
    return sorted(picked)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny, data_dir, drive):
    """A run never killed (its own folder) and its recorded events."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    events = run.parent / "events.json"
    cfg = _job(run, tiny)
    _ok(drive("run", "--out", run, "--data-dir", data_dir, "--config", cfg, "--record", events), "the run")
    return run, events


@pytest.mark.slow
def test_run_killed_at_random_moments_ends_as_an_uninterrupted_run(
    uninterrupted, drive, tmp_path, tiny, data_dir
):
    clean, events_file = uninterrupted
    events = json.loads(events_file.read_text())
    targets = _targets(events, random.Random(SEED))
    run = tmp_path / "run"
    base = ["run", "--out", run, "--data-dir", data_dir, "--config", _job(run, tiny)]
    note = tmp_path / "died.jsonl"
    codes = _chain(drive, base, targets, events_file, note)

    died = _died_at(note)
    kills = Counter(d["stage"] for d in died)
    print(f"\n{len(died)} kills of {len(targets)} targets, per stage: {dict(kills)}")
    assert codes.count(-9) == len(died) >= 20, (codes, died)
    assert set(kills) >= set(QUOTAS), f"no kill in {set(QUOTAS) - set(kills)}: {died}"

    # the same files, nothing half-written or left over (temporary files, checkpoints, old folders)
    assert _files(run) == _files(clean)
    assert not differences(numbers(run), numbers(clean))
    for split in ("train", "dev", "test"):
        for name in STORE_FILES:
            rel = f"stores/sem-{split}/{name}"
            assert _sha(run / rel) == _sha(clean / rel), rel
    assert _sha(run / "general/sem/linkage.npy") == _sha(clean / "general/sem/linkage.npy")
    probes = [p.relative_to(clean) for p in (clean / "probe").rglob("*.safetensors")]
    assert probes
    for rel in [*probes, Path("compact/sem/model/model.safetensors"), Path("compact/sem/probe.safetensors")]:
        assert _same_tensors(run / rel, clean / rel), rel

    # and every stage is now complete: a rerun finds it all in the cache
    _ok(drive(*base), "the rerun")
    job = json.loads((run / "job.json").read_text())
    assert {s["status"] for s in job["stages"] if s["stage"] != "report"} == {"cached"}


# ------------------------------------------------------------------ redundancy finetune

RECIPE = {
    "max_train_examples": 24,
    "max_epochs": 2.0,
    "batch_size": 4,
    "max_length": 32,
    "checkpoint_every": 2,
    "log_every": 1,
    "threads": 1,  # not in the recipe's fingerprint; two threads on two busy cores only spin
}
FINETUNE_KILLS = 6


def _finetune_args(out: Path, tiny, data_dir) -> list[str | Path]:
    """``redundancy finetune``'s work (the ``finetune`` function its CLI calls) on a tiny RTE."""
    where = ["--out", out, "--data-dir", data_dir]
    return ["finetune", *where, "--task", "rte", "--model", tiny("bert"), "--recipe", json.dumps(RECIPE)]


@pytest.mark.slow
def test_finetune_killed_and_resumed_ends_with_the_same_weights(drive, tmp_path, tiny, data_dir):
    clean = tmp_path / "clean"
    events_file = tmp_path / "events.json"
    _ok(drive(*_finetune_args(clean, tiny, data_dir), "--record", events_file), "the fine-tuning")
    events = json.loads(events_file.read_text())
    rng = random.Random(SEED)
    steps = [i for i, (key, _) in enumerate(events) if key.startswith("step|")]
    # the checkpoint's commit: its folder set aside, the new one renamed into place, the old removed
    saves = [i for i, (key, _) in enumerate(events) if key.startswith(("mv|checkpoint", "rm|checkpoint"))]
    assert len(saves) >= 2, "the recorded fine-tuning wrote no checkpoint"
    targets = sorted(set(rng.sample(steps, FINETUNE_KILLS - 2) + rng.sample(saves, 2)))

    out, note = tmp_path / "resumed", tmp_path / "died.jsonl"
    codes = _chain(drive, _finetune_args(out, tiny, data_dir), targets, events_file, note)
    died = _died_at(note)
    print(f"\nfine-tuning: {len(died)} kills at {[d['key'] for d in died]}")
    assert codes.count(-9) == len(died) >= 5, (codes, died)

    # the checkpoint holds the optimizer, the scheduler and the RNG: the weights are bit-identical
    assert _same_tensors(out / "model.safetensors", clean / "model.safetensors")
    a, b = (json.loads((f / "finetune.json").read_text()) for f in (out, clean))
    assert a["weights_sha256"] == b["weights_sha256"]
    assert a["loss_log"] == b["loss_log"] and a["dev_scores"] != [] and a["steps"] == b["steps"]
    assert [d["scores"] for d in a["dev_scores"]] == [d["scores"] for d in b["dev_scores"]]
    assert a["resumed_at"] and not b["resumed_at"]
    assert _files(out) == _files(clean)  # no checkpoint, nothing half-written left behind
