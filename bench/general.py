"""General-redundancy benchmark: ratios measured in one run (not a timed test). Prints JSON.

1. **Cross-product pass** over a real store (default: all-MiniLM-L6-v2 on EWT POS dev, 2,688 neurons):
   achieved GFLOP/s of ``NeuronStats`` (reading the store, float32 -> float64, ``C += ZᵀZ`` and the extra
   sums) vs numpy's own ``Z.T @ Z`` on float64 arrays of exactly the same chunk shapes, already in memory.
   FLOPs are counted as ``2 n N²`` for both (the dense-product count; both use BLAS ``syrk``, which does
   half of that work), so the ratio is a ratio of times. Goal: >= 0.70.
2. **One pass vs the naive way** on the same items of that store: ``np.corrcoef`` on the full matrix plus
   linear and debiased CKA for every layer pair from centred items x items Gram matrices. Time and peak
   memory (numpy allocations, via ``tracemalloc``), and the largest difference of the results.
3. **Clustering + the whole sweep** (21 thresholds, 0.0 ... 1.0) for 9,984 neurons (13 x 768, BERT-base
   size) on a *synthetic* correlation-structured activation matrix (shared latent factors + noise, see
   ``synthetic_activations``): time and extra peak RSS. Goal: <= 60 s and <= 2 GB.

Usage: ``python bench/general.py [--store DIR] [--naive-items 4000] [--items 3000] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import time
import tracemalloc

import numpy as np

from redundancy.general import NeuronStats, accumulate, correlation_linkage, threshold_sweep
from redundancy.general._stats import DEFAULT_CHUNK_BYTES
from redundancy.store import ActivationStore

DEFAULT_STORE = "/work/stores/minilm-pos-dev"


# ------------------------------------------------------------------ helpers


def _status(key: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _traced(fn):
    """(result, seconds, peak bytes of numpy/Python allocations) of ``fn()``."""
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, seconds, peak


def _timed(fn, repeats: int):
    best, out = math.inf, None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


# ------------------------------------------------------------------ 1. the pass vs numpy's product


def stream(store: ActivationStore, batch_size: int, items=None) -> NeuronStats:
    return accumulate(store, batch_size=batch_size, items=items)


def chunk_shapes(n_items: int, n: int, batch_size: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[int]:
    """The row counts of the float64 chunks ``NeuronStats.update`` multiplies, batch by batch."""
    rows = []
    for start in range(0, n_items, batch_size):
        b = min(batch_size, n_items - start)
        step = max(1, min(b, chunk_bytes // (8 * n)))
        rows += [min(step, b - s) for s in range(0, b, step)]
    return rows


def numpy_peak(rows: list[int], n: int) -> float:
    """Seconds of numpy ``Z.T @ Z`` (float64, in memory) over chunks of these row counts."""
    z = np.random.default_rng(0).standard_normal((max(rows), n))
    out = np.empty((n, n))
    t0 = time.perf_counter()
    for r in rows:
        zr = z[:r]
        np.matmul(zr.T, zr, out=out)
    return time.perf_counter() - t0


def gemm_peak(n: int, k: int, reps: int = 3) -> float:
    """GFLOP/s of a general float64 product (distinct operands) of shape (n, k) @ (k, n): for context."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((n, k)), rng.standard_normal((k, n))
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n * n * k / best / 1e9


