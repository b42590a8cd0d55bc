"""Side by side with NeuroX 1.0.9 (the paper's authors' toolkit, PyPI ``neurox``): the same activations,
threads and recipe, each measurement its own process, the minimum of ``--repeats`` runs, peak RSS.

Measured, for the model of the stores given (run it once per model: all-MiniLM-L6-v2 and
all-mpnet-base-v2, the paper's 9,984 neurons):

* **extraction** of the sentences' every hidden state (mean of subwords): NeuroX
  ``transformers_extractor.extract_representations`` (HDF5) vs ``redundancy.extract.extract`` (reading the
  CoNLL-U data included) vs a bare length-sorted ``transformers`` forward loop, batches of 32 (the limit);
  whole-process times as the driver sees them, and in-process times; on the first ``--sentences``
  train sentences and on the first ``--words`` train words (whole sentences, as the job's cap);
* **one probe on all neurons**: NeuroX ``linear_probe.train_logistic_regression_probe`` (its defaults:
  Adam lr 1e-3, batch 32, 10 epochs; λ1 = λ2 = 1e-5 as the paper) vs ``ElasticNetProbe`` with both solvers;
  fit time and dev accuracy (NeuroX's ``evaluate_probe``; ours ``score``);
* **neuron ranking** from that probe: NeuroX ``get_neuron_ordering`` (search stride 1000, as the paper)
  vs ``redundancy.select.rank_neurons(..., "paper")``, and our group-lasso path ranking;
* **the probe family against the machine** (``family-peak``): the probe stage's layer family on the whole
  train store, its achieved GFLOP/s against torch's float32 matrix product (square 2,048, and the family's
  own per-step shape);
* **the statistics pass against the machine** (``stats-peak``): ``NeuronStats`` over the prepared train
  rows (float64 Gram matrix and the CKA terms) against numpy's float64 ``Z.T @ Z`` on the same chunk;
* **correlation clustering**: NeuroX ``clustering.create_correlation_clusters`` at one threshold (0.3) vs
  our one-pass statistics + average linkage + the whole 21-threshold sweep (``redundancy.general``).

NeuroX pins 2021 libraries (torch 1.8, numpy 1.19, transformers 4.6), so it gets its own virtual
environment in ``WORK/neurox-venv``: torch 2.13.0 (this machine's CPU wheel), numpy, scipy,
scikit-learn, imbalanced-learn, h5py, tqdm (what the modules used here import), then ``neurox==1.0.9
--no-deps``. One shim: ``np.int = int`` before NeuroX is imported -- NeuroX's ``utils.create_tensors``
uses ``np.int``, removed in numpy 1.24 (it is imported with the module; this bench does not call it).

The activations are the first ``--sentences`` train sentences of a store (default 2,000) and the whole
dev store, written once as ``.npy`` files in WORK that both sides read.

Usage: ``python bench/peers.py --train DIR --dev DIR [--work DIR] [--sentences 2000] [--words 150000]
[--threads 2] [--repeats 2]``; prints one JSON object with every measurement and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NEUROX = "neurox==1.0.9"
_NEUROX_DEPS = ("numpy", "scipy", "scikit-learn", "imbalanced-learn", "h5py", "tqdm")


# ------------------------------------------------------------------ set-up (main process)


def neurox_python(work: Path) -> Path:
    """The NeuroX virtual environment's interpreter (created and filled on first use; ``$NEUROX_VENV``
    names an existing one instead)."""
    venv = Path(os.environ.get("NEUROX_VENV") or work / "neurox-venv")
    py = venv / "bin" / "python"
    if (venv / ".installed").is_file():
        return py
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)  # the CPU wheel first, as the project's set-up
    subprocess.run([*pip, *_NEUROX_DEPS], check=True)
    subprocess.run([*pip, "--no-deps", NEUROX], check=True)
    (venv / ".installed").touch()
    return py


def _write_corpus(data: Path, name: str, sents) -> None:
    """The sentences as NeuroX reads them (one per line) and as ours and the bare loop read them."""
    (data / f"corpus-{name}.txt").write_text("".join(" ".join(x.words) + "\n" for x in sents))
    (data / f"corpus-{name}.json").write_text(json.dumps([list(x.words) for x in sents]))


def prepare(train: str, dev: str, sentences: int, words: int, work: Path) -> dict:
    """Write the first ``sentences`` train sentences' activations and all of dev as .npy (float32), and
    the extraction corpora: those sentences, and the first ``words`` train words (0: none)."""
    from redundancy.probe import load_probe_task

    task = load_probe_task(train, dev)
    sid = task.train.sentence_ids
    rows = np.flatnonzero(sid < np.unique(sid)[:sentences][-1] + 1) if sentences else np.arange(sid.size)
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    np.save(data / "X_train.npy", np.ascontiguousarray(task.X_train[rows], dtype=np.float32))
    np.save(data / "y_train.npy", task.train.y[rows].astype(np.int64))
    keep = task.dev.y >= 0  # dev labels unseen in train are left out on both sides
    np.save(data / "X_dev.npy", np.ascontiguousarray(task.X_dev[keep], dtype=np.float32))
    np.save(data / "y_dev.npy", task.dev.y[keep].astype(np.int64))
    from redundancy.data import load_task

    name = task.train.store.manifest.task
    sents = load_task(name, "train", max_items=sentences or None).items
    _write_corpus(data, "sentences", sents)
    corpora = {"sentences": {"sentences": len(sents), "words": sum(len(x.words) for x in sents)}}
    if words:
        sents = load_task(name, "train", max_tokens=words).items  # whole sentences, as the job's cap
        _write_corpus(data, "words", sents)
        corpora["words"] = {"sentences": len(sents), "words": sum(len(x.words) for x in sents)}
    (data / "task.txt").write_text(task.train.store.manifest.task)
    (data / "stores.json").write_text(json.dumps({"train": str(train), "dev": str(dev)}))
    m = task.train.store.manifest
    (data / "info.json").write_text(json.dumps({"n_layers": task.n_layers, "hidden": task.hidden}))
    return {
        "model": m.model,
        "task": m.task,
        "train_rows": int(rows.size),
        "train_sentences": int(np.unique(sid[rows]).size),
        "dev_rows": int(keep.sum()),
        "neurons": int(task.n_neurons),
        "classes": len(task.label_map.classes),
        "extraction_corpora": corpora,
    }


# ------------------------------------------------------------------ workers (their own processes)


def _load(work: Path):
    d = work / "data"
    return (
        np.load(d / "X_train.npy"),
        np.load(d / "y_train.npy"),
        np.load(d / "X_dev.npy"),
        np.load(d / "y_dev.npy"),
    )


def _shim_np_int() -> None:
    """NeuroX's ``utils.create_tensors`` uses ``np.int``, removed in numpy 1.24; put the alias back."""
    setattr(np, "int", int)  # noqa: B010 (a plain assignment is rewritten by ruff's NPY001 fix)


