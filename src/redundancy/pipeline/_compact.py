"""The compact model of the efficient-transfer pipeline: the base model cut to hidden states 0..l and
the small probe on the selected neurons, saved in one self-contained folder (no pickle anywhere).

Layout of a compact folder (see ``docs/pipeline.md``)::

    model/              AutoModel.from_pretrained(...) loads it: l transformer layers, tokenizer beside
    probe.safetensors   coef (K, k) float32 raw scale, intercept (K,), mean/scale (k,), neurons (k,) int64
    compact.json        what it is, where it came from, the row's scores (:class:`CompactInfo`)

Predictions reuse the extraction's planner (windows for long sentences, subword pooling), batching,
padding and pooling, so a compact model sees exactly the rows its probe was trained on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from .._serial import check_fields, json_ready, nan_if_none
from ..data import SentenceExample, TokenSentence
from ..extract import LoadedModel, load_model
from ..extract._extract import Progress, _batches, _no_cache_kwargs, _pad, pool
from ..extract._models import weights_hash
from ..extract._plan import plan_sentence_segments, plan_token_segments
from ..probe import ElasticNetProbe, ProbeTask, evaluate_probe, select_columns
from ..store import package_versions
from ._result import PipelineResult, PipelineRow

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the compact folder layout written here; other versions are refused on load."""

INFO_FILE = "compact.json"
PROBE_FILE = "probe.safetensors"
MODEL_DIR = "model"

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".h5", ".msgpack")  # as extract's weights_hash
_DEV_TOLERANCE = 0.005  # 0.5 points: warn when the retrained probe drifts further from the row's dev
_CHECK_WORDS = ["The", "compact", "model", "checks", "its", "hidden", "states", "."]
_VERSIONED = ("numpy", "torch", "transformers", "tokenizers", "safetensors", "scikit-learn")


# --------------------------------------------------------------------------- which row


