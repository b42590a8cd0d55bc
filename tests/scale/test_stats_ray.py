"""The statistics pass as a tree reduction (``redundancy.scale.distributed_stats``) equals the local
pass (``redundancy.general.accumulate``) to 1e-12 relative, on the local engine and on a local Ray
cluster (``ray.init(num_cpus=2)``, started once for the module, only by the tests that need it);
the Ray tree equals the local engine's to the bit; the ``N x N`` blocks (``cross_blocks``) equal the
full matrix's blocks; a failing block is one line naming its rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import write_store

from redundancy.general import NeuronStats, accumulate, correlation_linkage, cut_tree
from redundancy.scale import (
    ScaleError,
    block_clusters,
    cross_blocks,
    distributed_stats,
    merge_stream,
    merge_tree,
    pass_shift,
    row_blocks,
)
from redundancy.store import ActivationStore

STATE = ("_shift", "_sum", "_cross", "_sq_outer", "_sq_cross_t")


def make_store(path, seed: int, n: int, layers: int, hidden: int, offset: float = 100.0) -> ActivationStore:
    """Correlated float32 activations with large per-neuron means (so the shift matters)."""
    rng = np.random.default_rng(seed)
    size = layers * hidden
    x = rng.normal(size=(n, 3)) @ rng.normal(size=(3, size)) + rng.normal(scale=0.5, size=(n, size))
    x = x * rng.uniform(0.5, 2.0, size) + offset * rng.normal(size=size)
    acts = x.astype(np.float32).reshape(n, layers, hidden)
    write_store(path, acts, np.zeros(n, dtype=np.int32), ["A"])
    return ActivationStore.open(path)


def assert_close_state(got: NeuronStats, ref: NeuronStats, rtol: float = 1e-12) -> None:
    """Every accumulated sum within ``rtol`` of the largest entry of its kind (a sum around the shift
    can be near zero, so entry by entry relative error is not the measure)."""
    assert got.n_items == ref.n_items
    np.testing.assert_array_equal(got.shift, ref.shift)
    for name in STATE[1:]:
        a, b = getattr(got, name), getattr(ref, name)
        if name == "_cross":  # only the upper triangle is accumulated
            a, b = np.triu(a), np.triu(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * np.abs(b).max(), err_msg=name)


def assert_close_results(got: NeuronStats, ref: NeuronStats) -> None:
    a, b = got.copy().compute(), ref.copy().compute()
    np.testing.assert_allclose(a.correlation, b.correlation, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-12)
    np.testing.assert_allclose(a.cka_linear, b.cka_linear, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.cka_debiased, b.cka_debiased, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.zero_variance, b.zero_variance)


# ------------------------------------------------------------------ the tree, without Ray


def test_row_blocks_cover_the_rows_once():
    for n, k in [(10, 3), (7, 7), (5, 9), (1000, 4), (1, 1)]:
        blocks = row_blocks(n, k)
        assert blocks[0][0] == 0 and blocks[-1][1] == n and len(blocks) == min(n, k)
        assert all(a < b for a, b in blocks)
        assert all(b == c for (_, b), (c, _) in zip(blocks[:-1], blocks[1:], strict=True))
        sizes = [b - a for a, b in blocks]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="n_blocks"):
        row_blocks(10, 0)


def test_streamed_tree_is_the_level_by_level_tree():
    """The local engine's depth-first merge makes the same pairs, in the same order, as Ray's levels."""

    def pair(a, b):
        return f"({a} {b})"

    for n in range(1, 70):
        leaves = [str(i) for i in range(n)]
        assert merge_stream(leaves, pair) == merge_tree(leaves, pair)


def test_shift_is_the_local_passes(tmp_path):
    store = make_store(tmp_path / "s", 0, 300, 2, 4)
    for batch, chunk in [(4096, None), (50, None), (4096, 8 * 8 * 7)]:
        kw = {} if chunk is None else {"chunk_bytes": chunk}
        ref = accumulate(store, batch_size=batch, **kw)
        np.testing.assert_array_equal(pass_shift(store, batch_size=batch, chunk_bytes=chunk), ref.shift)


CASES = [  # seed, items, layers, hidden, blocks, batch rows
    (0, 501, 3, 4, 1, 64),
    (1, 501, 3, 4, 2, 64),
    (2, 777, 2, 5, 3, 100),
    (3, 1000, 4, 3, 7, 33),
    (4, 64, 1, 6, 5, 16),
    (5, 2000, 3, 8, 16, 128),
]


@pytest.mark.parametrize(("seed", "n", "layers", "hidden", "blocks", "batch"), CASES)
def test_local_engine_equals_the_local_pass(tmp_path, seed, n, layers, hidden, blocks, batch):
    store = make_store(tmp_path / "s", seed, n, layers, hidden)
    ref = accumulate(store, batch_size=batch)
    got = distributed_stats(store, blocks, batch_size=batch)
    assert_close_state(got, ref)
    assert_close_results(got, ref)
    if blocks == 1:  # one block is the local pass itself
        for name in STATE:
            np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))


def test_a_given_shift(tmp_path):
    """Any shift gives the same statistics up to rounding; one far from the means (here ~100 away)
    costs digits, which is why the default is the local pass's own."""
    store = make_store(tmp_path / "s", 9, 200, 2, 3)
    shift = np.full(6, 3.0)
    got = distributed_stats(store, 3, shift=shift)
    np.testing.assert_array_equal(got.shift, shift)
    a, b = got.compute(), accumulate(store).compute()
    np.testing.assert_allclose(a.correlation, b.correlation, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="shift must hold 6"):
        distributed_stats(store, 2, shift=[1.0])


