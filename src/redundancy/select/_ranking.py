"""Neuron rankings from a linear probe's weights (pure numpy: arrays in, an ordering out)."""

from __future__ import annotations

from typing import Literal

import numpy as np

RankingMethod = Literal["paper", "abs"]
WEIGHT_RANKINGS: tuple[str, ...] = ("paper", "abs")
"""Rankings read off one probe's weights (:func:`rank_neurons`)."""

RANKINGS: tuple[str, ...] = ("paper", "group-lasso", "l1-path", "probeless")
"""The rankings the probe stage computes and compares (``paper``: the reference; ``group-lasso`` and
``l1-path``: path entry orders, :func:`redundancy.select.entry_ranking`; ``probeless``: NeuroX's
probe-free baseline, :func:`redundancy.select.probeless_ranking`)."""

RANKING_METHODS: tuple[str, ...] = ("auto", *RANKINGS, "abs")
"""Accepted ``ranking`` settings: ``auto`` (the ranking whose top-k probes score best on dev),
one of :data:`RANKINGS`, or ``abs``."""


def _as_weight_matrix(coef) -> np.ndarray:
    """``coef`` as a float64 ``(n_outputs, n_features)`` matrix of absolute values."""
    w = np.asarray(coef, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] == 0 or w.shape[0] == 0:
        raise ValueError(f"coef must be (n_outputs, n_features) or (n_features,), got shape {np.shape(coef)}")
    if not np.all(np.isfinite(w)):
        raise ValueError("coef holds NaN or inf")
    return np.abs(w)


def weight_mass(coef) -> np.ndarray:
    """Each neuron's total absolute weight over the outputs: ``sum_c |w[c, i]|``, shape ``(n_features,)``."""
    return _as_weight_matrix(coef).sum(axis=0)


def _order_by_mass(mass: np.ndarray) -> np.ndarray:
    """Indices by decreasing mass; ties by increasing index (a stable, deterministic order)."""
    return np.lexsort((np.arange(mass.size), -mass))


def rank_neurons(coef, method: RankingMethod = "paper", *, search_stride: int = 1000) -> np.ndarray:
    """Order the probe's features (neurons) from most to least important.

    Parameters
    ----------
    coef : array of shape (n_classes, n_features) or (n_features,)
        The probe's weights (sklearn layout, ``coef_``). Pass the weights on the scale the penalty
        was applied to (``ElasticNetProbe.scaled_coef_``) so that neurons with large activations
        are not favoured just for their scale.
    method : {"paper", "abs"}
        ``"paper"``: the class-wise weight-mass ordering of Dalvi et al. (NeuroX
        ``get_neuron_ordering``). For a share ``p`` of the weight mass, each class contributes its
        heaviest neurons until their cumulative ``|w|`` reaches ``p`` of that class's total;
        ``p`` grows from 0 to 1 in ``search_stride`` steps, and neurons join the ordering at the
        first step at which any class selects them. So every class brings its most important
        neurons in early, even classes with small weights. Within one step NeuroX leaves the order
        arbitrary (a Python set); here ties are broken by total mass ``sum_c |w|``, then by index.
        Neurons that no class ever selects (all-zero weights) come last, by index.
        ``"abs"``: by total mass ``sum_c |w[c, i]|`` (plain ``|w|`` for one output), ties by index.
    search_stride : int
        Number of steps of the weight-mass share for ``"paper"`` (the authors' experiments: 1000;
        NeuroX's default: 100).

    Returns
    -------
    ndarray of int64, shape (n_features,)
        A permutation of ``range(n_features)``, most important first.

    Examples
    --------
    >>> rank_neurons([[0.0, 5.0, 1.0], [0.1, 0.0, 0.2]], method="abs").tolist()
    [1, 2, 0]
    >>> rank_neurons([[0.0, 5.0, 1.0], [0.1, 0.0, 0.2]], method="paper").tolist()
    [1, 2, 0]
    """
    w = _as_weight_matrix(coef)
    mass = w.sum(axis=0)
    if method == "abs":
        return _order_by_mass(mass)
    if method != "paper":
        raise ValueError(f"method must be one of {WEIGHT_RANKINGS}, got {method!r}")
    if (
        isinstance(search_stride, bool)
        or not isinstance(search_stride, int | np.integer)
        or search_stride < 1
    ):
        raise ValueError(f"search_stride must be a positive int, got {search_stride!r}")
    n_classes, n = w.shape
    shares = np.arange(search_stride + 1, dtype=np.float64) / search_stride
    entry = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)  # first step at which a class selects it
    for c in range(n_classes):
        order = np.argsort(-w[c], kind="stable")  # heaviest first, as NeuroX's argsort()[::-1] up to ties
        cum = np.cumsum(w[c, order])
        total = w[c].sum()
        # NeuroX: keep neurons up to and including the first whose cumulative mass reaches p * total;
        # if none reaches it (rounding at p = 1), keep all.
        count = np.searchsorted(cum, total * shares, side="left") + 1
        count = np.minimum(count, n)
        # the neuron of rank r enters at the first step whose count exceeds r
        step_of_rank = np.searchsorted(count, np.arange(n), side="right")
        selected = step_of_rank <= search_stride
        np.minimum.at(entry, order[selected], step_of_rank[selected])
    never = entry == np.iinfo(np.int64).max
    entry[never] = search_stride + 1
    mass_key = np.where(never, 0.0, mass)
    return np.lexsort((np.arange(n), -mass_key, entry))
