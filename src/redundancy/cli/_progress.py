"""Progress bars for the command line (the library only calls back; drawing belongs here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bar(total: int, unit: str, desc: str, enabled: bool = True, unit_scale: bool = False):
    """A tqdm bar (items/s and ETA) whose log lines do not break it."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with (
        logging_redirect_tqdm(),
        tqdm(
            total=total, unit=unit, unit_scale=unit_scale, desc=desc, disable=not enabled, dynamic_ncols=True
        ) as b,
    ):
        yield b


class StageBars:
    """One tqdm bar per stage of the analysis (stages arrive as ``progress(stage, done, total)``)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        if stage != self.stage or self.bar is None or done < self.bar.n:
            self.close()
            self.bar = tqdm(total=total, desc=stage, unit="step", dynamic_ncols=True, leave=False)
            self.stage = stage
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
