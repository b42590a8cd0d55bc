"""The ``redundancy`` command: help texts, a tiny end-to-end extraction, and clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from redundancy.cli import build_parser, main

CONLLU = """# sent_id = a
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tunbelievable\tunbelievable\tADJ\tJJ\t_\t3\tamod\t_\t_
3\tcats\tcat\tNOUN\tNNS\t_\t0\troot\t_\t_

# sent_id = b
1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tsit\tsit\tVERB\tVB\t_\t0\troot\t_\t_
3.1\tsat\tsit\tVERB\tVBD\t_\t_\t_\t_\t_

"""


def _extract_argv(model, task, split, data_dir, out) -> list[str]:
    flags = {"--model": model, "--task": task, "--split": split, "--data-dir": data_dir, "--out": out}
    return ["extract", *(x for flag, value in flags.items() for x in (flag, str(value)))]


@pytest.fixture()
def data_dir(tmp_path):
    d = tmp_path / "data" / "ud-english-ewt"
    d.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (d / f"en_ewt-ud-{split}.conllu").write_text(CONLLU)
    return tmp_path / "data"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["extract"],
        ["general"],
        ["probe"],
        ["pipeline"],
        ["store"],
        ["store", "info"],
        ["data"],
        ["data", "list"],
        ["data", "fetch"],
    ],
)
def test_every_subcommand_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: redundancy" in out and len(out) > 100


def test_extract_then_store_info(tiny, data_dir, tmp_path, capsys):
    out = tmp_path / "store"
    argv = [*_extract_argv(tiny("bert"), "pos", "dev", data_dir, out), "--aggregation", "first"]
    argv += ["--dtype", "float16"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_items"] == 6 and result["n_sentences"] == 2 and result["n_layers"] == 3
    assert main(argv) == 0  # a complete store: nothing to do
    assert json.loads(capsys.readouterr().out)["chunks_computed"] == 0
    assert main(["store", "info", str(out), "--json", "--verify", "full"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["task"] == "pos" and info["aggregation"] == "first" and info["dtype"] == "float16"
    assert main(["store", "info", str(out)]) == 0
    table = capsys.readouterr().out
    assert "shape           [6, 3, 32]" in table and "complete        True" in table


def test_extract_plain_text(tiny, tmp_path, capsys):
    text = tmp_path / "in.txt"
    text.write_text("The cats sat .\n\nA short one .\n")
    argv = ["extract", "--model", str(tiny("gpt2")), "--task", "text", "--input", str(text)]
    assert main([*argv, "--out", str(tmp_path / "s")]) == 0
    assert json.loads(capsys.readouterr().out)["n_items"] == 8


def test_data_list_shows_every_task(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for task in (
        "pos",
        "upos",
        "chunking",
        "sem",
        "ccg",
        "ner",
        "sst2",
        "mrpc",
        "qqp",
        "stsb",
        "mnli",
        "qnli",
        "rte",
        "cola",
    ):
        assert f"\n{task} " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["extract", "--model", "./missing-model", "--task", "pos", "--split", "dev"], "does not exist"),
        (["extract", "--model", "x", "--task", "nosuchtask"], "nosuchtask"),
        (["extract", "--model", "x", "--task", "pos", "--split", "nosplit"], "nosplit"),
        (["store", "info", "/nonexistent/store"], "/nonexistent/store"),
        (["data", "fetch", "ner"], "ner"),
    ],
)
def test_errors_are_one_clear_line(argv, message, data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REDUNDANCY_CACHE", str(tmp_path / "cache"))
    if argv[0] == "extract":
        argv = [*argv, "--data-dir", str(data_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("redundancy: error:") and message in err and "Traceback" not in err


def test_malformed_data_names_file_and_line(tiny, data_dir, capsys):
    bad = data_dir / "ud-english-ewt" / "en_ewt-ud-dev.conllu"
    bad.write_text(CONLLU.replace("3\tcats\tcat\tNOUN\tNNS\t_\t0\troot\t_\t_", "3\tcats\tcat"))
    assert main(_extract_argv(tiny("bert"), "pos", "dev", data_dir, data_dir / "s")) == 2
    assert "en_ewt-ud-dev.conllu:4" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = shutil.which("redundancy") or str(__import__("pathlib").Path(sys.executable).parent / "redundancy")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("redundancy ")


def test_parser_is_importable_without_torch_side_effects():
    assert build_parser().prog == "redundancy"


def test_probe_and_pipeline_share_the_probe_flags():
    parser = build_parser()
    common = ["--train", "a", "--dev", "b", "--out", "c", "--solver", "paper", "--l1", "1e-3", "--lr", "0.01"]
    probe = vars(parser.parse_args(["probe", *common]))
    pipeline = vars(parser.parse_args(["pipeline", *common]))
    shared = (
        "solver",
        "l1",
        "l2",
        "seed",
        "metric",
        "max_epochs",
        "batch_size",
        "lr",
        "class_weight",
        "threads",
    )
    assert {k: probe[k] for k in shared} == {k: pipeline[k] for k in shared}
    assert probe["solver"] == "paper" and probe["l1"] == 1e-3 and probe["seed"] == 0
    assert (
        parser.parse_args(["probe", "--train", "a", "--dev", "b", "--out", "c", "--seeds", "2"]).n_seeds == 2
    )


def test_probe_template_defaults_are_the_probes():
    from redundancy.cli._probe import probe_template
    from redundancy.probe import ElasticNetProbe

    args = build_parser().parse_args(["pipeline", "--train", "a", "--dev", "b", "--out", "c", "--seed", "3"])
    assert probe_template(args).get_params() == ElasticNetProbe(random_state=3).get_params()
