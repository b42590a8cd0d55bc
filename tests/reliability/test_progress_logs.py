"""Progress off a terminal: plain log lines (logger ``redundancy.progress``) every N seconds and one
at the end of each piece of work, never tqdm frames; on a terminal, tqdm as before."""

from __future__ import annotations

import logging

import pytest

from redundancy.cli import build_parser, main
from redundancy.cli._progress import (
    ENV_INTERVAL,
    ProgressLog,
    StageBars,
    progress_interval,
    stage_bars,
)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="redundancy.progress")

    def get() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "redundancy.progress"]

    return get


def _drive(progress, clock, what, total, steps, per_step=10, seconds=5.0, unit="word"):
    """Call ``progress`` every ``seconds`` of fake time, ``per_step`` more done each time."""
    for i in range(steps + 1):
        progress(what, i * per_step, total, unit=unit)
        if i < steps:
            clock.t += seconds


def test_lines_every_interval_and_one_per_stage_end(clock, lines):
    log = ProgressLog(interval=30, clock=clock)
    # 200 words in 20 steps of 5 s: 100 s, 2 words/s; lines at 30, 60 and 90 s
    _drive(log, clock, "extract pos/train", 200, steps=20)
    assert lines() == [
        "extract pos/train: 60/200 word (30.0%), 2.00 word/s, ETA 0:01:10",
        "extract pos/train: 120/200 word (60.0%), 2.00 word/s, ETA 0:00:40",
        "extract pos/train: 180/200 word (90.0%), 2.00 word/s, ETA 0:00:10",
    ]
    clock.t += 5
    log("layer probes", 1, 4, unit="step")  # another piece: the first one's end line (as of its last call)
    assert len(lines()) == 4
    assert lines()[3] == (
        "extract pos/train: finished 200/200 word (100.0%), 2.00 word/s, ETA 0:00:00, in 0:01:40"
    )
    clock.t += 20
    log("layer probes", 3, 4, unit="step")  # 20 s < 30 s: no line
    log.close()
    assert lines()[4:] == ["layer probes: ended at 3/4 step (75.0%), 0.10 step/s, ETA 0:00:10, in 0:00:20"]
    log.close()  # closing twice logs nothing more
    assert len(lines()) == 5


def test_a_short_stage_gives_its_end_line_only(clock, lines):
    log = ProgressLog(interval=30, clock=clock)
    _drive(log, clock, "general pass", 12, steps=4, per_step=3, seconds=1.0, unit="batch")
    log.close()
    assert lines() == ["general pass: finished 12/12 batch (100.0%), 3.00 batch/s, ETA 0:00:00, in 0:00:04"]


def test_done_going_back_starts_a_new_piece_of_work(clock, lines):
    log = ProgressLog(interval=30, clock=clock)
    _drive(log, clock, "fine-tune sst2", 50, steps=5, unit="step")  # 0..50 in 25 s
    _drive(log, clock, "fine-tune sst2", 50, steps=1, unit="step")  # the same name, again from 0
    log.close()
    assert lines() == [
        "fine-tune sst2: finished 50/50 step (100.0%), 2.00 step/s, ETA 0:00:00, in 0:00:25",
        "fine-tune sst2: ended at 10/50 step (20.0%), 2.00 step/s, ETA 0:00:20, in 0:00:05",
    ]


def test_unknown_total_bytes_and_a_resumed_start(clock, lines):
    log = ProgressLog(interval=10, clock=clock)
    log("download ewt", 0, None, unit="B")
    clock.t += 10
    log("download ewt", 2_500_000, None, unit="B")
    log("extract pos/dev", 500, 1000, unit="word")  # resumed: 500 were done before this process
    clock.t += 10
    log("extract pos/dev", 600, 1000, unit="word")
    assert lines() == [
        "download ewt: 2.5 MB/?, 250000 B/s, ETA ?",
        "download ewt: ended at 2.5 MB/?, 250000 B/s, ETA ?, in 0:00:10",
        # the rate counts what this process did (100 words in 10 s), not the 500 found done
        "extract pos/dev: 600/1000 word (60.0%), 10.0 word/s, ETA 0:00:40",
    ]


def test_off_a_terminal_no_frames_reach_stderr(clock, lines, capsys):
    with stage_bars(True, interval=30, tty=False, clock=clock) as progress:
        assert isinstance(progress, ProgressLog)
        _drive(progress, clock, "extract pos/train", 1000, steps=100, per_step=10, seconds=1.0)
    assert capsys.readouterr().err == ""  # no \r frames: the lines go through logging
    assert len(lines()) == 3 + 1  # at 30, 60, 90 s, and the end
    assert lines()[-1].startswith("extract pos/train: finished 1000/1000 word")


def test_the_end_line_comes_even_when_the_work_fails(clock, lines):
    with pytest.raises(KeyboardInterrupt), stage_bars(True, interval=30, tty=False, clock=clock) as progress:
        progress("probe pos", 3, 10)
        raise KeyboardInterrupt
    assert lines() == ["probe pos: ended at 3/10 step (30.0%), ? step/s, ETA ?, in 0:00:00"]


def test_on_a_terminal_tqdm_draws(capsys, lines):
    with stage_bars(True, tty=True) as progress:
        assert isinstance(progress, StageBars)
        progress("extract pos/train", 5, 10, unit="word")
    assert "extract pos/train" in capsys.readouterr().err
    assert lines() == []


def test_disabled_progress_is_silent(clock, lines, capsys):
    for tty in (True, False):
        with stage_bars(False, tty=tty, clock=clock) as progress:
            progress("x", 1, 2)
            clock.t += 100
            progress("x", 2, 2)
    assert lines() == [] and capsys.readouterr().err == ""


def test_the_interval_comes_from_the_option_else_the_environment(monkeypatch):
    monkeypatch.delenv(ENV_INTERVAL, raising=False)
    assert progress_interval() == 30
    monkeypatch.setenv(ENV_INTERVAL, "2.5")
    assert progress_interval() == 2.5
    assert progress_interval(7) == 7  # the option wins
    monkeypatch.setenv(ENV_INTERVAL, "soon")
    with pytest.raises(ValueError, match=ENV_INTERVAL):
        progress_interval()


def test_the_global_option_is_parsed_and_checked(capsys):
    args = build_parser().parse_args(["--progress-interval", "5", "data", "list"])
    assert args.progress_interval == 5.0
    assert build_parser().parse_args(["data", "list"]).progress_interval is None
    for bad in ("0", "-1", "nan", "x"):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(["--progress-interval", bad, "data", "list"])
        assert exit_.value.code == 2
    assert "--progress-interval must be a positive number of seconds" in capsys.readouterr().err


def test_a_command_off_a_terminal_logs_lines(tmp_path, lines, capsys, monkeypatch):
    """``redundancy general`` with stderr captured (not a terminal): log lines, no tqdm frames."""
    from synthetic import TAGS, planted, write_store

    acts, y = planted(60, n_layers=2, hidden=6, seed=0)
    store = write_store(tmp_path / "s", acts, y, TAGS, split="dev")
    argv = ["--progress-interval", "1e-9", "general", "--store", str(store), "--out", str(tmp_path / "g")]
    assert main([*argv, "--no-figures", "--batch-size", "16"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err
    got = lines()
    assert got, "no progress lines"
    assert all(" ETA " in line and "/s" in line for line in got)
    assert any(": finished " in line for line in got)
