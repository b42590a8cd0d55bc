"""The blocks of each part of a task's section (general, probes, pipeline, compact) and of the provenance."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

from .._serial import json_ready
from ..ablate import AblationResult
from ..general import GeneralResult, plot_cka, plot_spans, plot_threshold
from ..general import plot_layers as plot_general_layers
from ..pipeline import PipelineResult
from ..probe import SWEEP_TOLERANCES, TaskRedundancyResult, plot_layers, plot_rankings, plot_sizes, plot_sweep
from ._blocks import (
    NOT_RUN,
    Block,
    Code,
    Figure,
    Heading,
    Markdown,
    Paragraph,
    Table,
    missing,
    num,
    score,
    score_ci,
    share,
    short,
    size,
    slug,
)
from ._figures import plot_pipeline, render_png
from ._inputs import FILES, Report, TaskSection

logger = logging.getLogger(__name__)


def _cka(x: float) -> str:
    return "–" if missing(x) else f"{x:.2f}"


def _share_ci(iv: Any, x: float) -> str:
    """A redundant share in % with its interval when there is one: ``45.2 [44.1, 46.0]``."""
    return score_ci(x, iv, share)


def _general_rigour_blocks(g: GeneralResult) -> list[Block]:
    """The real numbers beside their null models and with their jackknife intervals: adjacent-layer
    CKA, the redundant share at every threshold, the spans at the report threshold."""
    blocks: list[Block] = []
    iv = g.intervals
    if iv is not None:
        blocks.append(
            Paragraph(
                f"Intervals in brackets: {100 * iv.level:g} % delete-a-group jackknife over sentences "
                f"({iv.n_groups} random groups of the store's sentences, seed {iv.seed}; each number "
                "recomputed without each group from the same pass, estimate ± t · se)."
            )
        )
    nulls = g.nulls
    if nulls:
        blocks.append(
            Paragraph(
                "Null models, computed by the same code on the same tokens: "
                + "; ".join(f"{n.kind}: {n.description}" for n in nulls)
                + ". The shuffled null shows what the estimator finds where there is no redundancy; a number "
                "no higher than the random-init null's is not evidence of redundancy the training put there."
            )
        )
    if g.n_layers >= 2:
        lin, deb = g.cka.as_array("linear"), g.cka.as_array("debiased")
        rows = []
        for a in range(g.n_layers - 1):
            cells = [f"{a}–{a + 1}"]
            for variant, m in (("linear", lin), ("debiased", deb)):
                cells.append(score_ci(m[a, a + 1], g.cka_interval(a, a + 1, variant), _cka))
            for n in nulls:
                cells += [_cka(n.cka.as_array(v)[a, a + 1]) for v in ("linear", "debiased")]
            rows.append(tuple(cells))
        header = ["layers", "linear CKA", "debiased CKA"]
        for n in nulls:
            header += [f"{n.kind}: linear", f"{n.kind}: debiased"]
        blocks.append(
            Table(
                header=tuple(header),
                rows=tuple(rows),
                caption="CKA of adjacent layers, biased (linear) and debiased side by side, the model "
                "beside its null models.",
            )
        )
    rows = []
    for q in g.sweep:
        cells = [
            f"{q.threshold:g}",
            num(q.n_clusters),
            _share_ci(g.share_interval(q.threshold), q.redundant_share),
        ]
        cells += [share(n.at(q.threshold).redundant_share) for n in nulls]
        cells.append(num(q.largest_cluster))
        rows.append(tuple(cells))
    blocks.append(
        Table(
            header=(
                "threshold t",
                "clusters",
                "redundant %",
                *(f"{n.kind} null: redundant %" for n in nulls),
                "largest cluster",
            ),
            rows=tuple(rows),
            caption=f"Correlation clustering of all {g.n_neurons:,} neurons, cut at each threshold"
            + (", beside the null models." if nulls else "."),
        )
    )
    if nulls:
        p = g.at()
        hists = [p.span_histogram, *(n.at(g.report_threshold).span_histogram for n in nulls)]
        rows = tuple(
            (str(k + 1), *(num(h[k]) if k < len(h) else "0" for h in hists)) for k in range(g.n_layers)
        )
        blocks.append(
            Table(
                header=("layers spanned", "clusters", *(f"{n.kind} null" for n in nulls)),
                rows=rows,
                caption=f"Clusters by the number of layers they span at t = {g.report_threshold:g}, the "
                "model beside its null models.",
            )
        )
    return blocks


class FigureMaker:
    """Renders figures into blocks; a figure that fails to draw becomes a note, not a crash."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(
        self,
        task: str,
        key: str,
        plot: Callable[[Any, Any], Any],
        result: Any,
        alt: str,
        caption: str,
        wide: bool = False,
    ) -> list[Block]:
        if not self.enabled:
            return []
        name = f"{slug(task)}-{key}"
        try:
            png = render_png(plot, result)
        except Exception as err:  # a figure must not sink the whole report
            logger.warning("figure %s could not be drawn: %s", name, err, exc_info=True)
            return [Paragraph(f"Figure {name} could not be drawn ({type(err).__name__}: {err}).", note=True)]
        return [
            Figure(anchor=f"fig-{name}", file=f"{name}.png", alt=alt, caption=caption, png=png, wide=wide)
        ]


