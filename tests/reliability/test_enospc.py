"""A full disk (``ENOSPC``) at each write point: the atomic file writer, the folder replacement and
the store's chunk writer. The previous complete state stays readable, nothing half-written is left
where a reader looks, the error names the file being written, and the next call succeeds."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from synthetic import TAGS, planted, store_manifest

from redundancy import _serial
from redundancy._serial import atomic_file, replace_dir, write_json_atomic, write_npy_atomic
from redundancy.cli import main
from redundancy.store import ActivationStore, StoreWriter


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------- atomic_file


@pytest.mark.parametrize("where", ["write", "fsync", "rename"])
def test_atomic_file_keeps_the_old_file(tmp_path, where):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"version": 1})
    patches = {
        "fsync": mock.patch.object(_serial.os, "fsync", enospc),
        "rename": mock.patch.object(_serial.os, "replace", enospc),
    }
    with pytest.raises(OSError) as err, patches.get(where, contextlib.nullcontext()):
        if where == "write":
            with atomic_file(target) as f:
                f.write(b'{"version": ')  # half a file, then the disk is full
                enospc()
        else:
            write_json_atomic(target, {"version": 2})
    assert err.value.errno == errno.ENOSPC
    assert err.value.filename == str(target)  # the file being written, not the temporary one
    assert json.loads(target.read_text()) == {"version": 1}
    assert _names(tmp_path) == ["result.json"]  # no temporary file left behind
    write_json_atomic(target, {"version": 2})  # space again: the next write goes through
    assert json.loads(target.read_text()) == {"version": 2} and _names(tmp_path) == ["result.json"]


def test_a_first_write_that_fails_leaves_nothing(tmp_path):
    with pytest.raises(OSError), mock.patch.object(_serial.os, "fsync", enospc):
        write_npy_atomic(tmp_path / "a.npy", np.arange(10))
    assert _names(tmp_path) == []
    write_npy_atomic(tmp_path / "a.npy", np.arange(10))
    assert np.load(tmp_path / "a.npy").tolist() == list(range(10))


def test_other_errors_are_not_renamed(tmp_path):
    with pytest.raises(PermissionError), atomic_file(tmp_path / "x") as f:
        f.write(b"1")
        raise PermissionError(errno.EACCES, "denied", "/elsewhere")
    assert _names(tmp_path) == []


# -------------------------------------------------------------------------------------- replace_dir


def _folder(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    (path / "weights.bin").write_text(text)
    return path


def test_replace_dir_puts_the_old_folder_back(tmp_path):
    target = _folder(tmp_path / "compact", "old")
    tmp = _folder(tmp_path / ".compact.partial-1", "new")
    real_replace = os.replace

    def full_for_the_new_one(src, dst):
        if Path(src) == tmp:
            enospc()
        return real_replace(src, dst)

    with pytest.raises(OSError) as err, mock.patch.object(_serial.os, "replace", full_for_the_new_one):
        replace_dir(tmp, target)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert (target / "weights.bin").read_text() == "old"  # readable at once, no recover_dir needed
    assert not (tmp_path / "compact.old").exists()
    assert tmp.is_dir()  # the caller's to remove (export_compact and save_checkpoint do, in finally)
    replace_dir(tmp, target)
    assert (target / "weights.bin").read_text() == "new"
    assert _names(tmp_path) == ["compact"]


def test_replace_dir_after_a_cut_off_replacement_keeps_the_set_aside_folder(tmp_path):
    """Interrupted between its renames: only TARGET.old is whole. The next replacement must not
    delete it before the new folder is in place; failing again, it leaves the old one at TARGET."""
    _folder(tmp_path / "checkpoint.old", "step 500")
    target = tmp_path / "checkpoint"
    tmp = _folder(tmp_path / ".checkpoint-2", "step 1000")
    real_replace = os.replace

    def full_for_the_new_one(src, dst):
        if Path(src) == tmp:
            enospc()
        return real_replace(src, dst)

    with pytest.raises(OSError), mock.patch.object(_serial.os, "replace", full_for_the_new_one):
        replace_dir(tmp, target)
    assert (target / "weights.bin").read_text() == "step 500"
    replace_dir(tmp, target)
    assert (target / "weights.bin").read_text() == "step 1000"
    assert _names(tmp_path) == ["checkpoint"]


# --------------------------------------------------------------------------------- the chunk writer


N, L, H = 40, 2, 6


@pytest.fixture
def started(tmp_path):
    """A store of 4 chunks with chunk 0 committed: ``(path, writer, acts, args for create_or_resume)``."""
    acts, y = planted(N, n_layers=L, hidden=H, seed=0)
    sids = (np.arange(N) // 5).astype(np.int32)
    pos = (np.arange(N) % 5).astype(np.int32)
    manifest = store_manifest(
        n_items=N, n_layers=L, hidden=H, n_sentences=N // 5, label_names=TAGS, n_chunks=4, split="dev"
    )
    args = (manifest, y, sids, pos)
    path = tmp_path / "store"
    writer = StoreWriter.create_or_resume(path, *args)
    writer.write_chunk(0, np.arange(0, 10), acts[0:10])
    yield path, writer, acts, args
    writer.close()


def _chunk(c: int) -> np.ndarray:
    return np.arange(10 * c, 10 * (c + 1))


def _committed(path: Path) -> list[int]:
    return json.loads((path / "progress.json").read_text())["chunks"]


def _finish(path: Path, acts: np.ndarray, args) -> None:
    with StoreWriter.create_or_resume(path, *args) as w:
        assert w.pending() == [1, 2, 3]  # the failed chunk is still to do; chunk 0 was kept
        for c in w.pending():
            w.write_chunk(c, _chunk(c), acts[_chunk(c)])
        w.finalize()
    store = ActivationStore.open(path, verify="full")
    assert np.array_equal(np.asarray(store.activations), acts)


@pytest.mark.parametrize("call", ["pwrite", "fdatasync"])
def test_rows_that_cannot_be_written_are_not_committed(started, call):
    path, writer, acts, args = started
    import redundancy.store._files as files

    with pytest.raises(OSError) as err, mock.patch.object(files.os, call, enospc):
        writer.write_chunk(1, _chunk(1), acts[_chunk(1)])
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path / "activations.npy")
    assert _committed(path) == [0] and writer.done_chunks == {0}
    writer.write_chunk(1, _chunk(1), acts[_chunk(1)])  # space again: the same writer goes on
    assert _committed(path) == [0, 1]
    writer.close()
    with StoreWriter.create_or_resume(path, *args) as w:
        assert w.pending() == [2, 3]


def test_a_commit_record_that_cannot_be_written_commits_nothing(started):
    path, writer, acts, args = started
    with pytest.raises(OSError) as err, mock.patch.object(_serial.os, "replace", enospc):
        writer.write_chunk(1, _chunk(1), acts[_chunk(1)])
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path / "progress.json")
    assert _committed(path) == [0] and writer.done_chunks == {0}
    assert sorted(p.name for p in path.iterdir() if p.name.endswith(".tmp")) == []
    writer.close()  # the process ends; a rerun resumes at chunk 1
    _finish(path, acts, args)


def test_a_store_that_failed_mid_way_resumes_and_completes(started):
    path, writer, acts, args = started
    import redundancy.store._files as files

    with pytest.raises(OSError), mock.patch.object(files.os, "pwrite", enospc):
        writer.write_chunk(1, _chunk(1), acts[_chunk(1)])
    writer.close()
    _finish(path, acts, args)


# ------------------------------------------------------------------------------------------ the CLI


def test_the_cli_says_which_file_it_could_not_write(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    out = tmp_path / "report"
    with mock.patch.object(_serial.os, "fsync", enospc):
        assert main(["-q", "report", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("redundancy: error: no space left on device writing ")
    assert err[0].endswith(str(out / "results.json"))
    assert not out.exists() or all(not p.name.endswith(".tmp") for p in out.rglob("*"))
    assert main(["-q", "report", str(run), "--out", str(out)]) == 0  # space again
    assert (out / "report.html").is_file()


def test_an_unnamed_full_disk_falls_back_to_the_output(tmp_path, capsys):
    from redundancy.cli._guard import guarded

    def handler(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    args = mock.Mock(out="runs/x")
    assert guarded(handler)(args) == 2
    assert capsys.readouterr().err == "redundancy: error: no space left on device writing runs/x\n"
    with pytest.raises(FileNotFoundError):  # other OS errors are left to main()
        guarded(lambda a: (_ for _ in ()).throw(FileNotFoundError(2, "gone", "f")))(args)
