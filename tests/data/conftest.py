"""Shared fixtures for the data tests: the real data directory, a cached loader, an isolated fetch cache."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from redundancy.data import DataDirError, TaskData, load_task, resolve_data_dir


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real task data (``../shared/data`` beside the repository in CI), resolved with the real env."""
    try:
        return resolve_data_dir()
    except DataDirError as exc:
        pytest.skip(f"real task data not available: {exc}")


@pytest.fixture(scope="session")
def load(real_data_dir: Path):
    """``load(task, split, **caps)`` on the real data, cached across tests (each file is read once)."""

    @functools.cache
    def _load(name: str, split: str, **kwargs) -> TaskData:
        return load_task(name, split, real_data_dir, **kwargs)

    return _load


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Point the fetch cache at an empty temporary folder so no test reads or writes ~/.cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("REDUNDANCY_CACHE", str(cache))
    return cache
