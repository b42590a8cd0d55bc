"""What the package refuses to do with untrusted files: no pickle anywhere (nor code from a model
repository), no file name from a manifest or record that leads out of its folder, and nothing taken
from data reaches report.html unescaped."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np
import pytest
from synthetic import TAGS, planted, write_store

import redundancy
from redundancy._serial import check_file_name
from redundancy.store import ActivationStore, StoreError, StoreManifest, StoreWriter

SRC = Path(redundancy.__file__).parent

# ---------------------------------------------------------------------------------- no unsafe loading

PICKLING = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "joblib"}


def _is_true(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _call_name(node: ast.Call) -> str:
    """``torch.load`` for ``torch.load(...)``, ``load`` for ``load(...)``."""
    f = node.func
    if isinstance(f, ast.Attribute):
        base = f.value.id if isinstance(f.value, ast.Name) else "?"
        return f"{base}.{f.attr}"
    return f.id if isinstance(f, ast.Name) else "?"


def _unsafe(path: Path, src: Path) -> list[str]:
    """Unsafe loading in one module, found on its syntax tree (so docstrings saying "no pickle" pass)."""
    where = path.relative_to(src.parent)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        line = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLING]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLING:
            found.append(f"{line}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) in PICKLING:
            found.append(f"{line}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call):
            kw = {k.arg: k.value for k in node.keywords if k.arg is not None}
            if _call_name(node) == "torch.load" and not _is_true(kw.get("weights_only")):
                found.append(f"{line}: torch.load without weights_only=True")
            if "allow_pickle" in kw and not (
                isinstance(kw["allow_pickle"], ast.Constant) and kw["allow_pickle"].value is False
            ):
                found.append(f"{line}: allow_pickle other than False")
            if _is_true(kw.get("trust_remote_code")):
                found.append(f"{line}: trust_remote_code=True hard-coded")
        elif isinstance(node, ast.Dict):  # **{"trust_remote_code": True}
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value in ("trust_remote_code", "allow_pickle"):
                    if _is_true(v):
                        found.append(f"{line}: {k.value}: True hard-coded")
    return sorted(found, key=lambda v: int(v.split(":")[1]))  # in line order (ast.walk is breadth-first)


def _scan(src: Path) -> list[str]:
    return [v for path in sorted(src.rglob("*.py")) for v in _unsafe(path, src)]


def test_no_module_unpickles_or_runs_remote_code():
    assert _scan(SRC) == []


def test_the_scan_finds_each_planted_violation(tmp_path):
    pkg = tmp_path / "redundancy"
    (pkg / "store").mkdir(parents=True)
    (pkg / "store" / "bad.py").write_text(
        "import pickle\n"
        "from joblib import load\n"
        "import numpy as np, torch\n"
        "def f(p, user_choice):\n"
        "    pickle.loads(p)\n"
        "    torch.load(p)\n"
        "    torch.load(p, weights_only=False)\n"
        "    np.load(p, allow_pickle=True)\n"
        "    AutoModel.from_pretrained(p, trust_remote_code=True)\n"
        "    AutoModel.from_pretrained(p, **{'trust_remote_code': True})\n"
    )
    (pkg / "ok.py").write_text(
        '"""No pickle here: pickle.loads is what we avoid."""\n'
        "import numpy as np, torch\n"
        "def g(p, trust_remote_code=False):\n"
        "    np.load(p, allow_pickle=False)\n"
        "    torch.load(p, weights_only=True)\n"
        "    AutoModel.from_pretrained(p, trust_remote_code=trust_remote_code)  # the user's option\n"
    )
    found = _scan(pkg)
    assert [v.split(": ", 1)[1] for v in found] == [
        "import pickle",
        "from joblib import ...",
        "pickle.loads",
        "torch.load without weights_only=True",
        "torch.load without weights_only=True",
        "allow_pickle other than False",
        "trust_remote_code=True hard-coded",
        "trust_remote_code: True hard-coded",
    ]
    assert all(v.startswith("redundancy/store/bad.py:") for v in found)


# ------------------------------------------------------------------------- names stay in their folder

BAD_NAMES = ["../activations.npy", "a/b.npy", "a\\b.npy", "/etc/passwd", "..", "", "C:x.npy"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_plain_file_names_only(name):
    with pytest.raises(ValueError, match="not a plain file name"):
        check_file_name(name, "manifest.json")


def test_plain_names_pass():
    for name in ("activations.npy", "labels.npy", ".lock", "a-b_c.1.npy"):
        assert check_file_name(name, "x") == name


@pytest.fixture
def store(tmp_path):
    acts, y = planted(20, n_layers=2, hidden=6, seed=0)
    return write_store(tmp_path / "s", acts, y, TAGS, split="dev")


@pytest.mark.parametrize("name", ["../../outside.npy", "/tmp/outside.npy", "sub\\..\\x.npy"])
def test_a_manifest_naming_a_file_outside_its_store_is_refused(store, name):
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["sha256"][name] = "0" * 64
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="manifest.json") as err:
        ActivationStore.open(store)
    assert "not a plain file name" in str(err.value) and str(store) in str(err.value)
    with pytest.raises(ValueError, match="not a plain file name"):
        StoreManifest.from_dict(manifest)
    # the writer will not resume it either (it names the manifest and asks for overwrite)
    m = StoreManifest.from_dict({**manifest, "sha256": {}, "complete": False})
    arrays = [np.load(store / f"{name}.npy") for name in ("labels", "sentence_ids", "positions")]
    with pytest.raises(StoreError, match="manifest.json cannot be read"):
        StoreWriter.create_or_resume(store, m, *arrays)


class _Tiny:
    """Stands in for a loaded model: its top-level modules are ``embeddings`` and ``ln_f``."""

    def __init__(self):
        import torch

        self.model = torch.nn.Module()
        self.model.embeddings = torch.nn.Linear(2, 2)
        self.model.ln_f = torch.nn.LayerNorm(2)


def test_compact_identity_modules_must_be_modules_of_the_model():
    import torch

    from redundancy.compact._runtime import _set_identity

    tiny = _Tiny()
    _set_identity(tiny.model, ("ln_f",), "c/compact.json")
    assert isinstance(tiny.model.ln_f, torch.nn.Identity)
    for bad in ("forward", "__class__", "../model", "training"):
        with pytest.raises(ValueError, match=r"c/compact.json: identity_modules names"):
            _set_identity(_Tiny().model, (bad,), "c/compact.json")


def test_a_compact_folder_whose_files_lead_outside_is_refused(tmp_path):
    """``model/`` or ``probe.safetensors`` as links out of the compact folder are not followed."""
    from redundancy.compact import CompactModel
    from redundancy.compact._record import INFO_FILE

    outside = tmp_path / "outside"
    (outside / "model").mkdir(parents=True)
    (outside / "model" / "config.json").write_text("{}")
    folder = tmp_path / "compact"
    folder.mkdir()
    info = _minimal_info()
    (folder / INFO_FILE).write_text(json.dumps(info))
    os.symlink(outside / "model", folder / "model")
    with pytest.raises(ValueError, match="leads outside the compact folder"):
        CompactModel.load(folder)
    os.unlink(folder / "model")
    (folder / "model").mkdir()
    (folder / "model" / "config.json").symlink_to(outside / "model" / "config.json")
    with pytest.raises(ValueError, match="leads outside the compact folder"):
        CompactModel.load(folder)


def _minimal_info() -> dict:
    from dataclasses import fields

    from redundancy.compact import CompactInfo
    from redundancy.compact._record import FORMAT_VERSION

    values = {
        "format_version": FORMAT_VERSION,
        "classes": ["A", "B"],
        "neurons": [0],
        "threshold": None,
        "probe_params": {},
        "identity_modules": [],
        "full_model_bytes": None,
        "versions": {},
        "created": "",
    }
    for f in fields(CompactInfo):
        if f.name not in values:
            values[f.name] = {"int": 1, "float": 0.5, "str": "x"}.get(str(f.type), "x")
    return values


# ------------------------------------------------------------------------------ report.html escapes

PAYLOAD = "<script>alert(1)</script>"
TASK = "<script>alert(1)"  # a task is also a folder name: no "/" in it


def test_report_html_escapes_everything_taken_from_data(tmp_path):
    from redundancy.general import run_general
    from redundancy.report import collect, write_report

    run = tmp_path / "run"
    acts, y = planted(60, n_layers=2, hidden=6, seed=0)
    labels = (PAYLOAD, "NOUN", "VERB", "ADJ")
    names = {"task": TASK, "model": PAYLOAD, "tokenizer": PAYLOAD}
    store = write_store(run / "stores" / f"{TASK}-dev", acts, y, labels, split="dev", **names)
    run_general(store, run / "general" / TASK, figures=False, thresholds=(0.3,))
    (run / "probe" / TASK).mkdir(parents=True)
    (run / "probe" / TASK / "probe.json").write_text(f'{{"broken": "{PAYLOAD}"')  # listed as a problem
    (run / "compact" / TASK).mkdir(parents=True)
    compact = {"task": TASK, "model": PAYLOAD, "selected_layer": 1, "neurons": [1, 2], "size_bytes": 1}
    (run / "compact" / TASK / "compact.json").write_text(json.dumps(compact))
    job = {
        "out": str(run),
        "config": {"model": PAYLOAD, "tasks": [TASK], "title": PAYLOAD, "seed": 0},
        "stages": [{"stage": "general", "task": TASK, "status": PAYLOAD, "seconds": 0.5, "key": PAYLOAD}],
        "seconds": 1.0,
        "versions": {PAYLOAD: PAYLOAD},
        "created": PAYLOAD,
    }
    (run / "job.json").write_text(json.dumps(job))

    report = collect(run)
    assert report.title == PAYLOAD and report.tasks == (TASK,)
    files = write_report(report, tmp_path / "report")
    page = files.html.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;alert(1)") >= 3  # the title, the task, the model: shown, escaped
