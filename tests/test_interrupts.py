"""Ctrl-C and SIGTERM at seeded points of a real job, for every output kind.

Each run is the real command in a subprocess, stopped by a signal at a point
drawn from a fixed seed: before anything is written, just after the output
was opened, or in the middle of the job. Every run must end with 130
(SIGINT) or 143 (SIGTERM), never hang, crash or print a traceback; what was
done must be readable (PyAV for videos and streams, OpenCV for PNGs) with
exactly the frame count the summary reports; no temporary file may be left.
A second Ctrl-C aborts: nothing half-written stays behind.
"""
from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
import pytest

from livematte import ffmpeg_threads
from livematte.compositor import Compositor
from livematte.engine import Matter
from livematte.pipeline import Pipeline
from livematte.registry import find_engine
from livematte.sinks import Sink, StreamSink
from livematte.stages import realtime_stages
from livematte.sources import StreamSource
from media_helpers import cli_env, disc_frame, leftovers, write_clip

SIZE = (320, 240)
FPS = 30
SEED = 13


pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="watches /proc/PID/fd (Linux)")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (20 s) that no job finishes before it is interrupted."""
    return write_clip(tmp_path_factory.mktemp("clip") / "in.mp4", size=SIZE, frames=600, fps=FPS)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _UdpCapture:
    """Receives an MPEG-TS stream on 127.0.0.1 into a file a player can open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = _free_udp_port()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        with self.path.open("wb") as f:
            while not self._stop.is_set():
                try:
                    f.write(self._sock.recv(65536))
                except socket.timeout:
                    continue

    def close(self) -> None:
        time.sleep(0.3)  # the last datagrams
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


class UdpSender:
    """A live MPEG-TS sender on 127.0.0.1 at FPS, like a camera on the network."""

    def __init__(self, size: tuple[int, int] = (160, 96)) -> None:
        self.port = _free_udp_port()
        self.url = f"udp://127.0.0.1:{self.port}"
        self.sent = 0
        self._size = size
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def _send(self) -> None:
        sink = StreamSink(self.url, self._size, FPS)
        frames = [disc_frame(*self._size, i) for i in range(30)]
        start = time.monotonic()
        while not self._stop.is_set():
            sink.write(frames[self.sent % len(frames)], None)
            self.sent += 1
            time.sleep(max(0.0, start + self.sent / FPS - time.monotonic()))
        sink.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _png_frames(directory: Path) -> int:
    names = sorted(directory.iterdir())
    assert names == sorted(directory.glob("*.png")), names
    for name in names:
        assert cv2.imread(str(name), cv2.IMREAD_UNCHANGED) is not None, name
    return len(names)


def _reported_frames(stderr: str) -> int:
    match = re.search(r"interrupted: wrote (\d+) frames", stderr)
    if match:
        return int(match[1])
    assert "nothing kept" in stderr, stderr
    return 0


def _stop_at(proc: subprocess.Popen, ready: Callable[[], bool], delay: float, signals: list[int]) -> str:
    """Wait for ``ready()``, then ``delay`` s, then send ``signals`` 50 ms apart; stderr of the ended job."""
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, f"job ended before it could be interrupted: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, "job never started writing"
        time.sleep(0.01)
    time.sleep(delay)
    for signum in signals:
        proc.send_signal(signum)
        time.sleep(0.05)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"hung after {signals}: {stderr}")
    return stderr


def _opened(proc: subprocess.Popen, path: Path | None) -> Callable[[], bool]:
    """True once the process holds ``path`` (None: a socket) open: it is
    setting up the job (before that, Python itself is still starting and
    SIGTERM's default action applies, which no program can change)."""
    def holds(target: str) -> bool:
        return target == str(path) if path else target.startswith("socket:")

    def ready() -> bool:
        fds = Path(f"/proc/{proc.pid}/fd")
        try:
            return any(holds(os.readlink(fd)) for fd in fds.iterdir())
        except OSError:  # the process or one of its descriptors went away meanwhile
            return False

    return ready


