"""``redundancy probe``: the task-specific redundancy analysis over one task's train/dev/test stores.

Wire it into the main parser with ``add_parser(subparsers)``; the handler returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ._guard import guarded
from ._progress import progress_for

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = """\
Train linear probes on stored activations and measure task-specific redundancy:
the oracle (all neurons), one probe per layer, incremental probes on layers 0..l,
a neuron ranking from the oracle's weights, and the minimal neuron set (the smallest
top-k of the paper's grid whose dev score stays within --delta percent of the oracle).
Controls (unless --no-controls): random and bottom-ranked neurons at the same k, and the
oracle over several seeds. Writes OUT/probe.json, OUT/layers.png and OUT/sizes.png."""


def add_probe_flags(p: argparse.ArgumentParser) -> None:
    """The flags of the probe template and its run, shared by ``probe`` and ``pipeline``.

    Defaults left unset (None) are the library's own (``ElasticNetProbe``'s: fast solver,
    l1 = l2 = 1e-5); :func:`probe_template` passes on only what was given.
    """
    p.add_argument(
        "--solver",
        choices=["fast", "paper"],
        help="fast (default): standardised minibatch Adam + L1 prox, early stopping, families in "
        "one pass; paper: the authors' Adam recipe (lr 1e-3, batch 128, 10 epochs, data order)",
    )
    p.add_argument("--l1", type=float, help="L1 penalty weight (default 1e-5, as the paper)")
    p.add_argument("--l2", type=float, help="L2 penalty weight (default 1e-5, as the paper)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="base seed of the probes (and of the pipeline's cluster representatives; default 0)",
    )
    p.add_argument(
        "--metric",
        help="override the task's metric (accuracy, macro_f1, chunk_f1, f1, mcc, pearson, spearman)",
    )
    p.add_argument("--max-epochs", type=float, help="passes over the data (default: fast 2, paper 10)")
    p.add_argument(
        "--batch-size", type=int, help="rows per step (default: fast 512 or full batch, paper 128)"
    )
    p.add_argument("--lr", type=float, help="Adam step size (default 1e-3)")
    p.add_argument("--class-weight", choices=["balanced"], help="weight classes inversely to their frequency")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def probe_template(args: argparse.Namespace):
    """The ``ElasticNetProbe`` of :func:`add_probe_flags`' flags (unset ones: the probe's defaults)."""
    from ..probe import ElasticNetProbe

    given = {
        "l1": args.l1,
        "l2": args.l2,
        "solver": args.solver,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "max_epochs": args.max_epochs,
        "class_weight": args.class_weight,
    }
    return ElasticNetProbe(**{k: v for k, v in given.items() if v is not None}, random_state=args.seed)


def _given(**kw):
    """The keyword arguments that were given (None: leave the library's default)."""
    return {k: v for k, v in kw.items() if v is not None}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``probe`` subcommand on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    from ..select import RANKING_METHODS, RANKINGS

    p = subparsers.add_parser(
        "probe",
        help="probes, layer-wise/incremental scores, neuron ranking, minimal neuron set",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--train", required=True, help="train activation store (folder)")
    p.add_argument("--dev", required=True, help="dev store: early stopping and the minimal-set criterion")
    p.add_argument("--test", help="test store (scores reported; optional)")
    p.add_argument("--out", required=True, help="output folder for probe.json and the figures")
    p.add_argument(
        "--delta",
        type=float,
        help="minimal set: dev must stay strictly above oracle * (1 - delta/100) (default 1)",
    )
    p.add_argument(
        "--ranking",
        choices=list(RANKING_METHODS),
        help="neuron ranking of the minimal set: auto (default: of the rankings compared, the one whose "
        "top-k probes score best on dev), paper (the class-wise weight mass: the paper exactly), "
        "group-lasso / l1-path (entry order of a sparse path on train), probeless (NeuroX), abs",
    )
    p.add_argument(
        "--rankings",
        nargs="+",
        choices=list(RANKINGS) + ["abs"],
        metavar="NAME",
        help=f"rankings to compute and compare (default: {' '.join(RANKINGS)})",
    )
    p.add_argument(
        "--rank-l1",
        type=float,
        metavar="L1",
        help="rank neurons with a separate probe with this L1 weight (e.g. 3e-3) instead of the oracle "
        "(not the paper's protocol; with the paper's tiny penalty the ranking can be no better than random)",
    )
    p.add_argument(
        "--n-seeds",
        "--seeds",
        dest="n_seeds",
        type=int,
        metavar="N",
        help="controls: train the oracle with N seeds and report the spread (default 3; 0 = skip)",
    )
    p.add_argument(
        "--random-draws",
        type=int,
        metavar="N",
        help="controls: random neuron sets per size (default 5)",
    )
    p.add_argument("--no-controls", action="store_true", help="skip the random / bottom / seed controls")
    add_probe_flags(p)
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    """Handler of ``redundancy probe``."""
    from sklearn.base import clone

    from .._serial import write_json_atomic
    from .._torch import torch_threads
    from ..probe import plot_layers, plot_rankings, plot_sizes, run_task_redundancy

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    probe = probe_template(args)
    with torch_threads(args.threads), progress_for(args) as bars:
        result = run_task_redundancy(
            args.train,
            args.dev,
            args.test,
            probe=probe,
            ranking_probe=None if args.rank_l1 is None else clone(probe).set_params(l1=args.rank_l1),
            controls=not args.no_controls,
            metric=args.metric,
            progress=bars,
            **_given(
                delta=args.delta,
                ranking=args.ranking,
                rankings=None if args.rankings is None else tuple(args.rankings),
                n_random=args.random_draws,
                probe_seeds=args.n_seeds,
            ),
        )
    write_json_atomic(out / "probe.json", result.to_dict())
    plot_layers(result, out / "layers.png")
    plot_sizes(result, out / "sizes.png")
    plot_rankings(result, out / "rankings.png")
    summary = result.summary()
    json.dump(summary, sys.stdout, indent=2)
    print()
    logger.info("wrote %s, %s, %s", out / "probe.json", out / "layers.png", out / "sizes.png")
    return 0