def _neurox_probe(work: Path) -> dict:
    _shim_np_int()
    from neurox.interpretation import linear_probe

    X, y, Xd, yd = _load(work)
    t0 = time.perf_counter()
    probe = linear_probe.train_logistic_regression_probe(X, y, lambda_l1=1e-5, lambda_l2=1e-5)
    fit = time.perf_counter() - t0
    classes = {str(c): int(c) for c in np.unique(y)}
    dev = linear_probe.evaluate_probe(probe, Xd, yd, idx_to_class={v: k for k, v in classes.items()})
    t0 = time.perf_counter()
    linear_probe.get_neuron_ordering(probe, classes, search_stride=1000)
    return {"fit_s": fit, "dev": float(dev["__OVERALL__"]), "rank_s": time.perf_counter() - t0}


def _our_probe(work: Path, solver: str) -> dict:
    from redundancy.probe import ElasticNetProbe
    from redundancy.select import rank_neurons

    X, y, Xd, yd = _load(work)
    t0 = time.perf_counter()
    probe = ElasticNetProbe(solver=solver).fit(X, y, Xd, yd)
    fit = time.perf_counter() - t0
    dev = probe.score(Xd, yd)
    t0 = time.perf_counter()
    rank_neurons(probe.scaled_coef_, "paper", search_stride=1000)
    return {"fit_s": fit, "dev": float(dev), "rank_s": time.perf_counter() - t0}


