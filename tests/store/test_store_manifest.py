"""StoreManifest serialisation and validation; plan_hash; default_store_name."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from redundancy.store import FORMAT_VERSION, StoreManifest, default_store_name, package_versions, plan_hash


def test_manifest_round_trips_through_json(fake):
    m = replace(fake().manifest, complete=True, sha256={"activations.npy": "00" * 32})
    again = StoreManifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m
    assert isinstance(m.to_dict()["label_names"], list)
    assert m.shape == (m.n_items, m.n_layers, m.hidden)
    assert m.n_neurons == m.n_layers * m.hidden


def test_seed_may_be_none(fake):
    m = replace(fake().manifest, seed=None)
    assert StoreManifest.from_dict(json.loads(json.dumps(m.to_dict()))).seed is None
    with pytest.raises(ValueError, match="seed"):
        replace(m, seed=-1)


def test_manifest_normalises_dtype_and_copies_dicts(fake):
    extra = {"batch_size": 8}
    m = replace(fake().manifest, dtype=np.float16, extra=extra)
    assert m.dtype == "float16"
    extra["batch_size"] = 99
    assert m.extra == {"batch_size": 8}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dtype": "float64"}, "dtype"),
        ({"dtype": "not-a-dtype"}, "dtype"),
        ({"level": "word"}, "level"),
        ({"label_type": "ordinal"}, "label_type"),
        ({"n_layers": 0}, "n_layers"),
        ({"n_items": -1}, "n_items"),
        ({"n_chunks": 0}, "n_chunks"),
        ({"hidden": 2.5}, "hidden"),
        ({"label_names": ("A", "A")}, "duplicates"),
        ({"label_type": "real"}, "label_names must be empty"),
        ({"extra": {"device": object()}}, "plain JSON"),
        ({"extra": {"lr": float("nan")}}, "plain JSON"),
        ({"data_files": {"a": 1}}, "data_files"),
    ],
)
def test_manifest_rejects_bad_fields(fake, change, message):
    with pytest.raises(ValueError, match=message):
        replace(fake().manifest, **change)


def test_from_dict_rejects_unknown_missing_and_newer(fake):
    d = fake().manifest.to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        StoreManifest.from_dict({**d, "colour": "blue"})
    with pytest.raises(ValueError, match=r"missing keys \['plan_hash'\]"):
        StoreManifest.from_dict({k: v for k, v in d.items() if k != "plan_hash"})
    with pytest.raises(ValueError, match="newer"):
        StoreManifest.from_dict({**d, "format_version": FORMAT_VERSION + 1})


def test_plan_hash_is_canonical():
    a = plan_hash({"model": "bert", "layers": [1, 2], "opts": {"x": 1, "y": 2.5}})
    b = plan_hash({"opts": {"y": 2.5, "x": 1}, "layers": (1, 2), "model": "bert"})
    assert a == b
    assert re.fullmatch(r"[0-9a-f]{64}", a)
    assert plan_hash({"n": np.int64(3)}) == plan_hash({"n": 3})
    assert plan_hash({"model": "bert", "layers": [2, 1]}) != plan_hash({"model": "bert", "layers": [1, 2]})
    with pytest.raises(TypeError):
        plan_hash(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        plan_hash({"path": object()})
    with pytest.raises(ValueError):
        plan_hash({"x": float("nan")})


def test_default_store_name_is_filesystem_safe():
    name = default_store_name("google-bert/bert-base-cased", "pos", "train", "last")
    assert name == "google-bert--bert-base-cased__pos__train__last"
    odd = default_store_name("../evil model:v1", "ner*", "dev test", "mean")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", odd) and not odd.startswith(".")
    assert "/" not in odd
    long = default_store_name("m" * 300, "t", "s", "a")
    assert len(long) <= 200 and long != default_store_name("m" * 301, "t", "s", "a")
    with pytest.raises(ValueError):
        default_store_name("", "t", "s", "a")


def test_package_versions_has_python_and_numpy():
    versions = package_versions()
    assert {"python", "numpy", "redundancy"} <= set(versions)
    assert all(isinstance(v, str) for v in versions.values())
