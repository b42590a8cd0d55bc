"""``redundancy run CONFIG`` in this process and with ``--engine ray``, compared (not a test).

Runs the job twice from nothing into ``OUT/local`` and ``OUT/ray`` (or compares two finished run
folders with ``--compare-only``), then compares every number of the two ``report/results.json``
(times, dates and rates left out): how many are equal to the bit, the largest absolute and relative
difference of the others and where they are, and whether every score (accuracy, F1, correlation)
is equal; then every file of the two stores folders byte for byte (a manifest without its ``created``
time), every task's ``linkage.npy`` and the stage cache keys of ``job.json``. Prints the two wall
times and their ratio.

What runs where on Ray (docs/scaling.md): the extraction's chunks, the general stage's passes (the
jackknife groups and the shuffled null's windows, the random-init null's pass in 8 row blocks: the
same bits as here) and the probe stage's layer family (in parts: equal to the whole family to the bit
at equal thread counts, docs/scaling.md "Probes on Ray").

Usage: ``python bench/run_ray.py CONFIG --out DIR [--num-cpus 2] [--compare-only] [--top 20]``
"""

from __future__ import annotations

import argparse
import filecmp
import json
import math
import subprocess
import sys
import time
from pathlib import Path

SKIP = ("second", "time", "timing", "created", "rate", "per_s", "finished", "status")
SCORES = ("/dev", "/test", "/score", "/accuracy", "/f1", "/oracle_share", "/share_of_oracle")


def numbers(value: object, path: str = "") -> dict[str, float]:
    """Every number of a results.json by its path (the :data:`SKIP` keys left out)."""
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for k, v in value.items():
            if not any(w in k for w in SKIP):
                out.update(numbers(v, f"{path}/{k}"))
        return out
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{path}[{i}]").items()}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return {}
    return {path: float(value)}


def compare(a: Path, b: Path, top: int = 20) -> dict:
    """The comparison of two run folders' results.json (see the module's docstring)."""
    na, nb = (numbers(json.loads((r / "report" / "results.json").read_text())) for r in (a, b))
    only = sorted(set(na) ^ set(nb))
    common = sorted(set(na) & set(nb))
    differ = [k for k in common if not (na[k] == nb[k] or (math.isnan(na[k]) and math.isnan(nb[k])))]
    differs = set(differ)
    rel = {k: abs(na[k] - nb[k]) / max(abs(na[k]), abs(nb[k])) for k in differ}
    scores = [k for k in common if k.endswith(SCORES)]
    worst = sorted(differ, key=lambda k: -rel[k])[:top]
    return {
        "numbers": len(common),
        "only_in_one": only[:top],
        "equal_to_the_bit": len(common) - len(differ),
        "differing": len(differ),
        "max_abs_difference": max((abs(na[k] - nb[k]) for k in differ), default=0.0),
        "max_rel_difference": max(rel.values(), default=0.0),
        "scores": len(scores),
        "scores_differing": [k for k in scores if k in differs][:top],
        "largest": [{"path": k, "a": na[k], "b": nb[k], "rel": rel[k]} for k in worst],
        "files": compare_files(a, b, top),
    }


def _same_file(x: Path, y: Path) -> bool:
    """Byte for byte; a store manifest as JSON without its ``created`` time."""
    if x.name == "manifest.json":
        dx, dy = (json.loads(p.read_text()) for p in (x, y))
        dx.pop("created", None), dy.pop("created", None)
        return dx == dy
    return filecmp.cmp(x, y, shallow=False)


def compare_files(a: Path, b: Path, top: int = 20) -> dict:
    """The two runs' stores (every file), clustering trees (``linkage.npy``) and stage cache keys."""
    names = sorted(
        str(p.relative_to(a))
        for p in [*(a / "stores").rglob("*"), *(a / "general").glob("*/linkage.npy")]
        if p.is_file()
    )
    missing = [n for n in names if not (b / n).is_file()]
    differ = [n for n in names if n not in missing and not _same_file(a / n, b / n)]
    keys = [
        {(s["stage"], s["task"]): s["key"] for s in json.loads((r / "job.json").read_text())["stages"]}
        for r in (a, b)
    ]
    return {
        "compared": len(names),
        "equal": len(names) - len(missing) - len(differ),
        "differing": (missing + differ)[:top],
        "cache_keys_equal": keys[0] == keys[1],
    }


def run(config: Path, out: Path, engine: str, num_cpus: int | None) -> float:
    cmd = [sys.executable, "-m", "redundancy", "run", str(config), "--out", str(out), "--engine", engine]
    if engine == "ray" and num_cpus:
        cmd += ["--num-cpus", str(num_cpus)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--num-cpus", type=int, default=None)
    ap.add_argument("--compare-only", action="store_true")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    walls = {}
    if not args.compare_only:
        for engine in ("local", "ray"):
            walls[engine] = run(args.config, args.out / engine, engine, args.num_cpus)
    result = compare(args.out / "local", args.out / "ray", args.top)
    if walls:
        result["wall_seconds"] = walls
        result["ray_over_local"] = walls["ray"] / walls["local"]
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
