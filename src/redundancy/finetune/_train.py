"""Fine-tune a model with a sequence-classification (or regression) head on a sentence task.

One invocation trains from the last checkpoint (if any) to ``max_steps`` or the end of the recipe. The
data order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone and dropout's RNG state is
checkpointed, so a run interrupted and resumed ends with the same weights as an uninterrupted one.

The pieces: :class:`_Plan` (what one call trains, fixed before any weights load), :class:`_Session`
(the tokenizer, model, optimizer and encoded data of one call), the loop :func:`_train_steps` with
its step functions, and :func:`finetune`, which strings them together.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import Counter, Progress
from .._serial import write_json_atomic
from ..data import TaskData
from ..extract import (
    ResolvedModel,
    items_sha256,
    model_max_length,
    resolve_model,
    weights_hash,
)
from ..probe import default_metric
from ..store import package_versions
from ._checkpoint import (
    Checkpoint,
    remove_checkpoint,
    remove_leftovers,
    restore_training_state,
    save_checkpoint,
)
from ._config import FinetuneConfig
from ._data import Labels, encode, epoch_order, load_splits, make_batch, split_summary, task_labels
from ._model import evaluate, load_classifier, load_tokenizer, make_optimizer, torch_session
from ._result import DevScore, FinetuneResult, LossPoint
from ._resume import (
    RESULT_FILE,
    TrainLog,
    checkpoint_state,
    fingerprint,
    finished_result,
    matching_checkpoint,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class _Plan:
    """What one call trains: the splits and their targets, the model, the recipe and the folder."""

    train: TaskData
    dev: TaskData | None
    labels: Labels
    metric: str
    model: str
    resolved: ResolvedModel
    base_hash: str
    config: FinetuneConfig
    out: Path
    fingerprint: dict[str, Any]


def _plan(
    task: str | TaskData,
    model: str,
    out_dir: str | Path,
    config: FinetuneConfig,
    dev: TaskData | None,
    data_dir: str | Path | None,
) -> _Plan:
    train, dev = load_splits(task, dev, data_dir, config.max_train_examples)
    labels = task_labels(train, dev)
    metric = default_metric(train.spec.name, labels.label_type)
    resolved = resolve_model(model)
    base_hash = weights_hash(resolved.path)
    train_hash, dev_hash = items_sha256(train), None if dev is None else items_sha256(dev)
    fp = fingerprint(config, resolved.name, base_hash, train.spec.name, labels.names, train_hash, dev_hash)
    return _Plan(train, dev, labels, metric, model, resolved, base_hash, config, Path(out_dir), fp)


@dataclass(frozen=True)
class _Schedule:
    """The step arithmetic of a run over ``n`` examples: ``stop`` is where this call ends."""

    n: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    stop: int

    @classmethod
    def of(cls, n: int, config: FinetuneConfig) -> _Schedule:
        per_epoch = math.ceil(n / config.batch_size)
        total = math.ceil(config.max_epochs * per_epoch)
        stop = total if config.max_steps is None else min(total, config.max_steps)
        return cls(n, config.batch_size, per_epoch, total, stop)

    def epoch(self, step: int) -> float:
        """Passes over the data after ``step`` steps."""
        return step / self.steps_per_epoch

    def examples_from(self, step: int) -> int:
        """Examples in steps ``step``..``stop`` (the last batch of an epoch may be short).

        >>> _Schedule.of(10, FinetuneConfig(batch_size=4, max_epochs=2)).examples_from(1)
        16
        """
        bs, per_epoch = self.batch_size, self.steps_per_epoch
        return int(sum(min(bs, self.n - (s % per_epoch) * bs) for s in range(step, self.stop)))

    def batch(self, order: np.ndarray, step: int) -> np.ndarray:
        """The examples of ``step`` in its epoch's ``order``."""
        b = step % self.steps_per_epoch
        return order[b * self.batch_size : (b + 1) * self.batch_size]


@dataclass(frozen=True, eq=False)
class _Session:
    """The objects of one call: the model, optimizer and scheduler train in place; the encoded
    splits (``n_at_max``: inputs that fill ``max_length``) and the schedule stay fixed."""

    plan: _Plan
    device: Any
    tokenizer: Any
    net: Any
    optimizer: Any
    scheduler: Any
    max_length: int
    feats: list[dict[str, list[int]]]
    n_at_max: int
    dev_feats: list[dict[str, list[int]]]
    dev_at_max: int
    schedule: _Schedule


def _max_length(config: FinetuneConfig, net, tokenizer) -> int:
    max_length = min(config.max_length, model_max_length(net, tokenizer))
    if max_length < config.max_length:
        logger.warning("max_length %d exceeds the model's limit; using %d", config.max_length, max_length)
    return max_length


