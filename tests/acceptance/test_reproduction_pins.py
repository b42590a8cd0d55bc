"""docs/reproduction.md cannot drift from the code: the MiniLM numbers it pins for one small task
(SEM, PMB 4.0.0 gold) are recomputed here and must fall within the intervals the document states
(marked slow; runs in CI, about a minute on 2 cores)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from redundancy.cli import main
from redundancy.data import DataDirError, resolve_data_dir

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "reproduction.md"
PIN = re.compile(
    r"^\| pin \| (?P<name>[a-z_.0-9]+) \| (?P<est>[-\d.]+) \[(?P<low>[-\d.]+), (?P<high>[-\d.]+)\] \|", re.M
)


def pinned() -> dict[str, tuple[float, float, float]]:
    """``| pin | NAME | EST [LOW, HIGH] |`` rows of docs/reproduction.md (values in %)."""
    found = {
        m["name"]: (float(m["est"]), float(m["low"]), float(m["high"])) for m in PIN.finditer(DOC.read_text())
    }
    assert found, f"{DOC} holds no '| pin |' rows"
    return found


def test_the_pinned_minilm_sem_numbers_hold(tmp_path):
    try:
        data_dir = resolve_data_dir()
    except DataDirError as exc:  # pragma: no cover - CI has ../shared/data
        pytest.skip(f"real task data not available: {exc}")
    pins = pinned()
    assert {"sem.redundant_share_t0.3", "sem.oracle_test"} <= set(pins)
    cfg = tmp_path / "pin.toml"
    cfg.write_text(
        "\n".join(
            [
                'model = "all-MiniLM-L6-v2"',
                'tasks = ["sem"]',
                'stages = ["extract", "general", "probe"]',
                f'out = "{tmp_path / "run"}"',
                "seed = 0",
                "[probe]",
                "controls = false",
                'ranking = "paper"',
                'rankings = ["paper"]',
                "n_seeds = 0",
                "[rigour]",
                "bootstrap = 200",
                "general_groups = 20",
            ]
        )
        + "\n"
    )
    assert main(["-q", "run", str(cfg), "--no-progress", "--data-dir", str(data_dir)]) == 0
    run = tmp_path / "run"
    general = json.loads((run / "general" / "sem" / "general.json").read_text())
    point = next(p for p in general["sweep"] if abs(p["threshold"] - 0.3) < 1e-9)
    probe = json.loads((run / "probe" / "sem" / "probe.json").read_text())
    got = {
        "sem.redundant_share_t0.3": 100 * point["redundant_share"],
        "sem.oracle_test": 100 * probe["oracle"]["test"]["accuracy"],
    }
    for name, value in got.items():
        est, low, high = pins[name]
        assert low - 0.05 <= value <= high + 0.05, (
            f"{name}: {value:.2f} outside the documented [{low}, {high}]"
        )
