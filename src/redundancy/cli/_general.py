"""``redundancy general``: neuron correlations, layer CKA and the clustering sweep of one store."""

from __future__ import annotations

import argparse
import json
import logging
import re

from ._guard import guarded
from ._progress import progress_for

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = (
    "Read an activation store once (all layers) and compute, in float64: the Pearson correlation of every "
    "pair of neurons, linear and debiased linear CKA for every pair of layers, and correlation clustering "
    "(distance 1-|r|, average linkage) cut at a sweep of thresholds. Writes general.json, linkage.npy and "
    "PNG figures to --out and prints a summary."
)


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (0.1,0.2,0.3): {exc}") from exc
    if not values:
        raise argparse.ArgumentTypeError("expected comma-separated numbers (0.1,0.2,0.3)")
    return values  # their range is run_general's to check, in the words the job and Python get


def _step(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("--step must lie in (0, 1]")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _compact_json(obj) -> str:
    """Indented JSON with every innermost list (a matrix row, a share per layer) on one line."""
    text = json.dumps(obj, indent=2)
    inner = re.compile(r"\[\s+([^\[\]{}]*?)\s+\]")
    return inner.sub(lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)


@guarded
def _cmd_general(args: argparse.Namespace) -> int:
    from ..general import run_general

    given = {  # unset ones: run_general's defaults
        "step": args.step,
        "report_threshold": args.report_threshold,
        "representative": args.representative,
        "batch_size": args.batch_size,
    }
    with progress_for(args) as progress:
        result = run_general(
            args.store,
            args.out,
            thresholds=args.thresholds,
            seed=args.seed,
            save_correlation=args.save_correlation,
            figures=not args.no_figures,
            progress=progress,
            **{k: v for k, v in given.items() if v is not None},
        )
    print(_compact_json(result.summary()))
    return 0


def add_parser(subparsers) -> None:
    """Register the ``general`` subcommand on an ``argparse`` subparsers object."""
    g = subparsers.add_parser(
        "general",
        help="neuron correlations, layer CKA and correlation clustering of a store",
        description=DESCRIPTION,
    )
    g.add_argument("--store", required=True, help="activation store folder (from `redundancy extract`)")
    g.add_argument("--out", required=True, help="output folder for general.json, linkage.npy and figures")
    sweep = g.add_mutually_exclusive_group()
    sweep.add_argument(
        "--thresholds",
        type=_thresholds,
        help="distance thresholds to cut at, comma-separated (e.g. 0.1,0.2,0.3)",
    )
    sweep.add_argument("--step", type=_step, help="sweep 0.0, step, ..., 1.0 (default 0.05)")
    g.add_argument(
        "--report-threshold",
        type=float,
        help="headline threshold, added to the sweep if missing (default 0.3, as the paper)",
    )
    g.add_argument(
        "--representative",
        choices=["random", "central"],
        help="neuron kept per cluster: random (the paper) or the most central member (default random)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the random representative picks (default 0)")
    g.add_argument("--batch-size", type=_positive, help="items read per batch (default 4096)")
    g.add_argument(
        "--save-correlation",
        action="store_true",
        help="also save the N x N correlation matrix as correlation.npy (float32)",
    )
    g.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=_cmd_general)
