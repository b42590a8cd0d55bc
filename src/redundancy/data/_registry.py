"""The task registry: what each task is (:class:`TaskSpec`) and how its splits map onto files and readers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from ._readers import iter_conllu, read_conll_columns, read_conllu, read_glue_tsv
from ._types import TaskSpec

DEFAULT_SEED = 7361
"""The paper's seed for the 90/10 train/dev carve (also used for the CoNLL-2000 dev carve)."""


class UnknownTaskError(KeyError, ValueError):
    """An unknown task name; the message lists the known ones (catchable as KeyError or ValueError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownSplitError(KeyError, ValueError):
    """A split the task does not have; the message lists the valid splits."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class _Split:
    """One split: the file it is read from and which part of it (``all``, or the carved ``train``/``dev``)."""

    file: str
    part: Literal["all", "train", "dev"] = "all"


@dataclass(frozen=True)
class _Source:
    """How to read a task: a reader taking a path, and the split plan; ``stream`` (optional) yields
    the reader's items one at a time, so a capped read of a whole-file split stops early."""

    read: Callable[[Path], list]
    splits: Mapping[str, _Split]
    order: Literal["original", "shuffled"] = "original"  # item order inside carved splits
    stream: Callable[[Path], Iterable] | None = None


_TASKS: dict[str, TaskSpec] = {}
_SOURCES: dict[str, _Source] = {}


def _add(spec: TaskSpec, source: _Source) -> None:
    assert tuple(source.splits) == spec.splits, spec.name
    _TASKS[spec.name] = spec
    _SOURCES[spec.name] = source


# ------------------------------------------------------------------------------------------ token tasks
_EWT = "ud-english-ewt"
_EWT_SPLITS = {s: _Split(f"en_ewt-ud-{s}.conllu") for s in ("train", "dev", "test")}
for _name, _col, _desc in (
    ("pos", "xpos", "POS tagging, PTB-style XPOS tags of UD English-EWT v2.16"),
    ("upos", "upos", "POS tagging, universal UPOS tags of UD English-EWT v2.16"),
):
    _add(
        TaskSpec(_name, "token", "class", "accuracy", ("train", "dev", "test"), _desc, _EWT),
        _Source(partial(read_conllu, column=_col), _EWT_SPLITS, stream=partial(iter_conllu, column=_col)),
    )

_add(
    TaskSpec(
        "chunking",
        "token",
        "class",
        "chunk_f1",
        ("train", "dev", "test"),
        "CoNLL-2000 chunking (IOB2 chunk tags); dev carved from train.txt",
        "conll2000",
    ),
    _Source(
        partial(read_conll_columns, n_columns=3, label_column=2, sep=" "),
        {
            "train": _Split("train.txt", "train"),
            "dev": _Split("train.txt", "dev"),
            "test": _Split("test.txt"),
        },
    ),
)

_PMB = "pmb-4.0.0-en-gold"
_PMB_SPLITS = {s: _Split(f"{s}.conll") for s in ("train", "dev", "test", "eval")}
for _name, _col, _desc in (
    ("sem", 3, "semantic tagging, PMB 4.0.0 English gold semtags"),
    ("ccg", 4, "CCG supertagging, PMB 4.0.0 English gold CCG categories (not CCGbank)"),
):
    _add(
        TaskSpec(_name, "token", "class", "accuracy", ("train", "dev", "test", "eval"), _desc, _PMB),
        _Source(
            partial(
                read_conll_columns, n_columns=7, label_column=_col, sep="\t", comments=True, join_tilde=True
            ),
            _PMB_SPLITS,
        ),
    )
del _name, _col, _desc

_add(
    TaskSpec(
        "ner",
        "token",
        "class",
        "chunk_f1",
        ("train", "dev", "test"),
        "CoNLL-2003 English NER (IOB2); research use only",
        "conll2003",
    ),
    _Source(
        partial(read_conll_columns, n_columns=4, label_column=3, sep=" ", docstart=True),
        {"train": _Split("train.txt"), "dev": _Split("valid.txt"), "test": _Split("test.txt")},
    ),
)

