"""Every bad input gets a clear error: exit status 2 and one line on stderr naming the file (and the
line where there is one) or the option, never a traceback; an unexpected error is one line too (exit
status 1) with a hint to rerun with ``--debug``, which shows the traceback.

The commands run in-process (``redundancy.cli.main``); the data cases fail while reading, before any
model loads, so they need none. Model folders are copies of a tiny random BERT, damaged one way each.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_store

from redundancy.cli import main
from redundancy.compact import FORMAT_VERSION, INFO_FILE, CompactInfo
from redundancy.data import DataFormatError, read_texts, read_words
from redundancy.extract import ExtractConfig, ModelError, check_device, load_model, plan_segments
from redundancy.job import ConfigError, JobConfig

EWT = "ud-english-ewt/en_ewt-ud-dev.conllu"
CONLL2000 = "conll2000/test.txt"
PMB = "pmb-4.0.0-en-gold/dev.conll"
CONLL2003 = "conll2003/valid.txt"
SST2 = "glue/SST-2/dev.tsv"
RTE = "glue/RTE/dev.tsv"
STSB = "glue/STS-B/dev.tsv"
COLA = "glue/CoLA/dev.tsv"
STSB_HEAD = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
STSB_ROW = "0\tg\tf\t2012\t0\tnone\tnone\tA man.\tA woman.\t{}\n"


def conllu(i, form: str, xpos: str = "NN", n: int = 10) -> str:
    return "\t".join([str(i), form, form.lower(), "NOUN", xpos, "_", "0", "root", "_", "_"][:n])


GOOD_CONLLU = f"# sent_id = a\n{conllu(1, 'Hello')}\n{conllu(2, 'there')}\n\n"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """No test reads or writes ~/.cache (the data loader looks there for missing files)."""
    monkeypatch.setenv("REDUNDANCY_CACHE", str(tmp_path / "cache"))


def cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``redundancy -q ARGV`` in-process: (exit status, stderr)."""
    code = main(["-q", *map(str, argv)])
    return code, capsys.readouterr().err


def expect(code: int, err: str, *fragments, status: int = 2) -> str:
    """Assert the exit status and that stderr holds exactly one error line, containing every
    fragment, followed by nothing but the --debug hint; no traceback. Returns the error line."""
    assert code == status, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    where = [i for i, line in enumerate(lines) if line.startswith("redundancy: error: ")]
    assert len(where) == 1, err
    after = lines[where[0] + 1 :]
    assert after == (["redundancy: rerun with --debug for the full traceback"] if status == 1 else []), err
    line = lines[where[0]]
    for fragment in fragments:
        assert str(fragment) in line, (fragment, line)
    return line


# ------------------------------------------------------------------------------- task files (readers)

