"""Fixtures of the scale tests: a local Ray cluster per module (``ray.init(num_cpus=2)``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def engine():
    """The module's Ray cluster (2 CPUs) and an engine on it; the module is skipped without Ray."""
    ray = pytest.importorskip("ray")
    from redundancy.scale import RayEngine

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with RayEngine() as e:
            yield e
    finally:
        ray.shutdown()
