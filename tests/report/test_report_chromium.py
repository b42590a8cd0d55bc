"""report.html in a real browser: headless Chromium renders the embedded figures (no network needed).

Skipped when Chromium is not installed, unless ``REDUNDANCY_REQUIRE_CHROMIUM=1`` (CI), which makes a
missing browser a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

WIDTH, HEIGHT = 1280, 4000


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").is_file():
        path = "/usr/bin/chromium"
    if path is None:
        if os.environ.get("REDUNDANCY_REQUIRE_CHROMIUM") == "1":
            pytest.fail(
                "REDUNDANCY_REQUIRE_CHROMIUM=1 but no chromium is installed (apt-get install chromium)"
            )
        pytest.skip("chromium is not installed")
    return path


def _screenshot(chromium: str, page: Path, out: Path, tmp: Path) -> np.ndarray:
    """Render ``page`` headless at WIDTH x HEIGHT; the screenshot as an (H, W, 3) float array."""
    import matplotlib.image as mpimg

    profile = tmp / f"profile-{out.stem}"  # a fresh profile: no state from other runs
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={out}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert out.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return mpimg.imread(out)[..., :3]


def _coloured_share(pixels: np.ndarray) -> float:
    """Share of pixels with HSV saturation > 0.3: figure colours, not text, rules or gray shading."""
    hi, lo = pixels.max(axis=-1), pixels.min(axis=-1)
    saturation = np.where(hi > 0.05, (hi - lo) / np.maximum(hi, 1e-9), 0.0)
    return float((saturation > 0.3).mean())


def test_chromium_shows_the_embedded_figures(chromium, written, tmp_path):
    _, files = written
    page = files.html.read_text()
    assert page.count("<img") > 0
    stripped = tmp_path / "no-images.html"
    stripped.write_text(re.sub(r"<img\b[^>]*>", "", page))

    shot = _screenshot(chromium, files.html, tmp_path / "report.png", tmp_path)
    control = _screenshot(chromium, stripped, tmp_path / "control.png", tmp_path)
    assert shot.shape == control.shape == (HEIGHT, WIDTH, 3)
    assert shot.std() > 0.05  # a page was drawn, not a blank sheet

    with_figures, without = _coloured_share(shot), _coloured_share(control)
    # the first figures (CKA heat maps, the general curves) lie within the first 4000 px
    assert with_figures > 0.03, with_figures
    assert without < 0.002, without
    # the top of the page (title, summary, contents) is the same text in both: the difference is the images
    assert _coloured_share(shot[:250]) < 0.002
