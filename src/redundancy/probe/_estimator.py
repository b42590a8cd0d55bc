"""``ElasticNetProbe``: a linear probe with an elastic-net penalty, scikit-learn style."""

from __future__ import annotations

import logging
import numbers
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone

from .._progress import Progress
from . import _fast, _paper

if TYPE_CHECKING:
    from ._checkpoint import FamilyCheckpoint

logger = logging.getLogger(__name__)

SOLVERS = ("fast", "paper")
FULL_BATCH_MAX = 16384
"""With ``batch_size=None`` the fast solver trains full-batch (FISTA) up to this many rows."""


def default_lr(n_features: int) -> float:
    """The fast solver's default Adam step for a probe on ``n_features`` standardised inputs.

    Adam moves every weight by about one step size per step; within a budget of a few hundred steps a
    probe on few neurons, whose weights must grow larger, needs larger steps, while wide probes need
    smaller ones to stay stable. ``0.15 / sqrt(n_features)``, clipped to [1e-3, 3e-2], fits both ends
    (measured on MiniLM EWT POS at 134, 537 and 2,688 neurons, see docs/probe.md).

    >>> round(default_lr(2688), 5), round(default_lr(134), 4)
    (0.00289, 0.013)
    """
    return float(min(3e-2, max(1e-3, 0.15 / np.sqrt(max(n_features, 1)))))


_CONSTRAINTS: dict[str, Callable[[Any], bool]] = {
    "l1": lambda v: isinstance(v, numbers.Real) and v >= 0,
    "l2": lambda v: isinstance(v, numbers.Real) and v >= 0,
    "solver": lambda v: v in SOLVERS,
    "standardize": lambda v: v is None or isinstance(v, bool),
    "class_weight": lambda v: v is None or v == "balanced" or isinstance(v, dict),
    "batch_size": lambda v: (
        v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1)
    ),
    "lr": lambda v: v is None or (isinstance(v, numbers.Real) and v > 0),
    "max_epochs": lambda v: v is None or (isinstance(v, numbers.Real) and v > 0),
    "min_steps": lambda v: isinstance(v, numbers.Integral) and v >= 0,
    "early_stopping": lambda v: v is None or isinstance(v, bool),
    "patience": lambda v: v is None or (isinstance(v, numbers.Integral) and v >= 1),
    "max_iter": lambda v: isinstance(v, numbers.Integral) and v >= 1,
    "tol": lambda v: isinstance(v, numbers.Real) and v >= 0,
    "task": lambda v: v in (None, "classification", "regression"),
    "random_state": lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
}


def _minibatch_options(settings: dict) -> dict:
    """The resolved settings that the minibatch solver takes, for one probe or a family alike."""
    keys = ("l1", "l2", "standardize", "batch_size", "max_epochs", "min_steps", "early_stopping", "patience")
    return {k: settings[k] for k in keys} | {"seed": settings["random_state"]}


