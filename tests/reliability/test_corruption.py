"""Damaged run folders: ``redundancy run`` notices every damaged output it would reuse, says which
file, recomputes that stage, and ends with the numbers of an undamaged run — never with a number
computed from the damaged file.

One tiny run (random BERT, 40 SEM sentences per split, every stage) is made once; each case copies
it, damages one file, reruns, and compares. The copy itself changes every file's stat stamp, so each
case also exercises the cache's re-hash of files it cannot trust by their stamp.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from run_results import differences, numbers, write_tiny_job

from redundancy.cli import main
from redundancy.store import ActivationStore, StoreError


def _run(cfg: Path, data_dir: Path) -> int:
    return main(["-q", "run", str(cfg), "--no-progress", "--data-dir", str(data_dir)])


def _statuses(run: Path) -> dict[str, str]:
    job = json.loads((run / "job.json").read_text())
    return {f"{s['task']}/{s['stage']}": s["status"] for s in job["stages"]}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clean(tmp_path_factory, tiny, data_dir):
    """An undamaged run folder (never modified by the cases) and its numbers."""
    root = tmp_path_factory.mktemp("clean")
    run = root / "run"
    assert _run(write_tiny_job(run, tiny("bert")), data_dir) == 0
    return run


def _copy(clean: Path, tmp_path: Path, tiny) -> tuple[Path, Path]:
    run = tmp_path / "run"
    shutil.copytree(clean, run)
    # the records and results name the run folder; the copy runs as its own folder
    return run, write_tiny_job(run, tiny("bert"))


def _flip(path: Path, offset: int | None = None, n: int = 8) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    for i in range(at, min(at + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _garble(path: Path) -> None:
    path.write_text(path.read_text()[: path.stat().st_size // 3] + "}{ not json")


DAMAGE = {"flip": _flip, "truncate": _truncate, "delete": Path.unlink, "garble": _garble}

# (file, damage, the stage that must rerun)
CASES = [
    ("stores/sem-train/activations.npy", "flip", "sem-train/extract"),
    ("stores/sem-train/activations.npy", "truncate", "sem-train/extract"),
    ("stores/sem-dev/labels.npy", "flip", "sem-dev/extract"),
    ("stores/sem-test/sentence_ids.npy", "delete", "sem-test/extract"),
    ("stores/sem-train/manifest.json", "garble", "sem-train/extract"),
    ("general/sem/general.json", "garble", "sem/general"),
    ("general/sem/linkage.npy", "flip", "sem/general"),
    ("probe/sem/probe.json", "truncate", "sem/probe"),
    ("probe/sem/oracle.safetensors", "flip", "sem/probe"),
    ("pipeline/sem/pipeline.json", "garble", "sem/pipeline"),
    ("compact/sem/model/model.safetensors", "truncate", "sem/compact"),
    ("compact/sem/compact.json", "garble", "sem/compact"),
    ("compact/sem/probe.safetensors", "flip", "sem/compact"),
]


@pytest.mark.parametrize(("rel", "how", "stage"), CASES, ids=[f"{h}-{r}" for r, h, _ in CASES])
def test_damage_is_noticed_and_recomputed(clean, tmp_path, tiny, data_dir, caplog, rel, how, stage):
    run, cfg = _copy(clean, tmp_path, tiny)
    target = run / rel
    assert target.is_file(), f"the tiny run has no {rel}"
    DAMAGE[how](target)
    with caplog.at_level(logging.WARNING, logger="redundancy"):
        assert _run(cfg, data_dir) == 0
    # one clear warning naming the damaged file
    named = [r.getMessage() for r in caplog.records if str(target) in r.getMessage()]
    assert named, f"no warning names {target}: {[r.getMessage() for r in caplog.records]}"
    statuses = _statuses(run)
    assert statuses[stage] == "ran"
    # only that stage reran: the later stages' keys do not change when it recomputes the same files
    assert {k for k, v in statuses.items() if v == "ran"} - {"all/report"} == {stage}
    # the recomputed file is the undamaged one, and every number of the run is the clean run's
    if rel.endswith(".safetensors"):  # a probe file's metadata holds its fit time: compare the arrays
        from safetensors.numpy import load_file

        got, want = load_file(target), load_file(clean / rel)
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
    elif not rel.endswith(".json"):
        assert _sha(target) == _sha(clean / rel)
    assert not differences(numbers(run, clean), numbers(clean))


def test_store_damage_is_caught_even_if_stamps_look_unchanged(clean, tmp_path, tiny, data_dir, caplog):
    """A byte flip that restores the file's mtime still changes its ctime: the cache re-hashes it."""
    import os

    run, cfg = _copy(clean, tmp_path, tiny)
    assert _run(cfg, data_dir) == 0  # the copy's records now carry its own stamps
    target = run / "stores" / "sem-train" / "activations.npy"
    st = target.stat()
    _flip(target, offset=st.st_size - 16)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    with caplog.at_level(logging.WARNING, logger="redundancy"):
        assert _run(cfg, data_dir) == 0
    assert _statuses(run)["sem-train/extract"] == "ran"
    assert _sha(target) == _sha(clean / "stores" / "sem-train" / "activations.npy")


