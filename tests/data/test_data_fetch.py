"""fetch(): downloads from a local HTTP mirror, hash verification, atomicity, and the cache as data dir."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from redundancy.data import (
    ChecksumError,
    FetchError,
    NotFetchableError,
    _datadir,
    _fetch,
    fetch,
    fetchable_tasks,
    file_sha256,
    load_task,
    resolve_data_dir,
)


class _QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
        pass

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (_QuietHandler,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mirror(real_data_dir: Path) -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server over the real data directory: (base URL, list of requested paths)."""
    with _serve(real_data_dir) as served:
        yield served


def _leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_fetch_pos_from_mirror(mirror, real_data_dir, tmp_path):
    url, requests = mirror
    seen: list[tuple[str, int, int | None]] = []
    root = fetch("pos", cache_dir=tmp_path, mirror=url, progress=lambda *a, **kw: seen.append(a))
    assert root == tmp_path / "data"
    folder = root / "ud-english-ewt"
    names = ["en_ewt-ud-train.conllu", "en_ewt-ud-dev.conllu", "en_ewt-ud-test.conllu"]
    assert [p.name for p in _leftovers(folder)] == sorted(names)  # no temporary files left
    for name in names:
        assert file_sha256(folder / name) == file_sha256(real_data_dir / "ud-english-ewt" / name)
    assert sorted(requests) == sorted(f"/ud-english-ewt/{n}" for n in names)
    assert seen[-1][0] in names and seen[-1][1] == seen[-1][2]  # done == Content-Length at the end
    # already present and verified: no new download unless forced
    fetch("upos", cache_dir=tmp_path, mirror=url)
    assert len(requests) == 3
    fetch("pos", cache_dir=tmp_path, mirror=url, force=True)
    assert len(requests) == 6


def test_corrupted_file_raises_and_leaves_nothing(real_data_dir, tmp_path):
    served = tmp_path / "served" / "conll2000"
    served.mkdir(parents=True)
    for name in ("train.txt", "test.txt"):
        shutil.copy(real_data_dir / "conll2000" / name, served / name)
    data = bytearray((served / "test.txt").read_bytes())
    data[1000] ^= 0x01
    (served / "test.txt").write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with _serve(tmp_path / "served") as (url, _):
        with pytest.raises(ChecksumError, match="conll2000/test.txt: SHA-256 mismatch"):
            fetch("chunking", cache_dir=cache, mirror=url)
    assert _leftovers(cache) == []  # neither the bad file, nor the good one, nor temporaries
    assert not (cache / "data" / "conll2000").exists()


def test_failed_download_leaves_nothing(mirror, tmp_path):
    url, _ = mirror
    with pytest.raises(FetchError, match="glue/QQP/train.tsv failed"):
        fetch("qqp", cache_dir=tmp_path, mirror=url)  # QQP is not staged: the mirror answers 404
    assert _leftovers(tmp_path) == []


def test_stale_file_is_replaced(mirror, real_data_dir, tmp_path):
    url, _ = mirror
    folder = tmp_path / "data" / "glue" / "RTE"
    folder.mkdir(parents=True)
    (folder / "dev.tsv").write_text("stale\n")
    fetch("rte", cache_dir=tmp_path, mirror=url)
    assert file_sha256(folder / "dev.tsv") == file_sha256(real_data_dir / "glue" / "RTE" / "dev.tsv")


def test_cache_is_found_as_data_dir(mirror, tmp_path, monkeypatch):
    url, _ = mirror
    fetch("pos", cache_dir=tmp_path, mirror=url)
    monkeypatch.delenv("REDUNDANCY_DATA", raising=False)
    monkeypatch.setenv("REDUNDANCY_CACHE", str(tmp_path))
    monkeypatch.setattr(_datadir, "_sibling_candidates", lambda: [])
    assert resolve_data_dir() == (tmp_path / "data").resolve()
    dev = load_task("pos", "dev")
    assert len(dev.items) == 2_001 and dev.n_items == 25_147
    assert next(iter(dev.files)).startswith(str(tmp_path.resolve()))


def test_not_fetchable_tasks_explain_why():
    with pytest.raises(NotFetchableError, match="research agreement"):
        fetch("ner")
    with pytest.raises(NotFetchableError, match="pmb.let.rug.nl"):
        fetch("sem", mirror="http://127.0.0.1:9/")
    assert set(fetchable_tasks()) == {
        "pos", "upos", "chunking", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "cola",
    }  # fmt: skip


