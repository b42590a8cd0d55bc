"""Intervals on probe scores and the selectivity control task, on the planted stores."""

import numpy as np
import pytest

from redundancy.probe import (
    ElasticNetProbe,
    TaskRedundancyResult,
    control_task,
    item_words,
    run_task_redundancy,
    selectivity,
    split_replicates,
)


def _words(task, n_types=40, seed=0):
    """Word forms that carry no information about the label: a type drawn at random per item."""
    rng = np.random.default_rng(seed)
    return {
        s: [f"w{i}" for i in rng.integers(0, n_types, sp.y.size)]
        for s, sp in (("train", task.train), ("dev", task.dev), ("test", task.test))
    }


def test_probe_results_carry_a_test_interval_around_their_score(task):
    r = run_task_redundancy(
        task, probe=ElasticNetProbe(max_epochs=3), controls=False, rankings=("abs",), ranking="abs"
    )
    for p in (r.oracle, *r.layerwise, r.minimal.result):
        iv = p.test_interval
        assert iv is not None and iv.n_boot == 100 and iv.unit == "sentence"
        assert iv.estimate == pytest.approx(p.test_score, abs=1e-12)
        assert iv.low <= iv.estimate <= iv.high
    # 800 test items in 160 sentences: the interval of a ~95 % accuracy is a few points wide, not 0
    width = r.oracle.test_interval.high - r.oracle.test_interval.low
    assert 0.005 < width < 0.1
    back = TaskRedundancyResult.from_dict(r.to_dict())
    assert back.oracle.test_interval == r.oracle.test_interval
    assert "test_replicates" not in r.to_dict()["oracle"]


def test_replicates_are_paired_across_probes(task):
    """The same resampled sentences for every probe: identical predictions give identical replicates."""
    pred = np.zeros(task.test.y.size, dtype=np.int64)
    a = split_replicates(task, "test", pred)[1]
    b = split_replicates(task, "test", pred.copy())[1]
    assert np.array_equal(a, b) and a.std() > 0


def test_control_task_labels_follow_word_types(task):
    words = _words(task)
    ctrl = control_task(task, words, seed=3)
    labels = {}
    for s in ("train", "dev", "test"):
        sp = getattr(ctrl, s)
        for w, y in zip(words[s], sp.y.tolist(), strict=True):
            assert labels.setdefault(w, y) == y
    assert ctrl.metric == "accuracy" and ctrl.bootstrap is None
    assert ctrl.X_train is task.X_train  # the activations are shared, not copied
    with pytest.raises(ValueError, match="one word per labelled item"):
        control_task(task, {**words, "dev": words["dev"][:-1]})


def test_selectivity_of_a_rule_on_neurons_is_high_and_of_memorised_types_low(task):
    """The planted label is a linear rule on the neurons, the words are random: the control task can
    only be solved by memorising 40 types from activations that do not encode them, so control
    accuracy stays near the majority share and selectivity is large."""
    probe = ElasticNetProbe(max_epochs=3)
    r = run_task_redundancy(
        task, probe=probe, controls=False, rankings=("abs",), ranking="abs", control_words=_words(task)
    )
    sel = r.selectivity
    names = {row.name for row in sel.rows}
    assert {"oracle", "minimal", "layer-0", "layer-1", "layer-2"} <= names
    oracle = sel.row("oracle")
    assert oracle.task_accuracy == pytest.approx(r.oracle.test["accuracy"])
    majority = np.bincount(control_task(task, _words(task)).test.y).max() / task.test.y.size
    assert oracle.control_accuracy < majority + 0.05
    assert oracle.selectivity > 0.4
    assert sel.row("layer-1").selectivity > sel.row("layer-0").selectivity + 0.3  # the rule is on layer 1
    back = TaskRedundancyResult.from_dict(r.to_dict())
    assert back.selectivity.row("oracle").selectivity == pytest.approx(oracle.selectivity)


def test_a_control_task_missing_some_classes_in_train_is_scored_by_class_id(task):
    """Words that name the planted label make the control task a relabelling of the task, about as
    easy to learn; with 4 word types drawing from 4 classes, some control class never occurs in
    train, so a probe's class *indices* are not the class *ids* it must be scored by (CCG's control
    task scored 0 % that way, its 294 classes drawn over few types)."""
    splits = (("train", task.train), ("dev", task.dev), ("test", task.test))
    words = {s: [f"w{int(v)}" for v in sp.y] for s, sp in splits}
    present = np.unique(control_task(task, words, seed=0).train.y)
    assert present.max() >= present.size  # ids with gaps: indices into classes_ differ from ids
    r = run_task_redundancy(
        task,
        probe=ElasticNetProbe(max_epochs=3),
        controls=False,
        rankings=("abs",),
        ranking="abs",
        control_words=words,
        control_seed=0,
    )
    oracle = r.selectivity.row("oracle")
    assert oracle.control_accuracy > 0.9 * oracle.task_accuracy


def test_item_words_names_the_missing_item():
    from toy import token_task

    data = token_task()
    assert item_words(data, np.array([0, 1]), np.array([1, 2])) == ["unbelievable", "Montreal"]
    with pytest.raises(ValueError, match="sentence 5, word 3"):
        item_words(data, np.array([5]), np.array([3]))


def test_selectivity_needs_words_for_every_split(task):
    words = _words(task)
    del words["test"]
    with pytest.raises(ValueError, match="test needs one word"):
        selectivity(task, ElasticNetProbe(max_epochs=1), words, [])
