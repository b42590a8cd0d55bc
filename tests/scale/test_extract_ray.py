"""Extraction on a local Ray cluster (``ray.init(num_cpus=2)``, started once for the module) equals the
local store byte for byte: from nothing, after a worker killed mid-chunk, and resumed after a failed
chunk; ``redundancy run --engine ray`` gives the local run's numbers.

Faults are planted without the package knowing: a worker set-up hook (Ray's
``worker_process_setup_hook``, run in every worker process) wraps the worker-side chunk function,
which then kills its process or raises when a marker file says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from exactness import EXACT
from toy import token_task

from redundancy.extract import ExtractConfig, extract, load_model, plan_store
from redundancy.scale import RayEngine, ScaleError, extract_on_engine

ray = pytest.importorskip("ray")

CONFIG = ExtractConfig(batch_size=1, chunk_items=5, threads=1)  # 5 chunks of 1 or 2 sentences
N_CHUNKS = 5


def _fault_hook(folder: Path):
    """A worker set-up hook (pickled by value: it is a closure) planting the faults of ``folder``:
    ``die`` -> the first worker to compute a chunk exits at once (``died`` records it); ``fail-C``
    -> chunk C raises."""

    def install() -> None:
        import redundancy.scale._extract as work

        compute = work._compute

        def faulty(lm, chunk):
            if (folder / "die").exists():
                try:
                    os.close(os.open(folder / "died", os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    pass
                else:
                    os._exit(1)
            if (folder / f"fail-{chunk.chunk_id}").exists():
                raise RuntimeError(f"planted failure in chunk {chunk.chunk_id}")
            return compute(lm, chunk)

        work._compute = faulty

    return install


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    """The module's Ray cluster (2 CPUs); yields the folder of fault markers."""
    folder = tmp_path_factory.mktemp("faults")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"worker_process_setup_hook": _fault_hook(folder)},
    )
    yield folder
    ray.shutdown()


@pytest.fixture(scope="module")
def engine(faults):
    """One engine for the extraction tests, so its workers (one model each) start once."""
    with RayEngine() as e:
        yield e


@pytest.fixture(scope="module")
def local(tiny, tmp_path_factory):
    """The store the local extraction writes, the reference."""
    out = tmp_path_factory.mktemp("local") / "store"
    extract(token_task(), str(tiny("bert")), out, CONFIG)
    return out


def _same_store(a: Path, b: Path) -> None:
    files = sorted(p.name for p in a.glob("*.npy"))
    assert files == sorted(p.name for p in b.glob("*.npy")) and "activations.npy" in files
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    assert ma["plan_hash"] == mb["plan_hash"] and ma["sha256"] == mb["sha256"]
    assert mb["complete"]


def test_ray_store_equals_the_local_one(tiny, tmp_path, engine, local):
    result = extract_on_engine(token_task(), str(tiny("bert")), tmp_path / "s", CONFIG, engine)
    assert result.n_chunks == result.chunks_computed == N_CHUNKS
    assert engine.n_workers == 2
    _same_store(local, tmp_path / "s")
    again = extract_on_engine(token_task(), str(tiny("bert")), tmp_path / "s", CONFIG, engine)
    assert again.chunks_computed == 0  # complete: nothing to do


def test_a_worker_killed_mid_chunk_is_restarted(tiny, tmp_path, engine, local, faults):
    (faults / "die").touch()
    try:
        result = extract_on_engine(token_task(), str(tiny("bert")), tmp_path / "s", CONFIG, engine)
    finally:
        (faults / "die").unlink()
    assert (faults / "died").exists()  # a worker did exit in the middle of a chunk
    assert result.chunks_computed == N_CHUNKS
    _same_store(local, tmp_path / "s")


