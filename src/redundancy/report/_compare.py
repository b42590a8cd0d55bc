"""Fine-tuned vs pretrained: tasks analysed twice, with the model fine-tuned on the task (section ``X``)
and with the pretrained model (section ``X.pretrained``), compared side by side.

The numbers come from the same places as the summary's (:func:`task_summary`, hence the same pipeline
row, :func:`headline_row`), plus the linear CKA of the general result.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._serial import json_ready
from ..general import GeneralResult
from ._blocks import NOT_RUN, Block, Heading, Paragraph, Table, missing, num, score, share
from ._figures import _figure
from ._inputs import Report, TaskSection
from ._sections import FigureMaker
from ._summary import task_summary

PRETRAINED_SUFFIX = ".pretrained"
"""A section named ``X.pretrained`` holds task ``X`` analysed with the pretrained model."""

FINE_TUNED, PRETRAINED = "fine-tuned", "pretrained"
VARIANTS = (PRETRAINED, FINE_TUNED)
"""The order of the rows of one task: before fine-tuning, then after."""

COMPARISON_ANCHOR = "comparison"


def comparison_pairs(report: Report) -> tuple[tuple[str, TaskSection, TaskSection], ...]:
    """``(task, fine-tuned section, pretrained section)`` for every task ``X`` whose sections ``X`` and
    ``X.pretrained`` are both in the report, in the report's order of ``X``."""
    by_name = {s.task: s for s in report.sections}
    out = []
    for sec in report.sections:
        if sec.task.endswith(PRETRAINED_SUFFIX):
            continue
        pre = by_name.get(sec.task + PRETRAINED_SUFFIX)
        if pre is not None:
            out.append((sec.task, sec, pre))
    return tuple(out)


def _cka_numbers(g: GeneralResult | None) -> tuple[float | None, float | None]:
    """Mean linear CKA of adjacent layers (``l``, ``l + 1``; NaN pairs skipped) and linear CKA of the
    first layer (0 = embeddings) with the last; None where undefined."""
    if g is None or g.cka.n_layers < 2:
        return None, None
    m = g.cka.as_array("linear")
    adjacent = np.array([m[i, i + 1] for i in range(len(m) - 1)], dtype=float)
    adjacent = adjacent[~np.isnan(adjacent)]
    mean = float(adjacent.mean()) if adjacent.size else None
    first_last = float(m[0, -1])
    return mean, None if math.isnan(first_last) else first_last