def not_run(task: str, stage: str) -> Paragraph:
    return Paragraph(
        f"{stage.capitalize()}: {NOT_RUN} (no {stage}/{task}/{FILES[stage]} in the run folder).", True
    )


def general_blocks(task: str, g: GeneralResult, fig: FigureMaker) -> list[Block]:

    p = g.at()
    blocks: list[Block] = [
        Paragraph(
            f"{g.model} · {g.task}/{g.split} store ({g.aggregation} aggregation): {g.n_items:,} items, "
            f"{g.n_layers} layers × {g.hidden} = {g.n_neurons:,} neurons (layer 0 = embeddings)."
        ),
        Paragraph(
            f"At t = {p.threshold:g} (distance 1 − |r|, average linkage), "
            f"{_share_ci(g.share_interval(), p.redundant_share)}% of the neurons are redundant"
            + "".join(
                f" ({n.kind} null: {share(n.at(g.report_threshold).redundant_share)}%)" for n in g.nulls
            )
            + ": "
            f"{p.n_clusters:,} clusters keep one neuron each ({g.representative} "
            f"member); the largest cluster holds {p.largest_cluster:,} neurons. "
            f"Zero-variance neurons: {len(g.zero_variance):,}."
        ),
    ]
    blocks += fig(
        task,
        "cka",
        plot_cka,
        g,
        f"Linear and debiased CKA between the {g.n_layers} layers of {g.model}",
        "Linear (left) and debiased (right) CKA between every pair of layers.",
        wide=True,
    )
    blocks += fig(
        task,
        "redundancy-threshold",
        plot_threshold,
        g,
        "Share of redundant neurons against the clustering threshold",
        f"Redundant neurons against the distance threshold; t = {g.report_threshold:g} marked.",
    )
    blocks += fig(
        task,
        "redundancy-layers",
        plot_general_layers,
        g,
        "Share of redundant neurons per layer",
        "Redundant share per layer, one line per threshold.",
    )
    blocks += fig(
        task,
        "cluster-spans",
        plot_spans,
        g,
        "Histogram of how many layers a cluster spans",
        "Clusters by the number of layers they span.",
    )
    layers = range(g.n_layers)
    for variant in ("linear", "debiased"):
        m = g.cka.as_array(variant)
        blocks.append(
            Table(
                header=("layer", *(str(b) for b in layers)),
                rows=tuple((str(a), *(_cka(m[a, b]) for b in layers)) for a in layers),
                caption=f"{variant.capitalize()} CKA between layers ({g.cka.n_items:,} items).",
            )
        )
    shown = sorted(
        {t for t in g.thresholds if any(math.isclose(t, q, abs_tol=1e-9) for q in (0.1, 0.2, 0.5))}
        | {g.report_threshold}
    )
    blocks.append(
        Table(
            header=("layer", "neurons", *(f"redundant % at t = {t:g}" for t in shown)),
            rows=tuple(
                (str(a), num(g.hidden), *(share(g.at(t).redundant_share_by_layer[a]) for t in shown))
                for a in layers
            ),
            caption="Redundant share per layer: 1 − kept / neurons of the layer "
            "(kept = cluster representatives).",
        )
    )
    return blocks + _general_rigour_blocks(g)


