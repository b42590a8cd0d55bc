"""Figures of a :class:`TaskRedundancyResult` (matplotlib's object API: no pyplot, no global state)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._results import TaskRedundancyResult


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _split(result: TaskRedundancyResult) -> str:
    return "test" if result.test is not None else "dev"


def _band(ax, xs, probes, color) -> None:
    """The probes' test intervals as a band (nothing where a probe has none)."""
    ivs = [r.test_interval for r in probes]
    if not ivs or any(iv is None for iv in ivs):
        return
    ax.fill_between(xs, [iv.low for iv in ivs], [iv.high for iv in ivs], color=color, alpha=0.2, lw=0)


def plot_layers(result: TaskRedundancyResult, path: str | os.PathLike) -> Path:
    """Layer-wise and incremental scores per layer, with the oracle and the tolerance line; their
    test intervals as bands; with a selectivity result, a second panel beside it: each probe's
    accuracy on the task and on the word-type control task, and their difference."""
    sel = result.selectivity
    fig = _figure(11.0 if sel is not None else 6.4, 4.0)
    axes = fig.subplots(1, 2 if sel is not None else 1, squeeze=False)[0]
    ax = axes[0]
    layers = np.arange(result.n_layers)
    split = _split(result)
    pick = (lambda r: r.test_score) if split == "test" else (lambda r: r.dev_score)
    for probes, style, label in (
        (result.layerwise, "o-", "one layer"),
        (result.incremental, "s-", "layers 0..l"),
    ):
        (line,) = ax.plot(layers, [pick(r) for r in probes], style, label=label)
        if split == "test":
            _band(ax, layers, probes, line.get_color())
    ax.axhline(pick(result.oracle), color="k", ls="--", lw=1, label=f"oracle ({result.n_neurons} neurons)")
    ax.set_xticks(layers)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"{split} {result.metric}" + (" (bands: bootstrap intervals)" if split == "test" else ""))
    ax.set_title(f"{result.task} / {result.model}: probes per layer ({result.solver} solver)", fontsize=9)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    if sel is not None:
        _plot_selectivity(axes[1], result)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _plot_selectivity(ax, result: TaskRedundancyResult) -> None:
    sel = result.selectivity
    rows = {r.name: r for r in sel.rows}
    layers = np.arange(result.n_layers)
    for probes, style, label in (
        (result.layerwise, "o", "one layer"),
        (result.incremental, "s", "layers 0..l"),
    ):
        got = [rows.get(r.name) for r in probes]
        if not got or any(r is None for r in got):
            continue
        (line,) = ax.plot(layers, [r.task_accuracy for r in got], f"{style}-", label=f"{label}: task")
        ax.plot(
            layers,
            [r.control_accuracy for r in got],
            f"{style}:",
            color=line.get_color(),
            label=f"{label}: control",
        )
        ax.bar(
            layers + (-0.2 if style == "o" else 0.2),
            [r.selectivity for r in got],
            width=0.35,
            color=line.get_color(),
            alpha=0.3,
            label=f"{label}: selectivity",
        )
    ax.set_xticks(layers)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"{sel.split} accuracy / selectivity")
    ax.set_title("selectivity: task − word-type control task (Hewitt & Liang)", fontsize=9)
    ax.legend(loc="best", fontsize="x-small", ncols=2)
    ax.grid(alpha=0.3)


