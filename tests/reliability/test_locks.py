"""The run folder's lock: ``redundancy run`` writes its pid into ``RUN/.lock``; ``extract --out``,
``finetune`` and ``report`` refuse (exit 2, naming that pid) to write into a locked run folder or any
folder below it, and go ahead once the holder is gone."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap

import pytest

from redundancy._lock import LOCK_FILE, FolderBusyError, check_unlocked, hold_lock, holder_pid
from redundancy.cli import main
from redundancy.job import RunBusyError

HOLDER = textwrap.dedent(
    """
    import sys
    from redundancy._lock import hold_lock

    with hold_lock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """
)


class Holder:
    """Another process holding ``folder``'s run lock until :meth:`release`."""

    def __init__(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "held"
        self.pid = self.proc.pid

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            assert self.proc.wait(timeout=30) == 0
        self.proc.stdout.close()


@pytest.fixture
def run_dir(tmp_path):
    """A run folder whose lock another process holds (released at the end of the test)."""
    run = tmp_path / "run"
    holder = Holder(run)
    yield run, holder
    holder.release()


# ------------------------------------------------------------------------------------------ the lock


def test_the_holder_writes_its_pid_and_clears_it(tmp_path):
    with hold_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        with pytest.raises(FolderBusyError) as err:  # a second open file is another holder
            check_unlocked(tmp_path)
        assert err.value.folder == tmp_path.resolve()
    assert (tmp_path / LOCK_FILE).read_text() == ""
    check_unlocked(tmp_path)  # released: no error
    assert holder_pid(tmp_path) is None


def test_the_check_sees_the_lock_from_any_folder_below(run_dir):
    run, holder = run_dir
    assert holder_pid(run) == holder.pid
    for path in (run, run / "report", run / "stores" / "pos-train", run / "a" / "b" / "c.json"):
        with pytest.raises(FolderBusyError, match=f"pid {holder.pid}") as err:
            check_unlocked(path)
        assert err.value.pid == holder.pid and err.value.folder == run.resolve()
    check_unlocked(run.parent / "other-run")  # a sibling is free
    check_unlocked(run.parent)  # and so is the folder above


def test_a_second_holder_is_refused_naming_the_pid(run_dir):
    run, holder = run_dir
    with pytest.raises(RunBusyError, match=f"another `redundancy run` is using .*pid {holder.pid}"):
        with hold_lock(run, busy=RunBusyError):
            pass
    assert holder_pid(run) == holder.pid  # the refused one did not overwrite the holder's pid


def test_a_holder_that_wrote_no_pid_is_still_seen(tmp_path):
    """A run started by an older version locks without writing its pid."""
    with (tmp_path / LOCK_FILE).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FolderBusyError, match="did not record its pid") as err:
            check_unlocked(tmp_path / "report")
        assert err.value.pid is None


def test_an_unlocked_lock_file_and_a_missing_folder_pass(tmp_path):
    (tmp_path / LOCK_FILE).write_text("12345\n")  # a stale pid, nobody holds the lock
    check_unlocked(tmp_path / "not" / "yet")


# ------------------------------------------------------------------------------------- the commands


def _refused(argv, holder, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("redundancy: error:") and len(err.splitlines()) == 1
    assert f"pid {holder.pid}" in err


def test_extract_into_a_locked_run_folder_is_refused(run_dir, capsys):
    run, holder = run_dir
    out = run / "stores" / "pos-train"
    _refused(["extract", "--model", "no-such-model", "--task", "pos", "--out", str(out)], holder, capsys)
    assert not out.exists()  # refused before anything was loaded or written


def test_finetune_into_a_locked_run_folder_is_refused(run_dir, capsys):
    run, holder = run_dir
    out = run / "finetuned" / "sst2"
    _refused(["finetune", "--model", "no-such-model", "--task", "sst2", "--out", str(out)], holder, capsys)
    assert not out.exists()


def test_report_of_a_locked_run_folder_is_refused(run_dir, tmp_path, capsys):
    run, holder = run_dir
    _refused(["report", str(run)], holder, capsys)  # into RUN/report
    _refused(["report", str(tmp_path / "elsewhere"), "--out", str(run / "mine")], holder, capsys)
    assert not (run / "report").exists() and not (run / "mine").exists()


def test_run_on_a_locked_run_folder_names_the_pid(run_dir, tmp_path, capsys):
    run, holder = run_dir
    config = tmp_path / "job.toml"
    config.write_text(f'model = "no-such-model"\ntasks = ["pos"]\nout = "{run}"\n')
    _refused(["run", str(config), "--no-progress"], holder, capsys)
    assert not (run / "stores").exists()


def test_the_commands_go_ahead_once_the_holder_is_gone(run_dir, capsys):
    """After the run ends, the same commands pass the check (and fail later, for their own reasons)."""
    run, holder = run_dir
    holder.release()
    argv = ["extract", "--model", "no-such-model", "--task", "no-such-task", "--out", str(run / "s")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pid" not in err and "no-such-task" in err
