"""Loading one split of one task: locate the file, read it, carve train/dev, cap, re-index, hash."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from ._datadir import cache_data_dir, resolve_data_dir
from ._fetch import fetch_hint
from ._readers import file_sha256, read_text_items
from ._registry import DEFAULT_SEED, UnknownSplitError, _source, get_task
from ._types import DataFormatError, SentenceExample, TaskData, TaskSpec, TokenSentence

logger = logging.getLogger(__name__)

TRAIN_FRACTION = 0.9
"""Share of the carved file that becomes ``train`` (the rest is ``dev``), as in the paper."""

Item = TypeVar("Item", TokenSentence, SentenceExample)


class MissingDataError(FileNotFoundError):
    """A task file is not on disk; the message names the path and how to get it."""


def carve_train_dev(n: int, seed: int = DEFAULT_SEED) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into train/dev indices exactly as the paper's scripts do.

    ``np.random.seed(seed)``, shuffle ``arange(n)``, the first ``int(n * 0.9)`` shuffled indices are train and
    the rest dev. Both lists come in shuffled order; callers that want file order sort them.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    n_train = int(n * TRAIN_FRACTION)
    return [int(i) for i in order[:n_train]], [int(i) for i in order[n_train:]]


def _item_key(item: TokenSentence | SentenceExample) -> tuple:
    """What makes two items the same text: a sentence's words, an example's text (and pair)."""
    if isinstance(item, TokenSentence):
        return ("words", item.words)
    return ("text", item.text, item.text_pair)


def group_duplicates(
    items: Sequence[Item], train_idx: list[int], dev_idx: list[int]
) -> tuple[list[int], list[int], int]:
    """The carve with every dev item whose text also occurs in train moved to train (kept in its
    shuffled position at the end of train), so no sentence, and for pairs no identical pair, is on
    both sides; returns ``(train, dev, moved)``. Duplicates inside dev alone stay together in dev."""
    seen = {_item_key(items[i]) for i in train_idx}
    keep, moved = [], []
    for i in dev_idx:
        (moved if _item_key(items[i]) in seen else keep).append(i)
    return train_idx + moved, keep, len(moved)


def _locate(spec: TaskSpec, file: str, split: str, data_dir: str | Path | None) -> Path:
    """The task file in the data directory, else in the fetch cache, else :class:`MissingDataError`."""
    root = resolve_data_dir(data_dir)
    path = root / spec.folder / file
    if path.is_file():
        return path
    cached = cache_data_dir() / spec.folder / file
    if cached.is_file():
        logger.info("%s not in %s; using the fetched copy %s", file, root, cached)
        return cached.resolve()
    raise MissingDataError(
        f"{spec.folder}/{file} (task {spec.name!r}, split {split!r}) not found: no file {path}"
        f" nor {cached}. {fetch_hint(spec.name)}"
    )


def _check_cap(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, not {value!r}")


def _apply_caps(
    items: Sequence[Item], level: str, max_tokens: int | None, max_items: int | None
) -> tuple[list[Item], list[str]]:
    """Keep a prefix: whole sentences while the word total stays <= max_tokens, then at most max_items."""
    notes: list[str] = []
    kept = list(items)
    if max_tokens is not None:
        if level != "token":
            raise ValueError("max_tokens applies to token-level tasks only; use max_items for sentence tasks")
        total = 0
        n_keep = 0
        for item in kept:
            n_words = len(item.words)  # type: ignore[union-attr]
            if total + n_words > max_tokens:
                break
            total += n_words
            n_keep += 1
        if n_keep == 0 and kept:
            first = len(kept[0].words)  # type: ignore[union-attr]
            raise ValueError(f"max_tokens={max_tokens} keeps no sentence (the first has {first} words)")
        if n_keep < len(kept):
            notes.append(
                f"max_tokens={max_tokens}: kept the first {n_keep} of {len(kept)} sentences ({total} words);"
                " the sentence crossing the cap and all later ones were dropped"
            )
        kept = kept[:n_keep]
    if max_items is not None and max_items < len(kept):
        notes.append(f"max_items={max_items}: kept the first {max_items} of {len(kept)} items")
        kept = kept[:max_items]
    return kept, notes


def _read_capped(
    stream: Iterable[Item], path: Path, level: str, max_tokens: int | None, max_items: int | None
) -> tuple[list[Item], list[str]]:
    """The caps of :func:`_apply_caps` applied while reading: the file is read (and checked) only up to
    the first item past a cap, so lines after it are neither parsed nor checked. The kept items are
    the same as reading the whole file and capping; the notes say the rest was not read."""
    kept: list[Item] = []
    total = 0
    notes: list[str] = []
    for item in stream:
        if max_tokens is not None:
            n_words = len(item.words)  # type: ignore[union-attr]
            if total + n_words > max_tokens:
                if not kept:
                    raise ValueError(
                        f"max_tokens={max_tokens} keeps no sentence (the first has {n_words} words)"
                    )
                notes.append(
                    f"max_tokens={max_tokens}: kept the first {len(kept)} sentences ({total} words); the "
                    "sentence crossing the cap and the rest of the file were not kept (nor read)"
                )
                break
            total += n_words
        kept.append(item)
        if max_items is not None and len(kept) == max_items:  # stop before reading any further
            notes.append(
                f"max_items={max_items}: kept the first {max_items} items; the rest of the file was not read"
            )
            break
    if not kept:
        raise DataFormatError(path, None, "no sentences found (empty file?)")
    return kept, notes


def _reindex(items: Sequence[Item]) -> tuple[Item, ...]:
    return tuple(
        item if item.index == i else dataclasses.replace(item, index=i) for i, item in enumerate(items)
    )


def _label_set(spec: TaskSpec, items: Sequence[TokenSentence | SentenceExample]) -> tuple[str, ...]:
    if spec.label_type != "class":
        return ()
    if spec.level == "token":
        found = {label for s in items for label in (s.labels or ())}  # type: ignore[union-attr]
    else:
        found = {s.label for s in items if s.label is not None}  # type: ignore[union-attr]
    return tuple(sorted(str(x) for x in found))


def load_task(
    name: str,
    split: str,
    data_dir: str | Path | None = None,
    *,
    max_tokens: int | None = None,
    max_items: int | None = None,
    seed: int | None = None,
) -> TaskData:
    """Read one split of a task into a :class:`TaskData`.

    Parameters
    ----------
    name, split
        A task of :data:`TASKS` and one of its ``spec.splits``.
    data_dir
        Data directory; ``None`` resolves it with :func:`resolve_data_dir`. A file missing there is also
        looked up in the fetch cache (``<cache>/data``).
    max_tokens
        Token tasks only: keep whole sentences from the start while the running word count stays
        ``<= max_tokens``; the sentence that would cross the cap, and every later one, is dropped
        (the paper's "first 150,000 training tokens").
    max_items
        Keep at most this many sentences/examples (applied after ``max_tokens``).
    seed
        Seed of the train/dev carve for splits carved from one file (CoNLL-2000 and GLUE ``train``/``dev``);
        ``None`` means the paper's 7361. Unused for other splits.

    Carved splits: ``np.random.seed(seed)``-shuffle the file's items, first 90% train, rest dev
    (:func:`carve_train_dev`). GLUE splits keep that shuffled order (the paper's data order); CoNLL-2000
    train/dev keep file order. Items are re-indexed 0..n-1; ``source``/``line`` still point into the file.
    """
    spec = get_task(name)
    source = _source(name)
    if split not in source.splits:
        raise UnknownSplitError(
            f"task {name!r} has no split {split!r}; valid splits: {', '.join(spec.splits)}"
        )
    _check_cap("max_tokens", max_tokens)
    _check_cap("max_items", max_items)
    if max_tokens is not None and spec.level != "token":
        raise ValueError(f"max_tokens applies to token-level tasks only ({name!r} is {spec.level}-level)")
    plan = source.splits[split]
    path = _locate(spec, plan.file, split, data_dir)
    logger.info("reading %s/%s from %s", name, split, path)
    capped = max_tokens is not None or max_items is not None
    notes: list[str] = []
    used_seed = None
    if plan.part == "all" and capped and source.stream is not None:
        kept, cap_notes = _read_capped(source.stream(path), path, spec.level, max_tokens, max_items)
    else:
        items = source.read(path)
        if plan.part != "all":
            seed = used_seed = DEFAULT_SEED if seed is None else seed
            train_idx, dev_idx = carve_train_dev(len(items), seed)
            train_idx, dev_idx, moved = group_duplicates(items, train_idx, dev_idx)
            if moved:
                notes.append(
                    f"{moved} dev item(s) identical to a train item (same text) kept in train: no sentence "
                    "or pair lands on both sides of the carve"
                )
            chosen = train_idx if plan.part == "train" else dev_idx
            if source.order == "original":
                chosen = sorted(chosen)
            n_all = len(items)
            items = [items[i] for i in chosen]
            notes.append(
                f"{plan.part} carved from {plan.file} with seed {seed}: {len(items)} of {n_all} items "
                f"({'file' if source.order == 'original' else 'shuffled'} order)"
            )
        kept, cap_notes = _apply_caps(items, spec.level, max_tokens, max_items)
    notes.extend(cap_notes)
    out = _reindex(kept)
    return TaskData(
        spec=spec,
        split=split,
        items=out,
        files={str(path.resolve()): file_sha256(path)},
        labels=_label_set(spec, out),
        notes=tuple(notes),
        seed=used_seed,
    )


def text_spec(level: str = "token") -> TaskSpec:
    """The :class:`TaskSpec` of unlabeled plain text at ``level`` ('token' or 'sentence')."""
    if level not in ("token", "sentence"):
        raise ValueError(f"level must be 'token' or 'sentence', not {level!r}")
    return TaskSpec(
        "text",
        level,
        "class",
        "none",
        ("all",),
        "plain text, one sentence per line (unlabeled)",  # type: ignore[arg-type]
    )


def read_text(
    path: str | Path, level: str = "token", *, max_tokens: int | None = None, max_items: int | None = None
) -> TaskData:
    """Read unlabeled text (one sentence per line, blank lines skipped) as split ``all`` of task ``text``.

    ``level='token'`` splits each line on whitespace into words (labels ``None``); ``level='sentence'`` keeps
    each line as one example. An empty file raises :class:`DataFormatError`. Caps work as in ``load_task``.
    """
    spec = text_spec(level)
    _check_cap("max_tokens", max_tokens)
    _check_cap("max_items", max_items)
    path = Path(path)
    items = read_text_items(path, level)
    kept, notes = _apply_caps(items, level, max_tokens, max_items)
    return TaskData(
        spec=spec,
        split="all",
        items=_reindex(kept),
        files={str(path.resolve()): file_sha256(path)},
        labels=(),
        notes=tuple(notes),
    )
