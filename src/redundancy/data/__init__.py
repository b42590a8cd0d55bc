"""Task data: find the corpora, read a task's split into typed records, and fetch public sets.

>>> from redundancy.data import load_task
>>> train = load_task("pos", "train", max_tokens=150_000)  # doctest: +SKIP
>>> train.spec.metric, len(train.items), train.n_items      # doctest: +SKIP

Token tasks give :class:`TokenSentence` items (words and one label per word), sentence tasks give
:class:`SentenceExample` items (a text or a pair, and a label). See ``docs/data.md`` for tasks, splits and
the data-directory rules.

Unlabeled input files for ``redundancy predict`` are read by :func:`input_format`, :func:`read_words`
(token tasks: conll, text or jsonl) and :func:`read_texts` (sentence tasks: text or jsonl, pairs too).
"""

from ._datadir import CACHE_ENV, DATA_ENV, DataDirError, cache_data_dir, default_cache_dir, resolve_data_dir
from ._fetch import (
    ChecksumError,
    FetchError,
    NotFetchableError,
    Progress,
    fetch,
    fetch_hint,
    fetchable_tasks,
)
from ._inputs import input_format, read_texts, read_words
from ._load import MissingDataError, carve_train_dev, load_task, read_text, text_spec
from ._readers import file_sha256, read_conll_columns, read_conllu, read_glue_tsv, read_text_items
from ._registry import DEFAULT_SEED, TASKS, UnknownSplitError, UnknownTaskError, get_task
from ._types import DataFormatError, LabelType, Level, SentenceExample, TaskData, TaskSpec, TokenSentence

__all__ = [
    # records
    "Level",
    "LabelType",
    "TokenSentence",
    "SentenceExample",
    "TaskSpec",
    "TaskData",
    # registry
    "TASKS",
    "DEFAULT_SEED",
    "get_task",
    # loading
    "load_task",
    "read_text",
    "read_text_items",
    "text_spec",
    "carve_train_dev",
    "read_conllu",
    "read_conll_columns",
    "read_glue_tsv",
    "file_sha256",
    # prediction input
    "input_format",
    "read_words",
    "read_texts",
    # data directory and fetch
    "DATA_ENV",
    "CACHE_ENV",
    "resolve_data_dir",
    "default_cache_dir",
    "cache_data_dir",
    "fetch",
    "fetchable_tasks",
    "fetch_hint",
    "Progress",
    # errors
    "DataFormatError",
    "DataDirError",
    "MissingDataError",
    "UnknownTaskError",
    "UnknownSplitError",
    "FetchError",
    "ChecksumError",
    "NotFetchableError",
]