# (file, task, split, content, the 1-based line named or None, a fragment of the message)
READER_CASES = {
    "conllu-columns": (EWT, "pos", "dev", f"{conllu(1, 'Hi')}\n{conllu(2, 'x', n=9)}\n\n", 2, "expected 10"),
    "conllu-id": (EWT, "pos", "dev", f"{conllu(1, 'Hi')}\n{conllu('2x', 'x')}\n\n", 2, "invalid CoNLL-U ID"),
    "conllu-no-label": (EWT, "pos", "dev", f"{conllu(1, 'Hi', xpos='_')}\n\n", 1, "missing XPOS label"),
    "conllu-sequence": (EWT, "upos", "dev", f"{conllu(1, 'Hi')}\n{conllu(3, 'x')}\n\n", 2, "out of sequence"),
    "conllu-comments-only": (EWT, "pos", "dev", "# only a comment\n\n", None, "no sentences"),
    "conllu-empty": (EWT, "pos", "dev", "", None, "no sentences"),
    "conllu-utf8": (EWT, "pos", "dev", GOOD_CONLLU.encode() + b"1\tcaf\xe9\tx\n", 5, "not valid UTF-8"),
    "conllu-binary": (EWT, "pos", "dev", b"\x00\x01\x02\n\n", 1, "expected 10"),
    "conll2000-columns": (CONLL2000, "chunking", "test", "He PRP B-NP\nsaid VBD\n\n", 2, "expected 3"),
    "conll2000-no-label": (CONLL2000, "chunking", "test", "He PRP B-NP\nsaid VBD _\n", 2, "missing label"),
    "conll2000-tabs": (CONLL2000, "chunking", "test", "He\tPRP\tB-NP\n\n", 1, "space-separated"),
    "conll2000-empty": (CONLL2000, "chunking", "test", "\n\n", None, "no sentences"),
    "conll2000-utf8": (CONLL2000, "chunking", "test", b"He PRP B-NP\n\xff PRP O\n", 2, "not valid UTF-8"),
    "pmb-columns": (PMB, "sem", "dev", "# c\nA\tA\ta\tDIS\tnp/n\tO\t[]\ngirl\tgirl\n\n", 3, "expected 7"),
    "pmb-no-label": (PMB, "ccg", "dev", "A\tA\ta\tDIS\t_\tO\t[]\n\n", 1, "missing label"),
    "pmb-empty": (PMB, "sem", "dev", "# only\n", None, "no sentences"),
    "pmb-utf8": (PMB, "sem", "dev", b"A\tA\ta\tDIS\tn\tO\t[]\n\xc3\tA\ta\tDIS\tn\tO\t[]\n", 2, "UTF-8"),
    "conll2003-columns": (CONLL2003, "ner", "dev", "EU NNP B-NP B-ORG\nrejects VBZ B-VP\n", 2, "expected 4"),
    "conll2003-docstart-only": (CONLL2003, "ner", "dev", "-DOCSTART- -X- -X- O\n\n", None, "no sentences"),
    "conll2003-no-label": (CONLL2003, "ner", "dev", "EU NNP B-NP _\n", 1, "missing label"),
    "sst2-fields": (SST2, "sst2", "test", "sentence\tlabel\ngood\t1\nbad\t0\tx\n", 3, "expected 2 tab"),
    "sst2-empty": (SST2, "sst2", "test", "", None, "empty file"),
    "sst2-header-only": (SST2, "sst2", "test", "sentence\tlabel\n", None, "no examples"),
    "sst2-header": (SST2, "sst2", "test", "text\tlabel\na\t1\n", 1, "no column 'sentence'"),
    "sst2-empty-text": (SST2, "sst2", "test", "sentence\tlabel\n  \t1\n", 2, "empty text"),
    "sst2-utf8": (SST2, "sst2", "test", b"sentence\tlabel\nok\t1\nbad \xfe\t0\n", 3, "not valid UTF-8"),
    "rte-header": (RTE, "rte", "test", "index\ts1\ts2\tlabel\n0\ta\tb\tmaybe\n", 1, "no column"),
    "rte-label": (
        RTE,
        "rte",
        "test",
        "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tmaybe\n",
        3,
        "unexpected label 'maybe'",
    ),
    "rte-no-label": (
        RTE,
        "rte",
        "test",
        "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t\n",
        2,
        "missing label",
    ),
    "stsb-score": (STSB, "stsb", "test", STSB_HEAD + STSB_ROW.format("high"), 2, "is not a number"),
    "stsb-nan": (STSB, "stsb", "test", STSB_HEAD + STSB_ROW.format("nan"), 2, "is not finite"),
    "cola-fields": (COLA, "cola", "test", "gj04\t1\t\tGood.\ngj04\t0\tBad.\n", 2, "expected 4 tab"),
}


@pytest.mark.parametrize("case", list(READER_CASES))
def test_malformed_task_file_names_file_and_line(case, tmp_path, capsys):
    rel, task, split, content, line, fragment = READER_CASES[case]
    path = tmp_path / "data" / rel
    path.parent.mkdir(parents=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    argv = ["extract", "--model", "never-loaded", "--task", task, "--split", split]
    code, err = cli([*argv, "--data-dir", tmp_path / "data", "--out", tmp_path / "s"], capsys)
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    expect(code, err, where, fragment)
    assert not (tmp_path / "s").exists()


def test_task_file_that_is_a_folder(tmp_path, capsys):
    (tmp_path / "data" / EWT).mkdir(parents=True)  # a folder where the split's file should be
    code, err = cli(
        ["extract", "--model", "x", "--task", "pos", "--split", "dev", "--data-dir", tmp_path / "data"],
        capsys,
    )
    expect(code, err, "ud-english-ewt/en_ewt-ud-dev.conllu", "not found")


# ------------------------------------------------------------------------ predict's input files (API)

# (file name, reader, its arguments, content, line or None, fragment)
PREDICT_CASES = {
    "text-utf8": ("in.txt", read_words, ("text",), b"fine words\nbad \xff\n", 2, "not valid UTF-8"),
    "text-empty": ("in.txt", read_words, ("text",), b"\n  \n", None, "no sentences"),
    "jsonl-json": (
        "in.jsonl",
        read_words,
        ("jsonl",),
        b'{"words": ["a"]}\n{"words": oops}\n',
        2,
        "not valid JSON",
    ),
    "jsonl-object": ("in.jsonl", read_words, ("jsonl",), b'["a", "b"]\n', 1, "expected a JSON object"),
    "jsonl-words-type": (
        "in.jsonl",
        read_words,
        ("jsonl",),
        b'{"words": "a b"}\n',
        1,
        '{"words": [strings]}',
    ),
    "jsonl-no-words": ("in.jsonl", read_words, ("jsonl",), b'{"words": []}\n', 1, "without words"),
    "conll-columns": ("in.conll", read_words, ("conll", 2), b"a\tX\n\nb\n", 3, "column(s)"),
    "conll-utf8": ("in.conll", read_words, ("conll",), b"a\n\xe2\x82\n", 2, "not valid UTF-8"),
    "conll-empty": ("in.conll", read_words, ("conll",), b"# c\n\n", None, "no sentences"),
    "pairs-no-tab": ("in.tsv", read_texts, ("text", True), b"a\tb\nno tab here\n", 2, "text<TAB>text_pair"),
    "single-tab": ("in.txt", read_texts, ("text", False), b"ok\none\ttwo\n", 2, "a tab"),
    "texts-utf8": ("in.txt", read_texts, ("text", False), b"\xef\xbb\xbfok\n\x80\n", 2, "not valid UTF-8"),
    "jsonl-text-pair": (
        "in.jsonl",
        read_texts,
        ("jsonl", False),
        b'{"text": "a", "text_pair": "b"}\n',
        1,
        "text_pair",
    ),
    "jsonl-no-text": ("in.jsonl", read_texts, ("jsonl", True), b'{"txt": "a"}\n', 1, '{"text": string}'),
}


@pytest.mark.parametrize("case", list(PREDICT_CASES))
def test_predict_input_names_file_and_line(case, tmp_path):
    name, reader, args, content, line, fragment = PREDICT_CASES[case]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataFormatError) as info:
        reader(path, *args)
    assert info.value.path == str(path) and info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: " if line else f"{path}: ") and fragment in str(
        info.value
    )