def _points(kind: str) -> list[tuple[str, float, int]]:
    """Three seeded points per kind: (start|written, delay, signal). "start"
    lands while the job is being set up (input open; engine, outputs)."""
    rng = random.Random(f"{SEED}-{kind}")
    sigs = [signal.SIGINT, signal.SIGTERM]
    return [
        ("start", rng.uniform(0.0, 0.3), rng.choice(sigs)),
        ("written", rng.uniform(0.0, 0.2), rng.choice(sigs)),
        ("written", rng.uniform(0.3, 1.5), rng.choice(sigs)),
    ]


#: kind → (output name, extra options)
FILE_KINDS = {
    "mp4": ("out.mp4", []),
    "mov-alpha": ("out.mov", ["--alpha"]),
    "webm-alpha": ("out.webm", ["--alpha"]),
    "png": ("frames", ["--alpha"]),
}


def _launch(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "livematte", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=cli_env())


def _check_ending(proc: subprocess.Popen, stderr: str, signum: int) -> int:
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and "terminate called" not in stderr and "FATAL" not in stderr, stderr
    return _reported_frames(stderr)


@pytest.mark.parametrize("kind", list(FILE_KINDS))
def test_signal_at_seeded_points_of_a_file_job_keeps_a_readable_output(tmp_path: Path, keyer: Path, long_clip: Path,
                                                                        kind: str) -> None:
    name, options = FILE_KINDS[kind]
    for run, (after, delay, signum) in enumerate(_points(kind)):
        folder = tmp_path / str(run)
        folder.mkdir()
        out = folder / name
        proc = _launch(["process", str(long_clip), str(out), "--model", str(keyer), *options])
        ready = _opened(proc, long_clip) if after == "start" else (lambda: bool(leftovers(folder)))
        stderr = _stop_at(proc, ready, delay, [signum])
        done = _check_ending(proc, stderr, signum)
        assert leftovers(folder) == [], (run, stderr)
        if done == 0:
            assert not out.exists(), stderr
            continue
        assert (_png_frames(out) if kind == "png" else _video_frames(out)) == done, (run, stderr)


def test_signal_during_a_stream_output_ends_the_stream_cleanly(tmp_path: Path, keyer: Path, long_clip: Path) -> None:
    for run, (after, delay, signum) in enumerate(_points("stream")):
        capture = _UdpCapture(tmp_path / f"received-{run}.ts")
        proc = _launch(["process", str(long_clip), f"udp://127.0.0.1:{capture.port}", "--model", str(keyer)])
        ready = _opened(proc, long_clip) if after == "start" else (lambda: capture.path.stat().st_size > 0)
        stderr = _stop_at(proc, ready, delay, [signum])
        capture.close()
        done = _check_ending(proc, stderr, signum)
        if done:
            assert _video_frames(capture.path) > 0, stderr


@pytest.mark.parametrize("device", ["file", "udp"])
def test_signal_during_a_webcam_recording_keeps_the_recording(tmp_path: Path, keyer: Path, long_clip: Path,
                                                              device: str) -> None:
    for run, (after, delay, signum) in enumerate(_points(f"webcam-{device}")):
        folder = tmp_path / str(run)
        folder.mkdir()
        record = folder / "rec.mp4"
        sender = UdpSender() if device == "udp" else None
        try:
            spec = sender.url if sender else str(long_clip)
            proc = _launch(["webcam", "--device", spec, "--model", str(keyer), "--record", str(record)])
            ready = _opened(proc, None if sender else long_clip) if after == "start" else (lambda: bool(leftovers(folder)))
            stderr = _stop_at(proc, ready, delay, [signum])
        finally:
            if sender:
                sender.stop()
        done = _check_ending(proc, stderr, signum)
        assert leftovers(folder) == [], (run, stderr)
        if done == 0:
            assert not record.exists(), stderr
            continue
        assert _video_frames(record) == done, (run, stderr)