def test_embedded_hashes_match_sha256sums(real_data_dir):
    sums = {}
    for line in (real_data_dir / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.removeprefix("./")] = digest
    checked = 0
    for recipe in _fetch._RECIPES.values():
        for f in recipe.files:
            key = f"{recipe.folder}/{f.name}"
            if f.sha256 is None:
                assert key not in sums
            else:
                assert sums[key] == f.sha256, key
                checked += 1
    assert checked == 16


def test_build_mrpc_reproduces_glue_files(real_data_dir, tmp_path):
    """GLUE's MRPC recipe: rows of msr_paraphrase_train.txt whose id pair is in dev_ids go to dev.tsv."""
    train = (real_data_dir / "glue" / "MRPC" / "train.tsv").read_text(encoding="utf-8").splitlines()
    dev = (real_data_dir / "glue" / "MRPC" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    assert train[0] == dev[0] and train[0].startswith("\ufeffQuality")
    msr = tmp_path / "msr_paraphrase_train.txt"
    msr.write_bytes(("\r\n".join([train[0], *train[1:], *dev[1:]]) + "\r\n").encode("utf-8"))
    ids = tmp_path / "mrpc_dev_ids.tsv"
    ids.write_text("".join("\t".join(r.split("\t")[1:3]) + "\n" for r in dev[1:]), encoding="utf-8")
    out_train, out_dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    _fetch.build_mrpc(msr, ids, out_train, out_dev)
    assert file_sha256(out_train) == file_sha256(real_data_dir / "glue" / "MRPC" / "train.tsv")
    assert file_sha256(out_dev) == file_sha256(real_data_dir / "glue" / "MRPC" / "dev.tsv")


def test_zip_member_lookup(tmp_path):
    import zipfile

    path = tmp_path / "SST-2.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("SST-2/original/train.tsv", "x")
        zf.writestr("SST-2/train.tsv", "y")
    with zipfile.ZipFile(path) as zf:
        assert _fetch._zip_member(zf, "train.tsv") == "SST-2/train.tsv"
        with pytest.raises(FetchError, match="no member 'dev.tsv'"):
            _fetch._zip_member(zf, "dev.tsv")


def test_official_zip_recipe_against_local_server(real_data_dir, tmp_path, monkeypatch):
    """The official-source path for GLUE: download the zip, extract the members, verify them."""
    import dataclasses
    import zipfile

    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "RTE.zip", "w") as zf:
        for name in ("train.tsv", "dev.tsv"):
            zf.write(real_data_dir / "glue" / "RTE" / name, f"RTE/{name}")
        zf.writestr("RTE/test.tsv", "index\tsentence1\tsentence2\n")
    with _serve(served) as (url, requests):
        recipe = dataclasses.replace(_fetch._RECIPES["glue/RTE"], url=url + "RTE.zip", archive_sha256=None)
        monkeypatch.setitem(_fetch._RECIPES, "glue/RTE", recipe)
        root = fetch("rte", cache_dir=tmp_path / "cache")
        assert requests == ["/RTE.zip"]
    folder = root / "glue" / "RTE"
    assert sorted(p.name for p in _leftovers(folder)) == ["dev.tsv", "train.tsv"]
    assert len(load_task("rte", "test", root).items) == 277


def test_official_gzip_recipe_against_local_server(real_data_dir, tmp_path, monkeypatch):
    """The official-source path for CoNLL-2000: gzipped files decompressed on the fly, then verified."""
    import dataclasses
    import gzip

    served = tmp_path / "served"
    served.mkdir()
    for name in ("train.txt", "test.txt"):
        (served / f"{name}.gz").write_bytes(gzip.compress((real_data_dir / "conll2000" / name).read_bytes()))
    with _serve(served) as (url, requests):
        monkeypatch.setitem(
            _fetch._RECIPES, "conll2000", dataclasses.replace(_fetch._RECIPES["conll2000"], url=url)
        )
        root = fetch("chunking", cache_dir=tmp_path / "cache")
        assert sorted(requests) == ["/test.txt.gz", "/train.txt.gz"]
    assert len(load_task("chunking", "test", root).items) == 2_012
