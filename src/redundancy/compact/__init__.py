"""Stage 6: the compact model, a pipeline row made deployable.

The base model cut to hidden states 0..l plus the row's small probe, in one self-contained folder
(safetensors and JSON, no pickle); ``redundancy predict`` runs it. See ``docs/pipeline.md``.

Public API
----------
export_compact(task, row, model, out_dir, probe=None, overwrite=False)
    Write the compact model of a pipeline row (``redundancy.pipeline.choose_row`` picks one on dev):
    the cut model (``model/``), the probe (``probe.safetensors``) and ``compact.json``.
CompactModel
    ``CompactModel.load(dir)`` -> ``predict_words(sentences)`` / ``predict_texts(texts, pairs)``
    (and the raw ``decision_words`` / ``decision_texts``).
CompactInfo, read_info
    The record in ``compact.json`` and its reader (clear errors for a missing or other-version file).

>>> from redundancy.compact import CompactModel               # doctest: +SKIP
>>> CompactModel.load("runs/default/compact/pos").predict_words([["A", "test", "."]])  # doctest: +SKIP
[['DET', 'NOUN', 'PUNCT']]
"""

from ._export import export_compact
from ._record import FORMAT_VERSION, INFO_FILE, MODEL_DIR, PROBE_FILE, CompactInfo, read_info
from ._runtime import CompactModel

__all__ = [
    "FORMAT_VERSION",
    "INFO_FILE",
    "MODEL_DIR",
    "PROBE_FILE",
    "CompactInfo",
    "CompactModel",
    "export_compact",
    "read_info",
]
