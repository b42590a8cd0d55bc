"""The efficient-transfer pipeline on synthetic stores: layer choice, clustering, JSON, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest
from pipeline_synthetic import COPIED_UNITS, PLANTED, H, L

from redundancy.pipeline import PipelineResult, load_result, run_pipeline
from redundancy.select import PIPELINE_SHARES, grid_sizes


def test_rows_cover_grid_and_thresholds(result):
    assert [(r.delta_layer, r.delta_neuron, r.threshold) for r in result.rows] == [
        (dl, dn, t) for dl, dn in ((3, 1), (2, 1), (1, 1)) for t in (None, 0.3)
    ]
    assert len(result.incremental_dev) == L
    assert result.n_neurons == L * H
    assert result.train.plan_hash and result.test is not None


def test_layer_selector_picks_the_informative_layer(result):
    # layer 0 alone is noise (chance), layers 0..1 hold the planted rule
    assert result.incremental_dev[0] < 0.6 < 0.9 < result.incremental_dev[1]
    for r in result.rows:
        assert r.selected_layer == 1 and r.layer_passed
        assert r.n_layer_neurons == 2 * H
        assert r.oracle_dev == result.oracle_dev


def test_clustering_removes_exact_copies(result):
    for r in result.rows:
        if r.threshold is None:
            assert r.n_after_clustering == r.n_layer_neurons
            assert r.cc_dev == r.layer_dev  # the incremental probe is the reference
            continue
        # the copies collapse, the independent noise neurons do not
        assert r.n_after_clustering == r.n_layer_neurons - len(COPIED_UNITS)
        kept = set(r.clustered_neurons)
        assert len(kept) == r.n_after_clustering
        for u in COPIED_UNITS:  # exactly one of each copy pair survives
            assert len({u, H + u} & kept) == 1
        assert set(r.neurons) <= kept


def test_clustering_keeps_one_of_each_copy_pair(stores):
    res = run_pipeline(stores / "train", stores / "dev", None, grid=((3, 100),), thresholds=(0.3,))
    (r,) = res.rows
    # delta_neuron = 100: the first grid size passes, so check the clustered set via the sizes
    assert r.n_after_clustering == 2 * H - len(COPIED_UNITS)
    assert r.fs_passed and r.n_selected == grid_sizes(L * H, PIPELINE_SHARES)[0]
    assert math.isnan(r.test) and math.isnan(r.oracle_test)


def test_feature_selection_finds_the_planted_neurons(result):
    sizes = grid_sizes(L * H, PIPELINE_SHARES)
    for r in result.rows:
        assert set(PLANTED) <= set(r.neurons)
        assert r.fs_passed and r.n_selected in sizes and r.n_selected <= r.n_after_clustering
        assert r.dev > r.cc_dev * (1 - r.delta_neuron / 100)
        assert r.share_of_all == r.n_selected / (L * H)
        assert np.isclose(r.share_of_oracle, r.test / r.oracle_test)
        assert list(r.neurons) == sorted(r.neurons)


def test_json_round_trip(result, tmp_path):
    d = result.to_dict()
    text = json.dumps(d)
    back = PipelineResult.from_dict(json.loads(text))
    assert back.to_dict() == d
    assert back.rows == result.rows
    assert back.train == result.train
    path = tmp_path / "pipeline.json"
    path.write_text(text)
    assert load_result(path).to_dict() == d


def test_table_markdown(result):
    md = result.table_markdown()
    assert "| Oracle |" in md
    assert md.count("| none |") == 3 and md.count("| 0.3 |") == 3
    assert "(3, 1)" in md


def test_cli_writes_pipeline_json(stores, tmp_path, capsys):
    from redundancy.cli._pipeline import add_parser

    parser = argparse.ArgumentParser(prog="redundancy")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(
        [
            "pipeline",
            "--train",
            str(stores / "train"),
            "--dev",
            str(stores / "dev"),
            "--test",
            str(stores / "test"),
            "--out",
            str(out),
            "--grid",
            "3,1",
            "1,1",
            "--thresholds",
            "none,0.3",
            "--threads",
            "1",
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    res = load_result(out / "pipeline.json")
    assert res.grid == ((3.0, 1.0), (1.0, 1.0)) and res.thresholds == (None, 0.3)
    assert len(res.rows) == 4
    assert (out / "pipeline.md").read_text() == res.table_markdown()
    assert "| Oracle |" in capsys.readouterr().out


def test_cli_rejects_bad_grid():
    from redundancy.cli._pipeline import add_parser

    parser = argparse.ArgumentParser(prog="redundancy")
    add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["pipeline", "--train", "a", "--dev", "b", "--out", "c", "--grid", "3"])


def test_majority_baseline_recorded_and_beaten(result, stores):
    from redundancy.store import ActivationStore

    train, dev = ActivationStore.open(stores / "train"), ActivationStore.open(stores / "dev")
    names_tr, names_dv = train.label_names, dev.label_names
    majority = names_tr[int(np.bincount(train.labels).argmax())]
    expected = float(np.mean([names_dv[i] == majority for i in dev.labels]))
    assert result.baseline_dev == pytest.approx(expected)
    assert 0 < expected < 0.9
    assert all(r.dev > result.baseline_dev for r in result.rows)
    assert "majority-class dev" in result.table_markdown()
    assert "Warning" not in result.table_markdown()


def test_rows_at_the_majority_baseline_are_flagged(result):
    weak = dataclasses.replace(result, baseline_dev=max(r.dev for r in result.rows))
    assert "score no better on dev than always predicting the majority class" in weak.table_markdown()
    old = result.to_dict()
    del old["baseline_dev"]  # results written before the baseline was recorded
    assert np.isnan(PipelineResult.from_dict(old).baseline_dev)


def test_auto_ranking_is_chosen_on_dev_and_recorded(result):
    choice = result.ranking_choice
    assert choice["setting"] == "auto" and choice["source"] == "computed"
    assert choice["method"] == result.ranking_method == max(choice["scores"], key=choice["scores"].get)
    assert set(choice["scores"]) == {"paper", "group-lasso", "l1-path", "probeless"}


def test_a_given_neuron_order_orders_the_kept_neurons(stores):
    # a ranking of all neurons that puts the planted ones last among layer 1's: feature selection
    # must then keep the neurons in that order (a prefix of the kept ones, ordered by it)
    order = [i for i in range(L * H) if i not in PLANTED] + list(PLANTED)
    r = run_pipeline(
        stores / "train",
        stores / "dev",
        stores / "test",
        grid=((3.0, 1.0),),
        thresholds=(None,),
        seed=0,
        neuron_order=order,
        ranking_source={"method": "test-order", "reason": "given"},
    )
    row = r.rows[0]
    kept = sorted(row.clustered_neurons, key=order.index)
    assert sorted(row.neurons) == sorted(kept[: row.n_selected])
    assert r.ranking_method == "test-order" and r.ranking_choice["source"] == "given"
    with pytest.raises(ValueError, match="permutation"):
        run_pipeline(stores / "train", stores / "dev", neuron_order=[0, 1])
    paper = run_pipeline(
        stores / "train", stores / "dev", grid=((3.0, 1.0),), thresholds=(None,), ranking="paper"
    )
    assert paper.ranking_choice is None and paper.ranking_method == "paper"


def test_incremental_probes_from_the_probe_stage_are_scored_not_retrained(stores, tmp_path):
    """The probe stage's saved incremental probes (same template and seed) give the pipeline the
    incremental scores it would train itself (the families differ only in float order)."""
    from redundancy.probe import ElasticNetProbe, incremental_file, load_probe, run_task_redundancy

    probe = ElasticNetProbe(random_state=0)
    run_task_redundancy(
        stores / "train",
        stores / "dev",
        stores / "test",
        probe=probe,
        controls=False,
        ranking="paper",
        save_incremental=tmp_path / "inc",
    )
    given = [load_probe(tmp_path / "inc" / incremental_file(i)) for i in range(L)]
    kw = {"grid": ((3.0, 1.0),), "thresholds": (None,), "probe": probe, "ranking": "paper"}
    reused = run_pipeline(stores / "train", stores / "dev", stores / "test", incremental_probes=given, **kw)
    trained = run_pipeline(stores / "train", stores / "dev", stores / "test", **kw)
    np.testing.assert_allclose(reused.incremental_dev, trained.incremental_dev, atol=3 / 800)
    assert reused.rows[0].selected_layer == trained.rows[0].selected_layer
    assert reused.timings["incremental"] < trained.timings["incremental"]
    with pytest.raises(ValueError, match="incremental_probes"):
        run_pipeline(stores / "train", stores / "dev", incremental_probes=given[:1], **kw)