def _our_path(work: Path) -> dict:
    from redundancy.probe import PathSettings
    from redundancy.probe._path import fit_path  # bench code may read the solver directly

    X, y, _, _ = _load(work)
    _, codes = np.unique(y, return_inverse=True)
    s = PathSettings()
    t0 = time.perf_counter()
    fit_path(
        X[: s.max_rows],
        codes[: s.max_rows],
        n_outputs=int(codes.max()) + 1,
        regression=False,
        group=True,
        l2=1e-5,
        lr=s.lr,
        batch_size=s.batch_size,
        n_lambdas=s.n_lambdas,
        epochs=s.epochs,
        min_ratio=s.min_ratio,
    )
    return {"rank_s": time.perf_counter() - t0}


def _neurox_cluster(work: Path) -> dict:
    _shim_np_int()
    from neurox.interpretation import clustering

    X, _, _, _ = _load(work)
    t0 = time.perf_counter()
    labels = clustering.create_correlation_clusters(X, use_abs_correlation=True, clustering_threshold=0.3)
    return {"seconds": time.perf_counter() - t0, "thresholds": 1, "clusters_at_0.3": int(len(set(labels)))}


def _our_cluster(work: Path) -> dict:
    from redundancy.general import NeuronStats, correlation_linkage, threshold_sweep

    X, _, _, _ = _load(work)
    t0 = time.perf_counter()
    n = X.shape[1]
    stats = NeuronStats(1, n)
    for start in range(0, X.shape[0], 8192):
        stats.update(X[start : start + 8192])
    corr = stats.compute(correlation=True).correlation
    z = correlation_linkage(corr)
    points = threshold_sweep(corr, None, random_state=0, linkage=z)
    at = next(p for p in points if abs(p.threshold - 0.3) < 1e-9)
    return {"seconds": time.perf_counter() - t0, "thresholds": len(points), "clusters_at_0.3": at.n_clusters}


def _corpus() -> str:
    """The extraction corpus of this worker (``sentences`` or ``words``, see :func:`prepare`)."""
    return os.environ.get("PEERS_CORPUS", "sentences")


def _cluster_sweep(work: Path) -> dict:
    """Our clustering alone, from the neurons' correlation matrix (the statistics pass has its own row,
    ``stats-peak``): the distances, average linkage and the whole 21-threshold sweep, as the general
    stage runs them after its pass."""
    from redundancy.general import correlation_linkage, threshold_sweep

    corr = np.load(work / "data" / "corr.npy")
    t0 = time.perf_counter()
    z = correlation_linkage(corr)
    points = threshold_sweep(corr, None, random_state=0, linkage=z)
    at = next(p for p in points if abs(p.threshold - 0.3) < 1e-9)
    return {"seconds": time.perf_counter() - t0, "thresholds": len(points), "clusters_at_0.3": at.n_clusters}


def _write_corr(work: Path) -> None:
    """The correlation matrix of the prepared train rows (``NeuronStats``), once, for ``cluster-sweep``."""
    from redundancy.general import NeuronStats

    path = work / "data" / "corr.npy"
    if path.is_file():
        return
    X, _, _, _ = _load(work)
    stats = NeuronStats(1, X.shape[1])
    for start in range(0, X.shape[0], 8192):
        stats.update(X[start : start + 8192])
    np.save(path, stats.compute(correlation=True).correlation)


