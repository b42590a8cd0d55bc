"""Bad input: every malformed file raises DataFormatError naming the file and the 1-based line."""

from __future__ import annotations

from pathlib import Path

import pytest

from redundancy.data import (
    DataFormatError,
    MissingDataError,
    UnknownSplitError,
    UnknownTaskError,
    get_task,
    load_task,
    read_text,
)

EWT = "ud-english-ewt/en_ewt-ud-dev.conllu"
CONLL2000 = "conll2000/test.txt"
PMB = "pmb-4.0.0-en-gold/dev.conll"
CONLL2003 = "conll2003/valid.txt"


def conllu_line(i: int | str, form: str, upos: str = "NOUN", xpos: str = "NN", n: int = 10) -> str:
    fields = [str(i), form, form.lower(), upos, xpos, "_", "0", "root", "_", "_"]
    return "\t".join(fields[:n])


GOOD_CONLLU = "\n".join(["# sent_id = a", conllu_line(1, "Hello"), conllu_line(2, "there"), ""]) + "\n"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def expect_error(
    root: Path, rel: str, text: str, task: str, split: str, line: int | None, match: str
) -> None:
    write(root, rel, text)
    with pytest.raises(DataFormatError, match=match) as info:
        load_task(task, split, root)
    err = info.value
    assert Path(rel).name in str(err)
    assert err.line == line
    if line is not None:
        assert f"{Path(rel).name}:{line}:" in str(err)


# ------------------------------------------------------------------------------------------------ CoNLL-U
def test_conllu_good_file_reads(tmp_path):
    write(tmp_path, EWT, GOOD_CONLLU + "\n" + GOOD_CONLLU.replace("Hello", "Bye"))
    data = load_task("pos", "dev", tmp_path)
    assert [s.words for s in data.items] == [("Hello", "there"), ("Bye", "there")]
    assert [s.line for s in data.items] == [2, 7]


def test_conllu_wrong_column_count(tmp_path):
    text = "# c\n" + conllu_line(1, "Hello") + "\n" + conllu_line(2, "there", n=9) + "\n\n"
    expect_error(tmp_path, EWT, text, "pos", "dev", 3, "expected 10 tab-separated")


def test_conllu_invalid_id(tmp_path):
    text = conllu_line(1, "Hello") + "\n" + conllu_line("2x", "there") + "\n\n"
    expect_error(tmp_path, EWT, text, "pos", "dev", 2, "invalid CoNLL-U ID '2x'")


def test_conllu_missing_label(tmp_path):
    text = GOOD_CONLLU + "\n" + conllu_line(1, "Hi") + "\n" + conllu_line(2, "you", xpos="_") + "\n\n"
    expect_error(tmp_path, EWT, text, "pos", "dev", 7, "missing XPOS label")


def test_conllu_ids_out_of_sequence(tmp_path):
    """A skipped word ID would shift every later label onto the wrong word."""
    text = conllu_line(1, "Hello") + "\n" + conllu_line(3, "there") + "\n\n"
    expect_error(tmp_path, EWT, text, "upos", "dev", 2, "out of sequence")


def test_conllu_empty_file(tmp_path):
    expect_error(tmp_path, EWT, "# only a comment\n\n", "pos", "dev", None, "no sentences")


def test_conllu_ranges_and_empty_nodes_are_skipped(tmp_path):
    text = "\n".join(
        [
            conllu_line("1-2", "don't", "_", "_"),
            conllu_line(1, "do", "AUX", "VBP"),
            conllu_line(2, "n't", "PART", "RB"),
            conllu_line("2.1", "x", "X", "_"),
            conllu_line(3, "go", "VERB", "VB"),
            "",
        ]
    )
    write(tmp_path, EWT, text)
    (sent,) = load_task("pos", "dev", tmp_path).items
    assert sent.words == ("do", "n't", "go") and sent.labels == ("VBP", "RB", "VB")
    (usent,) = load_task("upos", "dev", tmp_path).items
    assert usent.labels == ("AUX", "PART", "VERB")


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / EWT
    path.parent.mkdir(parents=True)
    path.write_bytes(GOOD_CONLLU.encode() + b"\n" + conllu_line(1, "caf").encode() + b"\xff\n\n")
    with pytest.raises(DataFormatError, match=r"en_ewt-ud-dev.conllu:6: not valid UTF-8"):
        load_task("pos", "dev", tmp_path)


