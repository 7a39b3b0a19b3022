"""What a new user ran into trying every command (issue 13): wrong output
passed off as done, inconsistent failures, a README command that could not
be run twice. Each test is the user's command; each failed before its fix."""
from __future__ import annotations

import re
import select
import shlex
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from livematte.cli import main
from media_helpers import (AUDIO_RATE, REPO, cli_env, disc_frame, leftovers, one_error_line, probe, run_cli, write_clip)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 24 fps with a tone as long as the video."""
    return write_clip(tmp_path_factory.mktemp("clip") / "in.mp4", size=(96, 64), frames=48, fps=24)


@pytest.mark.parametrize("options", [["--alpha"], ["--bg", "transparent"]], ids=["alpha", "bg-transparent"])
def test_transparent_background_into_mp4_is_refused(tmp_path: Path, keyer: Path, clip: Path,
                                                     options: list[str]) -> None:
    """H.264 has no alpha: the file came out black with coloured fringes, exit 0."""
    out = tmp_path / "out.mp4"
    result = run_cli("process", str(clip), str(out), "--model", str(keyer), *options)
    assert result.returncode == 5, result.stderr
    assert "transparent background" in one_error_line(result.stderr) and ".mov" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_duration_on_a_file_is_media_time_and_cuts_the_audio_too(tmp_path: Path, keyer: Path, clip: Path) -> None:
    out = tmp_path / "out.mp4"
    assert main(["-q", "process", str(clip), str(out), "--model", str(keyer), "--duration", "1"]) == 0
    info = probe(out)
    assert info["video"]["frames"] == 24  # 1 s of media at 24 fps, however fast the job ran
    assert info["audio"]["duration"] == pytest.approx(1.0, abs=0.05)


def test_gif_output_is_a_clean_error_and_leaves_nothing(tmp_path: Path, keyer: Path, clip: Path) -> None:
    result = run_cli("process", str(clip), str(tmp_path / "out.gif"), "--model", str(keyer))
    assert result.returncode == 5, result.stderr
    assert "unknown output format .gif" in one_error_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", [["--preset", "turbo"], ["--crf", "99"], ["--threads", "-3"], ["--crf", "x"]],
                         ids=["preset", "crf", "threads", "crf-text"])
def test_bad_encoder_options_are_exit_2_before_anything_runs(tmp_path: Path, keyer: Path, clip: Path,
                                                             option: list[str]) -> None:
    result = run_cli("process", str(clip), str(tmp_path / "out.mp4"), "--model", str(keyer), *option)
    assert result.returncode == 2, result.stderr
    assert option[0] in result.stderr and "Traceback" not in result.stderr and "x264" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_engine_info_into_a_closed_pipe_is_quiet() -> None:
    """``livematte engines info NAME | head -0``: the reader is gone before the first line."""
    proc = subprocess.Popen([sys.executable, "-m", "livematte", "engines", "info", "lm-mobile-recurrent"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.wait(30)
    assert stderr == "", stderr


@pytest.mark.parametrize("option, code, words", [(["--bg", "nosuch.jpg"], 2, "background"),
                                                 (["--model", "nosuch-engine"], 3, "nosuch-engine")],
                         ids=["bg", "model"])
def test_bad_options_are_reported_before_the_output_exists_check(tmp_path: Path, keyer: Path, clip: Path,
                                                                 option: list[str], code: int, words: str) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep")
    model = [] if option[0] == "--model" else ["--model", str(keyer)]
    result = run_cli("process", str(clip), str(out), *model, *option)
    assert result.returncode == code, result.stderr
    assert words in one_error_line(result.stderr) and "exists" not in result.stderr
    assert out.read_bytes() == b"keep"


def _readme_first_commands() -> list[list[str]]:
    """The ``livematte`` commands of the README's "Run it" block, in order."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\*\*Run it\*\*.*?```bash\n(.*?)```", readme, re.S)[1]
    return [shlex.split(part)[1:] for part in block.replace("\n", " ").split("&&")
            if part.strip().startswith("livematte ")]


def test_readme_run_it_command_can_be_run_twice(tmp_path: Path) -> None:
    """A new user runs the README's first command again (or after a failure):
    the sample exists by then, and so does out.mp4."""
    commands = _readme_first_commands()
    assert [c[0] for c in commands] == ["sample", "process"]
    small = {"sample": ["--size", "160x96", "--seconds", "0.5"], "process": []}  # same command, a smaller clip
    for attempt in range(2):
        for command in commands:
            result = subprocess.run([sys.executable, "-m", "livematte", *command, *small[command[0]]], cwd=tmp_path,
                                    capture_output=True, text=True, timeout=120, env=cli_env())
            assert result.returncode == 0, (attempt, command, result.stderr)
    assert probe(tmp_path / "out.mp4")["video"]["frames"] == 15
    assert leftovers(tmp_path) == []


