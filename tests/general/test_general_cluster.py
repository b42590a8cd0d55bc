"""Correlation clustering: SciPy's average linkage, planted duplicates, constant neurons, the sweep."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from redundancy.general import (
    CorrelationClusterer,
    NeuronStats,
    correlation_distance,
    correlation_linkage,
    cut_tree,
    default_thresholds,
    pick_representatives,
    threshold_sweep,
)

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)


def structured(seed: int, n_items: int = 80, n_neurons: int = 24, groups: int = 5) -> np.ndarray:
    """Activations in which neurons come in noisy groups of a shared factor (some sign-flipped)."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_items, groups))
    member = rng.integers(0, groups, size=n_neurons)
    noise = rng.uniform(0.1, 1.5, size=n_neurons)
    sign = rng.choice([-1.0, 1.0], size=n_neurons)
    return sign * factors[:, member] + noise * rng.normal(size=(n_items, n_neurons))


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Same clusters, whatever their numbering."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), n_neurons=st.integers(2, 30))
def test_equals_scipy_average_linkage(seed, n_neurons):
    corr = np.corrcoef(structured(seed, n_neurons=n_neurons).T)
    dist = squareform(1.0 - np.abs(corr), checks=False)
    ref = linkage(dist, method="average")
    ours = correlation_linkage(corr)
    np.testing.assert_allclose(ours[:, 2], ref[:, 2], atol=1e-12)  # merge heights
    np.testing.assert_array_equal(ours[:, 3], ref[:, 3])  # merged cluster sizes
    for t in THRESHOLDS:
        want = fcluster(ref, t, criterion="distance")
        got = CorrelationClusterer(threshold=t).fit(corr).labels_
        assert same_partition(got, want), t


def test_in_place_linkage_equals_fastcluster_public_call():
    import fastcluster

    from redundancy.general._cluster import _average_linkage

    dist = correlation_distance(np.corrcoef(structured(2, n_neurons=40).T))
    want = fastcluster.linkage(dist, method="average", preserve_input=True)
    np.testing.assert_array_equal(_average_linkage(dist.copy()), want)


def test_condensed_distance_is_one_minus_abs_r():
    corr = np.corrcoef(structured(1).T)
    np.testing.assert_allclose(
        correlation_distance(corr), squareform(1 - np.abs(corr), checks=False), atol=1e-15
    )
    with pytest.raises(ValueError, match="symmetric"):
        bad = corr.copy()
        bad[0, 1] += 0.1
        correlation_distance(bad)
    with pytest.raises(ValueError, match="NaN"):
        bad = corr.copy()
        bad[2, 3] = bad[3, 2] = np.nan
        correlation_distance(bad)
    with pytest.raises(ValueError, match="square"):
        correlation_distance(corr[:3])


def test_planted_duplicates_land_in_one_cluster():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12))
    copies = {12: 0, 13: 0, 14: 5, 15: 7}
    x = np.column_stack(
        [
            x,
            3.0 * x[:, 0] + 1.0,  # exact affine copy
            -x[:, 0] + 0.05 * rng.normal(size=300),  # noisy negated copy
            x[:, 5] + 0.1 * rng.normal(size=300),
            x[:, 7],  # exact duplicate
        ]
    )
    corr = NeuronStats(1, 16).update(x).compute().correlation
    cc = CorrelationClusterer(threshold=0.3).fit(corr)
    for dup, orig in copies.items():
        assert cc.labels_[dup] == cc.labels_[orig]
    assert cc.n_clusters_ == 12
    assert cc.redundant_share_ == pytest.approx(1 - 12 / 16)
    exact = CorrelationClusterer(threshold=0.0).fit(corr)  # only |r| = 1 pairs merge at t = 0
    assert exact.labels_[15] == exact.labels_[7] and exact.labels_[12] == exact.labels_[0]
    assert exact.labels_[13] != exact.labels_[0] and exact.n_clusters_ == 14


