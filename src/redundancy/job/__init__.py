"""The main job: ``redundancy run CONFIG`` runs extract -> general -> probe -> pipeline -> compact ->
report for each task of a TOML config, caching every stage's result by a key of its inputs.

Public API
----------
load_config(path) -> JobConfig
    Read and check a TOML config (unknown keys and wrong types are errors naming file and key).
JobConfig, ExtractSettings, GeneralSettings, ProbeSettings, PipelineSettings, CompactSettings,
    FinetuneSettings
    The config's sections, with the stages' own defaults; every one checks its values when built
    (``dataclasses.replace`` included) and raises :class:`ConfigError`.
Compute, EngineSection
    ``JobConfig.compute``: threads, device and engine (``[engine]``: this process or a Ray cluster,
    for the extraction), resolved once per run, in no cache key.
run_job(config, out=None, force=(), progress=None) -> JobResult
    Run (or resume) the job; ``RUN/job.json`` records what ran and what was cached. ``progress``
    is a :class:`redundancy._progress.Progress`.
stage_keys(config, stores, ...)
    The cache keys a config gives one task's stages (what a change of config reruns).
StageCache, cache_key
    The cache (``RUN/cache/<stage>/<task>.json``).
"""

from ._cache import StageCache, StageRecord, cache_key
from ._config import (
    DEFAULT_STAGES,
    STAGES,
    CompactSettings,
    Compute,
    ConfigError,
    EngineSection,
    ExtractSettings,
    FinetuneSettings,
    GeneralSettings,
    JobConfig,
    PipelineSettings,
    ProbeSettings,
    load_config,
)
from ._keys import stage_keys
from ._run import JobResult, RunBusyError, StageRun, run_job

__all__ = [
    "DEFAULT_STAGES",
    "STAGES",
    "CompactSettings",
    "Compute",
    "ConfigError",
    "EngineSection",
    "ExtractSettings",
    "FinetuneSettings",
    "GeneralSettings",
    "JobConfig",
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
    "stage_keys",
]