def test_predict_input_that_is_a_folder(tmp_path):
    with pytest.raises(DataFormatError, match="is a folder"):
        read_words(tmp_path, "text")


@pytest.fixture()
def compact_record(tmp_path) -> Path:
    """A folder with a valid ``compact.json`` (a token task), enough for ``predict`` to read its input;
    the model itself is never reached by these cases."""
    names = [f.name for f in dataclasses.fields(CompactInfo)]  # every field given: the reader is strict
    record = dict.fromkeys(names, 0) | {
        "format_version": FORMAT_VERSION,
        "task": "pos",
        "level": "token",
        "aggregation": "last",
        "label_type": "class",
        "classes": ["A", "B"],
        "metric": "accuracy",
        "neurons": [0, 1],
        "threshold": None,
        "probe_params": {},
        "model": "m",
        "model_source": "m",
        "weights_sha256": "0",
        "train_store": "s",
        "train_plan_hash": "0",
        "compact_weights_sha256": "0",
        "identity_modules": [],
        "full_model_bytes": None,
        "versions": {},
        "created": "",
    }
    folder = tmp_path / "compact"
    folder.mkdir()
    (folder / INFO_FILE).write_text(json.dumps(record))
    return folder


PREDICT_CLI_CASES = {
    "utf8": (b"good line\nbad \xff line\n", "in.txt", [], ["in.txt:2:", "not valid UTF-8"]),
    "json": (b'{"words": ["a"]}\n{oops\n', "in.jsonl", [], ["in.jsonl:2:", "not valid JSON"]),
    "extension": (b"a b\n", "in.doc", [], ["in.doc", "--input-format"]),
    "threads": (b"a b\n", "in.txt", ["--threads", "0"], ["--threads must be >= 1"]),
    "batch": (b"a b\n", "in.txt", ["--batch-size", "0"], ["--batch-size must be >= 1"]),
    "device": (b"a b\n", "in.txt", ["--device", "cdua"], ["device 'cdua'", "not a torch device"]),
}


@pytest.mark.parametrize("case", list(PREDICT_CLI_CASES))
def test_predict_cli_errors(case, compact_record, tmp_path, capsys):
    content, name, flags, fragments = PREDICT_CLI_CASES[case]
    path = tmp_path / name
    path.write_bytes(content)
    code, err = cli(["predict", path, "--compact", compact_record, "--no-progress", *flags], capsys)
    expect(code, err, *fragments)


def test_predict_cli_folder_input_and_missing_record(tmp_path, capsys):
    code, err = cli(["predict", tmp_path, "--compact", tmp_path, "--no-progress"], capsys)
    expect(code, err, str(tmp_path), "is a folder")
    (tmp_path / "in.txt").write_text("a b\n")
    code, err = cli(["predict", tmp_path / "in.txt", "--compact", tmp_path, "--no-progress"], capsys)
    expect(code, err, f"{tmp_path / INFO_FILE}: missing")


