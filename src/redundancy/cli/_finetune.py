"""``redundancy finetune``: fine-tune a model on a GLUE task and save a Hugging Face folder.

Wire it into the main parser with ``add_parser(subparsers)``; the handler returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ._guard import check_unlocked, guarded
from ._progress import progress_for

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = """\
Fine-tune a model with a classification head (a regression head for STS-B) on a sentence task:
its train split (90% of the official train set, carved with seed 7361) is trained on and its dev
split (the other 10%) scored after every epoch. Defaults are the paper's recipe (Hugging Face
run_glue): AdamW, lr 5e-5, 3 epochs, batch 8, max length 128, seed 42, linear decay, no warm-up.
Writes a standard model folder (loadable by `redundancy extract --model OUT`) and OUT/finetune.json.
Rerunning the same command resumes from OUT/checkpoint/."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``finetune`` subcommand on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on a sentence task (GLUE) and save it",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="model folder, shipped name (all-MiniLM-L6-v2) or hub id")
    p.add_argument(
        "--task", required=True, help="sentence task: sst2, mrpc, stsb, rte, cola, qnli, mnli, qqp"
    )
    p.add_argument("--out", required=True, help="output folder (the fine-tuned model, finetune.json)")
    p.add_argument("--data-dir", help="data directory (default: $REDUNDANCY_DATA, else ../shared/data)")
    p.add_argument(
        "--epochs",
        type=float,
        default=3.0,
        help="passes over the train split; fixes the schedule (default 3)",
    )
    p.add_argument("--max-train-examples", type=int, metavar="N", help="train on the first N examples only")
    p.add_argument(
        "--max-steps",
        type=int,
        metavar="N",
        help="stop after N steps in all (the schedule stays that of --epochs; rerun without it to finish)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="examples per step (default 8)")
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate of AdamW (default 5e-5)")
    p.add_argument("--max-length", type=int, default=128, help="longest input in tokens (default 128)")
    p.add_argument(
        "--seed", type=int, default=42, help="head initialisation, data order, dropout (default 42)"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        metavar="N",
        help="write the resumable checkpoint every N steps and at epoch ends (default 500; 0: epoch ends)",
    )
    p.add_argument("--log-every", type=int, default=50, metavar="N", help="record the loss every N steps")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep OUT/checkpoint/ after finishing")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    """Handler of ``redundancy finetune``: prints the summary of ``finetune.json`` as JSON."""
    from ..finetune import FinetuneConfig, finetune

    check_unlocked(args.out)  # not under a run folder that a running `redundancy run` holds
    config = FinetuneConfig(
        lr=args.lr,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        max_train_examples=args.max_train_examples,
        max_steps=args.max_steps,
        checkpoint_every=args.checkpoint_every or None,
        log_every=args.log_every,
        keep_checkpoint=args.keep_checkpoint,
        threads=args.threads,
        device=args.device,
    )
    with progress_for(args) as progress:
        result = finetune(args.task, args.model, args.out, config, data_dir=args.data_dir, progress=progress)
    json.dump(result.summary(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    if not result.finished:
        logger.info(
            "stopped at step %d of %d; rerun without --max-steps to finish", result.steps, result.total_steps
        )
    return 0
