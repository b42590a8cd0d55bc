"""Export a pipeline row as a compact model: the base model cut to hidden states 0..l (model
surgery, checked against the full model), the row's probe retrained, both written into one
self-contained folder (:mod:`._record` describes it; no pickle anywhere).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.base import clone

from .._serial import recover_dir, replace_dir
from ..extract import LoadedModel, load_model, no_cache_kwargs, output_states, weights_hash
from ..pipeline import PipelineRow
from ..probe import ElasticNetProbe, ProbeTask, evaluate_probe, select_columns
from ..store import package_versions
from ._record import FORMAT_VERSION, INFO_FILE, MODEL_DIR, PROBE_FILE, CompactInfo, write_info

logger = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".h5", ".msgpack")  # as extract's weights_hash
_DEV_TOLERANCE = 0.005  # 0.5 points: warn when the retrained probe drifts further from the row's dev
_CHECK_WORDS = ["The", "compact", "model", "checks", "its", "hidden", "states", "."]
_VERSIONED = ("numpy", "torch", "transformers", "tokenizers", "safetensors", "scikit-learn")


def _n_layers_of(config) -> int:
    """Transformer layers of a config (``num_hidden_layers``, through the attribute maps)."""
    return int(getattr(config, "num_hidden_layers", getattr(config, "n_layer", -1)))


def _hidden_states(model, enc, n_states: int) -> tuple:
    """Hidden states 0..n_states-1 of one encoded input, float32 on the CPU."""
    import torch

    device = next(model.parameters()).device
    inputs = {k: enc[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    with torch.inference_mode():
        out = model(**inputs, output_hidden_states=True, return_dict=True, **no_cache_kwargs(model))
    hs = output_states(out)
    if len(hs) < n_states:
        raise RuntimeError(f"internal: the model returned {len(hs)} hidden states, expected {n_states}")
    return tuple(h.float().cpu() for h in hs[:n_states])


def _check_truncation(full, cut, tokenizer, n_states: int) -> tuple[str, ...]:
    """Make ``cut``'s hidden states 0..l equal ``full``'s on a test sentence.

    Returns the top-level modules that must become the identity for that: a final norm that the
    full model applies after its last layer only (GPT-2's ``ln_f``). Raises ``ValueError`` when no
    such change makes them equal.
    """
    import torch

    enc = tokenizer(_CHECK_WORDS, is_split_into_words=True, return_tensors="pt")
    want = _hidden_states(full, enc, n_states)

    def matches() -> bool:
        got = _hidden_states(cut, enc, n_states)
        return all(torch.allclose(a, b, atol=1e-4, rtol=1e-4) for a, b in zip(got, want, strict=True))

    if matches():
        return ()
    for name, module in list(cut.named_children()):
        if "norm" not in type(module).__name__.lower():
            continue
        setattr(cut, name, torch.nn.Identity())
        ok = matches()
        setattr(cut, name, module)  # its weights stay in the saved model; loading replaces it
        if ok:
            logger.info(
                "%s: the compact model skips the final %r (the full model applies it after its last layer)",
                type(cut).__name__,
                name,
            )
            return (name,)
    raise ValueError(
        f"{type(cut).__name__}: the model cut to {n_states - 1} layer(s) does not reproduce the full "
        f"model's hidden states 0..{n_states - 1}; this architecture cannot be exported as a compact model"
    )


class _DropLoadReport(logging.Filter):
    """Hides transformers' load report while a model is cut: it lists the weights of the dropped
    layers as unexpected. What matters is checked afterwards (:func:`_check_truncation`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


def _weight_bytes(path: Path | None) -> int | None:
    if path is None or not path.is_dir():
        return None
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix in _WEIGHT_SUFFIXES) or None


def _check_row(task: ProbeTask, row: PipelineRow) -> np.ndarray:
    """The row's neurons as int64, checked against the store's layout."""
    h, L = task.hidden, task.n_layers
    layer = int(row.selected_layer)
    neurons = np.asarray(row.neurons, dtype=np.int64)
    if not 0 <= layer < L:
        raise ValueError(f"row.selected_layer {layer} is outside the store's hidden states 0..{L - 1}")
    if neurons.size == 0 or neurons.min() < 0 or neurons.max() >= (layer + 1) * h:
        raise ValueError(
            f"row.neurons must be non-empty flat indices below (l + 1) * hidden = {(layer + 1) * h}"
        )
    if np.unique(neurons).size != neurons.size:
        raise ValueError("row.neurons has duplicates")
    return neurons


def _check_model(task: ProbeTask, lm: LoadedModel) -> None:
    """The model must be the one the stores were extracted with."""
    m, where = task.train.store.manifest, task.train.store.path
    if lm.weights_sha256 != m.weights_sha256:
        raise ValueError(
            f"{where}: the store was extracted with {m.model!r} (weights {m.weights_sha256[:12]}...), "
            f"but the model {lm.name!r} has weights {lm.weights_sha256[:12]}...; pass the model the "
            "stores were made with"
        )
    if lm.weights_sha256 == "unknown":
        logger.warning("the weights hash of %s is unknown (not a local folder): cannot check it", lm.name)
    if (lm.n_layers, lm.hidden) != (task.n_layers, task.hidden):
        raise ValueError(
            f"{where}: the store has {task.n_layers} x {task.hidden} hidden states, the model "
            f"{lm.name!r} gives {lm.n_layers} x {lm.hidden}"
        )


def _retrain(task: ProbeTask, row: PipelineRow, neurons: np.ndarray, template: ElasticNetProbe):
    """The row's probe retrained as the pipeline trains it; returns it and its dev score."""
    est = clone(template).fit(
        select_columns(task.X_train, neurons), task.train.y, select_columns(task.X_dev, neurons), task.dev.y
    )
    dev = float(evaluate_probe(task, est, neurons, "dev")[task.metric])
    if not abs(dev - row.dev) <= _DEV_TOLERANCE:
        logger.warning(
            "the retrained probe's dev %s is %.4f, the row's %.4f (more than 0.5 points apart)",
            task.metric,
            dev,
            row.dev,
        )
    return est, dev


def _cut_model(lm: LoadedModel, layer: int):
    """``AutoModel.from_pretrained(source, num_hidden_layers=layer)``, checked against the full model;
    returns it and the modules to replace by the identity after loading."""
    from transformers import AutoModel

    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    kwargs = {"local_files_only": True} if offline and lm.resolved.path is None else {}
    report = _DropLoadReport()
    hf_logger = logging.getLogger("transformers.modeling_utils")
    hf_logger.addFilter(report)
    try:
        cut = AutoModel.from_pretrained(lm.resolved.source, num_hidden_layers=layer, **kwargs)
    finally:
        hf_logger.removeFilter(report)
    cut.eval()
    if _n_layers_of(cut.config) != layer:
        raise ValueError(
            f"{type(cut).__name__}: could not cut the model to {layer} layer(s) via num_hidden_layers"
        )
    return cut, _check_truncation(lm.model, cut, lm.tokenizer, layer + 1)


def _install(tmp: Path, out_dir: Path) -> None:
    """Put the finished folder ``tmp`` at ``out_dir``, replacing an old one (:func:`replace_dir`).

    ``mkdtemp`` makes the folder private (0700) and safetensors its file (0600); both get the
    permissions an ordinary file gets under the user's umask (those of ``compact.json``)."""
    mode = (tmp / INFO_FILE).stat().st_mode & 0o777
    (tmp / PROBE_FILE).chmod(mode)
    tmp.chmod(mode | (mode & 0o444) >> 2)
    replace_dir(tmp, out_dir)


def export_compact(
    task: ProbeTask,
    row: PipelineRow,
    model: str | LoadedModel,
    out_dir: str | os.PathLike,
    *,
    probe: ElasticNetProbe | None = None,
    overwrite: bool = False,
) -> CompactInfo:
    """Write the compact model of a pipeline row: the base model cut to hidden states 0..l plus the
    probe on the row's neurons, in one folder that needs nothing else to predict.

    Parameters
    ----------
    task : the train/dev(/test) activations the pipeline ran on (:func:`redundancy.probe.load_probe_task`).
    row : the row to export (see :func:`choose_row`).
    model : the model the stores were extracted with (name, folder or loaded); its weights hash
        must equal the train store's.
    out_dir : the compact folder to create; an existing one is replaced only with ``overwrite``
        (and only if it is a compact folder).
    probe : the probe template, as the pipeline's (default ``ElasticNetProbe()``, seed 0); its
        ``random_state`` is the seed recorded in ``compact.json``.

    The probe is retrained exactly as the pipeline trains it (train columns of the row's neurons,
    dev for early stopping); a warning is logged if its dev score is more than 0.5 points away
    from ``row.dev``. The cut model's hidden states 0..l are checked against the full model's.
    The folder is built beside ``out_dir`` and renamed into place, so an interrupted export
    leaves nothing half-written.
    """
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    recover_dir(out_dir)  # an earlier replacement cut off between its two renames
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it")
    if out_dir.exists() and not (out_dir / INFO_FILE).is_file():
        raise FileExistsError(f"{out_dir} exists and is not a compact model folder; not replacing it")
    manifest = task.train.store.manifest
    layer, h = int(row.selected_layer), task.hidden
    neurons = _check_row(task, row)
    lm = model if isinstance(model, LoadedModel) else load_model(model)
    _check_model(task, lm)
    est, probe_dev = _retrain(task, row, neurons, ElasticNetProbe() if probe is None else probe)
    cut, identity = _cut_model(lm, layer)

    settings = manifest.extra.get("settings", {})
    max_length = int(settings.get("max_length", lm.max_length))
    overlap = float(settings.get("window_overlap", 0.5))
    # the probe's outputs are train class ids (into the label map), in est.classes_ order
    classes = None if task.label_map is None else tuple(task.label_map.classes[int(c)] for c in est.classes_)
    K = est.coef_.shape[0]
    tensors = {
        "coef": np.ascontiguousarray(est.coef_, dtype=np.float32).reshape(K, neurons.size),
        "intercept": np.ascontiguousarray(est.intercept_, dtype=np.float64).reshape(K),
        "mean": np.ascontiguousarray(est.mean_, dtype=np.float64).reshape(neurons.size),
        "scale": np.ascontiguousarray(est.scale_, dtype=np.float64).reshape(neurons.size),
        "neurons": neurons.copy(),
    }

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        cut.save_pretrained(tmp / MODEL_DIR, safe_serialization=True)
        lm.tokenizer.save_pretrained(tmp / MODEL_DIR)
        save_file(tensors, str(tmp / PROBE_FILE), metadata={"format": "redundancy-compact-probe"})
        info = CompactInfo(
            format_version=FORMAT_VERSION,
            task=manifest.task,
            level=manifest.level,
            aggregation=manifest.aggregation,
            label_type=manifest.label_type,
            classes=classes,
            metric=task.metric,
            selected_layer=layer,
            hidden=h,
            n_layers_full=task.n_layers,
            n_neurons_full=task.n_neurons,
            neurons=tuple(int(i) for i in neurons),
            delta_layer=float(row.delta_layer),
            delta_neuron=float(row.delta_neuron),
            threshold=row.threshold,
            dev=float(row.dev),
            test=float(row.test),
            oracle_dev=float(row.oracle_dev),
            oracle_test=float(row.oracle_test),
            probe_dev=probe_dev,
            probe_params=dict(est.get_params()),
            seed=int(est.random_state),
            model=manifest.model,
            model_source=manifest.model_source,
            weights_sha256=manifest.weights_sha256,
            train_store=str(task.train.store.path),
            train_plan_hash=manifest.plan_hash,
            compact_weights_sha256=weights_hash(tmp / MODEL_DIR),
            identity_modules=identity,
            max_length=max_length,
            window_overlap=overlap,
            size_bytes=0,
            full_model_bytes=_weight_bytes(lm.resolved.path),
            versions=dict(package_versions(_VERSIONED)),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        info = write_info(tmp, info)
        _install(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info(
        "compact model in %s: hidden states 0..%d, %d neurons, %.1f MB (full model weights %s)",
        out_dir,
        layer,
        neurons.size,
        info.size_bytes / 1e6,
        "unknown" if info.full_model_bytes is None else f"{info.full_model_bytes / 1e6:.1f} MB",
    )
    return info
