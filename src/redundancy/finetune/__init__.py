"""Fine-tune a model on a sentence task (GLUE), so that its activations can then be extracted and analysed.

>>> from redundancy.finetune import FinetuneConfig, finetune                       # doctest: +SKIP
>>> result = finetune("rte", "all-MiniLM-L6-v2", "/work/finetuned/minilm-rte")     # doctest: +SKIP
>>> result.dev_score, result.examples_per_s                                         # doctest: +SKIP

The output folder is a standard Hugging Face folder (``AutoModelForSequenceClassification`` or
``AutoModel`` load it; ``redundancy extract --model OUT`` works on it) with ``finetune.json``
(:class:`FinetuneResult`). Rerunning an interrupted call resumes from ``OUT/checkpoint/``. See
``docs/finetune.md``.
"""

from ._config import FinetuneConfig
from ._result import DevScore, FinetuneResult, LossPoint, SplitSummary
from ._train import RESULT_FILE, encode, epoch_order, evaluate, finetune, load_tokenizer

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
