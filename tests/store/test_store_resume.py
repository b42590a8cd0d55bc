"""Resuming after a crash is bit-identical; plan changes are refused unless overwrite=True."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from redundancy.store import ActivationStore, StoreError, StoreManifest, plan_hash

SRC = Path(__file__).resolve().parents[2] / "src"


def _run_child(script: str, tmp_path: Path, f, **popen) -> subprocess.Popen:
    """Start a Python child that has the fake extraction ``f`` at hand as ``f``-like variables."""
    data = tmp_path / "child-data"
    data.mkdir(exist_ok=True)
    (data / "manifest.json").write_text(json.dumps(f.manifest.to_dict()))
    np.savez(
        data / "arrays.npz",
        values=f.values,
        labels=f.labels,
        sentence_ids=f.sentence_ids,
        positions=f.positions,
        **{f"chunk{i}": c for i, c in enumerate(f.chunks)},
    )
    prelude = textwrap.dedent(f"""
        import json, os, sys
        import numpy as np
        from redundancy.store import StoreManifest, StoreWriter
        manifest = StoreManifest.from_dict(json.load(open({str(data / "manifest.json")!r})))
        arrays = np.load({str(data / "arrays.npz")!r}, allow_pickle=False)
        values = arrays["values"]
        chunks = [arrays[f"chunk{{i}}"] for i in range(manifest.n_chunks)]
        writer = StoreWriter.create_or_resume({str(tmp_path / "s")!r}, manifest, arrays["labels"],
                                              arrays["sentence_ids"], arrays["positions"])
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", prelude + textwrap.dedent(script)], env=env, **popen)


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the dropped writer's lock file is never closed
def test_resume_after_dropped_writer_is_bit_identical(tmp_path, fake, digests):
    f = fake(dtype="float16", n_chunks=5)
    reference = f.build(tmp_path / "reference")

    writer = f.open_writer(tmp_path / "s")
    f.write(writer, [3, 0])
    del writer  # "crash": no close, no finalize

    writer = f.open_writer(tmp_path / "s")
    assert writer.done_chunks == frozenset({0, 3})
    assert writer.pending(5) == [1, 2, 4]
    assert writer.is_done(3) and not writer.is_done(1)
    assert writer.n_items_written == len(f.chunks[0]) + len(f.chunks[3])
    f.write(writer)
    writer.finalize()

    assert digests(tmp_path / "s") == digests(reference)
    full = ActivationStore.open(tmp_path / "s", verify="full").manifest
    assert full.sha256 == ActivationStore.open(reference).manifest.sha256


def test_crash_inside_a_chunk_redoes_that_chunk(tmp_path, fake, digests):
    """A process dies after writing a chunk's rows but before its commit record: the chunk is redone."""
    f = fake(dtype="float32", n_chunks=4)
    reference = f.build(tmp_path / "reference")
    child = _run_child(
        """
        writer.write_chunk(2, chunks[2], values[chunks[2]])
        import redundancy.store._writer as w
        w._write_progress = lambda *args, **kwargs: os._exit(3)   # die just before the commit
        writer.write_chunk(1, chunks[1], values[chunks[1]] + 100.0)  # rows hit the disk, never committed
    """,
        tmp_path,
        f,
    )
    assert child.wait(timeout=60) == 3

    with pytest.raises(StoreError, match=r"incomplete \(1 of 4 chunks"):
        ActivationStore.open(tmp_path / "s")
    writer = f.open_writer(tmp_path / "s")  # the dead process's lock is gone
    assert writer.done_chunks == frozenset({2})
    f.write(writer)
    writer.finalize()
    assert digests(tmp_path / "s") == digests(reference)


def test_second_process_is_locked_out(tmp_path, fake):
    f = fake()
    child = _run_child(
        """
        print("ready", flush=True)
        sys.stdin.readline()
    """,
        tmp_path,
        f,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="another process is writing"):
            f.open_writer(tmp_path / "s")
    finally:
        child.communicate("done\n", timeout=60)
    f.open_writer(tmp_path / "s").close()  # free again once the child is gone


def test_complete_store_is_recognised(tmp_path, fake):
    f = fake()
    f.build(tmp_path / "s")
    writer = f.open_writer(tmp_path / "s")
    assert writer.complete and writer.pending() == [] and writer.done_chunks == frozenset(range(4))
    assert writer.finalize().complete
    with pytest.raises(StoreError, match="complete"):
        f.write(writer, [0])


def test_finalize_cut_off_before_removing_its_progress_record(tmp_path, fake, digests):
    """A kill between the complete manifest and the removal of progress.json (found by
    tests/reliability/test_kill_resume.py) leaves a complete store; reopening it removes the record."""
    f = fake()
    reference = f.build(tmp_path / "reference")
    f.build(tmp_path / "s")
    (tmp_path / "s" / "progress.json").write_text('{"chunks": []}')
    writer = f.open_writer(tmp_path / "s")
    assert writer.complete and not (tmp_path / "s" / "progress.json").exists()
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(
        p.name for p in (tmp_path / "reference").iterdir()
    )
    assert digests(tmp_path / "s") == digests(reference)


