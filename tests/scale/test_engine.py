"""The engines' interface without Ray: settings, the local engine, extraction through it, and a
package that imports and refuses the Ray engine clearly where Ray is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from toy import token_task

from redundancy.extract import ExtractConfig, compute_chunk, extract, load_model, plan_store
from redundancy.scale import (
    EngineSettings,
    LocalEngine,
    RayEngine,
    ScaleError,
    extract_on_engine,
    make_engine,
)
from redundancy.store import StoreWriter

CONFIG = ExtractConfig(batch_size=1, chunk_items=5, threads=1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"kind": "spark"}, "kind: must be one of local, ray, got 'spark'"),
        ({"kind": "local", "address": "h:6379"}, 'address: is read only with kind = "ray"'),
        ({"kind": "ray", "address": " "}, "address: must be a cluster address"),
        ({"kind": "ray", "num_cpus": 0}, "num_cpus: must be an integer >= 1, got 0"),
        ({"kind": "ray", "num_cpus": True}, "num_cpus: must be an integer >= 1"),
    ],
)
def test_settings_are_checked(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        EngineSettings(**kw)


def test_make_engine():
    assert isinstance(make_engine(), LocalEngine)
    assert isinstance(make_engine(EngineSettings(kind="ray", address="auto")), RayEngine)


def test_local_map_keeps_order_and_names_a_failure():
    with LocalEngine() as engine:
        assert engine.n_workers == 1
        assert engine.map(lambda x: x * x, [3, 1, 2]) == [9, 1, 4]
        with pytest.raises(ScaleError, match=r"^square 2: ZeroDivisionError: division by zero$") as err:
            engine.map(lambda x: 1 / (x - 2), [0, 1, 2], names=["square 0", "square 1", "square 2"])
        assert isinstance(err.value.__cause__, ZeroDivisionError)  # in-process: the cause is chained


def test_local_workers_start_once_and_name_a_failed_start():
    starts = []

    def setup(arg):
        starts.append(arg)
        return arg * 10

    with LocalEngine() as engine:
        pool = engine.workers(setup, 2)
        assert list(pool.imap_unordered(lambda s, x: s + x, [1, 2])) == [(0, 21), (1, 22)]
        assert engine.workers(setup, 2).call(lambda s, x: s - x, 1) == 19
        assert starts == [2]  # one set-up for the pool, kept while the same one is asked for

        def broken(arg):
            raise OSError("no model here")

        with pytest.raises(ScaleError, match=r"^plan: the worker could not start: OSError: no model here$"):
            engine.workers(broken, 0).call(lambda s, x: x, 1, name="plan")


def test_local_engine_extracts_the_local_store_and_resumes(tiny, tmp_path):
    model = str(tiny("bert"))
    extract(token_task(), model, tmp_path / "ref", CONFIG)
    # an interrupted store: two chunks committed by hand, the rest left to the engine
    lm = load_model(model)
    plan = plan_store(token_task(), lm, CONFIG)
    with StoreWriter.create_or_resume(
        tmp_path / "s", plan.manifest, plan.labels, plan.sentence_ids, plan.positions
    ) as writer:
        for c in (0, 3):
            writer.write_chunk(c, *compute_chunk(lm, plan.chunk_batches(c)))
    seen = []
    result = extract_on_engine(
        token_task(), model, tmp_path / "s", CONFIG, LocalEngine(), progress=lambda *a, **k: seen.append(a)
    )
    assert result.chunks_computed == plan.n_chunks - 2 and result.n_chunks == plan.n_chunks
    assert seen[-1][1:] == (31, 31)
    for name in ("activations.npy", "labels.npy", "sentence_ids.npy", "positions.npy"):
        assert (tmp_path / "ref" / name).read_bytes() == (tmp_path / "s" / name).read_bytes(), name
    assert np.array_equal(
        np.load(tmp_path / "s" / "activations.npy"), np.load(tmp_path / "ref" / "activations.npy")
    )


def test_without_ray_the_package_imports_and_the_ray_engine_says_what_to_install():
    """Ray is an optional extra: nothing imports it until a Ray engine starts."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["ray"] = None  # as if it were not installed: importing it fails
        import redundancy.cli, redundancy.job, redundancy.scale
        from redundancy.job import JobConfig
        from redundancy.scale import RayEngine, ScaleError
        assert JobConfig().compute.engine.kind == "local"
        try:
            RayEngine().start()
        except ScaleError as err:
            print(err)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "the ray engine needs Ray, an optional extra: pip install 'redundancy[ray]'"


def test_cli_engine_options_are_checked(capsys):
    from redundancy.cli import main

    args = ["extract", "--model", "m", "--task", "pos", "--split", "dev", "--no-progress"]
    assert main([*args, "--engine", "ray"]) == 2
    assert "--engine ray needs --out" in capsys.readouterr().err
    assert main([*args, "--address", "h:6379"]) == 2
    assert 'address: is read only with kind = "ray"' in capsys.readouterr().err
