"""Rankings judged by the controls: top-k vs random-k vs bottom-k probes for every ranking, the
choice of the best ranking on dev, and the offline ablation of each ranking's top columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._progress import Progress
from ._estimator import ElasticNetProbe
from ._evaluate import probe_result
from ._experiments import curve, mean_dev, random_orders, scores_curve, seed_spread, train_curves
from ._rankings import ablated_scores
from ._results import ControlsResult, CurveResult, MinimalSetResult, ProbeResult, RankingControls
from ._task import ProbeTask


def top_curves(
    task: ProbeTask,
    probe: ElasticNetProbe,
    orders: Mapping[str, np.ndarray],
    sizes: Sequence[int],
    progress: Progress | None,
) -> dict[str, list[ProbeResult]]:
    """Probes on each ranking's first k neurons for every k of ``sizes`` (all rankings one family)."""
    sizes = list(sizes)
    curves = [(o, sizes, [f"top[{m}]-{k}" for k in sizes]) for m, o in orders.items()]
    rows = train_curves(task, probe, curves, stage="controls: top-k", progress=progress)
    return dict(zip(orders, rows, strict=True))


def choose_ranking(setting: str, tops: Mapping[str, list[ProbeResult]]) -> tuple[str, dict]:
    """The ranking to use and why: ``setting`` itself, or for ``"auto"`` the ranking whose top-k
    probes have the highest mean dev score over the sizes (test plays no part)."""
    scores = {m: mean_dev(rows) for m, rows in tops.items()}
    if setting != "auto":
        reason = f"ranking = {setting!r} was asked for"
        return setting, {"setting": setting, "method": setting, "reason": reason, "scores": scores}
    best = max(scores, key=lambda m: (scores[m], -list(scores).index(m)))
    sizes = [r.n_neurons for r in next(iter(tops.values()))]
    others = ", ".join(f"{m} {100 * v:.1f}" for m, v in scores.items() if m != best)
    reason = (
        f"auto: {best} has the best mean dev score of its top-k probes over k = "
        f"{', '.join(map(str, sizes))} ({100 * scores[best]:.1f}; {others})"
    )
    return best, {"setting": "auto", "method": best, "reason": reason, "scores": scores}


def _ablation_curve(
    task: ProbeTask, oracle: ElasticNetProbe, orders: Sequence[np.ndarray], sizes, seeds, mode: str, kind: str
) -> CurveResult:
    """The oracle's scores with each order's first k columns ablated (one row per order)."""
    has_test = task.test is not None
    dev = [ablated_scores(task, oracle, [o[:k] for k in sizes], "dev", mode=mode) for o in orders]
    test = (
        [ablated_scores(task, oracle, [o[:k] for k in sizes], "test", mode=mode) for o in orders]
        if has_test
        else None
    )
    return scores_curve(kind, sizes, seeds, dev, test)


def ranking_controls(
    task: ProbeTask,
    probe: ElasticNetProbe,
    oracle: ElasticNetProbe,
    orders: Mapping[str, np.ndarray],
    tops: Mapping[str, list[ProbeResult]],
    sizes: Sequence[int],
    chosen: str,
    minimal: MinimalSetResult,
    *,
    n_random: int = 5,
    probe_seeds: int = 3,
    random_state: int = 0,
    ablation_sizes: Sequence[int] = (),
    ablation_mode: str = "mean",
    seconds: Mapping[str, float] | None = None,
    progress: Progress | None = None,
) -> ControlsResult:
    """The controls of every ranking: its top-k (``tops``, trained for the choice) and bottom-k probes
    at ``sizes``; ``n_random`` random draws (nested prefixes of one permutation per seed
    ``random_state + 1000 + r``) shared by all; the chosen ranking's curves also at the minimal set's
    k; the oracle over ``probe_seeds`` seeds; and each ranking's top columns ablated offline in the
    oracle probe beside random columns."""
    has_test = task.test is not None
    seed = [probe.random_state]
    sizes = tuple(sorted({int(k) for k in sizes}))
    all_sizes = tuple(sorted(set(sizes) | ({minimal.k} if minimal.found else set())))
    extra = [k for k in all_sizes if k not in sizes]
    rand_seeds, perms = random_orders(task.n_neurons, n_random, random_state)
    bottoms = {m: all_sizes if m == chosen else sizes for m in orders}
    # the random draws and every ranking's bottom curve: one family (one pass over the data)
    curves = [
        (p, all_sizes, [f"random-s{s}-{k}" for k in all_sizes])
        for s, p in zip(rand_seeds, perms, strict=True)
    ]
    curves += [
        (o[::-1].copy(), bottoms[m], [f"bottom[{m}]-{k}" for k in bottoms[m]]) for m, o in orders.items()
    ]
    trained = train_curves(task, probe, curves, stage="controls: random and bottom", progress=progress)
    random = curve("random", all_sizes, rand_seeds, trained[:n_random], has_test)
    bottom_of = dict(zip(orders, trained[n_random:], strict=True))
    abl_sizes = tuple(sorted({int(k) for k in ablation_sizes if 1 <= k <= task.n_neurons}))
    per_ranking, chosen_top, chosen_bottom = [], None, None
    for m, order in orders.items():
        bottom_sizes = bottoms[m]
        bottom_rows = bottom_of[m]
        top_rows = list(tops[m])
        if m == chosen and extra:
            by_k = {r.n_neurons: r for r in top_rows} | {
                r.n_neurons: r for r in minimal.evaluated if r.n_neurons in extra
            }
            top_rows = [by_k[k] for k in all_sizes]
        top_c = curve("top", all_sizes if m == chosen else sizes, seed, [top_rows], has_test)
        bottom_c = curve("bottom", bottom_sizes, seed, [bottom_rows], has_test)
        abl = (
            _ablation_curve(task, oracle, [order], abl_sizes, seed, ablation_mode, "ablate-top")
            if abl_sizes
            else None
        )
        score = mean_dev(tops[m])
        per_ranking.append(
            RankingControls(m, top_c, bottom_c, score, abl, float((seconds or {}).get(m, 0.0)))
        )
        if m == chosen:
            chosen_top, chosen_bottom = top_c, bottom_c
    abl_random = (
        _ablation_curve(task, oracle, perms, abl_sizes, rand_seeds, ablation_mode, "ablate-random")
        if abl_sizes
        else None
    )
    spread = None
    if probe_seeds > 0:
        # the oracle of the layer family is the probe trained with seed random_state: reused
        everything = np.arange(task.n_neurons), "oracle", list(range(task.n_layers))
        known = {int(probe.random_state): probe_result(task, oracle, *everything)}
        spread = seed_spread(
            task, probe, [random_state + s for s in range(probe_seeds)], progress, known=known
        )
    intact = None
    if abl_sizes:
        intact = ablated_scores(task, oracle, [np.empty(0, dtype=np.int64)], "test" if has_test else "dev")[0]
    return ControlsResult(
        sizes=all_sizes,
        top=chosen_top,
        random=random,
        bottom=chosen_bottom,
        probe_seeds=spread,
        rankings=tuple(per_ranking),
        ablation_sizes=abl_sizes,
        ablation_mode=ablation_mode,
        ablation_random=abl_random,
        ablation_intact=intact,
    )
