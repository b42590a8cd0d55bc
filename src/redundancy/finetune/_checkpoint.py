"""The resumable checkpoint ``out/checkpoint/``: written whole or not at all.

Layout: the model as ``save_pretrained`` writes it (safetensors), ``trainer_state.safetensors`` with the
optimizer's tensors and the RNG states, and ``trainer_state.json`` with everything else (step, optimizer
hyper-parameters, scheduler state, logs so far, the run's fingerprint). No pickle: tensors go through
safetensors, the rest through JSON.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._serial import recover_dir, replace_dir
from ..store import sha256_file

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
_TENSORS = "trainer_state.safetensors"
_STATE = "trainer_state.json"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint on disk: its folder (a model folder too) and its JSON state."""

    folder: Path
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def save_checkpoint(out: Path, model, optimizer, scheduler, state: dict[str, Any], device) -> None:
    """Write ``out/checkpoint/`` atomically: model weights, optimizer and scheduler, RNG, ``state``."""
    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=out))
    try:
        model.save_pretrained(tmp)
        opt = optimizer.state_dict()
        tensors: dict[str, Any] = {}
        scalars: dict[str, Any] = {}
        for pid, entry in opt["state"].items():
            for key, value in entry.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{pid}.{key}"] = value.detach().to("cpu").contiguous()
                else:
                    scalars[f"{pid}.{key}"] = value
        tensors["rng.cpu"] = torch.get_rng_state()
        if device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
        save_file(tensors, str(tmp / _TENSORS))
        full = dict(state)
        full["optimizer"] = {"param_groups": opt["param_groups"], "scalars": scalars}
        full["scheduler"] = scheduler.state_dict()
        full["sha256"] = {f.name: sha256_file(f) for f in sorted(tmp.iterdir()) if f.is_file()}
        (tmp / _STATE).write_text(json.dumps(full, indent=1) + "\n")
        replace_dir(tmp, out / CHECKPOINT)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.debug("checkpoint at step %d written to %s", state["step"], out / CHECKPOINT)


def find_checkpoint(out: Path) -> Checkpoint | None:
    """The checkpoint in ``out`` (recovering one left aside by an interrupted commit), else None."""
    target = out / CHECKPOINT
    recover_dir(target)
    if not target.is_dir():
        return None
    damage = _damage(target)
    if damage is not None:
        logger.warning("%s; the checkpoint is removed and training starts from step 0", damage)
        shutil.rmtree(target)
        return None
    return Checkpoint(target, json.loads((target / _STATE).read_text()))


def _damage(folder: Path) -> str | None:
    """What is wrong with a checkpoint folder (unreadable state, a file missing or not the one
    written: the SHA-256 in its state), else None. A checkpoint from before the hashes were kept
    is checked for a readable state only."""
    try:
        state = json.loads((folder / _STATE).read_text())
        sums = state.get("sha256", {})
        state["step"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return f"{folder / _STATE}: not a readable checkpoint state ({err})"
    if not (folder / _TENSORS).is_file():
        return f"{folder / _TENSORS}: missing from the checkpoint"
    for name, want in sums.items():
        f = folder / name
        if not f.is_file():
            return f"{f}: missing from the checkpoint"
        if sha256_file(f) != want:
            return f"{f}: not the file the checkpoint wrote (its SHA-256 differs)"
    return None


def restore_training_state(ckpt: Checkpoint, optimizer, scheduler, device) -> None:
    """Load the optimizer, scheduler and RNG states saved in ``ckpt`` (the model is loaded elsewhere)."""
    import torch
    from safetensors.torch import load_file

    tensors = load_file(str(ckpt.folder / _TENSORS))
    opt_state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, pid, key = name.split(".", 2)
            opt_state.setdefault(int(pid), {})[key] = value
    for name, value in ckpt.state["optimizer"]["scalars"].items():
        pid, key = name.split(".", 1)
        opt_state.setdefault(int(pid), {})[key] = value
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in g.items()}
        for g in ckpt.state["optimizer"]["param_groups"]
    ]
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    scheduler.load_state_dict(dict(ckpt.state["scheduler"]))
    torch.set_rng_state(tensors["rng.cpu"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)


def remove_leftovers(out: Path) -> None:
    """Remove what a killed call left half-written in ``out``: an unfinished checkpoint folder
    (``save_checkpoint``'s ``.checkpoint-XXXXXXXX``) and the atomic writer's temporary files
    (``.NAME.XXXXXXXX.tmp``). One call writes a folder at a time, so none is still being written."""
    if not out.is_dir():
        return
    for entry in out.iterdir():
        if entry.name.startswith(".checkpoint-") and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif re.fullmatch(r"\..+\.[a-z0-9_]{8}\.tmp", entry.name) and not entry.is_dir():
            entry.unlink(missing_ok=True)
        else:
            continue
        logger.info("%s: removed %s, left by an interrupted run", out, entry.name)


def remove_checkpoint(out: Path) -> None:
    target = out / CHECKPOINT
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(target.with_name(target.name + ".old"), ignore_errors=True)  # replace_dir's set-aside
