"""Progress bars for the command line (the library only calls back; drawing belongs here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class StageBars:
    """The CLI's :class:`redundancy._progress.Progress`: one tqdm bar per ``what`` (cumulative ``done``)."""

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


@contextmanager
def stage_bars(enabled: bool) -> Iterator[StageBars]:
    """:class:`StageBars` for one analysis call, log lines kept off the bars, closed on the way out."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    bars = StageBars(enabled)
    try:
        with logging_redirect_tqdm():
            yield bars
    finally:
        bars.close()