def probe_blocks(task: str, p: TaskRedundancyResult, fig: FigureMaker) -> list[Block]:
    split = "test" if p.test is not None else "dev"
    o = p.oracle
    blocks: list[Block] = [
        Paragraph(
            f"Linear probes ({p.solver} solver) on {p.model}, {p.metric} in %; selection on dev, "
            f"{split} reported. Oracle (all {p.n_neurons:,} neurons): dev {score(o.dev_score)}, "
            f"test {score_ci(o.test_score, o.test_interval)}." + _interval_note(o)
        )
    ]
    blocks += fig(
        task,
        "probe-layers",
        plot_layers,
        p,
        f"{p.metric} of one-layer and incremental probes per layer",
        "One-layer probes and incremental probes (layers 0..l) against the oracle.",
    )
    blocks += fig(
        task,
        "probe-sizes",
        plot_sizes,
        p,
        f"{p.metric} against the number of neurons kept",
        "Top-ranked, random and bottom-ranked neurons at each k; the minimal set marked.",
    )
    rows = []
    for i, (one, inc) in enumerate(zip(p.layerwise, p.incremental, strict=False)):
        rows.append(
            (
                str(i),
                score(one.dev_score),
                score_ci(one.test_score, one.test_interval),
                score(inc.dev_score),
                score_ci(inc.test_score, inc.test_interval),
            )
        )
    rows.append(
        (f"oracle ({p.n_neurons:,})", score(o.dev_score), score_ci(o.test_score, o.test_interval), "", "")
    )
    blocks.append(
        Table(
            header=("layer l", "layer l: dev", "layer l: test", "layers 0..l: dev", "layers 0..l: test"),
            rows=tuple(rows),
            caption=f"Layer-wise and incremental probes ({p.metric} in %).",
        )
    )
    m = p.minimal
    status = "" if m.found else " No size passed: the set is all neurons."
    if not m.complete:
        status += " The search stopped at its time budget."
    blocks.append(
        Paragraph(
            f"Minimal neuron set (δ = {m.delta:g}%, dev above {score(m.target)}, "
            f"ranking {m.ranking_method}): "
            f"{m.k:,} neurons ({share(m.share)}% of {p.n_neurons:,}), dev {score(m.result.dev_score)}, "
            f"test {score_ci(m.result.test_score, m.result.test_interval)}.{status}"
        )
    )
    blocks += _selectivity_blocks(p)
    blocks += _sweep_blocks(task, p, fig)
    c = p.controls
    if c is None:
        blocks.append(Paragraph(f"Controls: {NOT_RUN}.", True))
        return blocks
    mean, sd = f"{split}_mean", f"{split}_sd"
    top, rnd, bot = (getattr(c.top, mean), getattr(c.random, mean), getattr(c.bottom, mean))
    rnd_sd = getattr(c.random, sd)
    rows = []
    for i, k in enumerate(c.sizes):
        label = f"{k:,}" + (" (minimal set)" if k == m.k else "")
        spread = "" if rnd_sd is None or missing(rnd_sd[i]) else f" ± {100 * rnd_sd[i]:.2f}"
        rows.append((label, share(k / p.n_neurons), score(top[i]), score(rnd[i]) + spread, score(bot[i])))
    blocks.append(
        Table(
            header=("k", "% of all", "top-ranked", f"random ({len(c.random.seeds)} draws)", "bottom-ranked"),
            rows=tuple(rows),
            caption=f"Controls at the same k ({split} {p.metric} in %): the ranking's first k, "
            "k random neurons (mean ± sd), the ranking's last k.",
        )
    )
    blocks += _ranking_blocks(task, p, fig, split)
    s = c.probe_seeds
    if s is not None:
        test = "" if s.test_mean is None else f", test {score(s.test_mean)} ± {100 * (s.test_sd or 0):.2f}"
        blocks.append(
            Paragraph(
                f"Oracle over probe seeds {', '.join(str(x) for x in s.seeds)}: "
                f"dev {score(s.dev_mean)} ± {100 * s.dev_sd:.2f}{test}."
            )
        )
    return blocks


