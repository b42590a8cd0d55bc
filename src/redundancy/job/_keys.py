"""What each stage of ``redundancy run`` is keyed on: the results it reads (stores' plan hashes,
weights hashes, an upstream stage's key) and exactly the settings it reads, nothing else.

Compute settings (``threads``, ``[probe] threads``, the device) enter no key: they change how fast
a stage runs, not what it writes. The pipeline reads the probe *template* (``solver``, ``l1``,
``l2``) and ``[pipeline]``; with a ``[pipeline] ranking`` other than ``paper``/``abs`` it also reads
the probe stage's ranking (``probe.json``) when the job runs that stage, so the probe stage's key
enters its key then. Otherwise ``[probe] ranking``, ``delta``, ``rank_l1``, ``controls``,
``n_seeds``, ``random_draws`` and the ablation settings reach only the probe stage's key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..data import TASKS
from ..select import WEIGHT_RANKINGS
from ._cache import stage_key
from ._config import JobConfig


def max_tokens(config: JobConfig, task: str, split: str) -> int | None:
    """The word cap of one split: ``[extract] max_train_tokens`` on token tasks' train split."""
    return config.extract.max_train_tokens if split == "train" and TASKS[task].level == "token" else None


def _extract_settings(config: JobConfig) -> dict[str, Any]:
    """``[extract]`` as the keys read it: without ``chunk_items``, which only sets how often an
    extraction commits (the unit it resumes from), not a byte of the stored activations."""
    return {k: v for k, v in config.extract.to_dict().items() if k != "chunk_items"}


def extract_inputs(
    config: JobConfig,
    *,
    model: str,
    weights: str,
    task: str,
    split: str,
    items: str,
    files: Any,
) -> dict[str, Any]:
    """Extraction of one split: the model, the data (``items``: its SHA-256, ``files``: the files'
    hashes) and the ``[extract]`` settings (with the split's resolved word cap)."""
    settings = {k: v for k, v in _extract_settings(config).items() if k != "max_train_tokens"}
    settings["max_tokens"] = max_tokens(config, task, split)
    return {
        "model": model,
        "weights": weights,
        "task": task,
        "split": split,
        "items": items,
        "files": files,
        "settings": settings,
    }


def finetune_inputs(config: JobConfig, task: str, weights: str) -> dict[str, Any]:
    """Fine-tuning: the base model and the recipe (the fields that shape the weights; not the
    checkpoint interval, nor ``compare_pretrained``, which only adds a target)."""
    recipe = config.finetune.finetune_config().recipe()
    return {"model": config.model, "weights": weights, "task": task, "finetune": recipe}


def general_inputs(config: JobConfig, stores: Mapping[str, str]) -> dict[str, Any]:
    """General redundancy: the ``[general] split``'s store, ``[general]``, the seed, the jackknife
    intervals of ``[rigour] general_groups`` (with ``level``) and the null models of ``[rigour]
    nulls`` (with ``random-init``, the null model's store too: ``null_store``)."""
    g = config.general
    inputs = {"store": stores[g.split], "general": g.to_dict(), "seed": config.seed}
    if config.rigour.general_groups:
        inputs["intervals"] = {"groups": config.rigour.general_groups, "level": config.rigour.level}
    if config.rigour.nulls:
        inputs["nulls"] = list(config.rigour.nulls)
        if "random-init" in config.rigour.nulls:
            inputs["null_store"] = stores.get(f"{g.split}.random-init", "")
    return inputs


def probe_inputs(
    config: JobConfig, stores: Mapping[str, str], *, general: str | None = None
) -> dict[str, Any]:
    """The probe stage: the stores, the template and the analysis settings, the seed, the ``[rigour]``
    keys it reads (the bootstrap of its scores, the control task; not the general stage's nulls or
    groups); with ``[probe] sweep_thresholds``, the general stage's key (``general``: it probes that
    stage's cluster representatives)."""
    inputs = {
        "stores": dict(stores),
        "probe": config.probe.analysis_settings(),
        "seed": config.seed,
        "rigour": {k: config.rigour.to_dict()[k] for k in ("bootstrap", "level", "selectivity")},
    }
    if config.probe.sweep_thresholds:
        inputs["general"] = general
    return inputs