def test_constant_neurons_are_singletons_until_t_is_one():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 6))
    x[:, 2] = 4.0
    x[:, 4] = 4.0  # two identical constants: still not "correlated"
    x[:, 5] = x[:, 0]
    res = NeuronStats(2, 3).update(x).compute()
    assert res.zero_variance_indices.tolist() == [2, 4]
    points = threshold_sweep(res.correlation, (0.5, 0.99, 1.0), layer_of=np.arange(6) // 3)
    labels = cut_tree(correlation_linkage(res.correlation), 0.99)
    assert np.sum(labels == labels[2]) == 1 and np.sum(labels == labels[4]) == 1
    assert points[0].n_clusters >= 5 and points[-1].n_clusters == 1


def test_sweep_equals_one_clusterer_per_threshold():
    x = structured(3, n_neurons=30)
    corr = np.corrcoef(x.T)
    layer_of = np.arange(30) // 10
    for how in ("random", "central"):
        points = threshold_sweep(corr, THRESHOLDS, layer_of=layer_of, representative=how, random_state=7)
        assert [p.threshold for p in points] == list(THRESHOLDS)
        for p in points:
            cc = CorrelationClusterer(threshold=p.threshold, representative=how, random_state=7)
            cc.fit(corr, layer_of=layer_of)
            assert p.n_clusters == cc.n_clusters_
            assert list(p.representatives) == cc.representatives_.tolist()
            assert p.redundant_share == pytest.approx(1 - cc.n_clusters_ / 30)
            # Every cluster is represented by one of its own members.
            assert sorted(cc.labels_[list(p.representatives)].tolist()) == list(range(cc.n_clusters_))
            # Per-layer shares, weighted by layer size, average to the global share.
            assert np.mean(p.redundant_share_by_layer) == pytest.approx(p.redundant_share)
            assert sum(p.span_histogram) == p.n_clusters and len(p.span_histogram) == 3
            assert p.largest_cluster == np.bincount(cc.labels_).max()
        assert cc.sweep(THRESHOLDS, corr) == points
    shares = [p.redundant_share for p in points]
    assert shares == sorted(shares) and points[-1].n_clusters == 1


def test_span_histogram_by_hand():
    # Neurons 0 (layer 0), 3 (layer 1) and 5 (layer 2) are copies; 1 and 2 (layer 0) are copies.
    rng = np.random.default_rng(4)
    base = rng.normal(size=(100, 4))
    cols = [base[:, 0], base[:, 1], base[:, 1] * 2, base[:, 0] + 1, base[:, 2], -base[:, 0]]
    corr = np.corrcoef(np.column_stack(cols).T)
    (p,) = threshold_sweep(corr, (0.1,), layer_of=[0, 0, 0, 1, 1, 2])
    assert p.n_clusters == 3  # {0, 3, 5}, {1, 2}, {4}
    assert p.span_histogram == (2, 0, 1)  # {1, 2} and {4} span one layer; {0, 3, 5} spans three


def test_random_representatives_are_seeded():
    corr = np.corrcoef(structured(5, n_neurons=40, groups=3).T)
    a = CorrelationClusterer(0.8, random_state=1).fit(corr).representatives_
    b = CorrelationClusterer(0.8, random_state=1).fit(corr).representatives_
    others = {
        tuple(CorrelationClusterer(0.8, random_state=s).fit(corr).representatives_) for s in range(2, 8)
    }
    assert a.tolist() == b.tolist()
    assert len(others | {tuple(a)}) > 1


def test_random_representative_is_uniform_within_a_cluster():
    labels = np.array([0, 0, 0, 0, 1])
    counts = np.zeros(4)
    for seed in range(400):
        counts[pick_representatives(labels, random_state=seed)[0]] += 1
    assert counts.min() > 60  # each of the 4 members is picked about 100 times


def test_central_representative_maximises_mean_abs_correlation():
    corr = np.corrcoef(structured(6, n_neurons=30, groups=3).T)
    cc = CorrelationClusterer(0.7, representative="central").fit(corr)
    for cluster, rep in enumerate(cc.representatives_):
        members = np.flatnonzero(cc.labels_ == cluster)
        scores = np.abs(corr[np.ix_(members, members)]).mean(axis=1)
        assert rep == members[np.argmax(scores)]
    with pytest.raises(ValueError, match="needs the correlation"):
        pick_representatives(cc.labels_, "central")


def test_threshold_extremes_and_default_grid():
    corr = np.corrcoef(structured(8).T)
    assert CorrelationClusterer(1.0).fit(corr).n_clusters_ == 1
    assert CorrelationClusterer(0.0).fit(corr).n_clusters_ == 24
    grid = default_thresholds()
    assert len(grid) == 21 and grid[0] == 0.0 and grid[-1] == 1.0 and 0.3 in grid
    assert default_thresholds(0.3) == (0.0, 0.3, 0.6, 0.9, 1.0)
    single = CorrelationClusterer().fit(np.ones((1, 1)))
    assert single.n_clusters_ == 1 and single.representatives_.tolist() == [0]


@pytest.mark.parametrize(
    "params, match",
    [
        ({"threshold": -0.1}, "threshold"),
        ({"threshold": "0.3"}, "threshold"),
        ({"representative": "first"}, "representative"),
        ({"random_state": "x"}, "random_state"),
    ],
)
def test_invalid_parameters_are_refused_at_fit(params, match):
    cc = CorrelationClusterer(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        cc.fit(np.eye(3))


def test_estimator_contract():
    cc = CorrelationClusterer(0.4, representative="central", random_state=3)
    assert cc.get_params() == {"threshold": 0.4, "representative": "central", "random_state": 3}
    assert cc.set_params(threshold=0.2).threshold == 0.2
    with pytest.raises(ValueError, match="not fitted"):
        CorrelationClusterer().sweep((0.3,))
