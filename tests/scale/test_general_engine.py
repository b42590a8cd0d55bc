"""The general stage's pass on an engine (``accumulate_pass(engine=...)``, ``run_general(engine=...)``):
with jackknife groups or the shuffled null, each group is one task and the partials are merged in
group order here, so the local engine and a local Ray cluster (``ray.init(num_cpus=2)``) give the
in-process pass's numbers to the bit; without them, the rows are cut into blocks (``blocks=``, as
``run_general`` does: the same bits here and there; or 2 per worker: the plain pass's to 1e-12)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_stats_ray import STATE, assert_close_results, assert_close_state, make_store

from redundancy.general import (
    PassGroup,
    accumulate,
    accumulate_group,
    accumulate_pass,
    run_general,
)
from redundancy.scale import LocalEngine, ScaleError


def _same_bits(a, b) -> None:
    assert (a is None) == (b is None)
    if a is None:
        return
    assert a.n_items == b.n_items
    for name in STATE:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _same_pass(got, ref) -> None:
    _same_bits(got.stats, ref.stats)
    _same_bits(got.null, ref.null)
    assert len(got.parts) == len(ref.parts)
    for p, q in zip(got.parts, ref.parts, strict=True):
        for name in ("n", "sum", "cross", "sq_outer", "sq_cross_t"):
            if hasattr(p, name):
                np.testing.assert_array_equal(getattr(p, name), getattr(q, name), err_msg=name)


PASSES = [  # groups, shuffled, window
    (5, True, 64),
    (3, False, 50),
    (0, True, 128),
    (2, True, 7),
]


@pytest.mark.parametrize(("groups", "shuffled", "window"), PASSES)
def test_local_engine_gives_the_same_bits(tmp_path, groups, shuffled, window):
    store = make_store(tmp_path / "s", groups + 10, 613, 3, 5)
    ref = accumulate_pass(store, groups=groups, shuffled=shuffled, seed=3, window=window)
    with LocalEngine() as engine:
        got = accumulate_pass(store, groups=groups, shuffled=shuffled, seed=3, window=window, engine=engine)
    _same_pass(got, ref)
    assert len(ref.parts) == (groups if groups >= 2 else 0)
    assert (ref.null is not None) == shuffled
    # the grouped pass is the plain pass to rounding, and its groups add up to it
    assert_close_results(ref.stats, accumulate(store, batch_size=window))
    if groups >= 2:
        assert sum(p.n_items for p in ref.parts) == store.n_items


def test_the_shuffled_null_keeps_marginals_and_loses_correlations(tmp_path):
    store = make_store(tmp_path / "s", 4, 3000, 2, 4)
    res = accumulate_pass(store, groups=4, shuffled=True, seed=0, window=256)
    real, null = res.stats.copy().compute(), res.null.copy().compute()
    np.testing.assert_allclose(null.mean, real.mean, rtol=1e-9)
    np.testing.assert_allclose(null.std, real.std, rtol=1e-9)
    off = ~np.eye(8, dtype=bool)
    assert np.abs(real.correlation[off]).max() > 0.5  # make_store's neurons are correlated
    assert np.abs(null.correlation[off]).max() < 0.1
    # another seed: other groups and another null, the same real statistics (to rounding)
    other = accumulate_pass(store, groups=4, shuffled=True, seed=1, window=256)
    assert_close_results(other.stats, res.stats)
    assert not np.array_equal(other.null.copy().compute().correlation, null.correlation)


def test_plain_pass_on_an_engine_is_the_plain_pass_to_rounding(tmp_path):
    store = make_store(tmp_path / "s", 8, 1001, 2, 6)
    with LocalEngine() as engine:
        got = accumulate_pass(store, window=100, engine=engine)
        blocked = accumulate_pass(store, window=100, engine=engine, blocks=5)
    assert got.parts == () and got.null is None
    ref = accumulate(store, batch_size=100)
    assert_close_state(got.stats, ref)
    assert_close_results(got.stats, ref)
    # fixed blocks: the same bits here as on the engine, and the plain pass to rounding
    _same_pass(blocked, accumulate_pass(store, window=100, blocks=5))
    assert not np.array_equal(blocked.stats.copy().compute().correlation, ref.copy().compute().correlation)
    assert_close_results(blocked.stats, ref)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="blocks must be a positive int"):
            accumulate_pass(store, window=100, blocks=bad)


def test_a_group_outside_the_store_is_refused(tmp_path):
    store = make_store(tmp_path / "s", 1, 20, 1, 2)
    group = PassGroup(str(store.path), np.arange(15, 25), np.zeros(2), False, 0, 0, 4, 1 << 20, "g")
    with pytest.raises(ValueError, match="g: rows outside the store's 20"):
        accumulate_group(group)


def _general_numbers(folder):
    doc = json.loads((folder / "general.json").read_text())
    doc.pop("seconds", None)
    doc.pop("created", None)
    doc.pop("store", None)
    return doc


class _ThreeWorkers(LocalEngine):
    """The local engine, claiming 3 workers (the pass's blocks must not depend on them)."""

    n_workers = 3


@pytest.mark.parametrize(("nulls", "intervals"), [(("shuffled", "random-init"), 4), (("random-init",), 0)])
def test_run_general_on_an_engine_writes_the_same_result(tmp_path, nulls, intervals):
    """Also the passes without groups (the random-init null's; the store's without intervals or the
    shuffled null): cut into the same row blocks here and on the engine."""
    store = make_store(tmp_path / "s", 5, 400, 3, 4)
    random_init = make_store(tmp_path / "r", 6, 400, 3, 4)
    kw = {"step": 0.25, "nulls": nulls, "intervals": intervals, "figures": False}
    kw["null_stores"] = {"random-init": random_init}
    run_general(store, tmp_path / "here", **kw)
    with _ThreeWorkers() as engine:
        run_general(store, tmp_path / "engine", engine=engine, **kw)
    here, there = _general_numbers(tmp_path / "here"), _general_numbers(tmp_path / "engine")
    assert here == there and [n["kind"] for n in here["nulls"]] == list(nulls)
    assert (here["intervals"] or {}).get("n_groups", 0) == intervals
    linkage = [(tmp_path / d / "linkage.npy").read_bytes() for d in ("here", "engine")]
    assert linkage[0] == linkage[1]


# ------------------------------------------------------------------ on Ray


@pytest.mark.parametrize(("groups", "shuffled", "window"), [PASSES[0], PASSES[2]])
def test_ray_gives_the_same_bits(tmp_path, engine, groups, shuffled, window):
    store = make_store(tmp_path / "s", 21, 555, 2, 5)
    ref = accumulate_pass(store, groups=groups, shuffled=shuffled, seed=9, window=window)
    got = accumulate_pass(store, groups=groups, shuffled=shuffled, seed=9, window=window, engine=engine)
    _same_pass(got, ref)
    got.stats.merge(got.stats.copy())  # a writeable accumulator here, not a view of Ray's store


def test_ray_plain_pass_and_a_failing_group(tmp_path, engine):
    store = make_store(tmp_path / "s", 2, 300, 2, 3)
    seen = []
    got = accumulate_pass(store, window=32, engine=engine, progress=lambda *a, **k: seen.append(a[1]))
    assert_close_results(got.stats, accumulate(store, batch_size=32))
    assert seen and seen[-1] == 300
    blocked = accumulate_pass(store, window=32, engine=engine, blocks=3)
    _same_pass(blocked, accumulate_pass(store, window=32, blocks=3))
    (tmp_path / "s" / "activations.npy").rename(tmp_path / "gone.npy")  # opened here, not by the tasks
    with pytest.raises(ScaleError, match=r"general toy/train rows group \d+: .*activations\.npy"):
        accumulate_pass(store, groups=3, window=32, engine=engine)
