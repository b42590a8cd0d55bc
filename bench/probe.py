"""Probe benchmark: the fast solver against the paper's recipe, measured in one run (not a test).

1. The whole task-specific analysis (oracle, one probe per layer, incremental probes, neuron
   ranking, minimal-set search over the paper's grid with delta = 1 %) with the fast solver, then
   with the paper solver, on the same loaded activations and the same thread count.
   Goal: paper / fast wall time >= 5, and the fast oracle and minimal-set test accuracy no more
   than 0.5 points below the paper's.
2. A single oracle probe (all neurons), fast vs paper: time and test accuracy.
3. The controls of the fast analysis (random / bottom-ranked neurons at the same k, oracle seeds),
   timed separately (the paper has no controls, so they are not part of the comparison).

``--reuse-paper DIR`` takes the paper side (``paper.json`` and the single paper oracle in
``bench.json``) from an earlier run's ``--out`` folder instead of recomputing it: the paper solver is
deterministic and does not depend on the fast one, so only the fast side is rerun (say so when
reporting: the two sides were then timed in different runs on the same machine and thread count).

The paper side's minimal-set search gets a time budget (``--paper-budget``, default 1500 s); if
it runs out, the remaining retrains up to the fast solver's k are extrapolated from the measured
per-probe times (a linear fit of seconds against k) and the output says so.

Usage: ``python bench/probe.py --train DIR --dev DIR --test DIR [--threads 1] [--out DIR]
[--oracle-only]`` (``--oracle-only``: part 2 alone, e.g. at 9,984 neurons where the whole paper-side
analysis does not fit a session).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from redundancy.probe import (
    ElasticNetProbe,
    TaskRedundancyResult,
    load_probe_task,
    neuron_controls,
    run_task_redundancy,
)
from redundancy.select import CONTROL_SHARES, grid_sizes


def single_oracle(task, solver: str) -> dict:
    probe = ElasticNetProbe(solver=solver)
    t0 = time.perf_counter()
    if solver == "fast":
        probe.fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
    else:
        probe.fit(task.X_train, task.train.y)
    seconds = time.perf_counter() - t0
    dev = float(np.mean(probe.predict_ids(task.X_dev) == task.dev.y))
    test = float(np.mean(probe.predict_ids(task.X_test) == task.test.y))
    return {
        "seconds": seconds,
        "dev_accuracy": dev,
        "test_accuracy": test,
        "steps": int(probe.n_iter_),
        "epochs": float(probe.n_epochs_),
    }


def extrapolate_search(result, fast_k: int) -> dict:
    """Seconds the unfinished paper search would still need to reach ``fast_k`` (a lower bound)."""
    ev = result.minimal.evaluated
    ks = np.array([e.n_neurons for e in ev], dtype=float)
    secs = np.array([e.fit_seconds for e in ev], dtype=float)
    slope, icpt = np.polyfit(ks, secs, 1) if len(ks) > 1 else (0.0, float(secs.mean()))
    remaining = [k for k in result.minimal.grid if k > (ks.max() if len(ks) else 0) and k <= fast_k]
    extra = float(sum(icpt + slope * k for k in remaining))
    return {
        "evaluated": len(ev),
        "remaining_sizes": len(remaining),
        "extra_seconds": extra,
        "seconds_per_probe_fit": {"intercept": icpt, "per_neuron": slope},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default="runs/default/stores/pos-train")
    ap.add_argument("--dev", default="runs/default/stores/pos-dev")
    ap.add_argument("--test", default="runs/default/stores/pos-test")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both solvers (default 1)")
    ap.add_argument(
        "--paper-budget", type=float, default=1500.0, help="seconds for the paper's minimal-set search"
    )
    ap.add_argument("--delta", type=float, default=1.0)
    ap.add_argument("--out", help="folder for the two full results (JSON)")
    ap.add_argument("--reuse-paper", help="folder of an earlier --out: reuse its paper-solver side")
    ap.add_argument(
        "--oracle-only", action="store_true", help="only the single oracle probe, each solver (part 2)"
    )
    args = ap.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    torch.set_num_threads(args.threads)

    task = load_probe_task(args.train, args.dev, args.test)
    n, N = task.X_train.shape
    out: dict = {
        "setup": {
            "model": task.train.store.manifest.model,
            "task": task.train.store.manifest.task,
            "train_items": n,
            "dev_items": int(task.X_dev.shape[0]),
            "test_items": int(task.X_test.shape[0]),
            "neurons": N,
            "layers": task.n_layers,
            "classes": task.label_map.n_classes,
            "test_unseen": task.test.info.n_unseen,
            "threads": args.threads,
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "load_seconds": task.load_seconds,
            "delta": args.delta,
            "grid": "paper minimal-set grid (0.1% steps to 10%, 15-50% by 5, 60-90% by 10)",
        },
    }

    # 2. single oracle probe
    reused = None
    if args.reuse_paper:
        folder = Path(args.reuse_paper)
        reused = {
            "bench": json.loads((folder / "bench.json").read_text()),
            "paper": TaskRedundancyResult.from_dict(json.loads((folder / "paper.json").read_text())),
        }
        out["setup"]["paper_side_reused_from"] = str(folder)
    fast1 = single_oracle(task, "fast")
    paper1 = reused["bench"]["single_oracle"]["paper"] if reused else single_oracle(task, "paper")
    out["single_oracle"] = {
        "fast": fast1,
        "paper": paper1,
        "time_ratio_paper_over_fast": paper1["seconds"] / fast1["seconds"],
        "test_accuracy_points_fast_minus_paper": 100 * (fast1["test_accuracy"] - paper1["test_accuracy"]),
    }
    print(json.dumps({"single_oracle": out["single_oracle"]}), file=sys.stderr, flush=True)
    if args.oracle_only:
        print(json.dumps(out, indent=1))
        return

    # 1. the whole analysis, fast then paper
    fast = run_task_redundancy(task, probe=ElasticNetProbe(solver="fast"), delta=args.delta, controls=False)
    print(json.dumps({"fast": fast.summary()}), file=sys.stderr, flush=True)
    # 3. controls of the fast analysis (timed apart)
    t0 = time.perf_counter()
    sizes = sorted(set(grid_sizes(N, CONTROL_SHARES)) | ({fast.minimal.k} if fast.minimal.found else set()))
    controls = neuron_controls(
        task, ElasticNetProbe(), np.array(fast.ranking), sizes, n_random=3, probe_seeds=3
    )
    controls_seconds = time.perf_counter() - t0

    if reused:
        paper = reused["paper"]
    else:
        paper = run_task_redundancy(
            task,
            probe=ElasticNetProbe(solver="paper"),
            delta=args.delta,
            controls=False,
            max_search_seconds=args.paper_budget,
        )
    paper_seconds = paper.timings["analysis"]
    extrapolated = None
    if not paper.minimal.complete:
        extrapolated = extrapolate_search(paper, fast.minimal.k)
        paper_seconds += extrapolated["extra_seconds"]

    def stage_times(r):
        return {k: round(v, 2) for k, v in r.timings.items()}

    def side(r):
        m = r.minimal
        return {
            "oracle": {"dev": r.oracle.dev_score, "test": r.oracle.test_score},
            "layerwise_test": [round(x.test_score, 4) for x in r.layerwise],
            "incremental_test": [round(x.test_score, 4) for x in r.incremental],
            "minimal_set": {
                "k": m.k,
                "share": m.share,
                "found": m.found,
                "complete": m.complete,
                "retrains": len(m.evaluated),
                "dev": m.result.dev_score,
                "test": m.result.test_score,
                "target": m.target,
            },
            "timings": stage_times(r),
        }

    out["analysis"] = {
        "fast": side(fast),
        "paper": side(paper),
        "paper_seconds_used": paper_seconds,
        "paper_extrapolated": extrapolated,
        "time_ratio_paper_over_fast": paper_seconds / fast.timings["analysis"],
        "oracle_test_points_fast_minus_paper": 100 * (fast.oracle.test_score - paper.oracle.test_score),
        "minimal_set_test_points_fast_minus_paper": 100
        * (fast.minimal.result.test_score - paper.minimal.result.test_score),
        "note": "analysis time = load + layers (oracle, per-layer, incremental) + ranking + minimal-set "
        "search; the load is shared (measured once) and counted on both sides",
    }
    i = controls.sizes.index(fast.minimal.k) if fast.minimal.k in controls.sizes else None
    out["fast_controls"] = {
        "seconds": controls_seconds,
        "sizes": list(controls.sizes),
        "test_top": [round(x, 4) for x in controls.top.test_mean],
        "test_random_mean": [round(x, 4) for x in controls.random.test_mean],
        "test_random_sd": [round(x, 4) for x in controls.random.test_sd],
        "test_bottom": [round(x, 4) for x in controls.bottom.test_mean],
        "at_minimal_k": None
        if i is None
        else {
            "k": fast.minimal.k,
            "top": controls.top.test_mean[i],
            "random_mean": controls.random.test_mean[i],
            "random_sd": controls.random.test_sd[i],
            "bottom": controls.bottom.test_mean[i],
        },
        "oracle_seeds": controls.probe_seeds.to_dict(),
    }
    out["goals"] = {
        "analysis_ratio_ge_5": out["analysis"]["time_ratio_paper_over_fast"] >= 5,
        "oracle_test_within_0.5_points": out["analysis"]["oracle_test_points_fast_minus_paper"] >= -0.5,
        "minimal_set_test_within_0.5_points": out["analysis"]["minimal_set_test_points_fast_minus_paper"]
        >= -0.5,
    }
    if args.out:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fast.json").write_text(json.dumps(fast.to_dict()) + "\n")
        (folder / "paper.json").write_text(json.dumps(paper.to_dict()) + "\n")
        (folder / "controls.json").write_text(json.dumps(controls.to_dict()) + "\n")
        (folder / "bench.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
