"""Readers for the corpus formats: CoNLL-U, whitespace/tab column files, GLUE TSV and plain text.

Every reader is strict: malformed input raises :class:`DataFormatError` naming the file and the 1-based line,
because a silently shifted column or merged row would corrupt every downstream statistic.
Readers number items in file order; :func:`redundancy.data.load_task` re-indexes after carving or capping.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import conllu
import conllu.exceptions

from ._types import DataFormatError, SentenceExample, TokenSentence

_CONLLU_ID = re.compile(r"[0-9]+(?:-[0-9]+|\.[0-9]+)?")
_MISSING = frozenset({"", "_"})


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (the hash results record for their input data)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text without line ending)``; decoding line by line so errors get exact lines."""
    if Path(path).is_dir():
        raise DataFormatError(path, None, "is a folder; pass a file")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, lineno, f"not valid UTF-8 ({exc.reason})") from None
            if lineno == 1 and encoding == "utf-8-sig":
                text = text.removeprefix("\ufeff")
            yield lineno, text.rstrip("\r\n")


def _iter_blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """Yield blank-line-separated blocks of ``(line number, line)``."""
    block: list[tuple[int, str]] = []
    for lineno, line in _iter_lines(path):
        if line.strip():
            block.append((lineno, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _require_items(path: Path, items: Sequence[object], what: str) -> None:
    if not items:
        raise DataFormatError(path, None, f"no {what} found (empty file?)")


# --------------------------------------------------------------------------------------------- CoNLL-U
def read_conllu(path: str | Path, column: str = "xpos") -> list[TokenSentence]:
    """Read a CoNLL-U file: one :class:`TokenSentence` per sentence with the ``column`` ('upos'/'xpos') tag.

    Comment lines, multiword-token ranges (``3-4``) and empty nodes (``8.1``) are skipped. Each sentence block
    is checked line by line (10 tab-separated columns, valid IDs, word IDs 1..n in order, no ``_`` label) and
    then handed to the ``conllu`` parser. A file without sentences is an error.
    """
    path = Path(path)
    sentences = list(iter_conllu(path, column))
    _require_items(path, sentences, "sentences")
    return sentences


def iter_conllu(path: str | Path, column: str = "xpos") -> Iterator[TokenSentence]:
    """The sentences of :func:`read_conllu` one at a time, read and checked as they are reached: a
    caller that stops early (a cap on the words) reads and parses only that much of the file."""
    if column not in ("upos", "xpos"):
        raise ValueError(f"column must be 'upos' or 'xpos', not {column!r}")
    path = Path(path)
    n = 0
    for block in _iter_blocks(path):
        token_lines = [(n, line) for n, line in block if not line.startswith("#")]
        if not token_lines:
            continue  # comment-only block
        for lineno, line in token_lines:
            fields = line.split("\t")
            if len(fields) != 10:
                raise DataFormatError(
                    path, lineno, f"expected 10 tab-separated CoNLL-U columns, found {len(fields)}"
                )
            if not _CONLLU_ID.fullmatch(fields[0]):
                raise DataFormatError(path, lineno, f"invalid CoNLL-U ID {fields[0]!r}")
        try:
            tokens = conllu.parse_token_and_metadata("\n".join(line for _, line in block))
        except conllu.exceptions.ParseException as exc:
            raise DataFormatError(path, block[0][0], f"CoNLL-U sentence does not parse: {exc}") from None
        if len(tokens) != len(token_lines):  # defensive: conllu and our scan must see the same lines
            raise DataFormatError(path, block[0][0], "CoNLL-U sentence: token lines and parsed tokens differ")
        words: list[str] = []
        labels: list[str] = []
        for token, (lineno, _) in zip(tokens, token_lines, strict=True):
            if not isinstance(token["id"], int):
                continue  # multiword range or empty node
            if token["id"] != len(words) + 1:
                raise DataFormatError(
                    path,
                    lineno,
                    f"word ID {token['id']} out of sequence (expected {len(words) + 1}); "
                    "words and labels would be misaligned",
                )
            label = token[column]
            if label is None or label in _MISSING:
                raise DataFormatError(
                    path, lineno, f"missing {column.upper()} label ('_') for word {token['form']!r}"
                )
            words.append(token["form"])
            labels.append(label)
        if not words:
            raise DataFormatError(path, token_lines[0][0], "sentence has no words (only ranges/empty nodes)")
        yield TokenSentence(
            index=n, words=tuple(words), labels=tuple(labels), source=str(path), line=token_lines[0][0]
        )
        n += 1


# ----------------------------------------------------------------------------------------- column files
def read_conll_columns(
    path: str | Path,
    *,
    n_columns: int,
    label_column: int,
    sep: str = " ",
    word_column: int = 0,
    comments: bool = False,
    docstart: bool = False,
    join_tilde: bool = False,
) -> list[TokenSentence]:
    """Read a one-token-per-line column file (CoNLL-2000/2003, PMB ``.conll``); a blank line ends a sentence.

    ``label_column``/``word_column`` are 0-based. ``comments``: skip lines starting with ``#``.
    ``docstart``: ``-DOCSTART-`` lines are document breaks (they end any open sentence, and are not words).
    ``join_tilde``: PMB multiword tokens (``Charles~de~Gaulle``) stay one word with one label, the ``~``
    replaced by a space so a tokenizer sees natural text.
    """
    path = Path(path)
    sentences: list[TokenSentence] = []

    def flush(words: list[str], labels: list[str], start: int) -> None:
        if words:
            sentences.append(
                TokenSentence(len(sentences), tuple(words), tuple(labels), source=str(path), line=start)
            )

    for block in _iter_blocks(path):
        words: list[str] = []
        labels: list[str] = []
        start = 0
        for lineno, line in block:
            if comments and line.startswith("#"):
                continue
            fields = line.split(sep)
            if docstart and fields[0] == "-DOCSTART-":
                flush(words, labels, start)
                words, labels = [], []
                continue
            if len(fields) != n_columns:
                sep_name = "tab" if sep == "\t" else "space"
                raise DataFormatError(
                    path, lineno, f"expected {n_columns} {sep_name}-separated columns, found {len(fields)}"
                )
            word, label = fields[word_column], fields[label_column]
            if not word:
                raise DataFormatError(path, lineno, "empty word")
            if label in _MISSING:
                raise DataFormatError(
                    path, lineno, f"missing label ({label!r} in column {label_column + 1}) for word {word!r}"
                )
            if join_tilde and "~" in word and word.strip("~"):
                word = word.replace("~", " ")
            if not words:
                start = lineno
            words.append(word)
            labels.append(label)
        flush(words, labels, start)
    _require_items(path, sentences, "sentences")
    return sentences


# ------------------------------------------------------------------------------------------------ GLUE
def _column_index(path: Path, header: list[str] | None, column: str | int) -> int:
    if isinstance(column, int):
        return column
    if header is None:
        raise ValueError(f"column {column!r} given by name but the file is read without a header")
    try:
        return header.index(column)
    except ValueError:
        raise DataFormatError(path, 1, f"header has no column {column!r}; columns are {header}") from None


def read_glue_tsv(
    path: str | Path,
    *,
    text_columns: Sequence[str | int],
    label_column: str | int,
    header: bool = True,
    n_fields: int | None = None,
    label_type: str = "class",
    labels: Collection[str] | None = None,
) -> list[SentenceExample]:
    """Read a GLUE-style TSV into :class:`SentenceExample` (one or two texts and a label per row).

    Columns are located by header name (or 0-based index for header-less files such as CoLA). Every row must
    have as many fields as the header (or ``n_fields``). The file is read with ``QUOTE_NONE`` (default CSV
    quoting silently merges rows at stray ``"``) and ``utf-8-sig`` (MRPC starts with a BOM). Texts are
    stripped (SST-2 ends every sentence with a space). ``label_type='real'`` parses a finite float;
    ``labels`` restricts class labels to a known set, which catches shifted columns. Blank lines are skipped.
    """
    path = Path(path)
    if not 1 <= len(text_columns) <= 2:
        raise ValueError("text_columns must name one or two columns")
    lines = _iter_lines(path, encoding="utf-8-sig")
    reader = csv.reader((line for _, line in lines), delimiter="\t", quoting=csv.QUOTE_NONE)
    head: list[str] | None = None
    if header:
        head = next(reader, None)
        if head is None:
            raise DataFormatError(path, None, "empty file (no header row)")
        n_fields = len(head)
    if n_fields is None:
        raise ValueError("n_fields is required for a file without a header")
    text_idx = [_column_index(path, head, c) for c in text_columns]
    label_idx = _column_index(path, head, label_column)
    examples: list[SentenceExample] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataFormatError(path, reader.line_num, f"unreadable TSV row: {exc}") from None
        lineno = reader.line_num
        if not row:
            continue
        if len(row) != n_fields:
            raise DataFormatError(path, lineno, f"expected {n_fields} tab-separated fields, found {len(row)}")
        texts = [row[i].strip() for i in text_idx]
        for i, text in zip(text_idx, texts, strict=True):
            if not text:
                raise DataFormatError(path, lineno, f"empty text in column {i + 1}")
        raw = row[label_idx].strip()
        if raw in _MISSING or raw == "-":
            raise DataFormatError(path, lineno, f"missing label ({raw!r} in column {label_idx + 1})")
        label: str | float
        if label_type == "real":
            try:
                label = float(raw)
            except ValueError:
                raise DataFormatError(
                    path, lineno, f"label {raw!r} in column {label_idx + 1} is not a number"
                ) from None
            if not math.isfinite(label):
                raise DataFormatError(path, lineno, f"label {raw!r} in column {label_idx + 1} is not finite")
        else:
            if labels is not None and raw not in labels:
                raise DataFormatError(
                    path,
                    lineno,
                    f"unexpected label {raw!r} in column {label_idx + 1}; expected {sorted(labels)}",
                )
            label = raw
        examples.append(
            SentenceExample(
                index=len(examples),
                text=texts[0],
                text_pair=texts[1] if len(texts) == 2 else None,
                label=label,
                source=str(path),
                line=lineno,
            )
        )
    _require_items(path, examples, "examples")
    return examples


# ------------------------------------------------------------------------------------------ plain text
def read_text_items(path: str | Path, level: str = "token") -> list[TokenSentence] | list[SentenceExample]:
    """Read unlabeled text, one sentence per line; blank lines are skipped.

    ``level='token'``: words are the whitespace-separated tokens (:class:`TokenSentence`, labels ``None``);
    ``level='sentence'``: each stripped line is one :class:`SentenceExample` with label ``None``.
    """
    if level not in ("token", "sentence"):
        raise ValueError(f"level must be 'token' or 'sentence', not {level!r}")
    path = Path(path)
    items: list = []
    for lineno, line in _iter_lines(path, encoding="utf-8-sig"):
        if not line.strip():
            continue
        if level == "token":
            items.append(TokenSentence(len(items), tuple(line.split()), None, source=str(path), line=lineno))
        else:
            items.append(SentenceExample(len(items), line.strip(), None, None, source=str(path), line=lineno))
    _require_items(path, items, "sentences")
    return items
