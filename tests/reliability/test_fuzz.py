"""Fuzzing the inputs a user hands over: every task reader and predict input reader, fed random
lines and bytes, either parses (into items that keep their invariants) or raises ``DataFormatError``
naming the file; a job config with random keys, types and values either builds or raises
``ConfigError`` naming the file. Never any other exception.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from redundancy.data import DataFormatError, load_task, read_text, read_texts, read_words
from redundancy.job import ConfigError, JobConfig, load_config

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------------- file content

STSB_HEAD = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"

# Each format: (header line or None, one well-formed row's fields for word/row i, separator, whether
# blank lines end sentences). Files are drawn from these rows, some of them damaged.
FORMATS = {
    "conllu": (
        None,
        lambda i: [str(i), "Word", "word", "NOUN", "NN", "_", "0", "root", "_", "_"],
        "\t",
        True,
    ),
    "conll2000": (None, lambda i: ["He", "PRP", "B-NP"], " ", True),
    "conll2003": (None, lambda i: ["EU", "NNP", "B-NP", "B-ORG"], " ", True),
    "pmb": (None, lambda i: ["A", "A", "a", "DIS", "np/n", "O", "[]"], "\t", True),
    "sst2": ("sentence\tlabel", lambda i: ["a good film", "1"], "\t", False),
    "rte": (
        "index\tsentence1\tsentence2\tlabel",
        lambda i: [str(i), "A b.", "C d.", "entailment"],
        "\t",
        False,
    ),
    "stsb": (STSB_HEAD, lambda i: [str(i), "g", "f", "2012", "0", "n", "n", "A.", "B.", "2.5"], "\t", False),
    "cola": (None, lambda i: ["gj04", "1", "", "Good."], "\t", False),
    "words": (None, lambda i: ["the", "cats", "sat"], " ", False),
    "pairs": (None, lambda i: ["A man.", "A person."], "\t", False),
    "jsonl-words": (None, lambda i: ['{"words": ["a", "b"]}'], "\t", False),
    "jsonl-text": (None, lambda i: ['{"text": "a b"}'], "\t", False),
    "jsonl-pairs": (None, lambda i: ['{"text": "a", "text_pair": "b"}'], "\t", False),
}
# cells that replace or join a row's fields: near misses of every format
CELLS = [
    *"1 2 3 1-2 2.1 0 x _ - # é ~ a~b -DOCSTART- NOUN B-NP O label sentence entailment maybe".split(),
    *'nan inf 2.5 high " [1] { null'.split(),
    *["", " ", "# c", '{"words": []}', '{"words": "a"}', '{"text": 1}', '{"text": "x", "text_pair": "y"}'],
]


@st.composite
def damaged(draw, fields: list[str], sep: str) -> bytes:
    """One line of ``fields``: as is (most often), or with a field replaced, dropped or added, cut
    into another separator, or replaced by random bytes."""
    fields = list(fields)
    how = draw(st.integers(0, 15))
    if how == 6:
        fields[draw(st.integers(0, len(fields) - 1))] = draw(st.sampled_from(CELLS))
    elif how == 7 and len(fields) > 1:
        del fields[draw(st.integers(0, len(fields) - 1))]
    elif how == 8:
        fields.insert(draw(st.integers(0, len(fields))), draw(st.sampled_from(CELLS)))
    elif how == 9:
        sep = draw(st.sampled_from([" ", "\t", "  ", ""]))
    elif how == 10:
        return draw(st.binary(max_size=12))
    elif how == 11:
        return draw(st.sampled_from(["", "# comment", "-DOCSTART- -X- -X- O", " "])).encode()
    return sep.join(fields).encode()


@st.composite
def contents(draw, fmt: str) -> bytes:
    """A file of format ``fmt``: its header (maybe damaged), sentences or rows of well-formed and
    damaged lines, sometimes a BOM, CRLF endings or no final newline."""
    header, row, sep, blocks = FORMATS[fmt]
    lines = [draw(damaged(header.split("\t"), "\t"))] if header else []
    for _ in range(draw(st.integers(0, 3))):
        for i in range(1, draw(st.integers(1, 4)) + 1):
            lines.append(draw(damaged(row(i), sep)))
        if blocks or draw(st.integers(0, 4)) == 0:
            lines.append(b"")
    ending = draw(st.sampled_from([b"\n", b"\n", b"\r\n"]))
    data = ending.join(lines) + draw(st.sampled_from([b"", ending]))
    return (b"\xef\xbb\xbf" if draw(st.integers(0, 9)) == 0 else b"") + data


def _check_error(err: DataFormatError, path: Path, data: bytes) -> None:
    assert err.path == str(path)
    assert str(err).startswith(f"{path}:")
    if err.line is not None:
        assert 1 <= err.line <= data.count(b"\n") + 1
        assert str(err).startswith(f"{path}:{err.line}: ")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------------------ task readers

# task, split, the file it reads, the cells its lines are drawn from
TASK_FILES = [
    ("pos", "dev", "ud-english-ewt/en_ewt-ud-dev.conllu", "conllu"),
    ("upos", "dev", "ud-english-ewt/en_ewt-ud-dev.conllu", "conllu"),
    ("chunking", "test", "conll2000/test.txt", "conll2000"),
    ("sem", "dev", "pmb-4.0.0-en-gold/dev.conll", "pmb"),
    ("ccg", "dev", "pmb-4.0.0-en-gold/dev.conll", "pmb"),
    ("ner", "dev", "conll2003/valid.txt", "conll2003"),
    ("sst2", "test", "glue/SST-2/dev.tsv", "sst2"),
    ("rte", "test", "glue/RTE/dev.tsv", "rte"),
    ("stsb", "test", "glue/STS-B/dev.tsv", "stsb"),
    ("cola", "test", "glue/CoLA/dev.tsv", "cola"),
]


@pytest.mark.parametrize(("task", "split", "rel", "cells"), TASK_FILES, ids=[t[0] for t in TASK_FILES])
def test_task_reader_parses_or_names_the_file(task, split, rel, cells, root, monkeypatch):
    monkeypatch.setenv("REDUNDANCY_CACHE", str(root / "cache"))
    path = root / task / rel
    path.parent.mkdir(parents=True, exist_ok=True)

    @FUZZ
    @given(data=contents(cells))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            split_data = load_task(task, split, root / task)
        except DataFormatError as err:
            _check_error(err, path, data)
            event("refused")
            return
        event("parsed")
        assert split_data.items
        for item in split_data.items:
            assert item.source == str(path) and item.line >= 1
            if split_data.spec.level == "token":
                assert item.words and len(item.words) == len(item.labels)
                assert all(w for w in item.words) and all(lab not in ("", "_") for lab in item.labels)
            else:
                assert item.text and (split_data.spec.level == "sentence") == (item.text_pair is None)
                if split_data.spec.label_type == "real":
                    assert math.isfinite(item.label)
                else:
                    assert item.label not in ("", "_", "-")

    check()


def test_good_files_do_parse(root, monkeypatch):
    """The fuzzers above can tell a parse from an error: one well-formed file of each kind parses."""
    monkeypatch.setenv("REDUNDANCY_CACHE", str(root / "cache"))
    good = {
        "pos": "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n",
        "chunking": "He PRP B-NP\n\n",
        "sem": "# c\nA\tA\ta\tDIS\tnp/n\tO\t[]\n\n",
        "ner": "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n\n",
        "sst2": "sentence\tlabel\ngood\t1\n",
        "stsb": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        "0\tg\tf\t2012\t0\tn\tn\tA.\tB.\t2.5\n",
    }
    for task, text in good.items():
        _, split, rel, _ = next(t for t in TASK_FILES if t[0] == task)
        path = root / "good" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        assert len(load_task(task, split, root / "good").items) == 1


# ---------------------------------------------------------------------------------- predict inputs

PREDICT_READERS = [
    ("words-text", "in.txt", lambda p: read_words(p, "text"), "words"),
    ("words-jsonl", "in.jsonl", lambda p: read_words(p, "jsonl"), "jsonl-words"),
    ("words-conll", "in.conll", lambda p: read_words(p, "conll", 2), "conll2000"),
    ("words-conllu", "in.conllu", lambda p: read_words(p, "conll"), "conllu"),
    ("texts-text", "in.txt", lambda p: read_texts(p, "text", pairs=False), "words"),
    ("texts-pairs", "in.tsv", lambda p: read_texts(p, "text", pairs=True), "pairs"),
    ("texts-jsonl", "in.jsonl", lambda p: read_texts(p, "jsonl", pairs=False), "jsonl-text"),
    ("texts-jsonl-pairs", "in.jsonl", lambda p: read_texts(p, "jsonl", pairs=True), "jsonl-pairs"),
    ("read-text", "in.txt", lambda p: read_text(p), "words"),
]


@pytest.mark.parametrize(
    ("name", "file", "read", "cells"), PREDICT_READERS, ids=[r[0] for r in PREDICT_READERS]
)
def test_input_reader_parses_or_names_the_file(name, file, read, cells, root):
    path = root / name / file
    path.parent.mkdir(parents=True, exist_ok=True)

    @FUZZ
    @given(data=contents(cells))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            result = read(path)
        except DataFormatError as err:
            _check_error(err, path, data)
            event("refused")
            return
        event("parsed")
        if name.startswith("words"):
            assert result and all(s and all(isinstance(w, str) and w for w in s) for s in result)
        elif name.startswith("texts"):
            texts, pairs = result
            assert texts and all(isinstance(t, str) for t in texts)
            assert (pairs is None) == ("pairs" not in name) and (pairs is None or len(pairs) == len(texts))
        else:
            assert result.items and all(item.words for item in result.items)

    check()


# --------------------------------------------------------------------------------------- job config

_DEFAULT = JobConfig()
TOP_KEYS = [f.name for f in dataclasses.fields(JobConfig) if f.name != "source"]
SECTION_KEYS = {
    f.name: [g.name for g in dataclasses.fields(getattr(_DEFAULT, f.name))]
    for f in dataclasses.fields(JobConfig)
    if dataclasses.is_dataclass(getattr(_DEFAULT, f.name))
}
WORDS = ["pos", "sst2", "none", "paper", "auto", "cpu", "float16", "last", "mean", "extract", "report", "x"]

scalars = st.one_of(
    st.integers(-3, 6),
    st.integers(),
    st.floats(-1.5, 2.5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(WORDS),
    st.text(max_size=6),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(WORDS), inner, max_size=3),
    max_leaves=8,
)


def near(default):
    """Values of the default's own type around it: most are accepted, some are out of range."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(-1, 6)
    if isinstance(default, float):
        return st.floats(-0.2, 1.2)
    if isinstance(default, str):
        return st.sampled_from([default, *WORDS])
    if isinstance(default, tuple) and default:
        return st.lists(
            near(default[0]) if not isinstance(default[0], tuple) else st.just([3, 1]), max_size=3
        )
    return values


