"""The efficient-transfer pipeline of Dalvi et al. (2020): LayerSelector -> correlation clustering ->
feature selection, for a grid of tolerance pairs and clustering thresholds. See ``docs/pipeline.md``.

Public API
----------
run_pipeline(train, dev, test, grid=((3, 1), (2, 1), (1, 1)), thresholds=(None, 0.3), probe=None, seed=0)
    The whole pipeline on one task's stores -> :class:`PipelineResult`.
PipelineResult, PipelineRow
    Frozen results with ``to_dict`` / ``from_dict``; ``PipelineResult.table_markdown()`` gives the
    paper-layout table; :func:`load_result` reads ``pipeline.json``.
DEFAULT_GRID, DEFAULT_THRESHOLDS
    The paper's tolerance pairs and clustering settings.
choose_row(result, min_share=0.97)
    The row to deploy, chosen on dev only: the fewest neurons among rows keeping ``min_share`` of
    the oracle's dev score. ``redundancy.compact.export_compact`` turns that row into a model.
"""

from ._result import PipelineResult, PipelineRow, choose_row, load_result
from ._run import DEFAULT_GRID, DEFAULT_THRESHOLDS, run_pipeline

__all__ = [
    "DEFAULT_GRID",
    "DEFAULT_THRESHOLDS",
    "PipelineResult",
    "PipelineRow",
    "choose_row",
    "load_result",
    "run_pipeline",
]
