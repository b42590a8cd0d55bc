"""Rankings that select neurons rather than read weights: path entry orders and the probe-free
ranking of Antverg & Belinkov (pure numpy: statistics in, an ordering out).

The paper's ranking (:func:`redundancy.select.rank_neurons`) reads one probe's weights. With a tiny
penalty and strongly correlated neurons the weight of a group of near-copies is shared among them,
so each member looks unimportant, and the class-wise ordering first takes one specialist per class,
rare classes included: its top neurons can carry the task *worse* than random ones. The rankings here
order neurons by when a sparse model *selects* them instead:

* :func:`entry_ranking` turns a regularisation path (the penalty lowered step by step, warm-started,
  as :func:`redundancy.probe.path_ranking` computes it) into an order: a neuron that enters at a
  larger penalty is needed more, because the penalised loss already pays for it there. With a
  group-lasso path (one group = all class weights of a neuron) a neuron enters once for all classes;
  among near-copies, one enters and makes the others redundant, so the top of the order is diverse.
* :func:`probeless_ranking` needs no probe at all: NeuroX's ``probeless`` ordering by how far apart
  the class means of a neuron lie (the sum of ``|mean_a - mean_b|`` over all pairs of classes).
"""

from __future__ import annotations

import numpy as np


def entry_ranking(entry, strength) -> np.ndarray:
    """Order neurons by their entry into a regularisation path, earliest first.

    The path fits ``min_W loss(W) + lambda_t * penalty(W)`` for decreasing ``lambda_t``; at the
    optimum a neuron's weights are non-zero only when its (group) gradient at zero exceeds
    ``lambda_t``, so the step at which it first becomes non-zero measures how much the loss gains
    from it *given the neurons already in* (a correlated copy of an entered neuron gains little and
    enters late, if at all). This optimises nothing by itself: it reads the path's selection order.

    Parameters
    ----------
    entry : (n,) ints, the path step at which each neuron first had non-zero weights; a negative
        value means it never entered.
    strength : (n,) floats breaking ties within one step (and ordering the neurons that never
        entered): larger first. The path gives each neuron's weight norm at its entry, and for
        neurons that never entered, how close they came (their gradient norm at the end).

    Returns
    -------
    ndarray of int64, a permutation of ``range(n)``: entered neurons by entry step, then by
    ``strength``; then the others by ``strength``; remaining ties by index.

    Examples
    --------
    >>> entry_ranking([2, 0, 5, 0, -1], [1.0, 0.5, 0.1, 0.9, 0.3]).tolist()
    [3, 1, 0, 2, 4]
    """
    entry = np.asarray(entry, dtype=np.int64)
    strength = np.asarray(strength, dtype=np.float64)
    if entry.ndim != 1 or strength.shape != entry.shape:
        raise ValueError(
            f"entry and strength must be 1-d of one length, got {entry.shape} and {strength.shape}"
        )
    if not np.all(np.isfinite(strength)):
        raise ValueError("strength holds NaN or inf")
    never = entry < 0
    key = np.where(never, np.iinfo(np.int64).max, entry)
    return np.lexsort((np.arange(entry.size), -strength, key))


def pairwise_spread(class_means) -> np.ndarray:
    """``sum_{a < b} |m[a, i] - m[b, i]|`` for every column ``i`` of the (n_classes, n) class means.

    Computed from the sorted means in ``O(K log K)`` per neuron instead of ``K^2`` pairs: with the
    means sorted, ``sum_{a<b} (m_b - m_a) = sum_j (2j - K + 1) m_(j)``.

    >>> pairwise_spread([[0.0, 1.0], [2.0, 1.0], [5.0, 1.0]]).tolist()
    [10.0, 0.0]
    """
    m = np.asarray(class_means, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 1:
        raise ValueError(f"class_means must be (n_classes, n_neurons), got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("class_means holds NaN or inf")
    K = m.shape[0]
    weights = 2.0 * np.arange(K) - K + 1.0
    return weights @ np.sort(m, axis=0)


def probeless_ranking(class_means) -> np.ndarray:
    """NeuroX's probe-free ranking (Antverg & Belinkov 2022, ``neurox.interpretation.probeless``):
    neurons by decreasing spread of their class means, ``sum_{a<b} |mean_a - mean_b|`` over the
    classes present in train. It optimises nothing; a baseline that needs no probe. NeuroX sorts
    with ``argsort()[::-1]``, which leaves ties in decreasing index order; here ties go by index.

    Parameters
    ----------
    class_means : (n_classes, n_neurons), each class's mean activation (raw scale, as NeuroX).

    >>> probeless_ranking([[-1.0, -0.5, 0.0], [1.0, 0.5, 0.0]]).tolist()
    [0, 1, 2]
    """
    spread = pairwise_spread(class_means)
    return np.lexsort((np.arange(spread.size), -spread))
