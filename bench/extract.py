"""Extraction benchmark: ratios measured in one run (not a timed test).

1. Throughput (words/s) of ``redundancy.extract`` vs a bare ``transformers`` forward pass
   (``output_hidden_states=True``) over the same sentences, batch size and length-sorted order.
   Goal: ratio >= 0.90.
2. Peak RSS of a whole extraction of 1,000 vs all 12,544 EWT train sentences, each in a fresh
   process. Goal: growth <= 10%.

Usage: ``python bench/extract.py [--model all-MiniLM-L6-v2] [--split dev] [--skip-rss]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from redundancy.data import load_task
from redundancy.extract import ExtractConfig, extract, load_model

RSS_CHILD = """
import json, resource, sys, tempfile
from redundancy.data import load_task
from redundancy.extract import ExtractConfig, extract
n = int(sys.argv[1])
data = load_task("pos", "train", max_items=n)
with tempfile.TemporaryDirectory() as tmp:
    cfg = ExtractConfig(batch_size=int(sys.argv[3]), threads=int(sys.argv[4]))
    res = extract(data, sys.argv[2], tmp + "/s", cfg)
print(json.dumps({"sentences": len(data.items), "words": res.n_items, "seconds": res.seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bare_forward(lm, sentences, batch_size: int) -> float:
    """Seconds for tokenizing and running the model on length-sorted batches, keeping nothing."""
    tok, model = lm.tokenizer, lm.model
    lengths = [
        len(ids) for ids in tok([list(s.words) for s in sentences], is_split_into_words=True)["input_ids"]
    ]
    order = sorted(range(len(sentences)), key=lambda i: -lengths[i])
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            words = [list(sentences[j].words) for j in order[i : i + batch_size]]
            enc = tok(
                words,
                is_split_into_words=True,
                padding=True,
                truncation=True,
                max_length=lm.max_length,
                return_tensors="pt",
            )
            model(**enc, output_hidden_states=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best counts")
    ap.add_argument("--skip-rss", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    data = load_task("pos", args.split)
    lm = load_model(args.model)
    words = data.n_items
    bare, ours = [], []
    for _ in range(args.repeats):
        bare.append(bare_forward(lm, data.items, args.batch_size))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            extract(data, lm, Path(tmp) / "s", ExtractConfig(batch_size=args.batch_size))
            ours.append(time.perf_counter() - t0)
    result = {
        "model": lm.name,
        "split": f"pos/{args.split}",
        "sentences": len(data.items),
        "words": words,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "bare_words_per_s": round(words / min(bare), 1),
        "ours_words_per_s": round(words / min(ours), 1),
        "throughput_ratio": round(min(bare) / min(ours), 3),
        "goal_ratio": 0.90,
    }
    if not args.skip_rss:
        rss = {}
        for n in (1000, 12544):
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    RSS_CHILD,
                    str(n),
                    args.model,
                    str(args.batch_size),
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rss[n] = json.loads(out.stdout.strip().splitlines()[-1])
        result["rss"] = {str(k): v for k, v in rss.items()}
        result["rss_growth"] = round(rss[12544]["peak_rss_mb"] / rss[1000]["peak_rss_mb"] - 1, 3)
        result["goal_rss_growth"] = 0.10
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