def plot_sizes(result: TaskRedundancyResult, path: str | os.PathLike) -> Path:
    """Score against the number of neurons: top-ranked, random (mean +- sd) and bottom-ranked,
    the minimal-set search, the oracle and the minimal set."""
    fig = _figure()
    ax = fig.add_subplot()
    split = _split(result)
    c = result.controls
    if c is not None:
        ks = np.array(c.sizes)
        for curve, style in ((c.top, "o-"), (c.random, "s-"), (c.bottom, "v-")):
            mean = np.array(curve.test_mean if split == "test" else curve.dev_mean, dtype=float)
            sd = np.array(curve.test_sd if split == "test" else curve.dev_sd, dtype=float)
            label = {
                "top": "top-ranked",
                "bottom": "bottom-ranked",
                "random": f"random ({len(curve.seeds)} draws, mean \u00b1 sd)",
            }[curve.kind]
            (line,) = ax.plot(ks, mean, style, label=label, ms=4)
            if curve.kind == "random" and len(curve.seeds) > 1:
                ax.fill_between(ks, mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
    m = result.minimal
    if m.evaluated:
        ks = [r.n_neurons for r in m.evaluated]
        ys = [r.test_score if split == "test" else r.dev_score for r in m.evaluated]
        ax.plot(ks, ys, ".", color="gray", ms=3, label="minimal-set search")
    ax.axvline(m.k, color="C3", ls=":", lw=1, label=f"minimal set: {m.k} ({100 * m.share:.1f}%)")
    return _finish_sizes(fig, ax, result, split, f"{result.task} / {result.model}: score vs neurons", path)


def _finish_sizes(fig, ax, result: TaskRedundancyResult, split: str, title: str, path) -> Path:
    """The oracle line, the log k axis, labels, legend and grid of a score-vs-k figure; saved."""
    oracle = result.oracle.test_score if split == "test" else result.oracle.dev_score
    ax.axhline(oracle, color="k", ls="--", lw=1, label="oracle")
    ax.set_xscale("log")
    ax.set_xlabel("neurons kept (k)")
    ax.set_ylabel(f"{split} {result.metric}")
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def plot_rankings(result: TaskRedundancyResult, path: str | os.PathLike) -> Path:
    """Every ranking judged by the controls: its top-k (solid) and bottom-k (dotted) curves against
    the number of neurons, over a band of the random draws (mean +- sd); the chosen one marked."""
    fig = _figure(6.8, 4.2)
    ax = fig.add_subplot()
    split = _split(result)
    c = result.controls
    if c is not None:
        rnd = c.random
        ks = np.array(rnd.sizes)
        mean = np.array(rnd.test_mean if split == "test" else rnd.dev_mean, dtype=float)
        sd = np.array(rnd.test_sd if split == "test" else rnd.dev_sd, dtype=float)
        ax.plot(ks, mean, color="gray", lw=1, label=f"random ({len(rnd.seeds)} draws, mean \u00b1 sd)")
        ax.fill_between(ks, mean - sd, mean + sd, color="gray", alpha=0.25)
        for i, rc in enumerate(c.rankings):
            color = f"C{i}"
            chosen = rc.method == result.ranking_method
            for curve, style in ((rc.top, "o-"), (rc.bottom, "v:")):
                if curve is None:
                    continue
                ys = curve.test_mean if split == "test" else curve.dev_mean
                label = f"{rc.method}{' (chosen)' if chosen else ''}" if curve.kind == "top" else None
                ax.plot(curve.sizes, ys, style, color=color, ms=3, lw=2 if chosen else 1, label=label)
    title = f"{result.task} / {result.model}: rankings, top-k (solid) and bottom-k (dotted)"
    return _finish_sizes(fig, ax, result, split, title, path)


def plot_sweep(result: TaskRedundancyResult, path: str | os.PathLike) -> Path:
    """The general sweep with task accuracy, on two axes against the threshold: the redundant share
    (left) and the test score of the probe on the representatives as a share of the oracle's (right,
    with its bootstrap band); the largest share within 1 % of the oracle (on dev) marked."""
    sw = result.sweep
    if sw is None:
        raise ValueError("the result has no sweep (probe stage run without [probe] sweep_thresholds)")
    fig = _figure(6.8, 4.2)
    ax = fig.add_subplot()
    ts = np.array([r.threshold for r in sw.rows])
    ax.plot(ts, [100 * r.redundant_share for r in sw.rows], "o-", color="C0", label="redundant neurons")
    ax.set_xlabel("clustering threshold t (1 − |r|)")
    ax.set_ylabel("redundant neurons (%)", color="C0")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    right = ax.twinx()
    share = np.array([np.nan if r.share_of_oracle is None else 100 * r.share_of_oracle for r in sw.rows])
    right.plot(ts, share, "s-", color="C3", label=f"test {result.metric}, % of the oracle")
    ivs = [r.share_interval for r in sw.rows]
    if ivs and all(iv is not None for iv in ivs):
        right.fill_between(
            ts, [100 * iv.low for iv in ivs], [100 * iv.high for iv in ivs], color="C3", alpha=0.2
        )
    right.axhline(99, color="C3", ls=":", lw=1)
    right.set_ylabel(f"test {result.metric}, % of the oracle's", color="C3")
    best = sw.largest_within(1.0)
    if best is not None:
        ax.axvline(best.threshold, color="grey", ls="--", lw=1)
        ax.annotate(
            f"within 1 %: t = {best.threshold:g}, {100 * best.redundant_share:.1f}% redundant",
            (best.threshold, 100 * best.redundant_share),
            textcoords="offset points",
            xytext=(-6, 8),
            ha="right",
            fontsize=8,
        )
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left", fontsize="small")
    ax.set_title(
        f"{result.task} / {result.model}: redundant without loss? (probes on the representatives)", fontsize=9
    )
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