def bench_pass(store: ActivationStore, batch_size: int, repeats: int) -> dict:
    n_items, n = store.n_items, store.n_neurons
    rows = chunk_shapes(n_items, n, batch_size)
    flops = 2.0 * n_items * n * n
    ours, peak = math.inf, math.inf
    stream(store, batch_size)  # warm the page cache
    for _ in range(repeats):  # alternate, keep the best of each
        ours = min(ours, _timed(lambda: stream(store, batch_size), 1)[1])
        peak = min(peak, numpy_peak(rows, n))
    return {
        "store": str(store.path),
        "n_items": n_items,
        "n_neurons": n,
        "batch_size": batch_size,
        "chunk_rows": max(rows),
        "pass_seconds": round(ours, 3),
        "pass_gflops": round(flops / ours / 1e9, 1),
        "numpy_ZtZ_seconds": round(peak, 3),
        "numpy_ZtZ_gflops": round(flops / peak / 1e9, 1),
        "ratio_pass_vs_numpy": round(peak / ours, 3),
        "goal": ">= 0.70",
        "numpy_gemm_gflops_for_context": round(gemm_peak(n, max(rows)), 1),
        "flop_count": "2 n N^2 for both (syrk does half of it)",
    }


# ------------------------------------------------------------------ 2. one pass vs the naive way


def naive(store: ActivationStore, items: np.ndarray) -> dict:
    """np.corrcoef on the full matrix + CKA per layer pair from centred Gram matrices."""
    x = store.read(items=items, dtype=np.float64)
    corr = np.corrcoef(x.T)
    n, layers, hidden = x.shape[0], store.n_layers, store.hidden
    grams = []
    for a in range(layers):
        xa = x[:, a * hidden : (a + 1) * hidden]
        xa = xa - xa.mean(axis=0)
        grams.append(xa @ xa.T)  # centred data: the centred Gram H K H
    del x
    lin = np.empty((layers, layers))
    hs = np.empty((layers, layers))
    one = np.ones(n)
    for a in range(layers):
        for b in range(a, layers):
            k, l_ = grams[a], grams[b]
            lin[a, b] = lin[b, a] = np.vdot(k, l_)
            kt, lt = k.copy(), l_.copy()
            np.fill_diagonal(kt, 0)
            np.fill_diagonal(lt, 0)
            kl1 = (kt @ one) @ (lt @ one)
            hs[a, b] = hs[b, a] = (
                np.vdot(kt, lt) + kt.sum() * lt.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * kl1
            ) / (n * (n - 3))
            del kt, lt
    d, e = np.sqrt(np.diag(lin)), np.sqrt(np.diag(hs))
    return {"corr": corr, "lin": lin / np.outer(d, d), "deb": hs / np.outer(e, e)}


def one_pass(store: ActivationStore, items: np.ndarray, batch_size: int) -> dict:
    res = stream(store, batch_size, items=items).compute()
    return {"corr": res.correlation, "lin": res.cka_linear, "deb": res.cka_debiased}


def bench_naive(store: ActivationStore, n_items: int, batch_size: int) -> dict:
    items = np.arange(min(n_items, store.n_items))
    a, t_ours, m_ours = _traced(lambda: one_pass(store, items, batch_size))
    del a
    b, t_naive, m_naive = _traced(lambda: naive(store, items))
    del b
    # Times without tracemalloc's bookkeeping.
    a, t_ours = _timed(lambda: one_pass(store, items, batch_size), 1)
    b, t_naive = _timed(lambda: naive(store, items), 1)
    diff = {k: float(np.nanmax(np.abs(a[k] - b[k]))) for k in a}
    n = items.size
    full = store.n_items
    return {
        "n_items": int(n),
        "one_pass_seconds": round(t_ours, 2),
        "naive_seconds": round(t_naive, 2),
        "speedup": round(t_naive / t_ours, 2),
        "one_pass_peak_mb": round(m_ours / 2**20, 1),
        "naive_peak_mb": round(m_naive / 2**20, 1),
        "memory_ratio_naive_vs_one_pass": round(m_naive / m_ours, 2),
        "max_abs_difference": diff,
        "naive_gram_mb_at_full_store": round(store.n_layers * full * full * 8 / 2**20),
        "one_pass_state_mb_any_n": round(NeuronStats(store.n_layers, store.hidden).nbytes / 2**20, 1),
        "memory_measure": "tracemalloc peak (numpy allocations)",
    }


# ------------------------------------------------------------------ 3. clustering 9,984 neurons