@pytest.mark.parametrize("name, options", [("out.mov", ["--alpha"]), ("frames", ["--alpha"])], ids=["mov", "png"])
def test_second_ctrl_c_aborts_and_removes_the_temporary_output(tmp_path: Path, keyer: Path, long_clip: Path,
                                                               name: str, options: list[str]) -> None:
    out = tmp_path / name
    proc = _launch(["process", str(long_clip), str(out), "--model", str(keyer), *options])
    stderr = _stop_at(proc, lambda: bool(leftovers(tmp_path)), 0.5, [signal.SIGINT, signal.SIGINT])
    _check_ending(proc, stderr, signal.SIGINT)
    assert leftovers(tmp_path) == [], stderr
    assert not out.exists() or "interrupted: wrote" in stderr, stderr


def _stalled_webcam_session(tmp_path: Path, keyer: Path, send_for: float, options: list[str],
                            timeout: float) -> tuple[int, str, float, UdpSender, Path]:
    """``webcam --device udp://...`` recording and streaming; its sender stops
    ``send_for`` s after the session reported it started. Returns the exit
    code, stderr, seconds from that report to the end, the sender, the recording."""
    record = tmp_path / "rec.mp4"
    sender = UdpSender()
    receiver = _UdpCapture(tmp_path / "out.ts")  # the --stream output's audience
    proc = _launch(["webcam", "--device", sender.url, "--model", str(keyer), "--record", str(record),
                    "--stream", f"udp://127.0.0.1:{receiver.port}", *options])
    lines: list[str] = []
    started = threading.Event()

    def read_stderr() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "Ctrl-C stops" in line:
                started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert started.wait(60), "".join(lines)
        began = time.monotonic()
        time.sleep(send_for)
        sender.stop()
        code = proc.wait(timeout)
        took = time.monotonic() - began
    finally:
        sender.stop()
        if proc.poll() is None:
            proc.kill()
        reader.join(5)
        receiver.close()
    return code, "".join(lines), took, sender, record