def test_a_failing_block_is_one_line_naming_its_rows(tmp_path):
    store = make_store(tmp_path / "s", 1, 100, 2, 3)
    (tmp_path / "s" / "activations.npy").rename(tmp_path / "gone.npy")  # opened here, not by the tasks
    with pytest.raises(ScaleError, match=r"statistics pass toy/train rows 0\.\.49 \(block 0\): StoreError"):
        distributed_stats(store, 2)


# ------------------------------------------------------------------ N x N in blocks


def reference_blocks(store: ActivationStore):
    x = np.asarray(store.activations, dtype=np.float64).reshape(store.n_items, store.n_neurons)
    xc = x - x.mean(axis=0)
    return xc.T @ xc, accumulate(store).compute().correlation


def assert_blocks_equal(blocks, cross, corr):
    for i, j in blocks.pairs:
        for a, b in ((i, j), (j, i)):
            (r0, r1), (c0, c1) = blocks.ranges[a], blocks.ranges[b]
            np.testing.assert_allclose(blocks.correlation(a, b), corr[r0:r1, c0:c1], rtol=0, atol=1e-12)
            np.testing.assert_allclose(
                blocks.cross(a, b), cross[r0:r1, c0:c1], rtol=0, atol=1e-10 * np.abs(cross).max()
            )


def test_cross_blocks_equal_the_full_matrix(tmp_path):
    store = make_store(tmp_path / "s", 4, 400, 3, 5)
    cross, corr = reference_blocks(store)
    blocks = cross_blocks(store, tmp_path / "blocks", batch_size=64)
    assert blocks.pairs == tuple((i, j) for i in range(3) for j in range(i, 3))
    assert_blocks_equal(blocks, cross, corr)
    record = json.loads((tmp_path / "blocks" / "blocks.json").read_text())
    assert record["ranges"] == [[0, 5], [5, 10], [10, 15]] and record["zero_variance"] == []
    assert sorted(p.name for p in (tmp_path / "blocks").glob("*.npy")) == sorted(
        f"{k}-{i}-{j}.npy" for k in ("corr", "cross") for i, j in blocks.pairs
    )
    with pytest.raises(KeyError):
        cross_blocks(store, tmp_path / "w", pairs=[(0, 0), (0, 1)]).correlation(0, 2)


