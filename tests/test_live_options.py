"""--threshold/--feather/--smoothing and webcam --control as users type them."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from conftest import read_grey
from livematte.cli import main
from livematte.matte_adjust import threshold_table
from media_helpers import cli_env, one_error_line, run_cli, write_clip, write_keyer_engine


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("live-options")
    return write_clip(root / "in.mp4", size=(96, 64), frames=6, audio=False), write_keyer_engine(root)


def mattes(tmp_path: Path, job: tuple[Path, Path], *options: str) -> np.ndarray:
    clip, keyer = job
    out = tmp_path / "-".join(options or ("plain",))
    out.mkdir()
    assert main(["-q", "process", str(clip), str(out / "out.mp4"), "--model", str(keyer), "--matte-out", str(out / "m"),
                 *options]) == 0
    return np.stack([read_grey(p) for p in sorted((out / "m").iterdir())])


def test_matte_out_gets_the_adjusted_matte(tmp_path: Path, job: tuple[Path, Path]) -> None:
    plain = mattes(tmp_path, job)
    cut = mattes(tmp_path, job, "--threshold", "0.5")
    soft = lambda m: int(((m > 0) & (m < 255)).sum())  # noqa: E731
    assert ((plain > 0) & (plain < 128)).any()  # a haze the threshold must remove
    assert np.array_equal(cut, threshold_table(0.5)[plain])  # saved: exactly the adjusted matte
    assert soft(mattes(tmp_path, job, "--feather", "8")) > 2 * soft(plain)


@pytest.mark.parametrize("option, value", [("--threshold", "1"), ("--feather", "-2"), ("--smoothing", "0.99")])
def test_out_of_range_options_are_exit_2(tmp_path: Path, job: tuple[Path, Path], option: str, value: str) -> None:
    clip, keyer = job
    result = run_cli("process", str(clip), str(tmp_path / "o.mp4"), "--model", str(keyer), option, value)
    assert result.returncode == 2 and option in result.stderr and "Traceback" not in result.stderr


def test_control_on_a_public_interface_is_refused_before_the_camera_opens() -> None:
    result = run_cli("webcam", "--device", "/dev/video-none", "--record", "x.mp4", "--control", "0.0.0.0:8765")
    assert result.returncode == 2
    assert "not loopback" in one_error_line(result.stderr) and "--control-allow-remote" in result.stderr


def test_webcam_control_endpoint_end_to_end(tmp_path: Path, job: tuple[Path, Path]) -> None:
    """The printed URL (token included) reaches the running session's settings; a file stands in for the camera."""
    _, keyer = job
    clip = write_clip(tmp_path / "camera.mp4", size=(96, 64), frames=240, fps=24, audio=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "livematte", "webcam", "--device", str(clip), "--record", str(tmp_path / "rec.mp4"),
         "--model", str(keyer), "--bg", "blur:40", "--threshold", "0.3", "--control", "127.0.0.1:0", "--duration", "4"],
        env=cli_env(), stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "control panel and API at" not in line:
            line = process.stderr.readline()
            assert line, "the session ended without printing the control URL"
        url = urlsplit(line.split(" at ", 1)[1].strip())
        token = parse_qs(url.query)["token"][0]
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        connection.request("POST", "/api/settings", body=json.dumps({"feather": 2}),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        answer = json.loads(connection.getresponse().read())
        assert answer["settings"] == {"background": "blur", "blur": 40, "paused": False,
                                      "threshold": 0.3, "feather": 2, "smoothing": 0.0}
    finally:
        process.communicate(timeout=60)
