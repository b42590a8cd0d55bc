"""``redundancy predict``: tag words or label texts with a compact model (``export_compact``'s folder).

Wire it into the main parser with ``add_parser(subparsers)``; the handler returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger("redundancy.cli")

DESCRIPTION = """\
Run a compact model (the base model cut to its bottom layers plus a small probe on a few
neurons, written by redundancy.pipeline.export_compact) over a file.

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

_GUESS = {".conll": "conll", ".conllu": "conll", ".txt": "text", ".tsv": "text", ".jsonl": "jsonl"}


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


# --------------------------------------------------------------------------- input


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, 1):
            yield number, line.rstrip("\r\n")


def input_format(path: Path, given: str | None) -> str:
    """``given``, else the format its extension implies."""
    if given:
        return given
    fmt = _GUESS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{path}: cannot tell the input format from the extension {path.suffix!r}; "
            "pass --input-format conll|text|jsonl"
        )
    return fmt


def _json_line(path: Path, number: int, line: str) -> dict:
    from ..data import DataFormatError

    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, number, f"not valid JSON ({err.msg})") from None
    if not isinstance(obj, dict):
        raise DataFormatError(path, number, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def read_words(path: Path, fmt: str, word_column: int | None = None) -> list[list[str]]:
    """Sentences of words from a token-task input file (see ``redundancy predict --help``)."""
    from ..data import DataFormatError

    sentences: list[list[str]] = []
    if fmt == "text":
        sentences = [line.split() for _, line in _lines(path) if line.strip()]
    elif fmt == "jsonl":
        for number, line in _lines(path):
            if not line.strip():
                continue
            words = _json_line(path, number, line).get("words")
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise DataFormatError(path, number, 'expected {"words": [strings]}')
            if not words:
                raise DataFormatError(path, number, "a sentence without words")
            sentences.append(words)
    elif fmt == "conll":
        conllu = path.suffix.lower() == ".conllu"
        column = word_column if word_column is not None else (2 if conllu else 1)
        if column < 1:
            raise ValueError(f"--word-column is 1-based, got {column}")
        current: list[str] = []
        for number, line in _lines(path):
            if not line.strip():
                if current:
                    sentences.append(current)
                    current = []
                continue
            if not current and line.startswith("#"):
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if conllu and ("-" in cols[0] or "." in cols[0]):
                continue  # multiword token range or empty node: not a word of the sentence
            if len(cols) < column:
                raise DataFormatError(
                    path, number, f"{len(cols)} column(s), the words are in column {column}"
                )
            word = cols[column - 1].strip()
            if not word:
                raise DataFormatError(path, number, f"empty word in column {column}")
            current.append(word)
        if current:
            sentences.append(current)
    else:
        raise ValueError(f"unknown input format {fmt!r}")
    if not sentences:
        raise DataFormatError(path, None, "no sentences found")
    return sentences


def read_texts(path: Path, fmt: str, pairs: bool) -> tuple[list[str], list[str] | None]:
    """Texts (and second sentences for a pair task) from a sentence-task input file."""
    from ..data import DataFormatError

    texts: list[str] = []
    seconds: list[str] = []
    if fmt == "conll":
        raise ValueError(f"{path}: conll input is for token tasks; use text or jsonl for a sentence task")
    for number, line in _lines(path):
        if not line.strip():
            continue
        if fmt == "text":
            if pairs:
                if "\t" not in line:
                    raise DataFormatError(path, number, "a pair task needs text<TAB>text_pair")
                text, second = line.split("\t", 1)
                seconds.append(second.strip())
            else:
                if "\t" in line:
                    raise DataFormatError(path, number, "a tab in a single-sentence task's line")
                text = line
            texts.append(text.strip())
        elif fmt == "jsonl":
            obj = _json_line(path, number, line)
            text, second = obj.get("text"), obj.get("text_pair")
            if not isinstance(text, str):
                raise DataFormatError(path, number, 'expected {"text": string}')
            if pairs and not isinstance(second, str):
                raise DataFormatError(path, number, 'a pair task needs {"text": ..., "text_pair": string}')
            if not pairs and second is not None:
                raise DataFormatError(path, number, "text_pair given, but this is a single-sentence task")
            texts.append(text)
            if pairs:
                seconds.append(second)
        else:
            raise ValueError(f"unknown input format {fmt!r}")
    if not texts:
        raise DataFormatError(path, None, "no texts found")
    return texts, (seconds if pairs else None)


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
    if out is None:
        sys.stdout.writelines(lines)
        sys.stdout.flush()
        return
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------- handler


def run(args: argparse.Namespace) -> int:
    """Handler of ``redundancy predict``."""
    from ..pipeline import CompactModel, read_info
    from ._progress import bar

    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    fmt = input_format(path, args.input_format)
    out_fmt = args.format or ("jsonl" if fmt == "jsonl" else "conll")
    info = read_info(args.compact)  # cheap: read the input (and refuse it) before loading the model
    if info.level == "token":
        sentences = read_words(path, fmt, args.word_column)
    else:
        texts, pairs = read_texts(path, fmt, pairs=info.level == "sentence_pair")
    model = CompactModel.load(args.compact, device=args.device, threads=args.threads)
    model.batch_size = args.batch_size
    if info.level == "token":
        total = sum(len(s) for s in sentences)
        with bar(total, "word", f"predict {info.task}", not args.no_progress) as progress:
            tags = model.predict_words(sentences, progress=progress)
        _write(format_words(sentences, tags, out_fmt), args.out)
        logger.info("tagged %d words in %d sentences", total, len(sentences))
    else:
        with bar(len(texts), "ex", f"predict {info.task}", not args.no_progress) as progress:
            labels = model.predict_texts(texts, pairs, progress=progress)
        _write(format_texts(texts, pairs, labels, out_fmt), args.out)
        logger.info("labelled %d texts", len(texts))
    if args.out:
        logger.info("wrote %s", args.out)
    return 0
