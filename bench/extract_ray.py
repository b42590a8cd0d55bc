"""Extraction in this process vs on a local Ray cluster: wall time, extraction time and peak memory.

Each mode runs ``redundancy extract`` in a fresh process on the same split; the process tree (the
command, and with Ray the cluster it starts: GCS, raylet, workers) is sampled every 0.5 s for the
command's peak RSS and the tree's peak PSS (shared pages split between the processes that map
them, so the torch libraries each worker loads are not counted once per process in full). Every
store is compared with the first one byte for byte. Numbers from one run, on whatever else the
machine is doing: compare modes within one run.

Usage: ``python bench/extract_ray.py [--model all-MiniLM-L6-v2] [--task pos] [--split dev]
[--max-items 500] [--chunk-items 512]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

MODES = {  # name -> extra arguments of `redundancy extract`
    "local, 1 thread": ["--threads", "1"],
    "local, 2 threads": ["--threads", "2"],
    "Ray, 1 worker": ["--engine", "ray", "--num-cpus", "1", "--threads", "1"],
    "Ray, 2 workers": ["--engine", "ray", "--num-cpus", "2", "--threads", "1"],
}


def _pss(proc: psutil.Process) -> int:
    try:
        return proc.memory_full_info().pss
    except (psutil.Error, AttributeError):
        return 0


def run(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall time, peak RSS, the tree's peak PSS, and the JSON it prints."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    head = psutil.Process(proc.pid)
    peak_rss = peak_tree = 0
    while proc.poll() is None:
        try:
            tree = [head, *head.children(recursive=True)]
            peak_rss = max(peak_rss, head.memory_info().rss)
        except psutil.Error:
            break
        peak_tree = max(peak_tree, sum(_pss(p) for p in tree))
        time.sleep(0.5)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode}")
    result = json.loads(out)
    return {"wall": wall, "rss": peak_rss, "tree": peak_tree, "result": result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--task", default="pos")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--max-items", type=int, default=500)
    ap.add_argument("--chunk-items", type=int, help="rows per chunk (default: the extraction's)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = []
        for name, extra in MODES.items():
            out = Path(tmp) / name.replace(" ", "").replace(",", "-")
            cmd = [sys.executable, "-m", "redundancy", "-q", "extract", "--model", args.model]
            cmd += ["--task", args.task, "--split", args.split, "--max-items", str(args.max_items)]
            cmd += ["--out", str(out), "--no-progress", *extra]
            if args.chunk_items:
                cmd += ["--chunk-items", str(args.chunk_items)]
            m = run(cmd)
            same = not stores or all(
                (stores[0] / f.name).read_bytes() == f.read_bytes() for f in sorted(out.glob("*.npy"))
            )
            stores.append(out)
            r = m["result"]
            rows.append(
                f"| {name} | {m['wall']:.1f} | {r['seconds']:.1f} | {r['items_per_s']:.0f} | "
                f"{m['rss'] / 2**20:.0f} | {m['tree'] / 2**20:.0f} | {'yes' if same else 'NO'} |"
            )
            print(rows[-1], file=sys.stderr)
        n = m["result"]
    print(f"{args.model}, {args.task}/{args.split}: {n['n_items']} rows, {n['n_chunks']} chunk(s)\n")
    print(
        "| mode | wall s | extraction s | rows/s | peak RSS of the command, MB | peak PSS of all "
        "its processes, MB | store = the first |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
