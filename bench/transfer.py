"""Efficient-transfer benchmark: tagging speed of the compact model vs the full model + oracle probe.

Both sides run the same predict path (:class:`redundancy.compact.CompactModel`: planning, length-sorted
batches, forward pass, pooling, linear probe) over the same EWT POS test sentences, the same batch
size and thread count; only the model depth and the probe's columns differ:

* compact: the exported folder (hidden states 0..l, the selected neurons);
* full: the original model named in ``compact.json`` (hidden states 0..L) with an oracle probe on
  all ``(L + 1) x hidden`` neurons. Its weights are **random** (seeded) unless ``--oracle-train``
  and ``--oracle-dev`` stores are given: speed does not depend on the weight values.

Goal: speed-up (compact words/s / full words/s) >= 0.8 x (L + 1) / (l + 1).

If ``--compact DIR`` does not exist yet and ``--train``/``--dev`` stores are given, the pipeline is
run on them first and the row picked by ``choose_row`` (dev only) is exported into ``DIR``.

Usage::

    python bench/transfer.py --compact runs/compact/minilm-pos \\
        --train /work/stores/minilm-pos-train --dev /work/stores/minilm-pos-dev \\
        --test /work/stores/minilm-pos-test --threads 1 --repeats 4

On a machine shared with other jobs, prefer ``--threads 1``: with more threads than free cores,
passes slow down erratically (a descheduled thread stalls every parallel op).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from redundancy.compact import CompactModel, export_compact
from redundancy.data import load_task
from redundancy.extract import load_model
from redundancy.pipeline import choose_row, run_pipeline
from redundancy.probe import ElasticNetProbe, load_probe_task

logger = logging.getLogger("bench.transfer")


def make_compact(args) -> None:
    """Run the pipeline on the stores and export the row ``choose_row`` picks."""
    task = load_probe_task(args.train, args.dev, args.test)
    result = run_pipeline(task, seed=0)
    row = choose_row(result)
    logger.info(
        "pipeline: chose delta (%g, %g), t=%s: layer %d, %d neurons, dev %.4f test %.4f",
        row.delta_layer,
        row.delta_neuron,
        row.threshold,
        row.selected_layer,
        row.n_selected,
        row.dev,
        row.test,
    )
    export_compact(task, row, result.model, args.compact)


def full_model(compact: CompactModel, args) -> tuple[CompactModel, str]:
    """The original model with an oracle probe on every neuron, behind the same predict path."""
    info = compact.info
    source = info.model_source if Path(info.model_source).is_dir() else info.model
    lm = load_model(source, device=args.device, max_length=info.max_length)
    if lm.weights_sha256 != info.weights_sha256:
        raise SystemExit(f"{source}: weights differ from those the compact model was made from")
    n = lm.n_layers * lm.hidden
    full_info = replace(info, selected_layer=lm.n_layers - 1, neurons=tuple(range(n)), identity_modules=())
    K = compact.coef.shape[0]
    if args.oracle_train and args.oracle_dev:
        task = load_probe_task(args.oracle_train, args.oracle_dev)
        est = ElasticNetProbe(random_state=0).fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
        classes = tuple(task.label_map.classes[int(c)] for c in est.classes_)
        full_info = replace(full_info, classes=classes)
        coef, intercept, kind = est.coef_.astype(np.float32), est.intercept_, "trained"
    else:
        rng = np.random.default_rng(0)
        coef = rng.normal(scale=0.05, size=(K, n)).astype(np.float32)
        intercept, kind = np.zeros(K), "random weights (speed does not depend on them)"
    full = CompactModel(
        lm=lm, info=full_info, coef=coef, intercept=intercept, device=args.device, threads=args.threads
    )
    return full, kind


def timed_pair(compact: CompactModel, full: CompactModel, sentences, repeats: int) -> dict[str, list[float]]:
    """Seconds per pass of each side; the sides alternate, and which goes first alternates too,
    so that a load that drifts (other jobs on the machine) hits both alike."""
    sides = {"compact": compact, "full": full}
    for m in sides.values():
        m.predict_words(sentences[:64])  # warm-up: allocator, thread pool, tokenizer caches
    times: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(repeats):
        for name in ("compact", "full") if r % 2 == 0 else ("full", "compact"):
            t0 = time.perf_counter()
            sides[name].predict_words(sentences)
            times[name].append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--compact", required=True, help="compact model folder (made from --train/--dev if absent)"
    )
    p.add_argument("--train", help="train store, to export the compact model when --compact is absent")
    p.add_argument("--dev", help="dev store (with --train)")
    p.add_argument("--test", help="test store (optional, scores reported in compact.json)")
    p.add_argument("--oracle-train", help="train store to fit a real oracle probe (default: random weights)")
    p.add_argument("--oracle-dev", help="dev store for that oracle's early stopping")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per model (the best is reported)")
    p.add_argument("--max-sentences", type=int, help="first N EWT test sentences (default all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="write the numbers as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)

    if not Path(args.compact).exists():
        if not (args.train and args.dev):
            raise SystemExit(f"{args.compact} does not exist; give --train and --dev to make it")
        make_compact(args)
    compact = CompactModel.load(args.compact, device=args.device, threads=args.threads)
    full, oracle_kind = full_model(compact, args)
    for m in (compact, full):
        m.batch_size = args.batch_size
    info = compact.info
    if info.task != "pos" or info.level != "token":
        raise SystemExit(f"this benchmark tags EWT POS; the compact model is for {info.task!r}")

    data = load_task("pos", "test", max_items=args.max_sentences)
    sentences = [list(s.words) for s in data.items]
    gold = [lab for s in data.items for lab in s.labels]
    n_words = len(gold)

    load_before = os.getloadavg()
    times = timed_pair(compact, full, sentences, args.repeats)
    load_after = os.getloadavg()
    best = {k: min(v) for k, v in times.items()}
    wps = {k: n_words / v for k, v in best.items()}
    paired = statistics.median(f / c for c, f in zip(times["compact"], times["full"], strict=True))
    tags = [t for s in compact.predict_words(sentences) for t in s]
    accuracy = float(np.mean([a == b for a, b in zip(tags, gold, strict=True)]))

    l_states, full_states = info.n_states, info.n_layers_full
    speedup = wps["compact"] / wps["full"]
    goal = 0.8 * full_states / l_states
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}, device {args.device}",
        "model": info.model,
        "sentences": len(sentences),
        "words": n_words,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "load_average_1min": [load_before[0], load_after[0]],
        "compact": {
            "hidden_states": l_states,
            "transformer_layers": info.selected_layer,
            "neurons": len(info.neurons),
            "seconds": times["compact"],
            "words_per_s": wps["compact"],
            "size_mb": info.size_bytes / 1e6,
            "test_accuracy_here": accuracy,
            "test_recorded": info.test,
        },
        "full": {
            "hidden_states": full_states,
            "transformer_layers": full_states - 1,
            "neurons": info.n_neurons_full,
            "oracle_probe": oracle_kind,
            "seconds": times["full"],
            "words_per_s": wps["full"],
            "weights_mb": None if info.full_model_bytes is None else info.full_model_bytes / 1e6,
        },
        "speedup": speedup,
        "speedup_median_of_pairs": paired,
        "goal": goal,
        "goal_met": speedup >= goal,
    }
    print(f"machine: {report['machine']}")
    print(f"text: EWT POS test, {len(sentences)} sentences, {n_words} words, batch {args.batch_size}")
    print(
        f"best of {args.repeats} passes each, sides alternated; 1-min load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} CPUs)"
    )
    print(
        f"compact: hidden states 0..{l_states - 1} ({l_states} of {full_states}), "
        f"{len(info.neurons)} neurons: {wps['compact']:,.0f} words/s "
        f"(accuracy here {100 * accuracy:.2f} %, recorded test {100 * info.test:.2f} %)"
    )
    print(
        f"full + oracle: hidden states 0..{full_states - 1} ({full_states}), {info.n_neurons_full} "
        f"neurons, probe {oracle_kind}: {wps['full']:,.0f} words/s"
    )
    print(
        f"speed-up {speedup:.2f}x (best passes; median of per-repeat ratios {paired:.2f}x); "
        f"goal >= 0.8 x {full_states}/{l_states} = {goal:.2f}x: {'met' if speedup >= goal else 'NOT met'}"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
