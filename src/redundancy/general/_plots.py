"""Figures of the general-redundancy stage (matplotlib, Agg; no global pyplot state)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._result import GeneralResult

FIGURES = {
    "cka": "cka.png",
    "threshold": "redundancy_vs_threshold.png",
    "layers": "redundancy_per_layer.png",
    "spans": "cluster_span.png",
}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _title(result: GeneralResult) -> str:
    return f"{result.model} · {result.task}/{result.split} · {result.n_items:,} items"


def _cka_panel(fig, ax, m: np.ndarray, title: str, annotate: bool, low=None, high=None) -> None:
    n = m.shape[0]
    im = ax.imshow(np.ma.masked_invalid(m), vmin=0.0, vmax=1.0, cmap="viridis", origin="lower")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("layer")
    ax.set_ylabel("layer")
    ticks = np.arange(n) if n <= 16 else np.linspace(0, n - 1, 9).round().astype(int)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    if annotate:
        for a in range(n):
            for b in range(n):
                v = m[a, b]
                text = "–" if not math.isfinite(v) else f"{v:.2f}"
                if low is not None and a != b and math.isfinite(low[a, b]) and math.isfinite(high[a, b]):
                    text += f"\n±{(high[a, b] - low[a, b]) / 2:.3f}"  # half-width of the interval
                ax.text(
                    b,
                    a,
                    text,
                    ha="center",
                    va="center",
                    fontsize=6 if low is not None else 7,
                    color="black" if math.isfinite(v) and v > 0.6 else "white",
                )
    fig.colorbar(im, ax=ax, shrink=0.8)


def plot_cka(result: GeneralResult, path: Path) -> None:
    """Heat maps of linear and debiased CKA side by side, values written in the cells when few layers
    (with the half-width of their jackknife interval when there is one); one more row of heat maps
    per null model (``result.nulls``), on the same colour scale."""
    n = result.n_layers
    rows = [("", result.cka, result.intervals), *((f"{x.kind} null: ", x.cka, None) for x in result.nulls)]
    fig = _figure(4.0 + 0.9 * n, (2.6 + 0.4 * n) * len(rows))
    axes = np.atleast_2d(fig.subplots(len(rows), 2))
    annotate = n <= 16
    for (prefix, cka, intervals), row in zip(rows, axes, strict=True):
        for ax, variant in zip(row, ("linear", "debiased"), strict=True):
            low, high = (None, None) if intervals is None else intervals.cka(variant)
            _cka_panel(fig, ax, cka.as_array(variant), f"{prefix}{variant} CKA", annotate, low, high)
    fig.suptitle(_title(result), fontsize=9)
    fig.savefig(path, dpi=120)


def plot_threshold(result: GeneralResult, path: Path) -> None:
    """Redundant share vs distance threshold, the report threshold marked, its interval as a band
    (``result.intervals``); one curve per null model (``result.nulls``) on the same axes."""
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    ts = np.array(result.thresholds)
    share = np.array([p.redundant_share for p in result.sweep])
    (line,) = ax.plot(ts, 100 * share, marker="o", ms=3, label=result.model)
    iv = result.intervals
    if iv is not None:
        ax.fill_between(
            ts,
            100 * np.array(iv.share_low),
            100 * np.array(iv.share_high),
            color=line.get_color(),
            alpha=0.25,
            label=f"{100 * iv.level:g} % interval (jackknife, {iv.n_groups} sentence groups)",
        )
    for null in result.nulls:
        nts = np.array([q.threshold for q in null.sweep])
        nshare = np.array([q.redundant_share for q in null.sweep])
        ax.plot(nts, 100 * nshare, marker=".", ms=3, ls="--", label=f"null: {null.kind}")
    if result.nulls or iv is not None:
        ax.legend(fontsize=7, loc="upper left")
    p = result.at()
    ax.axvline(p.threshold, color="grey", ls=":", lw=1)
    y = 100 * p.redundant_share
    ax.annotate(
        f"t = {p.threshold:g}: {y:.1f}%",
        (p.threshold, y),
        textcoords="offset points",
        xytext=(8, -12),
        fontsize=8,
    )
    ax.set_xlabel("distance threshold t (1 − |r|)")
    ax.set_ylabel("redundant neurons (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.set_title(_title(result), fontsize=9)
    fig.savefig(path, dpi=120)


def _some_thresholds(result: GeneralResult, preferred: tuple[float, ...], k: int) -> list[float]:
    """The ``preferred`` thresholds in the sweep (else ``k`` spread ones), plus the report threshold."""
    present = [t for t in result.thresholds if any(math.isclose(t, q, abs_tol=1e-9) for q in preferred)]
    if not present:
        ts = [t for t in result.thresholds if 0 < t < 1] or list(result.thresholds)
        idx = np.unique(np.linspace(0, len(ts) - 1, min(k, len(ts))).round().astype(int))
        present = [ts[i] for i in idx]
    return sorted(set(present) | {result.report_threshold})


def plot_layers(result: GeneralResult, path: Path) -> None:
    """Redundant share per layer, one line per threshold (a few of the sweep's, the report one bold)."""
    fig = _figure(6.5, 4.0)
    ax = fig.subplots()
    layers = np.arange(result.n_layers)
    for t in _some_thresholds(result, (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9), 6):
        p = result.at(t)
        bold = math.isclose(t, result.report_threshold, abs_tol=1e-9)
        ax.plot(
            layers,
            100 * np.array(p.redundant_share_by_layer),
            marker="o",
            ms=3,
            lw=2.2 if bold else 1.0,
            label=f"t = {t:g}" + (" (report)" if bold else ""),
        )
    ax.set_xlabel("layer")
    ax.set_ylabel("redundant neurons in layer (%)")
    ax.set_xticks(layers if result.n_layers <= 16 else np.linspace(0, result.n_layers - 1, 9).round())
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2)
    ax.set_title(_title(result) + f" · kept: {result.representative} member", fontsize=9)
    fig.savefig(path, dpi=120)


def plot_spans(result: GeneralResult, path: Path) -> None:
    """Histogram of cluster layer spans (every cluster, singletons included) at a few thresholds."""
    fig = _figure(6.5, 4.0)
    ax = fig.subplots()
    ts = _some_thresholds(result, (0.1, 0.3, 0.5, 0.7), 4)
    width = 0.8 / len(ts)
    spans = np.arange(1, result.n_layers + 1)
    for i, t in enumerate(ts):
        hist = np.array(result.at(t).span_histogram, dtype=float)
        ax.bar(spans + (i - (len(ts) - 1) / 2) * width, hist, width=width, label=f"t = {t:g}")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("layers spanned by a cluster (max layer − min layer + 1)")
    ax.set_ylabel("clusters")
    ax.set_xticks(spans if result.n_layers <= 16 else np.linspace(1, result.n_layers, 9).round())
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    ax.set_title(_title(result), fontsize=9)
    fig.savefig(path, dpi=120)


def write_figures(result: GeneralResult, out_dir: Path) -> tuple[str, ...]:
    """Write every figure into ``out_dir``; return the file names."""
    out_dir = Path(out_dir)
    plot_cka(result, out_dir / FIGURES["cka"])
    plot_threshold(result, out_dir / FIGURES["threshold"])
    plot_layers(result, out_dir / FIGURES["layers"])
    plot_spans(result, out_dir / FIGURES["spans"])
    return tuple(FIGURES.values())