def mostly(strategy):
    """``strategy`` three times in four, any value otherwise."""
    return st.one_of(strategy, strategy, strategy, values)


@st.composite
def documents(draw) -> dict:
    """A config as parsed TOML: known keys (sometimes misspelt), tables of a section's keys, and
    values near each key's default (often valid) or of any type and range."""
    doc: dict = {}
    for key in draw(st.lists(st.sampled_from([*TOP_KEYS, "taks", "extrat", "zz"]), unique=True, max_size=4)):
        section = getattr(_DEFAULT, key, None)
        if key in SECTION_KEYS and draw(st.integers(0, 4)):
            keys = draw(st.lists(st.sampled_from([*SECTION_KEYS[key], "bach_size"]), unique=True, max_size=3))
            doc[key] = {k: draw(mostly(near(getattr(section, k, None)))) for k in keys}
        elif key == "tasks":
            doc[key] = draw(
                mostly(st.lists(st.sampled_from(["pos", "sst2", "chunking", "nope"]), min_size=1, max_size=2))
            )
        else:
            doc[key] = draw(mostly(near(section)) if key in TOP_KEYS and key not in SECTION_KEYS else values)
    return doc


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(map(toml_value, v)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


@FUZZ
@given(doc=documents())
def test_config_builds_or_says_which_key(doc, tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "fuzz.toml"
    path.write_text("".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items()), encoding="utf-8")
    try:
        config = load_config(path)
    except ConfigError as err:
        assert str(err).startswith(f"{path}")
        event("refused")
    else:
        event("built")
        assert isinstance(config, JobConfig) and config.source == str(path)
    try:  # the same values straight from Python
        JobConfig.from_dict(doc)
    except ConfigError as err:
        assert str(err).startswith("<dict>: ")


def test_config_fuzzer_reaches_both_outcomes(tmp_path):
    """The config fuzzer can tell the outcomes apart: a good document builds, a bad one is refused."""
    good = {"tasks": ["pos"], "extract": {"batch_size": 4}, "pipeline": {"thresholds": ["none", 0.3]}}
    assert JobConfig.from_dict(good).extract.batch_size == 4
    with pytest.raises(ConfigError, match="extract.batch_size"):
        JobConfig.from_dict(good | {"extract": {"batch_size": 0}})
