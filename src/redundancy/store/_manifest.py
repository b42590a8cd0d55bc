"""The store's manifest, its error type and small naming/hashing helpers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .._serial import check_fields, check_file_name

FORMAT_VERSION = 1
"""On-disk format version written by this code; stores with a newer version are refused."""

DTYPES = ("float16", "float32")
LEVELS = ("token", "sentence", "sentence_pair")
LABEL_TYPES = ("class", "real", "none")

# Fields that must agree between an existing store and the manifest of a run that wants to resume it.
# ``model_source``, ``extra`` and ``versions`` only warn; ``created``, ``complete`` and ``sha256`` describe
# the store itself.
_PLAN_FIELDS = (
    "plan_hash",
    "dtype",
    "n_items",
    "n_layers",
    "hidden",
    "n_chunks",
    "n_sentences",
    "level",
    "label_type",
    "label_names",
    "model",
    "weights_sha256",
    "tokenizer",
    "task",
    "split",
    "aggregation",
    "seed",
    "data_files",
)
_SOFT_FIELDS = ("model_source", "extra", "versions")


class StoreError(Exception):
    """A problem with an activation store on disk (missing, incomplete, damaged, or a different plan).

    The message names the store folder and says what to do about it.
    """

    def __init__(self, message: str, *, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        super().__init__(message)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable (use str, int, float, bool, list, dict)")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys, no whitespace, no NaN/inf: the same value always gives the same text."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    )


def plan_hash(obj: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``obj`` (keys sorted at every level).

    Put in ``obj`` everything that determines the stored numbers (model and weights hash, tokenizer,
    data hashes, aggregation, dtype, max length, batch size, chunking, ...). Tuples hash like lists and
    numpy scalars like Python numbers; other non-JSON values raise ``TypeError``.

    Examples
    --------
    >>> plan_hash({"b": 1, "a": [1, 2]}) == plan_hash({"a": (1, 2), "b": 1})
    True
    """
    if not isinstance(obj, dict):
        raise TypeError(f"plan_hash expects a dict, got {type(obj).__name__}")
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_store_name(model: str, task: str, split: str, aggregation: str) -> str:
    """A filesystem-safe folder name for one (model, task, split, aggregation) store.

    ``/`` in a model id becomes ``--`` (as in the Hugging Face cache); any other character outside
    ``[A-Za-z0-9._-]`` becomes ``_``; the four parts are joined with ``__``. Names longer than 200
    characters are shortened and given a hash suffix so they stay unique.

    Examples
    --------
    >>> default_store_name("google-bert/bert-base-cased", "pos", "train", "last")
    'google-bert--bert-base-cased__pos__train__last'
    """
    parts = []
    for what, value in (("model", model), ("task", task), ("split", split), ("aggregation", aggregation)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"default_store_name: {what} must be a non-empty string, got {value!r}")
        safe = _UNSAFE.sub("_", value.strip().replace("/", "--")).lstrip(".")
        parts.append(safe or "_")
    name = "__".join(parts)
    if len(name) > 200:
        digest = hashlib.sha256("\0".join((model, task, split, aggregation)).encode("utf-8")).hexdigest()
        name = f"{name[:183]}-{digest[:16]}"
    return name