def _neurox_extract(work: Path, model: str) -> dict:
    _shim_np_int()
    from neurox.data.extraction import transformers_extractor

    out = work / "neurox.hdf5"
    t0 = time.perf_counter()
    transformers_extractor.extract_representations(
        model, str(work / "data" / f"corpus-{_corpus()}.txt"), str(out), aggregation="average", device="cpu"
    )
    seconds = time.perf_counter() - t0
    out.unlink()
    return {"seconds": seconds}


def _our_extract(work: Path, model: str) -> dict:
    import shutil

    from redundancy.data import load_task
    from redundancy.extract import ExtractConfig, extract

    corpus = json.loads((work / "data" / f"corpus-{_corpus()}.json").read_text())
    shutil.rmtree(work / "ours-store", ignore_errors=True)  # a complete store would make it a no-op
    t0 = time.perf_counter()
    task = (work / "data" / "task.txt").read_text()
    # reading the data is part of the work: the same first sentences, read as the job reads them
    cap = {"max_items": len(corpus)} if _corpus() == "sentences" else {"max_tokens": sum(map(len, corpus))}
    data = load_task(task, "train", **cap)
    res = extract(data, model, work / "ours-store", ExtractConfig(aggregation="mean"))
    return {"seconds": time.perf_counter() - t0, "words": res.n_items}


def _bare_extract(work: Path, model: str) -> dict:
    """The limit: tokenize and run the model on length-sorted batches of 32, keeping nothing."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    sentences = json.loads((work / "data" / f"corpus-{_corpus()}.json").read_text())
    tok = AutoTokenizer.from_pretrained(model)
    net = AutoModel.from_pretrained(model).eval()
    t0 = time.perf_counter()
    lengths = [len(ids) for ids in tok(sentences, is_split_into_words=True)["input_ids"]]
    order = sorted(range(len(sentences)), key=lambda i: -lengths[i])
    with torch.inference_mode():
        for i in range(0, len(order), 32):
            batch = [sentences[j] for j in order[i : i + 32]]
            enc = tok(batch, is_split_into_words=True, padding=True, truncation=True, return_tensors="pt")
            net(**enc, output_hidden_states=True)
    return {"seconds": time.perf_counter() - t0}


def _matmul_gflops(m: int, k: int, n: int, repeats: int = 5) -> float:
    """torch's float32 matrix-product speed (the BLAS the probes use) on an (m, k) @ (k, n) product."""
    import torch

    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * m * k * n / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _family_peak(work: Path) -> dict:
    """The probe stage's layer family (one probe per layer + incremental probes, as ``layer_probes``)
    on the whole train store: its achieved GFLOP/s against torch's own matrix-product speed on the
    family's largest per-step product and on a square 2,048 product."""
    from redundancy.probe import ElasticNetProbe, fit_probe_family, load_probe_task
    from redundancy.probe._fast import _layout, merge_cost  # bench code may read the solver's layout

    stores = json.loads((work / "data" / "stores.json").read_text())
    task = load_probe_task(stores["train"], stores["dev"])
    L, h, D = task.n_layers, task.hidden, task.n_neurons
    ranges = [[(i * h, (i + 1) * h)] for i in range(L)] + [[(0, (i + 1) * h)] for i in range(1, L)]
    probe = ElasticNetProbe()
    K = len(np.unique(task.train.y))
    t0 = time.perf_counter()
    fitted = fit_probe_family(probe, task.X_train, task.train.y, ranges, task.X_dev, task.dev.y)
    seconds = time.perf_counter() - t0
    settings = fitted[0].solver_settings_
    batch = int(settings["batch_size"])
    lay = _layout(ranges, D, merge_cost(batch, K))
    width_members = sum((b - a) * len(m) for (a, b), m in zip(lay.bounds, lay.members, strict=True))
    steps = max(int(p.n_iter_) for p in fitted)
    n = task.X_train.shape[0]
    rows = min(steps * batch, int(np.ceil(steps * batch / n) * n))  # rows pushed through, about
    evals = len(fitted[0].history_) if hasattr(fitted[0], "history_") else 0
    flops = 4 * rows * K * width_members + 2 * evals * task.X_dev.shape[0] * K * width_members
    achieved = flops / seconds / 1e9
    shape_peak = _matmul_gflops(batch, D, max(len(m) for m in lay.members) * K)
    square_peak = _matmul_gflops(2048, 2048, 2048)
    return {
        "seconds": seconds,
        "probes": len(ranges),
        "steps": steps,
        "batch": batch,
        "gflop": flops / 1e9,
        "achieved_gflops": achieved,
        "matmul_gflops_family_shape": shape_peak,
        "matmul_gflops_square_2048": square_peak,
        "share_of_square_peak": achieved / square_peak,
    }


