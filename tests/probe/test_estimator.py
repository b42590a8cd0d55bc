"""ElasticNetProbe: planted rules, sparsity, agreement with scikit-learn, the paper recipe, families."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import ElasticNet, LogisticRegression
from sklearn.preprocessing import StandardScaler

from redundancy.probe import ElasticNetProbe, fit_probe_family, sklearn_equivalent
from redundancy.select import rank_neurons

PLANTED = {10, 13}


def saga(C, l1_ratio, **kw):
    """Elastic-net LogisticRegression across scikit-learn versions (``penalty`` is deprecated in 1.8)."""
    import sklearn

    major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
    extra = {} if (major, minor) >= (1, 8) else {"penalty": "elasticnet"}
    return LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", random_state=0, **extra, **kw)


def small_problem(seed=0, n=600, d=12, k=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=d)
    W = np.zeros((d, k))
    W[:3] = rng.normal(size=(3, k)) * 2
    y = (X @ W + rng.gumbel(size=(n, k))).argmax(1)
    return X, y


def test_planted_rule_is_learned_and_its_neurons_ranked_first(planted_xy):
    X, y, Xd, yd = planted_xy
    probe = ElasticNetProbe().fit(X, y, Xd, yd)
    assert probe is not None and probe.solver_settings_["method"] == "fista"
    assert probe.score(Xd, yd) > 0.97
    for method in ("paper", "abs"):
        assert set(rank_neurons(probe.scaled_coef_, method)[:2].tolist()) == PLANTED
    # the minibatch path learns it as well (more steps: the data are small)
    mb = ElasticNetProbe(batch_size=128, lr=0.02, max_epochs=20).fit(X, y, Xd, yd)
    assert mb.solver_settings_["method"] == "adam-prox" and mb.score(Xd, yd) > 0.95
    assert set(rank_neurons(mb.scaled_coef_, "paper")[:2].tolist()) == PLANTED


def test_l1_drives_irrelevant_weights_to_exactly_zero(planted_xy):
    X, y, _, _ = planted_xy
    probe = ElasticNetProbe(l1=2e-2, l2=1e-4, early_stopping=False).fit(X, y)
    mass = np.abs(probe.coef_).sum(0)
    assert set(np.flatnonzero(mass).tolist()) == PLANTED
    assert probe.score(X, y) > 0.95
    dense = ElasticNetProbe(l1=0.0, l2=1e-4, early_stopping=False).fit(X, y)
    assert np.count_nonzero(np.abs(dense.coef_).sum(0)) == X.shape[1]


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_solver_agrees_with_sklearn_saga(seed):
    X, y = small_problem(seed)
    l1, l2 = 2e-3, 1e-3
    eq = sklearn_equivalent(l1, l2, len(y))
    Xs = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = saga(eq["C"], eq["l1_ratio"], max_iter=20000, tol=1e-8).fit(Xs, y)
    ours = ElasticNetProbe(l1=l1, l2=l2).fit(X, y)  # defaults: full batch on small data
    assert np.mean(sk.predict(Xs) == ours.predict(X)) >= 0.99
    np.testing.assert_allclose(ours.scaled_coef_, sk.coef_, atol=5e-3)
    assert np.array_equal(ours.scaled_coef_ == 0, sk.coef_ == 0)
    # the minibatch path (proximal Adam) agrees on predictions too
    mb = ElasticNetProbe(l1=l1, l2=l2, batch_size=64, lr=0.05, max_epochs=200, early_stopping=False).fit(X, y)
    assert np.mean(sk.predict(Xs) == mb.predict(X)) >= 0.99
    # unstandardised: the same objective on raw features
    raw = ElasticNetProbe(l1=l1, l2=l2, standardize=False, max_iter=5000).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        skr = saga(eq["C"], eq["l1_ratio"], max_iter=50000, tol=1e-9).fit(X, y)
    assert np.mean(skr.predict(X) == raw.predict(X)) >= 0.99


def test_regression_path_agrees_with_sklearn_elastic_net():
    X, _ = small_problem(3)
    rng = np.random.default_rng(3)
    y = X @ np.r_[rng.normal(size=4), np.zeros(8)] + 0.3 * rng.normal(size=len(X))
    l1, l2 = 0.05, 0.02
    eq = sklearn_equivalent(l1, l2, len(y), task="regression")
    Xs = StandardScaler().fit_transform(X)
    sk = ElasticNet(alpha=eq["alpha"], l1_ratio=eq["l1_ratio"], tol=1e-10, max_iter=100000).fit(Xs, y)
    ours = ElasticNetProbe(l1=l1, l2=l2, task="regression").fit(X, y)
    np.testing.assert_allclose(ours.scaled_coef_[0], sk.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.predict(X), sk.predict(Xs), atol=1e-4)
    assert ours.score(X, y) > 0.8 and ours.classes_ is None


def test_sklearn_api_contract():
    X, y = small_problem()
    names = np.array(["a", "b", "c"])[y]
    probe = ElasticNetProbe(l1=1e-3, random_state=3)
    assert probe.get_params()["random_state"] == 3 and clone(probe).get_params() == probe.get_params()
    assert probe.fit(X, names) is probe
    assert probe.classes_.tolist() == ["a", "b", "c"] and probe.coef_.shape == (3, 12)
    assert probe.intercept_.shape == (3,) and set(probe.predict(X[:5])) <= {"a", "b", "c"}
    np.testing.assert_allclose(probe.predict_proba(X[:7]).sum(1), 1.0)
    np.testing.assert_allclose(
        probe.decision_function(X[:3]), X[:3] @ probe.coef_.T + probe.intercept_, rtol=1e-5
    )
    # dev labels never seen in training count as errors, not a crash
    dev = names.astype(object)
    dev[:30] = "zzz"
    ElasticNetProbe(batch_size=100, max_epochs=3).fit(X, names, X, dev)
    right = probe.predict(X)[30:] == names[30:]
    assert probe.score(X, dev) == pytest.approx(right.sum() / len(X))
    for bad in (
        dict(l1=-1.0),
        dict(solver="sgd"),
        dict(batch_size=0),
        dict(solver="paper", early_stopping=True),
    ):
        with pytest.raises(ValueError):
            ElasticNetProbe(**bad).fit(X, y)
    with pytest.raises(ValueError):
        ElasticNetProbe().predict(X)
    with pytest.raises(ValueError):
        ElasticNetProbe().fit(X, np.zeros(len(X), dtype=int))
    balanced = ElasticNetProbe(class_weight="balanced").fit(X, y)
    assert balanced.solver_settings_["class_weight"] == "balanced"


def test_paper_solver_recipe_is_recorded_and_seeded():
    X, y = small_problem()
    a = ElasticNetProbe(solver="paper").fit(X, y)
    s = a.solver_settings_
    assert (s["lr"], s["batch_size"], s["max_epochs"], s["shuffle"], s["standardize"], s["l2_form"]) == (
        1e-3,
        128,
        10,
        False,
        False,
        "unsquared",
    )
    assert a.n_iter_ == 10 * int(np.ceil(len(X) / 128))
    b = ElasticNetProbe(solver="paper").fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    c = ElasticNetProbe(solver="paper", random_state=1).fit(X, y)
    assert not np.array_equal(a.coef_, c.coef_)
    assert np.array_equal(a.coef_, a.scaled_coef_)  # raw features: nothing rescaled


def test_family_training_equals_training_one_by_one():
    X, y = small_problem(4, n=900)
    probe = ElasticNetProbe(batch_size=64, max_epochs=4, lr=0.01)
    # layer-like ranges (blocks of 4) and nested prefixes (merged, masked blocks)
    families = [
        [[(0, 4)], [(4, 8)], [(8, 12)], [(0, 8)], [(0, 12)]],
        [[(0, k)] for k in (1, 2, 3, 5, 7, 12)],
    ]
    for ranges in families:
        together = fit_probe_family(probe, X, y, ranges, X, y)
        for fitted, r in zip(together, ranges, strict=True):
            cols = np.concatenate([np.arange(a, b) for a, b in r])
            alone = clone(probe).fit(X[:, cols], y, X[:, cols], y)
            np.testing.assert_allclose(fitted.coef_, alone.coef_, atol=1e-5)
            np.testing.assert_allclose(fitted.intercept_, alone.intercept_, atol=1e-5)
            assert fitted.n_iter_ == alone.n_iter_


def test_family_over_gathered_columns_equals_the_materialised_matrix():
    """``columns=``: the family sees X[:, columns] gathered batch by batch (here two neuron orders
    side by side, one repeating a column), exactly as if that matrix had been built."""
    X, y = small_problem(5, n=900)
    X = X.astype(np.float32)
    rng = np.random.default_rng(0)
    columns = np.concatenate([rng.permutation(12)[:6], rng.permutation(12)[:5]])
    ranges = [[(0, k)] for k in (2, 4, 6)] + [[(6, 6 + k)] for k in (1, 5)]
    probe = ElasticNetProbe(batch_size=64, max_epochs=3, lr=0.01)
    gathered = fit_probe_family(probe, X, y, ranges, X, y, columns=columns)
    built = fit_probe_family(probe, X[:, columns], y, ranges, X[:, columns], y)
    for a, b in zip(gathered, built, strict=True):
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)
        np.testing.assert_allclose(a.intercept_, b.intercept_, atol=1e-6)
        assert a.n_iter_ == b.n_iter_
    with pytest.raises(ValueError, match="columns"):
        fit_probe_family(probe, X, y, ranges, X, y, columns=np.array([0, 12]))


def test_family_reuses_given_column_statistics_exactly():
    """``stats=`` (as the solver computes them) gives bit-identical probes; wrong shapes are refused."""
    import torch

    from redundancy.probe._fast import activations_tensor, column_stats

    X, y = small_problem(6, n=700)
    X = X.astype(np.float32)
    ranges = [[(0, 4)], [(4, 12)], [(0, 12)]]
    probe = ElasticNetProbe(batch_size=64, max_epochs=2, lr=0.01)
    mean, std = (t.numpy() for t in column_stats(activations_tensor(X), True))
    given = fit_probe_family(probe, X, y, ranges, X, y, stats=(mean, std))
    computed = fit_probe_family(probe, X, y, ranges, X, y)
    for a, b in zip(given, computed, strict=True):
        assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.intercept_, b.intercept_)
    with pytest.raises(ValueError, match="stats"):
        fit_probe_family(probe, X, y, ranges, X, y, stats=(mean[:5], std[:5]))
    # a column's statistics do not depend on the other columns: indexing equals recomputing
    cols = np.array([7, 1, 3])
    m2, s2 = column_stats(activations_tensor(np.ascontiguousarray(X[:, cols])), True)
    assert torch.equal(torch.from_numpy(mean[cols]), m2) and torch.equal(torch.from_numpy(std[cols]), s2)


def test_merge_cost_and_consecutive_spans():
    import torch

    from redundancy.probe._fast import _layout, _span, merge_cost

    assert _span(torch.tensor([3, 4, 5])) == (3, 6)
    assert _span(torch.tensor([0, 2])) is None
    assert merge_cost(512, 49) > merge_cost(512, 400) >= 16
    # nested prefixes: every block's probes are consecutive (sliced, not scattered)
    lay = _layout([[(0, k)] for k in (2, 5, 40, 400)], 400, max_waste=64)
    assert all(s is not None for s in lay.spans)
    assert [b for b, _ in lay.bounds][0] == 0 and lay.bounds[-1][1] == 400


@pytest.mark.parametrize("seed", range(5))
def test_soft_threshold_as_clamp_equals_the_textbook_form(seed):
    """The prox step p - clamp(p, -t, t) is sign(p) max(|p| - t, 0), exactly."""
    import torch

    g = torch.Generator().manual_seed(seed)
    p = torch.randn(1000, generator=g) * 3
    t = torch.rand(1000, generator=g) * 2
    p[:10] = t[:10]  # on the threshold
    p[10:20] = -t[10:20]
    expected = p.sign() * (p.abs() - t).clamp(min=0)
    got = p - torch.clamp(p, min=-t, max=t)
    assert torch.equal(got, expected)
