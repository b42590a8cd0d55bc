"""NeuronStats and the CKA kernels against textbook references (items x items Gram matrices)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.general import NeuronStats, linear_cka

FEW = settings(max_examples=8, deadline=None)


# ------------------------------------------------------------------ references (textbook, Gram matrices)


def gram_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. 2019: HSIC = tr(KHLH) / (n - 1)², CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def unbiased_hsic(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. 2012, eq. (5), written out directly on the Gram matrices."""
    n = k.shape[0]
    kt, lt = k.copy(), l_.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    one = np.ones(n)
    return (
        np.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ kt @ lt @ one)
    ) / (n * (n - 3))


def gram_debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    k, l_ = x @ x.T, y @ y.T
    return unbiased_hsic(k, l_) / np.sqrt(unbiased_hsic(k, k) * unbiased_hsic(l_, l_))


def make_data(seed: int, n: int, layers: int, hidden: int, offset: float = 5.0) -> np.ndarray:
    """Correlated activations (shared latent factors) with per-neuron offsets and scales."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    mix = rng.normal(size=(3, layers * hidden))
    x = latent @ mix + rng.normal(scale=0.7, size=(n, layers * hidden))
    return x * rng.uniform(0.5, 2.0, layers * hidden) + offset * rng.normal(size=layers * hidden)


def one_pass(x: np.ndarray, layers: int, hidden: int, splits=(), **kw) -> NeuronStats:
    stats = NeuronStats(layers, hidden, **kw)
    for part in np.split(x, list(splits)):
        stats.update(part)
    return stats


def layer(x: np.ndarray, a: int, hidden: int) -> np.ndarray:
    return x[:, a * hidden : (a + 1) * hidden]


# ------------------------------------------------------------------ correlations and chunking


@FEW
@given(seed=st.integers(0, 2**16), n=st.integers(3, 40), layers=st.integers(1, 3), hidden=st.integers(1, 4))
def test_correlation_equals_corrcoef(seed, n, layers, hidden):
    x = make_data(seed, n, layers, hidden)
    res = one_pass(x, layers, hidden).compute()
    np.testing.assert_allclose(res.correlation, np.corrcoef(x.T), atol=1e-12, rtol=0)
    np.testing.assert_allclose(res.mean, x.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.std, x.std(axis=0), rtol=1e-10)
    assert np.array_equal(res.correlation, res.correlation.T)


@FEW
@given(seed=st.integers(0, 2**16), n=st.integers(8, 60), data=st.data())
def test_uneven_chunks_equal_one_batch(seed, n, data):
    layers, hidden = 3, 4
    x = make_data(seed, n, layers, hidden, offset=100.0).astype(np.float32)
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), max_size=5, unique=True)))
    whole = one_pass(x, layers, hidden).compute()
    for stats in (
        one_pass(x, layers, hidden, cuts),
        one_pass(x, layers, hidden, cuts, chunk_bytes=8 * layers * hidden * 3),
    ):  # 3-row chunks
        parts = stats.compute()
        np.testing.assert_allclose(parts.correlation, whole.correlation, atol=1e-10, rtol=0)
        np.testing.assert_allclose(parts.cka_linear, whole.cka_linear, atol=1e-10, rtol=0)
        np.testing.assert_allclose(parts.cka_debiased, whole.cka_debiased, atol=1e-10, rtol=0)
        np.testing.assert_allclose(parts.mean, whole.mean, rtol=1e-12, atol=0)
        np.testing.assert_allclose(parts.std, whole.std, rtol=1e-10, atol=0)
        assert parts.n_items == n


@FEW
@given(seed=st.integers(0, 2**16), data=st.data())
def test_merge_of_shards_equals_one_pass(seed, data):
    layers, hidden, n = 2, 3, 50
    x = make_data(seed, n, layers, hidden, offset=50.0)
    x[30:] += 3.0  # shards see different means, so their shifts differ
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=4, unique=True)))
    whole = one_pass(x, layers, hidden).compute()
    merged = NeuronStats(layers, hidden)  # empty: adopts the first shard
    shards = [one_pass(part, layers, hidden) for part in np.split(x, cuts)]
    last = shards[-1].copy()
    for shard in shards:
        merged.merge(shard)
    merged.merge(NeuronStats(layers, hidden))  # merging an empty one changes nothing
    res = merged.compute()
    np.testing.assert_allclose(res.correlation, whole.correlation, atol=1e-10, rtol=0)
    np.testing.assert_allclose(res.cka_linear, whole.cka_linear, atol=1e-10, rtol=0)
    np.testing.assert_allclose(res.cka_debiased, whole.cka_debiased, atol=1e-10, rtol=0)
    np.testing.assert_allclose(res.mean, whole.mean, rtol=1e-12)
    assert res.n_items == n
    # The shards themselves are unchanged by merging.
    assert shards[-1].n_items == last.n_items
    for name in ("_shift", "_sum", "_cross", "_sq_outer", "_sq_cross"):
        np.testing.assert_array_equal(getattr(shards[-1], name), getattr(last, name))


def test_merge_refuses_other_layouts():
    with pytest.raises(ValueError, match="cannot merge"):
        NeuronStats(2, 3).merge(NeuronStats(3, 2).update(np.ones((2, 6))))
    with pytest.raises(TypeError):
        NeuronStats(2, 3).merge(np.ones((2, 6)))


def test_state_does_not_grow_with_items_and_reset_forgets():
    stats = NeuronStats(2, 5)
    stats.update(np.random.default_rng(0).normal(size=(10, 10)))
    size = stats.nbytes
    for i in range(5):
        stats.update(np.random.default_rng(i).normal(size=(1000, 10)))
    assert stats.nbytes == size and stats.n_items == 5010
    stats.reset()
    assert stats.n_items == 0 and stats.shift is None


def test_accepts_3d_and_integer_batches():
    rng = np.random.default_rng(1)
    x = rng.integers(-5, 5, size=(30, 2, 3))
    a = NeuronStats(2, 3).update(x).compute()
    b = NeuronStats(2, 3).update(x.reshape(30, 6).astype(np.float64)).compute()
    np.testing.assert_array_equal(a.correlation, b.correlation)


def test_bad_batches_are_refused_and_leave_the_state_alone():
    stats = NeuronStats(2, 3).update(np.ones((4, 6)) * np.arange(4)[:, None])
    before = stats.copy()
    bad = np.zeros((3, 6))
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite.*row 1, neuron 4"):
        stats.update(bad)
    with pytest.raises(ValueError, match=r"shape \(b, 6\)"):
        stats.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="real numbers"):
        stats.update(np.array([["a"] * 6]))
    assert stats.n_items == before.n_items
    np.testing.assert_array_equal(stats._cross, before._cross)
    with pytest.raises(ValueError, match="at least 2 items"):
        NeuronStats(1, 2).update(np.ones((1, 2))).compute()
    with pytest.raises(ValueError, match="positive int"):
        NeuronStats(0, 3)


# ------------------------------------------------------------------ zero variance


def test_zero_variance_neurons_are_flagged_never_nan(caplog):
    x = make_data(3, 40, 2, 4)
    x[:, 1] = 2.5  # constant
    x[:, 6] = 0.0
    with caplog.at_level(logging.WARNING, logger="redundancy.general"):
        res = one_pass(x.astype(np.float32), 2, 4, splits=(7, 19)).compute()
    assert res.zero_variance_indices.tolist() == [1, 6]
    assert "2 of 8 neurons have zero variance" in caplog.text
    corr = res.correlation
    assert np.isfinite(corr).all()
    for i in (1, 6):
        assert corr[i, i] == 1.0
        assert np.all(np.delete(corr[i], i) == 0.0) and np.all(np.delete(corr[:, i], i) == 0.0)
    keep = [0, 2, 3, 4, 5, 7]
    np.testing.assert_allclose(
        corr[np.ix_(keep, keep)], np.corrcoef(x[:, keep].T.astype(np.float32)), atol=1e-6
    )


def test_constant_layer_gives_undefined_cka_not_an_error():
    x = make_data(4, 30, 3, 2)
    x[:, 2:4] = 1.0  # layer 1 constant
    res = one_pass(x, 3, 2).compute()
    assert np.isnan(res.cka_linear[1]).all() and np.isnan(res.cka_linear[:, 1]).all()
    assert np.isnan(res.cka_debiased[1]).all()
    assert np.isfinite(res.cka_linear[np.ix_([0, 2], [0, 2])]).all()


def test_debiased_needs_four_items(caplog):
    with caplog.at_level(logging.WARNING):
        res = NeuronStats(2, 2).update(make_data(0, 3, 2, 2)).compute()
    assert np.isnan(res.cka_debiased).all() and np.isfinite(res.cka_linear).all()
    assert "at least 4 items" in caplog.text


# ------------------------------------------------------------------ linear CKA


@FEW
@given(seed=st.integers(0, 2**16), n=st.integers(4, 30), p=st.integers(1, 6), q=st.integers(1, 6))
def test_linear_cka_equals_gram_reference(seed, n, p, q):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) + 3.0
    y = x[:, :1] @ rng.normal(size=(1, q)) + rng.normal(size=(n, q))
    assert linear_cka(x, y) == pytest.approx(gram_linear_cka(x, y), abs=1e-10)


def test_accumulated_cka_matrix_equals_references():
    layers, hidden = 3, 4
    x = make_data(7, 25, layers, hidden, offset=0.0)
    res = one_pass(x, layers, hidden, splits=(5, 6, 20)).compute()
    for a in range(layers):
        for b in range(layers):
            xa, xb = layer(x, a, hidden), layer(x, b, hidden)
            assert res.cka_linear[a, b] == pytest.approx(gram_linear_cka(xa, xb), abs=1e-10)
            assert res.cka_linear[a, b] == pytest.approx(linear_cka(xa, xb), abs=1e-12)
            assert res.cka_debiased[a, b] == pytest.approx(gram_debiased_cka(xa, xb), abs=1e-10)
            assert res.cka_debiased[a, b] == pytest.approx(linear_cka(xa, xb, debiased=True), abs=1e-12)
    np.testing.assert_allclose(np.diag(res.cka_linear), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(res.cka_debiased), 1.0, atol=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_invariances(debiased):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6))
    y = x @ rng.normal(size=(6, 4)) + rng.normal(size=(40, 4))
    base = linear_cka(x, y, debiased)
    rot = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    assert linear_cka(x @ rot, y, debiased) == pytest.approx(base, abs=1e-12)  # orthogonal transform
    assert linear_cka(7.5 * x, 0.01 * y, debiased) == pytest.approx(base, abs=1e-12)  # isotropic scaling
    assert linear_cka(x + 3.0, y - 40.0, debiased) == pytest.approx(base, abs=1e-12)  # translation
    assert linear_cka(x, x, debiased) == pytest.approx(1.0, abs=1e-12)  # identical inputs
    assert linear_cka(x, 2 * x @ rot, debiased) == pytest.approx(1.0, abs=1e-12)
    stretch = x * np.arange(1, 7)  # anisotropic scaling is *not* an invariance
    assert abs(linear_cka(stretch, y, debiased) - base) > 1e-3


# ------------------------------------------------------------------ debiased CKA


@FEW
@given(seed=st.integers(0, 2**16), n=st.integers(4, 25), p=st.integers(1, 5), q=st.integers(1, 5))
def test_debiased_cka_equals_unbiased_hsic_formula(seed, n, p, q):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    y = 0.5 * x[:, :1] + rng.normal(size=(n, q))
    want = gram_debiased_cka(x, y)
    if not np.isfinite(want):  # a self-HSIC estimate can be <= 0 for tiny n
        assert np.isnan(linear_cka(x, y, debiased=True))
        return
    assert linear_cka(x, y, debiased=True) == pytest.approx(want, abs=1e-9)


def test_debiased_accumulator_is_translation_invariant_and_exact_with_large_offsets():
    layers, hidden = 2, 3
    x = make_data(11, 30, layers, hidden, offset=0.0)
    centred = one_pass(x, layers, hidden).compute()
    shifted = one_pass(x + 1e4, layers, hidden, splits=(9,)).compute()
    np.testing.assert_allclose(shifted.cka_debiased, centred.cka_debiased, atol=1e-9)
    np.testing.assert_allclose(shifted.cka_linear, centred.cka_linear, atol=1e-9)
    np.testing.assert_allclose(shifted.correlation, centred.correlation, atol=1e-9)


def test_debiased_differs_from_biased_when_items_are_few():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 30)), rng.normal(size=(12, 30))  # independent: true CKA is 0
    assert linear_cka(x, y) > 0.5  # the biased estimate is far from 0 with few items, many features
    assert abs(linear_cka(x, y, debiased=True)) < 0.2


def test_docstring_examples_run():
    import doctest

    from redundancy.general import _cluster, _stats

    for module in (_stats, _cluster):
        failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failed == 0, module.__name__
