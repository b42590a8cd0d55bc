"""The paper's grids of neuron counts, as shares of *all* neurons of the model."""

from __future__ import annotations

from collections.abc import Sequence

PIPELINE_SHARES: tuple[float, ...] = (
    tuple(i / 1000 for i in range(1, 6))  # 0.1 .. 0.5 %
    + tuple(i / 100 for i in range(1, 11))  # 1 .. 10 %
    + tuple(i / 100 for i in range(15, 51, 5))  # 15 .. 50 %
    + tuple(i / 100 for i in range(60, 91, 10))  # 60 .. 90 %
)
"""Feature-selection grid of the LayerSelector -> CC -> FS pipeline (27 shares)."""

MINIMAL_SET_SHARES: tuple[float, ...] = (
    tuple(i / 1000 for i in range(1, 101))  # 0.1 .. 10 % by 0.1 %
    + tuple(i / 100 for i in range(15, 51, 5))  # 15 .. 50 %
    + tuple(i / 100 for i in range(60, 91, 10))  # 60 .. 90 %
)
"""The finer grid of the paper's minimal-neuron-set search (their section 6.2; 112 shares)."""

CONTROL_SHARES: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
"""Sizes at which the controls (top / random / bottom neurons) are compared (ours, not the paper's)."""


def grid_sizes(n_total: int, shares: Sequence[float], max_size: int | None = None) -> tuple[int, ...]:
    """Neuron counts ``int(p * n_total)`` for each share ``p``, as the authors compute them.

    Counts below 1 and above ``max_size`` (default ``n_total``) are skipped; repeats are removed; the
    result is increasing.

    Examples
    --------
    >>> sizes = grid_sizes(9984, PIPELINE_SHARES)
    >>> len(sizes), sizes[:3], sizes[-1]
    (27, (9, 19, 29), 8985)
    """
    if n_total < 1:
        raise ValueError(f"n_total must be >= 1, got {n_total}")
    cap = n_total if max_size is None else min(max_size, n_total)
    out = sorted({int(p * n_total) for p in shares if 0 < p <= 1})
    return tuple(k for k in out if 1 <= k <= cap)
