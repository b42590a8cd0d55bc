"""Where the task files live: the data directory and the fetch cache.

The corpora are never vendored into the repository; every reader resolves one data directory that holds them
in the layout of the project's shared data folder (``ud-english-ewt/``, ``conll2000/``, ``glue/SST-2/`` ...).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DATA_ENV = "REDUNDANCY_DATA"
CACHE_ENV = "REDUNDANCY_CACHE"


class DataDirError(FileNotFoundError):
    """No data directory could be found; the message lists every location tried and how to fix it."""


def default_cache_dir() -> Path:
    """The fetch cache: ``$REDUNDANCY_CACHE`` if set, else ``~/.cache/redundancy``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "redundancy"


def cache_data_dir(cache_dir: str | Path | None = None) -> Path:
    """The data folder inside the fetch cache (``<cache>/data``), whether or not it exists yet."""
    return (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "data"


def _repo_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds ``pyproject.toml``."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def _sibling_candidates() -> list[Path]:
    """``<repo>/../shared/data`` for the repository holding this file and the one holding the cwd."""
    roots = [_repo_root(Path(__file__).resolve().parent), _repo_root(Path.cwd().resolve())]
    out: list[Path] = []
    for root in roots:
        if root is not None:
            cand = root.parent / "shared" / "data"
            if cand not in out:
                out.append(cand)
    return out


def _fix_hint() -> str:
    return (
        "Fix: pass --data-dir PATH (data_dir=PATH), or set REDUNDANCY_DATA=PATH, "
        "or download a task with `redundancy data fetch TASK`."
    )


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Find the data directory, in this order (the first that applies wins).

    1. ``data_dir`` when given (it must exist; no silent fallback);
    2. ``$REDUNDANCY_DATA`` when set (it must exist);
    3. ``shared/data`` beside the repository (``<repo>/../shared/data``), the repository being the folder
       with ``pyproject.toml`` above this module or above the current directory;
    4. the fetch cache's data folder ``<cache>/data`` (cache = ``$REDUNDANCY_CACHE`` or
       ``~/.cache/redundancy``) if it exists.

    Raises :class:`DataDirError` listing every location tried otherwise.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if path.is_dir():
            return path.resolve()
        raise DataDirError(f"data directory {path} (given explicitly) does not exist. {_fix_hint()}")
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if path.is_dir():
            return path.resolve()
        raise DataDirError(f"data directory {path} (from ${DATA_ENV}) does not exist. {_fix_hint()}")
    tried = [f"${DATA_ENV} (not set)"]
    for cand in _sibling_candidates():
        if cand.is_dir():
            logger.debug("data directory: %s (beside the repository)", cand)
            return cand.resolve()
        tried.append(f"{cand} (beside the repository)")
    cache = cache_data_dir()
    if cache.is_dir():
        logger.debug("data directory: %s (fetch cache)", cache)
        return cache.resolve()
    tried.append(f"{cache} (fetch cache)")
    listing = "\n".join(f"  - {t}" for t in tried)
    raise DataDirError(f"no data directory found; tried:\n{listing}\n{_fix_hint()}")
