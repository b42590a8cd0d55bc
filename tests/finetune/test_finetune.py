"""Fine-tuning tiny random models on toy sentence tasks: learning, saved folders, pair encoding,
regression heads, seeds, resume, and clear errors. Numbers mean nothing about real models."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from toy import sentence_task
from transformers import AutoModel, AutoModelForSequenceClassification

from redundancy.cli._finetune import add_parser
from redundancy.data import SentenceExample, TaskData
from redundancy.extract import ResolvedModel, load_model
from redundancy.finetune import (
    RESULT_FILE,
    FinetuneConfig,
    FinetuneResult,
    encode,
    epoch_order,
    finetune,
    load_tokenizer,
)

FAST = dict(lr=3e-3, batch_size=3, log_every=1, threads=1, checkpoint_every=None)
SENTENCES = [
    "The unbelievable cats sat on the mat .",
    "Charles de Gaulle visited Montreal yesterday !",
    "A short one .",
    "Tokenization of extraordinarily long words happens rarely .",
    "is this a question ? yes , it is .",
    "The cats visited the mat .",
]


def _task(labels, pairs=True, name="toy-s", real=False) -> TaskData:
    """Sentences (and reversed pairs) with the given labels."""
    spec = sentence_task(pairs=pairs, real=real).spec
    spec = dataclasses.replace(spec, name=name)
    items = tuple(
        SentenceExample(i, s, " ".join(reversed(s.split())) if pairs else None, lab, "mem", i + 1)
        for i, (s, lab) in enumerate(zip(SENTENCES, labels, strict=True))
    )
    return TaskData(spec=spec, split="train", items=items, files={"mem": "0" * 64})


CLASSES = _task(["a", "b", "a", "b", "a", "b"])


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return AutoModelForSequenceClassification.from_pretrained(folder).state_dict()


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_training_lowers_the_loss_and_saves_a_loadable_folder(tiny, tmp_path):
    out = tmp_path / "ft"
    res = finetune(CLASSES, str(tiny("gpt2")), out, FinetuneConfig(max_epochs=8, **FAST), dev=CLASSES)
    losses = [p.loss for p in res.loss_log]
    assert res.finished and res.steps == res.total_steps == 16 and len(losses) == 16
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.1
    assert [s.step for s in res.dev_scores] == [2 * e for e in range(1, 9)]
    assert set(res.dev_scores[-1].scores) == {"accuracy", "macro_f1"} and res.metric == "accuracy"
    assert res.dev_score == res.dev_scores[-1].scores["accuracy"]
    assert not (out / "checkpoint").exists()
    clf = AutoModelForSequenceClassification.from_pretrained(out)
    assert clf.config.id2label == {0: "a", 1: "b"} and clf.config.num_labels == 2
    assert clf.config.pad_token_id == clf.config.eos_token_id  # GPT-2: pad with end-of-text
    assert type(AutoModel.from_pretrained(out)).__name__ == "GPT2Model"
    lm = load_model(str(out))  # what `redundancy extract --model out` does
    assert lm.weights_sha256 == res.weights_sha256 != res.base_weights_sha256
    saved = FinetuneResult.from_dict(json.loads((out / RESULT_FILE).read_text()))
    assert saved.to_dict() == res.to_dict()
    assert res.train.n_items == 6 and res.seeds == {"seed": 42, "carve_seed": None}
    assert res.examples_per_s > 0 and res.train_examples == 6 * 8


def test_bert_pairs_get_segments_and_separators(tiny):
    path = tiny("bert")
    tok = load_tokenizer(str(path), ResolvedModel("bert", path))
    feats, n_at_max = encode(tok, CLASSES.items, 128)
    f = feats[2]  # "A short one ." / ". one short A"
    tokens = tok.convert_ids_to_tokens(f["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
    first_sep = tokens.index("[SEP]")
    assert set(f["token_type_ids"][: first_sep + 1]) == {0} and set(f["token_type_ids"][first_sep + 1 :]) == {
        1
    }
    short, _ = encode(tok, CLASSES.items, 8)
    assert max(len(x["input_ids"]) for x in short) == 8 and n_at_max == 0


@pytest.mark.parametrize("kind", ["gpt2", "xlnet", "bert"])
def test_padding_does_not_change_the_prediction(tiny, tmp_path, kind):
    """The head pools the same token whether an input is padded (right for GPT-2, left for XLNet) or not."""
    out = tmp_path / kind
    finetune(CLASSES, str(tiny(kind)), out, FinetuneConfig(max_epochs=1, **FAST))
    tok = load_tokenizer(str(out), ResolvedModel(kind, out))
    if kind == "gpt2":
        assert tok.pad_token == tok.eos_token and tok.padding_side == "right" and tok.add_prefix_space
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    feats, _ = encode(tok, CLASSES.items, 64)
    with torch.inference_mode():
        alone = model(**tok.pad([feats[2]], return_tensors="pt")).logits[0]
        padded = model(**tok.pad([feats[3], feats[2]], return_tensors="pt")).logits[1]
    assert len(feats[3]["input_ids"]) > len(feats[2]["input_ids"])
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-4)


def test_regression_head_for_real_labels(tiny, tmp_path):
    data = _task([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], name="stsb", real=True)
    res = finetune(data, str(tiny("bert")), tmp_path / "r", FinetuneConfig(max_epochs=2, **FAST), dev=data)
    assert res.label_type == "real" and res.labels == () and res.metric == "pearson"
    assert set(res.dev_scores[-1].scores) == {"pearson", "spearman"}
    assert all(-1 <= v <= 1 for v in res.dev_scores[-1].scores.values())
    cfg = AutoModelForSequenceClassification.from_pretrained(tmp_path / "r").config
    assert cfg.num_labels == 1 and cfg.problem_type == "regression"


def test_seed_fixes_order_and_weights(tiny, tmp_path):
    assert np.array_equal(epoch_order(10, 42, 1), epoch_order(10, 42, 1))
    assert not np.array_equal(epoch_order(10, 42, 0), epoch_order(10, 42, 1))
    model = str(tiny("bert"))
    runs = {}
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        runs[name] = finetune(
            CLASSES, model, tmp_path / name, FinetuneConfig(max_epochs=2, seed=seed, **FAST)
        )
    assert _same_weights(tmp_path / "a", tmp_path / "b")
    assert runs["a"].weights_sha256 == runs["b"].weights_sha256
    assert not _same_weights(tmp_path / "a", tmp_path / "c")


def test_resume_equals_an_uninterrupted_run(tiny, tmp_path):
    model = str(tiny("bert"))
    config = FinetuneConfig(max_epochs=3, **{**FAST, "checkpoint_every": 2})
    straight = finetune(CLASSES, model, tmp_path / "straight", config, dev=CLASSES)
    out = tmp_path / "resumed"
    part = finetune(CLASSES, model, out, dataclasses.replace(config, max_steps=3), dev=CLASSES)
    assert not part.finished and part.steps == 3 and part.total_steps == 6
    assert (out / "checkpoint" / "trainer_state.json").is_file()
    assert json.loads((out / RESULT_FILE).read_text())["finished"] is False
    again = finetune(CLASSES, model, out, dataclasses.replace(config, max_steps=3), dev=CLASSES)
    assert again.steps == 3 and again.resumed_at == ()  # nothing left to do up to max_steps
    done = finetune(CLASSES, model, out, config, dev=CLASSES)
    assert done.finished and done.resumed_at == (3,) and not (out / "checkpoint").exists()
    assert _same_weights(tmp_path / "straight", out)
    assert [p.loss for p in done.loss_log] == pytest.approx([p.loss for p in straight.loss_log], abs=1e-6)
    assert done.dev_score == pytest.approx(straight.dev_score)
    assert finetune(CLASSES, model, out, config, dev=CLASSES).to_dict() == done.to_dict()  # finished: no-op
    with pytest.raises(ValueError, match="differs in: lr"):
        finetune(CLASSES, model, out, dataclasses.replace(config, lr=1e-4), dev=CLASSES)


def test_what_a_killed_call_left_half_written_is_removed(tiny, tmp_path):
    """SIGKILL inside save_checkpoint leaves its unfinished folder, inside an atomic write its
    temporary file (tests/reliability/test_kill_resume.py kills real runs there); the next call
    removes both."""
    out = tmp_path / "ft"
    half = out / ".checkpoint-k2j4_x9q" / "model.safetensors"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"half")
    (out / ".finetune.json.k2j4_x9q.tmp").write_text("{")
    finetune(CLASSES, str(tiny("bert")), out, FinetuneConfig(max_epochs=1, **FAST))
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("damage", ["flip-weights", "garble-state", "delete-tensors"])
def test_damaged_checkpoint_is_refused_and_training_restarts(tiny, tmp_path, caplog, damage):
    """A checkpoint whose files are not the ones written is never resumed from: it is named in a
    warning, removed, and the run starts again from step 0 (ending as an uninterrupted run)."""
    import logging

    model = str(tiny("bert"))
    config = FinetuneConfig(max_epochs=2, **{**FAST, "checkpoint_every": 2})
    finetune(CLASSES, model, tmp_path / "straight", config, dev=CLASSES)
    out = tmp_path / "resumed"
    finetune(CLASSES, model, out, dataclasses.replace(config, max_steps=2), dev=CLASSES)
    ckpt = out / "checkpoint"
    if damage == "flip-weights":
        target = ckpt / "model.safetensors"
        data = bytearray(target.read_bytes())
        data[-3] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "garble-state":
        target = ckpt / "trainer_state.json"
        target.write_text(target.read_text()[:50])
    else:
        target = ckpt / "trainer_state.safetensors"
        target.unlink()
    with caplog.at_level(logging.WARNING, logger="redundancy"):
        done = finetune(CLASSES, model, out, config, dev=CLASSES)
    assert done.finished and done.resumed_at == ()
    assert any(str(target) in r.getMessage() for r in caplog.records)
    assert _same_weights(tmp_path / "straight", out)


def test_clear_errors(tiny, tmp_path):
    model = str(tiny("bert"))
    dev = _task(["a", "b", "c", "a", "b", "d"])
    with pytest.raises(ValueError, match=r"dev labels \['c', 'd'\].*never occur in train"):
        finetune(CLASSES, model, tmp_path / "x", FinetuneConfig(**FAST), dev=dev)
    with pytest.raises(ValueError, match="single class"):
        finetune(_task(["a"] * 6), model, tmp_path / "y", FinetuneConfig(**FAST))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        FinetuneConfig(batch_size=0)
    cfg = FinetuneConfig(max_steps=5, threads=1)
    assert FinetuneConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert "max_steps" not in cfg.recipe() and cfg.recipe()["lr"] == 5e-5


def _write_rte(root: Path) -> Path:
    folder = root / "glue" / "RTE"
    folder.mkdir(parents=True)
    labels = ("entailment", "not_entailment")
    for file, n in (("train.tsv", 30), ("dev.tsv", 4)):
        # distinct pairs: a dev pair identical to a train pair would be kept in train by the carve
        rows = [f"{i}\t{SENTENCES[i % 6]}\t{SENTENCES[(i + 1) % 6]} ({i})\t{labels[i % 2]}" for i in range(n)]
        (folder / file).write_text("index\tsentence1\tsentence2\tlabel\n" + "\n".join(rows) + "\n")
    return root


def test_cli_finetunes_a_glue_task(tiny, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="redundancy")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "rte-model"
    argv = ["finetune", "--model", str(tiny("bert")), "--task", "rte", "--out", str(out)]
    argv += ["--data-dir", str(_write_rte(tmp_path / "data")), "--epochs", "1", "--max-train-examples", "12"]
    argv += ["--batch-size", "4", "--threads", "1", "--no-progress"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] and summary["steps"] == "3/3" and summary["task"] == "rte"
    res = FinetuneResult.from_dict(json.loads((out / RESULT_FILE).read_text()))
    assert res.train.n_items == 12 and res.dev is not None and res.dev.n_items == 3
    assert res.train.carve_seed == 7361 and res.labels == ("entailment", "not_entailment")
    assert res.config.lr == 5e-5 and res.config.max_length == 128
