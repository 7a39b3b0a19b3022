"""The control panel in a real headless browser (Debian's chromium): it connects
with the token from its URL, shows the live numbers and the preview."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from livematte.control_server import ControlServer
from livematte.live_controls import LiveControls, initial_state
from livematte.matte_adjust import MatteSettings
from media_helpers import disc_alpha, disc_frame

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """Headless chromium (no sandbox: CI runs as root), ``args`` appended."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing but CI must have it (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--user-data-dir=" + os.environ.get("TMPDIR", "/tmp") + f"/lm-chromium-{os.getpid()}",
               "--virtual-time-budget=4000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def running(tmp_path: Path) -> ControlServer:
    size = (320, 180)
    controls = LiveControls(initial_state("#00b140", MatteSettings(threshold=0.25)), size)
    controls.compose(disc_frame(*size, 3), disc_alpha(*size, 3).astype(np.uint8) * 255)
    controls.record_stats(fps=29.7, latency_ms=41.0, dropped=3, frames=900)
    with ControlServer(controls, "127.0.0.1", 0) as server:
        yield server
    controls.close()


def test_panel_shows_live_numbers_settings_and_preview(running: ControlServer, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", running.url).stdout
    assert 'data-connected="yes"' in dom and 'data-preview="shown"' in dom, dom[-2000:]
    assert re.search(r'id="fps">29\.7<', dom) and re.search(r'id="latency">41<', dom)
    assert re.search(r'<output for="threshold">0\.25</output>', dom)


def test_panel_without_the_token_says_so(running: ControlServer) -> None:
    dom = chromium("--dump-dom", running.url.split("?")[0]).stdout
    assert "missing token" in dom and 'data-connected' not in dom


def test_panel_screenshot(running: ControlServer, tmp_path: Path) -> None:
    shot = tmp_path / "panel.png"
    chromium(f"--screenshot={shot}", "--window-size=1000,420", "--hide-scrollbars", running.url)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (420, 1000)
    assert image.std() > 10  # a rendered page, not a blank one
