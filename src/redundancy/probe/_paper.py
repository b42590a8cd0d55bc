"""The paper's probe recipe, kept exactly for reproduction (Dalvi et al. 2020; NeuroX / aux_classifier).

``torch.nn.Linear(n_features, n_classes)`` with PyTorch's default initialisation (seeded),
``CrossEntropyLoss`` (mean over the batch; ``MSELoss`` for real labels) plus
``l1 * sum|W| + l2 * sqrt(sum W^2)`` on the weight matrix only (the L2 term is the *un-squared*
Frobenius norm, as in their code), Adam with PyTorch defaults and lr 1e-3, batches of 128 rows in
the data's order (no shuffling), 10 epochs, raw activations (no standardisation), no early stopping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from ._fast import activations_tensor

logger = logging.getLogger(__name__)


def memory_batches(
    X: np.ndarray, y: np.ndarray, batch_size: int
) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """A re-iterable source of ``(X_b, y_b)`` batches in data order."""

    def batches():
        for s in range(0, X.shape[0], batch_size):
            yield X[s : s + batch_size], y[s : s + batch_size]

    return batches


def rebatch(
    source: Iterable[tuple[np.ndarray, np.ndarray]], batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Cut a stream of large read batches into ``batch_size`` rows, keeping the order (the last
    batch of the stream may be shorter, as in the authors' batch generator)."""
    buf_x: list[np.ndarray] = []
    buf_y: list[np.ndarray] = []
    have = 0
    for X, y in source:
        buf_x.append(X)
        buf_y.append(y)
        have += X.shape[0]
        if have < batch_size:
            continue
        Xc, yc = np.concatenate(buf_x), np.concatenate(buf_y)
        cut = (have // batch_size) * batch_size
        for s in range(0, cut, batch_size):
            yield Xc[s : s + batch_size], yc[s : s + batch_size]
        buf_x, buf_y, have = [Xc[cut:]], [yc[cut:]], have - cut
    if have:
        yield np.concatenate(buf_x), np.concatenate(buf_y)


def fit_paper(
    batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
    n_features: int,
    n_outputs: int,
    *,
    regression: bool,
    l1: float,
    l2: float,
    lr: float,
    epochs: int,
    seed: int,
    class_weight: np.ndarray | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Train with the paper's recipe; returns ``(weight (K, d), bias (K,), n_steps)`` in float64.

    ``batches()`` is called once per epoch and must yield the rows in the same order every time.
    The seed initialises the linear layer inside a forked RNG, so global torch state is untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = torch.nn.Linear(n_features, 1 if regression else n_outputs)
    if regression:
        criterion: torch.nn.Module = torch.nn.MSELoss()
    else:
        weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
        criterion = torch.nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = 0
    for epoch in range(epochs):
        total, count = 0.0, 0
        for Xb, yb in batches():
            inputs = activations_tensor(Xb)
            if transform is not None:
                inputs = transform(inputs)
            labels = torch.from_numpy(np.asarray(yb, dtype=np.float32 if regression else np.int64))
            optimizer.zero_grad()
            outputs = model(inputs)
            if regression:
                outputs = outputs.squeeze(-1)
            weights = model.weight
            loss = (
                criterion(outputs, labels) + l1 * weights.abs().sum() + l2 * torch.sqrt(weights.pow(2).sum())
            )
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            count += 1
            steps += 1
        logger.debug(
            "paper probe epoch %d/%d: mean batch loss %.4f", epoch + 1, epochs, total / max(count, 1)
        )
        if progress is not None:
            progress(epoch + 1, epochs)
    with torch.no_grad():
        return model.weight.double().numpy().copy(), model.bias.double().numpy().copy(), steps
