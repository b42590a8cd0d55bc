"""Typed records produced by the task readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Level = Literal["token", "sentence", "sentence_pair"]
LabelType = Literal["class", "real"]


class DataFormatError(ValueError):
    """Malformed input data; the message names the file and the 1-based line."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class TokenSentence:
    """One sentence of a token-level task: words and (optionally) one label per word.

    ``index`` is the sentence's 0-based position in its split (after any carving or capping);
    ``line`` is the 1-based line in ``source`` where the sentence starts.
    """

    index: int
    words: tuple[str, ...]
    labels: tuple[str, ...] | None
    source: str = ""
    line: int = 0


@dataclass(frozen=True)
class SentenceExample:
    """One item of a sentence-level task: a sentence, or a pair, and its label.

    ``label`` is a class name (``str``) or a real value (``float``), or ``None`` for unlabeled text.
    """

    index: int
    text: str
    text_pair: str | None
    label: str | float | None
    source: str = ""
    line: int = 0


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its level, label type, default metric, splits and where its files live."""

    name: str
    level: Level
    label_type: LabelType
    metric: str
    splits: tuple[str, ...]
    description: str = ""
    folder: str = ""


@dataclass(frozen=True)
class TaskData:
    """One split of one task, read into memory (text only; activations are streamed elsewhere).

    ``files`` maps each source file's path to its SHA-256, so results can record the data hash.
    ``labels`` is the sorted label vocabulary of this split (class tasks), ``()`` for real labels.
    ``seed`` is the seed of the train/dev carve that produced this split, ``None`` if there was none.
    """

    spec: TaskSpec
    split: str
    items: tuple[TokenSentence, ...] | tuple[SentenceExample, ...]
    files: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def n_items(self) -> int:
        """Number of stored activation rows: words for token tasks, examples otherwise."""
        if self.spec.level == "token":
            return sum(len(s.words) for s in self.items)  # type: ignore[union-attr]
        return len(self.items)
