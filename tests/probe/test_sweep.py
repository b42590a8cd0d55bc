"""The general sweep with task accuracy: probes on each threshold's representatives against the oracle."""

import numpy as np
import pytest

from redundancy.probe import (
    ElasticNetProbe,
    SweepAccuracy,
    layer_probes,
    sweep_accuracy,
)


def test_representatives_that_keep_the_rule_keep_the_score_and_others_lose_it(task):
    """The label is a rule on neurons 10 and 13 (layer 1, units 2 and 5): a threshold whose
    representatives keep both stays at the oracle, one that drops them falls to chance."""
    probe = ElasticNetProbe(max_epochs=3, random_state=0)
    oracle = layer_probes(task, probe).oracle
    points = [(0.9, [0, 1, 20]), (0.1, np.arange(24)), (0.5, [3, 10, 13, 17])]
    sw = sweep_accuracy(task, probe, points, oracle, representative="random")
    assert [r.threshold for r in sw.rows] == [0.1, 0.5, 0.9]
    assert [r.n_kept for r in sw.rows] == [24, 4, 3]
    assert sw.rows[1].redundant_share == pytest.approx(20 / 24)
    full, rule, none = sw.rows
    assert full.share_of_oracle == pytest.approx(full.test / oracle.test_score)
    assert full.dev == pytest.approx(oracle.dev_score, abs=0.02)
    assert rule.dev > 0.99 * oracle.dev_score and rule.share_of_oracle > 0.98
    assert none.dev < 0.7 * oracle.dev_score
    assert sw.largest_within(1.0) is rule and sw.largest_within(2.0) is rule
    for r in sw.rows:  # paired with the oracle's replicates
        assert r.share_interval.low <= r.share_of_oracle <= r.share_interval.high
        assert r.test_interval.low <= r.test <= r.test_interval.high
    back = SweepAccuracy.from_dict(sw.to_dict())
    assert back.to_dict() == sw.to_dict() and back.largest_within(1.0).threshold == 0.5
    assert sw.summary()["within_1%"]["threshold"] == 0.5


def test_nothing_within_tolerance_is_none_and_bad_representatives_are_refused(task):
    probe = ElasticNetProbe(max_epochs=2, random_state=0)
    oracle = layer_probes(task, probe).oracle
    sw = sweep_accuracy(task, probe, [(0.9, [0, 1])], oracle)
    assert sw.largest_within(1.0) is None and sw.summary()["within_1%"] is None
    with pytest.raises(ValueError, match="distinct neuron ids in \\[0, 24\\)"):
        sweep_accuracy(task, probe, [(0.3, [0, 24])], oracle)
    with pytest.raises(ValueError, match="threshold 0.3"):
        sweep_accuracy(task, probe, [(0.3, [2, 2])], oracle)
