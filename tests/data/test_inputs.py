"""The prediction input readers (``input_format``, ``read_words``, ``read_texts``): known answers for each
format, and every malformed file refused with a DataFormatError naming ``file:line``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from redundancy.data import DataFormatError, input_format, read_texts, read_words


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def at(path: Path, line: int | None, message: str) -> str:
    """A ``match`` pattern for the DataFormatError message ``path:line: message...``."""
    where = f"{path}:{line}" if line is not None else str(path)
    return "^" + re.escape(f"{where}: {message}")


# --------------------------------------------------------------------------- input_format


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.conll", "conll"),
        ("a.conllu", "conll"),
        ("A.CONLLU", "conll"),
        ("a.txt", "text"),
        ("a.tsv", "text"),
        ("a.jsonl", "jsonl"),
    ],
)
def test_input_format_from_the_extension(name, fmt):
    assert input_format(Path(name), None) == fmt
    assert input_format(name, None) == fmt


def test_input_format_given_wins_over_the_extension():
    assert input_format(Path("a.conll"), "jsonl") == "jsonl"
    assert input_format(Path("a.doc"), "text") == "text"


def test_input_format_unknown_extension():
    with pytest.raises(ValueError, match=r"x\.doc: cannot tell the input format from the extension '\.doc'"):
        input_format(Path("x.doc"), None)
    with pytest.raises(ValueError, match=r"pass --input-format conll\|text\|jsonl"):
        input_format(Path("noext"), None)


# --------------------------------------------------------------------------- read_words


def test_conll_words_with_comments_tabs_and_spaces(tmp_path):
    path = write(
        tmp_path / "in.conll",
        "# a comment\n# another\nThe\tDT\ncat\tNN\n\n\nsat  VBD\n#hash\tSYM\n",
    )
    # a line without a tab splits on spaces; '#' after a sentence's first word is a word, not a comment
    assert read_words(path, "conll") == [["The", "cat"], ["sat", "#hash"]]


def test_conll_word_column_and_bom(tmp_path):
    path = write(tmp_path / "in.conll", "\ufeff1\tThe\tDT\n2\tdog\tNN\n\n1\tRuns\tVBZ\n")
    assert read_words(path, "conll", word_column=2) == [["The", "dog"], ["Runs"]]
    assert read_words(path, "conll") == [["1", "2"], ["1"]]
    assert read_words(path, "conll", word_column=3) == [["DT", "NN"], ["VBZ"]]


def test_conllu_defaults_to_column_2_and_skips_multiword_and_empty_nodes(tmp_path):
    path = write(
        tmp_path / "in.conllu",
        "# sent_id = 1\n# text = don't go\n"
        "1-2\tdon't\t_\t_\n1\tdo\tdo\tAUX\n2\tn't\tnot\tPART\n2.1\tgo\tgo\tVERB\n3\tgo\tgo\tVERB\n"
        "\n# sent_id = 2\n1\tHi\thi\tINTJ\n",
    )
    assert read_words(path, "conll") == [["do", "n't", "go"], ["Hi"]]
    assert read_words(path, "conll", word_column=4) == [["AUX", "PART", "VERB"], ["INTJ"]]


def test_conll_ranges_are_kept_outside_conllu(tmp_path):
    path = write(tmp_path / "in.conll", "1-2\tx\n3.1\ty\n")
    assert read_words(path, "conll") == [["1-2", "3.1"]]


def test_text_words(tmp_path):
    path = write(tmp_path / "in.txt", "The  cat sat\n\n   \n\tA dog\r\nends\n")
    assert read_words(path, "text") == [["The", "cat", "sat"], ["A", "dog"], ["ends"]]


def test_jsonl_words(tmp_path):
    lines = [json.dumps({"words": ["Hello", "wide world"]}), "", json.dumps({"words": ["é"], "extra": 1})]
    path = write(tmp_path / "in.jsonl", "\n".join(lines) + "\n")
    assert read_words(path, "jsonl") == [["Hello", "wide world"], ["é"]]


def test_read_words_accepts_a_str_path(tmp_path):
    path = write(tmp_path / "in.txt", "a b\n")
    assert read_words(str(path), "text") == [["a", "b"]]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{"words": ["a"]}\n{"words": oops}\n', 2, "not valid JSON (Expecting value)"),
        ('["a", "b"]\n', 1, "expected a JSON object, got list"),
        ('"a"\n', 1, "expected a JSON object, got str"),
        ('{"words": ["a"]}\n\n{"text": "a b"}\n', 3, 'expected {"words": [strings]}'),
        ('{"words": "a b"}\n', 1, 'expected {"words": [strings]}'),
        ('{"words": ["a", 1]}\n', 1, 'expected {"words": [strings]}'),
        ('{"words": ["a"]}\n{"words": []}\n', 2, "a sentence without words"),
    ],
)
def test_jsonl_words_errors_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.jsonl", text)
    with pytest.raises(DataFormatError, match=at(path, line, message)) as err:
        read_words(path, "jsonl")
    assert err.value.path == str(path) and err.value.line == line


def test_conll_errors_name_file_and_line(tmp_path):
    short = write(tmp_path / "short.conll", "a\tX\nb\tY\n\nc\n")
    with pytest.raises(DataFormatError, match=at(short, 4, "1 column(s), the words are in column 2")) as err:
        read_words(short, "conll", word_column=2)
    assert err.value.line == 4
    empty_word = write(tmp_path / "empty_word.conll", "a\tX\n\t \tY\n")
    with pytest.raises(DataFormatError, match=at(empty_word, 2, "empty word in column 2")):
        read_words(empty_word, "conll", word_column=2)
    with pytest.raises(ValueError, match="--word-column is 1-based, got 0"):
        read_words(short, "conll", word_column=0)


@pytest.mark.parametrize(("name", "fmt"), [("e.txt", "text"), ("e.jsonl", "jsonl"), ("e.conll", "conll")])
def test_no_sentences_names_the_file(tmp_path, name, fmt):
    path = write(tmp_path / name, "\n  \n\n" if fmt != "conll" else "# only a comment\n\n")
    with pytest.raises(DataFormatError, match=at(path, None, "no sentences found")) as err:
        read_words(path, fmt)
    assert err.value.line is None


def test_read_words_unknown_format(tmp_path):
    path = write(tmp_path / "a.txt", "a\n")
    with pytest.raises(ValueError, match="unknown input format 'csv'"):
        read_words(path, "csv")


# --------------------------------------------------------------------------- read_texts


def test_text_single_sentences(tmp_path):
    path = write(tmp_path / "in.txt", "  A fine film. \n\nDull.\n")
    assert read_texts(path, "text", pairs=False) == (["A fine film.", "Dull."], None)


def test_text_pairs_split_at_the_first_tab(tmp_path):
    path = write(tmp_path / "in.tsv", "A man sleeps.\tA person rests. \n\nOne\ttwo\tthree\n")
    texts, seconds = read_texts(path, "text", pairs=True)
    assert texts == ["A man sleeps.", "One"]
    assert seconds == ["A person rests.", "two\tthree"]


def test_jsonl_texts_and_pairs(tmp_path):
    single = write(tmp_path / "s.jsonl", '{"text": " kept as is "}\n\n{"text": "b"}\n')
    assert read_texts(single, "jsonl", pairs=False) == ([" kept as is ", "b"], None)
    pair = write(
        tmp_path / "p.jsonl",
        "".join(json.dumps({"text": t, "text_pair": p}) + "\n" for t, p in [("a", "b"), ("c", "d")]),
    )
    assert read_texts(pair, "jsonl", pairs=True) == (["a", "c"], ["b", "d"])


@pytest.mark.parametrize(
    ("name", "fmt", "pairs", "text", "line", "message"),
    [
        ("p.tsv", "text", True, "one\ttwo\nno tab here\n", 2, "a pair task needs text<TAB>text_pair"),
        ("s.txt", "text", False, "fine\n\na\tb\n", 3, "a tab in a single-sentence task's line"),
        ("b.jsonl", "jsonl", False, '{"text": "a"}\n{"text": \n', 2, "not valid JSON"),
        ("n.jsonl", "jsonl", False, "[1]\n", 1, "expected a JSON object, got list"),
        ("t.jsonl", "jsonl", False, '{"words": ["a"]}\n', 1, 'expected {"text": string}'),
        ("q.jsonl", "jsonl", True, '{"text": "a"}\n', 1, 'a pair task needs {"text": ..., "text_pair"'),
        (
            "x.jsonl",
            "jsonl",
            False,
            '{"text": "a"}\n{"text": "a", "text_pair": "b"}\n',
            2,
            "text_pair given, but this is a single-sentence task",
        ),
    ],
)
def test_read_texts_errors_name_file_and_line(tmp_path, name, fmt, pairs, text, line, message):
    path = write(tmp_path / name, text)
    with pytest.raises(DataFormatError, match=at(path, line, message)) as err:
        read_texts(path, fmt, pairs=pairs)
    assert err.value.line == line


def test_read_texts_empty_and_refused_formats(tmp_path):
    empty = write(tmp_path / "e.txt", "\n\n")
    with pytest.raises(DataFormatError, match=at(empty, None, "no texts found")):
        read_texts(empty, "text", pairs=False)
    conll = write(tmp_path / "a.conll", "a\tX\n")
    with pytest.raises(ValueError, match="conll input is for token tasks; use text or jsonl"):
        read_texts(conll, "conll", pairs=False)
    with pytest.raises(ValueError, match="unknown input format 'csv'"):
        read_texts(write(tmp_path / "f.txt", "a\n"), "csv", pairs=False)
