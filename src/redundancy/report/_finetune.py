"""Fine-tuning: for every task analysed with a model fine-tuned on it (``RUN/finetuned/{task}``), the
recipe, how long training took and the dev score after each epoch, from its ``finetune.json``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._serial import json_ready
from ._blocks import Block, Heading, Paragraph, Table, missing, num, short
from ._figures import _figure
from ._inputs import Report
from ._sections import FigureMaker

FINETUNE_ANCHOR = "finetune"

_RECIPE = ("lr", "max_epochs", "batch_size", "max_length", "seed", "warmup_steps", "weight_decay")


def _dev_curve(ft: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{epoch, step, score}]``: the dev score in the task's metric after each evaluation."""
    metric = ft.get("metric")
    out = []
    for d in ft.get("dev_scores") or ():
        scores = d.get("scores") or {}
        out.append({"epoch": d.get("epoch"), "step": d.get("step"), "score": scores.get(metric)})
    return out


def finetune_row(task: str, ft: dict[str, Any]) -> dict[str, Any]:
    """One fine-tuning run as a row: ``task``, ``model`` (the pretrained model), ``metric``,
    ``n_train`` / ``n_dev`` (items), ``max_train_examples``, ``recipe`` (lr, epochs, batch size, max
    length, seed, warm-up, weight decay), ``steps`` / ``total_steps``, ``finished``, ``train_seconds``,
    ``examples_per_s``, ``resumed_at`` (steps a resumed run restarted from), ``dev`` (the score after
    each evaluation, :func:`_dev_curve`) and ``dev_final``. None where ``finetune.json`` lacks it."""
    config = ft.get("config") or {}
    dev = _dev_curve(ft)
    return json_ready(
        {
            "task": task,
            "model": ft.get("model"),
            "metric": ft.get("metric"),
            "label_type": ft.get("label_type"),
            "n_train": (ft.get("train") or {}).get("n_items"),
            "n_dev": (ft.get("dev") or {}).get("n_items"),
            "max_train_examples": config.get("max_train_examples"),
            "recipe": {k: config.get(k) for k in _RECIPE},
            "steps": ft.get("steps"),
            "total_steps": ft.get("total_steps"),
            "finished": ft.get("finished"),
            "train_seconds": ft.get("train_seconds"),
            "examples_per_s": ft.get("examples_per_s"),
            "resumed_at": list(ft.get("resumed_at") or ()),
            "dev": dev,
            "dev_final": dev[-1]["score"] if dev else None,
        }
    )


def finetune_rows(report: Report) -> list[dict[str, Any]]:
    """``results.json``'s ``finetune``: a row (:func:`finetune_row`) per section holding a fine-tuning
    record, in the report's order; empty when nothing was fine-tuned."""
    return [finetune_row(s.task, s.finetune) for s in report.sections if s.finetune is not None]


def _minutes(seconds: float | None) -> str:
    if missing(seconds):
        return "–"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _whole(epoch: Any) -> bool:
    return isinstance(epoch, int | float) and abs(epoch - round(epoch)) < 1e-6 and round(epoch) >= 1


def _dev_text(row: dict[str, Any]) -> str:
    """The dev score in % at the end of each epoch (``63.10 / 70.20 / 71.00`` for epochs 1, 2, 3) and at
    the last evaluation; evaluations made when a capped run stopped mid-epoch (and was resumed) are
    left out but for the last. Epochs are written out (``1: 63.10 · 1.5: 64.00``) unless they are
    exactly 1, 2, ..."""
    dev = row["dev"]
    kept = [d for i, d in enumerate(dev) if _whole(d["epoch"]) or i == len(dev) - 1]
    if not kept:
        return "–"

    def pct(v: Any) -> str:
        return "–" if missing(v) else f"{100 * v:.2f}"

    if all(_whole(d["epoch"]) and round(d["epoch"]) == i for i, d in enumerate(kept, 1)):
        return " / ".join(pct(d["score"]) for d in kept)
    return " · ".join(f"{short(round(d['epoch'], 2))}: {pct(d['score'])}" for d in kept)


def finetune_table(rows: list[dict[str, Any]]) -> Table:
    """One line per fine-tuned task: data, steps, time, throughput and the dev score per evaluation."""
    lines = []
    for r in rows:
        cap = r["max_train_examples"]
        train = num(r["n_train"]) + ("" if cap is None else f" (cap {num(cap)})")
        steps = num(r["steps"]) + ("" if r["finished"] else f" of {num(r['total_steps'])} (unfinished)")
        lines.append(
            (
                r["task"] + (f" ({r['metric']})" if r.get("metric") else ""),
                r["model"] or "–",
                train,
                num(r["n_dev"]),
                short(r["recipe"].get("max_epochs")),
                steps,
                _minutes(r["train_seconds"]),
                "–" if missing(r["examples_per_s"]) else f"{r['examples_per_s']:.1f}",
                _dev_text(r),
                ", ".join(num(s) for s in r["resumed_at"]) or "–",
            )
        )
    return Table(
        header=(
            "task (dev metric)",
            "pretrained model",
            "train items",
            "dev items",
            "epochs",
            "steps",
            "training time",
            "examples/s",
            "dev score after each epoch",
            "resumed at step",
        ),
        rows=tuple(lines),
        caption="Fine-tuning runs (redundancy.finetune): the training split's items (and the cap on them, "
        "if any), optimiser steps, training time without evaluation, throughput, and the dev score in % "
        "after each evaluation.",
    )


def plot_finetune(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """The dev score (in %, the task's metric) after each epoch, one line per fine-tuned task.

    Why: whether each run converged under the recipe (a score still rising at the last epoch, or one
    that fell, is worth knowing before reading its redundancy).
    """
    fig = _figure(6.0, 3.4)
    ax = fig.subplots()
    for r in rows:
        points = [(d["epoch"], 100 * d["score"]) for d in r["dev"] if not missing(d["score"])]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=f"{r['task']} ({r['metric']})")
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("dev score (%)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle("Fine-tuning: dev score per epoch", fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def finetune_blocks(report: Report, fig: FigureMaker) -> list[Block]:
    """The "Fine-tuning" section (heading, recipe, table, figure); empty when nothing was fine-tuned."""
    rows = finetune_rows(report)
    if not rows:
        return []
    recipes = {tuple(sorted(r["recipe"].items())) for r in rows}
    if len(recipes) == 1:
        rec = rows[0]["recipe"]
        recipe = (
            f"All runs share one recipe: AdamW, lr {short(rec['lr'])}, {short(rec['max_epochs'])} epochs, "
            f"batch {short(rec['batch_size'])}, max length {short(rec['max_length'])}, seed "
            f"{short(rec['seed'])}, {short(rec['warmup_steps'])} warm-up steps, weight decay "
            f"{short(rec['weight_decay'])}."
        )
    else:
        recipe = "The runs use different recipes; see each task's finetune.json in results.json."
    blocks: list[Block] = [
        Heading(2, "Fine-tuning", FINETUNE_ANCHOR),
        Paragraph(
            "The models analysed in sections X (not X.pretrained) are the pretrained model fine-tuned on "
            f"task X with a classification head (regression for STS-B). {recipe}"
        ),
        finetune_table(rows),
    ]
    blocks += fig(
        "finetune",
        "dev",
        plot_finetune,
        rows,
        "Dev score after each epoch of fine-tuning, per task",
        "Dev score (the task's metric, in %) after each epoch of fine-tuning, one line per task.",
    )
    return blocks
