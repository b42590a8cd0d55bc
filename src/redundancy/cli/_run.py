"""``redundancy run CONFIG``: the whole experiment of a TOML config, with stage caching."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from ._progress import StageBars, bar

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = """\
Run the stages named in a TOML config (extract -> general -> probe -> pipeline -> compact ->
report) for each of its tasks. Every stage's result is cached under RUN/cache with a key of its
inputs, so rerunning the same command skips finished work and resumes an interrupted run
(extraction resumes chunk by chunk). See examples/default.toml and docs/run.md."""


class _Bars:
    """The job's progress callbacks drawn as tqdm bars."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.stages = StageBars(enabled)

    @contextlib.contextmanager
    def items(self, total: int, unit: str, desc: str):
        self.stages.close()
        with bar(total, unit, desc, self.enabled, unit_scale=True) as b:
            yield b

    def stage(self, stage: str, done: int, total: int) -> None:
        self.stages(stage, done, total)


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


def run(args: argparse.Namespace) -> int:
    """Handler of ``redundancy run``."""
    from dataclasses import replace

    from tqdm.contrib.logging import logging_redirect_tqdm

    from ..job import load_config, run_job

    config = load_config(args.config)
    if args.data_dir:
        config = replace(config, data_dir=args.data_dir)
    if args.threads:
        config = replace(config, threads=args.threads)
    bars = _Bars(not args.no_progress)
    try:
        with logging_redirect_tqdm():
            result = run_job(config, out=args.out, force=tuple(args.force), progress=bars)
    finally:
        bars.stages.close()
    ran = sum(s.status == "ran" for s in result.stages)
    cached = sum(s.status == "cached" for s in result.stages)
    sys.stdout.write(f"run folder {result.out}: {ran} stage(s) ran, {cached} cached, {result.seconds:.1f}s\n")
    report = f"{result.out}/report/report.html"
    if "report" in config.stages:
        sys.stdout.write(f"report: {report}\n")
    return 0
