"""The compact model: export, load, predictions equal the probe on stored activations, the truncated
forward pass, refusals, the dev-only row choice, and ``redundancy predict``."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from sklearn.base import clone
from toy import WORDS, sentence_task, token_task

from redundancy.cli import _predict
from redundancy.cli._main import build_parser
from redundancy.compact import CompactInfo, CompactModel, export_compact, read_info
from redundancy.data import DataFormatError
from redundancy.extract import ExtractConfig, extract, load_model
from redundancy.pipeline import PipelineResult, PipelineRow, choose_row, run_pipeline
from redundancy.probe import ElasticNetProbe, SplitInfo, load_probe_task

NAN = float("nan")
HIDDEN = 32  # tests/tiny_models.py: 2 layers -> hidden states 0..2, 32 wide


@pytest.fixture(scope="module")
def stores(tiny, tmp_path_factory):
    """``stores(kind, what, max_length)`` -> (loaded model, ProbeTask) of toy train/dev stores."""
    built: dict = {}
    tasks = {
        "token": token_task,
        "sentence": sentence_task,
        "pair": lambda: sentence_task(pairs=True),
        "real": lambda: sentence_task(real=True),
    }

    def get(kind: str, what: str = "token", max_length: int | None = None):
        key = (kind, what, max_length)
        if key not in built:
            root = tmp_path_factory.mktemp(f"{kind}-{what}")
            lm = load_model(str(tiny(kind)), max_length=max_length)
            data = tasks[what]()
            for split in ("train", "dev"):
                extract(replace(data, split=split), lm, root / split, ExtractConfig(max_length=max_length))
            built[key] = (lm, load_probe_task(root / "train", root / "dev"))
        return built[key]

    return get


def _row(layer: int, neurons, dev: float = 0.9, test: float = NAN, **kw) -> PipelineRow:
    neurons = tuple(int(i) for i in neurons)
    fields = dict(
        delta_layer=3.0,
        delta_neuron=1.0,
        threshold=None,
        oracle_dev=0.95,
        oracle_test=NAN,
        selected_layer=layer,
        layer_passed=True,
        n_layer_neurons=(layer + 1) * HIDDEN,
        layer_dev=dev,
        layer_test=NAN,
        n_after_clustering=len(neurons),
        cc_dev=dev,
        cc_test=NAN,
        n_selected=len(neurons),
        fs_passed=True,
        share_of_all=len(neurons) / (3 * HIDDEN),
        dev=dev,
        test=test,
        share_of_oracle=NAN,
        neurons=neurons,
        clustered_neurons=neurons,
    )
    return PipelineRow(**(fields | kw))


def _spread(layer: int) -> list[int]:
    """Neurons from every hidden state 0..layer, unsorted units."""
    return sorted({(i * 7 + 3) % ((layer + 1) * HIDDEN) for i in range(5 * (layer + 1))})


def _reference(task, neurons, split: str = "train"):
    """The probe retrained as export does, and its outputs on the stored activations of ``split``."""
    cols = np.asarray(neurons)
    est = clone(ElasticNetProbe(random_state=0)).fit(
        task.X_train[:, cols], task.train.y, task.X_dev[:, cols], task.dev.y
    )
    X = (task.X_train if split == "train" else task.X_dev)[:, cols]
    return est, est.decision_function(X), est.predict_ids(X)


def _layers_of(model) -> list:
    for path in ("encoder.layer", "h", "layer"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return list(obj)
    raise AssertionError(f"no layer list in {type(model).__name__}")


@pytest.fixture(scope="module")
def bert_compact(stores, tmp_path_factory):
    """A bert token-task compact model cut at layer 1, extracted with windows (max_length 16)."""
    lm, task = stores("bert", "token", 16)
    out = tmp_path_factory.mktemp("compact") / "bert-l1"
    info = export_compact(task, _row(1, _spread(1)), lm, out)
    return out, info, task


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_token_round_trip_with_windows(stores, tmp_path, kind):
    lm, task = stores(kind, "token", 16)
    assert task.train.store.manifest.extra["plan_stats"]["n_windowed"] > 0  # long sentences windowed
    neurons = _spread(1)
    info = export_compact(task, _row(1, neurons), lm, tmp_path / "c")
    cm = CompactModel.load(tmp_path / "c")
    est, z_ref, ids_ref = _reference(task, neurons)
    z = cm.decision_words([list(w) for w in WORDS])
    np.testing.assert_allclose(z, z_ref, atol=1e-4)
    tags = cm.predict_words([list(w) for w in WORDS])
    assert [len(t) for t in tags] == [len(w) for w in WORDS]
    assert [t for s in tags for t in s] == [task.label_map.classes[i] for i in ids_ref]
    saved = load_file(str(tmp_path / "c" / "probe.safetensors"))
    np.testing.assert_allclose(saved["coef"], est.coef_, rtol=1e-6, atol=1e-7)
    assert saved["coef"].dtype == np.float32 and saved["neurons"].dtype == np.int64
    assert info.classes == ("L", "S") and info.max_length == 16 and info.level == "token"
    assert info.identity_modules == (("ln_f",) if kind == "gpt2" else ())


@pytest.mark.parametrize("kind", ["bert", "mpnet", "roberta", "gpt2", "xlnet"])
def test_every_kind_cut_at_every_layer(stores, tmp_path, kind):
    from transformers import AutoModel

    lm, task = stores(kind)
    for layer in (0, 1, 2):
        out = tmp_path / f"l{layer}"
        info = export_compact(task, _row(layer, _spread(layer)), lm, out)
        cfg = AutoModel.from_pretrained(out / "model").config
        assert cfg.num_hidden_layers == layer == info.selected_layer
        cm = CompactModel.load(out)
        assert cm.lm.n_layers == layer + 1
        saved = load_file(str(out / "probe.safetensors"))
        X = task.X_train[:, saved["neurons"]]
        z_ref = (X @ saved["coef"].T).astype(np.float64) + saved["intercept"]
        np.testing.assert_allclose(cm.decision_words([list(w) for w in WORDS]), z_ref, atol=1e-4)
    assert lm.model.config.num_hidden_layers == 2 and len(_layers_of(lm.model)) == 2  # full model intact


@pytest.mark.parametrize("kind", ["bert", "gpt2", "xlnet"])
def test_truncated_forward_computes_only_l_layers(stores, tmp_path, kind):
    lm, task = stores(kind)
    export_compact(task, _row(1, _spread(1)), lm, tmp_path / "c")
    cm = CompactModel.load(tmp_path / "c")
    cm.batch_size = 2
    layers = _layers_of(cm.lm.model)
    assert len(layers) == 1
    calls = [0] * len(layers)
    batches = [0]
    hooks = [
        m.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, m in enumerate(layers)
    ]
    hooks.append(cm.lm.model.register_forward_hook(lambda *_: batches.__setitem__(0, batches[0] + 1)))
    full_calls = [0]
    hooks += [
        m.register_forward_hook(lambda *_: full_calls.__setitem__(0, full_calls[0] + 1))
        for m in _layers_of(lm.model)
    ]
    try:
        cm.predict_words([list(w) for w in WORDS])
    finally:
        for h in hooks:
            h.remove()
    assert batches[0] == 3  # 6 sentences, 2 per batch
    assert calls == [batches[0]]  # one layer, once per batch
    assert full_calls[0] == 0
    assert lm.model.config.num_hidden_layers == 2 and len(_layers_of(lm.model)) == 2


@pytest.mark.parametrize(("kind", "what"), [("bert", "sentence"), ("roberta", "pair"), ("gpt2", "sentence")])
def test_sentence_round_trip(stores, tmp_path, kind, what):
    lm, task = stores(kind, what)
    neurons = _spread(2)
    info = export_compact(task, _row(2, neurons), lm, tmp_path / "c")
    assert info.aggregation == ("last" if kind == "gpt2" else "cls")
    cm = CompactModel.load(tmp_path / "c")
    data = sentence_task(pairs=what == "pair")
    texts = [e.text for e in data.items]
    pairs = [e.text_pair for e in data.items] if what == "pair" else None
    _, z_ref, ids_ref = _reference(task, neurons)
    np.testing.assert_allclose(cm.decision_texts(texts, pairs), z_ref, atol=1e-4)
    assert cm.predict_texts(texts, pairs) == [task.label_map.classes[i] for i in ids_ref]
    with pytest.raises(ValueError, match="predict_texts"):
        cm.predict_words([["a"]])


def test_regression_round_trip(stores, tmp_path):
    lm, task = stores("bert", "real")
    neurons = _spread(1)
    info = export_compact(task, _row(1, neurons, dev=0.5), lm, tmp_path / "c")
    assert info.classes is None and info.label_type == "real"
    cm = CompactModel.load(tmp_path / "c")
    texts = [e.text for e in sentence_task(real=True).items]
    est, z_ref, _ = _reference(task, neurons)
    got = cm.predict_texts(texts)
    assert all(isinstance(v, float) for v in got)
    np.testing.assert_allclose(got, est.predict(task.X_train[:, neurons]), atol=1e-4)


def test_info_record_and_folder(bert_compact, tiny):
    out, info, task = bert_compact
    assert sorted(p.name for p in out.iterdir()) == ["compact.json", "model", "probe.safetensors"]
    assert read_info(out).to_dict() == info.to_dict()
    d = json.loads((out / "compact.json").read_text())
    assert CompactInfo.from_dict(d).to_dict() == d == info.to_dict() and d["test"] is None
    files = [f for f in out.rglob("*") if f.is_file() and f.name != "compact.json"]
    assert info.size_bytes == sum(f.stat().st_size for f in files)  # not the record: no paths in it
    assert info.full_model_bytes == (tiny("bert") / "model.safetensors").stat().st_size
    assert info.weights_sha256 == task.train.store.manifest.weights_sha256
    assert (info.n_layers_full, info.hidden, info.n_neurons_full) == (3, HIDDEN, 3 * HIDDEN)
    assert info.selected_layer == 1 and list(info.neurons) == _spread(1)
    assert not list(out.parent.glob(".*"))  # no temporary folders left
    assert not any(p.suffix in (".bin", ".pkl", ".pt") for p in out.rglob("*"))
    assert out.stat().st_mode & 0o444 == (out / "compact.json").stat().st_mode & 0o444  # not private
    assert (out / "probe.safetensors").stat().st_mode & 0o777 == (out / "compact.json").stat().st_mode & 0o777
    with pytest.raises(ValueError, match="unknown keys"):
        CompactInfo.from_dict(d | {"extra": 1})


def test_empty_and_mixed_inputs(bert_compact):
    cm = CompactModel.load(bert_compact[0])
    assert cm.predict_words([]) == []
    tags = cm.predict_words([["A", "cat"], [], ["sat"]])
    assert [len(t) for t in tags] == [2, 0, 1]
    assert tags[0] + tags[2] == [t for s in cm.predict_words([["A", "cat"], ["sat"]]) for t in s]


def test_pipeline_row_exports(stores, tmp_path):
    lm, task = stores("bert")
    result = run_pipeline(task, grid=((3, 1),), thresholds=(None,), seed=0)
    row = choose_row(result)
    info = export_compact(task, row, lm, tmp_path / "c")
    assert info.neurons == row.neurons and info.selected_layer == row.selected_layer
    assert info.dev == row.dev and info.oracle_dev == row.oracle_dev
    assert math.isnan(info.test)


# --------------------------------------------------------------------------- refusals


def test_load_refuses_changed_weights(bert_compact, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(bert_compact[0], out)
    with (out / "model" / "model.safetensors").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ValueError, match=r"model: weights hash .* differs"):
        CompactModel.load(out)


def test_load_refuses_missing_or_other_version_json(bert_compact, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(bert_compact[0], out)
    d = json.loads((out / "compact.json").read_text())
    (out / "compact.json").write_text(json.dumps(d | {"format_version": 99}))
    with pytest.raises(ValueError, match=r"compact\.json: format_version 99"):
        CompactModel.load(out)
    (out / "compact.json").unlink()
    with pytest.raises(ValueError, match=r"compact\.json: missing"):
        CompactModel.load(out)


def test_export_refuses_a_model_the_stores_were_not_made_with(stores, tiny, tmp_path):
    _, task = stores("bert")
    with pytest.raises(ValueError, match="extracted with"):
        export_compact(task, _row(1, _spread(1)), str(tiny("gpt2")), tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_export_refuses_bad_rows_and_existing_folders(stores, tmp_path):
    lm, task = stores("bert")
    with pytest.raises(ValueError, match="below"):
        export_compact(task, _row(0, [5, HIDDEN + 1]), lm, tmp_path / "c")
    export_compact(task, _row(0, [5]), lm, tmp_path / "c")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_compact(task, _row(0, [5]), lm, tmp_path / "c")
    info = export_compact(task, _row(1, [5, 40]), lm, tmp_path / "c", overwrite=True)
    assert read_info(tmp_path / "c").to_dict() == info.to_dict()
    (tmp_path / "other").mkdir()
    with pytest.raises(FileExistsError, match="not a compact model"):
        export_compact(task, _row(0, [5]), lm, tmp_path / "other", overwrite=True)


def test_interrupted_export_leaves_nothing(stores, tmp_path, monkeypatch):
    import safetensors.numpy

    lm, task = stores("bert")

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", fail)
    with pytest.raises(KeyboardInterrupt):
        export_compact(task, _row(1, _spread(1)), lm, tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- choose_row


def _result(rows, oracle_dev: float) -> PipelineResult:
    split = SplitInfo("s", "dev", "toy", "m", "h", 1, 1, 0, ())
    return PipelineResult(
        task="toy",
        metric="accuracy",
        model="m",
        n_layers=3,
        hidden=HIDDEN,
        n_neurons=3 * HIDDEN,
        grid=((3.0, 1.0),),
        thresholds=(None,),
        ranking_method="paper",
        shares=(0.1,),
        seed=0,
        probe_seed=0,
        solver="fast",
        probe_params={},
        train=split,
        dev=split,
        test=None,
        incremental_dev=(0.5, 0.7, oracle_dev),
        incremental_test=(NAN, NAN, 0.99),
        rows=tuple(rows),
        timings={},
        versions={},
        created="",
    )


def test_choose_row_uses_dev_never_test():
    # oracle dev 0.90: rows at >= 0.873 qualify; the best *test* rows are decoys
    big = _row(2, range(40), dev=0.89, test=0.50)
    small = _row(1, range(10), dev=0.875, test=0.60)
    tie_better = _row(1, range(10, 20), dev=0.880, test=0.10)
    tiny_bad = _row(0, range(3), dev=0.85, test=0.99)
    nan_row = _row(0, range(2), dev=NAN, test=1.0)
    result = _result([big, small, tie_better, tiny_bad, nan_row], 0.90)
    assert choose_row(result) is tie_better  # fewest neurons, tie broken by higher dev
    assert choose_row(result, min_share=0.5) is tiny_bad  # NaN dev never chosen
    assert choose_row(result, min_share=0.999) is big  # none qualifies: highest dev
    swapped = _result([replace(r, test=1 - r.test) for r in result.rows], 0.90)
    picked = choose_row(swapped)  # test plays no part
    assert (picked.neurons, picked.dev) == (tie_better.neurons, tie_better.dev)
    with pytest.raises(ValueError, match="no row"):
        choose_row(_result([nan_row], 0.9))


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    """The main parser with ``predict`` registered (the lead wires it into ``build_parser``)."""
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    if "predict" not in sub.choices:
        _predict.add_parser(sub)
    return p


def _predict_cli(argv, monkeypatch, capsys):
    from redundancy.cli import _main

    monkeypatch.setattr(_main, "build_parser", _parser)
    code = _main.main(argv)
    return code, capsys.readouterr()


def test_cli_predict_conll_text_jsonl(bert_compact, tmp_path, monkeypatch, capsys):
    out_dir = bert_compact[0]
    sentences = [list(w) for w in WORDS[:3]]
    expected = CompactModel.load(out_dir).predict_words(sentences)
    conllu = tmp_path / "in.conllu"
    lines = ["# sent_id = 1"]
    for s in sentences:
        lines += [f"{i + 1}\t{w}\t_\t_" for i, w in enumerate(s)] + [""]
    lines.insert(2, "1-2\tx\t_\t_")  # a multiword token line is skipped
    conllu.write_text("\n".join(lines) + "\n")
    code, cap = _predict_cli(
        ["predict", "--compact", str(out_dir), str(conllu), "--no-progress"], monkeypatch, capsys
    )
    assert code == 0, cap.err
    blocks = [b.splitlines() for b in cap.out.strip("\n").split("\n\n")]
    assert [[ln.split("\t") for ln in b] for b in blocks] == [
        [[w, t] for w, t in zip(s, ts, strict=True)] for s, ts in zip(sentences, expected, strict=True)
    ]
    # plain text (words with spaces are not possible there: compare on space-free sentences)
    plain = [s for s in sentences if all(" " not in w for w in s)]
    text = tmp_path / "in.txt"
    text.write_text("\n".join(" ".join(s) for s in plain) + "\n\n")
    out = tmp_path / "o" / "tags.jsonl"
    argv = [
        "predict",
        "--compact",
        str(out_dir),
        str(text),
        "--format",
        "jsonl",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert _predict_cli(argv, monkeypatch, capsys)[0] == 0
    got = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert got == [{"words": s, "tags": expected[sentences.index(s)]} for s in plain]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps({"words": s}) for s in sentences) + "\n")
    code, cap = _predict_cli(
        ["predict", "--compact", str(out_dir), str(jsonl), "--no-progress"], monkeypatch, capsys
    )
    assert [json.loads(ln)["tags"] for ln in cap.out.splitlines()] == expected


def test_cli_predict_errors_name_file_and_line(bert_compact, tmp_path, monkeypatch, capsys):
    out_dir = str(bert_compact[0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"words": ["a"]}\n{"words": oops}\n')
    code, cap = _predict_cli(
        ["predict", "--compact", out_dir, str(bad), "--no-progress"], monkeypatch, capsys
    )
    assert code == 2 and f"{bad}:2: not valid JSON" in cap.err
    cols = tmp_path / "short.conll"
    cols.write_text("a\tX\nb\tY\n\nc\n")
    code, cap = _predict_cli(
        ["predict", "--compact", out_dir, str(cols), "--word-column", "2", "--no-progress"],
        monkeypatch,
        capsys,
    )
    assert code == 2 and f"{cols}:4:" in cap.err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    code, cap = _predict_cli(
        ["predict", "--compact", out_dir, str(empty), "--no-progress"], monkeypatch, capsys
    )
    assert code == 2 and f"{empty}: no sentences" in cap.err
    code, cap = _predict_cli(["predict", "--compact", out_dir, str(tmp_path / "x.doc")], monkeypatch, capsys)
    assert code == 2 and "x.doc" in cap.err


def test_cli_predict_sentence_pairs(stores, tmp_path):
    lm, task = stores("roberta", "pair")
    export_compact(task, _row(1, _spread(1)), lm, tmp_path / "c")
    data = sentence_task(pairs=True)
    tsv = tmp_path / "in.tsv"
    tsv.write_text("".join(f"{e.text}\t{e.text_pair}\n" for e in data.items))
    parser = argparse.ArgumentParser()
    _predict.add_parser(parser.add_subparsers())
    out = tmp_path / "out.tsv"
    args = parser.parse_args(
        ["predict", "--compact", str(tmp_path / "c"), str(tsv), "--out", str(out), "--no-progress"]
    )
    assert args.func(args) == 0
    expected = CompactModel.load(tmp_path / "c").predict_texts(
        [e.text for e in data.items], [e.text_pair for e in data.items]
    )
    assert [ln.split("\t") for ln in out.read_text().splitlines()] == [
        [e.text, e.text_pair, lab] for e, lab in zip(data.items, expected, strict=True)
    ]
    tsv.write_text("one\ttwo\nno tab here\n")
    with pytest.raises(DataFormatError, match=r"in\.tsv:2: a pair task needs"):
        args.func(args)


def test_threads_hold_while_predicting_only(bert_compact):
    """``threads`` sets torch's count inside a prediction only; the caller's count stays as it was
    (loading and predicting change nothing outside)."""
    before = torch.get_num_threads()
    seen = []
    try:
        torch.set_num_threads(2)
        cm = CompactModel.load(bert_compact[0], threads=1)
        assert torch.get_num_threads() == 2
        hook = cm.lm.model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
        cm.predict_words([list(w) for w in WORDS[:2]])
        hook.remove()
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_predict_progress_is_cumulative(bert_compact):
    """The one Progress shape: cumulative words of ``predict TASK``, ending at the total."""
    cm = CompactModel.load(bert_compact[0])
    cm.batch_size = 1
    calls = []
    sentences = [list(w) for w in WORDS]
    cm.predict_words(sentences, progress=lambda *a, **kw: calls.append((*a, kw.get("unit"))))
    total = sum(len(s) for s in sentences)
    assert len(calls) > 1 and {c[0] for c in calls} == {f"predict {cm.info.task}"}
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)
    assert calls[-1][1:] == (total, total, "word")


@pytest.mark.parametrize(("kind", "layer"), [("gpt2", 1), ("bert", 0), ("xlnet", 1)])
def test_plain_transformers_loading(stores, tmp_path, kind, layer):
    """The recipe of docs/pipeline.md: transformers + safetensors alone give the same logits."""
    from transformers import AutoModel, AutoTokenizer

    lm, task = stores(kind)
    export_compact(task, _row(layer, _spread(layer)), lm, tmp_path / "c")
    info = json.loads((tmp_path / "c" / "compact.json").read_text())
    model = AutoModel.from_pretrained(tmp_path / "c" / "model").eval()
    for name in info["identity_modules"]:
        setattr(model, name, torch.nn.Identity())
    tok = AutoTokenizer.from_pretrained(tmp_path / "c" / "model")
    p = load_file(str(tmp_path / "c" / "probe.safetensors"))
    expected = CompactModel.load(tmp_path / "c").decision_words([list(w) for w in WORDS])
    got = []
    for words in WORDS:
        enc = tok(list(words), is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            out = model(**enc, output_hidden_states=True)
        states = out.hidden_states or (out.last_hidden_state,)
        H = torch.stack([s[0] for s in states], dim=1)
        last = {w: t for t, w in enumerate(enc.word_ids()) if w is not None}
        X = H[[last[w] for w in range(len(words))]].reshape(len(words), -1).numpy()[:, p["neurons"]]
        got.append(X @ p["coef"].T + p["intercept"])
    np.testing.assert_allclose(np.concatenate(got), expected, atol=1e-4)
