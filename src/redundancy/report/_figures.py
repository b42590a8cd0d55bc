"""The report's figures: the stages' own plots rendered to PNG bytes, and the pipeline summary."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..pipeline import PipelineResult

logger = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure(width: float, height: float):
    """A matplotlib figure on the Agg canvas, outside pyplot (no global state to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _row_label(threshold: float | None, delta_layer: float, delta_neuron: float) -> str:
    t = "none" if threshold is None else f"{threshold:g}"
    return f"t = {t}, δ = ({delta_layer:g}, {delta_neuron:g})"


def plot_pipeline(result: PipelineResult, path: str | os.PathLike) -> Path:
    """Neurons kept by each pipeline row beside the oracle (log scale), with each row's share of all
    neurons and its test score as a share of the oracle's written at the right.

    Why: the pipeline table's two key columns (how few neurons, how much of the score) at a glance;
    the share of the oracle with its bootstrap interval when the row has one.
    Bars are coloured by clustering threshold; ``*`` marks rows where no layer or no size passed.
    """
    fig = _figure(8.0, 1.3 + 0.38 * (len(result.rows) + 1))
    ax = fig.subplots()
    labels = ["oracle (all layers)"]
    values = [result.n_neurons]
    notes = [f"{result.n_neurons:,} (100%) · test {_pct(result.oracle_test)}"]
    colors = ["0.55"]
    palette = {t: f"C{i}" for i, t in enumerate(result.thresholds)}
    for r in result.rows:
        star = "" if r.layer_passed and r.fs_passed else "*"
        labels.append(_row_label(r.threshold, r.delta_layer, r.delta_neuron) + f", layer {r.selected_layer}")
        values.append(max(r.n_selected, 1))
        iv = r.share_interval
        ci = "" if iv is None or math.isnan(iv.low) else f" [{_pct(iv.low)}, {_pct(iv.high)}]"
        notes.append(
            f"{r.n_selected:,}{star} ({100 * r.share_of_all:.1f}%) · test {_pct(r.test)}"
            f" = {_pct(r.share_of_oracle)}%{ci} of oracle"
        )
        colors.append(palette.get(r.threshold, "C0"))
    y = np.arange(len(values))[::-1]
    ax.barh(y, values, color=colors, height=0.7)
    ax.set_xscale("log")
    ax.set_xlim(0.8, result.n_neurons * 1.5)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("neurons kept (log scale)")
    for yi, note in zip(y, notes, strict=True):
        ax.annotate(
            note,
            xy=(1.0, yi),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(
        f"{result.task} / {result.model}: efficient-transfer pipeline (test {result.metric} in %)", fontsize=9
    )
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def render_png(plot: Callable[[Any, Path], Any], result: Any) -> bytes:
    """Run ``plot(result, path)`` into a temporary file and return the PNG's bytes."""
    with tempfile.TemporaryDirectory(prefix="redundancy-report-") as tmp:
        path = Path(tmp) / "figure.png"
        plot(result, path)
        data = path.read_bytes()
    if not data.startswith(PNG_MAGIC):
        raise ValueError(f"{getattr(plot, '__name__', plot)} did not write a PNG")
    return data
