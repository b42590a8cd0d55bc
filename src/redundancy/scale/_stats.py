"""The statistics pass beyond one process: row blocks accumulated apart and merged in a tree, and the
``N x N`` cross-products in blocks of neurons that no single worker holds whole.

* :func:`distributed_stats`: the store's rows cut into ``n_blocks`` contiguous blocks; each block is
  one task that opens the store (a memory map) and fills a :class:`~redundancy.general.NeuronStats`
  around the *local pass's shift* (:func:`pass_shift`), so the partials add without re-expressing
  them; the partials are merged pairwise in a tree of depth ``ceil(log2(n_blocks))``, the merges
  being tasks too. On Ray the partials travel through the object store and never meet on the
  driver; on the local engine the same tree is walked in this process (same arithmetic, same
  result to the bit).
* :func:`cross_blocks`: for ``N`` too large for one memory (``8 N²`` bytes), the centred
  cross-products and correlations of every pair of neuron ranges (layers) ``(i, j)``, each pair one
  task that streams the store reading only its two ranges' columns and writes its two ``.npy``
  files into a shared folder: the ``N x N`` matrix is never assembled.

See ``docs/scaling.md`` ("The statistics pass on Ray").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import Counter, Progress
from .._serial import write_json_atomic, write_npy_atomic
from ..general import NeuronStats
from ..store import ActivationStore
from ._engine import MAX_RETRIES, LocalEngine, RayEngine, ScaleError, _cause, _ray_error

logger = logging.getLogger(__name__)

BLOCKS_FILE = "blocks.json"
"""The index :func:`cross_blocks` writes beside its ``.npy`` blocks."""


# ---------------------------------------------------------------------------------------------- layout


def pass_shift(
    store: ActivationStore, *, batch_size: int = 4096, chunk_bytes: int | None = None
) -> np.ndarray | None:
    """The shift :func:`redundancy.general.accumulate` takes its sums around: the mean of the rows
    of its first chunk (``min(batch_size, chunk_bytes // (8 N))`` rows), in float64. None for an
    empty store.

    Every block of :func:`distributed_stats` takes its sums around this one shift, so that the
    partials add as they are (:meth:`NeuronStats.merge` with equal shifts is a plain sum) and the
    result equals the local pass's to rounding.
    """
    n, size = store.n_items, store.n_neurons
    if n == 0:
        return None
    if chunk_bytes is None:
        chunk_bytes = NeuronStats(1, 1).chunk_bytes
    rows = max(1, min(n, batch_size, int(chunk_bytes) // (8 * size)))
    flat = store.activations.reshape(n, size)
    return np.asarray(flat[:rows]).mean(axis=0, dtype=np.float64)


def row_blocks(n_items: int, n_blocks: int) -> list[tuple[int, int]]:
    """``n_blocks`` contiguous ``(start, stop)`` row ranges covering ``n_items`` rows, sizes differing
    by at most one (no empty block: at most ``n_items`` blocks).

    >>> row_blocks(10, 3)
    [(0, 3), (3, 6), (6, 10)]
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive int, got {n_blocks!r}")
    k = max(1, min(n_blocks, n_items))
    edges = [n_items * i // k for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def merge_tree(leaves: Sequence[Any], merge: Callable[[Any, Any], Any]) -> Any:
    """Merge ``leaves`` pairwise, level by level: ``(0, 1), (2, 3), ...``, an odd last one carried up
    unchanged; ``ceil(log2(len(leaves)))`` levels. The same tree whether ``merge`` computes (local)
    or returns a future (Ray).

    >>> merge_tree("abcde", lambda a, b: f"({a}{b})")
    '(((ab)(cd))e)'
    """
    level = list(leaves)
    if not level:
        raise ValueError("nothing to merge")
    while len(level) > 1:
        pairs = [merge(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + level[len(pairs) * 2 :]
    return level[0]


def _state_bytes(n_layers: int, hidden: int) -> int:
    """Bytes of one :class:`NeuronStats`' state (``C``, ``s``, shift, ``Q``, ``R``)."""
    size = n_layers * hidden
    return 8 * (size * size + 2 * size + n_layers * n_layers + n_layers * size)


# ---------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class _Block:
    """One block of rows, as a task receives it (small: paths and numbers, and the shift)."""

    store: str
    start: int
    stop: int
    shift: np.ndarray
    batch_size: int
    chunk_bytes: int
    name: str


def _accumulate_block(block: _Block) -> NeuronStats:
    """Open the store (a memory map) and accumulate rows ``start..stop`` around ``shift``."""
    try:
        store = ActivationStore.open(block.store)
        stats = NeuronStats(store.n_layers, store.hidden, chunk_bytes=block.chunk_bytes).reset(block.shift)
        flat = store.activations.reshape(store.n_items, store.n_neurons)
        if block.stop > store.n_items:
            raise ValueError(f"the store has {store.n_items} rows, not {block.stop}")
        for start in range(block.start, block.stop, block.batch_size):
            stats.update(flat[start : min(start + block.batch_size, block.stop)])
        return stats
    except Exception as err:  # one line naming the block, whichever engine runs it
        raise ScaleError(f"{block.name}: {_cause(err)}") from err


def _merge_pair(a: NeuronStats, b: NeuronStats) -> NeuronStats:
    """``a`` plus ``b`` in a new accumulator (the inputs may be read-only: Ray's object store)."""
    out = a.copy()
    return out.merge(b)


# ---------------------------------------------------------------------------------------------- the pass


def _open(store: str | os.PathLike | ActivationStore) -> ActivationStore:
    return store if isinstance(store, ActivationStore) else ActivationStore.open(store)


def distributed_stats(
    store: str | os.PathLike | ActivationStore,
    n_blocks: int,
    *,
    shift: Any = None,
    engine: LocalEngine | RayEngine | None = None,
    batch_size: int = 4096,
    chunk_bytes: int | None = None,
    progress: Progress | None = None,
) -> NeuronStats:
    """The statistics pass (:func:`redundancy.general.accumulate`) as a tree reduction over row blocks.

    Parameters
    ----------
    store : path or ActivationStore
        A complete store. On Ray it must lie on a file system every worker sees at the same path
        (a shared or network file system, or a copy at the same path on every node): each task
        opens it itself and reads its rows through a memory map.
    n_blocks : int
        Contiguous row blocks (:func:`row_blocks`), one task each; merged pairwise in
        ``ceil(log2(n_blocks))`` levels (:func:`merge_tree`), each merge a task.
    shift : array of N floats, optional
        The shift every block takes its sums around. Default: the local pass's
        (:func:`pass_shift`), so the result equals ``accumulate(store)`` to rounding (the tests:
        1e-12 relative).
    engine : LocalEngine or RayEngine (started), optional
        Where the tasks run. None or a local engine: in this process, one block after the other,
        the same tree (the same result to the bit as on Ray); memory: the partials of at most
        ``ceil(log2(n_blocks)) + 1`` blocks at once. Ray: one CPU per task; a task holds one
        partial (a block) or maps two and writes one (a merge); a dead worker's task is run again.
    batch_size : int
        Rows per update (as ``accumulate``'s ``batch_size``).
    chunk_bytes : int, optional
        :class:`NeuronStats`' bound on its float64 working copy (default its own, 64 MiB).
    progress : :class:`redundancy._progress.Progress`, optional
        Told the blocks accumulated so far.

    Returns
    -------
    NeuronStats
        A writeable accumulator in this process (``compute()`` it, or ``merge`` more).

    Raises
    ------
    ScaleError
        A block or merge failed (one line naming the block), or no Ray node has the memory a task
        needs.
    """
    opened = _open(store)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    layers, hidden, size = opened.n_layers, opened.hidden, opened.n_neurons
    chunk = NeuronStats(1, 1).chunk_bytes if chunk_bytes is None else int(chunk_bytes)
    if shift is None:
        shift = pass_shift(opened, batch_size=batch_size, chunk_bytes=chunk)
    if shift is None:  # an empty store
        return NeuronStats(layers, hidden, chunk_bytes=chunk)
    shift = np.array(shift, dtype=np.float64).reshape(-1)
    if shift.size != size or not np.isfinite(shift).all():
        raise ValueError(f"shift must hold {size} finite values, got {shift.size}")
    path = str(Path(opened.path).resolve())
    m = opened.manifest
    what = f"statistics pass {m.task}/{m.split}"
    blocks = [
        _Block(path, a, b, shift, batch_size, chunk, f"{what} rows {a}..{b - 1} (block {i})")
        for i, (a, b) in enumerate(row_blocks(opened.n_items, n_blocks))
    ]
    counter = Counter(progress, what, len(blocks), "block")
    logger.info(
        "%s: %d rows in %d blocks, %d neurons (%.0f MB a partial), on the %s engine",
        what,
        opened.n_items,
        len(blocks),
        size,
        _state_bytes(layers, hidden) / 1e6,
        "local" if engine is None else engine.kind,
    )
    if engine is None or engine.kind == "local":
        return _local_tree(blocks, counter)
    return _ray_tree(engine, blocks, counter, _state_bytes(layers, hidden), what)


def merge_stream(leaves: Iterable[Any], merge: Callable[[Any, Any], Any]) -> Any:
    """The tree of :func:`merge_tree`, built as the leaves arrive (depth first): a stack of merged
    runs, the top two merged while they cover equally many leaves (a binary counter), the rest
    merged from the top at the end. The same pairs in the same order as level by level, with at
    most ``log2(n) + 1`` results held at once.

    >>> merge_stream("abcde", lambda a, b: f"({a}{b})")
    '(((ab)(cd))e)'
    """
    stack: list[tuple[int, Any]] = []
    for leaf in leaves:
        stack.append((1, leaf))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (k, right), (_, left) = stack.pop(), stack.pop()
            stack.append((2 * k, merge(left, right)))
    if not stack:
        raise ValueError("nothing to merge")
    while len(stack) > 1:
        (k, right), (j, left) = stack.pop(), stack.pop()
        stack.append((j + k, merge(left, right)))
    return stack[0][1]


def _local_tree(blocks: list[_Block], counter: Counter) -> NeuronStats:
    """Every block in this process, merged as they come (:func:`merge_stream`; merges in place)."""

    def leaves() -> Iterator[NeuronStats]:
        for block in blocks:
            yield _accumulate_block(block)
            counter.update(1)

    return merge_stream(leaves(), lambda a, b: a.merge(b))


def _ray_tree(
    engine: RayEngine, blocks: list[_Block], counter: Counter, state: int, what: str
) -> NeuronStats:
    if not engine.running:
        raise ScaleError("the Ray engine is not started; call start() or use it in a with block")
    import ray

    # Reserve each task's heap, so that Ray never packs more partials onto a node than fit: a block
    # holds its partial and one float64 chunk; a merge its output (its two inputs are mapped from
    # the object store).
    leaf_bytes = state + blocks[0].chunk_bytes + (64 << 20)
    merge_bytes = state + (64 << 20)
    largest = max(
        (node["Resources"].get("memory", 0) for node in ray.nodes() if node.get("Alive")), default=0
    )
    if largest and largest < leaf_bytes:
        raise ScaleError(
            f"{what}: a block's partial needs {leaf_bytes / 1e9:.1f} GB but the largest Ray node offers "
            f"{largest / 1e9:.1f} GB; split the neurons instead (cross_blocks)"
        )
    leaf = ray.remote(_accumulate_block).options(num_cpus=1, max_retries=MAX_RETRIES, memory=leaf_bytes)
    merge = ray.remote(_merge_pair).options(num_cpus=1, max_retries=MAX_RETRIES, memory=merge_bytes)
    refs = [leaf.remote(b) for b in blocks]
    root = merge_tree(refs, merge.remote)
    try:
        pending = list(refs)
        while pending:  # progress: blocks finished (not fetched here: fetch_local=False)
            done, pending = ray.wait(pending, num_returns=1, fetch_local=False)
            counter.update(len(done))
        result = ray.get(root)
    except Exception as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, ScaleError):  # a block's own one line
            raise ScaleError(str(cause), detail=str(err)) from None
        raise _ray_error(what, err) from None
    # Objects from Ray's store are read-only; compute() works in place: a private copy.
    out = result.copy()
    del result, root, refs
    return out


# ---------------------------------------------------------------------------------------------- N x N blocks


def layer_ranges(store: ActivationStore) -> list[tuple[int, int]]:
    """The flat neuron range of every layer, ``[(0, h), (h, 2h), ...]``: the natural blocks."""
    h = store.hidden
    return [(a * h, (a + 1) * h) for a in range(store.n_layers)]


@dataclass(frozen=True)
class _Pair:
    store: str
    i: int
    j: int
    rows: tuple[int, int]
    cols: tuple[int, int]
    shift_rows: np.ndarray
    shift_cols: np.ndarray
    out: str
    batch_size: int
    chunk_bytes: int
    dtype: str
    var_rtol: float
    name: str


def _cross_pair(pair: _Pair) -> dict[str, Any]:
    """Stream the store once, reading only the columns of ranges ``i`` and ``j``; write block
    ``(i, j)`` of the centred cross-products (float64) and of the correlations; return its summary."""
    from scipy.linalg.blas import dgemm, dsyrk

    try:
        store = ActivationStore.open(pair.store)
        n, size = store.n_items, store.n_neurons
        flat = store.activations.reshape(n, size)
        (a0, a1), (b0, b1) = pair.rows, pair.cols
        same = pair.rows == pair.cols
        wa, wb = a1 - a0, b1 - b0
        cross = np.zeros((wa, wb), order="F")
        s_a, s_b, q_a, q_b = np.zeros(wa), np.zeros(wb), np.zeros(wa), np.zeros(wb)
        step = max(1, min(pair.batch_size, pair.chunk_bytes // (8 * (wa + wb))))
        for start in range(0, n, step):
            rows = flat[start : min(start + step, n)]
            za = np.subtract(rows[:, a0:a1], pair.shift_rows, dtype=np.float64)
            s_a += za.sum(axis=0)
            q_a += np.einsum("ij,ij->j", za, za)
            if same:  # upper triangle, in place (as NeuronStats does)
                out = dsyrk(1.0, za.T, beta=1.0, c=cross, trans=0, lower=0, overwrite_c=1)
            else:
                zb = np.subtract(rows[:, b0:b1], pair.shift_cols, dtype=np.float64)
                s_b += zb.sum(axis=0)
                q_b += np.einsum("ij,ij->j", zb, zb)
                out = dgemm(1.0, za.T, zb.T, beta=1.0, c=cross, trans_b=1, overwrite_c=1)
            if out is not cross:  # pragma: no cover - f2py copied: keep its result
                cross = np.asfortranarray(out)
        if same:
            cross = np.triu(cross) + np.triu(cross, 1).T
            s_b, q_b = s_a, q_a
        cross -= np.outer(s_a, s_b) / n  # centred: Σ (x - x̄)(x - x̄)ᵀ
        inv, zero = [], []
        for s, q in ((s_a, q_a), (s_b, q_b)):
            css = np.maximum(q - s * s / n, 0.0)
            z = css <= pair.var_rtol * q
            iv = np.zeros_like(css)
            iv[~z] = 1.0 / np.sqrt(css[~z])
            inv.append(iv)
            zero.append(z)
        corr = cross * inv[0][:, None] * inv[1][None, :]
        np.clip(corr, -1.0, 1.0, out=corr)
        if same:
            np.fill_diagonal(corr, 1.0)
        folder = Path(pair.out)
        write_npy_atomic(folder / f"cross-{pair.i}-{pair.j}.npy", np.ascontiguousarray(cross))
        write_npy_atomic(folder / f"corr-{pair.i}-{pair.j}.npy", np.ascontiguousarray(corr, dtype=pair.dtype))
        return {
            "i": pair.i,
            "j": pair.j,
            "zero_variance_rows": np.flatnonzero(zero[0]).tolist(),
            "zero_variance_cols": np.flatnonzero(zero[1]).tolist(),
        }
    except Exception as err:
        raise ScaleError(f"{pair.name}: {_cause(err)}") from err


@dataclass(frozen=True)
class CrossBlocks:
    """What :func:`cross_blocks` wrote: ``folder`` holds ``cross-I-J.npy`` (the centred
    cross-products ``Σ (x - x̄)(x - x̄)ᵀ`` of ranges ``I`` and ``J``, float64) and ``corr-I-J.npy``
    (their Pearson correlations, ``dtype``) for every pair ``I <= J`` of ``pairs``, and
    ``blocks.json`` (this record)."""

    folder: str
    store: str
    n_items: int
    ranges: tuple[tuple[int, int], ...]
    pairs: tuple[tuple[int, int], ...]
    dtype: str

    def _load(self, kind: str, i: int, j: int, mmap: bool) -> np.ndarray:
        a, b = (i, j) if i <= j else (j, i)
        if (a, b) not in self.pairs:
            raise KeyError(f"block ({i}, {j}) was not computed")
        m = np.load(Path(self.folder) / f"{kind}-{a}-{b}.npy", mmap_mode="r" if mmap else None)
        return m if (a, b) == (i, j) else m.T

    def correlation(self, i: int, j: int, *, mmap: bool = True) -> np.ndarray:
        """Correlations of range ``i``'s neurons (rows) with range ``j``'s (columns)."""
        return self._load("corr", i, j, mmap)

    def cross(self, i: int, j: int, *, mmap: bool = True) -> np.ndarray:
        """Centred cross-products of range ``i``'s neurons with range ``j``'s."""
        return self._load("cross", i, j, mmap)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "store": self.store,
            "n_items": self.n_items,
            "ranges": [list(r) for r in self.ranges],
            "pairs": [list(p) for p in self.pairs],
            "dtype": self.dtype,
        }


def cross_blocks(
    store: str | os.PathLike | ActivationStore,
    out_dir: str | os.PathLike,
    ranges: Sequence[tuple[int, int]] | None = None,
    *,
    pairs: Sequence[tuple[int, int]] | None = None,
    shift: Any = None,
    engine: LocalEngine | RayEngine | None = None,
    batch_size: int = 4096,
    chunk_bytes: int | None = None,
    dtype: Any = np.float64,
    var_rtol: float = 1e-12,
) -> CrossBlocks:
    """Blocks of the ``N x N`` centred cross-products and correlations, one task per block, none
    holding more than its own: block ``(i, j)`` from the columns of ranges ``i`` and ``j`` only.

    Parameters
    ----------
    store : path or ActivationStore
        A complete store (on Ray: on a file system every worker sees).
    out_dir : path
        Where every task writes its block (on Ray: shared by the workers). Created.
    ranges : sequence of (start, stop), optional
        Neuron ranges (flat indices); default the layers (:func:`layer_ranges`).
    pairs : sequence of (i, j) with i <= j, optional
        The blocks to compute; default every ``i <= j`` (``(j, i)`` is the transpose). A window of
        neighbouring layers (``j - i < w``) is what per-window clustering needs.
    shift : array of N floats, optional
        Sums are taken around it (default :func:`pass_shift`); it only affects rounding.
    engine : LocalEngine or RayEngine (started), optional
        Where the blocks run (``engine.map``; default this process).
    batch_size, chunk_bytes : int
        Rows per read; bound on the float64 working copy of a read.
    dtype : float dtype
        Of the correlation blocks (float64 by default; float32 halves the disk).
    var_rtol : float
        As :class:`NeuronStats`: a neuron whose centred sum of squares is at most this times its
        shifted sum of squares has zero variance (correlation 0 with the others, 1 with itself).

    Returns
    -------
    CrossBlocks
        The record (also written as ``blocks.json``); ``.correlation(i, j)`` reads a block.
    """
    opened = _open(store)
    n, size = opened.n_items, opened.n_neurons
    if n < 2:
        raise ValueError(f"activation store {opened.path}: needs at least 2 items, has {n}")
    ranges = layer_ranges(opened) if ranges is None else [(int(a), int(b)) for a, b in ranges]
    for a, b in ranges:
        if not 0 <= a < b <= size:
            raise ValueError(f"range ({a}, {b}) outside the {size} neurons")
    k = len(ranges)
    pairs = (
        [(i, j) for i in range(k) for j in range(i, k)]
        if pairs is None
        else [(int(i), int(j)) for i, j in pairs]
    )
    for i, j in pairs:
        if not 0 <= i <= j < k:
            raise ValueError(f"pair ({i}, {j}) must satisfy 0 <= i <= j < {k}")
    chunk = NeuronStats(1, 1).chunk_bytes if chunk_bytes is None else int(chunk_bytes)
    if shift is None:
        shift = pass_shift(opened, batch_size=batch_size, chunk_bytes=chunk)
    shift = np.array(shift, dtype=np.float64).reshape(-1)
    if shift.size != size:
        raise ValueError(f"shift must hold {size} values, got {shift.size}")
    folder = Path(out_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = str(Path(opened.path).resolve())
    dt = np.dtype(dtype).name
    jobs = [
        _Pair(
            path,
            i,
            j,
            ranges[i],
            ranges[j],
            shift[ranges[i][0] : ranges[i][1]],
            shift[ranges[j][0] : ranges[j][1]],
            str(folder),
            batch_size,
            chunk,
            dt,
            float(var_rtol),
            f"cross block ({i}, {j})",
        )
        for i, j in pairs
    ]
    runner = engine or LocalEngine()
    started = not getattr(runner, "running", True)
    if started:
        runner.start()
    try:
        summaries = runner.map(_cross_pair, jobs, names=[p.name for p in jobs])
    finally:
        if started:
            runner.stop()
    zero = sorted(
        {ranges[s["i"]][0] + r for s in summaries for r in s["zero_variance_rows"]}
        | {ranges[s["j"]][0] + c for s in summaries for c in s["zero_variance_cols"]}
    )
    if zero:
        logger.warning("%d neurons have zero variance (e.g. %s)", len(zero), zero[:10])
    result = CrossBlocks(str(folder), path, n, tuple(map(tuple, ranges)), tuple(map(tuple, pairs)), dt)
    write_json_atomic(folder / BLOCKS_FILE, {**result.to_dict(), "zero_variance": zero})
    return result


# ---------------------------------------------------------------------------------------------- clustering


CUT_TOLERANCE = 1e-12
"""Added to a threshold, as :func:`redundancy.general.cut_tree` does (exact copies merge at t = 0)."""


def threshold_components(blocks: CrossBlocks, threshold: float) -> np.ndarray:
    """Connected components of the graph joining two neurons whose distance ``1 - |r|`` is at most
    ``threshold``, read block by block; one component id per neuron (numbered by lowest member).

    Every flat cluster of average linkage at ``threshold`` lies inside one component: a merge at
    average distance ``<= t`` joins two clusters with at least one pair at distance ``<= t``.
    """
    ranges = [tuple(r) for r in blocks.ranges]
    edges = sorted(ranges)
    size = edges[-1][1]
    if edges[0][0] != 0 or any(b != c for (_, b), (c, _) in zip(edges[:-1], edges[1:], strict=True)):
        raise ValueError("the blocks' ranges must cover the neurons 0..N once")
    k = len(ranges)
    missing = [(i, j) for i in range(k) for j in range(i, k) if (i, j) not in blocks.pairs]
    if missing:
        raise ValueError(f"components need every block; missing {missing[:5]}")
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    label = np.arange(size)  # each neuron's component so far; merged block by block
    for i, j in blocks.pairs:
        (r0, _), (c0, _) = ranges[i], ranges[j]
        block = np.asarray(blocks.correlation(i, j), dtype=np.float64)
        rows, cols = np.nonzero(1.0 - np.abs(block) <= threshold + CUT_TOLERANCE)
        if rows.size:
            a, b = label[rows + r0], label[cols + c0]
            k_now = int(label.max()) + 1
            graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(k_now, k_now))
            _, merged = connected_components(graph, directed=False)
            label = merged[label]
    _, first, inverse = np.unique(label, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()]


def _gather(blocks: CrossBlocks, members: np.ndarray) -> np.ndarray:
    """The correlations among ``members`` (increasing flat indices), read from the blocks."""
    ranges = [tuple(r) for r in blocks.ranges]
    groups = [(i, members[(members >= a) & (members < b)] - a) for i, (a, b) in enumerate(ranges)]
    groups = [(i, m) for i, m in groups if m.size]
    out = np.empty((members.size, members.size))
    pos = np.cumsum([0] + [m.size for _, m in groups])
    for gi, (i, rows) in enumerate(groups):
        for gj, (j, cols) in enumerate(groups):
            out[pos[gi] : pos[gi + 1], pos[gj] : pos[gj + 1]] = np.asarray(blocks.correlation(i, j))[
                np.ix_(rows, cols)
            ]
    order = np.concatenate([m + ranges[i][0] for i, m in groups])
    if not np.array_equal(order, members):  # pragma: no cover - ranges out of order
        idx = np.argsort(order)
        out = out[np.ix_(idx, idx)]
    return out


@dataclass(frozen=True, eq=False)
class BlockClusters:
    """Average-linkage flat clusters computed from :class:`CrossBlocks` one component at a time
    (:func:`block_clusters`): ``labels[k]`` (numbered by lowest member, as
    :func:`redundancy.general.cut_tree`) at ``thresholds[k]``; ``components`` (the components of
    the graph at the largest threshold) and the size of the largest."""

    thresholds: tuple[float, ...]
    labels: tuple[np.ndarray, ...]
    components: np.ndarray
    largest_component: int

    def n_clusters(self, k: int = -1) -> int:
        return int(self.labels[k].max()) + 1 if self.labels[k].size else 0


def block_clusters(
    blocks: CrossBlocks, thresholds: Sequence[float], *, max_component: int | None = None
) -> BlockClusters:
    """The flat clusters of average linkage on ``1 - |r|`` at each threshold, from the blocks alone:
    exactly those of :func:`redundancy.general.correlation_linkage` + ``cut_tree`` on the whole
    matrix (up to merges within rounding of a threshold), without its ``N x N`` matrix.

    The neurons are split into the connected components of the graph of pairs at distance at most
    ``max(thresholds)`` (:func:`threshold_components`); no flat cluster at any of the thresholds
    crosses two components, and a merge between components would be higher than every threshold
    (each of their pairs is farther), so average linkage on each component alone makes the same
    merges below it. Memory: the largest component's matrix (``12 c²`` bytes with its condensed
    distances), not ``4 N²``; ``max_component`` refuses a graph whose largest component is larger
    (it grows with the threshold: at high thresholds the graph becomes one component).
    """
    ts = sorted(float(t) for t in thresholds)
    if not ts or any(not 0 <= t <= 1 for t in ts):
        raise ValueError(f"thresholds must be distances in [0, 1], got {list(thresholds)}")
    comp = threshold_components(blocks, ts[-1])
    sizes = np.bincount(comp)
    largest = int(sizes.max())
    if max_component is not None and largest > max_component:
        raise ValueError(
            f"the largest component at t = {ts[-1]} holds {largest} neurons (limit {max_component}): "
            "use a lower threshold"
        )
    from ..general import correlation_linkage, cut_tree

    size = comp.size
    raw = [np.empty(size, dtype=np.int64) for _ in ts]
    next_id = [0] * len(ts)
    order = np.argsort(comp, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for c in range(sizes.size):
        members = order[bounds[c] : bounds[c + 1]]  # increasing: a stable sort of increasing indices
        if members.size == 1:
            for k in range(len(ts)):
                raw[k][members] = next_id[k]
                next_id[k] += 1
            continue
        z = correlation_linkage(_gather(blocks, members))
        for k, t in enumerate(ts):
            local = cut_tree(z, t, members.size)
            raw[k][members] = local + next_id[k]
            next_id[k] += int(local.max()) + 1
    labels = []
    for r in raw:  # renumber by lowest member
        _, first, inverse = np.unique(r, return_index=True, return_inverse=True)
        rank = np.empty(first.size, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(first.size)
        labels.append(rank[inverse.ravel()])
    logger.info(
        "block clusters: %d components at t = %g (largest %d of %d neurons)",
        sizes.size,
        ts[-1],
        largest,
        size,
    )
    return BlockClusters(tuple(ts), tuple(labels), comp, largest)