def package_versions(names: tuple[str, ...] = ("numpy", "torch", "transformers", "tokenizers")) -> dict:
    """Versions of Python, ``redundancy`` and the installed packages in ``names`` (missing ones skipped)."""
    versions = {"python": platform.python_version()}
    for name in ("redundancy", *names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "redundancy":
                from redundancy import __version__

                versions[name] = __version__
    return versions


def _check_str(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"StoreManifest.{name} must be a str, got {type(value).__name__}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"StoreManifest.{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"StoreManifest.{name} must be >= {minimum}, got {value}")


def _check_str_dict(name: str, value: Any) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"StoreManifest.{name} must be a dict of str to str")


@dataclass(frozen=True, kw_only=True)
class StoreManifest:
    """Everything an activation store records about how it was made (``manifest.json``).

    All fields are keyword-only. The writer sets ``complete`` and ``sha256``; callers leave them at their
    defaults.

    Attributes
    ----------
    model : str
        Model id or path, e.g. ``"bert-base-cased"``.
    weights_sha256 : str
        Hash of the model weights.
    model_source : str
        Where the weights came from (local folder, cache, embedded package); informative only.
    tokenizer : str
        Tokenizer name (usually the model id).
    task, split : str
        Task name and split (``"train"``, ``"dev"``, ``"test"``...).
    level : {"token", "sentence", "sentence_pair"}
        What one stored item is: a word, or a sentence/pair example.
    aggregation : str
        How sub-token or token vectors became one vector per item (``"last"``, ``"mean"``, ``"cls"``...).
    dtype : {"float16", "float32"}
        Storage dtype of ``activations.npy``.
    n_items, n_layers, hidden : int
        Shape of ``activations.npy``: ``(n_items, n_layers, hidden)``.
    n_sentences : int
        Number of sentences/examples; ``sentence_ids`` lie in ``[0, n_sentences)``.
    label_type : {"class", "real", "none"}
        ``labels.npy`` is int32 class ids (``-1`` = no label), float32 values (NaN = no label), or absent.
    label_names : tuple of str
        Class names; label id ``i`` means ``label_names[i]``. Empty for real or unlabeled tasks.
    plan_hash : str
        Hash of everything that determines the numbers (see :func:`plan_hash`); a store is only resumed by
        a run with the same plan hash.
    n_chunks : int
        How many chunks the writer will commit.
    seed : int or None
        Seed of the run that made the store (None: the extraction used no randomness).
    data_files : dict of str to str
        Source data file path -> SHA-256.
    versions : dict of str to str
        Package versions (see :func:`package_versions`).
    extra : dict
        Free-form JSON settings (batch size, max length, device...).
    created : str
        ISO-8601 UTC creation time.
    format_version : int
        On-disk format version.
    complete : bool
        True once every chunk is committed and the checksums are written.
    sha256 : dict of str to str
        File name -> SHA-256 of each ``.npy`` file (set at finalisation).
    """

    model: str
    weights_sha256: str
    model_source: str = ""
    tokenizer: str
    task: str
    split: str
    level: str
    aggregation: str
    dtype: str
    n_items: int
    n_layers: int
    hidden: int
    n_sentences: int
    label_type: str
    label_names: tuple[str, ...] = ()
    plan_hash: str
    n_chunks: int
    seed: int | None = None
    data_files: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=_utc_now)
    format_version: int = FORMAT_VERSION
    complete: bool = False
    sha256: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "model",
            "weights_sha256",
            "model_source",
            "tokenizer",
            "task",
            "split",
            "aggregation",
            "plan_hash",
            "created",
        ):
            _check_str(name, getattr(self, name))
        try:
            dtype = np.dtype(self.dtype).name
        except TypeError as exc:
            raise ValueError(f"StoreManifest.dtype must be one of {DTYPES}, got {self.dtype!r}") from exc
        if dtype not in DTYPES:
            raise ValueError(f"StoreManifest.dtype must be one of {DTYPES}, got {self.dtype!r}")
        object.__setattr__(self, "dtype", dtype)
        if self.level not in LEVELS:
            raise ValueError(f"StoreManifest.level must be one of {LEVELS}, got {self.level!r}")
        if self.label_type not in LABEL_TYPES:
            raise ValueError(
                f"StoreManifest.label_type must be one of {LABEL_TYPES}, got {self.label_type!r}"
            )
        for name, minimum in (
            ("n_items", 0),
            ("n_layers", 1),
            ("hidden", 1),
            ("n_sentences", 0),
            ("n_chunks", 0),
            ("seed", 0),
            ("format_version", 1),
        ):
            if name == "seed" and self.seed is None:
                continue
            _check_int(name, getattr(self, name), minimum)
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.n_items > 0 and self.n_chunks == 0:
            raise ValueError("StoreManifest.n_chunks must be >= 1 when n_items > 0")
        if isinstance(self.label_names, str):
            raise ValueError("StoreManifest.label_names must be a sequence of str, not a str")
        names = tuple(self.label_names)
        if not all(isinstance(n, str) for n in names):
            raise ValueError("StoreManifest.label_names must all be str")
        if len(set(names)) != len(names):
            raise ValueError("StoreManifest.label_names has duplicates")
        if names and self.label_type != "class":
            raise ValueError(f"StoreManifest.label_names must be empty for label_type={self.label_type!r}")
        object.__setattr__(self, "label_names", names)
        if not isinstance(self.complete, bool):
            raise ValueError("StoreManifest.complete must be a bool")
        for name in ("data_files", "versions", "sha256"):
            _check_str_dict(name, getattr(self, name))
            object.__setattr__(self, name, dict(getattr(self, name)))
        for file in self.sha256:  # names of files in the store folder: none may point outside it
            check_file_name(file, "StoreManifest.sha256")
        if not isinstance(self.extra, dict):
            raise ValueError("StoreManifest.extra must be a dict")
        try:  # fail now, not at the end of a long extraction
            extra = json.loads(canonical_json(self.extra))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"StoreManifest.extra must be plain JSON: {exc}") from exc
        object.__setattr__(self, "extra", extra)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_items, n_layers, hidden)``."""
        return (self.n_items, self.n_layers, self.hidden)

    @property
    def n_neurons(self) -> int:
        """``n_layers * hidden``: the width of the flat (layer-major) feature layout."""
        return self.n_layers * self.hidden

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``label_names`` as a list)."""
        d = dataclasses.asdict(self)
        d["label_names"] = list(self.label_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoreManifest:
        """Inverse of :meth:`to_dict`; refuses unknown or missing keys and newer format versions."""
        if not isinstance(d, dict):
            raise ValueError(f"manifest must be a JSON object, got {type(d).__name__}")
        version = d.get("format_version", FORMAT_VERSION)
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ValueError(
                f"manifest format_version {version} is newer than this code supports ({FORMAT_VERSION}); "
                "upgrade the redundancy package"
            )
        d = check_fields(cls, d, "manifest")
        return cls(**d)

    def plan_differences(self, other: StoreManifest) -> tuple[list[str], list[str]]:
        """Fields that differ from ``other``: (those that forbid resuming, those that only warn)."""
        hard = [n for n in _PLAN_FIELDS if getattr(self, n) != getattr(other, n)]
        soft = [n for n in _SOFT_FIELDS if getattr(self, n) != getattr(other, n)]
        return hard, soft


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def describe_differences(old: StoreManifest, new: StoreManifest, names: list[str]) -> str:
    """``"n_items 10 (store) vs 12 (this run); ..."`` for the named fields."""
    return "; ".join(
        f"{n} {_short(getattr(old, n))} (store) vs {_short(getattr(new, n))} (this run)" for n in names
    )
