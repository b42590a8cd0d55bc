"""Regularisation paths of the fast solver: the order in which neurons enter a sparse probe.

:func:`fit_path` trains one probe on all given columns while its penalty ``lambda`` falls
geometrically from ``lambda_max`` (the smallest penalty at which every weight is zero) to
``min_ratio * lambda_max``, warm-started from one value to the next, and records the step at which
each neuron first gets non-zero weights. Two penalties:

* ``group=True``: the **group lasso**, one group per neuron (all its class weights), so a neuron enters
  once for all classes: ``(1/n) sum_i CE(x_i, y_i) + lambda * sum_j ||W_j||_2 + (l2 / 2) ||W||_F^2``;
* ``group=False``: the **lasso** (L1 on every weight); a neuron enters with its first class weight.

It is the minibatch Adam of :func:`redundancy.probe._fast.fit_family_minibatch` (standardised
features folded into the weights, explicit softmax gradients) with a proximal step per penalty. For
the group lasso the second moments are shared within a group (their mean), so the group's metric is
a scalar and the proximal step is exact group soft-thresholding in it,
``W_j <- W_j * max(0, 1 - lr * lambda / (d_j * ||W_j||))`` with ``d_j = sqrt(mean_k v_jk) + eps``:
a group stays at zero while the norm of its (averaged) gradient is below ``lambda``, as at the
optimum. For the lasso it is :func:`._fast._adam`'s soft-thresholding in Adam's diagonal metric.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._fast import BETA1, BETA2, EPS, _adam, _initial_bias, activations_tensor, column_stats

logger = logging.getLogger(__name__)

_LAMBDA_MAX_ROWS = 32768  # rows of the gradient at zero that sets lambda_max


@dataclass(frozen=True)
class PathOutput:
    """What a regularisation path recorded, per neuron (column) and per penalty value.

    Attributes
    ----------
    entry : (d,) int64, the step at which each column first had non-zero weights, -1 if never.
    strength : (d,) float64, its weight norm (L2 over classes for the group lasso, L1 for the lasso)
        at the end of its entry step; for columns that never entered, the norm of their averaged
        gradient at the end (how close they came).
    lambdas : (n_lambdas,) the penalty values, largest first; ``lambda_of_step[t]`` is step t's index.
    n_active : (n_lambdas,) columns with non-zero weights after each penalty value's steps (fewer
        values when the path stopped early at ``max_active``).
    n_steps, seconds : optimiser steps taken and the time they took.
    """

    entry: np.ndarray
    strength: np.ndarray
    lambdas: np.ndarray
    n_active: np.ndarray
    n_steps: int
    seconds: float


def _gradient_at_zero(Xt, yt, bias, mu, inv, n_outputs: int, regression: bool, gen) -> torch.Tensor:
    """The loss gradient with respect to the standardised weights at ``W = 0``, on a row sample."""
    n = Xt.shape[0]
    rows = torch.randperm(n, generator=gen)[: min(n, _LAMBDA_MAX_ROWS)]
    xb, yb = Xt[rows], yt[rows]
    B = xb.shape[0]
    logits = bias.expand(B, n_outputs).clone()
    if regression:
        G = (logits - yb.view(B, 1)) / B
    else:
        G = torch.softmax(logits, dim=-1)
        G[torch.arange(B), yb] -= 1.0
        G /= B
    return (xb.T @ G - mu[:, None] * G.sum(0)[None, :]) * inv[:, None]


def fit_path(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_outputs: int,
    regression: bool,
    group: bool,
    l2: float,
    lr: float,
    batch_size: int,
    n_lambdas: int = 30,
    epochs: float = 1.0,
    min_ratio: float = 0.01,
    max_active: int | None = None,
    seed: int = 0,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PathOutput:
    """Walk the group-lasso (``group``) or lasso path down ``n_lambdas`` geometric penalty values.

    ``epochs`` passes over the rows in all, split evenly over the values (at least 2 steps each),
    rows reshuffled every epoch (``seed``); the step size ``lr`` stays constant. The path stops
    early once ``max_active`` columns are in (default: all).
    """
    t0 = time.perf_counter()
    Xt = activations_tensor(X)
    n, d = Xt.shape
    K = n_outputs
    mu64, sd64 = stats if stats is not None else column_stats(Xt, True)
    mu, inv = mu64.float(), (1.0 / sd64).float()
    yt = torch.from_numpy(np.asarray(y, dtype=np.float32 if regression else np.int64))
    gen = torch.Generator().manual_seed(int(seed))
    bias = torch.from_numpy(_initial_bias(np.asarray(y), np.ones(n), K, regression).astype(np.float32))
    G0 = _gradient_at_zero(Xt, yt, bias, mu, inv, K, regression, gen)
    lam_max = float(G0.norm(dim=1).max() if group else G0.abs().max())
    lambdas = lam_max * min_ratio ** (np.arange(n_lambdas) / max(n_lambdas - 1, 1))
    steps_per_epoch = math.ceil(n / batch_size)
    per_lambda = max(2, math.ceil(epochs * steps_per_epoch / n_lambdas))
    total = per_lambda * n_lambdas
    max_active = d if max_active is None else int(max_active)

    W = torch.zeros((d, K))
    mW, vW = torch.zeros_like(W), torch.zeros_like(W)
    mb, vb = torch.zeros_like(bias), torch.zeros_like(bias)
    entry = np.full(d, -1, dtype=np.int64)
    strength = np.zeros(d)
    n_active: list[int] = []
    perm, pos, step = torch.randperm(n, generator=gen), 0, 0
    for lam in lambdas:
        for _ in range(per_lambda):
            if pos >= n:
                perm, pos = torch.randperm(n, generator=gen), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            xb = Xt[idx]
            B = xb.shape[0]
            logits = xb @ (W * inv[:, None]) - (mu * inv) @ W + bias
            if regression:
                G = (logits - yt[idx].view(B, 1)) / B
            else:
                G = torch.softmax(logits, dim=-1)
                G[torch.arange(B), yt[idx]] -= 1.0
                G /= B
            gW = (xb.T @ G - mu[:, None] * G.sum(0)[None, :]) * inv[:, None]
            if l2:
                gW.add_(W, alpha=l2)
            step += 1
            c1, c2 = 1.0 - BETA1**step, 1.0 - BETA2**step
            _adam(bias, G.sum(0), mb, vb, lr, c1, c2, 1.0, 0.0)
            norms = _prox_step(W, gW, mW, vW, lr, c1, c2, float(lam), group)
            if progress is not None:
                progress(step, total)
        # entry is read at the end of each penalty value's steps, once the probe has settled there
        new = np.flatnonzero((norms > 0) & (entry < 0))
        entry[new] = len(n_active)
        strength[new] = norms[new]
        n_active.append(int((norms > 0).sum()))
        if n_active[-1] >= max_active:
            break
    never = entry < 0
    if never.any():  # how close they came: the norm of the averaged gradient (Adam's first moment)
        m_hat = (mW / (1.0 - BETA1**step)).double()
        gnorm = m_hat.norm(dim=1) if group else m_hat.abs().sum(dim=1)
        strength[never] = gnorm.numpy()[never]
    secs = time.perf_counter() - t0
    logger.debug(
        "%s path: lambda %.3g -> %.3g, %d steps, %d of %d neurons in, %.1fs",
        "group-lasso" if group else "lasso",
        lambdas[0],
        lambdas[len(n_active) - 1],
        step,
        int((~never).sum()),
        d,
        secs,
    )
    return PathOutput(
        entry=entry,
        strength=strength,
        lambdas=lambdas[: len(n_active)],
        n_active=np.asarray(n_active),
        n_steps=step,
        seconds=secs,
    )


def _prox_step(W, g, m, v, lr, c1, c2, lam: float, group: bool) -> np.ndarray:
    """One Adam step of ``W`` and the proximal step of the penalty ``lam``; returns each row's
    norm afterwards (L2 for the group lasso, L1 for the lasso)."""
    if not group:  # the lasso: the fast solver's Adam step with its proximal L1 step
        _adam(W, g, m, v, lr, c1, c2, 1.0, lam)
        return W.abs().sum(dim=1).double().numpy()
    m.mul_(BETA1).add_(g, alpha=1 - BETA1)
    v.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
    denom = (v / c2).mean(dim=1, keepdim=True).sqrt_().add_(EPS)  # one metric per group
    W.sub_((m / c1).div_(denom).mul_(lr))
    norm = W.norm(dim=1, keepdim=True)
    scale = (1.0 - lr * lam / (denom * norm.clamp(min=1e-30))).clamp_(min=0.0)
    W.mul_(scale)
    return (norm * scale).squeeze(1).double().numpy()
