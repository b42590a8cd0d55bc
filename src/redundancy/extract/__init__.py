"""Stage 1: run a model over a task split and store every layer's activations.

>>> from redundancy.data import load_task                       # doctest: +SKIP
>>> from redundancy.extract import extract, ExtractConfig        # doctest: +SKIP
>>> extract(load_task("pos", "dev"), "all-MiniLM-L6-v2", "runs/pos-dev")  # doctest: +SKIP
"""

from ._extract import ExtractConfig, ExtractResult, extract, items_sha256, plan, pool
from ._models import (
    SHIPPED,
    LoadedModel,
    ModelError,
    ResolvedModel,
    cache_dir,
    is_byte_level,
    load_model,
    model_max_length,
    resolve_model,
    weights_hash,
)
from ._plan import SENTENCE_AGGREGATIONS, TOKEN_AGGREGATIONS, PlanStats, Segment, plan_windows
from ._versions import package_versions

__all__ = [
    "SENTENCE_AGGREGATIONS",
    "SHIPPED",
    "TOKEN_AGGREGATIONS",
    "ExtractConfig",
    "ExtractResult",
    "LoadedModel",
    "ModelError",
    "PlanStats",
    "ResolvedModel",
    "Segment",
    "cache_dir",
    "extract",
    "is_byte_level",
    "items_sha256",
    "load_model",
    "model_max_length",
    "package_versions",
    "plan",
    "plan_windows",
    "pool",
    "resolve_model",
    "weights_hash",
]
