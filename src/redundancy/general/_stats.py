"""Pure CKA kernels and the one-pass, mergeable accumulator of neuron statistics.

Everything here is float64. The accumulator never keeps activations: its state is the item count,
per-neuron sums, the ``N x N`` cross-product matrix and two small extra sums for debiased CKA, all
taken around a fixed *shift* (the first batch's mean) so that no large means cancel later. See
``docs/general.md`` for the formulas and the derivation of the debiased terms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg.blas import dgemm, dsymm, dsyr2k, dsyrk

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 64 * 2**20
"""Largest float64 working copy of a batch chunk that :meth:`NeuronStats.update` allocates (64 MiB)."""

_BLOCK_ELEMENTS = 4 * 2**20  # elements per temporary block in compute() and symmetrisation (32 MiB)


# ---------------------------------------------------------------------------------------------- kernels


def _as_matrix(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (items, features) array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def hsic_unbiased_terms(
    n: int,
    cross_fro2: np.ndarray | float,
    qq: np.ndarray | float,
    k1: np.ndarray | float,
    l1: np.ndarray | float,
    kl1: np.ndarray | float,
) -> np.ndarray | float:
    """The unbiased HSIC estimator (Song et al. 2012) from Gram-free terms; broadcasts over arrays.

    With ``K = X Xᵀ``, ``L = Y Yᵀ`` and ``K̃``, ``L̃`` those with the diagonal set to zero::

        HSIC₁ = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n-1)(n-2)) - 2/(n-2) · 1ᵀK̃L̃1] / (n(n-3))

    Parameters
    ----------
    n : int
        Number of items (at least 4).
    cross_fro2 : float or array
        ``‖XᵀY‖²_F``.
    qq : float or array
        ``Σᵢ ‖xᵢ‖² ‖yᵢ‖²``, so that ``tr(K̃L̃) = cross_fro2 - qq``.
    k1, l1 : float or array
        ``1ᵀK̃1 = ‖Σᵢ xᵢ‖² - Σᵢ ‖xᵢ‖²`` and the same for ``Y``.
    kl1 : float or array
        ``1ᵀK̃L̃1 = Σⱼ (xⱼ·Sₓ - ‖xⱼ‖²)(yⱼ·S_y - ‖yⱼ‖²)`` with ``Sₓ = Σᵢ xᵢ``.
    """
    if n < 4:
        raise ValueError(f"the unbiased HSIC estimator needs at least 4 items, got {n}")
    return (cross_fro2 - qq + k1 * l1 / ((n - 1) * (n - 2)) - 2.0 * kl1 / (n - 2)) / (n * (n - 3))


def _normalise(h: np.ndarray) -> np.ndarray:
    """CKA from a matrix of (H)SIC values: ``h[a, b] / sqrt(h[a, a] h[b, b])``; NaN where undefined."""
    d = np.diag(h).copy()
    ok = np.isfinite(d) & (d > 0)
    root = np.where(ok, np.sqrt(np.where(ok, d, 1.0)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return h / np.outer(root, root)


def linear_cka(x: Any, y: Any, debiased: bool = False) -> float:
    """Linear CKA between two activation matrices of the same items, held in memory.

    Parameters
    ----------
    x : array of shape (n_items, p)
    y : array of shape (n_items, q)
    debiased : bool
        False: the usual (biased) linear CKA, computed in feature space,
        ``‖S_xy‖²_F / (‖S_xx‖_F ‖S_yy‖_F)`` with the centred cross-covariances ``S``.
        True: the debiased form of Nguyen et al. (2021), the unbiased HSIC estimator of Song et al. (2012)
        in place of the biased one (needs ``n_items >= 4``); computed without any items x items matrix.

    Returns
    -------
    float
        CKA in [0, 1] for the linear form (the debiased form may dip slightly below 0); NaN when a side has
        no variance (or, debiased, a non-positive self-HSIC estimate).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 5))
    >>> round(linear_cka(x, 3 * x @ np.linalg.qr(rng.normal(size=(5, 5)))[0]), 12)
    1.0
    """
    x = _as_matrix(x, "x")
    y = _as_matrix(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same items, got {x.shape[0]} and {y.shape[0]} rows")
    n = x.shape[0]
    # Both estimators are invariant to translating x or y; centring first keeps the sums small.
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    if not debiased:
        if n < 2:
            raise ValueError("linear CKA needs at least 2 items")
        h = np.empty((2, 2))
        h[0, 0] = np.sum((x.T @ x) ** 2)
        h[1, 1] = np.sum((y.T @ y) ** 2)
        h[0, 1] = h[1, 0] = np.sum((x.T @ y) ** 2)
        return float(_normalise(h)[0, 1])
    if n < 4:
        raise ValueError("debiased CKA needs at least 4 items")
    parts = [x, y]
    q = [np.einsum("ij,ij->i", a, a) for a in parts]
    s = [a.sum(axis=0) for a in parts]
    k1 = [s[i] @ s[i] - q[i].sum() for i in range(2)]
    kv = [parts[i] @ s[i] - q[i] for i in range(2)]  # K̃1 per item
    h = np.empty((2, 2))
    for i in range(2):
        for j in range(i, 2):
            fro = np.sum((parts[i].T @ parts[j]) ** 2)
            h[i, j] = h[j, i] = hsic_unbiased_terms(n, fro, q[i] @ q[j], k1[i], k1[j], kv[i] @ kv[j])
    return float(_normalise(h)[0, 1])


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class NeuronStatistics:
    """What :meth:`NeuronStats.compute` derives from the accumulated sums (arrays, not for JSON).

    Attributes
    ----------
    n_items : int
        Items accumulated.
    n_layers, hidden : int
        Layout of the ``N = n_layers * hidden`` neurons (flat index ``layer * hidden + unit``).
    mean, std : ndarray of shape (N,)
        Per-neuron mean and (population) standard deviation.
    zero_variance : ndarray of shape (N,), bool
        Neurons whose variance is zero up to rounding; their correlations are 0 (1 with themselves).
    correlation : ndarray of shape (N, N) or None
        Pearson correlations (exactly symmetric, unit diagonal, clipped to [-1, 1]); None when not asked for.
    cka_linear, cka_debiased : ndarray of shape (n_layers, n_layers)
        Linear CKA and debiased linear CKA between every pair of layers (NaN where undefined).
    """

    n_items: int
    n_layers: int
    hidden: int
    mean: np.ndarray
    std: np.ndarray
    zero_variance: np.ndarray
    correlation: np.ndarray | None
    cka_linear: np.ndarray
    cka_debiased: np.ndarray

    @property
    def n_neurons(self) -> int:
        return self.n_layers * self.hidden

    @property
    def zero_variance_indices(self) -> np.ndarray:
        """Flat indices of the zero-variance neurons."""
        return np.flatnonzero(self.zero_variance)


@dataclass(frozen=True, eq=False)
class StatsPart:
    """The sums of one part of the items (:meth:`NeuronStats.part`), kept to be left out later
    (:meth:`NeuronStats.without`). ``cross`` may be float32 (its upper triangle is the valid one)."""

    n_items: int
    shift: np.ndarray
    sum: np.ndarray
    cross: np.ndarray
    sq_outer: np.ndarray
    sq_cross_t: np.ndarray


# ---------------------------------------------------------------------------------------------- accumulator


def _symmetrise_upper(c: np.ndarray) -> None:
    """Copy the upper triangle of square ``c`` onto its lower triangle, in place, block by block."""
    n = c.shape[0]
    step = max(1, min(n, _BLOCK_ELEMENTS // max(n, 1)))
    for start in range(0, n, step):
        stop = min(start + step, n)
        c[start:stop, :start] = c[:start, start:stop].T
        diag = c[start:stop, start:stop]
        diag[...] = np.triu(diag) + np.triu(diag, 1).T


class NeuronStats:
    """One streaming pass over activations: everything needed for neuron correlations and layer CKA.

    Feed batches of items with :meth:`update` (any number, any sizes), combine shards with :meth:`merge`,
    and derive the statistics with :meth:`compute`. The state is O(N²) float64 for ``N = n_layers *
    hidden`` neurons and does not grow with the number of items:

    * ``n_items``; the shift ``c`` (the first batch's mean); ``s = Σᵢ zᵢ`` with ``zᵢ = xᵢ - c``;
    * ``C = Σᵢ zᵢ zᵢᵀ`` (``N x N``; only its upper triangle is accumulated, with BLAS ``dsyrk``);
    * for debiased CKA, with ``qᵢ`` the vector of per-layer squared norms ``‖z_{i,layer}‖²``:
      ``Q = Σᵢ qᵢ qᵢᵀ`` (``L x L``) and ``R = Σᵢ qᵢ zᵢᵀ`` (``L x N``).

    Parameters
    ----------
    n_layers, hidden : int
        Neuron layout: columns are layer 0's ``hidden`` units, then layer 1's, ... (``layer * hidden +
        unit``, as in :class:`redundancy.store.ActivationStore`).
    chunk_bytes : int
        Upper bound on the float64 working copy of a batch: larger batches are processed in row chunks
        of at most ``chunk_bytes // (8 N)`` rows.
    var_rtol : float
        A neuron counts as zero-variance when its centred sum of squares is at most ``var_rtol`` times its
        sum of squares around the shift (i.e. zero up to rounding).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2 * 3))
    >>> stats = NeuronStats(n_layers=2, hidden=3)
    >>> for part in np.array_split(X, 3):
    ...     _ = stats.update(part)
    >>> res = stats.compute()
    >>> bool(np.allclose(res.correlation, np.corrcoef(X.T)))
    True
    """

    def __init__(
        self, n_layers: int, hidden: int, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES, var_rtol: float = 1e-12
    ):
        self.n_layers = n_layers
        self.hidden = hidden
        self.chunk_bytes = chunk_bytes
        self.var_rtol = var_rtol
        self._validate()
        self.reset()

    def _validate(self) -> None:
        for name in ("n_layers", "hidden", "chunk_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"NeuronStats.{name} must be a positive int, got {value!r}")
        if not (isinstance(self.var_rtol, float | int) and 0 <= self.var_rtol < 1):
            raise ValueError(f"NeuronStats.var_rtol must lie in [0, 1), got {self.var_rtol!r}")

    # ------------------------------------------------------------------ state

    @property
    def n_neurons(self) -> int:
        return int(self.n_layers) * int(self.hidden)

    @property
    def n_items(self) -> int:
        """Items accumulated so far."""
        return self._n

    @property
    def shift(self) -> np.ndarray | None:
        """The per-neuron shift ``c`` the sums are taken around (None before the first item)."""
        return None if self._shift is None else self._shift.copy()

    def reset(self, shift: Any = None) -> NeuronStats:
        """Forget everything accumulated; with ``shift``, take the sums around it (instead of the first
        batch's mean), so that accumulators of different parts of the data can be added and subtracted
        without re-expressing them (:meth:`part`, :meth:`without`)."""
        n, layers = self.n_neurons, int(self.n_layers)
        self._n = 0
        self._shift: np.ndarray | None = None
        if shift is not None:
            s = np.array(shift, dtype=np.float64).reshape(-1)
            if s.size != n or not np.isfinite(s).all():
                raise ValueError(f"shift must hold {n} finite values, got {s.size}")
            self._shift = s
        self._sum = np.zeros(n)
        self._cross = np.zeros((n, n), order="F")  # upper triangle valid (BLAS dsyrk, uplo="U")
        self._sq_outer = np.zeros((layers, layers))  # Q
        self._sq_cross_t = np.zeros((n, layers), order="F")  # Rᵀ (F order: BLAS dgemm adds in place)
        return self

    @property
    def _sq_cross(self) -> np.ndarray:
        """``R = Σᵢ qᵢ zᵢᵀ`` of shape (L, N) (a view of the stored transpose)."""
        return self._sq_cross_t.T

    @_sq_cross.setter
    def _sq_cross(self, value: np.ndarray) -> None:
        self._sq_cross_t = np.asfortranarray(np.asarray(value).T)

    @property
    def nbytes(self) -> int:
        """Bytes held by the accumulated state."""
        arrays = (self._sum, self._cross, self._sq_outer, self._sq_cross_t)
        return sum(a.nbytes for a in arrays) + (0 if self._shift is None else self._shift.nbytes)

    def _check_batch(self, batch: Any) -> np.ndarray:
        x = np.asarray(batch)
        if x.dtype.kind not in "fiu":
            raise ValueError(f"batch must hold real numbers, got dtype {x.dtype}")
        n = self.n_neurons
        if x.ndim == 3:
            if x.shape[1:] != (self.n_layers, self.hidden):
                raise ValueError(
                    f"a 3-D batch must have shape (b, {self.n_layers}, {self.hidden}), got {x.shape}"
                )
            x = x.reshape(x.shape[0], n)
        if x.ndim != 2 or x.shape[1] != n:
            raise ValueError(f"batch must have shape (b, {n}) (n_layers * hidden columns), got {x.shape}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"batch holds NaN or infinite values (first at row {bad[0]}, neuron {bad[1]})")
        return x

    def update(self, batch: Any) -> NeuronStats:
        """Add a batch of items.

        Parameters
        ----------
        batch : array of shape (b, N) or (b, n_layers, hidden)
            Any real dtype (float32 from a store is upcast chunk by chunk to float64).

        Raises
        ------
        ValueError
            Wrong shape, or NaN / infinite values (nothing is added then).
        """
        x = self._check_batch(batch)
        b, n = x.shape
        if b == 0:
            return self
        rows = max(1, min(b, int(self.chunk_bytes) // (8 * n)))
        if self._shift is None:
            self._shift = x[:rows].mean(axis=0, dtype=np.float64)
        buf = np.empty((rows, n))
        layers, hidden = int(self.n_layers), int(self.hidden)
        for start in range(0, b, rows):
            stop = min(start + rows, b)
            z = buf[: stop - start]
            np.subtract(x[start:stop], self._shift, out=z, dtype=np.float64)
            zl = z.reshape(stop - start, layers, hidden)
            q = np.einsum("ilh,ilh->il", zl, zl)
            # Every large product goes through SciPy's BLAS (one thread pool: two pools spinning on few
            # cores slow each other down). C += ZᵀZ on the upper triangle, in place (z.T: no copy).
            out = dsyrk(1.0, z.T, beta=1.0, c=self._cross, trans=0, lower=0, overwrite_c=1)
            if out is not self._cross:  # pragma: no cover - f2py copied: keep its result
                self._cross = np.asfortranarray(out)
            rt = dgemm(1.0, z.T, q, beta=1.0, c=self._sq_cross_t, overwrite_c=1)  # Rᵀ += Zᵀq
            if rt is not self._sq_cross_t:  # pragma: no cover
                self._sq_cross_t = np.asfortranarray(rt)
            self._sum += z.sum(axis=0)
            self._sq_outer += np.einsum("il,im->lm", q, q)
            self._n += stop - start
        return self

    def _reshift(self, new_shift: np.ndarray) -> None:
        """Re-express the state around ``new_shift`` (exact algebra; see docs/general.md)."""
        assert self._shift is not None
        d = self._shift - new_shift  # z_new = z_old + d
        if not d.any():
            self._shift = new_shift.copy()
            return
        n, layers, hidden = self._n, int(self.n_layers), int(self.hidden)
        s, q_outer, r = self._sum, self._sq_outer, self._sq_cross
        w = np.diag(self._cross).reshape(layers, hidden).sum(axis=1)  # Σᵢ q_{i,a}
        dl = d.reshape(layers, hidden)
        delta = np.einsum("ah,ah->a", dl, dl)  # ‖d_a‖²
        ds = np.einsum("ah,ah->a", dl, s.reshape(layers, hidden))  # d_a · s_a
        # D: N x L block-diagonal holder of d; CD = C @ D from the upper triangle only (dsymm).
        dmat = np.zeros((self.n_neurons, layers))
        dmat[np.arange(self.n_neurons), np.arange(self.n_neurons) // hidden] = d
        cd = dsymm(1.0, self._cross, dmat, side=0, lower=0)  # (N, L): column a = Σᵢ (d_a·z_{i,a}) zᵢ
        m = dmat.T @ cd  # M[a, b] = Σᵢ (d_a·z_{i,a})(d_b·z_{i,b})
        g = (r * d).reshape(layers, layers, hidden).sum(axis=2)  # G[a, b] = Σᵢ q_{i,a} (d_b·z_{i,b})
        new_q = (
            q_outer
            + 2 * g
            + 2 * g.T
            + 4 * m
            + np.outer(w, delta)
            + np.outer(delta, w)
            + 2 * np.outer(ds, delta)
            + 2 * np.outer(delta, ds)
            + n * np.outer(delta, delta)
        )
        new_r = r + np.outer(w + 2 * ds + n * delta, d) + 2 * cd.T + np.outer(delta, s)
        # C += d sᵀ + s dᵀ + n d dᵀ = d (s + n d / 2)ᵀ + (s + n d / 2) dᵀ (upper triangle, dsyr2k).
        half = (s + 0.5 * n * d)[:, None]
        out = dsyr2k(1.0, d[:, None], half, beta=1.0, c=self._cross, trans=0, lower=0, overwrite_c=1)
        if out is not self._cross:  # pragma: no cover
            self._cross = np.asfortranarray(out)
        self._sum = s + n * d
        self._sq_outer = new_q
        self._sq_cross = new_r
        self._shift = new_shift.copy()

    def merge(self, other: NeuronStats) -> NeuronStats:
        """Add the items accumulated by ``other`` (same layout) to this accumulator; ``other`` is unchanged.

        The two may use different shifts: ``other``'s sums are re-expressed around this one's shift
        exactly. Merging shards equals one pass over all their items (to rounding).
        """
        if not isinstance(other, NeuronStats):
            raise TypeError(f"can only merge a NeuronStats, got {type(other).__name__}")
        if (other.n_layers, other.hidden) != (self.n_layers, self.hidden):
            raise ValueError(
                f"cannot merge statistics of {other.n_layers} x {other.hidden} neurons into "
                f"{self.n_layers} x {self.hidden}"
            )
        if other._n == 0:
            return self
        if self._n != 0 and np.array_equal(self._shift, other._shift):
            tmp = other  # same shift (reset(shift)): the sums add as they are, no N x N copy
        else:
            tmp = other.copy()
        if self._n == 0:
            self._adopt(tmp)
            return self
        if tmp is not other:
            tmp._reshift(self._shift)  # type: ignore[arg-type]
        self._n += tmp._n
        self._sum += tmp._sum
        self._cross += tmp._cross
        self._sq_outer += tmp._sq_outer
        self._sq_cross_t += tmp._sq_cross_t
        return self

    def _adopt(self, other: NeuronStats) -> None:
        self._n, self._shift, self._sum = other._n, other._shift, other._sum
        self._cross, self._sq_outer, self._sq_cross_t = other._cross, other._sq_outer, other._sq_cross_t

    def copy(self) -> NeuronStats:
        """An independent copy (same parameters and state)."""
        new = NeuronStats(self.n_layers, self.hidden, chunk_bytes=self.chunk_bytes, var_rtol=self.var_rtol)
        new._n = self._n
        new._shift = None if self._shift is None else self._shift.copy()
        new._sum = self._sum.copy()
        new._cross = self._cross.copy(order="F")
        new._sq_outer = self._sq_outer.copy()
        new._sq_cross_t = self._sq_cross_t.copy(order="F")
        return new

    def part(self, dtype: Any = np.float32) -> StatsPart:
        """A compact copy of the accumulated sums (the ``N x N`` cross-products in ``dtype``: half the
        memory in float32) to subtract later from a total with :meth:`without`."""
        if self._shift is None:
            raise ValueError("an empty NeuronStats has no part to keep")
        return StatsPart(
            n_items=self._n,
            shift=self._shift.copy(),
            sum=self._sum.copy(),
            cross=self._cross.astype(dtype, order="F"),
            sq_outer=self._sq_outer.copy(),
            sq_cross_t=self._sq_cross_t.copy(order="F"),
        )

    def without(self, part: StatsPart) -> NeuronStats:
        """A new accumulator holding this one's items minus those of ``part`` (taken with :meth:`part`
        from an accumulator of a subset of them, around the same shift): the delete-a-group jackknife's
        leave-one-out statistics without a second pass. ``part``'s rounding (float32: a relative 6e-8
        of its own sums) is the only difference from a pass over the remaining items."""
        if self._shift is None or not np.array_equal(self._shift, part.shift):
            raise ValueError("without() needs a part accumulated around this accumulator's shift")
        if part.n_items >= self._n:
            raise ValueError(f"cannot leave out {part.n_items} of {self._n} items")
        new = self.copy()
        new._n -= part.n_items
        new._sum -= part.sum
        new._cross -= part.cross
        new._sq_outer -= part.sq_outer
        new._sq_cross_t -= part.sq_cross_t
        return new

    # ------------------------------------------------------------------ results

    def compute(self, correlation: bool = True) -> NeuronStatistics:
        """Derive means, deviations, correlations and both CKA matrices from the sums alone.

        Parameters
        ----------
        correlation : bool
            Also build the ``N x N`` correlation matrix (the only O(N²) output; skip it for CKA alone).

        Raises
        ------
        ValueError
            Fewer than 2 items. (Debiased CKA needs 4; with fewer it is NaN and a warning is logged.)
        """
        n = self._n
        if n < 2:
            raise ValueError(f"NeuronStats.compute needs at least 2 items, got {n}")
        assert self._shift is not None
        layers, hidden, size = int(self.n_layers), int(self.hidden), self.n_neurons
        c = self._cross
        _symmetrise_upper(c)
        s = self._sum
        raw_sq = np.diag(c).copy()  # Σ zᵢ² per neuron
        css = np.maximum(raw_sq - s * s / n, 0.0)  # centred sums of squares
        zero = css <= self.var_rtol * raw_sq
        if zero.any():
            idx = np.flatnonzero(zero)
            logger.warning(
                "%d of %d neurons have zero variance (e.g. %s); their correlations are set to 0",
                idx.size,
                size,
                idx[:10].tolist(),
            )
        inv = np.zeros(size)
        inv[~zero] = 1.0 / np.sqrt(css[~zero])
        corr = np.empty((size, size)) if correlation else None
        centred_fro = np.zeros((layers, layers))  # ‖S_ab‖²_F · n²
        raw_fro = np.zeros((layers, layers))  # ‖Z_aᵀ Z_b‖²_F
        sc = np.zeros((layers, size))  # s_aᵀ C[a rows, :]
        step = max(1, min(hidden, _BLOCK_ELEMENTS // size))
        for a in range(layers):  # row blocks inside one layer at a time
            for start in range(a * hidden, (a + 1) * hidden, step):
                stop = min(start + step, (a + 1) * hidden)
                blk = np.ascontiguousarray(c[start:stop])
                raw_fro[a] += (blk * blk).reshape(stop - start, layers, hidden).sum(axis=(0, 2))
                sc[a] += s[start:stop] @ blk
                blk -= np.outer(s[start:stop], s) / n  # (sᵢ sⱼ) / n: exactly symmetric
                centred_fro[a] += (blk * blk).reshape(stop - start, layers, hidden).sum(axis=(0, 2))
                if corr is not None:
                    blk *= inv[start:stop, None] * inv[None, :]
                    corr[start:stop] = blk
        if corr is not None:
            np.clip(corr, -1.0, 1.0, out=corr)
            np.fill_diagonal(corr, 1.0)
        cka_linear = _normalise(centred_fro)
        cka_debiased = self._debiased(raw_fro, sc, raw_sq)
        return NeuronStatistics(
            n_items=n,
            n_layers=layers,
            hidden=hidden,
            mean=self._shift + s / n,
            std=np.sqrt(css / n),
            zero_variance=zero,
            correlation=corr,
            cka_linear=cka_linear,
            cka_debiased=cka_debiased,
        )

    def _debiased(self, raw_fro: np.ndarray, sc: np.ndarray, raw_sq: np.ndarray) -> np.ndarray:
        n, layers, hidden = self._n, int(self.n_layers), int(self.hidden)
        if n < 4:
            logger.warning("debiased CKA needs at least 4 items, got %d: left undefined (NaN)", n)
            return np.full((layers, layers), np.nan)
        s = self._sum
        q_outer, r = self._sq_outer, self._sq_cross
        w = raw_sq.reshape(layers, hidden).sum(axis=1)  # Σᵢ ‖z_{i,a}‖²
        sl = s.reshape(layers, hidden)
        k1 = np.einsum("ah,ah->a", sl, sl) - w  # 1ᵀK̃1
        e = (sc * s).reshape(layers, layers, hidden).sum(axis=2)  # s_aᵀ C_ab s_b
        g = (r * s).reshape(layers, layers, hidden).sum(axis=2)  # Σᵢ q_{i,a} (zᵢ_b · s_b)
        kl1 = e - g - g.T + q_outer  # 1ᵀK̃L̃1
        h = hsic_unbiased_terms(n, raw_fro, q_outer, k1[:, None], k1[None, :], kl1)
        h = 0.5 * (h + h.T)
        return _normalise(np.asarray(h))