# ------------------------------------------------------------------------------------------- column files
def test_conll2000_wrong_column_count(tmp_path):
    expect_error(tmp_path, CONLL2000, "He PRP B-NP\nsaid VBD\n\n", "chunking", "test", 2, "expected 3 space")


def test_conll2000_missing_label(tmp_path):
    expect_error(tmp_path, CONLL2000, "He PRP B-NP\n\nsaid VBD _\n", "chunking", "test", 3, "missing label")


def test_conll2000_empty_file(tmp_path):
    expect_error(tmp_path, CONLL2000, "\n\n", "chunking", "test", None, "no sentences")


def test_pmb_wrong_column_count(tmp_path):
    text = "# newdoc id = p00/d0001\nA\tA\ta\tDIS\tnp/n\tO\t[]\ngirl\tgirl\tgirl\tCON\tn\n\n"
    expect_error(tmp_path, PMB, text, "sem", "dev", 3, "expected 7 tab")


def test_pmb_missing_label(tmp_path):
    text = "# c\nA\tA\ta\tDIS\t_\tO\t[]\n\n"
    expect_error(tmp_path, PMB, text, "ccg", "dev", 2, "missing label")


def test_pmb_tilde_and_comments(tmp_path):
    write(
        tmp_path,
        PMB,
        "### header\n# raw sent = x\nCharles~de~Gaulle\tC\tc\tPER\tn\tO\t[]\nleft\tl\tl\tPST\tv\tO\t[]\n\n",
    )
    (sent,) = load_task("sem", "dev", tmp_path).items
    assert sent.words == ("Charles de Gaulle", "left") and sent.labels == ("PER", "PST") and sent.line == 3


def test_conll2003_docstart_and_errors(tmp_path):
    write(
        tmp_path,
        CONLL2003,
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n\n-DOCSTART- -X- -X- O\n\nHi UH O O\n\n",
    )
    data = load_task("ner", "dev", tmp_path)
    assert [s.words for s in data.items] == [("EU",), ("Hi",)] and [s.line for s in data.items] == [3, 7]
    expect_error(tmp_path, CONLL2003, "EU NNP B-NP B-ORG\nrejects VBZ B-VP\n", "ner", "dev", 2, "expected 4")
    expect_error(tmp_path, CONLL2003, "-DOCSTART- -X- -X- O\n\n", "ner", "dev", None, "no sentences")


# ------------------------------------------------------------------------------------------------- GLUE
def test_glue_wrong_field_count(tmp_path):
    text = "sentence\tlabel\ngood \t1\nbad\t0\textra\n"
    expect_error(
        tmp_path, "glue/SST-2/dev.tsv", text, "sst2", "test", 3, "expected 2 tab-separated fields, found 3"
    )


def test_glue_quote_does_not_merge_rows(tmp_path):
    write(tmp_path, "glue/SST-2/dev.tsv", 'sentence\tlabel\n" a quote \t1\nnext " one\t0\n')
    data = load_task("sst2", "test", tmp_path)
    assert [e.text for e in data.items] == ['" a quote', 'next " one']


def test_glue_missing_label(tmp_path):
    text = "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t\n"
    expect_error(tmp_path, "glue/RTE/dev.tsv", text, "rte", "test", 2, "missing label")


def test_glue_unexpected_label(tmp_path):
    text = "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tmaybe\n"
    expect_error(tmp_path, "glue/RTE/dev.tsv", text, "rte", "test", 3, "unexpected label 'maybe'")


def test_stsb_non_numeric_score(tmp_path):
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    row = "0\tg\tf\t2012\t0\tnone\tnone\tA man.\tA woman.\t{}\n"
    text = head + row.format("1.5") + row.format("high")
    expect_error(
        tmp_path, "glue/STS-B/dev.tsv", text, "stsb", "test", 3, "'high' in column 10 is not a number"
    )


def test_glue_empty_file(tmp_path):
    expect_error(tmp_path, "glue/SST-2/dev.tsv", "", "sst2", "test", None, "empty file")
    expect_error(tmp_path, "glue/SST-2/dev.tsv", "sentence\tlabel\n", "sst2", "test", None, "no examples")


def test_glue_header_lacks_column(tmp_path):
    expect_error(
        tmp_path, "glue/SST-2/dev.tsv", "text\tlabel\na\t1\n", "sst2", "test", 1, "no column 'sentence'"
    )


def test_cola_row_with_wrong_field_count(tmp_path):
    text = "gj04\t1\t\tGood.\ngj04\t0\tBad.\n"
    expect_error(
        tmp_path, "glue/CoLA/dev.tsv", text, "cola", "test", 2, "expected 4 tab-separated fields, found 3"
    )