def comparison_row(task: str, variant: str, section: TaskSection) -> dict[str, Any]:
    """One row of the comparison: ``section`` (task ``task``, ``variant`` fine-tuned or pretrained).

    Keys: ``task``, ``variant``, ``section`` (the report section's name), ``model`` (the pretrained
    model, also for the fine-tuned variant), ``analysed_model`` (the model folder analysed), ``metric``,
    ``stages`` (which stages ran), ``cka_adjacent_mean``, ``cka_first_last`` (linear CKA),
    ``report_threshold``, ``redundant_share``, ``oracle_dev``, ``oracle_test``, the summary's pipeline
    row (``pipeline_setting``: its δ pair and t; ``selected_layer``, ``n_selected``, ``share_of_all``,
    ``pipeline_test``, ``share_of_oracle``), ``minimal_set_k`` and ``minimal_set_share``. None where
    the stage did not run (or the number is undefined).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    s = task_summary(section)
    g, o, m, r = (s.get(k) for k in ("general", "oracle", "minimal_set", "pipeline"))
    adjacent, first_last = _cka_numbers(section.general)
    row: dict[str, Any] = {
        "task": task,
        "variant": variant,
        "section": section.task,
        "model": section.base_model,
        "analysed_model": section.model,
        "metric": s.get("metric"),
        "stages": dict(s["stages"]),
        "cka_adjacent_mean": adjacent,
        "cka_first_last": first_last,
        "report_threshold": None if g is None else g["report_threshold"],
        "redundant_share": None if g is None else g["redundant_share"],
        "oracle_dev": None if o is None else o["dev"],
        "oracle_test": None if o is None else o["test"],
        "pipeline_setting": None
        if r is None
        else {k: r[k] for k in ("delta_layer", "delta_neuron", "threshold", "chosen_by")},
        "selected_layer": None if r is None else r["selected_layer"],
        "n_selected": None if r is None else r["n_selected"],
        "share_of_all": None if r is None else r["share_of_all"],
        "pipeline_test": None if r is None else r["test"],
        "share_of_oracle": None if r is None else r["share_of_oracle"],
        "minimal_set_k": None if m is None else m["k"],
        "minimal_set_share": None if m is None else m["share"],
    }
    return json_ready(row)


def comparison_rows(report: Report) -> list[dict[str, Any]]:
    """``results.json``'s ``comparison``: per task with both variants, a pretrained row then a
    fine-tuned row (:func:`comparison_row`); empty when no task has both."""
    rows = []
    for task, fine, pre in comparison_pairs(report):
        rows.append(comparison_row(task, PRETRAINED, pre))
        rows.append(comparison_row(task, FINE_TUNED, fine))
    return rows


def _join(clauses: list[str]) -> str:
    return clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]


def _change(what: str, before: float, after: float, shown_before: str, shown_after: str) -> str:
    """``raised / lowered WHAT from A to B``, or ``left WHAT at A`` when the shown values agree."""
    if shown_before == shown_after:
        return f"left {what} at {shown_before}"
    return f"{'raised' if after > before else 'lowered'} {what} from {shown_before} to {shown_after}"


def comparison_sentence(pretrained: dict[str, Any], fine_tuned: dict[str, Any]) -> str:
    """One sentence on how fine-tuning changed a task's redundant share, selected layer and neurons kept
    (two rows of :func:`comparison_rows`), e.g. "On sst2, fine-tuning raised the redundant share at
    t = 0.3 from 41.2% to 55.0% and lowered the selected layer from 4 to 2." Directions follow the
    values as shown (a change hidden by rounding reads "left ... at"); a quantity missing on either side
    is left out."""
    task = fine_tuned.get("task") or pretrained.get("task")
    a, b = pretrained, fine_tuned
    clauses = []
    if not missing(a.get("redundant_share")) and not missing(b.get("redundant_share")):
        ta, tb = a.get("report_threshold"), b.get("report_threshold")
        if ta is not None and tb is not None and math.isclose(ta, tb, abs_tol=1e-9):
            what, sa, sb = f"the redundant share at t = {ta:g}", "", ""
        else:
            what = "the redundant share"
            sa = "" if ta is None else f" (t = {ta:g})"
            sb = "" if tb is None else f" (t = {tb:g})"
        ra, rb = a["redundant_share"], b["redundant_share"]
        clauses.append(_change(what, ra, rb, f"{share(ra)}%{sa}", f"{share(rb)}%{sb}"))
    if a.get("selected_layer") is not None and b.get("selected_layer") is not None:
        la, lb = a["selected_layer"], b["selected_layer"]
        clauses.append(_change("the selected layer", la, lb, str(la), str(lb)))
    if a.get("n_selected") is not None and b.get("n_selected") is not None:
        na, nb = a["n_selected"], b["n_selected"]
        clauses.append(_change("the neurons the pipeline keeps", na, nb, num(na), num(nb)))
    if not clauses:
        return (
            f"On {task}, no redundant share, selected layer or neuron count was measured for both the "
            "pretrained and the fine-tuned model."
        )
    return f"On {task}, fine-tuning {_join(clauses)}."


def _threshold_label(rows: list[dict[str, Any]]) -> str:
    ts = {r["report_threshold"] for r in rows if r.get("report_threshold") is not None}
    return f"t = {next(iter(ts)):g}" if len(ts) == 1 else "the report threshold"


def comparison_table(rows: list[dict[str, Any]]) -> Table:
    """The comparison as a table: one line per (task, variant); "not run" where a stage did not run."""

    def cell(r: dict[str, Any], stage: str, text: str) -> str:
        return text if r["stages"].get(stage) else NOT_RUN

    def cka(x: float | None) -> str:
        return "–" if missing(x) else f"{x:.3f}"

    lines = []
    for r in rows:
        oracle_ran = r["stages"].get("pipeline") or r["stages"].get("probe")
        k = r["minimal_set_k"]
        ms = "–" if k is None else f"{num(k)} ({share(r['minimal_set_share'])}%)"
        lines.append(
            (
                r["task"] + (f" ({r['metric']})" if r.get("metric") else ""),
                r["variant"],
                r["model"] or "–",
                cell(r, "general", cka(r["cka_adjacent_mean"])),
                cell(r, "general", cka(r["cka_first_last"])),
                cell(r, "general", share(r["redundant_share"])),
                score(r["oracle_dev"]) if oracle_ran else NOT_RUN,
                score(r["oracle_test"]) if oracle_ran else NOT_RUN,
                cell(r, "pipeline", "–" if r["selected_layer"] is None else str(r["selected_layer"])),
                cell(r, "pipeline", num(r["n_selected"])),
                cell(r, "pipeline", "–" if missing(r["share_of_all"]) else f"{100 * r['share_of_all']:.2f}"),
                cell(r, "pipeline", score(r["share_of_oracle"])),
                cell(r, "probe", ms),
            )
        )
    return Table(
        header=(
            "task",
            "variant",
            "pretrained model",
            "mean CKA, adjacent layers",
            "CKA(first, last layer)",
            f"redundant % ({_threshold_label(rows)})",
            "oracle dev",
            "oracle test",
            "selected layer",
            "neurons kept",
            "% of all",
            "% of oracle",
            "minimal set",
        ),
        rows=tuple(lines),
        caption="Each task with the pretrained model (section X.pretrained) and the model fine-tuned on it "
        "(section X): linear CKA between adjacent layers (mean) and between the first (embeddings) and "
        "last layer, the redundant share of all neurons, the oracle probe, the pipeline row the summary "
        "quotes (selected layer, neurons kept, % of all neurons, test score as % of the oracle's) and the "
        "minimal neuron set. Scores in %.",
    )


def plot_comparison(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Per task, pretrained beside fine-tuned: the redundant share at the report threshold (left) and
    the share of all neurons the pipeline keeps (right), as grouped bars labelled with their values.

    Why: the direction and size of fine-tuning's effect on redundancy and on the transfer pipeline, for
    every task at once. A missing value is marked "not run".
    """
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    by = {(r["task"], r["variant"]): r for r in rows}
    fig = _figure(max(7.0, 2.6 + 1.5 * len(tasks)), 3.6)
    axes = fig.subplots(1, 2)
    panels = (
        ("redundant_share", f"redundant neurons at {_threshold_label(rows)} (% of all)"),
        ("share_of_all", "neurons kept by the pipeline (% of all)"),
    )
    x = np.arange(len(tasks))
    width = 0.38
    colors = {PRETRAINED: "0.6", FINE_TUNED: "C0"}
    for ax, (key, label) in zip(axes, panels, strict=True):
        top = 0.0
        for i, variant in enumerate(VARIANTS):
            xs = x + (i - 0.5) * width
            values = [by.get((t, variant), {}).get(key) for t in tasks]
            heights = [0.0 if missing(v) else 100 * v for v in values]
            top = max(top, *heights)
            bars = ax.bar(xs, heights, width, color=colors[variant], label=variant)
            digits = 1 if key == "redundant_share" else 2
            for bar, v in zip(bars, values, strict=True):
                text = NOT_RUN if missing(v) else f"{100 * v:.{digits}f}"
                ax.annotate(
                    text,
                    xy=(bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    rotation=90 if missing(v) else 0,
                )
        ax.set_ylim(0, max(top, 1.0) * 1.25)
        ax.set_xlim(-0.9, len(tasks) - 0.1)  # one task: bars of the usual width, not the whole panel
        ax.set_xticks(x, tasks, fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Fine-tuned vs pretrained", fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def comparison_blocks(report: Report, fig: FigureMaker) -> list[Block]:
    """The "Fine-tuned vs pretrained" section (heading, table, one sentence per task, figure); empty
    when no task has both a fine-tuned section ``X`` and a pretrained one ``X.pretrained``."""
    rows = comparison_rows(report)
    if not rows:
        return []
    blocks: list[Block] = [
        Heading(2, "Fine-tuned vs pretrained", COMPARISON_ANCHOR),
        Paragraph(
            "Tasks analysed twice: with the model fine-tuned on the task (section X) and with the "
            "pretrained model (section X.pretrained). Both are reported in full in their own sections "
            "below; here side by side."
        ),
        comparison_table(rows),
    ]
    for i in range(0, len(rows), 2):
        blocks.append(Paragraph(comparison_sentence(rows[i], rows[i + 1])))
    blocks += fig(
        "comparison",
        "finetuned-pretrained",
        plot_comparison,
        rows,
        "Redundant share and neurons kept by the pipeline, pretrained beside fine-tuned, per task",
        "Per task, pretrained (grey) beside fine-tuned (blue): the redundant share of all neurons (left) "
        "and the share of all neurons the pipeline keeps (right).",
        wide=True,
    )
    return blocks