def ablate_inputs(
    config: JobConfig, stores: Mapping[str, str], *, probe: str, weights: str
) -> dict[str, Any]:
    """In-model ablation: the probe stage's result (its key: rankings and the oracle probe), the
    stores, ``[ablate]``, ``[extract]`` (it extracts the ablated model), the weights and the seed."""
    return {
        "probe": probe,
        "stores": dict(stores),
        "ablate": config.ablate.to_dict(),
        "extract": _extract_settings(config),
        "weights": weights,
        "seed": config.seed,
    }


def pipeline_ranking_from_probe(config: JobConfig) -> bool:
    """Whether the pipeline takes its ranking of all neurons from the probe stage's ``probe.json``."""
    return config.pipeline.ranking not in WEIGHT_RANKINGS and "probe" in config.stages


def pipeline_inputs(
    config: JobConfig, stores: Mapping[str, str], *, probe: str | None = None
) -> dict[str, Any]:
    """The pipeline: the stores, the probe template, the seed and ``[pipeline]``; and the probe
    stage's key (``probe``) when its ranking orders the pipeline's neurons."""
    inputs = {
        "stores": dict(stores),
        "probe": config.probe.template_settings(),
        "seed": config.seed,
        "pipeline": config.pipeline.to_dict(),
        "bootstrap": {k: config.rigour.to_dict()[k] for k in ("bootstrap", "level")},
    }
    if pipeline_ranking_from_probe(config):
        inputs["ranking_from"] = probe
    return inputs


def compact_inputs(
    config: JobConfig, stores: Mapping[str, str], *, pipeline: str, weights: str
) -> dict[str, Any]:
    """The compact model: the pipeline result (its stage key, or its file's hash), the stores and
    probe template it retrains with, ``[compact]``, the model's weights and the seed."""
    return {
        "pipeline": pipeline,
        "stores": dict(stores),
        "probe": config.probe.template_settings(),
        "compact": config.compact.to_dict(),
        "weights": weights,
        "seed": config.seed,
    }


def stage_keys(
    config: JobConfig,
    stores: Mapping[str, str],
    *,
    task: str | None = None,
    weights: str = "",
    data: Mapping[str, tuple[str, Any]] | None = None,
    versions: dict[str, str] | None = None,
) -> dict[str, str]:
    """The cache keys ``config`` gives one task's stages, as ``run_job`` computes them: what a
    change of config would rerun.

    Parameters
    ----------
    stores : split -> the split's store plan hash.
    task : the task (default: the config's first).
    weights : the analysed model's weights hash (for ``finetune``: the base model's).
    data : split -> ``(items_sha256, files)`` of the task data (default: empty values).
    versions : package versions (``job.json``'s; default none).

    Returns ``{"finetune": ..., "extract/train": ..., ..., "general": ..., "probe": ...,
    "ablate": ..., "pipeline": ..., "compact": ...}``.
    """
    task = task or config.tasks[0]
    versions = versions or {}
    data = data or {}
    keys = {"finetune": stage_key("finetune", finetune_inputs(config, task, weights), versions)}
    for split in stores:
        items, files = data.get(split, ("", {}))
        inputs = extract_inputs(
            config, model=config.model, weights=weights, task=task, split=split, items=items, files=files
        )
        keys[f"extract/{split}"] = stage_key("extract", inputs, versions)
    keys["general"] = stage_key("general", general_inputs(config, stores), versions)
    keys["probe"] = stage_key("probe", probe_inputs(config, stores, general=keys["general"]), versions)
    ablate = ablate_inputs(config, stores, probe=keys["probe"], weights=weights)
    keys["ablate"] = stage_key("ablate", ablate, versions)
    keys["pipeline"] = stage_key("pipeline", pipeline_inputs(config, stores, probe=keys["probe"]), versions)
    compact = compact_inputs(config, stores, pipeline=keys["pipeline"], weights=weights)
    keys["compact"] = stage_key("compact", compact, versions)
    return keys
