"""Extraction on tiny random models equals a direct ``model(..., output_hidden_states=True)`` call."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from toy import WORDS, sentence_task, token_task

from redundancy.extract import ExtractConfig, ModelError, extract, load_model
from redundancy.store import ActivationStore, StoreError

KINDS = ("bert", "mpnet", "roberta", "gpt2", "xlnet")


def _direct_hidden(lm, enc) -> np.ndarray:
    """(layers, tokens, hidden) from one unpadded sequence."""
    with torch.inference_mode():
        ids = {
            k: torch.as_tensor(np.asarray(enc[k]))[None]
            for k in ("input_ids", "attention_mask", "token_type_ids")
            if k in enc
        }
        out = lm.model(**ids, output_hidden_states=True)
    return torch.stack(out.hidden_states)[:, 0].numpy()


def _pool(hs: np.ndarray, positions: list[int], how: str) -> np.ndarray:
    if how == "first":
        return hs[:, positions[0]]
    if how == "last":
        return hs[:, positions[-1]]
    return hs[:, positions].mean(axis=1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("aggregation", ["first", "last", "mean"])
def test_token_rows_equal_direct_forward(tiny, tmp_path, kind, aggregation):
    lm = load_model(str(tiny(kind)))
    data = token_task()
    res = extract(
        data, lm, tmp_path / "s", ExtractConfig(aggregation=aggregation, batch_size=4, chunk_items=10)
    )
    store = ActivationStore.open(tmp_path / "s")
    assert store.n_items == res.n_items == sum(len(w) for w in WORDS)
    assert (store.n_layers, store.hidden) == (3, 32)
    acts = np.asarray(store.activations)
    row = 0
    for words in WORDS:
        enc = lm.tokenizer(words, is_split_into_words=True)
        hs = _direct_hidden(lm, enc)
        wid = enc.word_ids()
        for w in range(len(words)):
            positions = [t for t, x in enumerate(wid) if x == w]
            np.testing.assert_allclose(acts[row], _pool(hs, positions, aggregation), atol=2e-5, rtol=1e-4)
            row += 1
    assert store.manifest.aggregation == aggregation
    assert list(store.sentence_ids[:8]) == [0] * 8 and list(store.positions[:3]) == [0, 1, 2]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pairs", [False, True])
def test_sentence_rows_equal_direct_forward(tiny, tmp_path, kind, pairs):
    lm = load_model(str(tiny(kind)))
    data = sentence_task(pairs=pairs)
    for how in ("cls", "last", "mean"):
        if how == "cls" and kind == "gpt2":
            with pytest.raises(ValueError, match="no classifier token"):
                extract(data, lm, tmp_path / how, ExtractConfig(aggregation=how))
            continue
        extract(data, lm, tmp_path / how, ExtractConfig(aggregation=how, batch_size=3))
        acts = np.asarray(ActivationStore.open(tmp_path / how).activations)
        for i, ex in enumerate(data.items):
            args = (ex.text, ex.text_pair) if pairs else (ex.text,)
            enc = lm.tokenizer(
                *args, return_special_tokens_mask=True, truncation=True, max_length=lm.max_length
            )
            hs = _direct_hidden(lm, enc)
            ids = enc["input_ids"]
            if how == "cls":
                want = hs[:, ids.index(lm.tokenizer.cls_token_id)]
            elif how == "last":
                want = hs[:, len(ids) - 1]
            else:
                keep = [t for t, s in enumerate(enc["special_tokens_mask"]) if not s]
                want = hs[:, keep].mean(axis=1)
            np.testing.assert_allclose(acts[i], want, atol=2e-5, rtol=1e-4)


def test_default_sentence_pooling_follows_the_model(tiny, tmp_path):
    """[CLS] for BERT (first token) and XLNet (last token); the last token for GPT-2."""
    for kind, want in (("bert", "cls"), ("xlnet", "cls"), ("gpt2", "last")):
        extract(sentence_task(), str(tiny(kind)), tmp_path / kind)
        assert ActivationStore.open(tmp_path / kind).manifest.aggregation == want
    xl = load_model(str(tiny("xlnet")))
    assert xl.tokenizer.padding_side == "left"  # pooled positions must account for left padding


def test_alignment_on_multi_subword_words(tiny):
    from redundancy.extract._plan import plan_token_segments

    lm = load_model(str(tiny("bert")))
    segs, stats = plan_token_segments(token_task().items[:1], lm.tokenizer, aggregation="mean", max_length=64)
    toks = lm.tokenizer.convert_ids_to_tokens(segs[0].encoding["input_ids"])
    # "unbelievable" -> un ##bel ##iev ##able: one row, four positions, in order.
    item, positions = segs[0].targets[1]
    assert item == 1 and [toks[p] for p in positions] == ["un", "##bel", "##iev", "##able"]
    assert [t for _, ps in segs[0].targets for t in ps] == list(range(1, len(toks) - 1))
    assert stats.n_windowed == 0


def test_long_sentence_is_windowed_and_no_word_is_lost(tiny, tmp_path):
    lm = load_model(str(tiny("bert")), max_length=16)
    long = [w for ws in WORDS for w in ws] * 2  # far more than 16 subwords
    data = token_task([long, ["short", "."]])
    res = extract(data, lm, tmp_path / "s", ExtractConfig(batch_size=2))
    assert res.stats["n_windowed"] == 1 and res.stats["n_windows"] >= 3
    acts = np.asarray(ActivationStore.open(tmp_path / "s").activations)
    assert acts.shape[0] == len(long) + 2 and np.isfinite(acts).all()
    # Words owned by the first window equal a direct call on that window alone.
    from redundancy.extract._plan import plan_token_segments

    segs, _ = plan_token_segments(data.items, lm.tokenizer, aggregation="last", max_length=16)
    first = segs[0]
    hs = _direct_hidden(lm, first.encoding)
    for item, positions in first.targets:
        np.testing.assert_allclose(acts[item], hs[:, positions[-1]], atol=2e-5, rtol=1e-4)
    owned = sorted(item for s in segs for item, _ in s.targets)
    assert owned == list(range(len(long) + 2))


def test_sentence_task_truncates_and_counts(tiny, tmp_path, caplog):
    lm = load_model(str(tiny("bert")), max_length=8)
    res = extract(sentence_task(pairs=True), lm, tmp_path / "s")
    assert res.stats["n_truncated"] >= 4
    assert "truncated" in caplog.text


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_after_killed_process_is_bit_identical(tiny, tmp_path):
    model = str(tiny("bert"))
    cfg = ExtractConfig(batch_size=2, chunk_items=6, dtype="float16")
    extract(token_task(), model, tmp_path / "ref", cfg)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from toy import token_task
        from redundancy.extract import ExtractConfig, extract

        class Killer:
            n = 0
            def __call__(self, what, done, total, unit="step"):
                self.n += 1
                if self.n == 3:  # chunk 0 is committed by now, chunk 1 may be
                    os._exit(9)  # die mid-run, without any clean-up

        extract(token_task(), {model!r}, {str(tmp_path / "run")!r},
                ExtractConfig(batch_size=2, chunk_items=6, dtype="float16"), progress=Killer())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr
    with pytest.raises(StoreError, match="incomplete"):
        ActivationStore.open(tmp_path / "run")
    res = extract(token_task(), model, tmp_path / "run", cfg)
    assert 0 < res.chunks_computed < res.n_chunks  # some chunks were kept from the killed run
    for name in ("activations.npy", "labels.npy", "sentence_ids.npy", "positions.npy"):
        assert _sha(tmp_path / "run" / name) == _sha(tmp_path / "ref" / name)
    again = extract(token_task(), model, tmp_path / "run", cfg)
    assert again.chunks_computed == 0


def test_rerun_with_other_settings_is_refused(tiny, tmp_path):
    model = str(tiny("bert"))
    extract(token_task(), model, tmp_path / "s", ExtractConfig(aggregation="first"))
    with pytest.raises(StoreError):
        extract(token_task(), model, tmp_path / "s", ExtractConfig(aggregation="mean"))
    extract(token_task(), model, tmp_path / "s", ExtractConfig(aggregation="mean"), overwrite=True)
    assert ActivationStore.open(tmp_path / "s").manifest.aggregation == "mean"


def test_same_shape_other_sentences_is_another_plan(tiny, tmp_path):
    """A store is never resumed with other sentences of the same shape (e.g. another carve seed)."""
    model = str(tiny("bert"))
    extract(token_task(), model, tmp_path / "s")
    other = [[w.upper() for w in ws] for ws in WORDS]
    with pytest.raises(StoreError, match="plan"):
        extract(token_task(other), model, tmp_path / "s")
    assert len(ActivationStore.open(tmp_path / "s").manifest.extra["items_sha256"]) == 64


def test_nan_activations_are_refused_naming_the_sentence(tiny, tmp_path):
    lm = load_model(str(tiny("bert")))

    def poison(module, args, output):
        return output.masked_fill(torch.ones_like(output, dtype=torch.bool), float("nan"))

    lm.model.embeddings.register_forward_hook(poison)
    with pytest.raises(StoreError, match="sentence"):
        extract(token_task(), lm, tmp_path / "s")


def test_model_errors(tiny, tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="config.json"):
        load_model(str(empty))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        load_model("some-org/some-model-that-is-not-cached")


def test_slow_tokenizer_is_refused(tiny, tmp_path, monkeypatch):
    import shutil

    import transformers
    from transformers import BertTokenizerLegacy

    folder = tmp_path / "bert"  # a copy: the session's tiny model is shared, never written to
    shutil.copytree(tiny("bert"), folder)
    vocab = folder / "vocab.txt"
    if not vocab.exists():
        tok = transformers.AutoTokenizer.from_pretrained(folder)
        vocab.write_text("\n".join(sorted(tok.get_vocab(), key=tok.get_vocab().get)) + "\n")
    slow = BertTokenizerLegacy(vocab_file=str(vocab))
    assert not slow.is_fast
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: slow)
    with pytest.raises(ModelError, match="fast tokenizer"):
        load_model(str(folder))


def test_threads_and_float16(tiny, tmp_path):
    """``threads`` holds inside the call only (seen by a progress callback); the caller's count is back
    afterwards, also when the call fails."""
    before = torch.get_num_threads()
    seen = []

    calls = []

    def spy(what, done, total, unit="step"):
        seen.append(torch.get_num_threads())
        calls.append((what, done, total, unit))

    try:
        torch.set_num_threads(2)
        config = ExtractConfig(dtype="float16", threads=1)
        data = token_task()
        extract(data, str(tiny("bert")), tmp_path / "s", config, progress=spy)
        assert seen and set(seen) == {1}
        # the one Progress shape: cumulative rows of one named piece of work, ending at the total
        assert {c[0] for c in calls} == {f"extract {data.spec.name}/{data.split}"}
        assert [c[1] for c in calls] == sorted(c[1] for c in calls) and calls[-1][1:] == (
            data.n_items,
            data.n_items,
            "word",
        )
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="no items"):
            extract(replace(token_task(), items=()), str(tiny("bert")), tmp_path / "e", config)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    store = ActivationStore.open(tmp_path / "s")
    assert store.activations.dtype == np.float16 and store.manifest.dtype == "float16"
    assert os.path.getsize(tmp_path / "s" / "activations.npy") < 2 * 34 * 3 * 32 + 1024


@pytest.mark.parametrize("kind", ["roberta", "gpt2"])
def test_byte_level_tokenizers_see_words_as_in_running_text(tiny, kind):
    tok = load_model(str(tiny(kind))).tokenizer
    assert tok.add_prefix_space
    first = tok(["cats", "sat"], is_split_into_words=True, add_special_tokens=False).input_ids
    later = tok(["The", "cats", "sat"], is_split_into_words=True, add_special_tokens=False).input_ids
    assert later[-len(first) :] == first  # "cats" gets the same pieces first or after another word
