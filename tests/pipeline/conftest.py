"""Fixtures for the pipeline tests: small synthetic stores with a planted rule and duplicated neurons."""

from __future__ import annotations

import pytest
from pipeline_synthetic import TAGS, duplicated, write_store

from redundancy.pipeline import run_pipeline


@pytest.fixture(scope="session")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    for split, n, seed in (("train", 3000, 0), ("dev", 800, 1), ("test", 800, 2)):
        acts, y = duplicated(n, seed)
        write_store(root / split, acts, y, TAGS, split=split)
    return root


@pytest.fixture(scope="session")
def result(stores):
    return run_pipeline(stores / "train", stores / "dev", stores / "test", seed=0)


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    """One torch thread: the probes here are tiny. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
