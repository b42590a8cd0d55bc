"""Download the publicly downloadable task files into the fetch cache, verified by SHA-256.

Files land in ``<cache>/data/<folder>/<file>``, the same layout as the shared data directory, so the cache's
``data`` folder can be used as a data directory. Every file is written to a temporary file in its target
folder, verified, and only then moved into place with :func:`os.replace`; when any file of a task fails
(network error, hash mismatch) nothing of that fetch is left behind. Only :mod:`urllib` is used.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from .._progress import Progress
from ._datadir import cache_data_dir
from ._readers import file_sha256
from ._registry import TASKS, get_task

logger = logging.getLogger(__name__)


_CHUNK = 1 << 20
_TIMEOUT_S = 60
_USER_AGENT = "redundancy-data-fetch (python urllib)"


class FetchError(RuntimeError):
    """A download failed (network error, unexpected archive content)."""


class ChecksumError(FetchError):
    """A downloaded file's SHA-256 differs from the recorded one; nothing was kept."""


class NotFetchableError(FetchError):
    """The task's data cannot be downloaded automatically; the message says where to get it."""


@dataclass(frozen=True)
class _File:
    name: str
    sha256: str | None  # of the final file (None: not recorded; the computed hash is logged)


@dataclass(frozen=True)
class _Recipe:
    """How to obtain one data folder from its official source."""

    folder: str
    files: tuple[_File, ...]
    kind: Literal["raw", "gzip", "zip", "mrpc"]
    url: str  # raw: base URL + name; gzip: base URL + name + ".gz"; zip: the archive; mrpc: unused
    archive_sha256: str | None = None


_GLUE_URL = "https://dl.fbaipublicfiles.com/glue/data/"
_MRPC_TRAIN_URL = "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt"
_MRPC_DEV_IDS_URL = "https://dl.fbaipublicfiles.com/glue/data/mrpc_dev_ids.tsv"

# Hashes of the final files, as recorded in the shared data folder's SHA256SUMS.
_RECIPES: dict[str, _Recipe] = {
    r.folder: r
    for r in (
        _Recipe(
            "ud-english-ewt",
            (
                _File(
                    "en_ewt-ud-train.conllu",
                    "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
                ),
                _File(
                    "en_ewt-ud-dev.conllu", "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6"
                ),
                _File(
                    "en_ewt-ud-test.conllu",
                    "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
                ),
            ),
            "raw",
            "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r2.16/",
        ),
        _Recipe(
            "conll2000",
            (
                _File("train.txt", "82033cd7a72b209923a98007793e8f9de3abc1c8b79d646c50648eb949b87cea"),
                _File("test.txt", "73b7b1e565fa75a1e22fe52ecdf41b6624d6f59dacb591d44252bf4d692b1628"),
            ),
            "gzip",
            "https://www.clips.uantwerpen.be/conll2000/chunking/",
        ),
        _Recipe(
            "glue/SST-2",
            (
                _File("train.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"),
                _File("dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0"),
            ),
            "zip",
            _GLUE_URL + "SST-2.zip",
        ),
        _Recipe(
            "glue/CoLA",
            (
                _File("train.tsv", "cb368ebeb9f27d7ad03720d27ddc95687a311bdb100781a2fe59a5f5b1bc0624"),
                _File("dev.tsv", "8c013e21dc39957cac37378d87bebe225b694a0d5fe13eded66c2856628833fd"),
            ),
            "zip",
            _GLUE_URL + "CoLA.zip",
            "f212fcd832b8f7b435fb991f101abf89f96b933ab400603bf198960dfc32cbff",
        ),
        _Recipe(
            "glue/STS-B",
            (
                _File("train.tsv", "41c4d978b6162abdcada7e49a982211954cca5459c228db478af333124b257a2"),
                _File("dev.tsv", "fe7dc0632a5033562f3cadff991f6e8d9b9b6311861660e78c3c82eb7db67f59"),
            ),
            "zip",
            _GLUE_URL + "STS-B.zip",
            "e60a6393de5a8b5b9bac5020a1554b54e3691f9d600b775bd131e613ac179c85",
        ),
        _Recipe(
            "glue/RTE",
            (
                _File("train.tsv", "41e3a9b063433392343fad9e962cf2f58b681c78d8f71592f4186f0837246c5c"),
                _File("dev.tsv", "80230dfa1347282e7b532b06a1004a76a710087541189bf874223ddf0e3819fb"),
            ),
            "zip",
            _GLUE_URL + "RTE.zip",
            "6bf86de103ecd335f3441bd43574d23fef87ecc695977a63b82d5efb206556ee",
        ),
        _Recipe(
            "glue/QNLI",
            (
                _File("train.tsv", None),
                _File("dev.tsv", "763e95932dd3578251de71582e06829015f9c3815a518c751dc537219b159de4"),
            ),
            "zip",
            _GLUE_URL + "QNLIv2.zip",
        ),
        _Recipe(
            "glue/QQP", (_File("train.tsv", None), _File("dev.tsv", None)), "zip", _GLUE_URL + "QQP-clean.zip"
        ),
        _Recipe(
            "glue/MNLI",
            (_File("train.tsv", None), _File("dev_matched.tsv", None), _File("dev_mismatched.tsv", None)),
            "zip",
            _GLUE_URL + "MNLI.zip",
        ),
        _Recipe(
            "glue/MRPC",
            (
                _File("train.tsv", "69abcedee3cf738c6ce58d772e43e1b7cdf5b4edee4aceda459c0d9f4e5599f3"),
                _File("dev.tsv", "9e8f284788040f7c9ecde2e1b3c07237c756f926bd9ef8548ef5d34b56f69f17"),
            ),
            "mrpc",
            "",
        ),
    )
}