def _longest_freeze(path: Path) -> int:
    """The longest run of frames that repeat the one before: the sender's disc
    moves (barely, at its turning points) every frame, a held frame not at all."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24").astype(np.int16) for frame in container.decode(video=0)]
    longest = run = 0
    for a, b in zip(frames, frames[1:]):
        run = run + 1 if float(np.abs(b - a).mean()) < 0.5 else 0
        longest = max(longest, run)
    return longest


def test_stalled_live_input_honours_duration_and_records_no_frozen_tail(tmp_path: Path, keyer: Path) -> None:
    """The sender stops 2 s into a session asked to last 4 s: the session
    still ends at 4 s (not after the read timeout and 30 s of reconnecting),
    and the recording holds what was received, not the repeated last frame."""
    code, stderr, took, sender, record = _stalled_webcam_session(tmp_path, keyer, 2.0, ["--duration", "4"], timeout=60)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    elapsed = float(re.search(r"wrote \d+ frames to the live outputs in ([\d.]+) s", stderr)[1])
    assert 3.9 < elapsed < 4.8, stderr
    assert took < 4 + 3, stderr  # closing and leaving, far from the 30 s of reconnecting
    assert _video_frames(record) <= sender.sent
    assert _longest_freeze(record) < 5, stderr  # not the last frame repeated while the input stalled (60 frames)
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_stalled_live_input_without_duration_stops_reconnecting_and_keeps_the_recording(tmp_path: Path,
                                                                                       keyer: Path) -> None:
    code, stderr, took, sender, record = _stalled_webcam_session(tmp_path, keyer, 2.0, [], timeout=120)
    assert code == 0, stderr
    assert "did not come back" in stderr
    assert took < 2 + 5 + 30 + 10  # read timeout, then 30 s of reconnecting, then it ends
    assert _longest_freeze(record) < 5, stderr
    assert leftovers(tmp_path) == []


def test_ctrl_c_on_png_frames_with_the_shipped_engine_finalises_every_frame_written(tmp_path: Path) -> None:
    """The report's case: ``process in.mp4 frames/ --alpha`` with the default
    engine on HD frames aborted (134, "terminate called without an active
    exception") and counted one frame fewer than it left in the folder."""
    clip = write_clip(tmp_path / "hd.mp4", size=(1280, 720), frames=90, fps=FPS, audio=False)
    out = tmp_path / "frames"
    proc = _launch(["process", str(clip), str(out), "--alpha"])
    stderr = _stop_at(proc, lambda: bool(leftovers(tmp_path)), 0.5, [signal.SIGINT])
    done = _check_ending(proc, stderr, signal.SIGINT)
    assert leftovers(tmp_path) == [] and _png_frames(out) == done > 0, stderr


def test_a_stalled_recorded_stream_keeps_its_reader_registered_until_the_read_returns() -> None:
    """The reader blocked in FFmpeg when the source closes is what the
    interpreter must not finalise under (see livematte.ffmpeg_threads)."""
    sender = UdpSender()
    try:
        source = StreamSource(sender.url, read_timeout=1.0, reconnect_for=0, record=True)
        frames = iter(source)
        for _ in range(5):
            next(frames)
    finally:
        sender.stop()
    time.sleep(0.2)  # the reader is now waiting for data that will not come
    source.close()
    assert [thread.name for thread in ffmpeg_threads.pending()] == ["livematte-stream-reader"]
    assert ffmpeg_threads.wait(5)
    assert ffmpeg_threads.pending() == []


class _CountingSink(Sink):
    def write(self, image: np.ndarray, pts: float | None) -> None:
        self.written += 1

    def close(self, complete: bool = True) -> None:
        pass


def test_a_live_job_that_ends_during_a_stalled_read_registers_its_decode_thread(keyer: Path) -> None:
    """``--duration`` ends the job while the reader waits on a silent sender:
    the job returns on time, and the thread left in FFmpeg is registered."""
    sender = UdpSender()
    try:
        source = StreamSource(sender.url, read_timeout=2.0, reconnect_for=0)
        pipeline = Pipeline(source, realtime_stages(Matter(find_engine(str(keyer))), Compositor("#00ff00", source.size)),
                            [_CountingSink()], duration=1.5)
        threading.Timer(0.5, sender.stop).start()
        began = time.monotonic()
        result = pipeline.run()
        took = time.monotonic() - began
    finally:
        sender.stop()
    assert result.frames_out > 0 and took < 1.5 + Pipeline.SOURCE_GRACE_S + 1.0
    assert [thread.name for thread in ffmpeg_threads.pending()] == ["livematte-decode"]
    assert ffmpeg_threads.wait(5)


_BLOCKED_THREAD = """
import sys, threading
from livematte import ffmpeg_threads
thread = threading.Thread(target=threading.Event().wait, daemon=True)
ffmpeg_threads.started(thread, float(sys.argv[1]))
thread.start()
print("written", flush=False)
ffmpeg_threads.exit_now(7) if sys.argv[2] == "exit_now" else sys.exit(7)
"""


@pytest.mark.parametrize("how, bound, at_least, at_most", [("exit_now", 60.0, 0.0, 20.0), ("finalise", 1.5, 1.5, 20.0)])
def test_blocked_ffmpeg_threads_are_left_by_the_cli_and_waited_for_by_the_interpreter(
        how: str, bound: float, at_least: float, at_most: float) -> None:
    """The command line leaves at once, its output flushed; a library user's
    interpreter waits (at most the thread's bound) before finalising."""
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _BLOCKED_THREAD, str(bound), how], env=cli_env(),
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - began
    assert (done.returncode, done.stdout) == (7, "written\n"), done.stderr
    assert at_least <= took < at_most, took
