"""``redundancy predict``: tag words or label texts with a compact model (``export_compact``'s folder).

Wire it into the main parser with ``add_parser(subparsers)``; the handler returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from ._guard import guarded

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = """\
Run a compact model (the base model cut to its bottom layers plus a small probe on a few
neurons, written by redundancy.compact.export_compact) over a file.

Input (--input-format, else guessed from the extension: .conll/.conllu -> conll,
.txt/.tsv -> text, .jsonl -> jsonl):
  token tasks
    conll  one word per line in column --word-column (1-based; default 1, or 2 for .conllu,
           whose multiword-token and empty-node lines are skipped), columns split by tabs, or by
           spaces when a line has no tab; a blank line ends a sentence; lines starting with '#'
           before a sentence's first word are comments
    text   one sentence per line, words split on whitespace; blank lines skipped
    jsonl  one {"words": [...]} per line
  sentence tasks
    text   one text per line; pair tasks: text<TAB>text_pair
    jsonl  one {"text": ..., "text_pair": ...} per line (text_pair for pair tasks only)

Output (--format, default jsonl for jsonl input, else conll) to --out or stdout:
  conll  token tasks: word<TAB>tag, a blank line after each sentence; sentence tasks:
         text<TAB>label (text<TAB>text_pair<TAB>label for pairs)
  jsonl  {"words": [...], "tags": [...]} or {"text": ..., "label": ...} per line
Regression tasks give numbers instead of tags."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``predict`` subcommand on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "predict",
        help="tag words / label texts with a compact model",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="input file (see the formats above)")
    p.add_argument("--compact", required=True, metavar="DIR", help="compact model folder")
    p.add_argument("--out", metavar="PATH", help="output file (default: stdout)")
    p.add_argument("--format", choices=["conll", "jsonl"], help="output format (see above)")
    p.add_argument("--input-format", choices=["conll", "text", "jsonl"], help="default: from the extension")
    p.add_argument(
        "--word-column", type=int, metavar="N", help="conll input: 1-based word column (default 1; .conllu 2)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default 32)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


# --------------------------------------------------------------------------- output


def _value(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def format_words(sentences: list[list[str]], tags: list[list], fmt: str) -> Iterator[str]:
    """Output lines (with their newlines) for tagged sentences."""
    for words, sent_tags in zip(sentences, tags, strict=True):
        if fmt == "jsonl":
            yield json.dumps({"words": words, "tags": sent_tags}, ensure_ascii=False) + "\n"
        else:
            yield "".join(f"{w}\t{_value(t)}\n" for w, t in zip(words, sent_tags, strict=True)) + "\n"


def format_texts(texts: list[str], pairs: list[str] | None, labels: list, fmt: str) -> Iterator[str]:
    """Output lines for labelled texts."""
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        if fmt == "jsonl":
            obj = {"text": text} | ({} if pairs is None else {"text_pair": pairs[i]}) | {"label": label}
            yield json.dumps(obj, ensure_ascii=False) + "\n"
        else:
            cols = [text] + ([] if pairs is None else [pairs[i]]) + [_value(label)]
            yield "\t".join(cols) + "\n"


def _write(lines: Iterator[str], out: str | None) -> None:
    """``lines`` to stdout, or to the file ``out`` (UTF-8, written atomically)."""
    from .._serial import atomic_file

    if out is None:
        sys.stdout.writelines(lines)
        sys.stdout.flush()
        return
    with atomic_file(out) as fh:
        for line in lines:
            fh.write(line.encode("utf-8"))


# --------------------------------------------------------------------------- handler


@guarded
def run(args: argparse.Namespace) -> int:
    """Handler of ``redundancy predict``."""
    from ..compact import CompactModel, read_info
    from ..data import input_format, read_texts, read_words
    from ..extract import check_device
    from ._progress import progress_for

    path = Path(args.file)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; pass an input file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    check_device(args.device)
    fmt = input_format(path, args.input_format)
    out_fmt = args.format or ("jsonl" if fmt == "jsonl" else "conll")
    info = read_info(args.compact)  # cheap: read the input (and refuse it) before loading the model
    if info.level == "token":
        sentences = read_words(path, fmt, args.word_column)
    else:
        texts, pairs = read_texts(path, fmt, pairs=info.level == "sentence_pair")
    model = CompactModel.load(args.compact, device=args.device, threads=args.threads)
    model.batch_size = args.batch_size
    with progress_for(args) as bars:
        if info.level == "token":
            tags = model.predict_words(sentences, progress=bars)
        else:
            labels = model.predict_texts(texts, pairs, progress=bars)
    if info.level == "token":
        _write(format_words(sentences, tags, out_fmt), args.out)
        logger.info("tagged %d words in %d sentences", sum(len(s) for s in sentences), len(sentences))
    else:
        _write(format_texts(texts, pairs, labels, out_fmt), args.out)
        logger.info("labelled %d texts", len(texts))
    if args.out:
        logger.info("wrote %s", args.out)
    return 0
