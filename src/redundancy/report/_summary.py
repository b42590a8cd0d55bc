"""One task's headline numbers, and which pipeline row the summary quotes."""

from __future__ import annotations

import math
from typing import Any

from .._serial import json_ready
from ..pipeline import PipelineResult, PipelineRow
from ._blocks import NOT_RUN, Table, missing, num, score, share, size
from ._inputs import Report, TaskSection


def _threshold_matches(a: Any, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return math.isclose(float(a), b, abs_tol=1e-9)
    except (TypeError, ValueError):
        return False


def compact_row(pipeline: PipelineResult | None, compact: dict[str, Any] | None) -> PipelineRow | None:
    """The pipeline row the compact model was built from: the first whose ``delta_layer``,
    ``delta_neuron``, ``threshold`` and ``selected_layer`` agree with those ``compact`` gives (at least
    one must be given); None when no row does."""
    if pipeline is None or not compact:
        return None
    for r in pipeline.rows:
        checks = [
            ("delta_layer", lambda v, r=r: math.isclose(float(v), r.delta_layer)),
            ("delta_neuron", lambda v, r=r: math.isclose(float(v), r.delta_neuron)),
            ("threshold", lambda v, r=r: _threshold_matches(v, r.threshold)),
            ("selected_layer", lambda v, r=r: int(v) == r.selected_layer),
        ]
        present = [(k, ok) for k, ok in checks if k in compact]
        try:
            if present and all(ok(compact[k]) for k, ok in present):
                return r
        except (TypeError, ValueError):
            return None
    return None


def headline_row(
    pipeline: PipelineResult | None, compact: dict[str, Any] | None = None
) -> PipelineRow | None:
    """The pipeline row the summary quotes.

    The row the compact model was built from (:func:`compact_row`) when there is one; otherwise the
    row keeping the fewest neurons (ties: the higher dev score, then table order). Both choices use
    only what was selected on dev.
    """
    if pipeline is None or not pipeline.rows:
        return None
    row = compact_row(pipeline, compact)
    if row is not None:
        return row
    return min(
        enumerate(pipeline.rows),
        key=lambda ir: (ir[1].n_selected, -(ir[1].dev if not missing(ir[1].dev) else -1.0), ir[0]),
    )[1]


def _adjacent(g: Any) -> dict[str, Any]:
    """CKA of each pair of adjacent layers, biased and debiased side by side (with their jackknife
    intervals when the general stage computed them)."""
    lin, deb = g.cka.as_array("linear"), g.cka.as_array("debiased")
    out: dict[str, Any] = {
        "linear": [float(lin[i, i + 1]) for i in range(lin.shape[0] - 1)],
        "debiased": [float(deb[i, i + 1]) for i in range(deb.shape[0] - 1)],
        "estimator": "linear CKA (biased) and debiased linear CKA (unbiased HSIC), one float64 pass",
    }
    if getattr(g, "intervals", None) is not None:
        for variant in ("linear", "debiased"):
            out[f"{variant}_intervals"] = [
                _iv(g.cka_interval(i, i + 1, variant)) for i in range(lin.shape[0] - 1)
            ]
    return out


def _iv(interval: Any) -> dict[str, Any] | None:
    """An interval as ``results.json`` records it, its estimator named (a sentence bootstrap, or the
    general stage's jackknife over groups of sentences)."""
    if interval is None:
        return None
    what = (
        "delete-a-group jackknife over sentences, t interval"
        if interval.method == "jackknife"
        else f"sentence bootstrap, {interval.method} interval"
    )
    return {**interval.to_dict(), "estimator": what}


def task_summary(section: TaskSection) -> dict[str, Any]:
    """The headline numbers of one task (``results.json``'s ``summary``; the report's summary table)."""
    g, p, q, c = section.general, section.probe, section.pipeline, section.compact
    out: dict[str, Any] = {"task": section.task, "model": section.model}
    out.update(
        dict.fromkeys(("general", "oracle", "minimal_set", "sweep", "selectivity", "pipeline", "compact"))
    )
    out["metric"] = q.metric if q is not None else p.metric if p is not None else None
    out["stages"] = {
        "general": g is not None,
        "probe": p is not None,
        "pipeline": q is not None,
        "compact": c is not None,
    }
    if g is not None:
        point = g.at()
        out["general"] = {
            "report_threshold": g.report_threshold,
            "redundant_share": point.redundant_share,
            "redundant_share_interval": _iv(g.share_interval()),
            "n_clusters": point.n_clusters,
            "n_neurons": point.n_neurons,
            "estimator": "correlation clustering: Pearson (one float64 pass), 1 - |r|, average linkage",
            "cka_adjacent": _adjacent(g),
            "cka_items_per_feature": g.n_items / g.hidden,
            "cka_warning": g.estimator.get("cka_warning"),
            "nulls": {
                n.kind: {
                    "redundant_share": n.at(g.report_threshold).redundant_share,
                    "cka_adjacent": _adjacent(n),
                    "description": n.description,
                }
                for n in g.nulls
            },
        }
    if q is not None:
        out["oracle"] = {"dev": q.oracle_dev, "test": q.oracle_test, "n_neurons": q.n_neurons}
    elif p is not None:
        out["oracle"] = {"dev": p.oracle.dev_score, "test": p.oracle.test_score, "n_neurons": p.n_neurons}
    if out["oracle"] is not None:
        # the probe stage's oracle is the pipeline's (the same incremental probe on every layer)
        out["oracle"]["test_interval"] = _iv(None if p is None else p.oracle.test_interval)
    if p is not None:
        m = p.minimal
        out["minimal_set"] = {
            "k": m.k,
            "share": m.share,
            "found": m.found,
            "dev": m.result.dev_score,
            "test": m.result.test_score,
            "test_interval": _iv(m.result.test_interval),
            "ranking": m.ranking_method,
        }
        if p.sweep is not None:
            out["sweep"] = {
                "n_neurons": p.sweep.n_neurons,
                "selection": p.sweep.selection,
                "rows": [r.to_dict() for r in p.sweep.rows],
                **p.sweep.summary(),
            }
        if p.selectivity is not None:
            sel = p.selectivity
            out["selectivity"] = {
                "split": sel.split,
                "seed": sel.seed,
                "metric": "accuracy (task) - accuracy (word-type control task)",
                "probes": {
                    r.name: {
                        "task": r.task_accuracy,
                        "control": r.control_accuracy,
                        "selectivity": r.selectivity,
                    }
                    for r in sel.rows
                },
            }
    row = headline_row(q, c)
    if row is not None:
        out["pipeline"] = {
            "delta_layer": row.delta_layer,
            "delta_neuron": row.delta_neuron,
            "threshold": row.threshold,
            "selected_layer": row.selected_layer,
            "n_selected": row.n_selected,
            "share_of_all": row.share_of_all,
            "dev": row.dev,
            "test": row.test,
            "share_of_oracle": row.share_of_oracle,
            "test_interval": _iv(row.test_interval),
            "share_interval": _iv(row.share_interval),
            "chosen_by": "compact model" if compact_row(q, c) is row else "fewest neurons",
        }
    if c is not None:
        sel = c.get("selected_layer")
        out["compact"] = {
            "size_bytes": c.get("size_bytes"),
            "full_model_bytes": c.get("full_model_bytes"),
            "layers": None if sel is None else int(sel) + 1,
            "full_layers": section.n_layers,
            "n_neurons": len(c.get("neurons") or ()) if c.get("neurons") is not None else None,
            "dev": c.get("dev"),
            "test": c.get("test"),
        }
        # the compact model keeps its row's probe (retrained the same way), so the row's paired
        # bootstrap intervals of the test score and of the kept share of the oracle are its own
        built_from = compact_row(q, c)
        test, oracle = c.get("test"), c.get("oracle_test")
        out["compact"]["share_of_oracle"] = (
            None if test is None or not oracle else float(test) / float(oracle)
        )
        out["compact"]["test_interval"] = _iv(None if built_from is None else built_from.test_interval)
        out["compact"]["share_interval"] = _iv(None if built_from is None else built_from.share_interval)
    return json_ready(out)


def _score_ci(x: Any, iv: dict[str, Any] | None, fmt: Any = score) -> str:
    if not iv or iv.get("low") is None or iv.get("high") is None:
        return fmt(x)
    return f"{fmt(x)} [{fmt(iv['low'])}, {fmt(iv['high'])}]"


def summary_table(report: Report) -> Table:
    rows = []
    for sec in report.sections:
        s = task_summary(sec)
        g, o, m, r, c = (s.get(k) for k in ("general", "oracle", "minimal_set", "pipeline", "compact"))
        setting = "–"
        if r is not None:
            t = "none" if r["threshold"] is None else f"{r['threshold']:g}"
            setting = f"t = {t}, δ = ({r['delta_layer']:g}, {r['delta_neuron']:g})"
        rows.append(
            (
                sec.task + (f" ({s['metric']})" if s.get("metric") else ""),
                NOT_RUN
                if g is None
                else _score_ci(g["redundant_share"], g["redundant_share_interval"], share),
                NOT_RUN if o is None else _score_ci(o["test"], o.get("test_interval")),
                NOT_RUN if m is None else f"{num(m['k'])} ({share(m['share'])}%)",
                NOT_RUN if r is None else setting,
                NOT_RUN if r is None else str(r["selected_layer"]),
                NOT_RUN if r is None else num(r["n_selected"]),
                NOT_RUN if r is None else f"{100 * r['share_of_all']:.2f}",
                NOT_RUN if r is None else _score_ci(r["test"], r.get("test_interval")),
                NOT_RUN if r is None else _score_ci(r["share_of_oracle"], r.get("share_interval")),
                NOT_RUN if c is None else f"{size(c['size_bytes'])} / {size(c['full_model_bytes'])}",
            )
        )
    thresholds = {sec.general.report_threshold for sec in report.sections if sec.general is not None}
    t = f"t = {next(iter(thresholds)):g}" if len(thresholds) == 1 else "the report threshold"
    return Table(
        header=(
            "task",
            f"redundant % ({t})",
            "oracle test",
            "minimal set",
            "pipeline row",
            "selected layer",
            "neurons kept",
            "% of all",
            "test",
            "% of oracle",
            "compact / full size",
        ),
        rows=tuple(rows),
        caption="Per task: general redundancy, the oracle probe, the minimal neuron set, and the pipeline "
        "row the compact model was built from (else the one keeping the fewest neurons). Scores in %.",
    )
