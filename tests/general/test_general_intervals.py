"""Intervals of the general stage: the delete-a-group jackknife over sentences from the same pass."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from synthetic import write_store

from redundancy.general import (
    GeneralResult,
    NeuronStats,
    accumulate,
    accumulate_pass,
    cluster_counts,
    correlation_linkage,
    run_general,
    threshold_sweep,
)
from redundancy.rigour import jackknife_bounds, sentence_groups
from redundancy.store import ActivationStore


def _factor_data(rng, n_sent=300, sent_len=6, layers=3, hidden=8, noise=0.4):
    """Neurons driven by shared factors, each factor with a per-sentence component (tokens of one
    sentence are not independent)."""
    n = n_sent * sent_len
    sid = np.repeat(np.arange(n_sent), sent_len)
    factors = rng.normal(size=(n_sent, 4))[sid] + rng.normal(size=(n, 4))
    load = np.zeros((4, layers * hidden))
    load[rng.integers(0, 4, layers * hidden), np.arange(layers * hidden)] = rng.uniform(
        0.5, 2, layers * hidden
    )
    x = factors @ load + noise * rng.normal(size=(n, layers * hidden))
    return x.reshape(n, layers, hidden).astype(np.float32), sid


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    x, sid = _factor_data(np.random.default_rng(0))
    pos = np.concatenate([np.arange(6)] * (x.shape[0] // 6)).astype(np.int32)
    path = tmp_path_factory.mktemp("jk") / "store"
    labels = np.zeros(x.shape[0], dtype=np.int32)
    return write_store(
        path,
        x,
        labels,
        ("A",),
        sentence_ids=sid.astype(np.int32),
        positions=pos,
        chunks=np.array_split(np.arange(x.shape[0]), 4),
    )


def test_sentence_groups_keep_sentences_whole_and_are_balanced():
    sid = np.repeat(np.arange(103), np.random.default_rng(1).integers(1, 9, 103))
    g = sentence_groups(sid, 10, seed=3)
    for s in np.unique(sid):
        assert np.unique(g[sid == s]).size == 1
    per_group = np.bincount([g[sid == s][0] for s in np.unique(sid)], minlength=10)
    assert per_group.min() == 10 and per_group.max() == 11  # 103 sentences dealt into 10 groups
    assert np.array_equal(g, sentence_groups(sid, 10, seed=3))
    assert not np.array_equal(g, sentence_groups(sid, 10, seed=4))
    with pytest.raises(ValueError, match="at least 200 sentences"):
        sentence_groups(sid, 200, seed=0)


def test_jackknife_bounds_match_the_textbook_formula():
    rng = np.random.default_rng(0)
    reps = rng.normal(size=12)
    lo, hi = jackknife_bounds(1.0, reps, 0.9)
    from scipy.stats import t

    se = np.sqrt(11 / 12 * ((reps - reps.mean()) ** 2).sum())
    assert float(hi - 1.0) == pytest.approx(t.ppf(0.95, 11) * se, rel=1e-12)
    assert float(1.0 - lo) == pytest.approx(t.ppf(0.95, 11) * se, rel=1e-12)
    lo, hi = jackknife_bounds(
        np.array([0.99, 0.5]), np.stack([reps / 10 + 0.99, reps / 1e4 + 0.5]).T, bounds=(0, 1)
    )
    assert hi[0] == 1.0 and lo[1] < 0.5 < hi[1]


def test_the_grouped_pass_equals_a_plain_pass_and_leaving_a_group_out_equals_a_pass_without_it(store):
    s = ActivationStore.open(store)
    passed = accumulate_pass(s, groups=5, seed=2, window=500)
    ref = accumulate(s).compute()
    got = passed.stats.compute()
    assert np.allclose(got.correlation, ref.correlation, atol=1e-12)
    assert np.allclose(got.cka_debiased, ref.cka_debiased, atol=1e-12)
    assert len(passed.parts) == 5 and sum(p.n_items for p in passed.parts) == s.n_items
    assert passed.parts[0].cross.dtype == np.float32
    groups = sentence_groups(s.sentence_ids, 5, seed=2)
    keep = np.flatnonzero(groups != 3)
    direct = NeuronStats(s.n_layers, s.hidden).update(s.activations.reshape(s.n_items, -1)[keep]).compute()
    left = passed.stats.without(passed.parts[3]).compute()
    assert left.n_items == keep.size
    assert np.allclose(left.correlation, direct.correlation, atol=1e-6)
    assert np.allclose(left.cka_linear, direct.cka_linear, atol=1e-6)
    assert np.allclose(left.cka_debiased, direct.cka_debiased, atol=1e-6)


def test_cluster_counts_equal_the_cuts_of_the_sweep(store):
    s = ActivationStore.open(store)
    corr = accumulate(s).compute().correlation
    z = correlation_linkage(corr)
    ts = np.linspace(0, 1, 41)
    sweep = threshold_sweep(corr, ts, linkage=z)
    assert cluster_counts(z, ts, corr.shape[0]).tolist() == [p.n_clusters for p in sweep]


def test_run_general_records_intervals_around_every_number(store, tmp_path):
    r = run_general(store, tmp_path, intervals=8, nulls=("shuffled",), figures=True)
    iv = r.intervals
    assert iv is not None and iv.n_groups == 8 and iv.level == 0.95
    share = np.array([p.redundant_share for p in r.sweep])
    lo, hi = np.array(iv.share_low), np.array(iv.share_high)
    assert ((lo <= share + 1e-12) & (share <= hi + 1e-12)).all() and (hi - lo).max() > 0
    for variant in ("linear", "debiased"):
        est = r.cka.as_array(variant)
        lo, hi = iv.cka(variant)
        off = ~np.eye(3, dtype=bool)
        assert (lo[off] <= est[off]).all() and (est[off] <= hi[off]).all() and (hi - lo)[off].min() > 0
    one = r.cka_interval(0, 1, "debiased")
    assert one.method == "jackknife" and one.unit == "sentence group" and one.low < one.estimate < one.high
    assert r.share_interval().estimate == r.at().redundant_share
    back = GeneralResult.from_dict(r.to_dict())
    assert back.intervals == iv
    assert "intervals" in r.seconds
    # the real numbers do not depend on whether intervals were asked for
    plain = run_general(store, tmp_path / "plain", nulls=("shuffled",), figures=False)
    assert plain.intervals is None
    assert np.allclose(plain.cka.as_array("debiased"), r.cka.as_array("debiased"), atol=1e-12)
    assert [p.n_clusters for p in plain.sweep] == [p.n_clusters for p in r.sweep]


def test_the_memory_budget_lowers_the_number_of_groups(store, tmp_path, caplog):
    per_group = 4 * 24**2
    with caplog.at_level(logging.WARNING):
        r = run_general(store, tmp_path, intervals=20, interval_bytes=3 * per_group, figures=False)
    assert r.intervals.n_groups == 3
    assert "3 jackknife groups instead of 20 (memory budget" in caplog.text


@pytest.mark.parametrize("bad", [1, -1, 2.5, True])
def test_bad_interval_settings_are_refused(store, tmp_path, bad):
    with pytest.raises(ValueError, match="intervals must be 0"):
        run_general(store, tmp_path, intervals=bad, figures=False)


def test_cka_intervals_cover_a_planted_value_at_about_their_rate(tmp_path):
    """Two layers with a known population CKA, items in sentences that share a component: the 90 %
    jackknife intervals over sentences cover the population debiased CKA about 90 % of the time."""
    rng = np.random.default_rng(11)
    m = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.3, 0.0, 0.2]])
    sigma2 = 1.5
    # Cov(a) = I, Cov(a, b) = M, Cov(b) = MᵀM + σ² I
    want = np.sum(m**2) / (np.sqrt(3) * np.linalg.norm(m.T @ m + sigma2 * np.eye(3)))
    hits, runs = 0, 60
    for k in range(runs):
        n_sent, sent_len = 150, 6
        sid = np.repeat(np.arange(n_sent), sent_len)
        a = np.sqrt(0.6) * rng.normal(size=(n_sent, 3))[sid] + np.sqrt(0.4) * rng.normal(size=(sid.size, 3))
        b = a @ m + np.sqrt(sigma2) * rng.normal(size=(sid.size, 3))
        x = np.stack([a, b], axis=1).astype(np.float32)
        path = write_store(
            tmp_path / f"s{k}",
            x,
            np.zeros(sid.size, dtype=np.int32),
            ("A",),
            sentence_ids=sid.astype(np.int32),
            positions=np.tile(np.arange(sent_len), n_sent).astype(np.int32),
        )
        r = run_general(path, tmp_path / f"g{k}", intervals=10, level=0.9, seed=k, figures=False)
        iv = r.cka_interval(0, 1, "debiased")
        hits += iv.low <= want <= iv.high
    assert 0.78 <= hits / runs <= 0.99
