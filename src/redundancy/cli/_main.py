"""The ``redundancy`` command: subcommands map onto the library's stages; this layer parses and prints."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ._guard import check_unlocked, guarded
from ._progress import interval_argument, progress_for

logger = logging.getLogger("redundancy.cli")

EPILOG = "Data directory: --data-dir, else $REDUNDANCY_DATA, else ../shared/data beside the repository."


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:  # keep transformers' own chatter and bars out of our output
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


@guarded
def _cmd_extract(args: argparse.Namespace) -> int:
    from ..data import load_task, read_text
    from ..extract import ExtractConfig, extract, load_model
    from ..scale import EngineSettings, extract_on_engine, make_engine
    from ..store import ActivationStore, default_store_name

    if args.out:
        check_unlocked(args.out)  # before the slow loading: a running `redundancy run` owns that folder
    config = ExtractConfig(  # checks the settings before any data or model is read
        aggregation=args.aggregation,
        batch_size=args.batch_size,
        max_length=args.max_length,
        dtype=args.dtype,
        device=args.device,
        threads=args.threads,
        **({} if args.chunk_items is None else {"chunk_items": args.chunk_items}),
    )
    engine = EngineSettings(kind=args.engine, address=args.address, num_cpus=args.num_cpus)
    if engine.kind == "ray" and not args.out:
        raise ValueError("--engine ray needs --out STORE (this process does not load the model to name it)")
    for name in ("max_train_tokens", "max_items"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')}: must be >= 1, got {value}")
    if args.task == "text":
        if not args.input:
            raise ValueError("--task text needs --input FILE (one sentence per line)")
        data = read_text(args.input, level=args.level, max_items=args.max_items)
    else:
        max_tokens = args.max_train_tokens if args.split == "train" else None
        data = load_task(
            args.task, args.split, args.data_dir, max_tokens=max_tokens, max_items=args.max_items
        )
    if engine.kind == "ray":  # workers load the model and compute the chunks; this process commits
        out = Path(args.out)
        with progress_for(args) as bars:
            result = extract_on_engine(
                data, args.model, out, config, make_engine(engine), overwrite=args.overwrite, progress=bars
            )
        print(json.dumps(result.to_dict(), indent=2))
        ActivationStore.open(out)
        return 0
    lm = load_model(args.model, device=args.device, max_length=args.max_length)
    agg = config.resolved_aggregation(data.spec.level, lm.tokenizer)
    out = (
        Path(args.out)
        if args.out
        else Path("runs") / default_store_name(lm.name, data.spec.name, data.split, agg)
    )
    check_unlocked(out)
    with progress_for(args) as bars:
        result = extract(data, lm, out, config, overwrite=args.overwrite, progress=bars)
    if result.chunks_computed == 0:
        logger.info("store %s was already complete; nothing to do", out)
    print(json.dumps(result.to_dict(), indent=2))
    ActivationStore.open(out)  # verify what was written before saying it is done
    return 0


def _cmd_store_info(args: argparse.Namespace) -> int:
    from ..store import ActivationStore

    store = ActivationStore.open(args.dir, verify=args.verify)
    summary = store.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        print(f"{key:<{width}}  {value}")
    return 0


def _cmd_data_list(args: argparse.Namespace) -> int:
    from ..data import TASKS

    rows = [(s.name, s.level, s.label_type, s.metric, ",".join(s.splits), s.folder) for s in TASKS.values()]
    head = ("task", "level", "labels", "metric", "splits", "folder")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from ..data import fetch

    path = fetch(args.task, args.cache_dir, mirror=args.mirror, force=args.force)
    print(path)
    return 0


def add_engine_arguments(p: argparse.ArgumentParser, default: str | None) -> None:
    """``--engine``, ``--address``, ``--num-cpus``: where the work runs (docs/scaling.md)."""
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default=default,
        help="local: this process; ray: Ray workers, one model each (pip install '.[ray]')"
        + ("" if default else "; default: the config's [engine] kind"),
    )
    p.add_argument(
        "--address",
        help="with --engine ray: the cluster to join (HOST:6379, or auto); default: start a local one",
    )
    p.add_argument(
        "--num-cpus",
        type=int,
        help="with --engine ray: the local cluster's CPUs, or the most this run uses of a joined one",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from .. import __version__

    p = argparse.ArgumentParser(prog="redundancy", description=__doc__, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"redundancy {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error instead of one line"
    )
    p.add_argument(
        "--progress-interval",
        type=interval_argument,
        metavar="SECONDS",
        help="when stderr is not a terminal, log progress every SECONDS instead of drawing bars "
        "(default: $REDUNDANCY_PROGRESS_INTERVAL, else 30)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser(
        "extract",
        help="store every layer's activations for a task split",
        description="Run a model over one task split and stream every layer's activations "
        "(embeddings = layer 0) into an on-disk store. Rerunning resumes an interrupted store.",
        epilog=EPILOG,
    )
    e.add_argument(
        "--model", required=True, help="local folder, hub id, or all-MiniLM-L6-v2 / all-mpnet-base-v2"
    )
    e.add_argument("--task", required=True, help="task name (see `redundancy data list`) or `text`")
    e.add_argument("--split", default="train", help="split name (default: train)")
    e.add_argument("--out", help="store folder (default: runs/<model>-<task>-<split>-<aggregation>)")
    e.add_argument(
        "--aggregation",
        choices=["first", "last", "mean", "cls"],
        help="token tasks: first/last/mean subword (default last); "
        "sentence tasks: cls/last/mean (default cls)",
    )
    e.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--max-length", type=int, help="longest input in tokens (default: the model's limit)")
    e.add_argument(
        "--max-train-tokens",
        type=int,
        help="train split only: keep whole sentences up to this many words (the paper: 150000)",
    )
    e.add_argument("--max-items", type=int, help="keep only the first N sentences/examples")
    e.add_argument(
        "--chunk-items",
        type=int,
        help="rows per committed chunk: the unit of resume, and of work on Ray (default 4096)",
    )
    e.add_argument("--data-dir", help="task data folder")
    e.add_argument("--input", help="with --task text: a file with one sentence per line")
    e.add_argument("--level", choices=["token", "sentence"], default="token", help="with --task text")
    e.add_argument("--threads", type=int, help="CPU threads for torch")
    e.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    e.add_argument("--overwrite", action="store_true", help="replace a store made with other settings")
    add_engine_arguments(e, default="local")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_extract)

    s = sub.add_parser(
        "store",
        help="inspect activation stores",
        description="Inspect activation stores: one folder per (model, task, split, aggregation) holding "
        "memory-mapped arrays of shape (items, layers, hidden), labels and a JSON manifest.",
    ).add_subparsers(dest="store_cmd", required=True)
    si = s.add_parser("info", help="summary of a store", description="Verify a store and print its summary.")
    si.add_argument("dir", help="store folder")
    si.add_argument(
        "--verify",
        choices=["fast", "full"],
        default="fast",
        help="fast: shapes and sizes; full: also SHA-256 of every array",
    )
    si.add_argument("--json", action="store_true", help="print JSON")
    si.set_defaults(func=_cmd_store_info)

    d = sub.add_parser(
        "data",
        help="task data: list tasks, fetch public sets",
        description="The task registry and the public data sets (EWT, CoNLL-2000, GLUE) that can be "
        "downloaded from their official sources into the cache.",
        epilog=EPILOG,
    ).add_subparsers(dest="data_cmd", required=True)
    dl = d.add_parser(
        "list", help="the task registry", description="List tasks with level, labels, metric and splits."
    )
    dl.set_defaults(func=_cmd_data_list)
    df = d.add_parser(
        "fetch",
        help="download a public data set into the cache",
        description="Download a task's files from the official source into the cache, verifying SHA-256.",
    )
    df.add_argument("task")
    df.add_argument("--cache-dir", help="cache folder (default: $REDUNDANCY_CACHE or ~/.cache/redundancy)")
    df.add_argument(
        "--mirror", help="base URL serving the data folder's layout instead of the official sources"
    )
    df.add_argument("--force", action="store_true", help="download again even when present")
    df.set_defaults(func=_cmd_data_fetch)

    from ._finetune import add_parser as add_finetune
    from ._general import add_parser as add_general
    from ._pipeline import add_parser as add_pipeline
    from ._predict import add_parser as add_predict
    from ._probe import add_parser as add_probe
    from ._report import add_parser as add_report
    from ._run import add_parser as add_run

    add_general(sub)
    add_probe(sub)
    add_pipeline(sub)
    add_run(sub)
    add_predict(sub)
    add_finetune(sub)
    add_report(sub)
    return p


def _os_error(err: OSError) -> str:
    """One line for a filesystem error, naming the path."""
    what = {
        NotADirectoryError: "a part of this path is a file, not a folder",
        IsADirectoryError: "is a folder, not a file",
        FileExistsError: "already exists",
        PermissionError: "permission denied",
        FileNotFoundError: "no such file or folder",
    }
    reason = next((w for cls, w in what.items() if isinstance(err, cls)), None)
    reason = reason or (err.strerror or str(err)).lower()
    if err.filename is None:
        return str(err)
    where = str(err.filename) + (f" -> {err.filename2}" if err.filename2 is not None else "")
    return f"{where}: {reason}"


# Errors that mean "this input cannot be used": one line, exit status 2. OSErrors about a path the
# user named (a folder where a file was expected, a file in the way, no permission) count too.
_PATH_ERRORS = (NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError, FileNotFoundError)


def _describe(err: BaseException) -> tuple[int, str]:
    """``(exit status, message)`` for an exception that ended a command."""
    from ..data import FetchError
    from ..extract import ModelError
    from ..store import StoreError

    if isinstance(err, _PATH_ERRORS) and getattr(err, "filename", None) is not None:
        return 2, _os_error(err)  # type: ignore[arg-type]
    if isinstance(err, (FetchError, ModelError, StoreError, FileNotFoundError, KeyError, ValueError)):
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        return 2, str(msg)
    if isinstance(err, OSError) and err.filename is not None:
        return 1, _os_error(err)
    text = str(err).strip().splitlines()
    return 1, f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``redundancy`` command; returns the exit status.

    Exit status 2: a usage error (a bad option, config, input file, model folder or store), told in
    one line naming the file (and line) or the option. Exit status 1: an unexpected error, also one
    line, with a hint to rerun with ``--debug``, which shows the traceback instead.
    """
    args = build_parser().parse_args(argv)
    _setup_logging(-1 if args.quiet else args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("redundancy: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        code, msg = _describe(err)
        print(f"redundancy: error: {msg}", file=sys.stderr)
        if code == 1:
            print("redundancy: rerun with --debug for the full traceback", file=sys.stderr)
        return code
