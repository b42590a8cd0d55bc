"""Neuron rankings, the paper's grids, the minimal-size scan and the LayerSelector."""

from __future__ import annotations

import numpy as np
import pytest

from redundancy.select import (
    MINIMAL_SET_SHARES,
    PIPELINE_SHARES,
    LayerSelector,
    chunk_sizes,
    grid_sizes,
    rank_neurons,
    search_minimal_size,
    tolerance_target,
    weight_mass,
)


def neurox_top_neurons(weights: np.ndarray, percentage: float) -> set[int]:
    """NeuroX ``get_top_neurons`` transcribed (absolute weights; class-wise cumulative mass)."""
    weights = np.abs(weights)
    top: set[int] = set()
    for c in range(weights.shape[0]):
        total_mass = np.sum(weights[c, :])
        sort_idx = np.argsort(weights[c, :])[::-1]
        cum_sums = np.cumsum(weights[c, sort_idx])
        unselected = np.where(cum_sums >= total_mass * percentage)[0]
        selected = np.arange(cum_sums.shape[0]) if unselected.shape[0] == 0 else np.arange(unselected[0] + 1)
        top.update(int(i) for i in sort_idx[selected])
    return top


@pytest.mark.parametrize("stride", [10, 100])
def test_paper_ranking_matches_neurox_step_by_step(stride):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 60)) * rng.uniform(0.1, 3, size=60)
    order = rank_neurons(w, "paper", search_stride=stride)
    assert sorted(order.tolist()) == list(range(60))
    # after each step p, NeuroX's union of class-wise top neurons is exactly a prefix of our ordering
    for p in range(stride + 1):
        top = neurox_top_neurons(w, p / stride)
        assert set(order[: len(top)].tolist()) == top


def test_abs_ranking_and_planted_neurons_first():
    w = np.zeros((3, 10))
    w[:, 7] = [5.0, -4.0, 3.0]
    w[1, 2] = -2.0
    w[2, 4] = 0.1
    assert rank_neurons(w, "abs")[:3].tolist() == [7, 2, 4]
    assert rank_neurons(w, "paper")[:2].tolist() == [7, 2]  # class 1's second neuron enters early
    np.testing.assert_allclose(weight_mass(w)[[7, 2]], [12.0, 2.0])
    # all-zero neurons come last, by index
    assert rank_neurons(w, "paper")[-7:].tolist() == [0, 1, 3, 5, 6, 8, 9]


def test_paper_ranking_gives_every_class_its_best_neuron_early():
    # class 0 has huge weights everywhere; class 1 relies on neuron 9 only
    w = np.vstack([np.linspace(10, 20, 10), np.eye(10)[9] * 0.01])
    order = rank_neurons(w, "paper")
    assert 9 in order[:2].tolist()
    assert rank_neurons(w, "abs")[0] == 9  # neuron 9 also has the largest total here (20.01)


def test_ranking_errors():
    with pytest.raises(ValueError):
        rank_neurons(np.ones((2, 3)), "bogus")
    with pytest.raises(ValueError):
        rank_neurons(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError):
        rank_neurons(np.ones(3), search_stride=0)


def test_grids_follow_the_paper():
    assert len(PIPELINE_SHARES) == 27
    sizes = grid_sizes(9984, PIPELINE_SHARES)
    assert sizes[:5] == (9, 19, 29, 39, 49) and sizes[5] == 99 and sizes[-1] == 8985 and len(sizes) == 27
    assert len(MINIMAL_SET_SHARES) == 112
    fine = grid_sizes(2688, MINIMAL_SET_SHARES)
    assert fine[:4] == (2, 5, 8, 10) and fine[99] == 268 and fine[-1] == 2419
    assert grid_sizes(2688, PIPELINE_SHARES, max_size=100)[-1] <= 100
    assert grid_sizes(50, MINIMAL_SET_SHARES)[0] == 1  # int(0.02 * 50): shares giving 0 are skipped


def test_search_is_the_papers_linear_scan_in_any_chunking():
    sizes = [1, 2, 4, 8, 16, 32]
    score = {1: 0.5, 2: 0.91, 4: 0.89, 8: 0.95, 16: 0.97, 32: 0.99}
    calls = []

    def evaluate(ks):
        calls.append(list(ks))
        return [score[k] for k in ks]

    target = tolerance_target(0.96, 1.0)  # 0.9504
    assert search_minimal_size(sizes, evaluate, target).size == 16
    assert calls == [[1], [2], [4], [8], [16]]
    for chunk, budget in [(2, None), (4, None), (10, 20)]:
        calls.clear()
        out = search_minimal_size(sizes, evaluate, target, chunk=chunk, budget=budget)
        assert out.size == 16 and set(out.scores) >= {1, 2, 4, 8, 16}
    # strictly above: a score equal to the target does not pass
    assert search_minimal_size([1], lambda ks: [0.5], 0.5).size is None
    assert chunk_sizes([2, 5, 8, 400, 900], chunk=3, budget=1000) == [[2, 5, 8], [400], [900]]


def test_layer_selector():
    sel = LayerSelector(delta=3.0).fit([0.80, 0.93, 0.96, 0.97], oracle_score=0.97)
    assert sel.selected_layer_ == 2 and sel.passed_ and sel.target_ == pytest.approx(0.9409)
    none = LayerSelector(delta=0.0).fit([0.5, 0.6], oracle_score=0.9)
    assert none.selected_layer_ == 1 and not none.passed_
    assert LayerSelector().get_params() == {"delta": 3.0}
    with pytest.raises(ValueError):
        LayerSelector(delta=-1).fit([0.5], 0.5)
