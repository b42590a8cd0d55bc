"""Stage 1: run a model over a task split and store every layer's activations.

>>> from redundancy.data import load_task                       # doctest: +SKIP
>>> from redundancy.extract import extract, ExtractConfig        # doctest: +SKIP
>>> extract(load_task("pos", "dev"), "all-MiniLM-L6-v2", "runs/pos-dev")  # doctest: +SKIP

The forward API under it (``plan_segments`` -> ``batches`` -> ``forward`` -> ``pool``, see
``_forward.py``) is public: the compact model predicts through the same four steps. So are the two
steps of an extraction, ``plan_store`` (the store's manifest, metadata and chunks) and
``compute_chunk`` (one chunk's rows), which ``redundancy.scale`` runs on other engines.
"""

from ._extract import (
    ExtractConfig,
    ExtractResult,
    StorePlan,
    compute_chunk,
    extract,
    items_sha256,
    plan,
    plan_store,
)
from ._forward import batches, forward, no_cache_kwargs, output_states, pad, plan_segments, pool
from ._models import (
    SHIPPED,
    LoadedModel,
    ModelError,
    ResolvedModel,
    cache_dir,
    check_device,
    is_byte_level,
    load_model,
    model_max_length,
    resolve_model,
    weights_hash,
)
from ._plan import SENTENCE_AGGREGATIONS, TOKEN_AGGREGATIONS, PlanStats, Segment, plan_windows

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
    "StorePlan",
    "batches",
    "cache_dir",
    "check_device",
    "compute_chunk",
    "extract",
    "forward",
    "is_byte_level",
    "items_sha256",
    "load_model",
    "model_max_length",
    "no_cache_kwargs",
    "output_states",
    "pad",
    "plan",
    "plan_segments",
    "plan_store",
    "plan_windows",
    "pool",
    "resolve_model",
    "weights_hash",
]