# ------------------------------------------------------------------------------ extract's options


@pytest.fixture()
def text_input(tmp_path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("The cats sat .\nA short one .\n")
    return path


def _cuda_flag() -> str:
    """A CUDA device this machine lacks: ``cuda`` without CUDA, else a GPU index past the last."""
    import torch

    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


OPTION_CASES = {
    "threads-negative": (["--threads", "-1"], ["threads: must be >= 1, got -1"]),
    "threads-zero": (["--threads", "0"], ["threads: must be >= 1, got 0"]),
    "batch-zero": (["--batch-size", "0"], ["batch_size: must be >= 1, got 0"]),
    "batch-negative": (["--batch-size", "-3"], ["batch_size: must be >= 1, got -3"]),
    "max-train-tokens": (["--max-train-tokens", "0"], ["--max-train-tokens: must be >= 1, got 0"]),
    "max-items": (["--max-items", "0"], ["--max-items: must be >= 1, got 0"]),
    "max-length": (["--max-length", "0"], ["max_length: must be >= 1, got 0"]),
    "device-misspelt": (["--device", "cdua"], ["device 'cdua'", "not a torch device"]),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_bad_extract_option(case, tiny, text_input, tmp_path, capsys):
    flags, fragments = OPTION_CASES[case]
    argv = ["extract", "--model", tiny("bert"), "--task", "text", "--input", text_input]
    code, err = cli([*argv, "--out", tmp_path / "s", "--no-progress", *flags], capsys)
    expect(code, err, *fragments)
    assert not (tmp_path / "s").exists()


def test_absent_cuda_device(tiny, text_input, tmp_path, capsys):
    device = _cuda_flag()
    argv = ["extract", "--model", tiny("bert"), "--task", "text", "--input", text_input]
    code, err = cli([*argv, "--out", tmp_path / "s", "--no-progress", "--device", device], capsys)
    expect(code, err, f"device {device!r} is not available here")


def _out_below_file(tmp: Path) -> Path:
    (tmp / "afile").write_text("x")
    return tmp / "afile" / "store"


def _out_is_file(tmp: Path) -> Path:
    (tmp / "afile").write_text("x")
    return tmp / "afile"


def _out_foreign_folder(tmp: Path) -> Path:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("keep me")
    return tmp / "mine"


OUT_CASES = {
    "below-a-file": (_out_below_file, ["afile"]),
    "a-file": (_out_is_file, ["afile", "not a folder"]),
    "foreign-folder": (_out_foreign_folder, ["mine", "not an activation store"]),
}


@pytest.mark.parametrize("case", list(OUT_CASES))
def test_bad_out_folder(case, tiny, text_input, tmp_path, capsys):
    make, fragments = OUT_CASES[case]
    out = make(tmp_path)
    argv = ["extract", "--model", tiny("bert"), "--task", "text", "--input", text_input, "--no-progress"]
    code, err = cli([*argv, "--out", out], capsys)
    expect(code, err, *fragments)
    if case == "foreign-folder":
        assert (out / "notes.txt").read_text() == "keep me"


INPUT_CASES = {
    "folder": (lambda t: t, ["is a folder"]),
    "missing": (lambda t: t / "none.txt", ["none.txt"]),
    "utf8": (lambda t: _write(t / "bad.txt", b"ok\n\xff\xfe\n"), ["bad.txt:2:", "not valid UTF-8"]),
    "empty": (lambda t: _write(t / "empty.txt", b"\n \n"), ["empty.txt", "no sentences"]),
}


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", list(INPUT_CASES))
def test_bad_text_input(case, tmp_path, capsys):
    make, fragments = INPUT_CASES[case]
    code, err = cli(["extract", "--model", "x", "--task", "text", "--input", make(tmp_path)], capsys)
    expect(code, err, *fragments)


# ------------------------------------------------------------------------------------ model folders


def _no_tokenizer(folder: Path) -> None:
    for f in folder.iterdir():
        if f.name.startswith("tokenizer"):
            f.unlink()


def _tokenizer_config_only(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()


def _truncated_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])


def _garbled_weights_header(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)


def _garbled_config(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def _no_config(folder: Path) -> None:
    (folder / "config.json").unlink()


def _no_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def _garbled_tokenizer(folder: Path) -> None:
    (folder / "tokenizer.json").write_text("garbage")


def _config_wrong_type(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"hidden_size": "wide"}))


