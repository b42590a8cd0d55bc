"""Fixtures for the compact-model tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    """One torch thread: the models and probes here are tiny. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
