"""The tiny job of the reliability suites, and what two run folders must agree on: ``results.json``
without times, cache statuses and folder paths."""

from __future__ import annotations

import json
from pathlib import Path

STAGES = ("extract", "general", "probe", "pipeline", "compact", "report")


def write_tiny_job(run: Path, model: Path, *extract: str) -> Path:
    """A job config beside ``run`` (every stage, SEM, 40 items per split, ``model``); ``extract``: more
    lines of its ``[extract]`` table. Returns the config's path."""
    lines = [
        f'model = "{model}"',
        'tasks = ["sem"]',
        f"stages = {json.dumps(list(STAGES))}",
        f'out = "{run}"',
        "threads = 1",
        "[extract]",
        "max_items = 40",
        *extract,
        "[general]",
        "step = 0.25",
        "[probe]",
        "n_seeds = 0",
        "random_draws = 1",
    ]
    cfg = run.parent / f"{run.name}.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


# status: a stage "ran" or was "cached"; timings and seconds: wall times
VOLATILE = frozenset({"created", "seconds", "fit_seconds", "finished", "timings", "status"})


def numbers(run: Path, *others: Path) -> object:
    """``run``'s results.json with its own path and ``others`` (folders whose cached results it may
    name, e.g. the one it was copied from) replaced by ``RUN``, and the :data:`VOLATILE` keys dropped."""
    text = (run / "report" / "results.json").read_text()
    for root in (run, *others):
        text = text.replace(str(root), "RUN")

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in VOLATILE}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return strip(json.loads(text))


def differences(a: object, b: object, at: str = "") -> list[str]:
    """The paths of the leaves where two JSON values differ (for a readable failure).

    >>> differences({"a": [1, 2]}, {"a": [1, 3]})
    ['/a[1]: 2 != 3']
    """
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{at}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{at}[{i}]")]
    return [] if a == b else [f"{at}: {str(a)[:80]} != {str(b)[:80]}"]
