"""Baselines and error bars: sentence bootstrap, control tasks for selectivity.

A leaf package (it imports no other stage): ``probe``, ``pipeline``, ``compact`` and ``general`` use
it to put an interval on every number they report, and ``probe`` to build the control task of
Hewitt & Liang (2019). See ``docs/rigour.md``.

Public API
----------
SentenceBootstrap
    Resample sentences with replacement (seeded, ``n_boot`` replicates, coverage ``level``):
    ``counts``, ``replicate_sums``, ``interval``.
Interval
    A frozen estimate with its interval (``to_dict`` / ``from_dict``, ``format``: ``95.01 [94.80, 95.20]``).
percentile_interval, poisson_weights, sentence_index, group_sums
    The pieces: an interval of replicates; streaming Poisson(1) weights per sentence; dense sentence
    numbers; per-sentence sums.
sentence_groups, jackknife_bounds
    The delete-a-group jackknife over random groups of sentences (the general stage's intervals of
    CKA and of the redundant share: one pass, no extra arithmetic).
control_labels
    The control task's label of every word: a fixed draw per word type from a label distribution.
DEFAULT_BOOT, DEFAULT_LEVEL
    200 replicates, 95 % intervals.
"""

from ._bootstrap import (
    DEFAULT_BOOT,
    DEFAULT_LEVEL,
    Interval,
    SentenceBootstrap,
    group_sums,
    jackknife_bounds,
    percentile_interval,
    poisson_weights,
    sentence_groups,
    sentence_index,
)
from ._control import control_labels

__all__ = [
    "DEFAULT_BOOT",
    "DEFAULT_LEVEL",
    "Interval",
    "SentenceBootstrap",
    "control_labels",
    "group_sums",
    "jackknife_bounds",
    "percentile_interval",
    "poisson_weights",
    "sentence_groups",
    "sentence_index",
]
