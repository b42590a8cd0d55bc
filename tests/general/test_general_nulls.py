"""Null baselines of general redundancy: the shuffled null in the same pass, CKA's known answers."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import write_store

from redundancy.general import (
    GeneralResult,
    NeuronStats,
    accumulate,
    accumulate_with_shuffled,
    linear_cka,
    run_general,
)
from redundancy.store import ActivationStore


@pytest.fixture(scope="module")
def correlated_store(tmp_path_factory):
    """3 layers x 16 neurons driven by 6 shared factors (strongly correlated groups), 6,000 rows."""
    rng = np.random.default_rng(0)
    n, L, h = 6000, 3, 16
    factors = rng.normal(size=(n, 6))
    load = np.zeros((6, L * h))
    load[rng.integers(0, 6, L * h), np.arange(L * h)] = rng.uniform(1, 3, L * h)
    values = (factors @ load + 0.2 * rng.normal(size=(n, L * h))).reshape(n, L, h).astype(np.float32)
    labels = rng.integers(0, 2, n).astype(np.int32)
    path = tmp_path_factory.mktemp("nulls") / "store"
    return write_store(path, values, labels, ("A", "B"), chunks=np.array_split(np.arange(n), 3))


def test_the_shuffled_pass_leaves_the_real_statistics_unchanged(correlated_store):
    store = ActivationStore.open(correlated_store)
    real, null = accumulate_with_shuffled(store, seed=1, window=1000)
    ref = accumulate(store).compute()
    got = real.compute()
    assert np.allclose(got.correlation, ref.correlation, atol=1e-12)
    assert np.allclose(got.cka_debiased, ref.cka_debiased, atol=1e-12)
    # marginals kept exactly: the null's means and deviations are the real ones
    n = null.compute()
    assert np.allclose(n.mean, ref.mean, rtol=1e-9) and np.allclose(n.std, ref.std, rtol=1e-9)
    off = ~np.eye(n.correlation.shape[0], dtype=bool)
    assert np.abs(n.correlation[off]).max() < 0.08  # independent pairs of 6,000 rows: |r| ~ 1/sqrt(n)
    assert np.abs(ref.correlation[off]).max() > 0.9


def test_shuffled_null_has_almost_no_redundancy_and_the_real_data_much(correlated_store, tmp_path):
    r = run_general(correlated_store, tmp_path, nulls=("shuffled",), figures=True)
    (null,) = r.nulls
    assert null.kind == "shuffled"
    assert null.at(0.3).redundant_share < 0.01
    assert r.at(0.3).redundant_share > 0.5
    assert [p.threshold for p in null.sweep] == list(r.thresholds)
    # its debiased CKA between layers is ~0; the real layers share factors
    d = null.cka.as_array("debiased")
    assert np.abs(d[~np.eye(3, dtype=bool)]).max() < 0.02
    assert r.cka.as_array("debiased")[0, 1] > 0.5
    back = GeneralResult.from_dict(r.to_dict())
    assert back.nulls[0].at(0.3).redundant_share == null.at(0.3).redundant_share
    # seeded: the same null again
    again = run_general(correlated_store, tmp_path / "again", nulls=("shuffled",), figures=False)
    assert again.nulls[0].to_dict() == null.to_dict()


def test_unknown_null_is_refused(correlated_store, tmp_path):
    with pytest.raises(ValueError, match="unknown null model"):
        run_general(correlated_store, tmp_path, nulls=("permuted",))


def test_debiased_cka_of_independent_random_matrices_is_zero_and_biased_is_not():
    """A known answer (Nguyen et al. 2021; Murphy et al. 2024): with n = 200 items and d = 100
    features, biased linear CKA of two independent Gaussian matrices sits near d / (n + d) ~ 0.33,
    the debiased one near 0; NeuronStats gives the same as the in-memory kernel."""
    rng = np.random.default_rng(0)
    biased, debiased = [], []
    for _ in range(20):
        x, y = rng.normal(size=(200, 100)), rng.normal(size=(200, 100))
        biased.append(linear_cka(x, y))
        debiased.append(linear_cka(x, y, debiased=True))
    assert 0.25 < np.mean(biased) < 0.45
    assert abs(np.mean(debiased)) < 0.01
    stats = NeuronStats(2, 100).update(np.c_[x, y]).compute(correlation=False)
    assert stats.cka_linear[0, 1] == pytest.approx(biased[-1], abs=1e-10)
    assert stats.cka_debiased[0, 1] == pytest.approx(debiased[-1], abs=1e-10)


def test_cka_diagnostics_warn_when_items_are_few_per_feature(caplog):
    from redundancy.general import cka_diagnostics

    lin = np.array([[1.0, 0.40], [0.40, 1.0]])
    deb = np.array([[1.0, 0.02], [0.02, 1.0]])
    with caplog.at_level("WARNING"):
        d = cka_diagnostics(500, 100, lin, deb)
    assert (
        "cka_warning" in d and "< 10 per feature" in d["cka_warning"] and "5.0" == d["cka_items_per_feature"]
    )
    assert d["cka_max_biased_minus_debiased"] == "0.3800" and d["cka_pairs_differing_by_over_0.01"] == "1"
    assert "biased CKA is inflated" in caplog.text
    ok = cka_diagnostics(5000, 100, lin, lin)
    assert "cka_warning" not in ok and ok["cka_pairs_differing_by_over_0.01"] == "0"


def test_general_result_records_the_diagnostics(correlated_store, tmp_path):
    r = run_general(correlated_store, tmp_path, figures=False)
    assert r.estimator["cka_items_per_feature"] == f"{6000 / 16:.1f}"
    assert "cka_warning" not in r.estimator
