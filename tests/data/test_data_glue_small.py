"""GLUE tasks that are not staged (MNLI, QQP, QNLI train): small files in the official format."""

from __future__ import annotations

from pathlib import Path

import pytest

from redundancy.data import DataFormatError, carve_train_dev, load_task

MNLI_TRAIN_HEAD = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label",
]  # fmt: skip
MNLI_DEV_HEAD = MNLI_TRAIN_HEAD[:11] + ["label2", "label3", "label4", "label5", "gold_label"]
NLI = ("entailment", "neutral", "contradiction")


def write_tsv(path: Path, header: list[str] | None, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([header] if header else []) + rows
    path.write_text("".join("\t".join(r) + "\n" for r in lines), encoding="utf-8")
    return path


def mnli_row(i: int, n_fields: int) -> list[str]:
    label = NLI[i % 3]
    row = [str(i), str(100 + i), f"{100 + i}e", "fiction", "( a )", "( b )", "(ROOT a)", "(ROOT b)",
           f'Premise "{i}" here .', f"Hypothesis {i} .", label]  # fmt: skip
    return row + [label] * (n_fields - len(row))


@pytest.fixture
def mnli_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "glue" / "MNLI"
    write_tsv(folder / "train.tsv", MNLI_TRAIN_HEAD, [mnli_row(i, 12) for i in range(30)])
    write_tsv(folder / "dev_matched.tsv", MNLI_DEV_HEAD, [mnli_row(i, 16) for i in range(7)])
    write_tsv(folder / "dev_mismatched.tsv", MNLI_DEV_HEAD, [mnli_row(i, 16) for i in range(5)])
    return tmp_path


def test_mnli_splits(mnli_dir):
    train = load_task("mnli", "train", mnli_dir)
    dev = load_task("mnli", "dev", mnli_dir)
    train_idx, dev_idx = carve_train_dev(30)
    assert [e.line - 2 for e in train.items] == train_idx and len(train.items) == 27
    assert [e.line - 2 for e in dev.items] == dev_idx
    ex = train.items[0]
    assert ex.text == f'Premise "{train_idx[0]}" here .' and ex.text_pair == f"Hypothesis {train_idx[0]} ."
    assert ex.label == NLI[train_idx[0] % 3]
    assert train.labels == ("contradiction", "entailment", "neutral")
    matched = load_task("mnli", "test_matched", mnli_dir)
    mismatched = load_task("mnli", "test_mismatched", mnli_dir)
    assert len(matched.items) == 7 and len(mismatched.items) == 5
    assert next(iter(matched.files)).endswith("dev_matched.tsv")
    assert next(iter(mismatched.files)).endswith("dev_mismatched.tsv")
    assert [e.index for e in matched.items] == list(range(7))


def test_mnli_missing_gold_label(mnli_dir):
    rows = [mnli_row(0, 16), mnli_row(1, 16)[:-1] + ["-"]]
    write_tsv(mnli_dir / "glue" / "MNLI" / "dev_matched.tsv", MNLI_DEV_HEAD, rows)
    with pytest.raises(DataFormatError, match=r"dev_matched.tsv:3: missing label"):
        load_task("mnli", "test_matched", mnli_dir)


def test_qqp_splits(tmp_path):
    head = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    rows = [
        [str(i), str(2 * i), str(2 * i + 1), f"How do I {i}?", f'What is "{i}"?', str(i % 2)]
        for i in range(20)
    ]
    folder = tmp_path / "glue" / "QQP"
    write_tsv(folder / "train.tsv", head, rows)
    write_tsv(folder / "dev.tsv", head, rows[:4])
    train, dev, test = (load_task("qqp", s, tmp_path) for s in ("train", "dev", "test"))
    assert (len(train.items), len(dev.items), len(test.items)) == (18, 2, 4)
    assert {e.line for e in train.items} | {e.line for e in dev.items} == set(range(2, 22))
    assert test.items[1].text == "How do I 1?" and test.items[1].text_pair == 'What is "1"?'
    assert test.items[1].label == "1" and test.spec.metric == "f1"


def test_qnli_train_when_present(tmp_path):
    head = ["index", "question", "sentence", "label"]
    labels = ("entailment", "not_entailment")
    rows = [[str(i), f"Q{i}?", f"S{i}.", labels[i % 2]] for i in range(10)]
    write_tsv(tmp_path / "glue" / "QNLI" / "train.tsv", head, rows)
    train = load_task("qnli", "train", tmp_path)
    dev = load_task("qnli", "dev", tmp_path)
    assert len(train.items) == 9 and len(dev.items) == 1
    assert train.labels == labels
    assert load_task("qnli", "train", tmp_path, max_items=3).items == train.items[:3]


def test_missing_split_file_found_in_fetch_cache(tmp_path, _isolated_cache):
    """A file missing from the data directory is taken from the fetch cache (<cache>/data)."""
    head = ["index", "question", "sentence", "label"]
    write_tsv(tmp_path / "data" / "glue" / "QNLI" / "dev.tsv", head, [["0", "Q?", "S.", "entailment"]])
    cached = write_tsv(
        _isolated_cache / "data" / "glue" / "QNLI" / "train.tsv",
        head,
        [["0", "Q?", "S.", "not_entailment"]] * 20,
    )
    train = load_task("qnli", "train", tmp_path / "data")
    assert list(train.files) == [str(cached.resolve())]
    assert len(load_task("qnli", "test", tmp_path / "data").items) == 1