def synthetic_activations(
    n_items: int, layers: int = 13, hidden: int = 768, factors: int = 400, seed: int = 0
) -> np.ndarray:
    """Correlation-structured activations: each neuron reads one latent factor (factors drift slowly
    across layers) with a neuron-specific noise level, so correlations span 0 ... ~1."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_items, factors)).astype(np.float32)
    x = np.empty((n_items, layers * hidden), dtype=np.float32)
    for layer in range(layers):
        drift = rng.standard_normal((n_items, factors)).astype(np.float32)
        base = base * np.float32(0.9) + drift * np.float32(math.sqrt(1 - 0.81))
        which = rng.integers(0, factors, hidden)
        noise = rng.uniform(0.05, 3.0, hidden).astype(np.float32)
        cols = slice(layer * hidden, (layer + 1) * hidden)
        x[:, cols] = base[:, which] + noise * rng.standard_normal((n_items, hidden), dtype=np.float32)
    return x


def synthetic_correlation(n_items: int, layers: int = 13, hidden: int = 768) -> tuple[np.ndarray, float]:
    """The (N, N) correlation of :func:`synthetic_activations` (via NeuronStats) and the seconds it took."""
    x = synthetic_activations(n_items, layers, hidden)
    t0 = time.perf_counter()
    stats = NeuronStats(layers, hidden)
    for start in range(0, n_items, 1024):
        stats.update(x[start : start + 1024])
    del x
    corr = stats.compute().correlation
    del stats
    gc.collect()
    return corr, time.perf_counter() - t0


def bench_clustering(corr: np.ndarray, layers: int, representative: str) -> dict:
    n = corr.shape[0]
    layer_of = np.arange(n) // (n // layers)
    gc.collect()
    base = _status("VmRSS")
    exact = _reset_peak_rss()
    t1 = time.perf_counter()
    z = correlation_linkage(corr)
    t_link = time.perf_counter() - t1
    points = threshold_sweep(
        corr, None, layer_of=layer_of, representative=representative, random_state=0, linkage=z
    )
    seconds = time.perf_counter() - t1
    extra = _status("VmHWM") - base
    p = next(q for q in points if q.threshold == 0.3)
    return {
        "representative": representative,
        "thresholds": len(points),
        "linkage_seconds": round(t_link, 2),
        "clustering_and_sweep_seconds": round(seconds, 2),
        "extra_peak_rss_mb": round(extra / 2**20, 1) if exact else None,
        "rss_before_mb_holding_corr": round(base / 2**20, 1),
        "redundant_share_at_0.3": round(p.redundant_share, 4),
        "n_clusters_at_0.3": p.n_clusters,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=DEFAULT_STORE)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--naive-items", type=int, default=4000, help="items for the naive comparison")
    ap.add_argument("--items", type=int, default=3000, help="synthetic items for the 9,984-neuron clustering")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of pass and numpy; best of each")
    ap.add_argument("--skip", nargs="*", default=[], choices=["pass", "naive", "clustering"])
    args = ap.parse_args()
    store = ActivationStore.open(args.store)
    out: dict = {"cpus": os.cpu_count(), "numpy": np.__version__}
    if "pass" not in args.skip:
        out["pass"] = bench_pass(store, args.batch_size, args.repeats)
    if "naive" not in args.skip:
        out["one_pass_vs_naive"] = bench_naive(store, args.naive_items, args.batch_size)
    if "clustering" not in args.skip:
        corr, t_stats = synthetic_correlation(args.items)
        out["clustering_9984"] = {
            "n_neurons": corr.shape[0],
            "layout": "13 x 768",
            "data": f"synthetic, {args.items} items (shared latent factors drifting across layers + noise)",
            "statistics_seconds_not_counted": round(t_stats, 1),
            "goal": "<= 60 s and <= 2048 MB extra",
            "random": bench_clustering(corr, 13, "random"),
            "central": bench_clustering(corr, 13, "central"),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
