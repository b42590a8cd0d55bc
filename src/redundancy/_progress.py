"""The one progress shape of the package: a callback ``progress(what, done, total, unit=...)``.

Library code never draws anything; it reports *cumulative* progress of one named piece of work
(``"extract pos/train"``, ``"layer probes"``, ``"general pass"``) and the caller decides what to do
with it (the CLI draws one tqdm bar per ``what``; tests count calls). ``total`` is ``None`` when it
is not known in advance (a download without a length); ``unit`` names what ``done`` counts
(``"word"``, ``"step"``, ``"batch"``, ``"B"``).

>>> seen = []
>>> def spy(what, done, total, unit="step"):
...     seen.append((what, done, total, unit))
>>> report = Counter(spy, "extract pos/train", total=10, unit="word")
>>> report.update(4); report.update(6)
>>> seen
[('extract pos/train', 4, 10, 'word'), ('extract pos/train', 10, 10, 'word')]
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Anything called as ``progress(what, done, total, unit=...)`` with cumulative ``done``."""

    def __call__(self, what: str, done: int, total: int | None, unit: str = "step") -> None: ...


def no_progress(what: str, done: int, total: int | None, unit: str = "step") -> None:
    """A :class:`Progress` that ignores everything (the default of every stage)."""


class Counter:
    """Turns increments (``update(n)``, as a loop produces them) into cumulative :class:`Progress` calls."""

    def __init__(
        self, progress: Progress | None, what: str, total: int | None, unit: str = "step", done: int = 0
    ):
        self.progress = progress or no_progress
        self.what, self.total, self.unit, self.n = what, total, unit, done
        if done:
            self.progress(what, done, total, unit=unit)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more and report the running total."""
        self.n += n
        self.progress(self.what, self.n, self.total, unit=self.unit)
