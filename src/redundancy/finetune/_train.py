"""Fine-tune a model with a sequence-classification (or regression) head on a sentence task.

One invocation trains from the last checkpoint (if any) to ``max_steps`` or the end of the recipe. The
data order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone and dropout's RNG state is
checkpointed, so a run interrupted and resumed ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._serial import write_json_atomic
from .._torch import torch_threads
from ..data import SentenceExample, TaskData, load_task
from ..extract import (
    SHIPPED,
    ModelError,
    ResolvedModel,
    is_byte_level,
    items_sha256,
    model_max_length,
    package_versions,
    resolve_model,
    weights_hash,
)
from ..probe import default_metric, score_all
from ._checkpoint import (
    Checkpoint,
    find_checkpoint,
    remove_checkpoint,
    restore_training_state,
    save_checkpoint,
)
from ._config import FinetuneConfig
from ._result import DevScore, FinetuneResult, LossPoint, SplitSummary

logger = logging.getLogger(__name__)

RESULT_FILE = "finetune.json"


class Progress(Protocol):
    """Anything with ``update(n)`` (a tqdm bar); ``reset(total=...)`` is called first when present."""

    def update(self, n: int) -> object: ...


# ------------------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class _Labels:
    """Targets of both splits: class ids (into ``names``) or real values."""

    label_type: str
    names: tuple[str, ...]
    train: np.ndarray
    dev: np.ndarray | None


def _check_split(data: TaskData, what: str) -> None:
    if data.spec.level not in ("sentence", "sentence_pair"):
        raise ValueError(f"fine-tuning needs a sentence task; {data.spec.name!r} is {data.spec.level}-level")
    if not data.items:
        raise ValueError(f"the {what} split of {data.spec.name!r} is empty")
    missing = [e.index for e in data.items if e.label is None]  # type: ignore[union-attr]
    if missing:
        raise ValueError(
            f"{len(missing)} {what} examples of {data.spec.name!r} have no label (first: {missing[0]})"
        )


def _splits(
    task: str | TaskData, dev: TaskData | None, data_dir: str | Path | None, cap: int | None
) -> tuple[TaskData, TaskData | None]:
    """The train split (first ``cap`` items) and the dev split, loaded by name or taken as given."""
    if isinstance(task, str):
        train = load_task(task, "train", data_dir, max_items=cap)
        dev = load_task(task, "dev", data_dir) if dev is None else dev
    else:
        train = task
        if cap is not None and cap < len(train.items):
            note = f"max_train_examples={cap}: kept the first {cap} of {len(train.items)} items"
            train = replace(train, items=train.items[:cap], notes=(*train.notes, note))
    _check_split(train, "train")
    if dev is not None:
        _check_split(dev, "dev")
        if dev.spec.label_type != train.spec.label_type:
            raise ValueError("train and dev splits have different label types")
    return train, dev


def _labels(train: TaskData, dev: TaskData | None) -> _Labels:
    """Class names sorted as the extract stage sorts them (from train); dev classes must occur in train."""
    if train.spec.label_type == "real":
        y_dev = None if dev is None else np.asarray([e.label for e in dev.items], dtype=np.float32)
        return _Labels("real", (), np.asarray([e.label for e in train.items], dtype=np.float32), y_dev)
    names = tuple(sorted({str(e.label) for e in train.items}))
    if len(names) < 2:
        raise ValueError(
            f"the train split of {train.spec.name!r} has a single class {names}; need two or more"
        )
    index = {n: i for i, n in enumerate(names)}
    y_dev = None
    if dev is not None:
        unseen = sorted({str(e.label) for e in dev.items} - set(names))
        if unseen:
            raise ValueError(
                f"dev labels {unseen} of {dev.spec.name!r} never occur in train "
                f"(train classes: {list(names)}); the classification head cannot predict them: "
                "use a larger train split"
            )
        y_dev = np.asarray([index[str(e.label)] for e in dev.items], dtype=np.int64)
    return _Labels(
        "class", names, np.asarray([index[str(e.label)] for e in train.items], dtype=np.int64), y_dev
    )


def _summary(data: TaskData, n_at_max: int) -> SplitSummary:
    return SplitSummary(
        data.split, len(data.items), dict(data.files), items_sha256(data), data.seed, n_at_max
    )


def encode(
    tokenizer, items: Sequence[SentenceExample], max_length: int
) -> tuple[list[dict[str, list[int]]], int]:
    """Tokenize sentences or pairs as the tokenizer defines them (``longest_first`` truncation), unpadded.

    Returns one feature dict per example and how many fill ``max_length`` (truncated, or exactly that long).
    """
    pairs = [e.text_pair for e in items]
    if any(p is None for p in pairs) and any(p is not None for p in pairs):
        raise ValueError("a split mixes single sentences and sentence pairs")
    features: list[dict[str, list[int]]] = []
    for start in range(0, len(items), 1024):
        chunk = items[start : start + 1024]
        texts = [e.text for e in chunk]
        second = None if pairs[0] is None else [e.text_pair for e in chunk]
        enc = tokenizer(texts, second, truncation=True, max_length=max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        features.extend({k: enc[k][i] for k in keys} for i in range(len(chunk)))
    return features, sum(len(f["input_ids"]) >= max_length for f in features)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` train examples in ``epoch``: a permutation drawn from ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _batch(tokenizer, features: Sequence[dict[str, list[int]]], idx, labels: np.ndarray | None, device):
    """Pad the chosen examples to the longest of them (the tokenizer's pad token and side)."""
    import torch

    batch = tokenizer.pad([features[i] for i in idx], return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    if labels is not None:
        batch["labels"] = torch.as_tensor(labels[np.asarray(idx)], device=device)
    return batch


# ------------------------------------------------------------------------------------------- the model
def _hub_kwargs(resolved: ResolvedModel) -> dict[str, Any]:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    return {"local_files_only": True} if offline and resolved.path is None else {}


@contextmanager
def _model_errors(ref: str, resolved: ResolvedModel) -> Iterator[None]:
    """Turn transformers' ``OSError`` into a :class:`ModelError` that says what to do (as ``load_model``)."""
    try:
        yield
    except OSError as err:
        if resolved.path is None:
            hint = (
                "HF_HUB_OFFLINE=1 is set and the model is not in the local Hugging Face cache"
                if _hub_kwargs(resolved)
                else "the hub could not be reached (set HF_HUB_OFFLINE=1 to fail fast offline)"
            )
            raise ModelError(
                f"cannot load {ref!r} from the Hugging Face hub: {hint}. Pass a local folder saved with "
                f"save_pretrained, or one of the shipped checkpoints: {', '.join(SHIPPED)}"
            ) from err
        raise ModelError(f"cannot load the model in {resolved.source}: {err}") from err


def load_tokenizer(ref: str, resolved: ResolvedModel):
    """A fast tokenizer as ``load_model`` makes it: byte-level BPE with ``add_prefix_space``, a pad token."""
    from transformers import AutoTokenizer

    kwargs = _hub_kwargs(resolved)
    with _model_errors(ref, resolved):
        tok = AutoTokenizer.from_pretrained(resolved.source, **kwargs)
        if is_byte_level(tok) and not getattr(tok, "add_prefix_space", False):
            tok = AutoTokenizer.from_pretrained(resolved.source, add_prefix_space=True, **kwargs)
    if (
        tok.pad_token is None
    ):  # GPT-2: pad with end-of-text on the right; the head pools the last non-pad token
        tok.pad_token = tok.eos_token or tok.unk_token
        tok.padding_side = "right"
    return tok


def _load_classifier(ref: str, resolved: ResolvedModel, source: str, labels: _Labels, tokenizer):
    from transformers import AutoModelForSequenceClassification

    if labels.label_type == "real":
        head: dict[str, Any] = {"num_labels": 1, "problem_type": "regression"}
    else:
        head = {
            "num_labels": len(labels.names),
            "id2label": dict(enumerate(labels.names)),
            "label2id": {n: i for i, n in enumerate(labels.names)},
            "problem_type": "single_label_classification",
        }
    kwargs = _hub_kwargs(resolved) if source == resolved.source else {}
    with _model_errors(ref, resolved):
        model = AutoModelForSequenceClassification.from_pretrained(
            source, pad_token_id=tokenizer.pad_token_id, **head, **kwargs
        )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def _optimizer(model, config: FinetuneConfig):
    """AdamW with HF's grouping: biases and LayerNorm weights are never decayed."""
    import torch

    norms = {
        id(p)
        for m in model.modules()
        if isinstance(m, torch.nn.LayerNorm)
        for p in m.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or id(p) in norms else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999), eps=config.adam_epsilon)


@contextmanager
def _torch_session(config: FinetuneConfig):
    """Threads and RNG for the run only: the caller's thread count and RNG states are restored afterwards."""
    import torch

    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} asked for, but CUDA is not available")
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch_threads(config.threads), torch.random.fork_rng(devices=devices):
        yield device