def test_unreadable_cache_record_reruns_its_stage(clean, tmp_path, tiny, data_dir, caplog):
    run, cfg = _copy(clean, tmp_path, tiny)
    record = run / "cache" / "general" / "sem.json"
    _garble(record)
    with caplog.at_level(logging.WARNING, logger="redundancy"):
        assert _run(cfg, data_dir) == 0
    assert any(str(record) in r.getMessage() for r in caplog.records)
    assert _statuses(run)["sem/general"] == "ran"
    assert not differences(numbers(run, clean), numbers(clean))


def test_a_record_without_file_hashes_still_catches_a_broken_store(clean, tmp_path, tiny, data_dir, caplog):
    """Records written before the cache kept hashes: a store failing its quick check is re-extracted
    (not "rerun the extract command with overwrite", which `redundancy run` cannot do)."""
    run, cfg = _copy(clean, tmp_path, tiny)
    record = run / "cache" / "extract" / "sem-dev.json"
    d = json.loads(record.read_text())
    del d["files"]
    record.write_text(json.dumps(d))
    _truncate(run / "stores" / "sem-dev" / "activations.npy")
    with caplog.at_level(logging.WARNING, logger="redundancy"):
        assert _run(cfg, data_dir) == 0
    assert any("extracting it again" in r.getMessage() for r in caplog.records)
    assert _statuses(run)["sem-dev/extract"] == "ran"
    assert not differences(numbers(run, clean), numbers(clean))


def test_records_hold_each_output_files_hash(clean):
    record = json.loads((clean / "cache" / "compact" / "sem.json").read_text())
    weights = "compact/sem/model/model.safetensors"
    assert record["files"][weights]["sha256"] == _sha(clean / weights)
    store = json.loads((clean / "cache" / "extract" / "sem-train.json").read_text())
    manifest = json.loads((clean / "stores" / "sem-train" / "manifest.json").read_text())
    assert (
        store["files"]["stores/sem-train/activations.npy"]["sha256"] == manifest["sha256"]["activations.npy"]
    )
    assert not any(Path(f).name.startswith(".") for f in store["files"])  # the store's lock is not output


def test_compact_size_does_not_depend_on_the_run_folder(clean, tmp_path, tiny, data_dir):
    run = tmp_path / "a-much-longer-run-folder-name"
    shutil.copytree(clean, run)
    cfg = write_tiny_job(run, tiny("bert"))
    assert _run(cfg, data_dir) == 0
    assert (
        main(["-q", "run", str(cfg), "--no-progress", "--data-dir", str(data_dir), "--force", "compact"]) == 0
    )
    size = json.loads((run / "compact" / "sem" / "compact.json").read_text())["size_bytes"]
    assert size == json.loads((clean / "compact" / "sem" / "compact.json").read_text())["size_bytes"]


def test_newer_store_format_is_refused_naming_both_versions(clean, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(clean / "stores" / "sem-dev", store)
    m = json.loads((store / "manifest.json").read_text())
    m["format_version"] = 99
    (store / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(StoreError, match=r"99.*newer.*\(1\)") as err:
        ActivationStore.open(store)
    assert str(store) in str(err.value)
