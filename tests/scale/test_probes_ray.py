"""The probe family in parts (``redundancy.scale.fit_family_on_engine``, ``layer_probes_on_engine``):
each part trains its probes as members of the whole family (``fit_probe_family(only=...)``), so the
probes equal the local family's to the bit, on the local engine and on a local Ray cluster
(``ray.init(num_cpus=2)``, started once for the module, only by the tests that need it).

What makes "to the bit" hold: a probe keeps its family's column blocks (``_restrict``), and every
kernel that touches it rounds the same wherever its columns fall and however many other probes share
its block: the bias gradient's column sum and the standardisation's rank-1 correction are written in
position-independent forms, and the products have at least 4 output columns (MKL computes 1-3 by
another kernel). Equal thread counts are assumed (each part and the reference run one thread): MKL
splits a product's columns among its threads, which can round differently (docs/scaling.md). On a
BLAS that picks kernels by width (``exactness.EXACT`` false, checked first, with a warning) the
parts equal the whole family to float32 rounding only, and that is what is checked there."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from exactness import assert_same_array
from synthetic import planted, write_store

from redundancy._torch import torch_threads
from redundancy.probe import (
    ElasticNetProbe,
    FamilyCheckpoint,
    fit_probe_family,
    layer_probes,
    load_probe_task,
    train_curves,
)
from redundancy.scale import (
    EngineFamily,
    ScaleError,
    fit_family_on_engine,
    layer_probes_on_engine,
    split_family,
)

LAYERS, HIDDEN, CLASSES = 3, 24, 12
PROBE = ElasticNetProbe(batch_size=256, random_state=0)  # minibatch Adam on 3,000 rows: the family solver


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe-stores")
    names = [f"C{i}" for i in range(CLASSES)]
    for split, n, seed in (("train", 3000, 0), ("dev", 600, 1), ("test", 600, 2)):
        X, y = planted(n, LAYERS, HIDDEN, seed=seed, n_classes=CLASSES, noise=1.0)
        write_store(folder / split, X, y, names, split=split)
    return folder


@pytest.fixture(scope="module")
def task(stores):
    return load_probe_task(stores / "train", stores / "dev", stores / "test")


@pytest.fixture(scope="module")
def reference(task):
    """The local layer family, one torch thread (as each task runs)."""
    with torch_threads(1):
        return layer_probes(task, PROBE)


def layer_ranges():
    h = HIDDEN
    return [[(i * h, (i + 1) * h)] for i in range(LAYERS)] + [[(0, (i + 1) * h)] for i in range(1, LAYERS)]


def assert_same_probe(got: ElasticNetProbe, ref: ElasticNetProbe) -> None:
    scale = float(np.abs(ref.coef_).max())
    assert_same_array(got.coef_, ref.coef_, scale)
    assert_same_array(got.intercept_, ref.intercept_, scale)
    assert got.n_iter_ == ref.n_iter_
    assert got.solver_settings_ == ref.solver_settings_  # the whole family's size and each probe's step


def assert_same_results(got, ref) -> None:
    """Every field of the results (the names, scores, settings and steps that results.json
    holds), the training time apart."""
    for a, b in zip(got, ref, strict=True):
        da, db = a.to_dict(), b.to_dict()
        da.pop("fit_seconds"), db.pop("fit_seconds")
        assert da == db


def assert_same_layers(got, ref) -> None:
    assert_same_results(got.layerwise + got.incremental, ref.layerwise + ref.incremental)
    for a, b in zip(got.incremental_estimators, ref.incremental_estimators, strict=True):
        assert_same_probe(a, b)
    assert_same_probe(got.estimator, ref.estimator)


# ------------------------------------------------------------------ parts, without Ray


def test_split_family_deals_every_probe_once():
    for costs, k in [([5, 1, 1, 1], 2), ([1] * 7, 3), ([3, 2], 5), ([4, 4, 4, 1, 1, 1, 1, 1, 1], 3)]:
        parts = split_family(costs, k)
        assert sorted(i for p in parts for i in p) == list(range(len(costs)))
        assert len(parts) == min(k, len(costs)) and all(p == sorted(p) for p in parts)
    costs = [4, 4, 4, 1, 1, 1, 1, 1, 1]
    assert [sum(costs[i] for i in p) for p in split_family(costs, 3)] == [6, 6, 6]


@pytest.mark.parametrize("parts", [[[0, 1, 2], [3, 4]], [[0, 2, 4], [1, 3]], [[0], [1], [2], [3], [4]]])
def test_only_trains_the_whole_familys_probes(task, parts):
    X, y, Xd, yd = task.X_train, task.train.y, task.X_dev, task.dev.y
    with torch_threads(1):
        whole = fit_probe_family(PROBE, X, y, layer_ranges(), Xd, yd)
        for part in parts:
            for i, p in zip(
                part, fit_probe_family(PROBE, X, y, layer_ranges(), Xd, yd, only=part), strict=True
            ):
                assert_same_probe(p, whole[i])
    with pytest.raises(ValueError, match="increasing"):
        fit_probe_family(PROBE, X, y, layer_ranges(), Xd, yd, only=[2, 1])
    with pytest.raises(ValueError, match="index the 5"):
        fit_probe_family(PROBE, X, y, layer_ranges(), Xd, yd, only=[5])


@pytest.mark.parametrize("target", ["binary", "three classes", "regression"])
def test_one_probe_parts_equal_the_whole_family(target):
    """Parts of one probe: each block's product shrinks to the probe's own 1-3 output columns (MKL's
    other kernel before the products were padded to 4: the coefficients differed by up to 1e-6)."""
    X3, y = planted(2000, 4, 10, seed=3, n_classes=2 if target == "binary" else 3, noise=1.0)
    Xd3, yd = planted(400, 4, 10, seed=4, n_classes=2 if target == "binary" else 3, noise=1.0)
    X, Xd = X3.reshape(len(X3), -1), Xd3.reshape(len(Xd3), -1)
    if target == "regression":
        y, yd = X[:, 13] - 0.5 * X[:, 27] + y, Xd[:, 13] - 0.5 * Xd[:, 27] + yd
    ranges = [[(i * 10, (i + 1) * 10)] for i in range(4)] + [[(0, (i + 1) * 10)] for i in range(1, 4)]
    probe = ElasticNetProbe(batch_size=128, random_state=0)
    with torch_threads(1):
        whole = fit_probe_family(probe, X, y, ranges, Xd, yd)
        for i in range(len(ranges)):
            (got,) = fit_probe_family(probe, X, y, ranges, Xd, yd, only=[i])
            assert_same_probe(got, whole[i])
    assert whole[0].coef_.shape[0] == {"binary": 2, "three classes": 3, "regression": 1}[target]


def test_local_engine_equals_layer_probes(task, reference):
    assert_same_layers(layer_probes_on_engine(task, PROBE, n_parts=2), reference)


def test_engine_family_trains_curves_and_keeps_checkpoints(task, stores, tmp_path):
    """train_curves (probes on gathered columns: ``columns`` and their ``stats`` travel to the parts)
    and a checkpoint written by the engine's family, read back by the local one."""
    rng = np.random.default_rng(0)
    orders = [rng.permutation(LAYERS * HIDDEN), rng.permutation(LAYERS * HIDDEN)]
    curves = [(o, [4, 16, 40], [f"c{k}-4", f"c{k}-16", f"c{k}-40"]) for k, o in enumerate(orders)]
    with torch_threads(1):
        ref = train_curves(task, PROBE, curves)
    fit = EngineFamily(stores / "train", stores / "dev", n_parts=3)
    ckpt = FamilyCheckpoint(tmp_path / "ckpt", scope="test")
    got = train_curves(replace(task, checkpoint=ckpt), PROBE, curves, fit_family=fit)
    assert_same_results(sum(got, []), sum(ref, []))
    assert ckpt.saved == 1
    again = train_curves(replace(task, checkpoint=ckpt), PROBE, curves)
    assert ckpt.hits == 1
    assert [r.dev_score for r in sum(again, [])] == [r.dev_score for r in sum(got, [])]


def test_a_failing_part_is_one_line_naming_it(stores, tmp_path):
    with pytest.raises(ScaleError, match=r"layers part 0 of 2 \(\d probes\): StoreError: .*no such folder"):
        fit_family_on_engine(stores / "train", tmp_path / "missing", PROBE, layer_ranges(), what="layers")


# ------------------------------------------------------------------ on Ray


def test_ray_equals_layer_probes_and_the_local_engine(task, reference, engine):
    got = layer_probes_on_engine(task, PROBE, engine=engine, n_parts=2)
    assert_same_layers(got, reference)
    local = layer_probes_on_engine(task, PROBE, n_parts=2)
    for a, b in zip(got.incremental_estimators, local.incremental_estimators, strict=True):
        np.testing.assert_array_equal(a.coef_, b.coef_)  # the same parts, the same bits


def test_ray_names_a_failing_part(stores, tmp_path, engine):
    with pytest.raises(ScaleError, match=r"layers part \d of 2 \(\d probes\): StoreError: .*no such folder"):
        fit_family_on_engine(
            stores / "train", tmp_path / "missing", PROBE, layer_ranges(), engine=engine, what="layers"
        )
