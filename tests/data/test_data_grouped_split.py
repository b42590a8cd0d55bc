"""Splits carved from one file are sentence-grouped: no sentence (for pairs, no identical pair) lands
on both sides of the 90/10 carve."""

import pytest

from redundancy.data import SentenceExample, TokenSentence
from redundancy.data._load import group_duplicates


def _key(item):
    if isinstance(item, TokenSentence):
        return item.words
    return (item.text, item.text_pair)


@pytest.mark.parametrize("task", ["chunking", "sst2", "stsb", "cola", "mrpc", "rte"])
def test_no_item_text_on_both_sides_of_the_carve(load, task):
    train, dev = load(task, "train"), load(task, "dev")
    overlap = {_key(i) for i in train.items} & {_key(i) for i in dev.items}
    assert not overlap, f"{len(overlap)} texts in both train and dev, e.g. {next(iter(overlap))}"
    assert len(dev.items) > 0.08 * (len(train.items) + len(dev.items))  # still about a 90/10 carve


def test_group_duplicates_moves_dev_copies_of_train_items_to_train():
    items = [SentenceExample(index=i, text=t, text_pair=None, label="1") for i, t in enumerate("abcabd")]
    train, dev, moved = group_duplicates(items, [0, 1, 4], [2, 3, 5])
    # dev's "a" (3) duplicates train's "a" (0): moved; dev's "c" and "d" stay
    assert moved == 1 and train == [0, 1, 4, 3] and dev == [2, 5]