def test_different_plan_is_refused_then_overwritten(tmp_path, fake):
    f = fake()
    path = tmp_path / "s"
    with f.open_writer(path) as writer:
        f.write(writer, [1])
    other = f.with_manifest(plan_hash=plan_hash({"model": "tiny", "max_length": 128}))
    with pytest.raises(StoreError, match="different plan: plan_hash") as err:
        other.open_writer(path)
    assert str(path) in str(err.value) and "overwrite=True" in str(err.value)

    with other.open_writer(path, overwrite=True) as writer:
        assert writer.done_chunks == frozenset()
        assert writer.manifest.plan_hash == other.manifest.plan_hash
        other.write(writer)
        writer.finalize()
    assert ActivationStore.open(path, verify="full").manifest.plan_hash == other.manifest.plan_hash

    with pytest.raises(StoreError, match="different plan"):  # a complete store is protected too
        f.open_writer(path)


def test_different_shape_is_refused(tmp_path, fake):
    path = fake(n_layers=3).build(tmp_path / "s")
    with pytest.raises(StoreError, match="n_layers 3 .store. vs 4"):
        fake(n_layers=4).open_writer(path)  # same plan hash, different shape


def test_overwrite_still_resumes_a_matching_store(tmp_path, fake):
    f = fake()
    with f.open_writer(tmp_path / "s") as writer:
        f.write(writer, [0, 2])
    with f.open_writer(tmp_path / "s", overwrite=True) as writer:
        assert writer.done_chunks == frozenset({0, 2})


def test_changed_metadata_is_refused(tmp_path, fake):
    f = fake()
    with f.open_writer(tmp_path / "s") as writer:
        f.write(writer, [0])
    labels = f.labels.copy()
    labels[2] = (labels[2] + 2) % 3
    with pytest.raises(StoreError, match=r"labels.npy differs from this run's \(first difference at item 2"):
        replace(f, labels=labels).open_writer(tmp_path / "s")


def test_soft_differences_only_warn(tmp_path, fake, caplog):
    f = fake()
    with f.open_writer(tmp_path / "s") as writer:
        f.write(writer, [0])
    changed = f.with_manifest(versions={"numpy": "0.0"}, extra={"num_workers": 4}, model_source="/copy")
    with caplog.at_level(logging.WARNING, logger="redundancy.store"):
        with changed.open_writer(tmp_path / "s") as writer:
            assert writer.done_chunks == frozenset({0})
            assert writer.manifest.versions == f.manifest.versions  # the store keeps its own record
    assert "model_source/extra/versions differ" in caplog.text


def test_commit_rules(tmp_path, fake):
    f = fake()
    with f.open_writer(tmp_path / "s") as writer:
        f.write(writer, [1])
        with pytest.raises(StoreError, match="chunk 1 is already committed"):
            f.write(writer, [1])
        with pytest.raises(ValueError, match="outside"):
            writer.write_chunk(4, f.chunks[0], f.values[f.chunks[0]])
        with pytest.raises(StoreError, match=r"2 of 4 chunks are not committed: 0, 2") as err:
            f.write(writer, [3])
            writer.finalize()
        assert str(tmp_path / "s") in str(err.value)
        with pytest.raises(ValueError, match="disagrees"):
            writer.pending(7)


def test_chunks_that_miss_items_cannot_finalize(tmp_path, fake):
    f = fake()
    f.chunks[0] = f.chunks[0][1:]  # one item is never written
    with f.open_writer(tmp_path / "s") as writer:
        f.write(writer)
        with pytest.raises(StoreError, match="does not cover every item"):
            writer.finalize()


def test_missing_progress_means_redo_everything(tmp_path, fake, caplog, digests):
    f = fake()
    with f.open_writer(tmp_path / "s") as writer:
        f.write(writer, [0, 1])
    (tmp_path / "s" / "progress.json").unlink()
    with caplog.at_level(logging.WARNING, logger="redundancy.store"):
        writer = f.open_writer(tmp_path / "s")
    assert writer.done_chunks == frozenset() and "progress.json is missing" in caplog.text
    f.write(writer)
    writer.finalize()
    assert digests(tmp_path / "s") == digests(f.build(tmp_path / "reference"))


def test_interrupted_creation_is_redone_and_foreign_folders_refused(tmp_path, fake):
    f = fake()
    half = tmp_path / "half"
    half.mkdir()
    (half / "activations.npy").write_bytes(b"partial")  # creation died before the manifest was written
    with f.open_writer(half) as writer:
        assert writer.done_chunks == frozenset()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(StoreError, match="not an activation store"):
            f.open_writer(foreign, overwrite=overwrite)
    assert (foreign / "notes.txt").read_text() == "mine"

    with pytest.raises(StoreError, match="not a folder"):
        (tmp_path / "file").write_text("x")
        f.open_writer(tmp_path / "file")


def test_damaged_store_needs_overwrite(tmp_path, fake):
    f = fake()
    with f.open_writer(tmp_path / "s") as writer:
        f.write(writer, [0])
    with open(tmp_path / "s" / "activations.npy", "r+b") as fh:
        fh.truncate(200)
    with pytest.raises(StoreError, match="damaged: activations.npy is truncated"):
        f.open_writer(tmp_path / "s")
    with f.open_writer(tmp_path / "s", overwrite=True) as writer:
        assert writer.done_chunks == frozenset()

    (tmp_path / "s" / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="cannot be read"):
        f.open_writer(tmp_path / "s")
    f.open_writer(tmp_path / "s", overwrite=True).close()
    assert StoreManifest.from_dict(json.loads((tmp_path / "s" / "manifest.json").read_text())) == f.manifest
