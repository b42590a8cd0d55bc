"""The fast elastic-net solver: one kernel for a whole *family* of linear probes.

Why it is fast (measured on MiniLM EWT POS, 150k words x 2,688 neurons x 49 tags, 1 CPU thread):

* **Standardised features, folded into the weights.** The weights live on the standardised scale
  (``W``), the data stay as stored: logits are ``X @ (W / s) - (m / s) @ W + b``. Standardising
  makes one Adam step size fit every neuron (MiniLM's activations range over two orders of
  magnitude), so one or two epochs reach the accuracy the paper's raw-feature Adam reaches in ten;
  folding it costs ``O(d K)`` per step instead of a copy of the data.
* **Big minibatches, explicit gradients.** 512 rows per step: the two matrix products per step
  (``X_b @ W`` and ``X_b^T @ G``) are large enough for BLAS, and the gradient of the softmax
  cross-entropy (``P - Y``) is written out, so there is no autograd graph per step.
* **A fixed, short budget with a linear decay of the step size** (default 2 epochs), the dev score
  watched every half epoch, and the best weights kept (early stopping). Adam moves each weight by
  about one step size per step, so in a short budget a probe on few neurons (whose weights must
  grow larger) needs a larger step: the default step is ``0.15 / sqrt(n_features)`` (clipped to
  [1e-3, 3e-2]; 2.9e-3 for 2,688 neurons, 1.3e-2 for 134), chosen per probe inside a family.
* **Families in one pass.** Probes whose features are unions of column ranges of the same matrix
  (one per layer, layers 0..l, the top-k sets of a ranking) are trained together: the columns are
  cut into blocks at every range boundary; each block's rows are read once per step and multiplied
  by the weights of *all* probes that use the block (one wide product instead of many thin ones).
  Adam and the L1 proximal step act on each weight separately, so this is exactly the same as
  training the probes one after the other on the same batches — only cheaper. A block whose probes
  are consecutive adds into and reads from a slice of the family's logits and gradients (no
  scatter or gather); all blocks' weights, gradients and Adam moments live in one flat buffer, so
  the elementwise updates run once per step, not once per block; the standardisation's offset is
  folded into the bias. Probes on *different* neuron orders (the controls' random and bottom
  curves) join one family through ``columns``: each batch's rows are gathered, then the
  concatenated orders' columns, so no copy of the training matrix is made.
* **Small data: full-batch FISTA.** When the training set fits in one batch, accelerated proximal
  gradient with backtracking and adaptive restart solves the elastic-net problem to tolerance; this
  is the exact optimum that scikit-learn's solvers reach too. The extrapolated point's logits are
  combined from the last two iterates' (they are linear in the weights): two passes over the data
  per iteration, not three.
* **Thin products in the fast orientation** (:func:`_xw`, :func:`_xtg`): a probe of a binary task
  multiplies the data by 2 columns, where the CPU BLAS is up to 18x below memory speed in one
  orientation and at it in the other.
* **A probe's numbers do not depend on its neighbours** in the minibatch family: products padded to
  :data:`MIN_PRODUCT_COLUMNS`, position-independent column sums (:func:`_column_sums`) and rank-1
  corrections, evaluation chunks sized by the whole family; so parts of a family (``only``)
  trained apart equal the whole family to the bit (at equal thread counts).

Objective (per probe; ``w_i`` are class weights, 1 by default; ``W`` on the standardised scale):

    classification:  (1/n) sum_i w_i CE(x_i, y_i) + l1 * |W|_1 + (l2 / 2) * |W|_F^2
    regression:      (1/2n) sum_i w_i (y_i - f(x_i))^2 + l1 * |W|_1 + (l2 / 2) * |W|_F^2

The bias is not penalised. The L1 term is handled by a proximal step (soft-thresholding), so
weights become exactly zero; with Adam the threshold is scaled by Adam's per-weight step (the
proximal step in Adam's diagonal metric), so a weight is zero when its average gradient stays
below ``l1``, as at the optimum.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

Ranges = Sequence[tuple[int, int]]
DEV_GATHER_BYTES = 512 * 2**20
"""A family over gathered ``columns`` copies them out of the dev matrix once up to this size (else
at every evaluation, chunk by chunk)."""
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


@dataclass
class FitOutput:
    """One trained probe, on the standardised scale, over its own columns (in column order)."""

    cols: np.ndarray  # column indices into the family's X
    weights: np.ndarray  # (d_p, n_outputs) float64, standardised scale
    bias: np.ndarray  # (n_outputs,) float64, standardised scale
    mean: np.ndarray  # (d_p,) float64 (zeros if not standardised)
    scale: np.ndarray  # (d_p,) float64 (ones if not standardised)
    n_steps: int = 0
    n_epochs: float = 0.0
    best_monitor: float | None = None
    history: list[dict] = field(default_factory=list)


def activations_tensor(X: np.ndarray, dtype: Any = np.float32) -> torch.Tensor:
    """``X`` as a float tensor without a copy where possible, also when ``X`` is read-only (a view of a
    store's memory map, :meth:`ProbeSplit.read`). torch warns that it cannot protect a non-writable
    array; the probes only read their activations, so the warning is silenced here and nowhere else."""
    a = np.ascontiguousarray(X, dtype=dtype)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


# --------------------------------------------------------------------------- statistics


def column_stats(X: torch.Tensor, standardize: bool, chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and standard deviations (float64), merged over row chunks (Chan et al.).

    Each chunk's mean and variance come from ``torch.var_mean`` in float32 (two-pass, so stable);
    chunks are merged in float64. Constant columns get scale 1 (their weight then stays 0 under L1).
    """
    d = X.shape[1]
    if not standardize:
        return torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    n_tot = 0
    mean = torch.zeros(d, dtype=torch.float64)
    m2 = torch.zeros(d, dtype=torch.float64)
    for start in range(0, X.shape[0], chunk):
        c = X[start : start + chunk]
        var_c, mean_c = torch.var_mean(c, dim=0, correction=0)
        nc = c.shape[0]
        mean_c, m2_c = mean_c.double(), var_c.double() * nc
        delta = mean_c - mean
        tot = n_tot + nc
        mean += delta * (nc / tot)
        m2 += m2_c + delta.square() * (n_tot * nc / tot)
        n_tot = tot
    std = (m2 / max(n_tot, 1)).sqrt()
    std[std < 1e-6 * max(float(std.max()), 1e-12)] = 1.0
    return mean, std


# --------------------------------------------------------------------------- family layout


@dataclass
class _Layout:
    bounds: list[tuple[int, int]]  # column blocks
    members: list[torch.Tensor]  # per block: probes using it (int64)
    masks: list[torch.Tensor | None]  # per block: (width, n_members) 1 where the probe uses the column
    probe_blocks: list[list[int]]  # per probe: its blocks, in column order
    n_probes: int
    spans: list[tuple[int, int] | None] = field(default_factory=list)  # per block: its probes lo..hi-1
    # when they are consecutive (then its logits and gradients are slices of the family's: no
    # scatter or gather per step), else None
    family_size: int = 0  # probes of the whole family (a part of it, :func:`_restrict`, has fewer)


BLOCK_COST_FLOPS = 3e7
"""The fixed cost of one more block per step (about 30 small torch calls, ~120 us on this project's
2-core reference machine) in floating-point operations of the block products at their measured
speed there (~250 GFLOP/s): a (column x probe) unit of a block costs ``4 * batch * classes``
flops per step (two products), so neighbouring blocks are merged while the wasted units cost less
than this (:func:`merge_cost`)."""


def merge_cost(batch: int, n_outputs: int) -> int:
    """The (column x probe) units of wasted arithmetic worth one block less per step.

    >>> merge_cost(512, 49), merge_cost(512, 1), merge_cost(512, 1000)
    (298, 14648, 16)
    """
    return max(16, int(BLOCK_COST_FLOPS / (4 * max(batch, 1) * max(n_outputs, 1))))


# The CPU BLAS (MKL) computes a product with fewer than this many output columns by another kernel,
# which rounds differently: a probe's logits or gradient in a family would then depend on how many
# other probes share its block (measured with torch's MKL here: 1-3 columns differ from the same
# columns of a wider product, 4 and more never; ``tests/scale/exactness.py`` checks a machine), and a
# family trained in parts (``only``) would not equal the whole.
MIN_PRODUCT_COLUMNS = 4


def _pad_columns(m: torch.Tensor) -> torch.Tensor:
    k = m.shape[1]
    if k >= MIN_PRODUCT_COLUMNS:
        return m
    return torch.cat([m, m.new_zeros(m.shape[0], MIN_PRODUCT_COLUMNS - k)], 1)


def _xw(x: torch.Tensor, w: torch.Tensor, *, pad: bool = False) -> torch.Tensor:
    """``x @ w`` computed as ``(w^T x^T)^T`` (a view of the same numbers, rounded differently).

    Why not ``x @ w``: for a thin ``w`` (2-10 outputs: a binary task, one probe of a block) the
    CPU BLAS's kernel for this orientation runs 2-3x below memory speed, the transposed one at it
    (measured, 1 thread, 5,000 x 9,984 float32 times 9,984 x 2: 60 ms vs 30 ms; 512 x 768 x 2:
    0.47 vs 0.18 ms); from about 20 outputs on both run at the same speed, and for one output
    (a regression probe: a matrix-vector product) the plain form is 2.5x faster than a padded
    product (``bench/thin_products.py``).

    ``pad`` (the family solver): ``w`` padded with zero columns to :data:`MIN_PRODUCT_COLUMNS`, one
    output included, so that each column rounds the same however many columns the product has."""
    k = w.shape[1]
    if pad:
        return (_pad_columns(w).T @ x.T).T[:, :k]
    return x @ w if k == 1 else (w.T @ x.T).T


def _xtg(x: torch.Tensor, g: torch.Tensor, *, pad: bool = False) -> torch.Tensor:
    """``x^T @ g`` (the weights' gradient) computed as ``(g^T x)^T``: for a thin ``g`` the BLAS's
    transposed-operand kernel is up to 18x slower (5,000 x 9,984 by 2 columns: 357 ms vs 19 ms;
    512 x 768 x 2: 0.47 vs 0.06 ms); ``pad`` and one output as in :func:`_xw`."""
    k = g.shape[1]
    if pad:
        return (_pad_columns(g).T @ x).T[:, :k]
    return x.T @ g if k == 1 else (g.T @ x).T


def _column_sums(g: torch.Tensor) -> torch.Tensor:
    """``g.sum(0)`` as the row sums of ``g``'s transpose: each column summed the same way wherever
    it falls in ``g``.

    Why: the probes of a family trained in parts (``only``, :mod:`redundancy.scale`) sit at other
    column positions of the gradient than in the whole family, and torch's column sum rounds a
    column differently in its vectorised body and in its remainder (likewise MKL's rank-1 update
    ``addr_``, hence ``sub_(outer(...))``: one rounding of each product, one of the difference).
    With both, a part's probes equal the whole family's to the bit (``tests/scale/test_probes_ray.py``).
    Their price, measured (1 thread, 512 rows, a 384-column block of 13 probes x 49 classes): 0.23 ms
    per step against 0.06 ms for ``sum(0)`` and ``addr_``, beside 5.6 ms of the block's two products."""
    return g.T.contiguous().sum(1)


def _layout(families: Sequence[Ranges], n_cols: int, max_waste: int = 64) -> _Layout:
    """Cut the columns at every range boundary; merge neighbouring narrow blocks (masked).

    Elementary blocks are used in full by each of their probes. Many narrow blocks (the nested
    top-k sets of a fine grid differ by 2-3 columns) would cost more in per-block calls than in
    arithmetic, so neighbours are merged while the wasted multiply-adds stay below ``max_waste``;
    a merged block keeps a 0/1 mask so that each probe's weights outside its columns stay exactly 0.
    """
    cuts = {0, n_cols}
    for ranges in families:
        if not ranges:
            raise ValueError("every probe needs at least one column range")
        for a, b in ranges:
            if not (0 <= a < b <= n_cols):
                raise ValueError(f"column range ({a}, {b}) outside [0, {n_cols}]")
            cuts.update((a, b))
    edges = sorted(cuts)
    elementary: list[tuple[int, int, frozenset[int]]] = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        users = frozenset(
            p for p, ranges in enumerate(families) if any(lo <= a and b <= hi for lo, hi in ranges)
        )
        if users:
            elementary.append((a, b, users))
    groups: list[list[tuple[int, int, frozenset[int]]]] = []
    for blk in elementary:
        if groups and groups[-1][-1][1] == blk[0]:
            cur = groups[-1]
            width = cur[-1][1] - cur[0][0]
            union = frozenset().union(*(g[2] for g in cur))
            extra = (
                (width + blk[1] - blk[0]) * len(union | blk[2])
                - width * len(union)
                - (blk[1] - blk[0]) * len(blk[2])
            )
            if extra <= max_waste:
                cur.append(blk)
                continue
        groups.append([blk])
    bounds, members, masks, probe_blocks = [], [], [], [[] for _ in families]
    for g in groups:
        a, b = g[0][0], g[-1][1]
        users = sorted(frozenset().union(*(e[2] for e in g)))
        mask = torch.zeros((b - a, len(users)))
        for lo, hi, us in g:
            for slot, p in enumerate(users):
                if p in us:
                    mask[lo - a : hi - a, slot] = 1.0
        for p in users:
            probe_blocks[p].append(len(bounds))
        bounds.append((a, b))
        members.append(torch.tensor(users, dtype=torch.int64))
        masks.append(None if bool(mask.all()) else mask)
    spans = [_span(m) for m in members]
    return _Layout(bounds, members, masks, probe_blocks, len(families), spans, len(families))


def _restrict(layout: _Layout, keep: Sequence[int]) -> _Layout:
    """``layout`` (a whole family's) restricted to its probes ``keep`` (increasing), renumbered
    ``0, 1, ...``: the same column blocks and masks, less the other probes, so that each kept probe
    is computed over exactly the blocks it had in the whole family (float32 sums over other blocks
    would round differently) and a part of a family trains the same probes as the whole family.

    A block keeps its way of adding into the logits too: an in-place add into a slice where its probes
    were consecutive in the whole family (they stay so), else a product added afterwards
    (``index_add_``), also where the kept probes happen to be consecutive (the two rounded
    differently when the first was an ``addmm_``; both now add the same product, :func:`_xw`)."""
    new_of = {int(p): i for i, p in enumerate(keep)}
    bounds, members, masks, spans = [], [], [], []
    probe_blocks: list[list[int]] = [[] for _ in keep]
    for j, ((a, b), users, mask) in enumerate(zip(layout.bounds, layout.members, layout.masks, strict=True)):
        slots = [s for s, p in enumerate(users.tolist()) if p in new_of]
        if not slots:
            continue
        kept = [new_of[int(users[s])] for s in slots]  # increasing, as users and keep are
        for p in kept:
            probe_blocks[p].append(len(bounds))
        bounds.append((a, b))
        members.append(torch.tensor(kept, dtype=torch.int64))
        sub = None if mask is None else mask[:, slots].contiguous()
        masks.append(None if sub is None or bool(sub.all()) else sub)
        spans.append(None if layout.spans[j] is None else _span(members[-1]))
    return _Layout(bounds, members, masks, probe_blocks, len(keep), spans, layout.family_size)


def _span(members: torch.Tensor) -> tuple[int, int] | None:
    """``(lo, hi)`` when ``members`` is ``lo, lo + 1, ..., hi - 1``, else None."""
    lo, hi = int(members[0]), int(members[-1]) + 1
    consecutive = hi - lo == members.numel() and bool(torch.equal(members, torch.arange(lo, hi)))
    return (lo, hi) if consecutive else None


def _initial_bias(y: np.ndarray, sw: np.ndarray, n_outputs: int, regression: bool) -> np.ndarray:
    """The best bias with zero weights: log class priors (smoothed) or the weighted mean target."""
    if regression:
        return np.array([np.average(y, weights=sw)])
    counts = np.bincount(y, weights=sw, minlength=n_outputs) + 0.5
    logp = np.log(counts / counts.sum())
    return logp - logp.mean()


# --------------------------------------------------------------------------- evaluation


def _family_predict(
    X: torch.Tensor,
    layout: _Layout,
    W: list[torch.Tensor],
    bias: torch.Tensor,
    mu: torch.Tensor,
    inv: torch.Tensor,
    n_out: int,
    regression: bool,
    chunk: int = 8192,
    columns: torch.Tensor | None = None,
) -> torch.Tensor:
    """Predictions of every probe: (n, P) class ids or values (``columns``: the family's columns
    of ``X``, gathered per chunk)."""
    P = layout.n_probes
    # rows per chunk: at most ~4M logits (16 MB) of the whole family, so the argmax reads them from
    # cache; a part of the family takes the whole family's chunks (a product of under ~10 rows, a
    # short last chunk, rounds differently: the part's predictions would not be the whole's)
    chunk = max(256, min(chunk, (1 << 22) // max(max(layout.family_size, P) * n_out, 1)))
    out = torch.empty((X.shape[0], P), dtype=torch.float32 if regression else torch.int64)
    Wraw = [w * inv[a:b, None] for w, (a, b) in zip(W, layout.bounds, strict=True)]
    shift = _shifted_bias(layout, W, bias, mu * inv, n_out)
    for s in range(0, X.shape[0], chunk):
        xb = X[s : s + chunk] if columns is None else X[s : s + chunk].index_select(1, columns)
        logits = _logits(xb, layout, Wraw, shift, n_out)
        out[s : s + chunk] = logits[..., 0] if regression else logits.argmax(-1)
    return out


def _shifted_bias(
    layout: _Layout, W: list[torch.Tensor], bias: torch.Tensor, muinv: torch.Tensor, K: int
) -> torch.Tensor:
    """The bias of the raw-scale logits: ``bias - sum_j (m / s)_j @ W_j`` per probe, (P, K).

    Folding the standardisation's offset into the bias costs ``O(d K)`` per step instead of one
    ``(rows, probes x classes)`` subtraction per block."""
    shift = bias.clone()
    for j, (a, b) in enumerate(layout.bounds):
        off = (muinv[a:b] @ W[j]).view(-1, K)
        span = layout.spans[j]
        if span is not None:
            shift[span[0] : span[1]].sub_(off)
        else:
            shift.index_add_(0, layout.members[j], off, alpha=-1.0)
    return shift


def _logits(
    xb: torch.Tensor, layout: _Layout, Wraw: list[torch.Tensor], shift: torch.Tensor, K: int
) -> torch.Tensor:
    """Every probe's logits on the rows ``xb``: (B, P, K). A block whose probes are consecutive adds
    its product in place into their slice; the others scatter theirs into their slots."""
    B, P = xb.shape[0], layout.n_probes
    logits = shift.view(1, -1).expand(B, P * K).clone()
    for j, (a, b) in enumerate(layout.bounds):
        span = layout.spans[j]
        if span is not None:
            logits[:, span[0] * K : span[1] * K].add_(_xw(xb[:, a:b], Wraw[j], pad=True))
        else:
            z = _xw(xb[:, a:b], Wraw[j], pad=True)
            logits.view(B, P, K).index_add_(1, layout.members[j], z.view(B, -1, K))
    return logits.view(B, P, K)


def _monitor(pred: torch.Tensor, y_dev: torch.Tensor, regression: bool) -> np.ndarray:
    """Per-probe early-stopping score (higher is better): dev accuracy, or minus the dev MSE."""
    if regression:
        return -((pred.double() - y_dev[:, None]) ** 2).mean(0).numpy()
    return (pred == y_dev[:, None]).double().mean(0).numpy()


# --------------------------------------------------------------------------- minibatch Adam family


def fit_family_minibatch(
    X: np.ndarray,
    y: np.ndarray,
    families: Sequence[Ranges],
    *,
    n_outputs: int,
    regression: bool,
    l1: float,
    l2: float,
    standardize: bool,
    lr: float | Sequence[float],
    batch_size: int,
    max_epochs: float,
    min_steps: int,
    sample_weight: np.ndarray | None = None,
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    early_stopping: bool = True,
    evals_per_epoch: int = 2,
    patience: int = 4,
    seed: int = 0,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    columns: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    only: Sequence[int] | None = None,
) -> list[FitOutput]:
    """Train every probe of ``families`` (each a list of column ranges of ``X``) together.

    ``only`` (optional, increasing indices into ``families``): train just these probes, with the
    column blocks of the whole family (:func:`_restrict`), so that parts of a family trained
    apart (e.g. on different machines, same ``seed``) give the whole family's probes; ``lr`` then
    holds one value (or one per kept probe).

    ``columns`` (optional): the family sees ``X[:, columns]`` (``X_dev`` likewise), gathered batch
    by batch and never materialised, so probes on different neuron orders (each a range of the
    concatenated orders) share one pass; ``stats`` are then the statistics of those columns.

    Minibatch Adam on the standardised scale with a proximal L1 step, a step size per probe (``lr``:
    one value or one per probe) decaying linearly to 0 over
    ``max(max_epochs * steps_per_epoch, min_steps)`` steps, rows reshuffled every epoch (``seed``),
    dev evaluated ``evals_per_epoch`` times per epoch (at most 20 times in all) with the best
    weights of each probe kept; a probe stops after ``patience`` evaluations in a row without
    a new best, the family when all have stopped.
    """
    t0 = time.perf_counter()
    Xt = activations_tensor(X)
    colt = None if columns is None else torch.from_numpy(np.asarray(columns, dtype=np.int64))
    n, D = Xt.shape[0], Xt.shape[1] if colt is None else colt.numel()
    layout = _layout(families, D, merge_cost(batch_size, n_outputs))
    if only is not None:
        layout = _restrict(layout, only)
    P, K = layout.n_probes, n_outputs
    if stats is None:
        mu64, sd64 = column_stats(Xt, standardize)
        if colt is not None:
            mu64, sd64 = mu64[colt], sd64[colt]
    else:
        mu64, sd64 = stats
    mu, inv = mu64.float(), (1.0 / sd64).float()
    muinv = mu * inv
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    uniform = bool(np.all(sw == 1.0))
    yt = torch.from_numpy(np.asarray(y, dtype=np.float32 if regression else np.int64))
    swt = torch.from_numpy(sw.astype(np.float32))
    # All blocks' weights (and their gradients and Adam moments) live in one flat buffer each, the
    # blocks are views of it: the elementwise updates (scaling, L2, Adam, the L1 prox) run once per
    # step over all weights instead of once per block (their per-call cost dominated small blocks).
    shapes = [(b - a, len(m) * K) for (a, b), m in zip(layout.bounds, layout.members, strict=True)]
    Wflat, mflat, vflat, gflat = (torch.zeros(sum(r * c for r, c in shapes)) for _ in range(4))
    W, gW = _views(Wflat, shapes), _views(gflat, shapes)
    # per weight: the inverse scale of its column, the probe it belongs to, 0 outside its columns
    inv_flat = torch.cat(
        [
            inv[a:b, None].expand(r, c).reshape(-1)
            for (a, b), (r, c) in zip(layout.bounds, shapes, strict=True)
        ]
    )
    probe_of = torch.cat(
        [
            m.repeat_interleave(K)[None, :].expand(r, c).reshape(-1)
            for m, (r, c) in zip(layout.members, shapes, strict=True)
        ]
    )
    used = torch.cat(
        [
            torch.ones(r * c) if mk is None else mk.repeat_interleave(K, dim=1).reshape(-1)
            for mk, (r, c) in zip(layout.masks, shapes, strict=True)
        ]
    )
    bias = torch.from_numpy(
        np.tile(_initial_bias(np.asarray(y), sw, K, regression), (P, 1)).astype(np.float32)
    )
    mb, vb = torch.zeros_like(bias), torch.zeros_like(bias)
    active = torch.ones(P, dtype=torch.bool)
    lr_p = torch.as_tensor(
        np.broadcast_to(np.asarray(lr, dtype=np.float64), (P,)).copy(), dtype=torch.float32
    )

    steps_per_epoch = math.ceil(n / batch_size)
    total = max(int(math.ceil(max_epochs * steps_per_epoch)), int(min_steps), 1)
    # half an epoch, but at most 20 evaluations over the budget (small data run many epochs)
    eval_every = max(1, steps_per_epoch // max(evals_per_epoch, 1), total // 20)
    watch = early_stopping and X_dev is not None and y_dev is not None and len(y_dev) > 0
    dev_cols = colt
    if watch:
        Xd = activations_tensor(X_dev)
        if colt is not None and Xd.shape[0] * colt.numel() * 4 <= DEV_GATHER_BYTES:
            Xd, dev_cols = Xd.index_select(1, colt), None  # gathered once, not at every evaluation
        yd = torch.from_numpy(np.asarray(y_dev, dtype=np.float64 if regression else np.int64))
    best = np.full(P, -np.inf)
    bad = np.zeros(P, dtype=np.int64)
    stop_step = np.zeros(P, dtype=np.int64)
    snap_W = [w.clone() for w in W]
    snap_b = bias.clone()
    history: list[dict] = []
    gen = torch.Generator().manual_seed(int(seed))
    arange_p = torch.arange(P)
    inv_used = inv_flat * used
    inv_used_b = inv_used / batch_size  # a full batch of equally weighted rows
    weight_lr = None
    step = 0
    perm = torch.randperm(n, generator=gen)
    pos = 0
    while step < total and bool(active.any()):
        if pos >= n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + batch_size]
        pos += batch_size
        xb = Xt.index_select(0, idx) if colt is None else Xt.index_select(0, idx).index_select(1, colt)
        B = xb.shape[0]
        Wraw = _views(Wflat * inv_flat, shapes)
        logits = _logits(xb, layout, Wraw, _shifted_bias(layout, W, bias, muinv, K), K)
        if regression:
            G = logits - yt[idx].view(B, 1, 1)
        else:
            G = torch.softmax(logits, dim=-1)
            G[torch.arange(B)[:, None], arange_p[None, :], yt[idx][:, None]] -= 1.0
        if uniform:  # every row weighs 1 / B: the scale is applied to the gradients (no pass over G)
            scale_b = 1.0 / B
        else:
            G *= (swt[idx] / B).view(B, 1, 1)
            scale_b = 1.0
        G2 = G.view(B, P * K)
        gsum = _column_sums(G2)
        step += 1
        decay = 1.0 - (step - 1) / total  # linear decay to 0; each probe's own step size times this
        c1, c2 = 1.0 - BETA1**step, 1.0 - BETA2**step
        # biases
        gb = gsum.view(P, K) * (1.0 / B if uniform else 1.0)
        act = active.float() * lr_p
        _adam(bias, gb, mb, vb, decay, c1, c2, act.view(P, 1), 0.0)
        if weight_lr is None:  # each weight's step size: its probe's (0 once stopped), 0 if unused
            weight_lr = act[probe_of] * used
        for j, (a, b) in enumerate(layout.bounds):
            span = layout.spans[j]
            if span is not None:
                Gj, sj = G2[:, span[0] * K : span[1] * K], gsum[span[0] * K : span[1] * K]
            else:
                Gj = G[:, layout.members[j]].reshape(B, -1)
                sj = gsum.view(P, K)[layout.members[j]].reshape(-1)
            gW[j].copy_(_xtg(xb[:, a:b], Gj, pad=True))
            gW[j].sub_(torch.outer(mu[a:b], sj))  # not addr_: see _column_sums
        # back to the standardised scale; columns a probe does not use get no gradient (nor Adam state)
        gflat.mul_(inv_used_b if scale_b == 1.0 / batch_size else inv_used * scale_b)
        if l2:
            gflat.add_(Wflat, alpha=l2)
        _adam(Wflat, gflat, mflat, vflat, decay, c1, c2, weight_lr, l1)
        if progress is not None:
            progress(step, total)
        if watch and (step % eval_every == 0 or step == total):
            pred = _family_predict(Xd, layout, W, bias, mu, inv, K, regression, columns=dev_cols)
            score = _monitor(pred, yd, regression)
            improved = score > best
            for p in np.flatnonzero(improved & active.numpy()):
                _snapshot(layout, W, bias, snap_W, snap_b, int(p), K)
            best = np.where(improved & active.numpy(), score, best)
            bad = np.where(improved, 0, bad + 1)
            stopped = (bad >= patience) & active.numpy()
            if stopped.any():
                active[torch.from_numpy(stopped)] = False
                stop_step[stopped] = step
                weight_lr = None
            history.append({"step": step, "epoch": step / steps_per_epoch, "dev": score.tolist()})
    if not watch:
        snap_W, snap_b = W, bias
    logger.debug(
        "family of %d probes: %d steps (%.2f epochs) in %.1fs",
        P,
        step,
        step / steps_per_epoch,
        time.perf_counter() - t0,
    )
    outs = []
    for p in range(P):
        cols, weights = [], []
        for j in layout.probe_blocks[p]:
            a, b = layout.bounds[j]
            slot = int((layout.members[j] == p).nonzero()[0, 0])
            used = (
                np.ones(b - a, dtype=bool)
                if layout.masks[j] is None
                else layout.masks[j][:, slot].numpy() > 0
            )
            cols.append(np.arange(a, b)[used])
            weights.append(snap_W[j][:, slot * K : (slot + 1) * K].double().numpy()[used])
        c = np.concatenate(cols)
        outs.append(
            FitOutput(
                cols=c,
                weights=np.concatenate(weights),
                bias=snap_b[p].double().numpy().copy(),
                mean=mu64[c].numpy().copy(),
                scale=sd64[c].numpy().copy(),
                n_steps=int(stop_step[p] or step),
                n_epochs=int(stop_step[p] or step) / steps_per_epoch,
                best_monitor=float(best[p]) if watch else None,
                history=history,
            )
        )
    return outs


def _views(flat: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Consecutive segments of ``flat`` viewed as matrices of ``shapes``."""
    out, start = [], 0
    for r, c in shapes:
        out.append(flat[start : start + r * c].view(r, c))
        start += r * c
    return out


def _adam(p, g, m, v, lr, c1, c2, mask, l1):
    """One Adam step (bias-corrected) of size ``lr * mask`` (``mask``: each weight's own step size,
    0 for frozen weights), then the L1 proximal step in Adam's diagonal metric:
    ``p <- sign(p) * max(|p| - lr * mask * l1 / d, 0)`` with ``d = sqrt(v_hat) + eps``."""
    m.mul_(BETA1).add_(g, alpha=1 - BETA1)
    v.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
    denom = torch.mul(v, 1.0 / c2).sqrt_().add_(EPS)
    size = torch.div(mask * lr, denom)  # each weight's step in Adam's metric
    p.addcmul_(m, size, value=-1.0 / c1)
    if l1:  # soft-thresholding at size * l1: sign(p) max(|p| - t, 0) = p - clamp(p, -t, t)
        thr = size.mul_(l1)
        p.sub_(torch.clamp(p, min=-thr, max=thr))


def _snapshot(layout: _Layout, W, bias, snap_W, snap_b, p: int, K: int) -> None:
    for j in layout.probe_blocks[p]:
        slot = int((layout.members[j] == p).nonzero()[0, 0])
        snap_W[j][:, slot * K : (slot + 1) * K] = W[j][:, slot * K : (slot + 1) * K]
    snap_b[p] = bias[p]


# --------------------------------------------------------------------------- full-batch FISTA


def fit_fista(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_outputs: int,
    regression: bool,
    l1: float,
    l2: float,
    standardize: bool,
    sample_weight: np.ndarray | None = None,
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    early_stopping: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-7,
    eval_every: int = 10,
    patience: int = 10,
) -> FitOutput:
    """Accelerated proximal gradient (FISTA) on the whole training set.

    Backtracking line search on the Lipschitz constant (allowed to shrink by 10% per iteration),
    adaptive restart of the momentum when the objective rises (O'Donoghue & Candes 2015), stop
    when the objective changes by less than ``tol`` (relative) over 5 iterations. Computes in
    float64 when the data are small (``n * d <= 5e6``), else float32 with float64 sums. With a
    dev set and ``early_stopping``, the dev score is watched every ``eval_every`` iterations and
    the best weights are kept (useful when ``l1``/``l2`` are too small to prevent overfitting).
    """
    n, d = X.shape
    dtype = torch.float64 if n * d <= 5_000_000 else torch.float32
    Xt = activations_tensor(X, X.dtype).to(dtype)
    mu64, sd64 = column_stats(Xt.float() if dtype == torch.float32 else Xt, standardize)
    Xs = (Xt - mu64.to(dtype)) / sd64.to(dtype)  # small data: an explicit standardised copy is fine
    K = n_outputs
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    swt = torch.from_numpy(sw / n).to(dtype)
    if regression:
        yt = torch.from_numpy(np.asarray(y, dtype=np.float64)).to(dtype)
    else:
        Y = torch.zeros((n, K), dtype=dtype)
        Y[torch.arange(n), torch.from_numpy(np.asarray(y, dtype=np.int64))] = 1.0

    def logits(Wb: torch.Tensor) -> torch.Tensor:
        return _xw(Xs, Wb[:-1]) + Wb[-1]

    def smooth(Wb: torch.Tensor, Z: torch.Tensor, grad: bool):
        """The smooth part of the objective at ``Wb`` (and its gradient), from its logits ``Z``."""
        W = Wb[:-1]
        if regression:
            r = Z[:, 0] - yt
            f = 0.5 * float((swt * r * r).sum())
            G = (swt * r)[:, None]
        else:
            lse = torch.logsumexp(Z, dim=1)
            f = float((swt * (lse - (Z * Y).sum(1))).sum())
            G = (torch.softmax(Z, 1) - Y) * swt[:, None] if grad else None
        f += 0.5 * l2 * float((W * W).sum())
        if not grad:
            return f, None
        g = torch.empty_like(Wb)
        g[:-1] = _xtg(Xs, G) + l2 * W
        g[-1] = G.sum(0)
        return f, g

    def prox(Wb: torch.Tensor, t: float) -> torch.Tensor:
        if l1:
            Wb[:-1] = Wb[:-1].sign() * (Wb[:-1].abs() - t * l1).clamp(min=0)
        return Wb

    def penalty(Wb):
        return l1 * float(Wb[:-1].abs().sum())

    x = torch.zeros((d + 1, K), dtype=dtype)
    x[-1] = torch.from_numpy(_initial_bias(np.asarray(y), sw, K, regression)).to(dtype)
    # The logits are linear in the weights, so those of the extrapolated point z are combined from
    # those of the last two iterates (one product per iteration saved: about 2 passes over the data
    # per iteration instead of 3)
    Zx = logits(x)
    z, Zz, t, L = x.clone(), Zx, 1.0, 1.0
    F_old = smooth(x, Zx, False)[0] + penalty(x)
    watch = early_stopping and X_dev is not None and y_dev is not None and len(y_dev) > 0
    if watch:
        Xd = (activations_tensor(X_dev, X_dev.dtype).to(dtype) - mu64.to(dtype)) / sd64.to(dtype)
        yd = torch.from_numpy(np.asarray(y_dev, dtype=np.float64 if regression else np.int64))
    best, bad, best_x = -np.inf, 0, x.clone()
    history: list[dict] = []
    small = 0
    it = 0
    for it in range(1, max_iter + 1):
        fz, gz = smooth(z, Zz, True)
        while True:
            x_new = prox(z - gz / L, 1.0 / L)
            diff = x_new - z
            Z_new = logits(x_new)
            f_new = smooth(x_new, Z_new, False)[0]
            if f_new <= fz + float((gz * diff).sum()) + 0.5 * L * float((diff * diff).sum()) + 1e-12 * abs(
                fz
            ):
                break
            L *= 2.0
        F_new = f_new + penalty(x_new)
        if F_new > F_old:  # adaptive restart: drop the momentum and take a plain step from x
            if t == 1.0:  # even a plain step does not decrease the objective: converged to rounding
                break
            t, z, Zz = 1.0, x.clone(), Zx
            continue
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        z = x_new + beta * (x_new - x)
        Zz = Z_new + beta * (Z_new - Zx)
        rel = abs(F_old - F_new) / max(abs(F_new), 1e-12)
        x, Zx, t, F_old, L = x_new, Z_new, t_new, F_new, L * 0.9
        if watch and it % eval_every == 0:
            Z = _xw(Xd, x[:-1]) + x[-1]
            pred = Z[:, 0] if regression else Z.argmax(1)
            score = float(_monitor(pred.view(-1, 1), yd, regression)[0])
            history.append({"step": it, "dev": [score]})
            if score > best:
                best, bad, best_x = score, 0, x.clone()
            else:
                bad += 1
                if bad >= patience:
                    break
        small = small + 1 if rel < tol else 0
        if small >= 5:
            break
    final = x
    if watch:
        Z = _xw(Xd, x[:-1]) + x[-1]
        pred = Z[:, 0] if regression else Z.argmax(1)
        score = float(_monitor(pred.view(-1, 1), yd, regression)[0])
        if score < best:
            final = best_x
        best = max(best, score)
    return FitOutput(
        cols=np.arange(d),
        weights=final[:-1].double().numpy().copy(),
        bias=final[-1].double().numpy().copy(),
        mean=mu64.numpy().copy(),
        scale=sd64.numpy().copy(),
        n_steps=it,
        n_epochs=float(it),
        best_monitor=best if watch else None,
        history=history,
    )