_NOT_FETCHABLE = {
    "pmb-4.0.0-en-gold": (
        "the PMB 4.0.0 gold CoNLL files have no official single-file download. Get the PMB 4.0.0 release "
        "from https://pmb.let.rug.nl (or the extracted files parsing/layer_data/4.0.0/en/gold/"
        "{train,dev,test,eval}.conll of github.com/RikVN/DRS_parsing) and put them in "
        "<data dir>/pmb-4.0.0-en-gold/"
    ),
    "conll2003": (
        "the CoNLL-2003 English text is Reuters RCV1 material that needs a (free) research agreement with "
        "NIST/Reuters, so it is not downloaded automatically. "
        "See https://www.clips.uantwerpen.be/conll2003/ner/ "
        "and put train.txt, valid.txt and test.txt (IOB2, 4 columns) in <data dir>/conll2003/"
    ),
}


def fetchable_tasks() -> list[str]:
    """Names of the tasks :func:`fetch` can download."""
    return [name for name, spec in TASKS.items() if spec.folder in _RECIPES]


def fetch_hint(task: str) -> str:
    """One sentence on how to obtain the files of ``task`` (used in missing-file errors)."""
    folder = get_task(task).folder
    if folder in _RECIPES:
        return (
            f"Run `redundancy data fetch {task}` (fetch({task!r})), or pass --data-dir / set REDUNDANCY_DATA."
        )
    return f"Not downloadable automatically: {_NOT_FETCHABLE.get(folder, 'no known source')}."