class ElasticNetProbe(BaseEstimator):
    """Linear probe (multinomial logistic or linear regression) with an elastic-net penalty.

    Parameters
    ----------
    l1, l2 : float
        Penalty weights on the weight matrix (never the bias). ``solver="paper"``:
        ``l1 * sum|W| + l2 * ||W||_2`` (the un-squared norm, as in the authors' code) added to the
        mean batch loss. ``solver="fast"``: ``l1 * sum|W| + (l2 / 2) * ||W||_F^2`` added to the mean
        loss (half the mean squared error for regression), on the standardised scale when
        ``standardize``. This is scikit-learn's elastic net: ``LogisticRegression(C, l1_ratio)``
        on n rows is ``l1 = l1_ratio / (C n)``, ``l2 = (1 - l1_ratio) / (C n)``;
        ``ElasticNet(alpha, l1_ratio)`` is ``l1 = alpha * l1_ratio``, ``l2 = alpha * (1 - l1_ratio)``
        (see :func:`sklearn_equivalent`).
    solver : {"fast", "paper"}
        ``"paper"``: Adam, lr 1e-3, batches of 128 in data order, 10 epochs, raw features, no early
        stopping. ``"fast"``: minibatch Adam with a proximal L1 step on standardised features, 2
        epochs with a linearly decaying step, early stopping on dev; full-batch FISTA (the exact
        optimum) when the training set fits one batch. See ``docs/probe.md``.
    standardize : bool, optional
        Train on z-scored features (folded into the weights; ``coef_`` is always on the raw scale).
        Default: True for fast, False for paper.
    class_weight : None, "balanced" or dict {class: weight}
        Per-class loss weights (``"balanced"``: ``n / (n_classes * count)``, as scikit-learn).
    batch_size : int, optional
        Rows per step. Default: 128 (paper); fast: full batch up to 16,384 rows, else 512. The fast
        solver trains full-batch whenever ``batch_size >= n``.
    lr : float, optional
        Adam step size. Paper: 1e-3. Fast: the initial step (decayed linearly to 0); by default
        ``default_lr(n_features) = 0.15 / sqrt(n_features)``, clipped to [1e-3, 3e-2].
    max_epochs : float, optional
        Passes over the data. Default: 10 (paper), 2 (fast minibatch).
    min_steps : int
        Fast minibatch only: at least this many steps, however small the data.
    early_stopping : bool, optional
        Fast only (default True): watch the dev score (``X_dev``/``y_dev`` given to ``fit``), keep
        the best weights, stop after ``patience`` evaluations without gain.
    patience : int, optional
        Evaluations without gain before stopping (default 4 minibatch, evaluated twice per epoch;
        10 FISTA, evaluated every 10 iterations).
    max_iter, tol : int, float
        Fast full-batch only: iteration cap and relative objective change that stops FISTA.
    task : {"classification", "regression"}, optional
        Default: regression for float ``y``, classification otherwise.
    random_state : int
        Seeds the paper's weight initialisation and the fast solver's row shuffling.

    Attributes
    ----------
    classes_ : ndarray (classification)
    coef_ : ndarray of shape (n_classes, n_features); (1, n_features) for regression; raw scale
    intercept_ : ndarray of shape (n_classes,) or (1,)
    scaled_coef_ : the weights on the scale the penalty acted on (``coef_ * scale_``); rank neurons by these
    mean_, scale_ : the standardisation (zeros and ones when not standardised)
    n_iter_ : optimizer steps (FISTA: iterations);  n_epochs_ : passes over the data
    dev_monitor_ : best dev accuracy (minus dev MSE for regression) seen by early stopping, or None
    fit_seconds_ : wall time of ``fit``
    solver_settings_ : dict, the resolved settings actually used

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 5)); y = (X[:, 0] > 0).astype(int)
    >>> ElasticNetProbe(l1=1e-3, l2=1e-3).fit(X, y).score(X, y) > 0.95
    True
    """

    def __init__(
        self,
        l1: float = 1e-5,
        l2: float = 1e-5,
        solver: str = "fast",
        *,
        standardize: bool | None = None,
        class_weight: str | dict | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        max_epochs: float | None = None,
        min_steps: int = 300,
        early_stopping: bool | None = None,
        patience: int | None = None,
        max_iter: int = 1000,
        tol: float = 1e-7,
        task: str | None = None,
        random_state: int = 0,
    ):
        self.l1 = l1
        self.l2 = l2
        self.solver = solver
        self.standardize = standardize
        self.class_weight = class_weight
        self.batch_size = batch_size
        self.lr = lr
        self.max_epochs = max_epochs
        self.min_steps = min_steps
        self.early_stopping = early_stopping
        self.patience = patience
        self.max_iter = max_iter
        self.tol = tol
        self.task = task
        self.random_state = random_state

    # ------------------------------------------------------------------ settings

    def _validate_params(self) -> None:
        for name, ok in _CONSTRAINTS.items():
            value = getattr(self, name)
            if not ok(value):
                raise ValueError(f"ElasticNetProbe: invalid {name}={value!r}")
        if self.solver == "paper" and self.early_stopping:
            raise ValueError("ElasticNetProbe: the paper solver has no early stopping (use solver='fast')")

    def resolved_settings(self, n_rows: int, n_features: int | None = None) -> dict[str, Any]:
        """The settings a fit on ``n_rows`` rows (and ``n_features`` columns) uses, defaults filled in
        per solver. Without ``n_features`` the fast solver's default step is reported as ``"auto"``."""
        self._validate_params()
        if self.solver == "paper":
            return {
                "solver": "paper",
                "method": "adam",
                "l1": float(self.l1),
                "l2": float(self.l2),
                "l2_form": "unsquared",
                "standardize": bool(self.standardize),
                "batch_size": int(self.batch_size or 128),
                "lr": float(self.lr or 1e-3),
                "max_epochs": float(self.max_epochs or 10),
                "shuffle": False,
                "early_stopping": False,
                "class_weight": self.class_weight,
                "random_state": int(self.random_state),
            }
        bs = self.batch_size if self.batch_size is not None else (n_rows if n_rows <= FULL_BATCH_MAX else 512)
        full = bs >= n_rows
        early = True if self.early_stopping is None else bool(self.early_stopping)
        common = {
            "solver": "fast",
            "l1": float(self.l1),
            "l2": float(self.l2),
            "l2_form": "squared/2",
            "standardize": True if self.standardize is None else bool(self.standardize),
            "early_stopping": early,
            "class_weight": self.class_weight,
            "random_state": int(self.random_state),
        }
        if full:
            return {
                **common,
                "method": "fista",
                "batch_size": int(n_rows),
                "max_iter": int(self.max_iter),
                "tol": float(self.tol),
                "patience": int(self.patience or 10),
            }
        if self.lr is not None:
            lr: float | str = float(self.lr)
        else:
            lr = default_lr(n_features) if n_features is not None else "auto"
        return {
            **common,
            "method": "adam-prox",
            "batch_size": int(bs),
            "lr": lr,
            "max_epochs": float(self.max_epochs or 2),
            "min_steps": int(self.min_steps),
            "patience": int(self.patience or 4),
            "shuffle": True,
            "lr_schedule": "linear-decay",
        }

    # ------------------------------------------------------------------ labels

    def _is_regression(self, y: np.ndarray) -> bool:
        if self.task is not None:
            return self.task == "regression"
        return np.asarray(y).dtype.kind == "f"

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels -> class ids; labels not in ``classes_`` get ids past the classes (never predicted)."""
        y = np.asarray(y)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        known = self.classes_[idx] == y
        out = np.where(known, idx, len(self.classes_)).astype(np.int64)
        return out

    def _weights(self, y_enc: np.ndarray, sample_weight, regression: bool) -> np.ndarray | None:
        """Per-item weights: sample times class weights (classes); sample weights alone (regression)."""
        if regression:
            return None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        return self._sample_weight(y_enc, sample_weight)

    def _sample_weight(self, y_enc: np.ndarray, sample_weight) -> np.ndarray | None:
        cw = self._class_weight_vector(y_enc)
        if cw is None and sample_weight is None:
            return None
        w = np.ones(y_enc.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        return w * cw[y_enc] if cw is not None else w

    def _class_weight_vector(self, y_enc: np.ndarray) -> np.ndarray | None:
        if self.class_weight is None or not hasattr(self, "classes_"):
            return None
        K = len(self.classes_)
        if self.class_weight == "balanced":
            counts = np.bincount(y_enc, minlength=K).astype(np.float64)
            return np.where(counts > 0, y_enc.size / (K * np.maximum(counts, 1)), 0.0)
        return np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_.tolist()])

    def _prepare(self, X, y, X_dev, y_dev):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
        if X.dtype.kind != "f":
            X = X.astype(np.float32)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        regression = self._is_regression(y)
        if regression:
            self.classes_ = None
            y_enc = y.astype(np.float64)
            if not np.all(np.isfinite(y_enc)):
                raise ValueError("y holds NaN or inf")
        else:
            self.classes_ = np.unique(y)
            if self.classes_.size < 2:
                raise ValueError(f"a classification probe needs at least 2 classes, got {self.classes_.size}")
            y_enc = self._encode(y)
        y_dev_enc = None
        if X_dev is not None and y_dev is not None:
            X_dev = np.asarray(X_dev)
            if X_dev.ndim != 2 or X_dev.shape[1] != X.shape[1]:
                raise ValueError(f"X_dev must have {X.shape[1]} columns, got shape {X_dev.shape}")
            y_dev_enc = np.asarray(y_dev, dtype=np.float64) if regression else self._encode(y_dev)
        return X, y_enc, X_dev, y_dev_enc, regression

    # ------------------------------------------------------------------ fit

    def fit(self, X, y, X_dev=None, y_dev=None, sample_weight=None) -> ElasticNetProbe:
        """Train on ``X`` (n, d) and ``y`` (n,); ``X_dev``/``y_dev`` drive early stopping (fast).

        Dev labels that are not among the training classes count as errors for early stopping.
        """
        t0 = time.perf_counter()
        self._validate_params()
        X, y_enc, X_dev, y_dev_enc, regression = self._prepare(X, y, X_dev, y_dev)
        settings = self.resolved_settings(X.shape[0], X.shape[1])
        K = 1 if regression else len(self.classes_)
        sw = self._weights(y_enc, sample_weight, regression)
        if settings["solver"] == "paper":
            self._fit_paper(
                _paper.memory_batches(X, y_enc, settings["batch_size"]),
                X,
                X.shape[1],
                K,
                regression,
                settings,
                y_enc,
            )
        elif settings["method"] == "fista":
            out = _fast.fit_fista(
                X,
                y_enc,
                n_outputs=K,
                regression=regression,
                l1=settings["l1"],
                l2=settings["l2"],
                standardize=settings["standardize"],
                sample_weight=sw,
                X_dev=X_dev,
                y_dev=y_dev_enc,
                early_stopping=settings["early_stopping"],
                max_iter=settings["max_iter"],
                tol=settings["tol"],
                patience=settings["patience"],
            )
            self._set_from_output(out, X.shape[1])
        else:
            (out,) = _fast.fit_family_minibatch(
                X,
                y_enc,
                [[(0, X.shape[1])]],
                n_outputs=K,
                regression=regression,
                lr=settings["lr"],
                sample_weight=sw,
                X_dev=X_dev,
                y_dev=y_dev_enc,
                **_minibatch_options(settings),
            )
            self._set_from_output(out, X.shape[1])
        self.solver_settings_ = settings
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _fit_paper(self, batches, X_for_stats, n_features, K, regression, settings, y_enc) -> None:
        transform = None
        if settings["standardize"]:
            mu, sd = _fast.column_stats(_fast.activations_tensor(X_for_stats), True)
            muf, invf = mu.float(), (1.0 / sd).float()
            transform = lambda t: (t - muf) * invf  # noqa: E731
            mean, scale = mu.numpy(), sd.numpy()
        else:
            mean, scale = np.zeros(n_features), np.ones(n_features)
        cw = None if regression else self._class_weight_vector(y_enc)
        W, b, steps = _paper.fit_paper(
            batches,
            n_features,
            K,
            regression=regression,
            l1=settings["l1"],
            l2=settings["l2"],
            lr=settings["lr"],
            epochs=int(settings["max_epochs"]),
            seed=settings["random_state"],
            class_weight=cw,
            transform=transform,
        )
        self.scaled_coef_ = W
        self.coef_ = W / scale[None, :]
        self.intercept_ = b - W @ (mean / scale)
        self.mean_, self.scale_ = mean, scale
        self.n_iter_ = steps
        self.n_epochs_ = float(settings["max_epochs"])
        self.dev_monitor_ = None
        self.history_ = []

    def _set_from_output(self, out: _fast.FitOutput, n_features: int) -> None:
        if out.weights.shape[0] != n_features:
            raise AssertionError("internal: fitted weights do not match the features")
        self.scaled_coef_ = out.weights.T.copy()
        self.coef_ = (out.weights / out.scale[:, None]).T.copy()
        self.intercept_ = out.bias - (out.mean / out.scale) @ out.weights
        self.mean_, self.scale_ = out.mean, out.scale
        self.n_iter_ = out.n_steps
        self.n_epochs_ = out.n_epochs
        self.dev_monitor_ = out.best_monitor
        self.history_ = out.history

    # ------------------------------------------------------------------ predict

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise ValueError("this ElasticNetProbe is not fitted yet; call fit first")

    def decision_function(self, X, chunk: int = 65536) -> np.ndarray:
        """Logits (n, n_classes) or predicted values (n,), computed in float64 chunks."""
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.coef_.shape[1]:
            raise ValueError(f"X must have {self.coef_.shape[1]} columns, got shape {X.shape}")
        W = self.coef_.T.astype(np.float32)
        out = np.empty((X.shape[0], W.shape[1]), dtype=np.float64)
        for s in range(0, X.shape[0], chunk):
            out[s : s + chunk] = np.asarray(X[s : s + chunk], dtype=np.float32) @ W
        out += self.intercept_
        return out[:, 0] if self.classes_ is None else out

    def predict_ids(self, X) -> np.ndarray:
        """Predicted class *indices* into ``classes_`` (or values for regression)."""
        z = self.decision_function(X)
        return z if self.classes_ is None else z.argmax(axis=1)

    def predict(self, X) -> np.ndarray:
        z = self.predict_ids(X)
        return z if self.classes_ is None else self.classes_[z]

    def predict_proba(self, X) -> np.ndarray:
        if self.classes_ is None:
            raise ValueError("predict_proba is for classification probes")
        z = self.decision_function(X)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def score(self, X, y) -> float:
        """Accuracy (classification; unseen labels count as errors) or R^2 (regression)."""
        from sklearn.metrics import accuracy_score, r2_score

        if self.classes_ is None:
            return float(r2_score(y, self.predict(X)))
        return float(accuracy_score(self._encode(y), self.predict_ids(X)))


def sklearn_equivalent(
    l1: float, l2: float, n_samples: int, task: str = "classification"
) -> dict[str, float]:
    """scikit-learn parameters for the fast solver's objective with these ``l1``, ``l2``.

    ``LogisticRegression`` minimises ``C * sum_i loss_i + l1_ratio * |W|_1 + (1 - l1_ratio) / 2 * |W|^2``;
    dividing by ``C * n`` gives ours, so ``C = 1 / (n (l1 + l2))`` and ``l1_ratio = l1 / (l1 + l2)``.
    ``ElasticNet`` minimises ``1/(2n) |y - Xw|^2 + alpha * l1_ratio |w|_1 + alpha (1 - l1_ratio) / 2 |w|^2``,
    so ``alpha = l1 + l2`` and ``l1_ratio = l1 / (l1 + l2)``.

    >>> sklearn_equivalent(1e-3, 1e-3, 500)
    {'C': 1.0, 'l1_ratio': 0.5}
    """
    total = l1 + l2
    if total <= 0:
        raise ValueError("l1 + l2 must be > 0 for an equivalent penalised model")
    if task == "classification":
        return {"C": 1.0 / (n_samples * total), "l1_ratio": l1 / total}
    return {"alpha": total, "l1_ratio": l1 / total}


# --------------------------------------------------------------------------- families


def fit_probe_family(
    probe: ElasticNetProbe,
    X: np.ndarray,
    y: np.ndarray,
    feature_ranges: Sequence[Sequence[tuple[int, int]]],
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    *,
    sample_weight: np.ndarray | None = None,
    columns: np.ndarray | None = None,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Progress | None = None,
    what: str = "probes",
    checkpoint: FamilyCheckpoint | None = None,
    only: Sequence[int] | None = None,
) -> list[ElasticNetProbe]:
    """Train one probe (a clone of ``probe``) per feature set, each a list of column ranges of ``X``.

    ``columns`` (optional, an index array): the ranges index ``X[:, columns]`` instead of ``X``
    (with the fast solver that matrix is gathered batch by batch, never built: probes on different
    neuron orders share one pass). ``stats``: the column means and standard deviations of that
    matrix (as the solver computes them, float64), reused instead of a pass over the data when the
    probe standardises.

    Probe ``i`` sees the columns of ``feature_ranges[i]`` in increasing order. With the fast
    solver in minibatch mode the whole family is trained in one pass over the data (see
    ``_fast``); otherwise (paper solver, or full-batch FISTA on small data) the probes are trained
    one after the other. Either way each returned probe is an ordinary fitted ``ElasticNetProbe``.
    ``progress`` (a :class:`redundancy._progress.Progress`) hears ``what`` advance: the family's
    steps, or its probes when they are trained one after the other. With a ``checkpoint``
    (:class:`redundancy.probe.FamilyCheckpoint`) a family it holds is read back instead of trained,
    and a trained one is saved to it.

    ``only`` (increasing indices into ``feature_ranges``; not with ``checkpoint``): train just those
    probes as the whole family would (the same batches, step sizes and column blocks), and return
    them in that order: parts of one family can be trained apart (in parallel, on other machines:
    :mod:`redundancy.scale`) and give the whole family's probes to the bit, when run in as many torch
    threads as the whole family (``docs/scaling.md``, "Probes on Ray").
    """
    if only is not None:
        only = [int(i) for i in only]
        if not only or any(b <= a for a, b in zip(only, only[1:], strict=False)):
            raise ValueError(f"only must be non-empty, increasing indices into the family, got {only}")
        if only[0] < 0 or only[-1] >= len(feature_ranges):
            raise ValueError(f"only must index the {len(feature_ranges)} feature sets, got {only}")
        if checkpoint is not None:
            raise ValueError("only (a part of a family) cannot be combined with a checkpoint")
    if checkpoint is not None:
        train = partial(
            fit_probe_family,
            probe,
            X,
            y,
            feature_ranges,
            X_dev,
            y_dev,
            sample_weight=sample_weight,
            columns=columns,
            stats=stats,
            progress=progress,
            what=what,
        )
        return checkpoint.fit(train, probe, X, y, feature_ranges, X_dev, y_dev, columns, sample_weight, what)
    X = np.asarray(X)
    if columns is not None:
        columns = np.asarray(columns, dtype=np.int64)
        if columns.ndim != 1 or (columns.size and not (0 <= columns.min() and columns.max() < X.shape[1])):
            raise ValueError(f"columns must be a 1-d index array into the {X.shape[1]} columns of X")
    sets = [sorted((int(a), int(b)) for a, b in ranges) for ranges in feature_ranges]
    cols = [np.concatenate([np.arange(a, b) for a, b in r]) for r in sets]
    for c in cols:
        if np.unique(c).size != c.size:
            raise ValueError("a feature set has overlapping ranges")
    settings = probe.resolved_settings(X.shape[0])
    keep = list(range(len(sets))) if only is None else only
    if settings["solver"] != "fast" or settings["method"] != "adam-prox" or len(sets) == 1:
        out = []
        for done, i in enumerate(keep):
            ranges = sets[i]
            if columns is None:
                Xi, Xd = _select(X, ranges), None if X_dev is None else _select(np.asarray(X_dev), ranges)
            else:
                real = columns[cols[i]]
                Xi = np.take(X, real, axis=1)
                Xd = None if X_dev is None else np.take(np.asarray(X_dev), real, axis=1)
            out.append(clone(probe).fit(Xi, y, Xd, y_dev, sample_weight=sample_weight))
            if progress is not None:
                progress(what, done + 1, len(keep))
        return out
    t0 = time.perf_counter()
    template = clone(probe)
    X, y_enc, X_dev, y_dev_enc, regression = template._prepare(X, y, X_dev, y_dev)
    K = 1 if regression else len(template.classes_)
    sw = template._weights(y_enc, sample_weight, regression)
    lrs = [probe.resolved_settings(X.shape[0], cols[i].size)["lr"] for i in keep]
    if stats is not None and settings["standardize"]:
        mean, scale = (np.asarray(a, dtype=np.float64) for a in stats)
        n_cols = X.shape[1] if columns is None else columns.size
        if mean.shape != (n_cols,) or scale.shape != (n_cols,):
            raise ValueError(f"stats must be two arrays of {n_cols} column statistics")
        solver_stats = (torch.from_numpy(mean), torch.from_numpy(scale))
    else:
        solver_stats = None
    outs = _fast.fit_family_minibatch(
        X,
        y_enc,
        sets,
        n_outputs=K,
        regression=regression,
        lr=lrs,
        sample_weight=sw,
        X_dev=X_dev,
        y_dev=y_dev_enc,
        progress=None if progress is None else partial(progress, what),
        stats=solver_stats,
        columns=columns,
        only=only,
        **_minibatch_options(settings),
    )
    seconds = time.perf_counter() - t0
    fitted = []
    for out, c, lr in zip(outs, [cols[i] for i in keep], lrs, strict=True):
        if not np.array_equal(out.cols, c):
            raise AssertionError("internal: family columns out of order")
        p = clone(probe)
        p.classes_ = template.classes_
        p._set_from_output(out, c.size)
        p.solver_settings_ = {**settings, "lr": lr, "family_size": len(sets)}
        p.fit_seconds_ = seconds / len(keep)  # the family's time, shared evenly
        fitted.append(p)
    return fitted


def _select(X: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
    """The columns of ``ranges``: a view for one range (rows stay contiguous, so 128-row batches
    are cheap to copy), else one row-major copy."""
    if len(ranges) == 1:
        a, b = ranges[0]
        return X[:, a:b]
    return np.ascontiguousarray(np.concatenate([X[:, a:b] for a, b in ranges], axis=1))
