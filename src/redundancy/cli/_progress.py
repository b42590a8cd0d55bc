"""Progress for the command line (the library only calls back; drawing belongs here).

On a terminal, one tqdm bar per piece of work. Elsewhere (CI, ``nohup``, a file) redrawn bars would
fill the log with frames, so progress becomes plain log lines instead (logger ``redundancy.progress``):
one every ``interval`` seconds (``--progress-interval``, else ``$REDUNDANCY_PROGRESS_INTERVAL``, else
30) and one when a piece of work ends, each with done/total, unit, rate and ETA.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .._progress import Progress

ENV_INTERVAL = "REDUNDANCY_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0

progress_logger = logging.getLogger("redundancy.progress")


def parse_interval(text: str, what: str = "--progress-interval") -> float:
    """Seconds between progress lines: a positive finite number (``ValueError`` naming ``what``).

    >>> parse_interval("2.5")
    2.5
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive number of seconds, got {text!r}")
    return value


def interval_argument(text: str) -> float:
    """``type=`` of the ``--progress-interval`` option."""
    try:
        return parse_interval(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def progress_interval(interval: float | None = None) -> float:
    """``interval`` when given, else ``$REDUNDANCY_PROGRESS_INTERVAL``, else 30 seconds."""
    if interval is not None:
        return float(interval)
    env = os.environ.get(ENV_INTERVAL, "").strip()
    return parse_interval(env, ENV_INTERVAL) if env else DEFAULT_INTERVAL


class StageBars:
    """The CLI's :class:`redundancy._progress.Progress` on a terminal: one tqdm bar per ``what``
    (cumulative ``done``)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.stage = None

    def __call__(self, stage: str, done: int, total: int | None, unit: str = "step") -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        if stage != self.stage or self.bar is None or done < self.bar.n:
            self.close()
            self.bar = tqdm(
                total=total, desc=stage, unit=unit, unit_scale=unit != "step", dynamic_ncols=True, leave=False
            )
            self.stage = stage
        elif total is not None and total != self.bar.total:
            self.bar.total = total
            self.bar.refresh()
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _amount(n: float, unit: str) -> str:
    """``1234`` -> ``"1234"``; bytes with a decimal prefix (``"1.2 MB"``)."""
    if unit != "B":
        return f"{int(n)}"
    for prefix in ("", "k", "M", "G", "T"):
        if abs(n) < 1000 or prefix == "T":
            return f"{n:.0f} B" if not prefix else f"{n:.1f} {prefix}B"
        n /= 1000
    raise AssertionError  # pragma: no cover


def _rate(r: float) -> str:
    return f"{r:.0f}" if r >= 100 else f"{r:.1f}" if r >= 10 else f"{r:.2f}"


def _clock(seconds: float) -> str:
    """``H:MM:SS``."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


class ProgressLog:
    """The CLI's :class:`redundancy._progress.Progress` off a terminal: a log line on ``logger``
    every ``interval`` seconds of one piece of work, and one when it ends (another ``what`` starts,
    ``done`` goes back, or :meth:`close`).

    ``clock`` gives seconds (``time.monotonic``; tests pass a fake one). The rate is that of this
    process (a resumed piece of work starts counting where it resumed); the ETA is the rest at that
    rate. The end line gives the rate and time up to the last report.

    >>> class Clock:
    ...     t = 0.0
    ...     def __call__(self):
    ...         return self.t
    >>> clock, lines = Clock(), []
    >>> log = ProgressLog(interval=30, clock=clock, emit=lines.append)
    >>> for t, done in ((0, 0), (10, 100), (30, 300), (40, 400)):
    ...     clock.t = t
    ...     log("extract pos/train", done, 400, unit="word")
    >>> log.close()
    >>> print("\\n".join(lines))
    extract pos/train: 300/400 word (75.0%), 10.0 word/s, ETA 0:00:10
    extract pos/train: finished 400/400 word (100.0%), 10.0 word/s, ETA 0:00:00, in 0:00:40
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[str], None] | None = None,
    ):
        self.interval = float(interval)
        self.clock = clock
        self.emit = emit or progress_logger.info
        self.what: str | None = None

    def __call__(self, what: str, done: int, total: int | None, unit: str = "step") -> None:
        now = self.clock()
        if what != self.what or done < self.done:
            self.close()
            self.what, self.start, self.last, self.first = what, now, now, done
        self.done, self.total, self.unit, self.seen = done, total, unit, now
        if now - self.last >= self.interval:
            self.emit(self._line(now, end=False))
            self.last = now

    def close(self) -> None:
        """Log the end of the current piece of work (if any)."""
        if self.what is not None:  # rate and duration up to its last report, when the work stood there
            self.emit(self._line(self.seen, end=True))
            self.what = None

    def _line(self, now: float, end: bool) -> str:
        done, total, unit = self.done, self.total, self.unit
        elapsed = now - self.start
        rate = (done - self.first) / elapsed if elapsed > 0 else math.nan
        count = f"{_amount(done, unit)}/{'?' if total is None else _amount(total, unit)}"
        if unit != "B":
            count += f" {unit}"
        if total:
            count += f" ({100 * done / total:.1f}%)"
        speed = f"{_rate(rate)} {unit}/s" if math.isfinite(rate) else f"? {unit}/s"
        if total is not None and done >= total:
            eta = _clock(0)
        elif total is not None and rate > 0:
            eta = _clock((total - done) / rate)
        else:
            eta = "?"
        if not end:
            return f"{self.what}: {count}, {speed}, ETA {eta}"
        state = "finished" if total is not None and done >= total else "ended at"
        return f"{self.what}: {state} {count}, {speed}, ETA {eta}, in {_clock(elapsed)}"


@contextmanager
def stage_bars(
    enabled: bool,
    interval: float | None = None,
    *,
    tty: bool | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Progress]:
    """The progress of one analysis call, closed on the way out: tqdm bars (log lines kept off them)
    when stderr is a terminal (``tty``), else :class:`ProgressLog` lines every ``interval`` seconds
    (see :func:`progress_interval`). ``enabled=False``: nothing at all."""
    if tty is None:
        tty = sys.stderr.isatty()
    if not enabled:
        yield StageBars(False)
    elif tty:
        from tqdm.contrib.logging import logging_redirect_tqdm

        bars = StageBars(True)
        try:
            with logging_redirect_tqdm():
                yield bars
        finally:
            bars.close()
    else:
        log = ProgressLog(progress_interval(interval), clock=clock)
        try:
            yield log
        finally:
            log.close()


def progress_for(args: argparse.Namespace):
    """:func:`stage_bars` as a subcommand's options ask (``--no-progress``, ``--progress-interval``)."""
    return stage_bars(
        not getattr(args, "no_progress", False), interval=getattr(args, "progress_interval", None)
    )
