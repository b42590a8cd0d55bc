"""Data-directory resolution: explicit > $REDUNDANCY_DATA > repo-sibling shared/data > fetch cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from redundancy.data import DataDirError, _datadir, resolve_data_dir


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Three existing folders (explicit, env, sibling) with the sibling candidate patched in."""
    out = {k: tmp_path / k for k in ("explicit", "env", "sibling")}
    for d in out.values():
        d.mkdir()
    monkeypatch.setattr(_datadir, "_sibling_candidates", lambda: [tmp_path / "nope", out["sibling"]])
    monkeypatch.delenv("REDUNDANCY_DATA", raising=False)
    return out


def test_order_explicit_env_sibling_cache(dirs, monkeypatch, _isolated_cache):
    monkeypatch.setenv("REDUNDANCY_DATA", str(dirs["env"]))
    assert resolve_data_dir(dirs["explicit"]) == dirs["explicit"].resolve()
    assert resolve_data_dir(str(dirs["explicit"])) == dirs["explicit"].resolve()
    assert resolve_data_dir() == dirs["env"].resolve()
    monkeypatch.delenv("REDUNDANCY_DATA")
    assert resolve_data_dir() == dirs["sibling"].resolve()
    dirs["sibling"].rmdir()
    (_isolated_cache / "data").mkdir()
    assert resolve_data_dir() == (_isolated_cache / "data").resolve()


def test_explicit_or_env_that_does_not_exist_is_an_error(dirs, monkeypatch, tmp_path):
    with pytest.raises(DataDirError, match="given explicitly") as info:
        resolve_data_dir(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value) and isinstance(info.value, FileNotFoundError)
    monkeypatch.setenv("REDUNDANCY_DATA", str(tmp_path / "gone"))
    with pytest.raises(DataDirError, match=r"from \$REDUNDANCY_DATA"):
        resolve_data_dir()


def test_error_lists_every_location_tried(dirs, _isolated_cache, tmp_path):
    dirs["sibling"].rmdir()
    with pytest.raises(DataDirError) as info:
        resolve_data_dir()
    msg = str(info.value)
    for expected in (
        "$REDUNDANCY_DATA (not set)",
        str(tmp_path / "nope"),
        str(dirs["sibling"]),
        str(_isolated_cache / "data"),
        "--data-dir",
        "REDUNDANCY_DATA=PATH",
        "redundancy data fetch TASK",
    ):
        assert expected in msg


def test_sibling_found_from_cwd_repo(tmp_path, monkeypatch):
    repo = tmp_path / "work" / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "work" / "shared" / "data").mkdir(parents=True)
    monkeypatch.chdir(repo / "sub")
    assert tmp_path / "work" / "shared" / "data" in [p.resolve() for p in _datadir._sibling_candidates()]


def test_real_repo_sibling(monkeypatch):
    """From this checkout, with no env var, the shared data beside the repository is found (CI layout)."""
    repo = Path(__file__).resolve().parents[2]
    sibling = repo.parent / "shared" / "data"
    if not sibling.is_dir():
        pytest.skip("no shared/data beside the repository")
    monkeypatch.delenv("REDUNDANCY_DATA", raising=False)
    assert resolve_data_dir() == sibling.resolve()
