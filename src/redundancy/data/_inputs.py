"""Unlabeled input files for prediction (``redundancy predict``): conll, plain text or JSON lines.

Token tasks read sentences of words with :func:`read_words`, sentence tasks texts (and second sentences for
pair tasks) with :func:`read_texts`; :func:`input_format` tells the format from the file's extension.
Malformed input raises :class:`~redundancy.data.DataFormatError` naming the file and the 1-based line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ._types import DataFormatError

_GUESS = {".conll": "conll", ".conllu": "conll", ".txt": "text", ".tsv": "text", ".jsonl": "jsonl"}


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(1-based line number, line without its newline)`` for each line of ``path`` (a BOM is dropped);
    a line that is not UTF-8 is a :class:`DataFormatError` naming it."""
    if path.is_dir():
        raise DataFormatError(path, None, "is a folder; pass an input file")
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(path, number, f"not valid UTF-8 ({err.reason})") from None
            if number == 1:
                line = line.removeprefix("\ufeff")
            yield number, line.rstrip("\r\n")


def input_format(path: str | Path, given: str | None) -> str:
    """The input format of ``path``: ``given``, else the one its extension implies.

    Parameters
    ----------
    path : str or Path
        The input file (only its extension is looked at).
    given : str or None
        A format the user named (``"conll"``, ``"text"`` or ``"jsonl"``); returned as is when set.

    Returns
    -------
    str
        ``"conll"`` for ``.conll``/``.conllu``, ``"text"`` for ``.txt``/``.tsv``, ``"jsonl"`` for ``.jsonl``.

    Raises
    ------
    ValueError
        When ``given`` is empty and the extension is none of those.

    Examples
    --------
    >>> input_format("dev.conllu", None), input_format("in.tsv", None), input_format("in.doc", "jsonl")
    ('conll', 'text', 'jsonl')
    """
    path = Path(path)
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
    """Line ``number`` of ``path`` parsed as one JSON object."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, number, f"not valid JSON ({err.msg})") from None
    if not isinstance(obj, dict):
        raise DataFormatError(path, number, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def read_words(path: str | Path, fmt: str, word_column: int | None = None) -> list[list[str]]:
    """Sentences of words from a token-task input file.

    Parameters
    ----------
    path : str or Path
        The input file (UTF-8; a BOM is dropped).
    fmt : {"conll", "text", "jsonl"}
        ``conll``: one word per line in column ``word_column``, columns split by tabs, or by spaces when a
        line has no tab; a blank line ends a sentence; lines starting with ``#`` before a sentence's first
        word are comments; in a ``.conllu`` file multiword-token (``3-4``) and empty-node (``8.1``) lines
        are skipped. ``text``: one sentence per line, words split on whitespace, blank lines skipped.
        ``jsonl``: one ``{"words": [...]}`` per line.
    word_column : int, optional
        conll only: the 1-based word column (default 1, or 2 for a ``.conllu`` file).

    Returns
    -------
    list of list of str
        The sentences, in file order.

    Raises
    ------
    DataFormatError
        Malformed input, naming ``file:line``; or no sentence at all (naming the file).
    ValueError
        An unknown ``fmt`` or a ``word_column`` below 1.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "in.conllu"
    >>> _ = path.write_text("# sent_id = 1\\n1-2\\tdon't\\n1\\tdo\\tX\\n2\\tn't\\tY\\n\\n1\\tHi\\tZ\\n")
    >>> read_words(path, "conll")
    [['do', "n't"], ['Hi']]
    """
    path = Path(path)
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


def read_texts(path: str | Path, fmt: str, pairs: bool) -> tuple[list[str], list[str] | None]:
    """Texts (and second sentences for a pair task) from a sentence-task input file.

    Parameters
    ----------
    path : str or Path
        The input file (UTF-8; a BOM is dropped). Blank lines are skipped.
    fmt : {"text", "jsonl"}
        ``text``: one text per line, ``text<TAB>text_pair`` for a pair task (texts stripped); a tab in a
        single-sentence task's line is an error. ``jsonl``: one ``{"text": ..., "text_pair": ...}`` per
        line, ``text_pair`` for pair tasks only. (``conll`` is for token tasks and refused.)
    pairs : bool
        Whether the task is a sentence-pair task.

    Returns
    -------
    texts : list of str
        The (first) texts, in file order.
    text_pairs : list of str or None
        The second sentences for a pair task, else None.

    Raises
    ------
    DataFormatError
        Malformed input, naming ``file:line``; or no text at all (naming the file).
    ValueError
        ``conll`` or an unknown ``fmt``.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "in.tsv"
    >>> _ = path.write_text("A man. \\tA person.\\n\\nIt rains.\\tIt is dry.\\n")
    >>> read_texts(path, "text", pairs=True)
    (['A man.', 'It rains.'], ['A person.', 'It is dry.'])
    """
    path = Path(path)
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