def _stats_peak(work: Path) -> dict:
    """The general stage's one-pass statistics (``NeuronStats``: float64 Gram matrix by ``dsyrk``, plus
    the CKA terms) over the prepared train rows, against the float64 matrix product that bounds it:
    numpy's ``Z.T @ Z`` on the same chunk shape (the pass does half of its flops: one triangle)."""
    from redundancy.general import NeuronStats

    X, _, _, _ = _load(work)
    info = json.loads((work / "data" / "info.json").read_text())
    stats = NeuronStats(info["n_layers"], info["hidden"])
    t0 = time.perf_counter()
    stats.update(X)
    stats.compute(correlation=True)
    seconds = time.perf_counter() - t0
    n, N = X.shape
    rows = max(1, min(n, int(stats.chunk_bytes) // (8 * N)))
    z = np.asarray(X[:rows], dtype=np.float64)
    z.T @ z
    best = min(_timed(lambda: z.T @ z) for _ in range(3))
    peak = 2 * rows * N * N / best / 1e9
    achieved = n * N * (N + 1) / seconds / 1e9  # the upper triangle's multiply-adds
    return {
        "seconds": seconds,
        "rows": n,
        "neurons": N,
        "chunk_rows": rows,
        "achieved_gflops": achieved,
        "matmul_gflops_float64_chunk": peak,
        "share_of_peak": achieved / peak,
    }


WORKERS = {
    "probe-neurox": _neurox_probe,
    "probe-fast": lambda w: _our_probe(w, "fast"),
    "probe-paper": lambda w: _our_probe(w, "paper"),
    "rank-path": _our_path,
    "cluster-neurox": _neurox_cluster,
    "cluster-ours": _our_cluster,
    "cluster-sweep": _cluster_sweep,
    "family-peak": _family_peak,
    "stats-peak": _stats_peak,
}
MODEL_WORKERS = {
    "extract-neurox": _neurox_extract,
    "extract-ours": _our_extract,
    "extract-bare": _bare_extract,
}


def _worker(name: str, work: Path, threads: int, model: str | None) -> None:
    import torch

    torch.set_num_threads(threads)
    out = MODEL_WORKERS[name](work, model) if name in MODEL_WORKERS else WORKERS[name](work)
    out["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out))


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` (its own address space; ``ru_maxrss`` would carry the driver's
    peak across ``exec`` on Linux), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ driver


def measure(
    name: str,
    python: Path,
    work: Path,
    threads: int,
    repeats: int,
    model: str = "",
    corpus: str = "sentences",
) -> dict:
    """``repeats`` runs of one worker, each its own process; the fastest run's record. ``process_s``
    is the whole process (start-up, imports, reading, writing) as the driver saw it."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1",
        PEERS_CORPUS=corpus,
    )
    runs = []
    for _ in range(repeats):
        cmd = [str(python), __file__, "--worker", name, "--work", str(work), "--threads", str(threads)]
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, "--model", model], capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]) | {"process_s": wall})
    key = (
        "process_s"
        if name in MODEL_WORKERS
        else "fit_s"
        if "fit_s" in runs[0]
        else "rank_s"
        if "rank_s" in runs[0]
        else "seconds"
    )
    best = min(runs, key=lambda r: r[key])
    best["runs"] = [round(r[key], 3) for r in runs]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train")
    ap.add_argument("--dev")
    ap.add_argument("--work", default="runs/bench-peers")
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--words", type=int, default=150000, help="second extraction corpus (0: skip it)")
    ap.add_argument(
        "--only", choices=("extraction", "probes"), help="measure only the extraction rows, or only the rest"
    )
    ap.add_argument("--workers", help="with --only probes: just these (comma-separated, e.g. cluster-sweep)")
    ap.add_argument(
        "--corpora", default="sentences,words", help="the extraction corpora to measure (comma-separated)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model", default="", help="model folder (default: the train store's model)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.work).resolve()
    if args.worker:
        _worker(args.worker, work, args.threads, args.model or None)
        return
    if not (args.train and args.dev):
        ap.error("--train and --dev are required")
    work.mkdir(parents=True, exist_ok=True)
    info = prepare(args.train, args.dev, args.sentences, args.words, work)
    nx = neurox_python(work)
    ours = Path(sys.executable)
    from redundancy.extract import resolve_model

    model = args.model or str(resolve_model(info["model"]).path)

    def python_of(name: str) -> Path:
        return nx if name.endswith("neurox") else ours

    r = {}
    ratios = {}
    wanted = set(args.corpora.split(","))
    corpora = [] if args.only == "probes" else [c for c in info["extraction_corpora"] if c in wanted]
    for corpus in corpora:
        for n in MODEL_WORKERS:
            r[f"{n}@{corpus}"] = measure(n, python_of(n), work, args.threads, args.repeats, model, corpus)
        bare, mine, theirs = (r[f"extract-{w}@{corpus}"] for w in ("bare", "ours", "neurox"))
        ratios |= {
            f"extract_{corpus}_whole_process_ours_over_bare_forward": bare["seconds"] / mine["process_s"],
            f"extract_{corpus}_whole_process_ours_over_bare_whole_process": bare["process_s"]
            / mine["process_s"],
            f"extract_{corpus}_in_process_ours_over_bare_forward": bare["seconds"] / mine["seconds"],
            f"extract_{corpus}_whole_process_neurox_over_ours": theirs["process_s"] / mine["process_s"],
        }
    if args.only == "extraction":
        _report(info, args, r, ratios)
        return
    _write_corr(work)
    for n in WORKERS if not args.workers else args.workers.split(","):
        r[n] = measure(n, python_of(n), work, args.threads, args.repeats, model)
    if args.workers:
        _report(info, args, r, ratios)
        return
    ratios |= {
        "probe_fit_neurox_over_fast": r["probe-neurox"]["fit_s"] / r["probe-fast"]["fit_s"],
        "probe_fit_neurox_over_paper": r["probe-neurox"]["fit_s"] / r["probe-paper"]["fit_s"],
        "probe_dev_fast_minus_neurox": r["probe-fast"]["dev"] - r["probe-neurox"]["dev"],
        "rank_neurox_over_paper_ranking": r["probe-neurox"]["rank_s"] / max(r["probe-fast"]["rank_s"], 1e-9),
        "cluster_neurox_one_threshold_over_our_sweep": r["cluster-neurox"]["seconds"]
        / r["cluster-ours"]["seconds"],
        "cluster_peak_rss_neurox_over_ours": r["cluster-neurox"]["peak_rss_mb"]
        / r["cluster-ours"]["peak_rss_mb"],
        "cluster_neurox_one_threshold_over_our_clustering_and_sweep": r["cluster-neurox"]["seconds"]
        / r["cluster-sweep"]["seconds"],
        "family_share_of_square_matmul_peak": r["family-peak"]["share_of_square_peak"],
        "stats_pass_share_of_float64_matmul_peak": r["stats-peak"]["share_of_peak"],
    }
    _report(info, args, r, ratios)


def _report(info: dict, args: argparse.Namespace, r: dict, ratios: dict) -> None:
    """Print every measurement and the ratios as one JSON object."""
    print(
        json.dumps(
            {
                "data": info,
                "threads": args.threads,
                "repeats": args.repeats,
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                "results": r,
                "ratios": {k: round(v, 3) for k, v in ratios.items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