def _open_session(plan: _Plan, ckpt: Checkpoint | None, device) -> _Session:
    """Tokenizer, model (the checkpoint's weights when resuming), encoded splits, optimizer, schedule."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    config = plan.config
    tokenizer = load_tokenizer(plan.model, plan.resolved)
    torch.manual_seed(config.seed)  # the new head's initialisation
    source = str(ckpt.folder) if ckpt is not None else plan.resolved.source
    net = load_classifier(plan.model, plan.resolved, source, plan.labels, tokenizer).to(device)
    max_length = _max_length(config, net, tokenizer)
    feats, n_at_max = encode(tokenizer, plan.train.items, max_length)  # type: ignore[arg-type]
    dev_feats, dev_at_max = [], 0
    if plan.dev is not None:
        dev_feats, dev_at_max = encode(tokenizer, plan.dev.items, max_length)  # type: ignore[arg-type]
    schedule = _Schedule.of(len(feats), config)
    optimizer = make_optimizer(net, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, schedule.total_steps)
    return _Session(
        plan, device, tokenizer, net, optimizer, scheduler, max_length,
        feats, n_at_max, dev_feats, dev_at_max, schedule,
    )  # fmt: skip


def _start(s: _Session, ckpt: Checkpoint | None) -> tuple[TrainLog, int]:
    """The log and step to go on from: the checkpoint's (optimizer, scheduler, RNG restored) or fresh ones."""
    sched, plan = s.schedule, s.plan
    if ckpt is not None:
        restore_training_state(ckpt, s.optimizer, s.scheduler, s.device)
        log = TrainLog.from_dict(ckpt.state["log"])
        step = ckpt.step
        if step < sched.stop:
            log.resumed_at = (*log.resumed_at, step)
        logger.info("resuming %s at step %d of %d", plan.out, step, sched.total_steps)
    else:
        log, step = TrainLog([], [], [0.0, 0.0]), 0
    logger.info(
        "fine-tuning %s on %s: %d train examples, %d steps (%d per epoch), steps %d..%d in this run",
        plan.resolved.name, plan.train.spec.name, sched.n, sched.total_steps, sched.steps_per_epoch, step,
        sched.stop,
    )  # fmt: skip
    return log, step


