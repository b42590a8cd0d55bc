"""``redundancy pipeline``: the efficient-transfer pipeline (LayerSelector -> CC -> FS) on one task.

Wire it into the main parser with ``add_parser(subparsers)``; the handler returns an exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._guard import guarded
from ._probe import add_probe_flags, probe_template

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = """\
The paper's efficient-transfer pipeline, for every tolerance pair (delta_layer, delta_neuron)
and clustering threshold t: pick the lowest layer l whose incremental probe (layers 0..l) is
within delta_layer percent of the oracle on dev; cluster the neurons of layers 0..l by
correlation (train activations, distance 1-|r|, average linkage, cut at t; one random neuron
per cluster) and retrain; rank the kept neurons and keep the smallest top-k of the paper's grid
within delta_neuron percent of the clustered probe on dev. Test scores are reported.
Writes OUT/pipeline.json and OUT/pipeline.md (the paper-layout table)."""


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = text.split(",")
        return float(a), float(b)
    except ValueError:
        msg = f"expected DELTA_LAYER,DELTA_NEURON (e.g. 3,1), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _thresholds(text: str) -> tuple[float | None, ...]:
    out: list[float | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in ("none", "no", "-"):
            out.append(None)
            continue
        try:
            out.append(float(part))
        except ValueError:
            msg = f"thresholds: expected numbers or 'none', got {part!r}"
            raise argparse.ArgumentTypeError(msg) from None
    return tuple(out)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``pipeline`` subcommand on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    from ..select import RANKING_METHODS

    p = subparsers.add_parser(
        "pipeline",
        help="efficient transfer: LayerSelector -> correlation clustering -> feature selection",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--train", required=True, help="train activation store (folder)")
    p.add_argument("--dev", required=True, help="dev store: every selection step uses dev")
    p.add_argument("--test", help="test store (scores reported; optional)")
    p.add_argument("--out", required=True, help="output folder for pipeline.json and pipeline.md")
    p.add_argument(
        "--grid",
        type=_pair,
        nargs="+",
        metavar="DL,DN",
        help="tolerance pairs delta_layer,delta_neuron in percent (default: 3,1 2,1 1,1)",
    )
    p.add_argument(
        "--thresholds",
        type=_thresholds,
        metavar="T,...",
        help="clustering thresholds, 'none' = no clustering step (default: none,0.3)",
    )
    p.add_argument(
        "--ranking",
        choices=list(RANKING_METHODS),
        default="auto",
        help="how feature selection ranks the kept neurons: auto (default: the ranking of all neurons, "
        "computed here on train, whose top-k probes score best on dev), paper (the clustered probe's "
        "weights: the paper exactly), abs, or one ranking of all neurons (group-lasso, l1-path, probeless)",
    )
    add_probe_flags(p)
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    """Handler of ``redundancy pipeline``."""
    from .._serial import write_json_atomic
    from .._torch import torch_threads
    from ..pipeline import run_pipeline
    from ._progress import progress_for

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    given = {"grid": args.grid, "thresholds": args.thresholds}  # unset: the pipeline's defaults
    with torch_threads(args.threads), progress_for(args) as bars:
        result = run_pipeline(
            args.train,
            args.dev,
            args.test,
            probe=probe_template(args),
            seed=args.seed,
            ranking=args.ranking,
            metric=args.metric,
            progress=bars,
            **{k: tuple(v) for k, v in given.items() if v is not None},
        )
    write_json_atomic(out / "pipeline.json", result.to_dict())
    table = result.table_markdown()
    (out / "pipeline.md").write_text(table)
    sys.stdout.write(table)
    logger.info("wrote %s, %s", out / "pipeline.json", out / "pipeline.md")
    return 0
