"""Writing the report folder: ``results.json``, ``report.md`` with ``figures/``, ``report.html``."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._serial import json_ready, write_bytes_atomic, write_json_atomic
from ._blocks import Block, figures_of
from ._compare import comparison_rows
from ._document import build_document
from ._finetune import finetune_rows
from ._inputs import Report
from ._render import FIGURE_DIR, render_html, render_markdown
from ._summary import task_summary

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    out_dir : Path
    results, markdown, html : Path
        ``results.json``, ``report.md``, ``report.html``.
    figures : tuple of Path
        The PNGs under ``figures/`` that ``report.md`` links to (the HTML embeds the same images).
    """

    out_dir: Path
    results: Path
    markdown: Path
    html: Path
    figures: tuple[Path, ...]


def results_dict(report: Report, blocks: tuple[Block, ...] | None = None) -> dict[str, Any]:
    """The content of ``results.json``: :meth:`Report.to_dict` plus each task's headline numbers
    (``summary``), the fine-tuned vs pretrained rows (``comparison``, empty without a pair), the
    fine-tuning runs (``finetune``, empty when nothing was fine-tuned) and the report's files.
    JSON-ready, NaN as null."""
    d = report.to_dict()
    d["summary"] = [task_summary(s) for s in report.sections]
    d["comparison"] = comparison_rows(report)
    d["finetune"] = finetune_rows(report)
    if blocks is not None:
        d["files"] = {
            "markdown": MARKDOWN_FILE,
            "html": HTML_FILE,
            "figures": [f"{FIGURE_DIR}/{f.file}" for f in figures_of(blocks)],
        }
    return json_ready(d)


def write_report(report: Report, out_dir: str | os.PathLike, *, figures: bool = True) -> ReportFiles:
    """Write the report of ``report`` into ``out_dir`` (created), each file atomically.

    Writes ``figures/*.png`` (PNGs left there by an earlier report and not redrawn are removed), then
    ``results.json`` (every result's ``to_dict()``, the compact model's dict, the headline numbers and
    the provenance), ``report.md`` (the figures linked from ``figures/``) and ``report.html`` (the same
    content in one self-contained file, figures embedded). ``figures=False`` skips drawing.

    Returns
    -------
    ReportFiles
    """
    out = Path(out_dir)
    fig_dir = out / FIGURE_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    blocks = build_document(report, figures=figures)
    written = []
    for f in figures_of(blocks):
        path = fig_dir / f.file
        write_bytes_atomic(path, f.png)
        written.append(path)
    keep = {p.name for p in written}
    for old in fig_dir.glob("*.png"):
        if old.name not in keep:
            logger.info("removing stale figure %s", old)
            old.unlink()
    results = out / RESULTS_FILE
    write_json_atomic(results, results_dict(report, blocks))
    markdown = out / MARKDOWN_FILE
    write_bytes_atomic(markdown, render_markdown(blocks).encode("utf-8"))
    page = out / HTML_FILE
    write_bytes_atomic(page, render_html(blocks, report.title).encode("utf-8"))
    logger.info("report: wrote %s, %s, %s and %d figures", results, markdown, page, len(written))
    return ReportFiles(out_dir=out, results=results, markdown=markdown, html=page, figures=tuple(written))
