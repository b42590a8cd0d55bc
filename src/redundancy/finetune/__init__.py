"""Fine-tune a model on a sentence task (GLUE), so that its activations can then be extracted and analysed.

>>> from redundancy.finetune import FinetuneConfig, finetune                       # doctest: +SKIP
>>> result = finetune("rte", "all-MiniLM-L6-v2", "/work/finetuned/minilm-rte")     # doctest: +SKIP
>>> result.dev_score, result.examples_per_s                                         # doctest: +SKIP

The output folder is a standard Hugging Face folder (``AutoModelForSequenceClassification`` or
``AutoModel`` load it; ``redundancy extract --model OUT`` works on it) with ``finetune.json``
(:class:`FinetuneResult`). Rerunning an interrupted call resumes from ``OUT/checkpoint/``. See
``docs/finetune.md``.

Modules: ``_data`` (splits, targets, tokenized features, epoch order), ``_model`` (tokenizer, head,
optimizer, dev scoring), ``_resume`` (fingerprints, finished runs, the checkpointed log),
``_checkpoint`` (the checkpoint folder), ``_train`` (the loop and :func:`finetune`).
"""

from ._config import FinetuneConfig
from ._data import encode, epoch_order
from ._model import evaluate, load_tokenizer
from ._result import DevScore, FinetuneResult, LossPoint, SplitSummary
from ._resume import RESULT_FILE
from ._train import finetune

__all__ = [
    "RESULT_FILE",
    "DevScore",
    "FinetuneConfig",
    "FinetuneResult",
    "LossPoint",
    "SplitSummary",
    "encode",
    "epoch_order",
    "evaluate",
    "finetune",
    "load_tokenizer",
]
