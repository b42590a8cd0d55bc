"""A small but real run folder: the real stages on tiny synthetic stores, built once per session.

Layout as ``redundancy run`` writes it: task ``toy`` has every stage (general, probe, pipeline, a
compact-model record), task ``toy2`` only a dev store and its general result, and ``job.json`` lists
``toy2`` before ``toy`` (so the report must follow the config, not the alphabet).
"""

from __future__ import annotations

import json

import pytest
from synthetic import TAGS, planted, write_store

from redundancy.general import run_general
from redundancy.pipeline import run_pipeline
from redundancy.probe import run_task_redundancy

L, H = 3, 8
COPIED_UNITS = (0, 1, 3, 4)  # layer 0 copies these units of layer 1: clusters across layers


def _acts(n: int, seed: int):
    acts, y = planted(n, n_layers=L, hidden=H, seed=seed, planted_layer=1, units=(2, 5))
    for u in COPIED_UNITS:
        acts[:, 0, u] = acts[:, 1, u]
    return acts, y


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """``dict(root=RUN folder, general=..., general2=..., probe=..., pipeline=..., compact=..., job=...)``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the probes are tiny: thread hand-offs cost more than they save
    try:
        root = tmp_path_factory.mktemp("run")
        stores = root / "stores"
        for split, n, seed in (("train", 1200, 0), ("dev", 400, 1), ("test", 400, 2)):
            acts, y = _acts(n, seed)
            write_store(stores / f"toy-{split}", acts, y, TAGS, split=split)
        acts, y = _acts(300, 3)
        write_store(stores / "toy2-dev", acts, y, TAGS, split="dev", task="toy2")

        general = run_general(
            stores / "toy-dev", root / "general" / "toy", figures=False, nulls=("shuffled",), intervals=5
        )
        general2 = run_general(stores / "toy2-dev", root / "general" / "toy2", figures=False)
        probe = run_task_redundancy(
            stores / "toy-train", stores / "toy-dev", stores / "toy-test", n_random=2, probe_seeds=2
        )
        (root / "probe" / "toy").mkdir(parents=True)
        (root / "probe" / "toy" / "probe.json").write_text(json.dumps(probe.to_dict()))
        pipeline = run_pipeline(stores / "toy-train", stores / "toy-dev", stores / "toy-test", seed=0)
        (root / "pipeline" / "toy").mkdir(parents=True)
        (root / "pipeline" / "toy" / "pipeline.json").write_text(json.dumps(pipeline.to_dict()))
        (root / "pipeline" / "toy" / "pipeline.md").write_text(pipeline.table_markdown())
    finally:
        torch.set_num_threads(threads)

    row = pipeline.rows[-1]  # t = 0.3, delta (1, 1)
    compact = {
        "task": "toy",
        "selected_layer": row.selected_layer,
        "neurons": list(row.neurons),
        "n_neurons_full": pipeline.n_neurons,
        "model": pipeline.model,
        "weights_sha256": "0" * 64,
        "size_bytes": 23_456,
        "full_model_bytes": 90_123_456,
        "dev": row.dev,
        "test": row.test,
        "delta_layer": row.delta_layer,
        "delta_neuron": row.delta_neuron,
        "threshold": row.threshold,
    }
    (root / "compact" / "toy").mkdir(parents=True)
    (root / "compact" / "toy" / "compact.json").write_text(json.dumps(compact))
    job = {
        "out": str(root),
        "config": {"model": "org/planted", "tasks": ["toy2", "toy"], "title": "Toy run", "seed": 0},
        "stages": [{"stage": "general", "task": "toy", "status": "ran", "seconds": 0.5, "key": "k"}],
        "seconds": 3.0,
        "versions": {"numpy": "0.0-test"},
        "created": "2026-01-01T00:00:00+00:00",
    }
    (root / "job.json").write_text(json.dumps(job))
    return {
        "root": root,
        "general": general,
        "general2": general2,
        "probe": probe,
        "pipeline": pipeline,
        "compact": compact,
        "job": job,
    }


@pytest.fixture(scope="session")
def written(run, tmp_path_factory):
    """The report of ``run`` written once: ``(Report, ReportFiles)``."""
    from redundancy.report import collect, write_report

    report = collect(run["root"])
    return report, write_report(report, tmp_path_factory.mktemp("report"))