MODEL_CASES = {
    "no-tokenizer": (_no_tokenizer, ["has no tokenizer"]),
    "tokenizer-config-only": (_tokenizer_config_only, ["needs one of", "tokenizer.json"]),
    "truncated-weights": (_truncated_weights, ["model.safetensors", "damaged or incomplete"]),
    "garbled-weights": (_garbled_weights_header, ["model.safetensors", "damaged or incomplete"]),
    "garbled-config": (_garbled_config, ["config.json"]),
    "no-config": (_no_config, ["no config.json"]),
    "no-weights": (_no_weights, ["model.safetensors"]),
    "garbled-tokenizer": (_garbled_tokenizer, ["cannot load the tokenizer"]),
    "config-wrong-type": (_config_wrong_type, ["hidden_size"]),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_bad_model_folder(case, tiny, text_input, tmp_path, capsys):
    damage, fragments = MODEL_CASES[case]
    folder = tmp_path / "model"
    shutil.copytree(tiny("bert"), folder)
    damage(folder)
    argv = ["extract", "--model", folder, "--task", "text", "--input", text_input, "--no-progress"]
    code, err = cli([*argv, "--out", tmp_path / "s"], capsys)
    expect(code, err, str(folder), *fragments)
    with pytest.raises(ModelError) as info:  # the Python API says the same
        load_model(str(folder))
    assert expect(code, err).removeprefix("redundancy: error: ") == str(info.value)


def test_model_path_that_is_a_file(tmp_path, text_input, capsys):
    code, err = cli(["extract", "--model", text_input, "--task", "text", "--input", text_input], capsys)
    expect(code, err, str(text_input), "not a folder")


def test_no_tokenizer_never_runs_on_an_empty_vocabulary(tiny, tmp_path):
    """The silent case: transformers builds a tokenizer of special tokens alone from config.json and
    every word becomes [UNK]. Refused, before any activation is written."""
    folder = tmp_path / "model"
    shutil.copytree(tiny("bert"), folder)
    _no_tokenizer(folder)
    with pytest.raises(ModelError, match="has no tokenizer"):
        load_model(str(folder))


# ------------------------------------------------------------------------------------------- stores


@pytest.fixture()
def store(tmp_path) -> Path:
    acts = np.random.default_rng(0).normal(size=(20, 2, 4)).astype(np.float32)
    return write_store(tmp_path / "store", acts, (np.arange(20) % 2).astype(np.int32), ["A", "B"])


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


STORE_CASES = {
    "truncated-activations": (lambda s: _truncate(s / "activations.npy"), ["activations.npy", "truncated"]),
    "truncated-labels": (lambda s: _truncate(s / "labels.npy"), ["labels.npy"]),
    "garbled-manifest": (lambda s: (s / "manifest.json").write_text("{garbled"), ["manifest.json"]),
    "empty-manifest": (lambda s: (s / "manifest.json").write_text(""), ["manifest.json"]),
    "list-manifest": (lambda s: (s / "manifest.json").write_text("[1, 2]"), ["manifest"]),
    "no-manifest": (lambda s: (s / "manifest.json").unlink(), ["no manifest.json"]),
    "manifest-field-type": (
        lambda s: (s / "manifest.json").write_text(
            json.dumps(json.loads((s / "manifest.json").read_text()) | {"n_items": "twenty"})
        ),
        ["n_items"],
    ),
}


@pytest.mark.parametrize("case", list(STORE_CASES))
def test_broken_store(case, store, capsys):
    damage, fragments = STORE_CASES[case]
    damage(store)
    code, err = cli(["store", "info", store], capsys)
    expect(code, err, str(store), *fragments)


def test_store_that_is_a_file_or_missing(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    expect(*cli(["store", "info", tmp_path / "f"], capsys), str(tmp_path / "f"))
    expect(*cli(["store", "info", tmp_path / "none"], capsys), str(tmp_path / "none"))


def test_general_refuses_a_truncated_store(store, tmp_path, capsys):
    _truncate(store / "activations.npy")
    code, err = cli(
        ["general", "--store", store, "--out", tmp_path / "g", "--no-figures", "--no-progress"], capsys
    )
    expect(code, err, "activations.npy", "truncated")


def test_unseen_dev_labels_are_said(tmp_path, caplog):
    """A dev label that train never saw cannot be predicted: it is counted as an error, said once."""
    from redundancy.probe import load_probe_task

    acts = np.random.default_rng(0).normal(size=(12, 2, 4)).astype(np.float32)
    write_store(tmp_path / "tr", acts, (np.arange(12) % 2).astype(np.int32), ["A", "B"])
    write_store(tmp_path / "dv", acts, (np.arange(12) % 3).astype(np.int32), ["A", "B", "C"], split="dev")
    with caplog.at_level(logging.WARNING):
        load_probe_task(tmp_path / "tr", tmp_path / "dv")
    assert any("never seen in train (C)" in r.getMessage() and "dv" in r.getMessage() for r in caplog.records)


# -------------------------------------------------------------------------- thresholds and threads


def test_general_threshold_above_one(store, tmp_path, capsys):
    argv = ["general", "--store", store, "--out", tmp_path / "g", "--no-figures", "--no-progress"]
    expect(*cli([*argv, "--thresholds", "0.3,1.5"], capsys), "thresholds", "[0, 1]", "1.5")
    expect(*cli([*argv, "--report-threshold", "-0.2"], capsys), "report_threshold", "[0, 1]")
    assert not (tmp_path / "g" / "general.json").exists()


def test_pipeline_threshold_below_zero_and_probe_threads(store, tmp_path, capsys):
    dev = write_store(
        tmp_path / "dev",
        np.zeros((10, 2, 4), np.float32),
        (np.arange(10) % 2).astype(np.int32),
        ["A", "B"],
        split="dev",
    )
    argv = ["pipeline", "--train", store, "--dev", dev, "--out", tmp_path / "p", "--no-progress"]
    expect(*cli([*argv, "--thresholds", "none,-0.1"], capsys), "thresholds", "[0, 1]", "-0.1")
    argv = ["probe", "--train", store, "--dev", dev, "--out", tmp_path / "q", "--no-progress"]
    expect(*cli([*argv, "--threads", "0"], capsys), "threads: must be >= 1")


def test_option_parse_errors_name_the_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["extract", "--model", "m", "--task", "pos", "--batch-size", "many"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--batch-size" in err and "Traceback" not in err


# --------------------------------------------------------------------------------- job configs (TOML)

# (the TOML body after `tasks = ["pos"]`, fragments of the message besides the file's path)
TOML_CASES = {
    "unknown-top": ('modle = "x"\n', ["unknown key(s) ['modle']", "did you mean 'model'?"]),
    "unknown-section-key": ("[extract]\nbach_size = 3\n", ["[extract]", "did you mean 'batch_size'?"]),
    "misplaced-key": ("batch_size = 3\n", ["'batch_size' under [extract]"]),
    "unknown-section": ("[extrat]\nbatch_size = 3\n", ["did you mean 'extract'?"]),
    "unknown-far": ("xyzzy = 1\n", ["unknown key(s) ['xyzzy']; known:"]),
    "section-not-table": ("extract = 3\n", ["extract: expected a table"]),
    "int-as-string": ('[extract]\nbatch_size = "3"\n', ["extract.batch_size: expected an integer"]),
    "int-as-float": ("[extract]\nbatch_size = 3.0\n", ["extract.batch_size: expected an integer"]),
    "bool-as-int": ("[probe]\ncontrols = 1\n", ["probe.controls: expected true or false"]),
    "float-as-string": ('[probe]\nl1 = "big"\n', ["probe.l1: expected a finite number"]),
    "float-inf": ("[probe]\nl2 = inf\n", ["probe.l2: expected a finite number"]),
    "list-as-int": ("[pipeline]\nthresholds = 3\n", ["pipeline.thresholds: expected a list"]),
    "string-as-int": ("title = 3\n", ["title: expected a string"]),
    "batch-zero": ("[extract]\nbatch_size = 0\n", ["extract.batch_size: must be >= 1, got 0"]),
    "batch-negative": ("[extract]\nbatch_size = -4\n", ["extract.batch_size: must be >= 1, got -4"]),
    "max-length-zero": ("[extract]\nmax_length = 0\n", ["extract.max_length: must be >= 1"]),
    "threads-zero": ("threads = 0\n", ["threads: must be >= 1"]),
    "probe-threads-zero": ("[probe]\nthreads = 0\n", ["probe.threads: must be >= 1"]),
    "max-train-tokens-zero": (
        "[extract]\nmax_train_tokens = 0\n",
        ["extract.max_train_tokens: must be >= 1"],
    ),
    "threshold-above-one": ("[pipeline]\nthresholds = [1.5]\n", ["pipeline.thresholds[0]", "[0, 1]"]),
    "threshold-below-zero": ('[pipeline]\nthresholds = ["none", -0.1]\n', ["pipeline.thresholds[1]"]),
    "report-threshold": (
        "[general]\nreport_threshold = 1.2\n",
        ["general.report_threshold: must lie in [0, 1]"],
    ),
    "step-zero": ("[general]\nstep = 0\n", ["general.step: must lie in (0, 1]"]),
    "sweep-threshold": ("[probe]\nsweep_thresholds = [2.0]\n", ["probe.sweep_thresholds"]),
    "level": ("[rigour]\nlevel = 1.5\n", ["rigour.level: must lie in (0, 1)"]),
    "aggregation": ('[extract]\naggregation = "max"\n', ["extract.aggregation: must be one of"]),
    "unknown-task": ('tasks = ["pos", "nope"]\n', ["unknown task(s) ['nope']"]),
    "not-toml": ("tasks = [\n", ["not valid TOML"]),
}


@pytest.mark.parametrize("case", list(TOML_CASES))
def test_bad_config(case, tmp_path, capsys, monkeypatch):
    body, fragments = TOML_CASES[case]
    monkeypatch.chdir(tmp_path)  # a config that slipped through would write here, not in the repository
    path = tmp_path / "job.toml"
    head = "" if body.startswith("tasks") else 'tasks = ["pos"]\n'
    path.write_text(f'out = "{tmp_path / "run"}"\n{head}{body}')
    code, err = cli(["run", path, "--no-progress"], capsys)
    expect(code, err, f"{path}:", *fragments)
    assert not (tmp_path / "run").exists()


def test_config_not_utf8_names_the_line(tmp_path, capsys):
    path = tmp_path / "job.toml"
    path.write_bytes(b'tasks = ["pos"]\n\ntitle = "caf\xe9"\n')
    expect(*cli(["run", path], capsys), f"{path}:3: not valid UTF-8")


def test_config_that_is_a_folder_or_missing(tmp_path, capsys):
    expect(*cli(["run", tmp_path], capsys), f"{tmp_path}: is a folder")
    expect(*cli(["run", tmp_path / "none.toml"], capsys), "no such config file")


def test_cli_override_is_checked_like_the_file(tmp_path, capsys):
    path = tmp_path / "job.toml"
    path.write_text(f'tasks = ["pos"]\nout = "{tmp_path / "run"}"\n')
    expect(*cli(["run", path, "--threads", "0"], capsys), "threads: must be >= 1")


# -------------------------------------------------------------------------------------- Python API

API_CASES = {
    "batch_size": (lambda: ExtractConfig(batch_size=0), "batch_size: must be >= 1, got 0"),
    "threads": (lambda: ExtractConfig(threads=0), "threads: must be >= 1, got 0"),
    "chunk_items": (lambda: ExtractConfig(chunk_items=-1), "chunk_items: must be >= 1"),
    "max_batch_tokens": (lambda: ExtractConfig(max_batch_tokens=0), "max_batch_tokens: must be >= 1"),
    "window_overlap": (lambda: ExtractConfig(window_overlap=1.0), "window_overlap: must lie in [0, 1)"),
    "dtype": (lambda: ExtractConfig(dtype="int8"), "dtype: must be float32 or float16"),
    "aggregation": (lambda: ExtractConfig(aggregation="max"), "aggregation: must be one of"),
    "batch_size-type": (lambda: ExtractConfig(batch_size=2.5), "batch_size: must be an integer"),
    "device": (lambda: ExtractConfig(device="cdua"), "device 'cdua': not a torch device"),
    "check_device": (lambda: check_device("gpu0"), "device 'gpu0': not a torch device"),
    "torch_threads": (lambda: _enter_threads(-2), "threads: must be >= 1"),
    "clusterer": (lambda: _cluster(1.5), "threshold must be a distance 1 - |r| in [0, 1]"),
    "clusterer-negative": (lambda: _cluster(-0.1), "threshold must be a distance 1 - |r| in [0, 1]"),
    "job-section": (lambda: dataclasses.replace(JobConfig().extract, batch_size=0), "extract.batch_size"),
    "job-threads": (lambda: dataclasses.replace(JobConfig(), threads=0), "threads: must be >= 1"),
    "job-thresholds": (lambda: dataclasses.replace(JobConfig().pipeline, thresholds=(1.01,)), "[0, 1]"),
    "job-from-dict": (
        lambda: JobConfig.from_dict({"extract": {"batch_sise": 2}}),
        "did you mean 'batch_size'",
    ),
}


def _enter_threads(n):
    from redundancy._torch import torch_threads

    with torch_threads(n):
        pass


def _cluster(threshold: float):
    from redundancy.general import CorrelationClusterer

    return CorrelationClusterer(threshold=threshold).fit(np.eye(3))


@pytest.mark.parametrize("case", list(API_CASES))
def test_python_api_refuses(case):
    build, message = API_CASES[case]
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value)
    if case.startswith("job"):
        assert isinstance(info.value, ConfigError)


def test_same_words_in_python_cli_and_toml(tmp_path, capsys):
    """``batch_size = 0`` is refused in the same words by ExtractConfig, the job's [extract] table
    and ``extract --batch-size``."""
    with pytest.raises(ValueError) as api:
        ExtractConfig(batch_size=0)
    with pytest.raises(ConfigError) as job:
        dataclasses.replace(JobConfig().extract, batch_size=0)
    assert str(job.value) == f"extract.{api.value}"
    line = expect(
        *cli(["extract", "--model", "m", "--task", "text", "--input", "x", "--batch-size", "0"], capsys)
    )
    assert line == f"redundancy: error: {api.value}"


def test_run_general_threshold_range(store, tmp_path):
    from redundancy.general import run_general

    with pytest.raises(ValueError, match=r"distances 1 - \|r\| in \[0, 1\]"):
        run_general(store, tmp_path / "g", thresholds=[0.3, 1.2], figures=False)
    assert run_general(store, tmp_path / "g", thresholds=[0.0, 1.0], figures=False).thresholds[-1] == 1.0


# ------------------------------------------------------------------------------ unexpected errors


def test_unexpected_error_is_one_line_with_a_hint(monkeypatch, capsys):
    from redundancy.cli import _main

    def boom(args):
        raise RuntimeError("something inside broke\nwith a second line")

    monkeypatch.setattr(_main, "_cmd_data_list", boom)
    code, err = cli(["data", "list"], capsys)
    expect(code, err, "RuntimeError: something inside broke", status=1)


def test_debug_shows_the_traceback(monkeypatch, capsys):
    from redundancy.cli import _main

    def boom(args):
        raise RuntimeError("inside")

    monkeypatch.setattr(_main, "_cmd_data_list", boom)
    with pytest.raises(RuntimeError, match="inside"):
        main(["--debug", "data", "list"])
    with pytest.raises(ValueError, match="batch_size"):  # usage errors too: the traceback is asked for
        main(["--debug", "extract", "--model", "m", "--task", "text", "--batch-size", "0"])


def test_os_errors_name_the_path(monkeypatch, capsys, tmp_path):
    from redundancy.cli import _main

    for exc, words, status in [
        (PermissionError(13, "Permission denied", str(tmp_path / "p")), "permission denied", 2),
        (FileExistsError(17, "File exists", str(tmp_path / "e")), "already exists", 2),
        (IsADirectoryError(21, "Is a directory", str(tmp_path / "d")), "is a folder, not a file", 2),
        (OSError(5, "Input/output error", str(tmp_path / "io")), "input/output error", 1),
    ]:

        def boom(args, exc=exc):
            raise exc

        monkeypatch.setattr(_main, "_cmd_data_list", boom)
        expect(*cli(["data", "list"], capsys), f"{exc.filename}: {words}", status=status)


# ------------------------------------------------------------------------------------- long inputs


LONG = " ".join(["extraordinarily unbelievable tokenization"] * 150)  # 1,050 subwords of tiny BERT


def test_long_sentence_of_a_token_task_is_windowed_not_cut(tiny):
    """A token task's sentence past the model's limit (64 here) is split into overlapping windows:
    every word keeps its row, none is cut."""
    from redundancy.data import TokenSentence

    lm = load_model(str(tiny("bert")))
    words = LONG.split()
    n_subwords = len(lm.tokenizer(words, is_split_into_words=True, add_special_tokens=False)["input_ids"])
    assert n_subwords >= 1000
    items = [TokenSentence(0, tuple(words), None, "long.txt", 1)]
    segments, stats = plan_segments(
        items, lm.tokenizer, level="token", aggregation="last", max_length=lm.max_length
    )
    rows = sorted(int(i) for s in segments for i in s.items)
    assert rows == list(range(len(words)))  # every word once
    assert stats.n_windowed == 1 and stats.n_windows == len(segments) > 1 and stats.n_cut_words == 0
    assert all(s.length <= lm.max_length for s in segments)


def test_long_sentence_of_a_sentence_task_is_truncated_with_a_warning(tiny, caplog):
    """A sentence task keeps one row per example, truncated to the limit; never silently: the
    warning gives the count and the first example's file and line, and the stats record it."""
    from redundancy.data import SentenceExample

    lm = load_model(str(tiny("bert")))
    items = [
        SentenceExample(0, "A short one .", None, None, "in.txt", 1),
        SentenceExample(1, LONG, None, None, "in.txt", 2),
        SentenceExample(2, LONG, None, None, "in.txt", 3),
    ]
    with caplog.at_level(logging.WARNING, logger="redundancy.extract"):
        segments, stats = plan_segments(
            items, lm.tokenizer, level="sentence", aggregation="cls", max_length=lm.max_length
        )
    assert stats.n_truncated == 2 and len(segments) == 3
    assert all(s.length <= lm.max_length for s in segments)
    (warning,) = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("redundancy")
    ]
    assert (
        warning.startswith(f"2 of 3 example(s) are longer than {lm.max_length} tokens")
        and "in.txt:2" in warning
    )