def test_mrpc_bom_is_stripped(tmp_path):
    text = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA b .\tC d .\n"
    write(tmp_path, "glue/MRPC/dev.tsv", text)
    (ex,) = load_task("mrpc", "test", tmp_path).items
    assert (ex.text, ex.text_pair, ex.label, ex.line) == ("A b .", "C d .", "1", 2)


# -------------------------------------------------------------------------------------------- plain text
def test_read_text_levels_and_errors(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("Hello  world .\n\n  Second line\n", encoding="utf-8")
    tok = read_text(path)
    assert [s.words for s in tok.items] == [("Hello", "world", "."), ("Second", "line")]
    assert [s.line for s in tok.items] == [1, 3] and tok.items[0].labels is None
    assert tok.spec.level == "token" and tok.split == "all" and tok.n_items == 5
    sent = read_text(path, level="sentence")
    assert [e.text for e in sent.items] == ["Hello  world .", "Second line"] and sent.n_items == 2
    assert len(read_text(path, max_tokens=3).items) == 1
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty.txt: no sentences"):
        read_text(empty)
    with pytest.raises(ValueError, match="level"):
        read_text(path, level="word")


# ---------------------------------------------------------------------------------- names, splits, caps
def test_unknown_task_and_split_messages(tmp_path):
    with pytest.raises(UnknownTaskError) as info:
        get_task("posx")
    assert str(info.value).startswith("unknown task 'posx'; known tasks: pos, upos,")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    with pytest.raises(UnknownSplitError, match="valid splits: train, dev, test_matched, test_mismatched"):
        load_task("mnli", "test", tmp_path)


def test_missing_file_names_path_and_fetch(tmp_path):
    with pytest.raises(MissingDataError) as info:
        load_task("qnli", "train", tmp_path)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "glue" / "QNLI" / "train.tsv") in msg and "redundancy data fetch qnli" in msg
    with pytest.raises(MissingDataError, match="research agreement"):
        load_task("ner", "train", tmp_path)


def test_cap_validation(tmp_path):
    write(tmp_path, CONLL2000, "He PRP B-NP\nsaid VBD B-VP\n\nOK UH O\n\n")
    with pytest.raises(ValueError, match="keeps no sentence"):
        load_task("chunking", "test", tmp_path, max_tokens=1)
    with pytest.raises(ValueError, match="positive integer"):
        load_task("chunking", "test", tmp_path, max_items=0)
    with pytest.raises(ValueError, match="token-level tasks only"):
        load_task("sst2", "test", tmp_path, max_tokens=10)
    data = load_task("chunking", "test", tmp_path, max_tokens=2)
    assert len(data.items) == 1 and data.n_items == 2


def test_capped_conllu_reads_only_what_the_cap_needs(tmp_path):
    """A capped read of a whole-file CoNLL-U split streams: it keeps what reading everything and then
    capping keeps, and stops at the first sentence past the cap (a broken line after it is not read)."""
    good = [GOOD_CONLLU.replace("Hello", f"W{i}") for i in range(5)]
    broken = "\n".join([conllu_line(1, "bad", n=9), ""]) + "\n"
    write(tmp_path, EWT, "\n".join(good))
    full = load_task("pos", "dev", tmp_path)
    for kw, n in (({"max_tokens": 5}, 2), ({"max_items": 3}, 3), ({"max_tokens": 100, "max_items": 4}, 4)):
        capped = load_task("pos", "dev", tmp_path, **kw)
        assert capped.items == full.items[:n] and len(capped.notes) == 1
    write(tmp_path, EWT, "\n".join([*good[:3], broken, *good[3:]]))
    assert len(load_task("pos", "dev", tmp_path, max_items=3).items) == 3  # stops before the broken line
    with pytest.raises(DataFormatError, match="expected 10 tab-separated"):
        load_task("pos", "dev", tmp_path, max_items=4)  # reaches it
    with pytest.raises(DataFormatError, match="expected 10 tab-separated"):
        load_task("pos", "dev", tmp_path)
    write(tmp_path, EWT, "# only a comment\n\n")
    with pytest.raises(DataFormatError, match="no sentences"):
        load_task("pos", "dev", tmp_path, max_items=2)
    with pytest.raises(ValueError, match="keeps no sentence"):
        write(tmp_path, EWT, good[0])
        load_task("pos", "dev", tmp_path, max_tokens=1)
