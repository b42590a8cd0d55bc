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
    the oracle's dev score.
export_compact(task, row, model, out_dir)
    Write the compact model of a row: the base model cut to hidden states 0..l (safetensors), the
    probe (``probe.safetensors``) and ``compact.json`` (:class:`CompactInfo`); no pickle.
CompactModel, CompactInfo, read_info
    ``CompactModel.load(dir)`` -> ``predict_words(sentences)`` / ``predict_texts(texts, pairs)``.
"""

from ._compact import CompactInfo, CompactModel, choose_row, export_compact, read_info
from ._result import PipelineResult, PipelineRow, load_result
from ._run import DEFAULT_GRID, DEFAULT_THRESHOLDS, run_pipeline

__all__ = [
    "DEFAULT_GRID",
    "DEFAULT_THRESHOLDS",
    "CompactInfo",
    "CompactModel",
    "PipelineResult",
    "PipelineRow",
    "choose_row",
    "export_compact",
    "load_result",
    "read_info",
    "run_pipeline",
]
