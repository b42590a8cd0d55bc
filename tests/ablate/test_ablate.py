"""In-model ablation: the hooks replace exactly the chosen units and the change reaches every later
layer; the ablation stage scores the intact model as the probe stage does, and its offline column
drop equals the probe with those columns at their train mean."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from toy import WORDS, token_task

from redundancy.ablate import AblationResult, ablation_hooks, layer_modules, neuron_sets, run_ablation
from redundancy.extract import ExtractConfig, extract, load_model
from redundancy.probe import ElasticNetProbe, ablated_scores, evaluate_probe, load_probe_task

HIDDEN = 32  # tests/tiny_models.py: 2 layers -> hidden states 0..2, 32 wide


def _states(lm, words):
    enc = lm.tokenizer(list(words), is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        out = lm.model(**enc, output_hidden_states=True)
    return [h.clone() for h in out.hidden_states]


@pytest.mark.parametrize("kind", ["bert", "gpt2", "xlnet"])
@pytest.mark.parametrize("state", [0, 1])
def test_hooks_replace_the_units_and_reach_later_layers(tiny, kind, state):
    lm = load_model(str(tiny(kind)))
    intact = _states(lm, WORDS[0])
    units = np.array([3, 17])
    neurons = state * HIDDEN + units
    with ablation_hooks(lm.model, lm.n_layers, HIDDEN, neurons, [0.5, -2.0]) as n_hooks:
        ablated = _states(lm, WORDS[0])
    assert n_hooks == 1
    assert torch.equal(ablated[state][..., 3], torch.full_like(ablated[state][..., 3], 0.5))
    assert torch.equal(ablated[state][..., 17], torch.full_like(ablated[state][..., 17], -2.0))
    others = [u for u in range(HIDDEN) if u not in units]
    assert torch.equal(ablated[state][..., others], intact[state][..., others])  # only those units
    for s in range(state):
        assert torch.equal(ablated[s], intact[s])  # earlier states untouched
    assert not torch.allclose(ablated[state + 1], intact[state + 1])  # the change propagates
    after = _states(lm, WORDS[0])
    assert all(torch.equal(a, b) for a, b in zip(after, intact, strict=True))  # hooks removed


def test_hooks_refuse_bad_neurons(tiny):
    lm = load_model(str(tiny("bert")))
    with pytest.raises(ValueError, match="flat ids below"):
        with ablation_hooks(lm.model, lm.n_layers, HIDDEN, [3 * HIDDEN], [0.0]):
            pass
    with pytest.raises(ValueError, match="2 neurons but 1 values"):
        with ablation_hooks(lm.model, lm.n_layers, HIDDEN, [0, 1], [0.0]):
            pass
    assert layer_modules(lm.model, 2)[0].endswith("layer")


def test_neuron_sets_are_seeded_and_sized():
    sets = neuron_sets({"paper": list(range(10))[::-1]}, 10, 3, 2, seed=5)
    assert [s[0] for s in sets] == ["top[paper]", "random-s2005", "random-s2006"]
    assert sets[0][4].tolist() == [9, 8, 7]
    assert all(s[4].size == 3 for s in sets)
    again = neuron_sets({"paper": list(range(10))[::-1]}, 10, 3, 2, seed=5)
    assert all(np.array_equal(a[4], b[4]) for a, b in zip(sets, again, strict=True))


def test_run_ablation_scores_like_the_probe_stage(tiny, tmp_path):
    lm = load_model(str(tiny("bert")))
    data = token_task()
    for split in ("train", "dev", "test"):
        extract(replace(data, split=split), lm, tmp_path / split, ExtractConfig())
    task = load_probe_task(tmp_path / "train", tmp_path / "dev", tmp_path / "test")
    probe = ElasticNetProbe().fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
    order = np.argsort(-np.abs(probe.scaled_coef_).sum(0))
    result = run_ablation(
        replace(data, split="test"),
        lm,
        tmp_path / "train",
        tmp_path / "dev",
        probe,
        {"abs": order},
        tmp_path / "work",
        share=0.1,
        n_random=2,
    )
    n = task.n_neurons
    assert result.k == int(0.1 * n) and len(result.rows) == 3 and not (tmp_path / "work").exists()
    # the intact score is the probe's score on the test store
    full = evaluate_probe(task, probe, np.arange(n), "test")[task.metric]
    assert result.intact == pytest.approx(full)
    # offline: the columns at their train mean in the stored intact activations
    top = result.rows[0]
    assert top.offline == pytest.approx(ablated_scores(task, probe, [order[: result.k]], "test")[0])
    assert top.offline_drop == pytest.approx(result.intact - top.offline)
    assert all(0 <= r.in_model <= 1 for r in result.rows)
    back = AblationResult.from_dict(result.to_dict())
    assert back.to_dict() == result.to_dict()
    assert set(result.summary()) == {"k", "intact", "abs", "random"}
    with pytest.raises(ValueError, match="mode must be"):
        run_ablation(data, lm, tmp_path / "train", tmp_path / "dev", probe, {}, tmp_path / "w", mode="x")


def test_offline_mean_ablation_equals_zeroing_the_standardised_weights(tiny, tmp_path):
    lm = load_model(str(tiny("bert")))
    data = token_task()
    for split in ("train", "dev"):
        extract(replace(data, split=split), lm, tmp_path / split, ExtractConfig())
    task = load_probe_task(tmp_path / "train", tmp_path / "dev")
    probe = ElasticNetProbe().fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
    cols = np.array([1, 5, 40, 70])
    zeroed = ElasticNetProbe()
    zeroed.__dict__.update(probe.__dict__)
    zeroed.coef_ = probe.coef_.copy()
    zeroed.coef_[:, cols] = 0.0
    zeroed.intercept_ = probe.intercept_ + probe.coef_[:, cols] @ probe.mean_[cols]
    want = evaluate_probe(task, zeroed, np.arange(task.n_neurons), "dev")[task.metric]
    assert ablated_scores(task, probe, [cols], "dev")[0] == pytest.approx(want)
