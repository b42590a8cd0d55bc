"""The run's report: ``results.json``, ``report.md`` (+ ``figures/``) and a self-contained ``report.html``.

Reads what the stages left in a run folder (``RUN/{general,probe,pipeline,compact}/{task}/``, the
fine-tuning records ``RUN/finetuned/{task}/finetune.json``, the store manifests, ``RUN/job.json``),
lays the numbers out as the paper's tables with the controls and figures, and records the provenance
(package versions, model and weight hashes, store plan and data hashes, seeds). See ``docs/report.md``.

Public API
----------
collect(run_dir, title=None) -> Report
    Discover and load a run folder's results; a stage that did not run is None ("not run").
write_report(report, out_dir) -> ReportFiles
    Write ``results.json``, ``report.md`` with ``figures/``, and ``report.html`` (atomically).
Report, TaskSection
    The typed inputs (frozen; ``to_dict`` / ``from_dict``); :func:`load_results` reads ``results.json``.
ReportFiles
    The paths written.
build_document, render_markdown, render_html
    The content as blocks, and its two renderers.
headline_row, task_summary
    Which pipeline row the summary quotes; one task's headline numbers.
plot_pipeline
    The pipeline summary figure: neurons kept per row, with its share of the oracle.
comparison_pairs, comparison_row, comparison_rows, comparison_sentence, plot_comparison
    Fine-tuned (section ``X``) vs pretrained (section ``X.pretrained``): the pairs, the rows of the
    comparison table (``results.json``'s ``comparison``), the sentence per task, and its figure.
finetune_row, finetune_rows, plot_finetune
    The fine-tuning runs behind sections ``X`` (``RUN/finetuned/X/finetune.json``): one row each
    (``results.json``'s ``finetune``) and the dev score per epoch.
"""

from ._compare import (
    PRETRAINED_SUFFIX,
    comparison_pairs,
    comparison_row,
    comparison_rows,
    comparison_sentence,
    plot_comparison,
)
from ._document import build_document
from ._figures import plot_pipeline
from ._finetune import finetune_row, finetune_rows, plot_finetune
from ._inputs import Report, TaskSection, collect, load_results
from ._render import render_html, render_markdown
from ._summary import headline_row, task_summary
from ._write import ReportFiles, results_dict, write_report

__all__ = [
    "PRETRAINED_SUFFIX",
    "Report",
    "ReportFiles",
    "TaskSection",
    "build_document",
    "collect",
    "comparison_pairs",
    "comparison_row",
    "comparison_rows",
    "comparison_sentence",
    "finetune_row",
    "finetune_rows",
    "headline_row",
    "load_results",
    "plot_comparison",
    "plot_finetune",
    "plot_pipeline",
    "render_html",
    "render_markdown",
    "results_dict",
    "task_summary",
    "write_report",
]