def evaluate(
    model, tokenizer, features, y: np.ndarray, labels: _Labels, metric: str, batch_size: int, device
):
    """The task metric and its companions on one split (inputs sorted by length, padded per batch)."""
    import torch

    order = sorted(range(len(features)), key=lambda i: (-len(features[i]["input_ids"]), i))
    pred = np.empty(len(features), dtype=np.float64 if labels.label_type == "real" else np.int64)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logits = model(**_batch(tokenizer, features, idx, None, device)).logits.float().cpu().numpy()
            pred[idx] = logits[:, 0] if labels.label_type == "real" else logits.argmax(-1)
    model.train(was_training)
    return score_all(metric, labels.label_type, y, pred, class_names=labels.names or None)


# -------------------------------------------------------------------------------------------- the run
def _fingerprint(
    config: FinetuneConfig,
    model: str,
    base_hash: str,
    task: str,
    labels: tuple[str, ...],
    train: str,
    dev: str | None,
) -> dict[str, Any]:
    """What the final weights depend on: a checkpoint or finished run with another fingerprint is refused."""
    return json.loads(
        json.dumps(
            {
                "recipe": config.recipe(),
                "model": model,
                "base_weights_sha256": base_hash,
                "task": task,
                "labels": list(labels),
                "train_items_sha256": train,
                "dev_items_sha256": dev,
            }
        )
    )


