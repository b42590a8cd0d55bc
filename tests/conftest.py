"""Shared fixtures: tiny random models, built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_models  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``tiny(kind)`` -> path of a saved tiny random model of that kind (bert, mpnet, gpt2, xlnet)."""
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = tiny_models.build(kind, tmp_path_factory.mktemp(f"tiny-{kind}"))
        return built[kind]

    return get


@pytest.fixture(scope="session")
def data_dir():
    """The real task data (../shared/data, or $REDUNDANCY_DATA); the test is skipped without it."""
    from redundancy.data import DataDirError, resolve_data_dir

    try:
        return resolve_data_dir()
    except DataDirError as exc:  # pragma: no cover - CI has ../shared/data
        pytest.skip(f"real task data not available: {exc}")
