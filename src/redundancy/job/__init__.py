"""The main job: ``redundancy run CONFIG`` runs extract -> general -> probe -> pipeline -> compact ->
report for each task of a TOML config, caching every stage's result by a key of its inputs.

Public API
----------
load_config(path) -> JobConfig
    Read and check a TOML config (unknown keys and wrong types are errors naming file and key).
JobConfig, ExtractSettings, GeneralSettings, ProbeSettings, PipelineSettings, CompactSettings,
    FinetuneSettings
    The config's sections, with the paper's settings as defaults.
run_job(config, out=None, force=(), progress=None) -> JobResult
    Run (or resume) the job; ``RUN/job.json`` records what ran and what was cached.
StageCache, cache_key
    The cache (``RUN/cache/<stage>/<task>.json``).
"""

from ._cache import StageCache, StageRecord, cache_key
from ._config import (
    DEFAULT_STAGES,
    STAGES,
    CompactSettings,
    ConfigError,
    ExtractSettings,
    FinetuneSettings,
    GeneralSettings,
    JobConfig,
    PipelineSettings,
    ProbeSettings,
    load_config,
)
from ._run import JobProgress, JobResult, RunBusyError, StageRun, run_job

__all__ = [
    "DEFAULT_STAGES",
    "STAGES",
    "CompactSettings",
    "ConfigError",
    "ExtractSettings",
    "FinetuneSettings",
    "GeneralSettings",
    "JobConfig",
    "JobProgress",
    "JobResult",
    "PipelineSettings",
    "ProbeSettings",
    "RunBusyError",
    "StageCache",
    "StageRecord",
    "StageRun",
    "cache_key",
    "load_config",
    "run_job",
]