def test_a_failed_chunk_is_named_and_a_rerun_computes_only_what_is_missing(
    tiny, tmp_path, engine, local, faults
):
    out = tmp_path / "s"
    (faults / "fail-4").touch()  # the last chunk: most others are committed when it fails
    try:
        with pytest.raises(ScaleError) as err:
            extract_on_engine(token_task(), str(tiny("bert")), out, CONFIG, engine)
    finally:
        (faults / "fail-4").unlink()
    message = str(err.value)
    assert message == "extract toy/train chunk 4: RuntimeError: planted failure in chunk 4"
    assert "\n" not in message and 'raise RuntimeError(f"planted' in err.value.detail  # kept, not shown

    progress = json.loads((out / "progress.json").read_text())
    committed = progress["chunks"]
    assert 4 not in committed and committed
    # forget one committed chunk as if its commit had not happened: it is computed again
    plan = plan_store(token_task(), load_model(str(tiny("bert"))), CONFIG)
    progress["chunks"] = committed[1:]
    progress["n_items_written"] -= plan.chunk_rows(committed[0])
    (out / "progress.json").write_text(json.dumps(progress))
    result = extract_on_engine(token_task(), str(tiny("bert")), out, CONFIG, engine)
    assert result.chunks_computed == N_CHUNKS - len(committed) + 1
    _same_store(local, out)


def _numbers(value, path=""):
    """Every number of a results.json, by its path (times and dates left out)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not any(w in k for w in ("second", "time", "timing", "created", "rate", "per_s")):
                out.update(_numbers(v, f"{path}/{k}"))
        return out
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _numbers(item, f"{path}[{i}]").items()}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return {}
    return {path: value}


def test_run_on_ray_gives_the_local_numbers(tiny, tmp_path, engine, data_dir):
    """``redundancy run --engine ray`` (extract, general with its groups and both nulls, probe, report)
    against the local run: the same stores, the same cache keys, and every number of results.json
    equal to the bit (the general stage's passes in the same groups and row blocks on both, the
    probe family's parts equal to the whole family at one thread each)."""
    from redundancy.cli import main

    engine.release()  # the job starts workers of its own on the same 2 CPUs
    cfg = tmp_path / "job.toml"
    cfg.write_text(
        f'model = "{tiny("bert")}"\ntasks = ["sem"]\nstages = ["extract", "general", "probe", "report"]\n'
        "threads = 1\n[extract]\nmax_items = 40\nchunk_items = 64\n[general]\nstep = 0.25\n"
        "[probe]\nn_seeds = 0\nrandom_draws = 1\ncontrols = false\n"
        '[rigour]\ngeneral_groups = 4\nnulls = ["random-init", "shuffled"]\n'
        "[engine]\nnum_cpus = 2\n"  # read with --engine ray
    )
    runs = {}
    for kind in ("local", "ray"):
        out = tmp_path / kind
        args = ["-q", "run", str(cfg), "--no-progress", "--data-dir", str(data_dir), "--out", str(out)]
        assert main([*args, "--engine", kind]) == 0
        runs[kind] = out
    for split in ("train", "dev", "test"):
        _same_store(runs["local"] / "stores" / f"sem-{split}", runs["ray"] / "stores" / f"sem-{split}")
    local, remote = (_numbers(json.loads((r / "report" / "results.json").read_text())) for r in runs.values())
    assert len(local) > 100 and local.keys() == remote.keys()
    differ = {k: (local[k], remote[k]) for k in local if local[k] != remote[k]}
    if EXACT:
        assert differ == {}
    for k, (a, b) in differ.items():  # a BLAS that rounds by width: the probes' to float32 rounding
        assert abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-3), (k, a, b)
        assert "random_init" in k or "random-init" in k or "probe" in k or "/nulls" in k, k
    accuracy = [k for k in local if k.endswith(("/dev", "/test", "/score", "/accuracy"))]
    assert accuracy and all(local[k] == remote[k] for k in accuracy)
    assert any("random-init" in k for k in local)
    keys = {
        kind: {s["stage"] + s["task"]: s["key"] for s in json.loads((r / "job.json").read_text())["stages"]}
        for kind, r in runs.items()
    }
    assert keys["local"] == keys["ray"]