def _interval_note(r: Any) -> str:
    iv = r.test_interval
    if iv is None:
        return ""
    return (
        f" Test scores in brackets: {100 * iv.level:g} % bootstrap intervals over test sentences "
        f"({iv.n_boot} replicates, seed {iv.seed}; the probes are not retrained)."
    )


def _sweep_blocks(task: str, p: TaskRedundancyResult, fig: FigureMaker) -> list[Block]:
    """The general sweep with task accuracy: is the redundant share redundant without loss?"""
    sw = p.sweep
    if sw is None:
        return []
    heads = []
    for tol in SWEEP_TOLERANCES:
        r = sw.largest_within(tol)
        heads.append(
            f"within {tol:g} % of the oracle (dev): "
            + (
                "no threshold"
                if r is None
                else f"{share(r.redundant_share)}% of the neurons redundant at t = {r.threshold:g} "
                f"({r.n_kept:,} kept; test {score_ci(r.test, r.test_interval)}, "
                f"{score_ci(r.share_of_oracle, r.share_interval)}% of the oracle)"
            )
        )
    blocks: list[Block] = [
        Paragraph(
            f"Redundant without loss: a probe retrained on each threshold's cluster representatives of all "
            f"{sw.n_neurons:,} neurons (clusters of the general stage on {sw.general_split}, "
            f"{sw.representative} member kept). The largest redundant share " + "; ".join(heads) + "."
        )
    ]
    blocks += fig(
        task,
        "probe-sweep",
        plot_sweep,
        p,
        "Redundant share and the representatives' probe score against the clustering threshold",
        "Redundant neurons (left axis) and the test score of a probe on one neuron per cluster as a share "
        "of the oracle's (right axis, bootstrap band), against the threshold.",
    )
    blocks.append(
        Table(
            header=("threshold t", "neurons kept", "redundant %", "dev", "test", "% of oracle"),
            rows=tuple(
                (
                    f"{r.threshold:g}",
                    num(r.n_kept),
                    share(r.redundant_share),
                    score(r.dev),
                    score_ci(r.test, r.test_interval),
                    score_ci(r.share_of_oracle, r.share_interval),
                )
                for r in sw.rows
            ),
            caption=f"The general sweep with task accuracy ({p.metric} in %; oracle dev "
            f"{score(sw.oracle_dev)}, test {score(sw.oracle_test)}).",
        )
    )
    return blocks


def _selectivity_blocks(p: TaskRedundancyResult) -> list[Block]:
    s = p.selectivity
    if s is None:
        return []
    rows = tuple(
        (r.name, f"{r.n_neurons:,}", score(r.task_accuracy), score(r.control_accuracy), score(r.selectivity))
        for r in s.rows
    )
    return [
        Table(
            header=("probe", "neurons", "task accuracy", "control accuracy", "selectivity"),
            rows=rows,
            caption=f"Selectivity ({s.split} accuracy in %, points): the same probes trained on a control "
            f"task, {s.control}; {s.n_types:,} word types in train, seed {s.seed}. A probe that scores "
            "as well on the control task reads word identity, not the property.",
        )
    ]