def _quality_command(clip: Path, out: Path, keyer: Path) -> list[str]:
    return [sys.executable, "-m", "livematte", "process", str(clip), str(out), "--model", str(keyer),
            "--quality", "high", "--quality-method", "closed-form", "--quality-workers", "0"]


def _fresh_cache_env(cache: Path) -> dict[str, str]:
    env = dict(cli_env(), XDG_CACHE_HOME=str(cache))
    env.pop("NUMBA_CACHE_DIR", None)
    return env


def test_first_quality_run_says_it_is_preparing_before_it_compiles(tmp_path: Path, keyer: Path, clip: Path) -> None:
    """The first --quality high run compiles for minutes: it must say so at
    once (not sit at 0 fps) and compile into the user's cache directory."""
    proc = subprocess.Popen(_quality_command(clip, tmp_path / "out.mp4", keyer), stderr=subprocess.PIPE, text=True,
                            env=_fresh_cache_env(tmp_path / "cache"))
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        first = proc.stderr.readline() if ready else ""
    finally:
        proc.kill()
        proc.wait()
    assert "preparing --quality high (first run compiles, about" in first, first
    assert str(tmp_path / "cache" / "livematte" / "numba") in first


@pytest.mark.slow
def test_first_quality_run_is_counted_and_cached_for_the_next(tmp_path: Path, keyer: Path, clip: Path) -> None:
    env = _fresh_cache_env(tmp_path / "cache")
    first = subprocess.run(_quality_command(clip, tmp_path / "a.mp4", keyer), capture_output=True, text=True,
                           env=env, timeout=900)
    assert first.returncode == 0, first.stderr
    assert "preparing --quality high" in first.stderr and "s of it preparing" in first.stderr
    assert any((tmp_path / "cache" / "livematte" / "numba").rglob("*.nbi"))
    second = subprocess.run(_quality_command(clip, tmp_path / "b.mp4", keyer), capture_output=True, text=True,
                            env=env, timeout=900)
    assert second.returncode == 0 and "preparing" not in second.stderr, second.stderr


def _udp_port_bound(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (Linux's socket table)."""
    table = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(line.split()[1] == f"0100007F:{port:04X}" for line in table)


def _send_stream(url: str, seconds: float, skip: range, fps: int = 30, size: tuple[int, int] = (160, 96)) -> None:
    """An MPEG-TS sender in real time, H.264 + an AAC tone, frames in ``skip`` lost on the way."""
    with av.open(url + "?pkt_size=1316", "w", format="mpegts") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "tune": "zerolatency",
                                                            "g": str(fps), "bf": "0"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        sound = out.add_stream("aac", rate=AUDIO_RATE)
        sound.layout = "mono"
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(1024) / AUDIO_RATE)).astype(np.float32)[None]
        samples, start = 0, time.monotonic()
        for index in range(int(seconds * fps)):
            if index not in skip:
                frame = av.VideoFrame.from_ndarray(disc_frame(*size, index), format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, fps)
                for packet in video.encode(frame):
                    out.mux(packet)
            while samples + 1024 <= (index + 1) * AUDIO_RATE // fps:
                chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, samples
                for packet in sound.encode(chunk):
                    out.mux(packet)
                samples += 1024
            time.sleep(max(0.0, start + (index + 1) / fps - time.monotonic()))
        for stream in (video, sound):
            for packet in stream.encode():
                out.mux(packet)


@pytest.mark.skipif(not Path("/proc/net/udp").exists(), reason="waits for the receiver in /proc/net/udp (Linux)")
def test_recording_a_stream_keeps_every_frame_and_the_audio_and_counts_what_the_network_lost(
        tmp_path: Path, keyer: Path) -> None:
    """``process udp://... rec.mp4`` is a recording: every frame that arrived
    (none dropped to keep up), the audio, and a count of the frames that
    never arrived (10 lost on the way here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    record = tmp_path / "rec.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "livematte", "process", f"udp://127.0.0.1:{port}", str(record),
                             "--model", str(keyer), "--bg", "blur", "--duration", "3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env())
    deadline = time.monotonic() + 30
    while not _udp_port_bound(port):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    _send_stream(f"udp://127.0.0.1:{port}", seconds=4, skip=range(45, 55))
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    info = probe(record)
    assert info["video"]["frames"] == 90 - 10, stderr  # 3 s of media at 30 fps, less the 10 lost
    assert info["audio"]["duration"] == pytest.approx(3.0, abs=0.1)
    assert "10 frames missing from the input stream" in stderr
    assert "dropped" not in stderr
