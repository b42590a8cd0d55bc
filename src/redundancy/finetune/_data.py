"""The data of a fine-tuning run: the train/dev splits checked, their labels as targets, the
tokenized features, the epoch order and padded batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..data import SentenceExample, TaskData, load_task
from ..extract import items_sha256
from ._result import SplitSummary


@dataclass(frozen=True)
class Labels:
    """Targets of both splits: class ids (into ``names``) or real values."""

    label_type: str
    names: tuple[str, ...]
    train: np.ndarray
    dev: np.ndarray | None


def _check_split(data: TaskData, what: str) -> None:
    if data.spec.level not in ("sentence", "sentence_pair"):
        raise ValueError(f"fine-tuning needs a sentence task; {data.spec.name!r} is {data.spec.level}-level")
    if not data.items:
        raise ValueError(f"the {what} split of {data.spec.name!r} is empty")
    missing = [e.index for e in data.items if e.label is None]  # type: ignore[union-attr]
    if missing:
        raise ValueError(
            f"{len(missing)} {what} examples of {data.spec.name!r} have no label (first: {missing[0]})"
        )


def load_splits(
    task: str | TaskData, dev: TaskData | None, data_dir: str | Path | None, cap: int | None
) -> tuple[TaskData, TaskData | None]:
    """The train split (first ``cap`` items) and the dev split, loaded by name or taken as given."""
    if isinstance(task, str):
        train = load_task(task, "train", data_dir, max_items=cap)
        dev = load_task(task, "dev", data_dir) if dev is None else dev
    else:
        train = task
        if cap is not None and cap < len(train.items):
            note = f"max_train_examples={cap}: kept the first {cap} of {len(train.items)} items"
            train = replace(train, items=train.items[:cap], notes=(*train.notes, note))
    _check_split(train, "train")
    if dev is not None:
        _check_split(dev, "dev")
        if dev.spec.label_type != train.spec.label_type:
            raise ValueError("train and dev splits have different label types")
    return train, dev


def _class_ids(data: TaskData, index: dict[str, int]) -> np.ndarray:
    return np.asarray([index[str(e.label)] for e in data.items], dtype=np.int64)


def task_labels(train: TaskData, dev: TaskData | None) -> Labels:
    """Class names sorted as the extract stage sorts them (from train); dev classes must occur in train."""
    if train.spec.label_type == "real":
        y_dev = None if dev is None else np.asarray([e.label for e in dev.items], dtype=np.float32)
        return Labels("real", (), np.asarray([e.label for e in train.items], dtype=np.float32), y_dev)
    names = tuple(sorted({str(e.label) for e in train.items}))
    if len(names) < 2:
        raise ValueError(
            f"the train split of {train.spec.name!r} has a single class {names}; need two or more"
        )
    index = {n: i for i, n in enumerate(names)}
    y_dev = None
    if dev is not None:
        unseen = sorted({str(e.label) for e in dev.items} - set(names))
        if unseen:
            raise ValueError(
                f"dev labels {unseen} of {dev.spec.name!r} never occur in train "
                f"(train classes: {list(names)}); the classification head cannot predict them: "
                "use a larger train split"
            )
        y_dev = _class_ids(dev, index)
    return Labels("class", names, _class_ids(train, index), y_dev)


def split_summary(data: TaskData, n_at_max: int) -> SplitSummary:
    """What ``finetune.json`` records of a split (``n_at_max``: inputs that fill ``max_length``)."""
    return SplitSummary(
        data.split, len(data.items), dict(data.files), items_sha256(data), data.seed, n_at_max
    )


def encode(
    tokenizer, items: Sequence[SentenceExample], max_length: int
) -> tuple[list[dict[str, list[int]]], int]:
    """Tokenize sentences or pairs as the tokenizer defines them (``longest_first`` truncation), unpadded.

    Returns one feature dict per example and how many fill ``max_length`` (truncated, or exactly that long).
    """
    pairs = [e.text_pair for e in items]
    if any(p is None for p in pairs) and any(p is not None for p in pairs):
        raise ValueError("a split mixes single sentences and sentence pairs")
    features: list[dict[str, list[int]]] = []
    for start in range(0, len(items), 1024):
        chunk = items[start : start + 1024]
        texts = [e.text for e in chunk]
        second = None if pairs[0] is None else [e.text_pair for e in chunk]
        enc = tokenizer(texts, second, truncation=True, max_length=max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        features.extend({k: enc[k][i] for k in keys} for i in range(len(chunk)))
    return features, sum(len(f["input_ids"]) >= max_length for f in features)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` train examples in ``epoch``: a permutation drawn from ``(seed, epoch)``.

    >>> epoch_order(5, 42, 0).tolist() == epoch_order(5, 42, 0).tolist()
    True
    >>> sorted(epoch_order(5, 42, 1).tolist())
    [0, 1, 2, 3, 4]
    """
    return np.random.default_rng([seed, epoch]).permutation(n)


def make_batch(tokenizer, features: Sequence[dict[str, list[int]]], idx, labels: np.ndarray | None, device):
    """Pad the chosen examples to the longest of them (the tokenizer's pad token and side)."""
    import torch

    batch = tokenizer.pad([features[i] for i in idx], return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    if labels is not None:
        batch["labels"] = torch.as_tensor(labels[np.asarray(idx)], device=device)
    return batch