def test_cross_blocks_of_uneven_ranges_and_a_constant_neuron(tmp_path):
    rng = np.random.default_rng(5)
    acts = rng.normal(size=(300, 2, 4)).astype(np.float32)
    acts[:, 1, 2] = 7.0  # zero variance: correlation 0 with the others, 1 with itself
    write_store(tmp_path / "s", acts, np.zeros(300, dtype=np.int32), ["A"])
    store = ActivationStore.open(tmp_path / "s")
    cross, corr = reference_blocks(store)
    blocks = cross_blocks(store, tmp_path / "blocks", ranges=[(0, 3), (3, 8)], dtype=np.float32)
    assert blocks.correlation(1, 1).dtype == np.float32
    for i, j in blocks.pairs:
        (r0, r1), (c0, c1) = blocks.ranges[i], blocks.ranges[j]
        np.testing.assert_allclose(blocks.correlation(i, j), corr[r0:r1, c0:c1], rtol=0, atol=1e-7)
    assert json.loads((tmp_path / "blocks" / "blocks.json").read_text())["zero_variance"] == [6]


def test_block_clusters_equal_the_whole_matrixs(tmp_path):
    """Average linkage one threshold-graph component at a time equals the whole matrix's tree cut at
    every threshold up to the largest (neurons copying a few signals, with varied noise, across
    neighbouring layers: clusters of several sizes and spans)."""
    rng = np.random.default_rng(3)
    n, layers, hidden = 800, 4, 8
    latent = rng.normal(size=(n, 10))
    source = np.clip(np.arange(layers * hidden) // 3 + rng.integers(-2, 3, layers * hidden), 0, 9)
    noise = rng.uniform(0.1, 1.5, layers * hidden)
    x = latent[:, source] * rng.choice([-1, 1], layers * hidden) + noise * rng.normal(
        size=(n, layers * hidden)
    )
    write_store(tmp_path / "s", x.astype(np.float32).reshape(n, layers, hidden), np.zeros(n, np.int32), ["A"])
    store = ActivationStore.open(tmp_path / "s")
    tree = correlation_linkage(accumulate(store).compute().correlation)
    ts = [0.0, 0.1, 0.2, 0.3, 0.45]
    got = block_clusters(cross_blocks(store, tmp_path / "blocks"), ts)
    for labels, t in zip(got.labels, ts, strict=True):
        np.testing.assert_array_equal(labels, cut_tree(tree, t, layers * hidden))
    assert 1 < got.largest_component < layers * hidden / 2  # the split is real
    assert got.n_clusters() < layers * hidden
    with pytest.raises(ValueError, match="largest component"):
        block_clusters(cross_blocks(store, tmp_path / "blocks"), [0.45], max_component=2)
    with pytest.raises(ValueError, match="every block"):
        block_clusters(cross_blocks(store, tmp_path / "w", pairs=[(0, 0), (0, 1)]), [0.3])


# ------------------------------------------------------------------ on Ray


@pytest.mark.parametrize(("seed", "n", "layers", "hidden", "blocks", "batch"), [CASES[1], CASES[3]])
def test_ray_tree_equals_the_local_pass(tmp_path, engine, seed, n, layers, hidden, blocks, batch):
    store = make_store(tmp_path / "s", seed, n, layers, hidden)
    got = distributed_stats(store, blocks, batch_size=batch, engine=engine)
    assert_close_state(got, accumulate(store, batch_size=batch))
    assert_close_results(got, accumulate(store, batch_size=batch))
    local = distributed_stats(store, blocks, batch_size=batch)
    for name in STATE:  # the same tree, the same arithmetic: the same bits
        np.testing.assert_array_equal(getattr(got, name), getattr(local, name))
    got.compute()  # a writeable accumulator (compute works in place)


def test_ray_reports_blocks_and_names_a_failing_one(tmp_path, engine):
    store = make_store(tmp_path / "s", 2, 90, 2, 2)
    seen = []
    distributed_stats(store, 3, engine=engine, progress=lambda *a, **k: seen.append(a[1]))
    assert seen == [1, 2, 3]
    (tmp_path / "s" / "activations.npy").rename(tmp_path / "gone.npy")
    with pytest.raises(ScaleError, match=r"rows \d+\.\.\d+ \(block \d\): StoreError: .*activations\.npy"):
        distributed_stats(store, 3, engine=engine)


def test_ray_cross_blocks_equal_the_full_matrix(tmp_path, engine):
    store = make_store(tmp_path / "s", 6, 300, 3, 4)
    cross, corr = reference_blocks(store)
    blocks = cross_blocks(store, tmp_path / "blocks", engine=engine, pairs=[(0, 0), (0, 2), (1, 2)])
    assert_blocks_equal(blocks, cross, corr)
