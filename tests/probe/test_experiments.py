"""The whole analysis on small planted stores; results round-trip; the CLI; store-level probes."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from synthetic import planted, write_store

from redundancy.cli._probe import add_parser
from redundancy.probe import (
    ElasticNetProbe,
    TaskRedundancyResult,
    load_probe_task,
    plot_layers,
    plot_sizes,
    run_task_redundancy,
    train_curves,
    train_neuron_sets,
    train_probe,
)

PLANTED = {10, 13}  # layer 1 (of 3 x 8 units), units 2 and 5


@pytest.fixture(scope="module")
def analysis(planted_stores):
    return run_task_redundancy(
        planted_stores / "train", planted_stores / "dev", planted_stores / "test", n_random=2, probe_seeds=2
    )


def test_analysis_finds_the_planted_layer_and_neurons(analysis):
    r = analysis
    assert (r.task, r.metric, r.n_layers, r.hidden, r.solver) == ("toy", "accuracy", 3, 8, "fast")
    assert r.oracle.dev_score > 0.97 and r.oracle.test_score > 0.95
    assert [x.layers for x in r.layerwise] == [(0,), (1,), (2,)]
    assert int(np.argmax([x.dev_score for x in r.layerwise])) == 1
    assert r.layerwise[0].dev_score < 0.4 and r.layerwise[2].dev_score < 0.4  # chance is 0.25
    assert r.incremental[0] is r.layerwise[0] or r.incremental[0].dev == r.layerwise[0].dev
    assert r.incremental[-1].name == "oracle" and r.incremental[1].dev_score > 0.95
    assert set(r.ranking[:2]) == PLANTED
    m = r.minimal
    assert m.found and m.complete and m.k <= 3 and PLANTED <= set(m.neurons)
    assert m.result.dev_score > m.target == pytest.approx(r.oracle.dev_score * 0.99)
    assert m.grid[0] == 1 and all(e.dev_score <= m.target for e in m.evaluated if e.n_neurons < m.k)


def test_unseen_test_labels_are_counted_and_scored_as_errors(analysis, planted_stores):
    assert analysis.test.n_unseen == 10 and analysis.test.unseen_labels == ("INTJ",)
    assert analysis.dev.n_unseen == 0
    assert analysis.oracle.test_score <= 1 - 10 / 800
    assert analysis.classes == ("DET", "NOUN", "VERB", "ADJ")


def test_controls(analysis):
    c = analysis.controls
    assert analysis.minimal.k in c.sizes
    i = c.sizes.index(analysis.minimal.k)
    assert c.top.dev_mean[i] > c.random.dev_mean[i] + 0.3 and c.top.dev_mean[i] > c.bottom.dev_mean[i] + 0.3
    assert len(c.random.seeds) == 2 and len(c.random.dev) == 2 and c.random.dev_sd[i] >= 0
    assert c.probe_seeds.seeds == (0, 1) and c.probe_seeds.dev_sd < 0.02


def test_result_round_trips_through_json_and_plots(analysis, tmp_path):
    d = json.loads(json.dumps(analysis.to_dict()))
    back = TaskRedundancyResult.from_dict(d)
    assert back.to_dict() == d
    assert back.minimal.result.dev_score == analysis.minimal.result.dev_score
    assert back.train.plan_hash == analysis.train.plan_hash and "torch" in back.versions
    s = analysis.summary()
    assert s["minimal_set"]["k"] == analysis.minimal.k and "controls_at_k" in s
    for fn, name in ((plot_layers, "l.png"), (plot_sizes, "s.png")):
        assert fn(analysis, tmp_path / name).stat().st_size > 1000


def test_paper_solver_analysis_runs(planted_stores):
    task = load_probe_task(planted_stores / "train", planted_stores / "dev")
    r = run_task_redundancy(
        task, probe=ElasticNetProbe(solver="paper"), controls=False, shares=(0.1, 0.5, 1.0)
    )
    assert r.solver == "paper" and r.oracle.settings["batch_size"] == 128 and r.test is None
    assert r.minimal.grid == (2, 12, 24) and np.isnan(r.oracle.test_score)


def test_store_level_probe_paper_streaming_equals_in_memory(planted_stores):
    probe = ElasticNetProbe(solver="paper")
    streamed = train_probe(planted_stores / "train", planted_stores / "dev", layers=[1], probe=probe)
    task = load_probe_task(planted_stores / "train", planted_stores / "dev")
    direct = probe.fit(task.X_train[:, 8:16], task.train.y)
    pred = direct.predict_ids(task.X_dev[:, 8:16])
    assert streamed.dev["accuracy"] == pytest.approx(np.mean(pred == task.dev.y))
    fast = train_probe(
        planted_stores / "train",
        planted_stores / "dev",
        planted_stores / "test",
        neurons=[13, 10],
        probe=ElasticNetProbe(),
    )
    assert fast.neurons == (13, 10) and fast.dev_score > 0.95 and fast.test is not None


def test_cli_probe_writes_json_and_figures(planted_stores, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="redundancy")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(
        [
            "probe",
            "--train",
            str(planted_stores / "train"),
            "--dev",
            str(planted_stores / "dev"),
            "--test",
            str(planted_stores / "test"),
            "--out",
            str(out),
            "--no-controls",
            "--no-progress",
            "--delta",
            "2",
            "--rank-l1",
            "1e-3",
        ]
    )
    assert args.func(args) == 0
    saved = json.loads((out / "probe.json").read_text())
    assert saved["minimal"]["delta"] == 2.0 and saved["controls"] is None
    assert saved["ranking_probe"]["l1"] == 1e-3 and saved["probe_params"]["l1"] == 1e-5
    assert (out / "layers.png").is_file() and (out / "sizes.png").is_file()
    assert json.loads(capsys.readouterr().out)["minimal_set"]["found"] is True
    with pytest.raises(SystemExit):
        parser.parse_args(["probe", "--help"])


def test_real_valued_labels_use_linear_regression_and_correlations(tmp_path):
    stores = {}
    for split, seed, n in (("train", 0, 1500), ("dev", 1, 400)):
        acts, _ = planted(n, seed=seed)
        target = (acts[:, 2, 3] - 0.5 * acts[:, 0, 1]).astype(np.float32)
        target[:3] = np.nan  # unlabelled items are left out
        stores[split] = write_store(
            tmp_path / split, acts, target, (), split=split, task="stsb", label_type="real"
        )
    r = run_task_redundancy(stores["train"], stores["dev"], controls=False, shares=(0.05, 0.1, 0.5))
    assert r.metric == "pearson" and r.label_type == "real" and r.classes == ()
    assert r.oracle.dev_score > 0.99 and set(r.oracle.dev) == {"pearson", "spearman"}
    assert r.train.n_labeled == 1497
    assert set(r.ranking[:2]) == {2 * 8 + 3, 0 * 8 + 1}


def test_whole_float32_splits_are_views_of_the_memory_map_and_fit_as_copies(planted_stores):
    """Train/dev/test are read without a copy (read-only views of the stores' memory maps); a probe
    fitted on them equals one fitted on in-memory copies, and nothing writes to the map."""
    task = load_probe_task(planted_stores / "train", planted_stores / "dev", planted_stores / "test")
    for X, split in ((task.X_train, task.train), (task.X_dev, task.dev), (task.X_test, task.test)):
        assert not X.flags.writeable and X.dtype == np.float32
        assert np.shares_memory(X, split.store.activations)
        assert X.shape == (split.store.n_items, split.store.n_neurons)
    before = np.array(task.X_train)
    probe = ElasticNetProbe(random_state=0)
    on_map = probe.fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
    on_copy = ElasticNetProbe(random_state=0).fit(
        np.array(task.X_train), task.train.y, np.array(task.X_dev), task.dev.y
    )
    np.testing.assert_array_equal(on_map.coef_, on_copy.coef_)
    np.testing.assert_array_equal(task.X_train, before)
    # a selection is still an in-memory float32 copy
    some = task.train.read(neurons=[10, 13, 2])
    assert some.flags.writeable and not np.shares_memory(some, task.train.store.activations)
    np.testing.assert_array_equal(some, before[:, [10, 13, 2]])


def test_curves_trained_together_equal_each_curve_alone(planted_stores):
    """train_curves: several neuron orders in one family (gathered columns) give the probes that each
    order's own family gives (same batches and settings; only the products' float order differs)."""
    task = load_probe_task(planted_stores / "train", planted_stores / "dev", planted_stores / "test")
    probe = ElasticNetProbe(random_state=0, batch_size=128, max_epochs=2)
    rng = np.random.default_rng(3)
    orders = [rng.permutation(task.n_neurons) for _ in range(3)]
    sizes = [[1, 3, 6], [2, 5], [4, 10, 24]]
    curves = [(o, s, [f"c{i}-{k}" for k in s]) for i, (o, s) in enumerate(zip(orders, sizes, strict=True))]
    together = train_curves(task, probe, curves)
    for (o, s, names), rows in zip(curves, together, strict=True):
        alone = train_neuron_sets(task, probe, [o[:k] for k in s], names)
        assert [r.name for r in rows] == list(names)
        for a, b in zip(rows, alone, strict=True):
            assert a.neurons == b.neurons and a.n_steps == b.n_steps
            assert abs(a.dev_score - b.dev_score) <= 2 / len(task.dev.y)  # at most a couple of items
            assert abs(a.test_score - b.test_score) <= 2 / len(task.test.y)


def test_seed_spread_reuses_the_layer_familys_oracle(analysis):
    """The oracle trained with the probe's own seed is not trained again for the seed spread."""
    spread = analysis.controls.probe_seeds
    assert spread.seeds[0] == analysis.random_state
    assert spread.dev[0] == analysis.oracle.dev_score and spread.test[0] == analysis.oracle.test_score
