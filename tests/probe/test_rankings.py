"""The rankings of the probe stage: the path enters neurons in the order of their signal, copies
of an entered neuron add nothing, "auto" picks the ranking with the best dev curve, offline ablation."""

from __future__ import annotations

import numpy as np
import pytest

from redundancy.probe import PathSettings, load_probe_task, path_ranking, run_task_redundancy
from redundancy.probe._path import fit_path
from redundancy.select import entry_ranking

PLANTED = {10, 13}  # tests/synthetic.py via conftest's planted_stores: layer 1, units 2 and 5


def _signal_data(n=6000, seed=0):
    """y depends strongly on x0, weakly on x1; x2 is a noisy copy of x0; x3.. are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12)).astype(np.float32)
    X[:, 2] = X[:, 0] + rng.normal(size=n)  # correlated 0.7 with x0, no signal of its own
    logit = 3.0 * X[:, 0] + 0.8 * X[:, 1]
    y = (logit + rng.logistic(size=n) > 0).astype(np.int64)
    return X, y


@pytest.mark.parametrize("group", [True, False])
def test_path_enters_by_signal_and_not_the_copy_first(group):
    X, y = _signal_data()
    out = fit_path(
        X,
        y,
        n_outputs=2,
        regression=False,
        group=group,
        l2=1e-5,
        lr=0.1,
        batch_size=512,
        epochs=20,
        n_lambdas=30,
    )
    order = entry_ranking(out.entry, out.strength)
    # the strong signal first, then the weak one, and only then the copy of the first (at the
    # optimum with x0 in, the copy's gradient is x0's over sqrt(2): below the penalty); enough
    # steps per penalty value for the probe to settle there (20 epochs of these 6,000 rows)
    assert order[:3].tolist() == [0, 1, 2]
    assert np.all(np.diff(out.lambdas) < 0) and out.n_active[0] <= 2
    assert out.entry[3:].min() > out.entry[1] or (out.entry[3:] < 0).any()  # noise enters after


def test_path_ranking_of_the_planted_task(planted_stores):
    task = load_probe_task(planted_stores / "train", planted_stores / "dev")
    order, out = path_ranking(task, group=True, settings=PathSettings(max_rows=None))
    assert set(order[:2].tolist()) == PLANTED and sorted(order.tolist()) == list(range(task.n_neurons))
    cols = np.array([12, 10, 3, 13])
    sub, _ = path_ranking(task, group=True, columns=cols)
    assert set(sub[:2].tolist()) == PLANTED and sorted(sub.tolist()) == sorted(cols.tolist())


@pytest.fixture(scope="module")
def compared(planted_stores):
    return run_task_redundancy(
        planted_stores / "train", planted_stores / "dev", planted_stores / "test", n_random=5, probe_seeds=0
    )


def test_auto_picks_the_best_dev_curve_and_reports_every_ranking(compared):
    r, c = compared, compared.controls
    assert set(r.rankings) == {"paper", "group-lasso", "l1-path", "probeless"}
    scores = r.ranking_choice["scores"]
    assert r.ranking_choice["setting"] == "auto" and r.ranking_method == max(scores, key=scores.get)
    assert r.ranking == r.rankings[r.ranking_method] and r.minimal.ranking_method == r.ranking_method
    for rc in c.rankings:
        assert rc.choice_score == pytest.approx(scores[rc.method])
        assert rc.choice_score == pytest.approx(np.mean(rc.top.dev_mean[: len(rc.top.dev_mean)]), abs=0.05)
        assert rc.bottom.sizes == rc.top.sizes or rc.method == r.ranking_method
    assert len(c.random.seeds) == 5
    # the planted neurons first in the chosen ranking: its top-2 beats random by far
    i = c.sizes.index(2) if 2 in c.sizes else 0
    assert c.top.dev_mean[i] > c.random.dev_mean[i] + 0.3


def test_offline_ablation_of_the_planted_neurons_hurts_more_than_random(compared):
    c = compared.controls
    assert c.ablation_sizes and c.ablation_intact > 0.9
    chosen = next(rc for rc in c.rankings if rc.method == compared.ranking_method)
    assert chosen.ablation.test_mean[0] < c.ablation_random.test_mean[0] - 0.3  # planted ablated: chance


def test_paper_ranking_is_the_reference(planted_stores):
    task = load_probe_task(planted_stores / "train", planted_stores / "dev", planted_stores / "test")
    r = run_task_redundancy(task, ranking="paper", rankings=(), controls=False, probe_seeds=0)
    assert r.ranking_method == "paper" and set(r.rankings) == {"paper"}
    assert r.ranking_choice["reason"] == "ranking = 'paper' was asked for"
    with pytest.raises(ValueError, match="ranking must be one of"):
        run_task_redundancy(task, ranking="nope", controls=False)


def test_class_means_streams_exactly():
    from redundancy.probe import class_means

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40_000, 7)).astype(np.float32)  # several chunks of 16,384 rows
    y = rng.integers(0, 5, 40_000)
    m = class_means(X, y, 6)
    want = np.stack([X[y == c].astype(np.float64).mean(0) for c in range(5)])
    np.testing.assert_allclose(m[:5], want, rtol=1e-12, atol=1e-12)
    assert np.isnan(m[5]).all()  # a class without rows


def test_a_named_ranking_is_used_without_controls(planted_stores):
    task = load_probe_task(planted_stores / "train", planted_stores / "dev")
    r = run_task_redundancy(task, ranking="probeless", controls=False, probe_seeds=0)
    assert r.ranking_method == "probeless" == r.minimal.ranking_method and set(r.rankings) == {"probeless"}
    with pytest.raises(ValueError, match="n_random must be >= 1"):
        run_task_redundancy(task, n_random=0)