def _ranking_blocks(task: str, p: TaskRedundancyResult, fig: FigureMaker, split: str) -> list[Block]:
    """The rankings judged by the controls (top / bottom vs random at each k), the choice, the
    offline ablation; nothing for results without them."""
    c = p.controls
    if c is None or not c.rankings:
        return []
    blocks: list[Block] = []
    if p.ranking_choice:
        blocks.append(Paragraph(f"Ranking used: {p.ranking_method} ({p.ranking_choice.get('reason', '')})."))
    mean, sd = f"{split}_mean", f"{split}_sd"
    rnd = dict(zip(c.random.sizes, getattr(c.random, mean), strict=True))
    rnd_sd = dict(zip(c.random.sizes, getattr(c.random, sd), strict=True))
    sizes = c.rankings[0].top.sizes
    rows = []
    for k in sizes:
        row = [f"{k:,}", share(k / p.n_neurons), f"{score(rnd[k])} ± {100 * rnd_sd[k]:.2f}"]
        for rc in c.rankings:
            top = dict(zip(rc.top.sizes, getattr(rc.top, mean), strict=True)).get(k)
            bot = (
                {} if rc.bottom is None else dict(zip(rc.bottom.sizes, getattr(rc.bottom, mean), strict=True))
            )
            row.append(f"{score(top)} / {score(bot.get(k))}")
        rows.append(tuple(row))
    names = [rc.method + (" (used)" if rc.method == p.ranking_method else "") for rc in c.rankings]
    blocks.append(
        Table(
            header=(
                "k",
                "% of all",
                f"random ({len(c.random.seeds)} draws)",
                *(f"{n}: top / bottom" for n in names),
            ),
            rows=tuple(rows),
            caption=f"Every ranking judged by the controls ({split} {p.metric} in %): its first k and "
            "last k neurons against k random ones (mean ± sd). Rankings are computed on train, "
            "chosen on dev (mean top-k dev over these k).",
        )
    )
    blocks += fig(
        task,
        "probe-rankings",
        plot_rankings,
        p,
        f"{p.metric} of each ranking's top-k and bottom-k neurons against random ones",
        "Each ranking's top-k (solid) and bottom-k (dotted) probes over the band of random draws.",
    )
    if c.ablation_sizes and c.ablation_random is not None:
        arnd = getattr(c.ablation_random, mean)
        arnd_sd = getattr(c.ablation_random, sd)
        rows = []
        for i, k in enumerate(c.ablation_sizes):
            row = [f"{k:,}", share(k / p.n_neurons), f"{score(arnd[i])} ± {100 * arnd_sd[i]:.2f}"]
            row += [
                score(getattr(rc.ablation, mean)[i]) if rc.ablation is not None else "–" for rc in c.rankings
            ]
            rows.append(tuple(row))
        blocks.append(
            Table(
                header=("k ablated", "% of all", "random", *names),
                rows=tuple(rows),
                caption=f"Offline ablation ({split} {p.metric} in %): the oracle probe, trained on the "
                f"intact activations ({score(c.ablation_intact)}), with each ranking's top k columns "
                f"set to their train {'mean' if c.ablation_mode == 'mean' else 'value 0'}, beside k random "
                "columns. A ranking whose top neurons matter loses more than random.",
            )
        )
    return blocks