# ---------------------------------------------------------------------------------------------- helpers
def _temp_in(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    os.close(fd)
    return Path(tmp)


def _copy_stream(src: BinaryIO, dst: Path, name: str, total: int | None, progress: Progress | None) -> None:
    done = 0
    with open(dst, "wb") as out:
        while block := src.read(_CHUNK):
            out.write(block)
            done += len(block)
            if progress is not None:
                progress(name, done, total, unit="B")


def _download(url: str, dst: Path, name: str, progress: Progress | None, *, gunzip: bool = False) -> None:
    """Stream ``url`` into ``dst`` (decompressing gzip on the fly if asked)."""
    logger.info("downloading %s", url)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() and not gunzip else None
            if gunzip:
                with gzip.GzipFile(fileobj=response) as stream:
                    _copy_stream(stream, dst, name, None, progress)
            else:
                _copy_stream(response, dst, name, total, progress)
    except (urllib.error.URLError, OSError, EOFError) as exc:
        raise FetchError(f"download of {url} failed: {exc}") from exc


def _verify(path: Path, expected: str | None, what: str) -> None:
    actual = file_sha256(path)
    if expected is None:
        logger.warning("%s: no recorded SHA-256 to check against; its SHA-256 is %s", what, actual)
    elif actual != expected:
        raise ChecksumError(f"{what}: SHA-256 mismatch (expected {expected}, got {actual}); nothing was kept")
    else:
        logger.info("%s: SHA-256 verified", what)


def _zip_member(archive: zipfile.ZipFile, name: str) -> str:
    """The archive member for file ``name``: shortest path with that base name, outside ``original/``."""
    hits = [
        m
        for m in archive.namelist()
        if PurePosixPath(m).name == name and "original" not in PurePosixPath(m).parts[:-1]
    ]
    if not hits:
        raise FetchError(f"archive has no member {name!r}")
    return min(hits, key=lambda m: (len(PurePosixPath(m).parts), m))


def build_mrpc(msr_train: Path, dev_ids: Path, train_out: Path, dev_out: Path) -> None:
    """Split ``msr_paraphrase_train.txt`` into GLUE's MRPC ``train.tsv``/``dev.tsv`` by ``mrpc_dev_ids.tsv``.

    Same procedure as GLUE's ``download_glue_data.py`` (the header, BOM included, is copied to both files;
    rows are re-joined with tabs and ``\\n``), which reproduces the official files byte for byte.
    """
    with open(dev_ids, encoding="utf-8") as f:
        dev = {tuple(line.strip().split("\t")) for line in f if line.strip()}
    with (
        open(msr_train, encoding="utf-8") as src,
        open(train_out, "w", encoding="utf-8", newline="\n") as train_f,
        open(dev_out, "w", encoding="utf-8", newline="\n") as dev_f,
    ):
        header = src.readline()
        train_f.write(header)
        dev_f.write(header)
        for lineno, row in enumerate(src, 2):
            fields = row.strip().split("\t")
            if len(fields) != 5:
                raise FetchError(
                    f"{msr_train}:{lineno}: expected 5 tab-separated fields, found {len(fields)}"
                )
            out = dev_f if (fields[1], fields[2]) in dev else train_f
            out.write("\t".join(fields) + "\n")


def _mirror_url(mirror: str, folder: str, name: str) -> str:
    return mirror.rstrip("/") + "/" + urllib.parse.quote(f"{folder}/{name}")


# -------------------------------------------------------------------------------------------------- fetch
def fetch(
    task: str,
    cache_dir: str | Path | None = None,
    *,
    mirror: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Download the files of ``task`` into ``<cache>/data/<folder>/``; return the data dir ``<cache>/data``.

    ``cache_dir`` defaults to ``$REDUNDANCY_CACHE`` or ``~/.cache/redundancy``. Sources: UD English-EWT from
    the UniversalDependencies GitHub repository at tag r2.16; CoNLL-2000 from the task site (gzipped,
    decompressed here); GLUE tasks from the official zips at dl.fbaipublicfiles.com (MRPC rebuilt from the
    MSR paraphrase file as GLUE's script does). ``mirror="http://host:port/"`` fetches the plain file
    ``<mirror>/<folder>/<file>`` instead (the data-directory layout, no archives). Files already present with
    the right hash are kept unless ``force``. Each file's SHA-256 is checked against the recorded one (a
    warning logs the hash where none is recorded); a mismatch raises :class:`ChecksumError` and leaves nothing
    behind. Tasks whose data cannot be downloaded raise :class:`NotFetchableError`.
    """
    spec = get_task(task)
    recipe = _RECIPES.get(spec.folder)
    if recipe is None:
        reason = _NOT_FETCHABLE.get(spec.folder, "no download source is known")
        raise NotFetchableError(f"task {task!r} cannot be fetched: {reason}.")
    root = cache_data_dir(cache_dir)
    dest = root / recipe.folder
    todo = [f for f in recipe.files if force or not _is_current(dest / f.name, f.sha256)]
    if not todo:
        logger.info("%s: all files present and verified in %s", task, dest)
        return root
    if not dest.is_dir():
        dest.mkdir(parents=True)
        try:
            _fetch_files(recipe, todo, dest, mirror, progress)
        except BaseException:
            with contextlib.suppress(OSError):
                dest.rmdir()  # only if still empty: leave nothing behind
            raise
    else:
        _fetch_files(recipe, todo, dest, mirror, progress)
    return root


def _fetch_files(
    recipe: _Recipe, todo: list[_File], dest: Path, mirror: str | None, progress: Progress | None
) -> None:
    """Stage every file of ``todo`` in ``dest``, verify them all, then move them into place."""
    with contextlib.ExitStack() as cleanup:
        staged: dict[str, Path] = {}

        def temp(name: str) -> Path:
            path = _temp_in(dest, name)
            cleanup.callback(path.unlink, missing_ok=True)
            return path

        if mirror is not None:
            for f in todo:
                staged[f.name] = temp(f.name)
                _download(_mirror_url(mirror, recipe.folder, f.name), staged[f.name], f.name, progress)
        else:
            _stage_official(recipe, todo, temp, staged, progress)
        for f in todo:
            _verify(staged[f.name], f.sha256, f"{recipe.folder}/{f.name}")
        for f in todo:
            os.replace(staged[f.name], dest / f.name)
            logger.info("fetched %s", dest / f.name)


def _is_current(path: Path, sha256: str | None) -> bool:
    if not path.is_file():
        return False
    if sha256 is None or file_sha256(path) == sha256:
        return True
    logger.warning("%s exists but its SHA-256 differs from the recorded one; fetching it again", path)
    return False


def _stage_official(
    recipe: _Recipe,
    todo: Iterable[_File],
    temp: Callable[[str], Path],
    staged: dict[str, Path],
    progress: Progress | None,
) -> None:
    """Download ``todo`` from the official source into temporary files (``staged[name]``)."""
    if recipe.kind in ("raw", "gzip"):
        gunzip = recipe.kind == "gzip"
        for f in todo:
            staged[f.name] = temp(f.name)
            url = recipe.url + f.name + (".gz" if gunzip else "")
            _download(url, staged[f.name], f.name, progress, gunzip=gunzip)
    elif recipe.kind == "zip":
        archive_name = recipe.url.rsplit("/", 1)[-1]
        archive = temp(archive_name)
        _download(recipe.url, archive, archive_name, progress)
        if recipe.archive_sha256 is not None:
            _verify(archive, recipe.archive_sha256, archive_name)
        try:
            with zipfile.ZipFile(archive) as zf:
                for f in todo:
                    staged[f.name] = temp(f.name)
                    with zf.open(_zip_member(zf, f.name)) as src, open(staged[f.name], "wb") as out:
                        shutil.copyfileobj(src, out, _CHUNK)
        except zipfile.BadZipFile as exc:
            raise FetchError(f"{recipe.url} is not a valid zip archive: {exc}") from exc
    elif recipe.kind == "mrpc":
        msr, ids = temp("msr_paraphrase_train.txt"), temp("mrpc_dev_ids.tsv")
        _download(_MRPC_TRAIN_URL, msr, "msr_paraphrase_train.txt", progress)
        _download(_MRPC_DEV_IDS_URL, ids, "mrpc_dev_ids.tsv", progress)
        staged["train.tsv"], staged["dev.tsv"] = temp("train.tsv"), temp("dev.tsv")
        build_mrpc(msr, ids, staged["train.tsv"], staged["dev.tsv"])
    else:  # pragma: no cover - recipes are static
        raise AssertionError(recipe.kind)