def _result_fingerprint(r: FinetuneResult) -> dict[str, Any]:
    dev = None if r.dev is None else r.dev.items_sha256
    return _fingerprint(r.config, r.model, r.base_weights_sha256, r.task, r.labels, r.train.items_sha256, dev)


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = [k for k in a if k != "recipe" and a.get(k) != b.get(k)]
    ra, rb = a.get("recipe", {}), b.get("recipe", {})
    return out + [k for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)]


def _finished(out: Path, fingerprint: dict[str, Any]) -> FinetuneResult | None:
    """The result of a finished run in ``out`` with this fingerprint; an error if it was another run."""
    path = out / RESULT_FILE
    if not path.is_file():
        return None
    done = FinetuneResult.from_dict(json.loads(path.read_text()))
    diff = _differences(fingerprint, _result_fingerprint(done))
    if diff:
        raise ValueError(
            f"{out} already holds a fine-tuned model of another run (it differs in: {', '.join(diff)}); "
            "choose another output folder or delete it"
        )
    return done if done.finished else None


@dataclass
class _Log:
    """What the run has recorded so far (saved in every checkpoint, so a resumed run continues it)."""

    loss_log: list[LossPoint]
    dev_scores: list[DevScore]
    window: list[float]  # [sum of step losses, steps] since the last loss point
    train_seconds: float = 0.0
    train_examples: int = 0
    eval_seconds: float = 0.0
    resumed_at: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss_log": [p.to_dict() for p in self.loss_log],
            "dev_scores": [s.to_dict() for s in self.dev_scores],
            "window": list(self.window),
            "train_seconds": self.train_seconds,
            "train_examples": self.train_examples,
            "eval_seconds": self.eval_seconds,
            "resumed_at": list(self.resumed_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Log:
        return cls(
            [LossPoint.from_dict(p) for p in d["loss_log"]],
            [DevScore.from_dict(s) for s in d["dev_scores"]],
            [float(x) for x in d["window"]],
            float(d["train_seconds"]),
            int(d["train_examples"]),
            float(d["eval_seconds"]),
            tuple(int(x) for x in d["resumed_at"]),
        )


def finetune(
    task: str | TaskData,
    model: str,
    out_dir: str | Path,
    config: FinetuneConfig | None = None,
    *,
    dev: TaskData | None = None,
    data_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` on a sentence task and save a standard Hugging Face folder in ``out_dir``.

    Parameters
    ----------
    task : a task name (its ``train`` split is trained on, ``dev`` scored after each epoch) or a train
        :class:`TaskData` (then ``dev`` is optional).
    model : a model folder, a shipped checkpoint name or a hub id (see ``redundancy.extract.resolve_model``).
    out_dir : output folder: the fine-tuned model and tokenizer (``save_pretrained``), ``finetune.json``
        and, while training, ``checkpoint/``. Rerunning the same call resumes from that checkpoint; on a
        finished folder it returns the saved result.
    config : the recipe, caps and placement (:class:`FinetuneConfig`; defaults: the paper's recipe).
    dev : the dev split when ``task`` is a :class:`TaskData`.
    data_dir : data directory for a task name (see ``redundancy.data.resolve_data_dir``).
    progress : ``update(n)`` after every step with its number of examples (``reset(total=...)`` first).

    The head is ``AutoModelForSequenceClassification`` with one output per train class (sorted names, as
    the extract stage sorts them) or one regression output for real labels (STS-B). Dev labels that never
    occur in train raise ``ValueError``. Returns the :class:`FinetuneResult`, also saved as ``finetune.json``.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    config = config or FinetuneConfig()
    out = Path(out_dir)
    train, dev = _splits(task, dev, data_dir, config.max_train_examples)
    labels = _labels(train, dev)
    metric = default_metric(train.spec.name, labels.label_type)
    resolved = resolve_model(model)
    base_hash = weights_hash(resolved.path)
    train_hash = items_sha256(train)
    dev_hash = None if dev is None else items_sha256(dev)
    fingerprint = _fingerprint(
        config, resolved.name, base_hash, train.spec.name, labels.names, train_hash, dev_hash
    )
    done = _finished(out, fingerprint)
    if done is not None:
        logger.info(
            "%s already holds the finished fine-tune (dev %s %.4f); nothing to do",
            out,
            metric,
            done.dev_score,
        )
        return done
    ckpt: Checkpoint | None = find_checkpoint(out)
    if ckpt is not None:
        diff = _differences(fingerprint, ckpt.state["fingerprint"])
        if diff:
            raise ValueError(
                f"{ckpt.folder} was written by another run (it differs in: {', '.join(diff)}); "
                "delete it to start afresh, or choose another output folder"
            )

    with _torch_session(config) as device:
        tokenizer = load_tokenizer(model, resolved)
        torch.manual_seed(config.seed)  # the new head's initialisation
        source = str(ckpt.folder) if ckpt is not None else resolved.source
        net = _load_classifier(model, resolved, source, labels, tokenizer).to(device)
        max_length = min(config.max_length, model_max_length(net, tokenizer))
        if max_length < config.max_length:
            logger.warning("max_length %d exceeds the model's limit; using %d", config.max_length, max_length)
        feats, n_at_max = encode(tokenizer, train.items, max_length)  # type: ignore[arg-type]
        dev_feats, dev_at_max = ([], 0) if dev is None else encode(tokenizer, dev.items, max_length)  # type: ignore[arg-type]
        n = len(feats)
        steps_per_epoch = math.ceil(n / config.batch_size)
        total_steps = math.ceil(config.max_epochs * steps_per_epoch)
        stop = total_steps if config.max_steps is None else min(total_steps, config.max_steps)
        optimizer = _optimizer(net, config)
        scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, total_steps)
        if ckpt is not None:
            restore_training_state(ckpt, optimizer, scheduler, device)
            log = _Log.from_dict(ckpt.state["log"])
            step = ckpt.step
            if step < stop:
                log.resumed_at = (*log.resumed_at, step)
            logger.info("resuming %s at step %d of %d", out, step, total_steps)
        else:
            log, step = _Log([], [], [0.0, 0.0]), 0
        logger.info(
            "fine-tuning %s on %s: %d train examples, %d steps (%d per epoch), steps %d..%d in this run",
            resolved.name, train.spec.name, n, total_steps, steps_per_epoch, step, stop,
        )  # fmt: skip

        def remaining_examples() -> int:
            sizes = [
                min(config.batch_size, n - (s % steps_per_epoch) * config.batch_size)
                for s in range(step, stop)
            ]
            return int(sum(sizes))

        if progress is not None and hasattr(progress, "reset"):
            progress.reset(total=remaining_examples())

        def state() -> dict[str, Any]:
            return {"step": step, "fingerprint": fingerprint, "log": log.to_dict()}

        def score_dev() -> None:
            if dev is None or (log.dev_scores and log.dev_scores[-1].step == step):
                return
            t0 = time.perf_counter()
            scores = evaluate(
                net, tokenizer, dev_feats, labels.dev, labels, metric, config.eval_batch_size, device
            )
            seconds = time.perf_counter() - t0
            log.eval_seconds += seconds
            log.dev_scores.append(DevScore(step, step / steps_per_epoch, scores, seconds))
            logger.info(
                "step %d (epoch %.2f): dev %s = %.4f", step, step / steps_per_epoch, metric, scores[metric]
            )

        net.train()
        order, order_epoch = None, -1
        saved_at = step
        while step < stop:
            t0 = time.perf_counter()
            epoch, b = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(n, config.seed, epoch), epoch
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            loss = net(**_batch(tokenizer, feats, idx, labels.train, device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            log.window[0] += float(loss.detach())
            log.window[1] += 1
            log.train_seconds += time.perf_counter() - t0
            log.train_examples += len(idx)
            if progress is not None:
                progress.update(len(idx))
            if step % config.log_every == 0 or step == total_steps:
                log.loss_log.append(
                    LossPoint(step, step / steps_per_epoch, log.window[0] / log.window[1], lr)
                )
                log.window = [0.0, 0.0]
            if step % steps_per_epoch == 0 or step == total_steps:
                score_dev()
            at_epoch_end = step % steps_per_epoch == 0
            periodic = config.checkpoint_every is not None and step % config.checkpoint_every == 0
            if step < total_steps and (at_epoch_end or periodic):
                save_checkpoint(out, net, optimizer, scheduler, state(), device)
                saved_at = step
        finished = step == total_steps
        score_dev()
        if not finished and saved_at != step:
            save_checkpoint(out, net, optimizer, scheduler, state(), device)
        if finished and config.keep_checkpoint:
            save_checkpoint(out, net, optimizer, scheduler, state(), device)

        out.mkdir(parents=True, exist_ok=True)
        net.save_pretrained(out)
        tokenizer.save_pretrained(out)

    result = FinetuneResult(
        model=resolved.name,
        model_source=resolved.source,
        base_weights_sha256=base_hash,
        out=str(out.resolve()),
        weights_sha256=weights_hash(out),
        task=train.spec.name,
        label_type=labels.label_type,
        labels=labels.names,
        metric=metric,
        config=config,
        train=_summary(train, n_at_max),
        dev=None if dev is None else _summary(dev, dev_at_max),
        max_length=max_length,
        steps=step,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        finished=finished,
        loss_log=tuple(log.loss_log),
        dev_scores=tuple(log.dev_scores),
        train_seconds=log.train_seconds,
        train_examples=log.train_examples,
        examples_per_s=log.train_examples / log.train_seconds if log.train_seconds > 0 else math.nan,
        eval_seconds=log.eval_seconds,
        resumed_at=log.resumed_at,
        seeds={"seed": config.seed, "carve_seed": train.seed},
        versions=package_versions(),
    )
    write_json_atomic(out / RESULT_FILE, result.to_dict())
    if finished and not config.keep_checkpoint:
        remove_checkpoint(out)
    logger.info(
        "%s %s: %d/%d steps, %.1f examples/s, dev %s = %.4f",
        out, "finished" if finished else "stopped (max_steps)", step, total_steps, result.examples_per_s,
        metric, result.dev_score,
    )  # fmt: skip
    return result
