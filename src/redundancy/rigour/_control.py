"""Control tasks for selectivity (Hewitt & Liang 2019, "Designing and Interpreting Probes with
Control Tasks").

A control task gives every word *type* one fixed random label, drawn from the real task's label
distribution. A probe can only solve it by memorising word identities, so its accuracy measures what
the probe's capacity alone achieves from the representation; *selectivity* = task accuracy − control
accuracy. The label of a type is a function of the type's text and the seed alone (a keyed hash),
so train, dev and test agree on it without sharing state, and a type first met in test still gets
its fixed label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def _uniform(word: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``word`` and ``seed`` (BLAKE2b keyed by the seed: stable across runs
    and processes, unlike ``hash()``)."""
    h = hashlib.blake2b(word.encode("utf-8"), digest_size=8, key=int(seed).to_bytes(8, "little"))
    return int.from_bytes(h.digest(), "little") / 2.0**64


def control_labels(words: Sequence[str], distribution: np.ndarray, seed: int = 0) -> np.ndarray:
    """The control label (a class id) of each word: a draw from ``distribution`` fixed by the word's type.

    Parameters
    ----------
    words : the items' word forms (a type is an exact string: case is kept, as the probe sees it).
    distribution : ``(n_classes,)`` non-negative class frequencies (e.g. train's label counts).
    seed : which random labelling.

    Examples
    --------
    >>> labels = control_labels(["the", "cat", "the"], np.array([3, 1]), seed=0)
    >>> bool(labels[0] == labels[2])
    True
    """
    p = np.asarray(distribution, dtype=np.float64)
    if p.ndim != 1 or p.size < 1 or (p < 0).any() or not np.isfinite(p).all() or p.sum() <= 0:
        raise ValueError(
            "distribution must be a 1-D array of non-negative, finite counts with a positive sum"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    cdf = np.cumsum(p / p.sum())
    types, inverse = np.unique(np.asarray(list(words), dtype=object).astype(str), return_inverse=True)
    u = np.fromiter((_uniform(w, int(seed)) for w in types), dtype=np.float64, count=types.size)
    per_type = np.minimum(np.searchsorted(cdf, u, side="right"), p.size - 1)
    return per_type[inverse].astype(np.int64)
