"""A fitted :class:`ElasticNetProbe` on disk: its arrays in safetensors, its parameters in the file's
metadata (JSON); no pickle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._serial import atomic_file
from ._estimator import ElasticNetProbe

_ARRAYS = ("coef_", "intercept_", "scaled_coef_", "mean_", "scale_")
_FORMAT = "redundancy-probe-1"


def save_probe(probe: ElasticNetProbe, path: str | os.PathLike) -> Path:
    """Write a fitted probe to ``path`` (atomically); :func:`load_probe` reads it back."""
    from safetensors.numpy import save

    probe._check_fitted()
    tensors = {name: np.ascontiguousarray(getattr(probe, name)) for name in _ARRAYS}
    if probe.classes_ is not None:
        tensors["classes_"] = np.ascontiguousarray(probe.classes_)
    meta = {
        "format": _FORMAT,
        "params": json.dumps(probe.get_params()),
        "n_iter_": str(int(probe.n_iter_)),
        "n_epochs_": repr(float(probe.n_epochs_)),
        "fit_seconds_": repr(float(probe.fit_seconds_)),
        "solver_settings_": json.dumps(probe.solver_settings_),
    }
    path = Path(path)
    with atomic_file(path) as f:
        f.write(save(tensors, metadata=meta))
    return path


def load_probe(path: str | os.PathLike) -> ElasticNetProbe:
    """The probe :func:`save_probe` wrote; a ``ValueError`` naming the file if it is not one."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (OSError, SafetensorError) as err:
        raise ValueError(f"{path}: not a readable probe file ({err})") from err
    if meta.get("format") != _FORMAT or any(a not in arrays for a in _ARRAYS):
        raise ValueError(f"{path}: not a probe written by save_probe (format {meta.get('format')!r})")
    probe = ElasticNetProbe(**json.loads(meta["params"]))
    for name in _ARRAYS:
        setattr(probe, name, arrays[name])
    probe.classes_ = arrays.get("classes_")
    probe.n_iter_ = int(meta["n_iter_"])
    probe.n_epochs_ = float(meta["n_epochs_"])
    probe.fit_seconds_ = float(meta["fit_seconds_"])
    probe.solver_settings_ = json.loads(meta["solver_settings_"])
    return probe