def choose_row(result: PipelineResult, min_share: float = 0.97) -> PipelineRow:
    """The pipeline row to export, chosen on **dev** only (test never enters the choice).

    Among rows whose dev score is at least ``min_share * oracle_dev``, the one with the fewest
    selected neurons (ties: the higher dev, then the earlier row); if no row qualifies, the row with
    the highest dev. Rows with a NaN dev score are never chosen.

    Parameters
    ----------
    result : a :class:`PipelineResult`.
    min_share : the share of the oracle's dev score a row must keep (default 0.97, the paper's
        "about 97 %" of the oracle).
    """
    rows = [r for r in result.rows if not math.isnan(r.dev)]
    if not rows:
        raise ValueError("the pipeline result has no row with a dev score")
    target = min_share * result.oracle_dev
    good = [r for r in rows if r.dev >= target]
    if good:
        return min(good, key=lambda r: (r.n_selected, -r.dev))
    logger.warning(
        "no row keeps %.1f%% of the oracle's dev score %.4f; taking the row with the highest dev",
        100 * min_share,
        result.oracle_dev,
    )
    return max(rows, key=lambda r: r.dev)


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class CompactInfo:
    """Everything ``compact.json`` records about a compact model.

    Attributes
    ----------
    format_version : layout version (:data:`FORMAT_VERSION`).
    task, level, aggregation, label_type : from the train store (``level`` token, sentence or
        sentence_pair; ``label_type`` class or real).
    classes : class names in the probe's output order; None for regression.
    metric : the task's metric (the scores below are in it, as fractions).
    selected_layer : l; the compact model computes hidden states 0..l (l transformer layers).
    hidden : width of one hidden state.
    n_layers_full, n_neurons_full : hidden states and neurons of the full model.
    neurons : flat indices ``layer * hidden + unit`` into hidden states 0..l, the probe's columns.
    delta_layer, delta_neuron, threshold, dev, test, oracle_dev, oracle_test : the exported pipeline row.
    probe_dev : the dev score of the probe retrained at export (equals ``dev`` up to solver noise).
    probe_params, seed : the probe template and the seed it was trained with.
    model, model_source, weights_sha256 : the original model (as in the train store's manifest).
    train_store, train_plan_hash : the store the probe was trained on.
    compact_weights_sha256 : hash of ``model/``'s weight files (checked on load).
    identity_modules : top-level modules of the model to replace by the identity after loading (a
        final norm that the full model applies only after its *last* layer, e.g. GPT-2's ``ln_f``).
    max_length, window_overlap : the extraction's input limit and window overlap, so long
        sentences are windowed as they were for the probe's training rows.
    size_bytes : the whole compact folder; full_model_bytes : the original's weight files (None when
        they were not in a local folder).
    versions : package versions; created : ISO time (UTC).
    """

    format_version: int
    task: str
    level: str
    aggregation: str
    label_type: str
    classes: tuple[str, ...] | None
    metric: str
    selected_layer: int
    hidden: int
    n_layers_full: int
    n_neurons_full: int
    neurons: tuple[int, ...]
    delta_layer: float
    delta_neuron: float
    threshold: float | None
    dev: float
    test: float
    oracle_dev: float
    oracle_test: float
    probe_dev: float
    probe_params: dict[str, Any]
    seed: int
    model: str
    model_source: str
    weights_sha256: str
    train_store: str
    train_plan_hash: str
    compact_weights_sha256: str
    identity_modules: tuple[str, ...]
    max_length: int
    window_overlap: float
    size_bytes: int
    full_model_bytes: int | None
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def n_states(self) -> int:
        """Hidden states the compact model computes: the embeddings and ``selected_layer`` layers."""
        return self.selected_layer + 1

    def to_dict(self) -> dict[str, Any]:
        return {f.name: json_ready(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompactInfo:
        kw = check_fields(cls, d, INFO_FILE)
        for name in ("dev", "test", "oracle_dev", "oracle_test", "probe_dev"):
            kw[name] = nan_if_none(kw[name])
        kw["classes"] = None if kw["classes"] is None else tuple(str(c) for c in kw["classes"])
        kw["neurons"] = tuple(int(i) for i in kw["neurons"])
        kw["identity_modules"] = tuple(kw["identity_modules"])
        if kw["threshold"] is not None:
            kw["threshold"] = float(kw["threshold"])
        return cls(**kw)


def read_info(path: str | os.PathLike) -> CompactInfo:
    """``compact.json`` of the compact folder ``path``; a clear ``ValueError`` naming the file if it
    is missing, unreadable, or of another format version."""
    file = Path(path) / INFO_FILE
    if not file.is_file():
        raise ValueError(f"{file}: missing; {path} is not a compact model folder (see export_compact)")
    try:
        d = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: unreadable ({err})") from err
    version = d.get("format_version") if isinstance(d, dict) else None
    if version != FORMAT_VERSION:
        raise ValueError(f"{file}: format_version {version!r}, this code reads version {FORMAT_VERSION}")
    try:
        return CompactInfo.from_dict(d)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{file}: {err}") from err


# --------------------------------------------------------------------------- forward pass


def _n_layers_of(config) -> int:
    """Transformer layers of a config (``num_hidden_layers``, through the attribute maps)."""
    return int(getattr(config, "num_hidden_layers", getattr(config, "n_layer", -1)))


def _states(out, n_states: int) -> tuple:
    """Hidden states 0..l of a model output. A model cut to zero layers returns no hidden states
    for some architectures (BERT, RoBERTa, GPT-2); its ``last_hidden_state`` is then the embeddings."""
    hs = tuple(out.hidden_states or ())
    if not hs and n_states == 1:
        hs = (out.last_hidden_state,)
    if len(hs) != n_states:
        raise RuntimeError(f"internal: the model returned {len(hs)} hidden states, expected {n_states}")
    return hs


def _set_identity(model, names: Sequence[str]) -> None:
    import torch

    for name in names:
        setattr(model, name, torch.nn.Identity())


def _hidden_states(model, enc, n_states: int) -> tuple:
    """Hidden states 0..n_states-1 of one encoded input, float32 on the CPU."""
    import torch

    device = next(model.parameters()).device
    inputs = {k: enc[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    with torch.inference_mode():
        out = model(**inputs, output_hidden_states=True, return_dict=True, **_no_cache_kwargs(model))
    hs = out.hidden_states[:n_states] if len(out.hidden_states or ()) > n_states else _states(out, n_states)
    return tuple(h.float().cpu() for h in hs)


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


# --------------------------------------------------------------------------- export


class _DropLoadReport(logging.Filter):
    """Hides transformers' load report while a model is cut: it lists the weights of the dropped
    layers as unexpected. What matters is checked afterwards (:func:`_check_truncation`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _weight_bytes(path: Path | None) -> int | None:
    if path is None or not path.is_dir():
        return None
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix in _WEIGHT_SUFFIXES) or None


def _write_info(folder: Path, info: CompactInfo) -> CompactInfo:
    """Write ``compact.json`` with ``size_bytes`` counting the whole folder, the file itself included
    (rewritten until the count it holds is the size it has)."""
    for _ in range(5):
        (folder / INFO_FILE).write_text(json.dumps(info.to_dict(), indent=1) + "\n")
        size = _folder_bytes(folder)
        if size == info.size_bytes:
            return info
        info = replace(info, size_bytes=size)
    raise AssertionError("internal: the folder size did not settle")  # pragma: no cover


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
    """Rename the finished folder ``tmp`` to ``out_dir``, replacing an old one.

    ``mkdtemp`` makes the folder private (0700) and safetensors its file (0600); both get the
    permissions an ordinary file gets under the user's umask (those of ``compact.json``)."""
    mode = (tmp / INFO_FILE).stat().st_mode & 0o777
    (tmp / PROBE_FILE).chmod(mode)
    tmp.chmod(mode | (mode & 0o444) >> 2)
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    os.replace(out_dir, old / "compact")
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def export_compact(
    task: ProbeTask,
    row: PipelineRow,
    model: str | LoadedModel,
    out_dir: str | os.PathLike,
    *,
    probe: ElasticNetProbe | None = None,
    seed: int = 0,
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
    probe : the probe template (default ``ElasticNetProbe(random_state=seed)``, as the pipeline's).
    seed : the default template's seed.

    The probe is retrained exactly as the pipeline trains it (train columns of the row's neurons,
    dev for early stopping); a warning is logged if its dev score is more than 0.5 points away
    from ``row.dev``. The cut model's hidden states 0..l are checked against the full model's.
    The folder is built beside ``out_dir`` and renamed into place, so an interrupted export
    leaves nothing half-written.
    """
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it")
    if out_dir.exists() and not (out_dir / INFO_FILE).is_file():
        raise FileExistsError(f"{out_dir} exists and is not a compact model folder; not replacing it")
    manifest = task.train.store.manifest
    layer, h = int(row.selected_layer), task.hidden
    neurons = _check_row(task, row)
    lm = model if isinstance(model, LoadedModel) else load_model(model)
    _check_model(task, lm)
    est, probe_dev = _retrain(
        task, row, neurons, ElasticNetProbe(random_state=seed) if probe is None else probe
    )
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
        info = _write_info(tmp, info)
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


# --------------------------------------------------------------------------- prediction


@dataclass(eq=False)
class CompactModel:
    """A (truncated) base model and a linear probe on some of its hidden-state neurons.

    Build it with :meth:`load` from a folder written by :func:`export_compact`. The constructor
    also takes any loaded model whose hidden states are ``0..info.selected_layer`` (the speed
    benchmark builds the full model with the oracle probe this way).

    Attributes
    ----------
    lm : the model and tokenizer (:class:`redundancy.extract.LoadedModel`).
    info : the record (:class:`CompactInfo`); ``neurons`` are the probe's columns.
    coef : (K, k) float32 weights on the raw activation scale; intercept : (K,) float64.
    device : where the model runs.
    batch_size, max_batch_tokens : batching, as in extraction (sorted by length, padded per batch).
    """

    lm: LoadedModel
    info: CompactInfo
    coef: np.ndarray
    intercept: np.ndarray
    device: str = "cpu"
    batch_size: int = 32
    max_batch_tokens: int | None = 2048
    _layers: list[int] = field(init=False, repr=False)
    _cols: np.ndarray = field(init=False, repr=False)
    _weights: np.ndarray = field(init=False, repr=False)
    _no_cache: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        info = self.info
        neurons = np.asarray(info.neurons, dtype=np.int64)
        K = 1 if info.classes is None else len(info.classes)
        if self.coef.shape != (K, neurons.size) or np.shape(self.intercept) != (K,):
            raise ValueError(
                f"probe shapes coef {self.coef.shape}, intercept {np.shape(self.intercept)} do not fit "
                f"{K} output(s) x {neurons.size} neurons"
            )
        if self.lm.n_layers != info.n_states or self.lm.hidden != info.hidden:
            raise ValueError(
                f"the model gives {self.lm.n_layers} x {self.lm.hidden} hidden states, "
                f"the probe needs {info.n_states} x {info.hidden}"
            )
        # pool only the layers the neurons come from; columns re-indexed into that block
        layer_of, unit = np.divmod(neurons, info.hidden)
        self._layers = [int(i) for i in np.unique(layer_of)]
        slot = {lay: j for j, lay in enumerate(self._layers)}
        self._cols = np.asarray(
            [slot[int(a)] * info.hidden + int(u) for a, u in zip(layer_of, unit, strict=True)]
        )
        self._weights = np.ascontiguousarray(self.coef.T, dtype=np.float32)
        self.intercept = np.asarray(self.intercept, dtype=np.float64)
        self._no_cache = _no_cache_kwargs(self.lm.model)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int | None = None
    ) -> CompactModel:
        """Load a compact folder; refuse (``ValueError`` naming the file) a missing or other-version
        ``compact.json``, ``model/`` weights whose hash differs from the recorded one, or a probe
        file that does not match the record. ``threads`` sets torch's CPU threads."""
        import torch
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        info = read_info(path)
        model_dir = path / MODEL_DIR
        if not (model_dir / "config.json").is_file():
            raise ValueError(f"{model_dir / 'config.json'}: missing; the compact folder is incomplete")
        got = weights_hash(model_dir)
        if got != info.compact_weights_sha256:
            raise ValueError(
                f"{model_dir}: weights hash {got[:12]}... differs from {info.compact_weights_sha256[:12]}... "
                f"recorded in {path / INFO_FILE}; the model files were changed or damaged"
            )
        probe_file = path / PROBE_FILE
        try:
            t = load_file(str(probe_file))
        except (OSError, SafetensorError) as err:
            raise ValueError(f"{probe_file}: unreadable ({err})") from err
        missing = {"coef", "intercept", "neurons"} - set(t)
        if missing:
            raise ValueError(f"{probe_file}: missing tensors {sorted(missing)}")
        if tuple(int(i) for i in t["neurons"]) != info.neurons:
            raise ValueError(f"{probe_file}: its neurons differ from those of {path / INFO_FILE}")
        if threads:
            torch.set_num_threads(threads)
        lm = load_model(str(model_dir), device=device, max_length=info.max_length)
        _set_identity(lm.model, info.identity_modules)
        try:
            return cls(lm=lm, info=info, coef=t["coef"], intercept=t["intercept"], device=device)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    # ------------------------------------------------------------------ core

    def _decide(self, segments, n_rows: int, progress: Progress | None) -> np.ndarray:
        """Probe outputs (n_rows, K) float64 for planned segments, rows in item order."""
        import torch

        out = np.empty((n_rows, self.coef.shape[0]), dtype=np.float64)
        seen = np.zeros(n_rows, dtype=bool)
        with torch.inference_mode():
            for b in _batches(segments, self.batch_size, self.max_batch_tokens):
                segs = [segments[i] for i in b]
                batch, left = _pad(self.lm, segs)
                inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
                res = self.lm.model(**inputs, output_hidden_states=True, return_dict=True, **self._no_cache)
                hs = _states(res, self.info.n_states)
                pooled, items = pool([hs[i] for i in self._layers], segs, left)
                del res, hs
                X = pooled.reshape(len(items), -1)[:, self._cols]
                out[items] = (X @ self._weights).astype(np.float64) + self.intercept
                seen[items] = True
                if progress is not None:
                    progress.update(len(items))
        if not seen.all():
            raise RuntimeError("internal: some rows were not computed")  # pragma: no cover
        return out

    def _output(self, z: np.ndarray) -> list:
        if self.info.classes is None:
            return [float(v) for v in z[:, 0]]
        names = self.info.classes
        return [names[i] for i in z.argmax(axis=1)]

    def _require(self, token: bool) -> None:
        if token and self.info.level != "token":
            raise ValueError(f"this compact model classifies {self.info.level}s; use predict_texts")
        if not token and self.info.level == "token":
            raise ValueError("this compact model tags words (a token task); use predict_words")

    # ------------------------------------------------------------------ token tasks

    def decision_words(
        self, sentences: Sequence[Sequence[str]], *, source: str = "input", progress: Progress | None = None
    ) -> np.ndarray:
        """Probe outputs for every word, sentences concatenated in order: (n_words, K) logits, or
        (n_words, 1) values for regression. Long sentences are windowed as in extraction."""
        self._require(token=True)
        items = [
            TokenSentence(index=i, words=tuple(str(w) for w in ws), labels=None, source=source, line=i + 1)
            for i, ws in enumerate(sentences)
            if len(ws)
        ]
        n_rows = sum(len(s.words) for s in items)
        if not n_rows:
            return np.empty((0, self.coef.shape[0]))
        segments, _ = plan_token_segments(
            items,
            self.lm.tokenizer,
            aggregation=self.info.aggregation,
            max_length=self.info.max_length,
            overlap=self.info.window_overlap,
        )
        return self._decide(segments, n_rows, progress)

    def predict_words(
        self, sentences: Sequence[Sequence[str]], *, progress: Progress | None = None
    ) -> list[list]:
        """One tag per word (float values for regression), for pre-split sentences."""
        flat = self._output(self.decision_words(sentences, progress=progress))
        out, start = [], 0
        for ws in sentences:
            out.append(flat[start : start + len(ws)])
            start += len(ws)
        return out

    # ------------------------------------------------------------------ sentence tasks

    def decision_texts(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        source: str = "input",
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Probe outputs (n_texts, K) for texts (and their second sentences for a pair task)."""
        self._require(token=False)
        is_pair = self.info.level == "sentence_pair"
        if is_pair and pairs is None:
            raise ValueError("this is a sentence-pair task: give pairs (the second sentences)")
        if not is_pair and pairs is not None:
            raise ValueError("this is a single-sentence task: pairs must be None")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        if not texts:
            return np.empty((0, self.coef.shape[0]))
        items = [
            SentenceExample(
                index=i,
                text=str(t),
                text_pair=None if pairs is None else str(pairs[i]),
                label=None,
                source=source,
                line=i + 1,
            )
            for i, t in enumerate(texts)
        ]
        segments, _ = plan_sentence_segments(
            items, self.lm.tokenizer, aggregation=self.info.aggregation, max_length=self.info.max_length
        )
        return self._decide(segments, len(items), progress)

    def predict_texts(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, *, progress: Progress | None = None
    ) -> list:
        """One label per text (float values for regression)."""
        return self._output(self.decision_texts(texts, pairs, progress=progress))
