"""Task-specific redundancy experiments: oracle, layer-wise and incremental probes, the minimal
neuron set, and controls (random / bottom-ranked neurons at the same k, probe seeds).

Every experiment trains *families* of probes through :func:`fit_probe_family`: with the fast solver
the probes of a family share one pass over the data (per-layer + incremental + oracle together;
the nested top-k sets of a ranking together); with the paper solver they are trained one by one,
exactly as the authors did. :func:`redundancy.probe.run_task_redundancy` runs them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from .._progress import Progress
from ..select import MINIMAL_SET_SHARES, grid_sizes, search_minimal_size, tolerance_target
from ._estimator import ElasticNetProbe, fit_probe_family
from ._evaluate import probe_result
from ._results import ControlsResult, CurveResult, MinimalSetResult, ProbeResult, SeedSpread
from ._task import ProbeTask, select_columns


def _train_one_by_one(
    task: ProbeTask,
    probe: ElasticNetProbe,
    sets: list[np.ndarray],
    names: Sequence[str],
    stage: str,
    progress: Progress | None,
) -> list[ProbeResult]:
    out = []
    for i, (s, n) in enumerate(zip(sets, names, strict=True)):
        p = clone(probe).fit(
            select_columns(task.X_train, s), task.train.y, select_columns(task.X_dev, s), task.dev.y
        )
        out.append(probe_result(task, p, s, n))
        if progress is not None:
            progress(stage, i + 1, len(sets))
    return out


def _train_nested(
    task: ProbeTask,
    probe: ElasticNetProbe,
    sets: list[np.ndarray],
    names: Sequence[str],
    stage: str,
    progress: Progress | None,
) -> list[ProbeResult]:
    """Sets that are prefixes of the longest: one family over its columns, taken once per split."""
    longest = max(sets, key=len)
    return train_curves(
        task, probe, [(longest, [s.size for s in sets], names)], stage=stage, progress=progress
    )[0]


def train_curves(
    task: ProbeTask,
    probe: ElasticNetProbe,
    curves: Sequence[tuple[np.ndarray, Sequence[int], Sequence[str]]],
    *,
    stage: str = "probes",
    progress: Progress | None = None,
    fit_family: Callable[..., list[ElasticNetProbe]] | None = None,
) -> list[list[ProbeResult]]:
    """For each curve ``(order, sizes, names)``: probes on the first k neurons of ``order`` for every
    k of ``sizes``, scored; one list of results per curve, in ``sizes`` order.

    With the fast solver every probe of every curve is one family: the curves' orders are
    concatenated into one column index that the solver gathers batch by batch (no copy of the
    training matrix), so e.g. the controls' random and bottom curves share one pass over the data
    instead of one pass each. Each probe is trained exactly as it would be alone (the same batches,
    its own step size and early stopping); only the floating-point order of the shared products
    differs. ``fit_family`` (default :func:`fit_probe_family`, same arguments) trains the family:
    e.g. in parts on other machines (:mod:`redundancy.scale`).
    """
    longest = [int(max(sizes)) for _, sizes, _ in curves]
    cols = np.concatenate(
        [np.asarray(o, dtype=np.int64)[:m] for (o, _, _), m in zip(curves, longest, strict=True)]
    )
    starts = np.concatenate([[0], np.cumsum(longest)[:-1]]).astype(int)
    ranges = [
        [(int(a), int(a) + int(k))] for a, (_, sizes, _) in zip(starts, curves, strict=True) for k in sizes
    ]
    stats = task.stats_of(cols) if probe.resolved_settings(task.X_train.shape[0])["standardize"] else None
    probes = iter(
        (fit_family or fit_probe_family)(
            probe,
            task.X_train,
            task.train.y,
            ranges,
            task.X_dev,
            task.dev.y,
            columns=cols,
            stats=stats,
            progress=progress,
            what=stage,
            checkpoint=task.checkpoint,
        )
    )
    out = []
    for (order, sizes, names), m in zip(curves, longest, strict=True):
        head = np.asarray(order, dtype=np.int64)[:m]
        Xd = select_columns(task.X_dev, head)
        Xt = None if task.X_test is None else select_columns(task.X_test, head)
        out.append(
            [
                probe_result(
                    task, next(probes), head[:k], n, X_dev=Xd[:, :k], X_test=None if Xt is None else Xt[:, :k]
                )
                for k, n in zip(sizes, names, strict=True)
            ]
        )
    return out


def train_neuron_sets(
    task: ProbeTask,
    probe: ElasticNetProbe,
    neuron_sets: Sequence[np.ndarray],
    names: Sequence[str],
    *,
    stage: str = "probes",
    progress: Progress | None = None,
) -> list[ProbeResult]:
    """Train one probe per neuron set and score it. Nested sets (each a prefix of the last) are
    trained as one family over the columns of the largest (one pass with the fast solver)."""
    sets = [np.asarray(s, dtype=np.int64) for s in neuron_sets]
    if not sets:
        return []
    longest = max(sets, key=len)
    if all(np.array_equal(s, longest[: s.size]) for s in sets):
        return _train_nested(task, probe, sets, names, stage, progress)
    return _train_one_by_one(task, probe, sets, names, stage, progress)


@dataclass(frozen=True, eq=False)
class LayerProbes:
    """The layer experiments: ``oracle`` (all layers), ``layerwise`` (one per layer),
    ``incremental`` (layers 0..l; the last is the oracle), the fitted oracle ``estimator``, and the
    fitted incremental probes (``incremental_estimators``, layers 0..l for every l)."""

    oracle: ProbeResult
    layerwise: tuple[ProbeResult, ...]
    incremental: tuple[ProbeResult, ...]
    estimator: ElasticNetProbe
    incremental_estimators: tuple[ElasticNetProbe, ...] = ()


def layer_probes(
    task: ProbeTask,
    probe: ElasticNetProbe,
    *,
    progress: Progress | None = None,
    fit_family: Callable[..., list[ElasticNetProbe]] | None = None,
) -> LayerProbes:
    """The oracle (all layers), one probe per layer, and incremental probes on layers 0..l.

    The incremental probe on every layer *is* the oracle, and the one on layer 0 is the layer-0
    probe: each is trained once and reported under both names. With the fast solver all
    ``2 * n_layers - 1`` distinct probes share one pass over the data. ``fit_family`` (default
    :func:`fit_probe_family`, same arguments) trains the family: e.g. in parts on other machines
    (:func:`redundancy.scale.layer_probes_on_engine`).
    """
    L, h = task.n_layers, task.hidden
    ranges = [[(i * h, (i + 1) * h)] for i in range(L)] + [[(0, (i + 1) * h)] for i in range(1, L)]
    stats = task.train_stats if probe.resolved_settings(task.X_train.shape[0])["standardize"] else None
    fitted = (fit_family or fit_probe_family)(
        probe,
        task.X_train,
        task.train.y,
        ranges,
        task.X_dev,
        task.dev.y,
        stats=stats,
        progress=progress,
        what="layers",
        checkpoint=task.checkpoint,
    )
    layerwise = tuple(
        probe_result(task, fitted[i], np.arange(i * h, (i + 1) * h), f"layer-{i}", [i]) for i in range(L)
    )
    if L == 1:
        oracle = probe_result(task, fitted[0], np.arange(h), "oracle", [0])
        return LayerProbes(oracle, layerwise, (oracle,), fitted[0], (fitted[0],))
    incremental = [layerwise[0]]
    for top in range(1, L):
        name = "oracle" if top == L - 1 else f"layers-0..{top}"
        incremental.append(
            probe_result(task, fitted[L + top - 1], np.arange((top + 1) * h), name, list(range(top + 1)))
        )
    estimators = (fitted[0], *fitted[L:])
    return LayerProbes(incremental[-1], layerwise, tuple(incremental), fitted[-1], estimators)


def oracle_probe(task: ProbeTask, probe: ElasticNetProbe) -> tuple[ProbeResult, ElasticNetProbe]:
    """The probe on all neurons of all layers, alone; returns its result and the fitted probe."""
    p = clone(probe).fit(task.X_train, task.train.y, task.X_dev, task.dev.y)
    return probe_result(task, p, np.arange(task.n_neurons), "oracle", list(range(task.n_layers))), p


class _TopK:
    """The ``evaluate`` of :func:`search_minimal_size` for a ranking: trains the top-k sets asked for
    and keeps every result in ``evaluated``; once ``max_seconds`` have passed since it was made (and
    something was trained) it trains nothing more, scores ``-inf`` and sets ``out_of_time``."""

    def __init__(
        self,
        task: ProbeTask,
        probe: ElasticNetProbe,
        ranking: np.ndarray,
        max_seconds: float | None,
        progress: Progress | None,
    ):
        self.task, self.probe, self.ranking = task, probe, ranking
        self.max_seconds, self.progress = max_seconds, progress
        self.evaluated: dict[int, ProbeResult] = {}
        self.out_of_time = False
        self.t0 = time.perf_counter()

    def __call__(self, sizes: list[int]) -> list[float]:
        late = self.max_seconds is not None and time.perf_counter() - self.t0 > self.max_seconds
        if self.evaluated and late:
            self.out_of_time = True
            return [float("-inf")] * len(sizes)
        sets = [self.ranking[:k] for k in sizes]
        names = [f"top-{k}" for k in sizes]
        res = train_neuron_sets(
            self.task, self.probe, sets, names, stage="minimal set", progress=self.progress
        )
        for k, r in zip(sizes, res, strict=True):
            self.evaluated[k] = r
        return [r.dev_score for r in res]


def minimal_neuron_set(
    task: ProbeTask,
    probe: ElasticNetProbe,
    ranking: np.ndarray,
    oracle: ProbeResult,
    *,
    delta: float = 1.0,
    shares: Sequence[float] = MINIMAL_SET_SHARES,
    ranking_method: str = "paper",
    chunk: int | None = None,
    max_seconds: float | None = None,
    progress: Progress | None = None,
) -> MinimalSetResult:
    """The smallest top-k of the ranking (k over ``shares`` of all neurons) whose dev score is
    strictly above ``oracle_dev * (1 - delta / 100)``; its test score comes with it.

    Consecutive sizes are trained together (nested top-k sets: one pass with the fast solver),
    up to ``chunk`` sizes and ``n_neurons`` summed columns per group, so a group costs about one
    oracle pass (default ``chunk`` 25 for fast, 1 for paper, which trains one by one anyway).
    ``max_seconds`` bounds the search (the first group is always trained); when it runs out the
    result says ``complete=False`` and the set falls back to all neurons.
    """
    N = task.n_neurons
    ranking = np.asarray(ranking, dtype=np.int64)
    grid = grid_sizes(N, shares)
    target = tolerance_target(oracle.dev_score, delta)
    if chunk is None:
        chunk = 25 if probe.solver == "fast" else 1
    top_k = _TopK(task, probe, ranking, max_seconds, progress)
    outcome = search_minimal_size(grid, top_k, target, chunk=chunk, budget=N)
    found = outcome.size is not None
    k = outcome.size if found else N
    evaluated = top_k.evaluated
    return MinimalSetResult(
        delta=float(delta),
        reference_dev=float(oracle.dev_score),
        target=float(target),
        ranking_method=ranking_method,
        grid=grid,
        evaluated=tuple(evaluated[s] for s in grid if s in evaluated),
        found=found,
        complete=not top_k.out_of_time,
        k=int(k),
        share=k / N,
        neurons=tuple(int(i) for i in ranking[:k]),
        result=evaluated[k] if found else oracle,
    )


def _sd(a: np.ndarray) -> np.ndarray:
    """Sample standard deviation over the seeds (axis 0); zeros for one seed."""
    return np.std(a, axis=0, ddof=1) if a.shape[0] > 1 else np.zeros(a.shape[1])


def scores_curve(
    kind: str,
    sizes: Sequence[int],
    seeds: Sequence[int],
    dev: Sequence[Sequence[float]],
    test: Sequence[Sequence[float]] | None,
) -> CurveResult:
    """A :class:`CurveResult` from scores, one row per seed and one column per size."""
    dev_a = np.asarray(dev, dtype=np.float64)
    test_a = None if test is None else np.asarray(test, dtype=np.float64)
    return CurveResult(
        kind=kind,
        sizes=tuple(int(k) for k in sizes),
        seeds=tuple(int(s) for s in seeds),
        dev=tuple(tuple(r) for r in dev_a.tolist()),
        test=None if test_a is None else tuple(tuple(r) for r in test_a.tolist()),
        dev_mean=tuple(dev_a.mean(0).tolist()),
        dev_sd=tuple(_sd(dev_a).tolist()),
        test_mean=None if test_a is None else tuple(test_a.mean(0).tolist()),
        test_sd=None if test_a is None else tuple(_sd(test_a).tolist()),
    )


def curve(
    kind: str, sizes: Sequence[int], seeds: Sequence[int], rows: list[list[ProbeResult]], has_test: bool
) -> CurveResult:
    """A :class:`CurveResult` from trained probes, one row per seed."""
    dev = [[r.dev_score for r in row] for row in rows]
    test = [[r.test_score for r in row] for row in rows] if has_test else None
    return scores_curve(kind, sizes, seeds, dev, test)


def seed_spread(
    task: ProbeTask,
    probe: ElasticNetProbe,
    seeds: Sequence[int],
    progress: Progress | None,
    *,
    known: Mapping[int, ProbeResult] | None = None,
) -> SeedSpread:
    """The oracle retrained with each of ``seeds``: its scores, their mean and spread. ``known``:
    oracles already trained, by seed (not trained again)."""
    res = []
    for i, s in enumerate(seeds):
        r = (known or {}).get(int(s))
        if r is None:
            r, _ = oracle_probe(task, clone(probe).set_params(random_state=s))
        res.append(r)
        if progress is not None:
            progress("controls: probe seeds", i + 1, len(seeds))
    dev = np.array([r.dev_score for r in res])
    test = np.array([r.test_score for r in res]) if task.test is not None else None
    ddof = 1 if len(res) > 1 else 0
    return SeedSpread(
        name="oracle",
        seeds=tuple(seeds),
        dev=tuple(dev.tolist()),
        test=None if test is None else tuple(test.tolist()),
        dev_mean=float(dev.mean()),
        dev_sd=float(dev.std(ddof=ddof)),
        test_mean=None if test is None else float(test.mean()),
        test_sd=None if test is None else float(test.std(ddof=ddof)),
    )


def random_orders(n_neurons: int, n_random: int, random_state: int) -> tuple[list[int], list[np.ndarray]]:
    """The controls' random neuron orders: one permutation per seed ``random_state + 1000 + r``
    (their prefixes are the random k-sets, so each draw's sizes nest and train as one family)."""
    seeds = [random_state + 1000 + r for r in range(n_random)]
    return seeds, [np.random.default_rng(s).permutation(n_neurons) for s in seeds]


def mean_dev(rows: Sequence[ProbeResult]) -> float:
    """Mean dev score of a curve's probes: the score ``ranking="auto"`` compares rankings by."""
    return float(np.mean([r.dev_score for r in rows]))


def neuron_controls(
    task: ProbeTask,
    probe: ElasticNetProbe,
    ranking: np.ndarray,
    sizes: Sequence[int],
    *,
    n_random: int = 5,
    probe_seeds: int = 3,
    random_state: int = 0,
    progress: Progress | None = None,
) -> ControlsResult:
    """At each k of ``sizes``: the top-ranked, ``n_random`` random draws and the bottom-ranked k
    neurons; and the oracle retrained with ``probe_seeds`` seeds (``random_state + s``).

    Random draws are nested prefixes of one permutation per seed (``random_state + 1000 + r``);
    the top, bottom and random curves train as one family (:func:`train_curves`).
    """
    ranking = np.asarray(ranking, dtype=np.int64)
    sizes = tuple(sorted({int(k) for k in sizes if 1 <= k <= task.n_neurons}))
    has_test = task.test is not None
    seed = [probe.random_state]
    rand_seeds, perms = random_orders(task.n_neurons, n_random, random_state)
    orders = [("top", ranking), ("bottom", ranking[::-1].copy())] + [
        (f"random-s{s}", p) for s, p in zip(rand_seeds, perms, strict=True)
    ]
    curves = [(o, sizes, [f"{label}-{k}" for k in sizes]) for label, o in orders]
    rows = train_curves(task, probe, curves, stage="controls", progress=progress)
    top = curve("top", sizes, seed, [rows[0]], has_test)
    bottom = curve("bottom", sizes, seed, [rows[1]], has_test)
    random = curve("random", sizes, rand_seeds, rows[2:], has_test)
    spread = None
    if probe_seeds > 0:
        spread = seed_spread(task, probe, [random_state + s for s in range(probe_seeds)], progress)
    return ControlsResult(sizes=sizes, top=top, random=random, bottom=bottom, probe_seeds=spread)
