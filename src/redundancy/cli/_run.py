"""``redundancy run CONFIG``: the whole experiment of a TOML config, with stage caching."""

from __future__ import annotations

import argparse
import logging
import sys

from ._guard import guarded
from ._main import add_engine_arguments
from ._progress import progress_for

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = """\
Run the stages named in a TOML config (extract -> general -> probe -> pipeline -> compact ->
report) for each of its tasks. Every stage's result is cached under RUN/cache with a key of its
inputs, so rerunning the same command skips finished work and resumes an interrupted run
(extraction resumes chunk by chunk). See examples/default.toml and docs/run.md."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``run`` subcommand on ``subparsers``."""
    p = subparsers.add_parser(
        "run",
        help="the whole experiment of a TOML config (cached, resumable)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="TOML experiment config (e.g. examples/default.toml)")
    p.add_argument("--out", help="run folder (default: the config's `out`)")
    p.add_argument("--data-dir", help="task data folder (overrides the config's data_dir)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (overrides the config's threads)")
    add_engine_arguments(p, default=None)
    p.add_argument(
        "--force",
        nargs="+",
        default=(),
        metavar="STAGE",
        help="redo these stages even when cached (or `all`)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


@guarded  # a busy run folder (RunBusyError, naming the holder's pid) or a full disk: one line, exit 2
def run(args: argparse.Namespace) -> int:
    """Handler of ``redundancy run``: the config with the command line's overrides (checked like
    the file), the job drawn as one progress bar per piece of work."""
    from dataclasses import replace

    from ..job import load_config, run_job

    config = load_config(args.config)
    overrides = {"data_dir": args.data_dir, "threads": args.threads}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    engine = {"kind": args.engine, "address": args.address, "num_cpus": args.num_cpus}
    engine = {k: v for k, v in engine.items() if v is not None}
    if engine:  # [engine] with the command line's overrides, checked like the file
        config = replace(config, engine=replace(config.engine, **engine))
    with progress_for(args) as bars:
        result = run_job(config, out=args.out, force=tuple(args.force), progress=bars)
    ran = sum(s.status == "ran" for s in result.stages)
    cached = sum(s.status == "cached" for s in result.stages)
    sys.stdout.write(f"run folder {result.out}: {ran} stage(s) ran, {cached} cached, {result.seconds:.1f}s\n")
    report = f"{result.out}/report/report.html"
    if "report" in config.stages:
        sys.stdout.write(f"report: {report}\n")
    return 0
