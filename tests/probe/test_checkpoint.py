"""Probe-family checkpoints: a killed probe stage resumes with the families it finished, and ends
with the result of an uninterrupted run."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest

from redundancy.probe import ElasticNetProbe, FamilyCheckpoint, layer_probes, run_task_redundancy

PROBE = ElasticNetProbe(max_epochs=4, random_state=0)


def _result(task, **kw):
    return run_task_redundancy(
        task,
        probe=PROBE,
        n_random=1,
        probe_seeds=0,
        ablation_shares=(),
        rankings=("paper", "probeless"),
        **kw,
    ).to_dict()


def _strip(d):
    if isinstance(d, dict):
        return {
            k: _strip(v) for k, v in d.items() if k not in ("seconds", "timings", "fit_seconds", "created")
        }
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def test_a_family_is_read_back_not_trained(task, tmp_path):
    cp = FamilyCheckpoint(tmp_path / "cp", scope="stores-a")
    first = layer_probes(dataclasses.replace(task, checkpoint=cp), PROBE)
    assert (cp.saved, cp.hits) == (1, 0)
    again = FamilyCheckpoint(tmp_path / "cp", scope="stores-a")
    second = layer_probes(dataclasses.replace(task, checkpoint=again), PROBE)
    assert (again.saved, again.hits) == (0, 1)
    np.testing.assert_array_equal(first.estimator.coef_, second.estimator.coef_)
    assert _strip(first.oracle.to_dict()) == _strip(second.oracle.to_dict())
    # other data (scope), other labels or another probe: not answered from the checkpoint
    other = FamilyCheckpoint(tmp_path / "cp", scope="stores-b")
    layer_probes(dataclasses.replace(task, checkpoint=other), PROBE)
    assert other.hits == 0
    flipped = dataclasses.replace(task.train, y=task.train.y[::-1].copy())
    same = FamilyCheckpoint(tmp_path / "cp", scope="stores-a")
    layer_probes(dataclasses.replace(task, train=flipped, checkpoint=same), PROBE)
    layer_probes(dataclasses.replace(task, checkpoint=same), ElasticNetProbe(max_epochs=4, random_state=1))
    assert same.hits == 0


def test_killed_stage_resumes_with_what_it_finished(task, tmp_path, monkeypatch):
    """Kill the analysis inside the minimal-set search; the rerun reads the layer and top-k families
    back, trains the rest, and gives exactly the uninterrupted result."""
    import redundancy.probe._redundancy as red

    plain = _result(task)
    cp_dir = tmp_path / "cp"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(red, "minimal_neuron_set", killed)
    with pytest.raises(KeyboardInterrupt):
        _result(dataclasses.replace(task, checkpoint=FamilyCheckpoint(cp_dir, "s")))
    monkeypatch.undo()
    saved = sorted(p.name for p in cp_dir.iterdir() if not p.name.startswith("."))
    assert len(saved) >= 2  # the layer family and the rankings' top-k curves
    cp = FamilyCheckpoint(cp_dir, "s")
    resumed = _result(dataclasses.replace(task, checkpoint=cp))
    assert cp.hits == len(saved)
    assert _strip(resumed) == _strip(plain)


def test_damaged_family_is_trained_again(task, tmp_path, caplog):
    cp = FamilyCheckpoint(tmp_path / "cp", scope="s")
    first = layer_probes(dataclasses.replace(task, checkpoint=cp), PROBE)
    (family,) = [p for p in (tmp_path / "cp").iterdir() if not p.name.startswith(".")]
    weights = family / "probe-0.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    again = FamilyCheckpoint(tmp_path / "cp", scope="s")
    with caplog.at_level(logging.WARNING, logger="redundancy"):
        second = layer_probes(dataclasses.replace(task, checkpoint=again), PROBE)
    assert again.hits == 0 and again.saved == 1
    assert any(str(family) in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(first.estimator.coef_, second.estimator.coef_)
    index = json.loads((family / "family.json").read_text())
    assert len(index["files"]) == len(index["sha256"]) == 2 * task.n_layers - 1
