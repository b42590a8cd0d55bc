"""The general-redundancy stage on one activation store: one pass, clustering sweep, JSON and figures."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import Counter, Progress
from .._serial import write_json_atomic, write_npy_atomic
from ..rigour import DEFAULT_LEVEL, jackknife_bounds, sentence_groups
from ..store import ActivationStore, package_versions
from ._cluster import (
    REPRESENTATIVES,
    cluster_counts,
    correlation_linkage,
    default_thresholds,
    threshold_sweep,
)
from ._result import CKAResult, GeneralIntervals, GeneralResult, NullBaseline
from ._stats import DEFAULT_CHUNK_BYTES, NeuronStats, StatsPart

logger = logging.getLogger(__name__)

RESULT_FILE = "general.json"
LINKAGE_FILE = "linkage.npy"
CORRELATION_FILE = "correlation.npy"


def accumulate(
    store: ActivationStore,
    *,
    batch_size: int = 4096,
    items: Any = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
) -> NeuronStats:
    """One streaming pass over ``store`` (all layers): the filled :class:`NeuronStats`.

    ``progress`` is told the items read so far (``what`` = ``"general TASK/SPLIT"``, unit ``item``)."""
    m = store.manifest
    total = store.n_items if items is None else (len(items) if hasattr(items, "__len__") else None)
    counter = Counter(progress, f"general {m.task}/{m.split}", total, "item")
    stats = NeuronStats(store.n_layers, store.hidden, chunk_bytes=chunk_bytes)
    if items is None:  # every row in order: read the memory map directly (no float32 copy per batch)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        flat = store.activations.reshape(store.n_items, store.n_neurons)
        batches = (flat[i : i + batch_size] for i in range(0, store.n_items, batch_size))
    else:
        batches = (x for x, _ in store.iter_batches(batch_size, items=items))
    for x in batches:
        stats.update(x)
        counter.update(x.shape[0])
    return stats


NULLS = ("shuffled", "random-init")
"""Null models of :func:`run_general`: ``shuffled`` in its own pass; ``random-init`` from a store of
the same items extracted with a randomly initialised model (``null_stores``)."""

SHUFFLE_WINDOW = 4096
"""Rows per window of the shuffled null (see :func:`accumulate_with_shuffled`)."""

PASS_BLOCKS = 8
"""Row blocks of :func:`run_general`'s passes that have no groups (the random-init null's; the
store's without intervals or the shuffled null), here as on an engine, so that a run gives the same
bits on either; 8 keeps up to 8 workers busy (``accumulate_pass(blocks=)``)."""


@dataclass(frozen=True, eq=False)
class GroupedPass:
    """What :func:`accumulate_pass` read in its one pass.

    Attributes
    ----------
    stats : the statistics of every item.
    parts : the sums of each random group of sentences (:func:`redundancy.rigour.sentence_groups`),
        around ``stats``' shift, so ``stats.without(parts[g])`` is the pass without group ``g`` (the
        delete-a-group jackknife); empty when no groups were asked for.
    null : the shuffled null's statistics (:func:`accumulate_with_shuffled`), or None.
    """

    stats: NeuronStats
    parts: tuple[StatsPart, ...] = ()
    null: NeuronStats | None = None


@dataclass(frozen=True)
class PassGroup:
    """One group of rows of :func:`accumulate_pass`, as a task receives it: small (a path, the rows,
    the shift), so that an engine's worker can accumulate it apart (:func:`accumulate_group`).

    Attributes
    ----------
    store : the store's folder (opened by the task: a memory map).
    rows : the group's row indices, increasing.
    shift : the shift every group takes its sums around (so that the partials add as they are).
    shuffled : also accumulate the shuffled null over these rows.
    seed, group : the shuffled null's random stream is ``default_rng([seed, 7, group])``: one per
        group, so a group's numbers do not depend on which worker ran the others, or when.
    window : rows per update (and per shuffling window).
    chunk_bytes : :class:`NeuronStats`' bound on its float64 working copy.
    name : names the group in progress and errors.
    """

    store: str
    rows: np.ndarray
    shift: np.ndarray
    shuffled: bool
    seed: int
    group: int
    window: int
    chunk_bytes: int
    name: str = "group"


def accumulate_group(
    group: PassGroup, counter: Counter | None = None
) -> tuple[NeuronStats, NeuronStats | None]:
    """Accumulate one :class:`PassGroup`: its statistics around ``group.shift`` and, with
    ``group.shuffled``, the shuffled null's over the same rows.

    With the null, the group's rows are visited in windows of ``window`` rows drawn at random
    without replacement; the null accumulator takes each window after permuting every neuron's
    column independently within it (see :func:`accumulate_with_shuffled`). ``counter`` (this process
    only) is told the rows read after every window.
    """
    store = ActivationStore.open(group.store)
    flat = store.activations.reshape(store.n_items, store.n_neurons)
    rows = np.asarray(group.rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= store.n_items):
        raise ValueError(f"{group.name}: rows outside the store's {store.n_items}")
    work = NeuronStats(store.n_layers, store.hidden, chunk_bytes=group.chunk_bytes).reset(group.shift)
    null = None
    rng = None
    if group.shuffled:
        null = NeuronStats(store.n_layers, store.hidden, chunk_bytes=group.chunk_bytes).reset(group.shift)
        rng = np.random.default_rng([int(group.seed), 7, int(group.group)])
        rows = rng.permutation(rows)
    contiguous = rng is None and rows.size > 0 and rows[-1] - rows[0] + 1 == rows.size
    for start in range(0, rows.size, group.window):
        idx = rows[start : start + group.window]
        if contiguous:  # a plain slice of the memory map: no gather
            x = np.asarray(flat[idx[0] : idx[-1] + 1])
        else:
            if rng is not None:
                idx = np.sort(idx)  # sorted: the memory map is read forwards
            x = np.asarray(flat[idx])
        work.update(x)
        if null is not None and rng is not None:
            cols = np.ascontiguousarray(x.T)  # one neuron per contiguous row: a fast in-place shuffle
            rng.permuted(cols, axis=1, out=cols)
            null.update(cols.T)
        if counter is not None:
            counter.update(idx.size)
    return work, null


def accumulate_pass(
    store: ActivationStore,
    *,
    groups: int = 0,
    shuffled: bool = False,
    seed: int = 0,
    window: int = SHUFFLE_WINDOW,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    engine: Any = None,
    blocks: int | None = None,
    progress: Progress | None = None,
) -> GroupedPass:
    """One pass over ``store`` filling the real statistics, those of each of ``groups`` random groups
    of sentences (``groups >= 2``; for the jackknife intervals) and, with ``shuffled``, the shuffled
    null's.

    The groups cost no arithmetic: every row enters exactly one group's accumulator (taken around
    one shift: the mean of the first ``window`` rows), which is then added to the total and kept as a
    float32 :class:`StatsPart` (``4 N²`` bytes per group). With ``shuffled``, each group's rows are
    visited in random windows of ``window`` rows, every neuron's column permuted independently within
    a window for the null accumulator (:func:`accumulate_group`).

    ``engine`` (optional; :mod:`redundancy.scale`'s, or anything with ``map(fn, items, names=)`` and
    ``n_workers``): the groups are accumulated by its workers, ``n_workers`` at a time, and merged
    here in group order, as in this process: the same numbers to the bit. The store must be at the
    same path for every worker.

    ``blocks`` (a pass without groups or the null): cut the rows into this many contiguous blocks,
    accumulated as groups and merged in order, here or on the engine: the same bits either way (the
    price here: one block's accumulator beside the total, as a grouped pass holds). None: one plain
    :func:`accumulate` here, ``2 n_workers`` blocks on an engine (equal to it to rounding only: float64
    sums merged in another order).
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an int >= 2, got {window!r}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 0:
        raise ValueError(f"groups must be a non-negative int, got {groups!r}")
    if blocks is not None and (isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1):
        raise ValueError(f"blocks must be a positive int or None, got {blocks!r}")
    plain = groups < 2 and not shuffled
    if plain and engine is None and blocks is None:
        return GroupedPass(accumulate(store, batch_size=window, chunk_bytes=chunk_bytes, progress=progress))
    m = store.manifest
    n, N = store.n_items, store.n_neurons
    what = f"general {m.task}/{m.split}" + (" (+ shuffled null)" if shuffled else "")
    counter = Counter(progress, what, n, "item")
    if n == 0:
        return GroupedPass(NeuronStats(store.n_layers, store.hidden, chunk_bytes=chunk_bytes))
    flat = store.activations.reshape(n, N)
    if groups >= 2:
        of_item = sentence_groups(store.sentence_ids, groups, seed)
        members = [np.flatnonzero(of_item == g) for g in range(groups)]
    elif plain:  # contiguous row blocks
        k = max(1, min(n, blocks if blocks is not None else 2 * int(engine.n_workers)))
        edges = [n * i // k for i in range(k + 1)]
        members = [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    else:
        members = [np.arange(n)]
    shift = np.asarray(flat[: min(n, window)]).mean(axis=0, dtype=np.float64)
    path = str(Path(store.path).resolve())
    specs = [
        PassGroup(path, rows, shift, shuffled, int(seed), g, window, chunk_bytes, f"{what} rows group {g}")
        for g, rows in enumerate(members)
    ]
    total: NeuronStats | None = None
    null: NeuronStats | None = None
    parts: list[StatsPart] = []
    for work, null_g in _group_results(specs, engine, counter):
        if groups >= 2 and work.n_items:
            parts.append(work.part())
        if total is None:  # an engine's results may be read-only (Ray's object store): copied
            total = work if engine is None else work.copy()
        else:
            total.merge(work)
        if null_g is not None:
            if null is None:
                null = null_g if engine is None else null_g.copy()
            else:
                null.merge(null_g)
    assert total is not None
    return GroupedPass(total, tuple(parts), null)


def _group_results(specs: Sequence[PassGroup], engine: Any, counter: Counter) -> Any:
    """Each group's ``(stats, null)``, in group order: here, or ``engine.n_workers`` at a time on
    the engine (so that at most that many partials wait here)."""
    if engine is None:
        for spec in specs:
            yield accumulate_group(spec, counter)
        return
    wave = max(1, int(engine.n_workers))
    for i in range(0, len(specs), wave):
        batch = list(specs[i : i + wave])
        results = engine.map(accumulate_group, batch, names=[s.name for s in batch])
        for spec, res in zip(batch, results, strict=True):
            counter.update(int(spec.rows.size))
            yield res


def accumulate_with_shuffled(
    store: ActivationStore,
    *,
    seed: int = 0,
    window: int = SHUFFLE_WINDOW,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
) -> tuple[NeuronStats, NeuronStats]:
    """One pass filling the real statistics and those of the *shuffled* null at once.

    The rows are visited in windows of ``window`` rows drawn at random without replacement (a seeded
    permutation of all rows); the real accumulator takes each window as it is (the sums do not
    depend on the order), the null one after permuting every neuron's column independently within
    the window. Each neuron keeps its exact marginal distribution, and any two neurons are paired
    at random within random windows: the expected correlation left between two neurons of true
    correlation ρ is ρ (K - 1) / (n - 1) for K windows over n rows (about ρ / ``window``), far
    below any clustering threshold. No second store is written; the null costs one more
    accumulator (``8 N²`` bytes) and the same arithmetic again.
    """
    res = accumulate_pass(
        store, shuffled=True, seed=seed, window=window, chunk_bytes=chunk_bytes, progress=progress
    )
    assert res.null is not None
    return res.stats, res.null


CKA_ITEMS_PER_FEATURE = 10
"""Below this many items per feature of a layer, biased linear CKA is inflated by its bias (it tends to
d / (n + d) for independent layers): a warning is logged and recorded."""


def cka_diagnostics(n_items: int, hidden: int, linear: np.ndarray, debiased: np.ndarray) -> dict[str, str]:
    """The estimator's diagnostics recorded in ``GeneralResult.estimator``: the items-vs-features ratio
    (a warning when ``n_items < 10 · hidden``) and the largest gap between biased and debiased CKA,
    with the layer pairs where they differ by more than 0.01 (read both there)."""
    ratio = n_items / max(hidden, 1)
    gap = np.abs(np.asarray(linear) - np.asarray(debiased))
    gap = np.where(np.isfinite(gap), gap, 0.0)
    pairs = [(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(gap > 0.01, 1)), strict=True)]
    out = {
        "cka": "linear CKA (biased, feature space) and debiased linear CKA (unbiased HSIC), side by side",
        "cka_items_per_feature": f"{ratio:.1f}",
        "cka_max_biased_minus_debiased": f"{float(gap.max(initial=0.0)):.4f}",
        "cka_pairs_differing_by_over_0.01": str(len(pairs)),
    }
    if n_items < CKA_ITEMS_PER_FEATURE * hidden:
        out["cka_warning"] = (
            f"{n_items} items for {hidden} features per layer (< {CKA_ITEMS_PER_FEATURE} per feature): "
            "biased CKA is inflated; read the debiased values"
        )
        logger.warning("general: %s", out["cka_warning"])
    return out


def _null_baseline(
    kind: str, description: str, stats: NeuronStats, ts: Sequence[float], layer_of: np.ndarray, **cut: Any
) -> NullBaseline:
    computed = stats.compute()
    corr = computed.correlation
    assert corr is not None
    sweep = threshold_sweep(corr, ts, layer_of=layer_of, linkage=correlation_linkage(corr), **cut)
    cka = CKAResult(
        linear=computed.cka_linear.tolist(), debiased=computed.cka_debiased.tolist(), n_items=computed.n_items
    )
    return NullBaseline(kind=kind, description=description, cka=cka, sweep=sweep)


INTERVAL_BYTES = 4 * 2**30
"""Memory the jackknife groups' sums may take in :func:`run_general` (``4 N²`` bytes a group: 20 groups
fit up to about 7,300 neurons; 2,688 neurons take 29 MB a group, 9,984 take 399 MB, so 10 groups)."""


def _interval_groups(intervals: Any, level: Any, store: ActivationStore, budget: int) -> int:
    """How many jackknife groups :func:`run_general` uses (0: none)."""
    if isinstance(intervals, bool) or not isinstance(intervals, int) or intervals < 0 or intervals == 1:
        raise ValueError(f"intervals must be 0 (off) or an int >= 2 (jackknife groups), got {intervals!r}")
    if not (isinstance(level, float | int) and 0 < level < 1):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if intervals == 0:
        return 0
    per_group = 4 * store.n_neurons**2
    fit = max(2, int(budget // per_group))
    n_sent = int(np.unique(store.sentence_ids).size)
    groups = min(intervals, fit, n_sent)
    if groups < 2:
        raise ValueError(f"{store.path}: jackknife intervals need at least 2 sentences, got {n_sent}")
    if groups < intervals:
        logger.warning(
            "general: %d jackknife groups instead of %d (%s; %.0f MB per group of %d neurons)",
            groups,
            intervals,
            "memory budget" if fit < intervals else "too few sentences",
            per_group / 1e6,
            store.n_neurons,
        )
    return groups


def _jackknife(
    stats: NeuronStats,
    parts: Sequence[StatsPart],
    computed: Any,
    ts: Sequence[float],
    sweep: Sequence[Any],
    *,
    level: float,
    seed: int,
    progress: Progress | None = None,
) -> GeneralIntervals:
    """The delete-a-group jackknife of both CKA matrices and of the redundant share at every
    threshold: each replicate is the statistics without one group (:meth:`NeuronStats.without`),
    its correlation matrix and average-linkage tree, cut at the sweep's thresholds."""
    n = computed.n_layers * computed.hidden
    lin, deb, shares = [], [], []
    counter = Counter(progress, "general: jackknife replicates", len(parts), "replicate")
    for part in parts:
        rep = stats.without(part).compute()
        lin.append(rep.cka_linear)
        deb.append(rep.cka_debiased)
        linkage = correlation_linkage(rep.correlation)
        del rep
        shares.append(1.0 - cluster_counts(linkage, ts, n) / n)
        counter.update(1)
    lin_lo, lin_hi = jackknife_bounds(computed.cka_linear, np.stack(lin), level, bounds=(0.0, 1.0))
    deb_lo, deb_hi = jackknife_bounds(computed.cka_debiased, np.stack(deb), level, bounds=(-1.0, 1.0))
    share = np.array([p.redundant_share for p in sweep])
    share_lo, share_hi = jackknife_bounds(share, np.stack(shares), level, bounds=(0.0, 1.0))
    return GeneralIntervals(
        method=(
            f"delete-a-group jackknife over sentences: the sentences dealt at random into {len(parts)} "
            "groups, every number recomputed without each group (same pass), estimate ± t(G-1) se"
        ),
        n_groups=len(parts),
        seed=seed,
        level=level,
        cka_linear_low=lin_lo.tolist(),
        cka_linear_high=lin_hi.tolist(),
        cka_debiased_low=deb_lo.tolist(),
        cka_debiased_high=deb_hi.tolist(),
        share_low=share_lo.tolist(),
        share_high=share_hi.tolist(),
    )


def run_general(
    store: str | os.PathLike | ActivationStore,
    out_dir: str | os.PathLike,
    thresholds: Sequence[float] | None = None,
    *,
    step: float = 0.05,
    report_threshold: float = 0.3,
    seed: int = 0,
    representative: str = "random",
    batch_size: int = 4096,
    save_correlation: bool = False,
    figures: bool = True,
    nulls: Sequence[str] = (),
    null_stores: Mapping[str, Any] | None = None,
    intervals: int = 0,
    level: float = DEFAULT_LEVEL,
    interval_bytes: int = INTERVAL_BYTES,
    engine: Any = None,
    progress: Progress | None = None,
) -> GeneralResult:
    """General redundancy of one store: neuron correlations, layer CKA and the clustering sweep.

    Reads the store once (all layers, ``N = n_layers * hidden`` neurons), then writes into ``out_dir``:
    ``general.json`` (:class:`GeneralResult`), ``linkage.npy`` (the average-linkage tree, SciPy format,
    to cut again at any threshold), the figures ``cka.png``, ``redundancy_vs_threshold.png``,
    ``redundancy_per_layer.png``, ``cluster_span.png`` and, if asked, ``correlation.npy`` (float32).

    Parameters
    ----------
    store : path or ActivationStore
        A complete activation store.
    out_dir : path
        Output folder (created; files of the same names are replaced).
    thresholds : sequence of float, optional
        Distance thresholds to cut at. Default: ``0.0, step, ..., 1.0``.
    step : float
        Step of the default sweep.
    report_threshold : float
        The headline threshold (the paper's 0.3); added to the sweep if missing.
    seed : int
        Seed of the random representative picks.
    representative : {"random", "central"}
        How one neuron per cluster is kept (see :class:`CorrelationClusterer`).
    batch_size : int
        Items per batch read from the store.
    save_correlation : bool
        Also save the ``N x N`` correlation matrix (float32).
    figures : bool
        Draw the PNG figures.
    nulls : sequence of str
        Null models to compute beside the real numbers: ``"shuffled"`` (every neuron's rows permuted
        independently, in the same pass: :func:`accumulate_with_shuffled`). Their CKA and sweep land in
        ``GeneralResult.nulls`` and in the figures; ``"random-init"``: the same statistics on
        ``null_stores["random-init"]``, a store of the same items from a randomly initialised model of
        the same architecture (:func:`redundancy.extract.load_model` with ``random_init=SEED``).
    null_stores : mapping of str to store or path
        The stores of the null models that need one (``random-init``).
    intervals : int
        Groups of the delete-a-group jackknife over sentences (0: no intervals; else >= 2): the
        sentences are dealt at random (``seed``) into this many groups, and every number (both CKA
        matrices, the redundant share at every threshold) is recomputed without each group, from the
        same pass (:func:`accumulate_pass`). Costs ``4 N²`` bytes per group (fewer groups are used if
        they would exceed ``interval_bytes``; logged) and, per group, the statistics and the
        clustering tree again (no second pass). ``GeneralResult.intervals``.
    level : float
        Coverage of the intervals.
    interval_bytes : int
        Memory the groups' sums may take (default :data:`INTERVAL_BYTES`, 4 GiB).
    engine : optional
        Run the passes (the store's and the random-init null's) on an engine's workers
        (:func:`accumulate_pass`; e.g. ``redundancy.scale.make_engine(...)``, started): the same
        numbers to the bit (a pass without groups is cut into :data:`PASS_BLOCKS` row blocks
        whichever the engine). The analysis after the pass runs here.
    progress : :class:`redundancy._progress.Progress`, optional
        Told the number of items read so far (cumulative), after every batch.

    Returns
    -------
    GeneralResult
    """
    if representative not in REPRESENTATIVES:
        raise ValueError(f"representative must be one of {REPRESENTATIVES}, got {representative!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    ts = default_thresholds(step) if thresholds is None else tuple(float(t) for t in thresholds)
    if not 0 <= report_threshold <= 1:  # NaN fails too
        raise ValueError(f"report_threshold must be a distance 1 - |r| in [0, 1], got {report_threshold!r}")
    if not any(math.isclose(t, report_threshold, abs_tol=1e-9) for t in ts):
        ts = (*ts, float(report_threshold))
    if any(not 0 <= t <= 1 for t in ts):  # NaN fails too
        raise ValueError(f"thresholds must be distances 1 - |r| in [0, 1], got {list(ts)}")
    ts = tuple(sorted(set(ts)))
    unknown = [k for k in nulls if k not in NULLS]
    if unknown:
        raise ValueError(f"unknown null model(s) {unknown}; run_general computes {list(NULLS)}")
    null_stores = dict(null_stores or {})
    if "random-init" in nulls and "random-init" not in null_stores:
        raise ValueError("the random-init null needs its store: null_stores={'random-init': STORE}")

    opened = store if isinstance(store, ActivationStore) else ActivationStore.open(store)
    m = opened.manifest
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()

    logger.info(
        "general: one pass over %s (%d items, %d layers x %d = %d neurons)",
        opened.path,
        opened.n_items,
        opened.n_layers,
        opened.hidden,
        opened.n_neurons,
    )
    groups = _interval_groups(intervals, level, opened, interval_bytes)
    passed = accumulate_pass(
        opened,
        groups=groups,
        shuffled="shuffled" in nulls,
        seed=seed,
        window=batch_size,
        engine=engine,
        blocks=PASS_BLOCKS,
        progress=progress,
    )
    stats, null_stats, parts = passed.stats, passed.null, passed.parts
    seconds["pass"] = time.perf_counter() - t0
    if stats.n_items < 2:
        raise ValueError(f"activation store {opened.path}: needs at least 2 items, has {stats.n_items}")
    t1 = time.perf_counter()
    computed = stats.compute()
    if not passed.parts:
        del stats  # free the N x N cross-products before clustering
    del passed
    corr = computed.correlation
    assert corr is not None
    seconds["statistics"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    layer_of = np.arange(opened.n_neurons) // opened.hidden
    linkage = correlation_linkage(corr)
    sweep = threshold_sweep(
        corr, ts, layer_of=layer_of, representative=representative, random_state=seed, linkage=linkage
    )
    seconds["clustering"] = time.perf_counter() - t2
    files = [RESULT_FILE, LINKAGE_FILE]
    write_npy_atomic(out / LINKAGE_FILE, linkage)
    if save_correlation:
        write_npy_atomic(out / CORRELATION_FILE, corr.astype(np.float32))
        files.append(CORRELATION_FILE)
    del corr
    interval_result = None
    if groups:
        t6 = time.perf_counter()
        interval_result = _jackknife(
            stats, parts, computed, ts, sweep, level=level, seed=seed, progress=progress
        )
        del stats, parts
        seconds["intervals"] = time.perf_counter() - t6
    diagnostics = cka_diagnostics(computed.n_items, opened.hidden, computed.cka_linear, computed.cka_debiased)
    null_results: list[NullBaseline] = []
    if null_stats is not None:
        t4 = time.perf_counter()
        description = (
            f"each neuron's rows permuted independently within random windows of {batch_size} rows "
            f"(seed {seed}): marginals kept, cross-neuron correlations destroyed"
        )
        cut = {"representative": representative, "random_state": seed}
        null_results.append(_null_baseline("shuffled", description, null_stats, ts, layer_of, **cut))
        del null_stats
        seconds["nulls"] = time.perf_counter() - t4
    if "random-init" in nulls:
        t5 = time.perf_counter()
        ns = null_stores["random-init"]
        rs = ns if isinstance(ns, ActivationStore) else ActivationStore.open(ns)
        rm = rs.manifest
        same = (rs.n_layers, rs.hidden, rs.n_items) == (opened.n_layers, opened.hidden, opened.n_items)
        same = same and np.array_equal(rs.sentence_ids, opened.sentence_ids)
        same = same and np.array_equal(rs.positions, opened.positions) and rm.task == m.task
        if not same:
            raise ValueError(
                f"{rs.path}: the random-init null's store must hold the same items and shape as "
                f"{opened.path} ({rs.n_items} items of {rs.n_layers} x {rs.hidden} vs {opened.n_items} of "
                f"{opened.n_layers} x {opened.hidden}, or other sentences)"
            )
        description = (
            f"{rm.model}: the same architecture with random weights (sha256 {rm.weights_sha256[:12]})"
        )
        cut = {"representative": representative, "random_state": seed}
        rstats = accumulate_pass(
            rs, window=batch_size, engine=engine, blocks=PASS_BLOCKS, progress=progress
        ).stats
        null_results.append(_null_baseline("random-init", description, rstats, ts, layer_of, **cut))
        del rstats
        seconds["nulls"] = seconds.get("nulls", 0.0) + time.perf_counter() - t5
    for nb in null_results:
        p0 = nb.at(report_threshold)
        logger.info(
            "general: %s null at t = %g: %.2f%% redundant",
            nb.kind,
            report_threshold,
            100 * p0.redundant_share,
        )

    def build(extra_files: Sequence[str] = ()) -> GeneralResult:
        return GeneralResult(
            store=str(opened.path),
            model=m.model,
            weights_sha256=m.weights_sha256,
            task=m.task,
            split=m.split,
            aggregation=m.aggregation,
            input_hash=m.plan_hash,
            n_items=computed.n_items,
            n_layers=opened.n_layers,
            hidden=opened.hidden,
            seed=seed,
            representative=representative,
            report_threshold=report_threshold,
            zero_variance=computed.zero_variance_indices.tolist(),
            cka=CKAResult(
                linear=computed.cka_linear.tolist(),
                debiased=computed.cka_debiased.tolist(),
                n_items=computed.n_items,
            ),
            sweep=sweep,
            estimator={
                "statistics": "NeuronStats (one streaming float64 pass, shifted sums, BLAS dsyrk)",
                "correlation": "Pearson; zero-variance neurons: 0 off the diagonal",
                "distance": "1 - |r|",
                "linkage": "average (fastcluster)",
                "cut": "scipy fcluster, criterion='distance'",
                "representative": representative,
                **diagnostics,
            },
            seconds=dict(seconds),
            files=(*files, *extra_files),
            versions=package_versions(("numpy", "scipy", "fastcluster", "matplotlib")),
            nulls=tuple(null_results),
            intervals=interval_result,
        )

    result = build()
    if figures:
        t3 = time.perf_counter()
        from ._plots import write_figures

        names = write_figures(result, out)
        seconds["figures"] = time.perf_counter() - t3
        seconds["total"] = time.perf_counter() - t0
        result = build(names)
    else:
        seconds["total"] = time.perf_counter() - t0
        result = build()
    write_json_atomic(out / RESULT_FILE, result.to_dict())
    p = result.at()
    logger.info(
        "general: t = %g: %d clusters of %d neurons, %.1f%% redundant; wrote %s",
        p.threshold,
        p.n_clusters,
        p.n_neurons,
        100 * p.redundant_share,
        out / RESULT_FILE,
    )
    return result


def load_result(path: str | os.PathLike) -> GeneralResult:
    """Read ``general.json`` (a file, or the folder holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULT_FILE
    with open(p, encoding="utf-8") as f:
        return GeneralResult.from_dict(json.load(f))
