"""Sentence bootstrap: the sums reproduce every metric, intervals cover a planted value at their rate."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.probe._metrics import score, sentence_sums
from redundancy.rigour import Interval, SentenceBootstrap, control_labels, poisson_weights, sentence_index


def _data(rng, n_sent=40, n_classes=4):
    lengths = rng.integers(1, 12, n_sent)
    sid = np.repeat(rng.permutation(1000)[:n_sent], lengths)
    pos = np.concatenate([np.arange(k) for k in lengths])
    y = rng.integers(0, n_classes, sid.size)
    pred = np.where(rng.random(sid.size) < 0.7, y, rng.integers(0, n_classes, sid.size))
    return sid, pos, y, pred


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "f1", "mcc", "chunk_f1", "pearson", "spearman"])
@given(seed=st.integers(0, 10_000))
@settings(max_examples=15, deadline=None)
def test_sums_reproduce_the_metric(metric, seed):
    rng = np.random.default_rng(seed)
    sid, pos, y, pred = _data(rng)
    names = ["B-NP", "I-NP", "O", "B-VP"] if metric == "chunk_f1" else ["0", "1", "2", "3"]
    if metric in ("pearson", "spearman"):
        y = rng.normal(size=sid.size)
        pred = y + rng.normal(size=sid.size)
    sums, stat = sentence_sums(metric, y, pred, sid, class_names=names, positions=pos)
    assert sums.shape[0] == np.unique(sid).size
    got = float(stat(sums.sum(axis=0, keepdims=True))[0])
    want = score(metric, y, pred, class_names=names, sentence_ids=sid, positions=pos)
    assert got == pytest.approx(want, abs=1e-12)


def test_a_replicate_is_the_metric_of_its_resampled_sentences():
    rng = np.random.default_rng(3)
    sid, pos, y, pred = _data(rng, n_sent=25)
    names = ["0", "1", "2", "3"]
    sums, stat = sentence_sums("macro_f1", y, pred, sid, class_names=names)
    b = SentenceBootstrap(n_boot=5, seed=1)
    counts = b.counts(sums.shape[0])
    reps = stat(counts @ sums)
    dense, _ = sentence_index(sid)
    for r in range(5):  # rebuild replicate r by repeating each sentence's items
        drawn = [s for s in range(25) for _ in range(int(counts[r, s]))]
        idx = np.concatenate([np.flatnonzero(dense == s) for s in drawn])
        assert reps[r] == pytest.approx(score("macro_f1", y[idx], pred[idx]), abs=1e-12)


def test_counts_draw_n_sentences_per_replicate_and_depend_on_the_seed_only():
    b = SentenceBootstrap(n_boot=7, seed=4)
    c = b.counts(31)
    assert c.shape == (7, 31) and (c.sum(axis=1) == 31).all()
    assert np.array_equal(c, SentenceBootstrap(n_boot=7, seed=4).counts(31))
    assert not np.array_equal(c, SentenceBootstrap(n_boot=7, seed=5).counts(31))


def test_intervals_cover_a_planted_value_at_about_their_rate():
    """Tokens of a sentence share a random difficulty (so a token bootstrap would be too narrow); the
    sentence bootstrap's 90 % intervals of accuracy must cover the true accuracy about 90 % of the time."""
    rng = np.random.default_rng(0)
    b = SentenceBootstrap(n_boot=300, seed=0, level=0.9)
    true_p, hits, token_hits, reps = 0.8, 0, 0, 300
    mu = float(np.clip(true_p + rng.normal(0, 0.15, 200_000), 0, 1).mean())  # the population's accuracy
    for _ in range(reps):
        n_sent = 150
        difficulty = np.clip(true_p + rng.normal(0, 0.15, n_sent), 0, 1)  # mean 0.8 up to the clip
        lengths = rng.integers(5, 25, n_sent)
        sid = np.repeat(np.arange(n_sent), lengths)
        right = rng.random(sid.size) < np.repeat(difficulty, lengths)
        iv = b.interval(sid, np.c_[right, np.ones(sid.size)], lambda s: s[:, 0] / s[:, 1])
        planted = float((difficulty * lengths).sum() / lengths.sum())  # this sample's expected accuracy
        hits += iv.low <= mu <= iv.high
        tok = SentenceBootstrap(n_boot=300, seed=0, level=0.9).interval(
            np.arange(sid.size), np.c_[right, np.ones(sid.size)], lambda s: s[:, 0] / s[:, 1]
        )
        token_hits += tok.low <= mu <= tok.high
        assert abs(planted - mu) < 0.05
    assert 0.84 <= hits / reps <= 0.96, hits / reps
    assert token_hits / reps < hits / reps - 0.1  # resampling tokens ignores the clustering: under-covers


def test_interval_record_round_trips_and_formats():
    iv = Interval(0.9501, 0.948, 0.952, 0.95, 200, 0)
    assert Interval.from_dict(iv.to_dict()) == iv
    assert iv.format(2, 100) == "95.01 [94.80, 95.20]"
    with pytest.raises(ValueError, match="exactly the keys"):
        Interval.from_dict({"estimate": 1.0})


def test_bad_settings_are_refused():
    for kw in ({"n_boot": 1}, {"level": 1.0}, {"seed": -1}, {"n_boot": True}):
        with pytest.raises(ValueError):
            SentenceBootstrap(**kw)


def test_poisson_weights_have_mean_one_and_are_seeded():
    w = poisson_weights(5000, 20, seed=3)
    assert w.shape == (20, 5000) and abs(w.mean() - 1) < 0.02
    assert np.array_equal(w, poisson_weights(5000, 20, seed=3))


def test_control_labels_fix_one_label_per_type_and_follow_the_distribution():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in rng.integers(0, 3000, 20_000)]
    dist = np.array([5.0, 3.0, 2.0])
    lab = control_labels(words, dist, seed=1)
    by_type: dict[str, set] = {}
    for w, label in zip(words, lab, strict=True):
        by_type.setdefault(w, set()).add(int(label))
    assert all(len(v) == 1 for v in by_type.values())
    per_type = np.bincount([next(iter(v)) for v in by_type.values()], minlength=3) / len(by_type)
    assert np.allclose(per_type, dist / dist.sum(), atol=0.03)
    assert np.array_equal(lab, control_labels(words, dist, seed=1))
    assert (lab != control_labels(words, dist, seed=2)).mean() > 0.3
    with pytest.raises(ValueError):
        control_labels(words, np.array([0.0, 0.0]))