def ablate_blocks(r: AblationResult) -> list[Block]:
    """The in-model ablation: each ablated set's score and drop, in the model and offline."""
    rows = []
    for row in r.rows:
        what = (
            f"top {row.k:,} of {row.ranking}" if row.kind == "top" else f"random {row.k:,} (seed {row.seed})"
        )
        rows.append(
            (what, score(row.in_model), score(row.in_model_drop), score(row.offline), score(row.offline_drop))
        )
    summary = r.summary()
    rnd = summary.get("random")
    parts = []
    for name, v in summary.items():
        if isinstance(v, dict) and name != "random":
            verdict = ""
            if rnd is not None:
                verdict = (
                    " (more than random)"
                    if v["in_model_drop"] > rnd["in_model_drop"]
                    else " (not more than random)"
                )
            parts.append(f"{name} −{100 * v['in_model_drop']:.2f}{verdict}")
    if rnd is not None:
        parts.append(f"random −{100 * rnd['in_model_drop']:.2f} (mean of {rnd['n']})")
    what = "train mean" if r.mode == "mean" else "zero"
    return [
        Paragraph(
            f"The oracle probe, trained on the intact model, scored on the first {r.n_sentences:,} {r.split} "
            f"sentences ({r.n_items:,} items; intact {score(r.intact)}) with {r.k:,} neurons "
            f"({share(r.share)}% of {r.n_neurons:,}) replaced by their {what} inside the model, "
            f"through every later layer. Drops in points: {'; '.join(parts)}."
        ),
        Table(
            header=("ablated", "in the model", "drop", "offline (columns only)", "drop"),
            rows=tuple(rows),
            caption=f"In-model ablation vs the paper's offline column dropping ({r.split} {r.metric} in %).",
        ),
    ]


def pipeline_blocks(task: str, q: PipelineResult, fig: FigureMaker) -> list[Block]:
    blocks: list[Block] = [Markdown(q.table_markdown())]
    if q.ranking_choice:
        rc = q.ranking_choice
        blocks.append(
            Paragraph(
                f"Feature selection ranked the kept neurons by the {rc.get('method')} ranking of all "
                f"neurons ({rc.get('source', '')}; {rc.get('reason', '')})."
            )
        )
    inc = ", ".join(
        f"{i}: {score(d)} / {score(t)}"
        for i, (d, t) in enumerate(zip(q.incremental_dev, q.incremental_test, strict=False))
    )
    blocks.append(Paragraph(f"Incremental probes on layers 0..l, dev / test {q.metric} in %: {inc}."))
    blocks += fig(
        task,
        "pipeline",
        plot_pipeline,
        q,
        "Neurons kept by each pipeline row, with its share of the oracle",
        "Neurons kept by each row (log scale) and its test score as a share of the oracle's.",
    )
    return blocks


def compact_blocks(section: TaskSection, c: dict[str, Any]) -> list[Block]:
    sel = c.get("selected_layer")
    neurons = c.get("neurons")
    full_layers = section.n_layers
    n_full = c.get("n_neurons_full")
    if n_full is None and full_layers is not None and section.pipeline is not None:
        n_full = section.pipeline.n_neurons
    small, big = c.get("size_bytes"), c.get("full_model_bytes")
    ratio = f" ({100 * small / big:.1f}% of the full model)" if small and big else ""
    oracle_dev = oracle_test = None
    if section.pipeline is not None:
        oracle_dev, oracle_test = section.pipeline.oracle_dev, section.pipeline.oracle_test
    elif section.probe is not None:
        oracle_dev, oracle_test = section.probe.oracle.dev_score, section.probe.oracle.test_score
    rows = [
        ("size on disk", size(small), size(big)),
        (
            "layers (0 = embeddings)",
            "–" if sel is None else f"{int(sel) + 1} (0..{int(sel)})",
            num(full_layers),
        ),
        ("neurons", "–" if neurons is None else num(len(neurons)), num(n_full)),
        ("dev (probe)", score(c.get("dev")), score(oracle_dev) + " (oracle)"),
        ("test (probe)", score(c.get("test")), score(oracle_test) + " (oracle)"),
    ]
    setting = (
        f"δ = ({short(c.get('delta_layer'))}, {short(c.get('delta_neuron'))}), t = "
        f"{'none' if c.get('threshold') is None else short(c.get('threshold'))}"
    )
    return [
        Paragraph(
            f"The compact model ({section.model_label or c.get('model')}, truncated after layer {sel} "
            "with the small "
            f"probe on its kept neurons; {setting}): {size(small)} on disk{ratio}."
        ),
        Table(
            header=("", "compact", "full model"),
            rows=tuple(rows),
            caption="Compact model beside the full model.",
        ),
    ]


