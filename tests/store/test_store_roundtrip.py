"""Write -> finalise -> open -> read gives back what was written; selections equal numpy slicing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.store import ActivationStore, StoreWriter


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_round_trip(tmp_path, fake, dtype):
    f = fake(dtype=dtype)
    with f.open_writer(tmp_path / "s") as writer:
        assert writer.pending() == [0, 1, 2, 3] and not writer.complete
        f.write(writer, [2, 0, 3, 1])  # scattered order, scattered rows
        manifest = writer.finalize()
    assert manifest.complete and set(manifest.sha256) == {
        "activations.npy",
        "labels.npy",
        "sentence_ids.npy",
        "positions.npy",
    }
    assert not (tmp_path / "s" / "progress.json").exists()

    store = ActivationStore.open(tmp_path / "s", verify="full")
    assert store.manifest == manifest
    assert (store.n_items, store.n_layers, store.hidden) == f.values.shape
    assert store.n_neurons == f.values.shape[1] * f.values.shape[2]
    assert store.activations.dtype == np.dtype(dtype) and store.dtype == np.dtype(dtype)
    assert not store.activations.flags.writeable
    np.testing.assert_array_equal(store.activations, f.values.astype(dtype))
    X = store.read()
    assert X.dtype == np.float32 and X.shape == (store.n_items, store.n_neurons)
    np.testing.assert_array_equal(X, f.expected().reshape(store.n_items, -1))
    np.testing.assert_array_equal(store.labels, f.labels)
    np.testing.assert_array_equal(store.sentence_ids, f.sentence_ids)
    np.testing.assert_array_equal(store.positions, f.positions)
    assert store.label_names == ("DET", "NOUN", "VERB")


def test_every_npy_loads_without_pickle(tmp_path, fake):
    path = fake(dtype="float16").build(tmp_path / "s")
    files = sorted(path.glob("*.npy"))
    assert {p.name for p in files} == {"activations.npy", "labels.npy", "sentence_ids.npy", "positions.npy"}
    for file in files:
        array = np.load(file, allow_pickle=False)
        assert array.dtype != object
        np.load(file, mmap_mode="r", allow_pickle=False)
    assert json.loads((path / "manifest.json").read_text())["complete"] is True


def test_uneven_batches_concatenate_to_the_selection(tmp_path, fake):
    f = fake()
    store = ActivationStore.open(f.build(tmp_path / "s"))
    batches = list(store.iter_batches(batch_size=4, layers=[2, 0]))
    assert [X.shape[0] for X, _ in batches][:-1] == [4] * (len(batches) - 1)
    assert 1 <= batches[-1][0].shape[0] <= 4
    X = np.concatenate([X for X, _ in batches])
    y = np.concatenate([y for _, y in batches])
    expected = f.expected()[:, [2, 0], :].reshape(store.n_items, -1)
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_array_equal(y, f.labels)
    for X, _ in batches:
        assert type(X) is np.ndarray and X.flags.writeable and X.flags.c_contiguous


def test_neuron_flat_index_is_layer_major(tmp_path, fake):
    f = fake(n_layers=3, hidden=4)
    store = ActivationStore.open(f.build(tmp_path / "s"))
    layer, unit = 2, 1
    col = store.read(neurons=[layer * store.hidden + unit])
    np.testing.assert_array_equal(col[:, 0], f.expected()[:, layer, unit])


def test_items_mask_dtype_and_errors(tmp_path, fake):
    f = fake()
    store = ActivationStore.open(f.build(tmp_path / "s"))
    mask = np.zeros(store.n_items, dtype=bool)
    mask[[1, 3]] = True
    np.testing.assert_array_equal(store.read(items=mask), store.read(items=[1, 3]))
    X64 = store.read(layers=[1], dtype=np.float64)
    assert X64.dtype == np.float64
    assert store.read(items=np.array([], dtype=np.int64)).shape == (0, store.n_neurons)
    for kwargs in (
        {"layers": [0], "neurons": [1]},
        {"layers": [3]},
        {"layers": [1, 1]},
        {"layers": []},
        {"neurons": [store.n_neurons]},
        {"neurons": [2, 2]},
        {"items": [store.n_items]},
        {"items": [-1]},
        {"items": np.ones(2, dtype=bool)},
        {"dtype": np.int32},
        {"batch_size": 0},
    ):
        with pytest.raises(ValueError):
            store.iter_batches(**kwargs)  # checked eagerly, before the first batch


def _selections(n_items: int, n_layers: int, hidden: int):
    n_neurons = n_layers * hidden
    layer_sel = st.lists(st.integers(0, n_layers - 1), min_size=1, max_size=n_layers, unique=True)
    neuron_sel = st.lists(st.integers(0, n_neurons - 1), min_size=1, max_size=n_neurons, unique=True)
    features = st.one_of(
        st.just(("all", None)),
        st.tuples(st.just("layers"), layer_sel),
        st.tuples(st.just("neurons"), neuron_sel),
    )
    items = st.one_of(st.none(), st.lists(st.integers(0, n_items - 1), max_size=2 * n_items))
    return st.tuples(features, items, st.integers(1, n_items + 2))


@pytest.fixture(scope="module")
def stores(tmp_path_factory, fake):
    built = {}
    for dtype in ("float16", "float32"):
        f = fake(dtype=dtype, n_sentences=7, n_layers=3, hidden=5, n_chunks=3, seed=1)
        built[dtype] = (f, ActivationStore.open(f.build(tmp_path_factory.mktemp(dtype) / "s")))
    return built


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_selection_equals_numpy_slicing(stores, dtype, data):
    f, store = stores[dtype]
    (kind, sel), items, batch_size = data.draw(_selections(store.n_items, store.n_layers, store.hidden))
    full = f.expected()  # (n, L, H) float32
    rows = full if items is None else full[np.asarray(items, dtype=np.int64)]
    if kind == "layers":
        expected = rows[:, sel, :].reshape(rows.shape[0], len(sel) * store.hidden)
    else:
        flat = rows.reshape(rows.shape[0], store.n_neurons)
        expected = flat if kind == "all" else flat[:, sel]
    kwargs = {} if kind == "all" else {kind: sel}
    batches = list(store.iter_batches(batch_size, items=items, **kwargs))
    assert all(X.shape[0] == batch_size for X, _ in batches[:-1])
    X = np.concatenate([X for X, _ in batches]) if batches else np.empty((0, expected.shape[1]), np.float32)
    np.testing.assert_array_equal(X, expected)
    if batches:
        labels = f.labels if items is None else f.labels[np.asarray(items, dtype=np.int64)]
        np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), labels)
    np.testing.assert_array_equal(store.read(items=items, **kwargs), expected)


def test_unlabeled_store(tmp_path, fake):
    f = fake(label_type="none")
    store = ActivationStore.open(f.build(tmp_path / "s"), verify="full")
    assert store.labels is None and store.label_names == ()
    assert not (tmp_path / "s" / "labels.npy").exists()
    assert all(y is None for _, y in store.iter_batches(5))
    assert store.summary()["labels"] == {"type": "none", "n_labels": 0}


def test_real_labels_and_sentence_level(tmp_path, fake):
    f = fake(label_type="real", level="sentence", n_sentences=9)
    store = ActivationStore.open(f.build(tmp_path / "s"), verify="full")
    assert store.labels.dtype == np.float32
    np.testing.assert_array_equal(store.labels, f.labels)  # NaN (no label) kept
    assert np.all(store.positions == 0)
    info = store.summary()["labels"]
    assert info["n_unlabeled"] == 1 and info["min"] <= info["mean"] <= info["max"]


def test_summary_is_json(tmp_path, fake):
    f = fake(dtype="float16")
    path = f.build(tmp_path / "s")
    info = ActivationStore.open(path).summary()
    json.dumps(info)
    assert info["path"] == str(path)
    assert info["shape"] == list(f.values.shape) and info["dtype"] == "float16"
    assert info["size_bytes"] >= f.values.size * 2
    assert (info["model"], info["task"], info["split"], info["aggregation"]) == (
        "org/tiny-model",
        "pos",
        "train",
        "last",
    )
    assert info["complete"] is True and info["versions"] == {"numpy": np.__version__}
    counts = dict(info["labels"]["top"])
    assert sum(counts.values()) + info["labels"]["n_unlabeled"] == f.values.shape[0]
    assert list(counts.values()) == sorted(counts.values(), reverse=True)


def test_empty_store(tmp_path, fake):
    f = fake()
    m = f.manifest
    empty = type(f)(
        manifest=type(m)(**{**m.to_dict(), "n_items": 0, "n_sentences": 0, "n_chunks": 1}),
        values=np.zeros((0, m.n_layers, m.hidden)),
        labels=np.zeros(0, np.int32),
        sentence_ids=np.zeros(0, np.int32),
        positions=np.zeros(0, np.int32),
        chunks=[np.zeros(0, np.int64)],
    )
    store = ActivationStore.open(empty.build(tmp_path / "s"), verify="full")
    assert store.read().shape == (0, m.n_neurons) and list(store.iter_batches()) == []


def test_writer_is_a_context_manager_and_repr(tmp_path, fake):
    f = fake()
    with f.open_writer(tmp_path / "s") as writer:
        assert "0/4 chunks" in repr(writer)
    assert isinstance(writer, StoreWriter)
    with pytest.raises(Exception, match="closed"):
        f.write(writer, [0])
