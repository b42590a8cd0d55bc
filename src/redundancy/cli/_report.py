"""``redundancy report``: results.json, report.md and a self-contained report.html from a run folder.

Wire it into the main parser with ``add_parser(subparsers)``; the handler returns an exit code.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._guard import check_unlocked, guarded

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = """\
Gather what a run folder holds (RUN/general, RUN/probe, RUN/pipeline, RUN/compact per task,
the store manifests and RUN/job.json) and write, into --out (default RUN/report):
results.json (every result, machine-readable, with provenance), report.md with the PNGs
under figures/, and report.html (the same content in one file, figures embedded, no
external references). Stages that did not run are marked "not run"."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "report",
        help="write results.json, report.md and report.html for a run folder",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `redundancy run`")
    p.add_argument("--out", help="output folder (default: RUN_DIR/report)")
    p.add_argument("--title", help="report title (default: the job config's title)")
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    """Handler of ``redundancy report``: prints the paths written."""
    from ..report import collect, write_report

    out = Path(args.out) if args.out else Path(args.run_dir) / "report"
    check_unlocked(out)  # a running `redundancy run` writes its own report there
    report = collect(args.run_dir, title=args.title)
    files = write_report(report, out)
    for path in (files.results, files.markdown, files.html):
        print(path)
    logger.info("%d figures under %s", len(files.figures), out / "figures")
    return 0