def _versions_table(prov: dict[str, Any]) -> Table:
    sources: dict[str, dict[str, list[str]]] = {}
    for where, versions in [
        ("report", prov.get("versions") or {}),
        *(prov.get("stage_versions") or {}).items(),
    ]:
        for pkg, v in (versions or {}).items():
            sources.setdefault(str(pkg), {}).setdefault(str(v), []).append(where)
    rows = []
    for pkg in sorted(sources):
        seen = "; ".join(f"{v} ({', '.join(w)})" for v, w in sources[pkg].items())
        rows.append((pkg, seen))
    return Table(
        header=("package", "version (where)"), rows=tuple(rows), caption="Package versions.", numeric=False
    )


def provenance_blocks(report: Report) -> list[Block]:
    prov = report.provenance
    blocks: list[Block] = [
        Heading(2, "Provenance", "provenance"),
        Paragraph(
            f"Report created {prov.get('created', '–')} from the run folder {prov.get('run_dir', '–')}; "
            f"redundancy {(prov.get('versions') or {}).get('redundancy', '–')}."
        ),
    ]
    models = prov.get("models") or []
    if models:
        blocks.append(
            Table(
                header=("model", "weights SHA-256", "recorded by"),
                rows=tuple(
                    (
                        str(m.get("model")),
                        str(m.get("weights_sha256") or "–"),
                        ", ".join(m.get("sources") or ()),
                    )
                    for m in models
                ),
                caption="Models and the hash of their weight files.",
                numeric=False,
                mono=(1,),
            )
        )
    stores = prov.get("stores") or []
    if stores:
        rows = []
        for s in stores:
            data = s.get("data_files") or {}
            rows.append(
                (
                    str(s.get("name")),
                    num(s.get("n_items")),
                    str(s.get("plan_hash") or "–"),
                    "; ".join(f"{k}: {v}" for k, v in data.items()) or "–",
                    "yes" if s.get("complete") else "no",
                )
            )
        blocks.append(
            Table(
                header=("store", "items", "plan hash", "data file SHA-256", "complete"),
                rows=tuple(rows),
                caption="Activation stores (RUN/stores): the plan hash identifies how each was made.",
                numeric=False,
                mono=(2, 3),
            )
        )
    inputs = prov.get("inputs") or []
    if inputs:
        blocks.append(
            Table(
                header=("task", "stage", "split", "store plan hash", "store"),
                rows=tuple(
                    (
                        str(i.get("task")),
                        str(i.get("stage")),
                        str(i.get("split")),
                        str(i.get("plan_hash")),
                        str(i.get("store")),
                    )
                    for i in inputs
                ),
                caption="What each stage read: compare the plan hashes with the stores above.",
                numeric=False,
                mono=(3, 4),
            )
        )
    seeds = prov.get("seeds") or []
    if seeds:
        blocks.append(
            Table(
                header=("task", "stage", "seed", "value"),
                rows=tuple(
                    (
                        "–" if s.get("task") is None else str(s["task"]),
                        str(s.get("stage")),
                        str(s.get("name")),
                        str(s.get("value")),
                    )
                    for s in seeds
                ),
                caption="Seeds.",
                numeric=False,
            )
        )
    blocks.append(_versions_table(prov))
    job = prov.get("job")
    blocks.append(Heading(3, "Job record", "job"))
    if job is None:
        blocks.append(Paragraph("No job.json in the run folder.", True))
    else:
        blocks.append(Code(json.dumps(json_ready(job), indent=2, sort_keys=False), "json"))
    return blocks
