"""The statistics pass in this process vs as a tree reduction on a local Ray cluster: wall time and
peak memory per process.

Each mode runs in a fresh process on the same store; its process tree (the pass, and with Ray the
cluster it starts: GCS, raylet, workers) is sampled every 0.2 s for each process's peak anonymous
memory (``RssAnon``: the heap; the store's memory-mapped pages are file pages and not counted) and
the largest shared memory mapped (``RssShmem``: Ray's object store). The correlations and both CKA
matrices of every mode are compared with the local pass's. Numbers from one run, on whatever else
the machine is doing: compare modes within one run.

Modes: ``local`` (``redundancy.general.accumulate``: one pass, BLAS on all cores), ``tree``
(``distributed_stats`` on the local engine: the blocks one after the other), ``ray-1`` and
``ray-2`` (``distributed_stats`` on a local cluster of 1 or 2 CPUs: one block or merge per CPU,
one BLAS thread each).

Usage: ``python bench/stats_ray.py [--store DIR] [--blocks 4] [--modes local,tree,ray-1,ray-2]``;
without ``--store``, a synthetic store of 150,000 items x 7 x 384 neurons (1.6 GB) is written to a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

CHILD = """
import json, sys, time
import numpy as np
from redundancy.general import accumulate
from redundancy.scale import RayEngine, distributed_stats
from redundancy.store import ActivationStore

mode, store, blocks, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
opened = ActivationStore.open(store)
start = 0.0
if mode.startswith("ray"):
    import ray
    t = time.perf_counter()
    ray.init(num_cpus=int(mode.split("-")[1]), include_dashboard=False, log_to_driver=False)
    start = time.perf_counter() - t
t0 = time.perf_counter()
if mode == "local":
    stats = accumulate(opened)
elif mode == "tree":
    stats = distributed_stats(opened, blocks)
else:
    with RayEngine() as engine:
        stats = distributed_stats(opened, blocks, engine=engine)
seconds = time.perf_counter() - t0
res = stats.compute()
np.save(out + ".corr.npy", res.correlation)
np.save(out + ".cka.npy", np.stack([res.cka_linear, res.cka_debiased]))
print(json.dumps({"pass_s": seconds, "start_s": start}))
"""


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssShmem"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def _role(proc: psutil.Process, root: int) -> str:
    if proc.pid == root:
        return "driver"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    return "worker" if ("default_worker" in cmd or cmd.startswith("ray::")) else "ray"


def run(mode: str, store: str, blocks: int, tmp: Path) -> dict:
    out = str(tmp / mode)
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, store, str(blocks), out], stdout=subprocess.PIPE, text=True
    )
    root = psutil.Process(child.pid)
    peak: dict[str, int] = {}
    shmem = 0
    while child.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        for proc in procs:
            st = _status(proc.pid)
            role = _role(proc, child.pid)
            peak[role] = max(peak.get(role, 0), st.get("RssAnon", 0))
            shmem = max(shmem, st.get("RssShmem", 0))
        time.sleep(0.2)
    stdout, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"{mode} failed with exit status {child.returncode}")
    line = json.loads(stdout.strip().splitlines()[-1])
    return {
        "mode": mode,
        "wall_s": time.perf_counter() - t0,
        **line,
        "driver_anon_MB": peak.get("driver", 0) / 1e6,
        "worker_anon_MB": peak.get("worker", 0) / 1e6,
        "shmem_MB": shmem / 1e6,
        "out": out,
    }


def synthetic(folder: Path, n: int = 150_000, layers: int = 7, hidden: int = 384) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from synthetic import write_store

    rng = np.random.default_rng(0)
    size = layers * hidden
    mix = rng.normal(size=(16, size)).astype(np.float32)
    acts = np.empty((n, layers, hidden), dtype=np.float32)
    for s in range(0, n, 10_000):
        b = min(10_000, n - s)
        x = rng.normal(size=(b, 16)).astype(np.float32) @ mix + rng.normal(size=(b, size)).astype(np.float32)
        acts[s : s + b] = (x + 5.0).reshape(b, layers, hidden)
    write_store(folder / "store", acts, np.zeros(n, dtype=np.int32), ["A"])
    return str(folder / "store")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", help="an activation store (default: a synthetic 150k x 2,688 one)")
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--modes", default="local,tree,ray-1,ray-2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store = args.store or synthetic(tmp)
        rows = [run(mode, store, args.blocks, tmp) for mode in args.modes.split(",")]
        ref_corr = np.load(rows[0]["out"] + ".corr.npy")
        ref_cka = np.load(rows[0]["out"] + ".cka.npy")
        print(f"store {store}, {args.blocks} blocks")
        print(
            "| mode | pass (s) | cluster start (s) | driver RssAnon (MB) | worker RssAnon (MB) | shmem (MB) "
            "| max abs diff corr / CKA |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            dc = float(np.abs(np.load(r["out"] + ".corr.npy") - ref_corr).max())
            dk = float(np.nanmax(np.abs(np.load(r["out"] + ".cka.npy") - ref_cka)))
            print(
                f"| {r['mode']} | {r['pass_s']:.1f} | {r['start_s']:.1f} | {r['driver_anon_MB']:.0f} "
                f"| {r['worker_anon_MB']:.0f} | {r['shmem_MB']:.0f} | {dc:.1e} / {dk:.1e} |"
            )


if __name__ == "__main__":
    main()
