"""Readers on the real corpora: counts and label sets must equal the SOURCE.md tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from redundancy.data import (
    TASKS,
    SentenceExample,
    TokenSentence,
    carve_train_dev,
    load_task,
)

# (task, split) -> (items, words) from the SOURCE.md tables; words None for sentence tasks.
TOKEN_COUNTS = {
    ("pos", "train"): (12_544, 204_577),
    ("pos", "dev"): (2_001, 25_147),
    ("pos", "test"): (2_077, 25_094),
    ("upos", "test"): (2_077, 25_094),
    ("chunking", "test"): (2_012, 47_377),
    ("sem", "train"): (7_745, 50_408),
    ("sem", "dev"): (1_174, 7_368),
    ("sem", "test"): (1_053, 6_821),
    ("sem", "eval"): (841, 5_710),
    ("ccg", "train"): (7_745, 50_408),
    ("ner", "train"): (14_041, 203_621),
    ("ner", "dev"): (3_250, 51_362),
    ("ner", "test"): (3_453, 46_435),
}

# official GLUE counts: (train.tsv examples, dev.tsv examples)
GLUE_COUNTS = {
    "sst2": (67_349, 872),
    "mrpc": (3_668, 408),
    "stsb": (5_749, 1_500),
    "rte": (2_490, 277),
    "cola": (8_551, 1_043),
}

GLUE_DUPLICATES_MOVED = {"sst2": 79, "stsb": 6, "cola": 3}

LABEL_SET_SIZES = {
    ("pos", "train"): 49,
    ("upos", "train"): 17,
    ("sem", "train"): 69,
    ("ccg", "train"): 294,
    ("ner", "train"): 9,
    ("sst2", "test"): 2,
    ("mrpc", "test"): 2,
    ("rte", "test"): 2,
    ("cola", "test"): 2,
    ("qnli", "test"): 2,
}


def _sha256sums(data_dir: Path) -> dict[str, str]:
    out = {}
    for line in (data_dir / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        out[name.removeprefix("./")] = digest
    return out


@pytest.mark.parametrize(("task", "split"), sorted(TOKEN_COUNTS))
def test_token_task_counts(load, task, split):
    data = load(task, split)
    n_sent, n_words = TOKEN_COUNTS[task, split]
    assert len(data.items) == n_sent
    assert data.n_items == n_words
    assert all(isinstance(s, TokenSentence) and len(s.words) == len(s.labels) for s in data.items)
    assert [s.index for s in data.items] == list(range(n_sent))


@pytest.mark.parametrize(("task", "split"), sorted(LABEL_SET_SIZES))
def test_label_set_sizes(load, task, split):
    assert len(load(task, split).labels) == LABEL_SET_SIZES[task, split]


def test_label_sets_content(load):
    assert "WP$" in load("pos", "train").labels and "WP$" not in load("pos", "test").labels
    assert set(load("ner", "train").labels) == {"O"} | {
        f"{p}-{t}" for p in "BI" for t in ("PER", "LOC", "ORG", "MISC")
    }
    assert load("sem", "train").labels[:3] == ("ALT", "AND", "APX")
    assert load("rte", "test").labels == ("entailment", "not_entailment")
    assert load("stsb", "test").labels == ()


def test_chunking_train_dev_carve(load, real_data_dir):
    train, dev = load("chunking", "train"), load("chunking", "dev")
    assert len(train.items) + len(dev.items) == 8_936
    assert train.n_items + dev.n_items == 211_727
    # the paper's carve, less the 6 dev sentences identical to a train sentence (kept in train)
    assert len(dev.items) == 8_936 - int(8_936 * 0.9) - 6
    # both keep file order, are disjoint and cover train.txt
    train_lines = [s.line for s in train.items]
    dev_lines = [s.line for s in dev.items]
    assert train_lines == sorted(train_lines) and dev_lines == sorted(dev_lines)
    assert not set(train_lines) & set(dev_lines)
    labels = set(train.labels) | set(dev.labels)
    assert len(labels) == 22 and "I-LST" not in labels
    assert "I-LST" in load("chunking", "test").labels
    # deterministic given the seed, different for another seed
    assert load_task("chunking", "dev", real_data_dir).items == dev.items
    other = load("chunking", "dev", seed=1)
    assert [s.line for s in other.items] != dev_lines


@pytest.mark.parametrize("task", sorted(GLUE_COUNTS))
def test_glue_counts_and_split(load, task):
    n_train_file, n_dev_file = GLUE_COUNTS[task]
    train, dev, test = load(task, "train"), load(task, "dev"), load(task, "test")
    # the paper's carve, plus the dev items identical to a train item (kept in train)
    assert len(train.items) == int(n_train_file * 0.9) + GLUE_DUPLICATES_MOVED.get(task, 0)
    assert len(train.items) + len(dev.items) == n_train_file
    assert len(test.items) == n_dev_file
    lines_train = {e.line for e in train.items}
    lines_dev = {e.line for e in dev.items}
    assert not lines_train & lines_dev
    header = 0 if task == "cola" else 1
    assert lines_train | lines_dev == set(range(1 + header, n_train_file + 1 + header))
    assert all(isinstance(e, SentenceExample) for e in train.items)
    assert [e.index for e in dev.items] == list(range(len(dev.items)))
    pair = TASKS[task].level == "sentence_pair"
    assert all((e.text_pair is not None) == pair for e in test.items)


def test_glue_split_follows_paper_protocol(load):
    """np.random.seed(7361); shuffle arange(n); first int(0.9 n) train, in shuffled order."""
    train = load("rte", "train")
    train_idx, dev_idx = carve_train_dev(2_490, 7361)
    assert [e.line - 2 for e in train.items] == train_idx  # line 2 holds row 0
    assert [e.line - 2 for e in load("rte", "dev").items] == dev_idx
    assert carve_train_dev(2_490, 7361) == (train_idx, dev_idx)
    assert carve_train_dev(2_490, 1) != (train_idx, dev_idx)
    reseeded = load("rte", "train", seed=1)
    assert [e.line for e in reseeded.items] != [e.line for e in train.items]


def test_qnli_has_only_official_dev(load):
    assert len(load("qnli", "test").items) == 5_463
    assert load("qnli", "test").items[0].text == "What came into force after the new constitution was herald?"


def test_glue_quirks(load):
    sst = load("sst2", "test").items[0]
    assert sst.text == "it 's a charming and often affecting journey ." and sst.label == "1"
    mrpc = load("mrpc", "test").items[0]
    assert mrpc.label == "1" and mrpc.text.startswith("He said the foodservice")
    assert mrpc.text_pair.startswith('" The foodservice')
    stsb = load("stsb", "test").items[0]
    assert stsb.label == 5.0 and isinstance(stsb.label, float)
    assert all(0.0 <= e.label <= 5.0 for e in load("stsb", "train").items)
    cola = load("cola", "test").items[0]
    assert (
        cola.text == "The sailors rode the breeze clear of the rocks."
        and cola.label == "1"
        and cola.line == 1
    )
    assert sum(e.label == "1" for e in load("cola", "test").items) == 721


def test_pmb_multiword_tokens_stay_one_word(load):
    words = [w for s in load("sem", "train").items for w in s.words]
    assert not any("~" in w for w in words)
    assert sum(" " in w for w in words) > 0
    first = load("sem", "train").items[0]
    assert first.words == ("A", "girl", "is", "styling", "her", "hair")
    assert first.labels == ("DIS", "CON", "NOW", "EXG", "HAS", "CON")
    assert first.line == 7
    assert load("ccg", "train").items[0].labels[2] == "(s:dcl\\np)/(s:ng\\np)"


def test_ner_skips_docstart(load):
    first = load("ner", "train").items[0]
    assert first.words[:2] == ("EU", "rejects") and first.labels[:3] == ("B-ORG", "O", "B-MISC")
    assert first.line == 3
    assert not any("-DOCSTART-" in s.words for s in load("ner", "train").items)


def test_conllu_skips_ranges_and_empty_nodes(load):
    data = load("pos", "train")
    assert not any(" " in w for s in data.items for w in s.words)
    assert data.items[0].source.endswith("en_ewt-ud-train.conllu")
    # every sentence starts at a word line of the file (comments excluded)
    path = Path(data.items[0].source)
    lines = path.read_text(encoding="utf-8").splitlines()
    for s in data.items[:50]:
        assert lines[s.line - 1].split("\t")[0] in ("1", "1-2", "1-3")


def test_files_carry_the_recorded_sha256(load, real_data_dir):
    sums = _sha256sums(real_data_dir)
    for task, split in [
        ("pos", "train"),
        ("chunking", "dev"),
        ("sem", "eval"),
        ("sst2", "test"),
        ("rte", "dev"),
    ]:
        data = load(task, split)
        assert len(data.files) == 1
        ((path, digest),) = data.files.items()
        assert Path(path).is_absolute()
        assert digest == sums[Path(path).relative_to(real_data_dir.resolve()).as_posix()]


def test_max_tokens_keeps_whole_sentences(load):
    full = load("pos", "train")
    capped = load("pos", "train", max_tokens=150_000)
    n = len(capped.items)
    assert capped.n_items <= 150_000
    assert capped.n_items + len(full.items[n].words) > 150_000
    assert capped.items == full.items[:n]
    assert any("max_tokens=150000" in note for note in capped.notes)
    sem = load("sem", "train")
    assert load("sem", "train", max_items=10).items == sem.items[:10]
    both = load("sem", "train", max_tokens=1_000, max_items=5)
    assert both.items == sem.items[:5]


def test_max_tokens_above_size_keeps_everything(load):
    assert len(load("sem", "train", max_tokens=10**9).items) == 7_745


def test_split_records_the_carve_seed():
    from redundancy.data import load_task

    assert load_task("rte", "train").seed == 7361
    assert load_task("rte", "dev", seed=3).seed == 3
    assert load_task("rte", "test").seed is None  # the official dev file, not carved
    assert load_task("pos", "dev").seed is None