# --------------------------------------------------------------------------------------- sentence tasks
_GLUE_SPLITS = {
    "train": _Split("train.tsv", "train"),
    "dev": _Split("train.tsv", "dev"),
    "test": _Split("dev.tsv"),
}
_BINARY = ("0", "1")
_ENTAIL = ("entailment", "not_entailment")


def _glue(
    name: str,
    folder: str,
    level: Literal["sentence", "sentence_pair"],
    metric: str,
    desc: str,
    *,
    text_columns: tuple[str | int, ...],
    label_column: str | int,
    labels: tuple[str, ...] | None,
    header: bool = True,
    n_fields: int | None = None,
    splits: Mapping[str, _Split] = _GLUE_SPLITS,
) -> None:
    label_type: Literal["class", "real"] = "class" if labels is not None else "real"
    reader = partial(
        read_glue_tsv,
        text_columns=text_columns,
        label_column=label_column,
        header=header,
        n_fields=n_fields,
        label_type=label_type,
        labels=labels,
    )
    spec = TaskSpec(name, level, label_type, metric, tuple(splits), desc, f"glue/{folder}")
    _add(spec, _Source(reader, splits, order="shuffled"))


_glue(
    "sst2",
    "SST-2",
    "sentence",
    "accuracy",
    "GLUE SST-2 sentiment",
    text_columns=("sentence",),
    label_column="label",
    labels=_BINARY,
)
_glue(
    "mrpc",
    "MRPC",
    "sentence_pair",
    "f1",
    "GLUE MRPC paraphrase",
    text_columns=("#1 String", "#2 String"),
    label_column="Quality",
    labels=_BINARY,
)
_glue(
    "qqp",
    "QQP",
    "sentence_pair",
    "f1",
    "GLUE QQP duplicate questions",
    text_columns=("question1", "question2"),
    label_column="is_duplicate",
    labels=_BINARY,
)
_glue(
    "stsb",
    "STS-B",
    "sentence_pair",
    "pearson",
    "GLUE STS-B similarity (real-valued 0-5)",
    text_columns=("sentence1", "sentence2"),
    label_column="score",
    labels=None,
)
_glue(
    "mnli",
    "MNLI",
    "sentence_pair",
    "accuracy",
    "GLUE MNLI natural language inference",
    text_columns=("sentence1", "sentence2"),
    label_column="gold_label",
    labels=("contradiction", "entailment", "neutral"),
    splits={
        "train": _Split("train.tsv", "train"),
        "dev": _Split("train.tsv", "dev"),
        "test_matched": _Split("dev_matched.tsv"),
        "test_mismatched": _Split("dev_mismatched.tsv"),
    },
)
_glue(
    "qnli",
    "QNLI",
    "sentence_pair",
    "accuracy",
    "GLUE QNLI question-answering NLI",
    text_columns=("question", "sentence"),
    label_column="label",
    labels=_ENTAIL,
)
_glue(
    "rte",
    "RTE",
    "sentence_pair",
    "accuracy",
    "GLUE RTE textual entailment",
    text_columns=("sentence1", "sentence2"),
    label_column="label",
    labels=_ENTAIL,
)
_glue(
    "cola",
    "CoLA",
    "sentence",
    "mcc",
    "GLUE CoLA acceptability (no header row)",
    text_columns=(3,),
    label_column=1,
    labels=_BINARY,
    header=False,
    n_fields=4,
)

TASKS: Mapping[str, TaskSpec] = MappingProxyType(_TASKS)
"""Every known task by name (read-only)."""


def get_task(name: str) -> TaskSpec:
    """The :class:`TaskSpec` of ``name``; raises :class:`UnknownTaskError` listing the known names."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def _source(name: str) -> _Source:
    get_task(name)
    return _SOURCES[name]
