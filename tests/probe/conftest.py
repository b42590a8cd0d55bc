"""Fixtures for the probe tests: synthetic stores with a planted linear rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from synthetic import TAGS, planted, write_store


@pytest.fixture(scope="session")
def planted_stores(tmp_path_factory):
    """train/dev/test stores (3 layers x 8 units) whose label is a linear rule on layer 1, units 2 and 5.

    Test uses its own vocabulary (order differs from train) and has one label never seen in train.
    """
    root = tmp_path_factory.mktemp("planted")
    acts, y = planted(3000, seed=0)
    write_store(root / "train", acts, y, TAGS)
    acts, y = planted(800, seed=1)
    write_store(root / "dev", acts, y, TAGS, split="dev")
    acts, y = planted(800, seed=2)
    # test vocabulary: reversed order plus an unseen tag given to the first 10 items
    test_names = tuple(reversed(TAGS)) + ("INTJ",)
    remap = np.array([test_names.index(t) for t in TAGS], dtype=np.int32)
    y_test = remap[y]
    y_test[:10] = len(test_names) - 1
    write_store(root / "test", acts, y_test, test_names, split="test")
    return root


@pytest.fixture(scope="module")
def task(planted_stores):
    """The planted stores as a probe task, with a 100-replicate sentence bootstrap (seed 0)."""
    from redundancy.probe import load_probe_task
    from redundancy.rigour import SentenceBootstrap

    t = load_probe_task(planted_stores / "train", planted_stores / "dev", planted_stores / "test")
    return dataclasses.replace(t, bootstrap=SentenceBootstrap(n_boot=100, seed=0))


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    """One torch thread: the probes here are tiny, and thread hand-offs on a busy machine cost more
    than they save. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def planted_xy():
    """(X, y, X_dev, y_dev) of the planted rule, flattened to 24 neurons (planted: 10 and 13)."""
    a, y = planted(3000, seed=0)
    ad, yd = planted(800, seed=1)
    return a.reshape(len(a), -1), y, ad.reshape(len(ad), -1), yd
