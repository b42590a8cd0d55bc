"""The compact model at prediction time: load a folder, check it, and tag words or label texts.

Predictions go through the extraction's forward API (:func:`redundancy.extract.plan_segments`:
windows for long sentences, subword pooling; ``batches``, ``forward``, ``pool``), so a compact model
sees exactly the rows its probe was trained on. ``progress`` (:class:`redundancy._progress.Progress`)
hears ``("predict TASK", rows done, rows, "word" or "ex")``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._progress import Counter, Progress
from .._torch import torch_threads
from ..data import SentenceExample, TokenSentence
from ..extract import LoadedModel, batches, forward, load_model, plan_segments, pool, weights_hash
from ._record import INFO_FILE, MODEL_DIR, PROBE_FILE, CompactInfo, read_info


def _set_identity(model, names: Sequence[str], record: Path | str = INFO_FILE) -> None:
    """Replace the model's top-level modules ``names`` by the identity; a name that is not one of
    them (a record asking to overwrite anything else) is refused with a ``ValueError`` naming ``record``."""
    import torch

    children = dict(model.named_children())
    for name in names:
        if not isinstance(name, str) or name not in children:
            raise ValueError(
                f"{record}: identity_modules names {name!r}, which is not a top-level module of the model "
                f"({sorted(children)})"
            )
        setattr(model, name, torch.nn.Identity())


def _inside(path: Path, folder: Path, record: Path) -> Path:
    """``path``, after checking that it resolves (symbolic links followed) inside ``folder``."""
    real, root = path.resolve(), folder.resolve()
    if real != root and root not in real.parents:
        raise ValueError(f"{record}: {path} leads outside the compact folder (to {real}); not loading it")
    return path


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
    threads : torch's CPU threads while predicting (None: torch's own choice); the caller's count
        is restored after each call.
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
    threads: int | None = None
    _weights: np.ndarray = field(init=False, repr=False)

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

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int | None = None
    ) -> CompactModel:
        """Load a compact folder; refuse (``ValueError`` naming the file) a missing or other-version
        ``compact.json``, ``model/`` weights whose hash differs from the recorded one, or a probe
        file that does not match the record. ``threads``: torch's CPU threads while predicting."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        info = read_info(path)
        record = path / INFO_FILE
        model_dir = _inside(path / MODEL_DIR, path, record)
        for file in model_dir.rglob("*"):  # no link inside model/ may lead elsewhere either
            _inside(file, path, record)
        if not (model_dir / "config.json").is_file():
            raise ValueError(f"{model_dir / 'config.json'}: missing; the compact folder is incomplete")
        got = weights_hash(model_dir)
        if got != info.compact_weights_sha256:
            raise ValueError(
                f"{model_dir}: weights hash {got[:12]}... differs from {info.compact_weights_sha256[:12]}... "
                f"recorded in {path / INFO_FILE}; the model files were changed or damaged"
            )
        probe_file = _inside(path / PROBE_FILE, path, record)
        try:
            t = load_file(str(probe_file))
        except (OSError, SafetensorError) as err:
            raise ValueError(f"{probe_file}: unreadable ({err})") from err
        missing = {"coef", "intercept", "neurons"} - set(t)
        if missing:
            raise ValueError(f"{probe_file}: missing tensors {sorted(missing)}")
        if tuple(int(i) for i in t["neurons"]) != info.neurons:
            raise ValueError(f"{probe_file}: its neurons differ from those of {path / INFO_FILE}")
        lm = load_model(str(model_dir), device=device, max_length=info.max_length)
        _set_identity(lm.model, info.identity_modules, record)
        try:
            return cls(
                lm=lm, info=info, coef=t["coef"], intercept=t["intercept"], device=device, threads=threads
            )
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    # ------------------------------------------------------------------ core

    def _decide(self, segments, n_rows: int, progress: Progress | None, unit: str) -> np.ndarray:
        """Probe outputs (n_rows, K) float64 for planned segments, rows in item order."""
        import torch

        out = np.empty((n_rows, self.coef.shape[0]), dtype=np.float64)
        seen = np.zeros(n_rows, dtype=bool)
        counter = Counter(progress, f"predict {self.info.task}", n_rows, unit)
        with torch_threads(self.threads), torch.inference_mode():
            for b in batches(segments, self.batch_size, self.max_batch_tokens):
                segs = [segments[i] for i in b]
                hs, left = forward(self.lm, segs, self.device)
                if len(hs) != self.info.n_states:
                    raise RuntimeError(
                        f"internal: the model returned {len(hs)} hidden states, expected {self.info.n_states}"
                    )
                pooled, items = pool([hs[i] for i in self._layers], segs, left)
                del hs
                X = pooled.reshape(len(items), -1)[:, self._cols]
                out[items] = (X @ self._weights).astype(np.float64) + self.intercept
                seen[items] = True
                counter.update(len(items))
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
        segments, _ = plan_segments(
            items,
            self.lm.tokenizer,
            level="token",
            aggregation=self.info.aggregation,
            max_length=self.info.max_length,
            overlap=self.info.window_overlap,
        )
        return self._decide(segments, n_rows, progress, "word")

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
        segments, _ = plan_segments(
            items,
            self.lm.tokenizer,
            level=self.info.level,
            aggregation=self.info.aggregation,
            max_length=self.info.max_length,
        )
        return self._decide(segments, len(items), progress, "ex")

    def predict_texts(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, *, progress: Progress | None = None
    ) -> list:
        """One label per text (float values for regression)."""
        return self._output(self.decision_texts(texts, pairs, progress=progress))