def _score_dev(s: _Session, log: TrainLog, step: int) -> None:
    """Score dev after ``step`` steps into ``log`` (once per step; nothing without a dev split)."""
    plan = s.plan
    if plan.dev is None or (log.dev_scores and log.dev_scores[-1].step == step):
        return
    t0 = time.perf_counter()
    scores = evaluate(
        s.net, s.tokenizer, s.dev_feats, plan.labels.dev, plan.labels, plan.metric,
        plan.config.eval_batch_size, s.device,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    log.eval_seconds += seconds
    epoch = s.schedule.epoch(step)
    log.dev_scores.append(DevScore(step, epoch, scores, seconds))
    logger.info("step %d (epoch %.2f): dev %s = %.4f", step, epoch, plan.metric, scores[plan.metric])


def _save(s: _Session, log: TrainLog, step: int) -> None:
    """The resumable checkpoint after ``step`` steps."""
    state = checkpoint_state(step, s.plan.fingerprint, log)
    save_checkpoint(s.plan.out, s.net, s.optimizer, s.scheduler, state, s.device)


def _optimizer_step(s: _Session, idx: np.ndarray) -> tuple[float, float]:
    """One step on the examples ``idx``; returns its loss and the learning rate it used."""
    import torch

    batch = make_batch(s.tokenizer, s.feats, idx, s.plan.labels.train, s.device)
    loss = s.net(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(s.net.parameters(), s.plan.config.max_grad_norm)
    lr = s.optimizer.param_groups[0]["lr"]
    s.optimizer.step()
    s.scheduler.step()
    s.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach()), lr


def _record_loss(s: _Session, log: TrainLog, step: int, loss: float, lr: float) -> None:
    """Add step ``step``'s loss to the window; every ``log_every`` steps (and at the end) log its mean."""
    log.window[0] += loss
    log.window[1] += 1
    if step % s.plan.config.log_every == 0 or step == s.schedule.total_steps:
        log.loss_log.append(LossPoint(step, s.schedule.epoch(step), log.window[0] / log.window[1], lr))
        log.window = [0.0, 0.0]


def _after_step(s: _Session, log: TrainLog, step: int) -> bool:
    """Dev scoring at epoch ends (and the last step), then a checkpoint when one is due; returns
    whether one was written."""
    sched, config = s.schedule, s.plan.config
    if step % sched.steps_per_epoch == 0 or step == sched.total_steps:
        _score_dev(s, log, step)
    at_epoch_end = step % sched.steps_per_epoch == 0
    periodic = config.checkpoint_every is not None and step % config.checkpoint_every == 0
    if step < sched.total_steps and (at_epoch_end or periodic):
        _save(s, log, step)
        return True
    return False


def _progress(s: _Session, step: int, progress: Progress | None) -> Counter:
    """Counts this call's examples as ``finetune TASK`` (the total is reported before the first step)."""
    what, total = f"finetune {s.plan.train.spec.name}", s.schedule.examples_from(step)
    if progress is not None:
        progress(what, 0, total, unit="example")
    return Counter(progress, what, total, unit="example")


def _train_steps(s: _Session, log: TrainLog, step: int, progress: Progress | None) -> tuple[int, int]:
    """Train from ``step`` to the schedule's ``stop``; returns the last step and the last checkpointed one."""
    sched, counter = s.schedule, _progress(s, step, progress)
    s.net.train()
    order, order_epoch = None, -1
    saved_at = step
    while step < sched.stop:
        t0 = time.perf_counter()
        epoch = step // sched.steps_per_epoch
        if epoch != order_epoch:
            order, order_epoch = epoch_order(sched.n, s.plan.config.seed, epoch), epoch
        idx = sched.batch(order, step)
        loss, lr = _optimizer_step(s, idx)
        step += 1
        _record_loss(s, log, step, loss, lr)
        log.train_seconds += time.perf_counter() - t0
        log.train_examples += len(idx)
        counter.update(len(idx))
        if _after_step(s, log, step):
            saved_at = step
    return step, saved_at


def _finish(s: _Session, log: TrainLog, step: int, saved_at: int) -> bool:
    """Last dev score and checkpoint (unless finished), then the model folder; returns ``finished``."""
    config, out = s.plan.config, s.plan.out
    finished = step == s.schedule.total_steps
    _score_dev(s, log, step)
    if not finished and saved_at != step:
        _save(s, log, step)
    if finished and config.keep_checkpoint:
        _save(s, log, step)
    out.mkdir(parents=True, exist_ok=True)
    s.net.save_pretrained(out)
    s.tokenizer.save_pretrained(out)
    return finished


def _result(s: _Session, log: TrainLog, step: int, finished: bool) -> FinetuneResult:
    plan, sched = s.plan, s.schedule
    return FinetuneResult(
        model=plan.resolved.name,
        model_source=plan.resolved.source,
        base_weights_sha256=plan.base_hash,
        out=str(plan.out.resolve()),
        weights_sha256=weights_hash(plan.out),
        task=plan.train.spec.name,
        label_type=plan.labels.label_type,
        labels=plan.labels.names,
        metric=plan.metric,
        config=plan.config,
        train=split_summary(plan.train, s.n_at_max),
        dev=None if plan.dev is None else split_summary(plan.dev, s.dev_at_max),
        max_length=s.max_length,
        steps=step,
        total_steps=sched.total_steps,
        steps_per_epoch=sched.steps_per_epoch,
        finished=finished,
        loss_log=tuple(log.loss_log),
        dev_scores=tuple(log.dev_scores),
        train_seconds=log.train_seconds,
        train_examples=log.train_examples,
        examples_per_s=log.train_examples / log.train_seconds if log.train_seconds > 0 else math.nan,
        eval_seconds=log.eval_seconds,
        resumed_at=log.resumed_at,
        seeds={"seed": plan.config.seed, "carve_seed": plan.train.seed},
        versions=package_versions(),
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
    progress : a :class:`redundancy._progress.Progress`: ``progress("finetune TASK", done, total,
        unit="example")``, ``done`` counting this call's train examples (0 first, then after every step).

    The head is ``AutoModelForSequenceClassification`` with one output per train class (sorted names, as
    the extract stage sorts them) or one regression output for real labels (STS-B). Dev labels that never
    occur in train raise ``ValueError``. Returns the :class:`FinetuneResult`, also saved as ``finetune.json``.
    """
    plan = _plan(task, model, out_dir, config or FinetuneConfig(), dev, data_dir)
    remove_leftovers(plan.out)
    done = finished_result(plan.out, plan.fingerprint)
    if done is not None:
        logger.info(
            "%s already holds the finished fine-tune (dev %s %.4f); nothing to do",
            plan.out, plan.metric, done.dev_score,
        )  # fmt: skip
        return done
    ckpt = matching_checkpoint(plan.out, plan.fingerprint)
    with torch_session(plan.config) as device:
        session = _open_session(plan, ckpt, device)
        log, step = _start(session, ckpt)
        step, saved_at = _train_steps(session, log, step, progress)
        finished = _finish(session, log, step, saved_at)
    result = _result(session, log, step, finished)
    write_json_atomic(plan.out / RESULT_FILE, result.to_dict())
    if finished and not plan.config.keep_checkpoint:
        remove_checkpoint(plan.out)
    logger.info(
        "%s %s: %d/%d steps, %.1f examples/s, dev %s = %.4f",
        plan.out, "finished" if finished else "stopped (max_steps)", step, result.total_steps,
        result.examples_per_s, plan.metric, result.dev_score,
    )  # fmt: skip
    return result
