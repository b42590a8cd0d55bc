"""Path entry orders and NeuroX's probe-free ranking: known answers, brute force, NeuroX's own code path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from redundancy.select import RANKING_METHODS, RANKINGS, entry_ranking, pairwise_spread, probeless_ranking


def _neurox_overall_ranking(X, y):
    """NeuroX ``probeless.get_mean_vectors`` + ``get_overall_ranking``, as written there."""
    by_label = {}
    for i in range(y.size):
        by_label.setdefault(y[i], []).append(X[i])
    means = [np.mean(v, axis=0) for v in by_label.values()]
    overall = np.zeros_like(means[0])
    for a, b in itertools.combinations(means, 2):
        overall += np.abs(a - b)
    return np.argsort(overall)[::-1].tolist()


def test_neurox_example():
    # NeuroX's own test: neuron 0 follows the label, neuron 1 partly, neuron 2 not at all
    X = np.array([[-1, -1, 0], [-1, 0, 0], [1, 1, 0], [1, 0, 0]], dtype=float)
    y = np.array([0, 0, 1, 1])
    means = np.stack([X[y == c].mean(0) for c in (0, 1)])
    assert probeless_ranking(means).tolist() == [0, 1, 2] == _neurox_overall_ranking(X, y)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_probeless_equals_neurox_on_random_data(n_classes, n_neurons, seed):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, 40)])
    X = rng.normal(size=(y.size, n_neurons))
    means = np.stack([X[y == c].mean(0) for c in range(n_classes)])
    assert probeless_ranking(means).tolist() == _neurox_overall_ranking(X, y)  # continuous: no ties


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 7), st.integers(1, 9)), elements=st.floats(-1e3, 1e3)))
def test_pairwise_spread_is_the_sum_over_pairs(m):
    brute = np.zeros(m.shape[1])
    for a, b in itertools.combinations(range(m.shape[0]), 2):
        brute += np.abs(m[a] - m[b])
    np.testing.assert_allclose(pairwise_spread(m), brute, rtol=1e-9, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_entry_ranking_is_a_permutation_that_respects_entry(n, seed):
    rng = np.random.default_rng(seed)
    entry = rng.integers(-1, 5, n)
    strength = rng.normal(size=n)
    order = entry_ranking(entry, strength)
    assert sorted(order.tolist()) == list(range(n))
    pos = np.empty(n, dtype=int)
    pos[order] = np.arange(n)
    for i in range(n):
        for j in range(n):
            if entry[i] >= 0 and (entry[j] < 0 or entry[i] < entry[j]):
                assert pos[i] < pos[j]  # earlier entry first; never-entered last
            if entry[i] == entry[j] and strength[i] > strength[j]:
                assert pos[i] < pos[j]  # ties by strength


def test_entry_ranking_refuses_bad_input():
    with pytest.raises(ValueError, match="one length"):
        entry_ranking([0, 1], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        entry_ranking([0, 1], [1.0, np.nan])
    with pytest.raises(ValueError, match="NaN"):
        pairwise_spread([[0.0, np.inf]])


def test_ranking_names():
    assert RANKINGS == ("paper", "group-lasso", "l1-path", "probeless")
    assert RANKING_METHODS[0] == "auto" and set(RANKINGS) < set(RANKING_METHODS) and "abs" in RANKING_METHODS
