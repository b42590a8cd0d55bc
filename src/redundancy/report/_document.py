"""The whole report as blocks: title, summary, contents, fine-tuning (when a task was fine-tuned on),
fine-tuned vs pretrained (when a task has both), one section per task, provenance."""

from __future__ import annotations

from ._blocks import Block, Heading, Links, Paragraph, slug
from ._compare import COMPARISON_ANCHOR, comparison_blocks, comparison_pairs
from ._finetune import FINETUNE_ANCHOR, finetune_blocks
from ._inputs import Report
from ._sections import (
    FigureMaker,
    ablate_blocks,
    compact_blocks,
    general_blocks,
    not_run,
    pipeline_blocks,
    probe_blocks,
    provenance_blocks,
)
from ._summary import summary_table


def build_document(report: Report, *, figures: bool = True) -> tuple[Block, ...]:
    """The report's content as blocks, figures rendered (``figures=False`` skips them: faster, for tests
    of the text alone)."""
    fig = FigureMaker(figures)
    prov = report.provenance
    models = sorted({s.model_label for s in report.sections if s.model_label})
    blocks: list[Block] = [
        Heading(1, report.title, "top"),
        Paragraph(
            f"Model{'s' if len(models) > 1 else ''}: {', '.join(models) or '–'} · tasks: "
            f"{', '.join(report.tasks) or 'none'} · created {prov.get('created', '–')}."
        ),
        Heading(2, "Summary", "summary"),
    ]
    if report.sections:
        blocks.append(summary_table(report))
    else:
        blocks.append(Paragraph("The run folder holds no results.", True))
    compared = bool(comparison_pairs(report))
    fine_tuned = any(s.finetune is not None for s in report.sections)
    blocks.append(
        Links(
            (
                ("Summary", "summary"),
                *((("Fine-tuning", FINETUNE_ANCHOR),) if fine_tuned else ()),
                *((("Fine-tuned vs pretrained", COMPARISON_ANCHOR),) if compared else ()),
                *((f"Task {s.task}", f"task-{slug(s.task)}") for s in report.sections),
                ("Provenance", "provenance"),
            )
        )
    )
    blocks += finetune_blocks(report, fig)
    blocks += comparison_blocks(report, fig)
    for sec in report.sections:
        t, a = sec.task, slug(sec.task)
        blocks.append(Heading(2, f"Task {t}", f"task-{a}"))
        blocks += [Paragraph(f"Problem: {msg}", True) for msg in sec.problems]
        blocks.append(Heading(3, "General redundancy", f"{a}-general"))
        blocks += [not_run(t, "general")] if sec.general is None else general_blocks(t, sec.general, fig)
        blocks.append(Heading(3, "Task-specific redundancy (probes)", f"{a}-probe"))
        blocks += [not_run(t, "probe")] if sec.probe is None else probe_blocks(t, sec.probe, fig)
        if sec.ablate is not None:
            blocks.append(Heading(3, "Ablation inside the model", f"{a}-ablate"))
            blocks += ablate_blocks(sec.ablate)
        blocks.append(Heading(3, "Efficient-transfer pipeline", f"{a}-pipeline"))
        blocks += [not_run(t, "pipeline")] if sec.pipeline is None else pipeline_blocks(t, sec.pipeline, fig)
        blocks.append(Heading(3, "Compact model", f"{a}-compact"))
        blocks += [not_run(t, "compact")] if sec.compact is None else compact_blocks(sec, sec.compact)
    blocks += provenance_blocks(report)
    return tuple(blocks)
