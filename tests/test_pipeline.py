"""The threaded pipeline end to end on real files and a real UDP stream."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livematte.compositor import Compositor
from livematte.engine import Matter
from livematte.registry import find_engine
from livematte.pipeline import Pipeline
from livematte.sinks import ImageSequenceSink, Sink, StreamSink, VideoFileSink
from livematte.sources import StreamSource, open_source
from livematte.stages import realtime_stages
from media_helpers import disc_alpha, disc_frame, leftovers, probe, write_clip, write_keyer_engine

GREEN = np.array([0, 255, 0])


@pytest.fixture(scope="module")
def keyer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_keyer_engine(tmp_path_factory.mktemp("keyer"))


def _pipeline(source, manifest: Path, sinks, matte_sinks=(), bg: str = "#00ff00", **kwargs) -> Pipeline:
    matter = Matter(find_engine(str(manifest)))
    compositor = Compositor(bg, source.size)
    return Pipeline(source, realtime_stages(matter, compositor), sinks, matte_sinks=matte_sinks, **kwargs)


def test_file_job_keeps_every_frame_in_order_and_replaces_the_background(tmp_path: Path, keyer: Path) -> None:
    size = (128, 80)
    clip = write_clip(tmp_path / "in.mp4", size=size, frames=30, fps=30)
    out, mattes = tmp_path / "out.mp4", tmp_path / "mattes"
    source = open_source(str(clip))
    sink = VideoFileSink(out, source.size, source.fps, source.time_base, audio_from=source.audio_path, quality=12)
    result = _pipeline(source, keyer, [sink], [ImageSequenceSink(mattes)], queue_size=2).run()

    assert result.frames_in == result.frames_out == 30 and result.dropped == 0 and not result.interrupted
    assert all(result.stages[name].frames == 30 for name in ("decode", "infer", "composite", "encode"))
    assert all(counter.fps > 0 for counter in result.stages.values())
    before, after = probe(clip), probe(out)
    assert after["video"]["frames"] == 30
    assert after["video"]["pts"] == pytest.approx(before["video"]["pts"], abs=1e-3)  # order and timing kept
    assert after["audio"]["duration"] == pytest.approx(before["audio"]["duration"], abs=1e-3)
    assert len(list(mattes.iterdir())) == 30
    assert leftovers(tmp_path) == []

    with av.open(str(out)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    for index in (0, 15, 29):
        person = disc_alpha(*size, index)
        # away from the edge (the matte is soft there), background is green, the disc is kept
        far = cv2.erode((~person).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        inside = cv2.erode(person.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert np.abs(decoded[index][far].mean(0) - GREEN).max() < 12
        assert np.abs(decoded[index][inside].astype(float).mean(0) - disc_frame(*size, index)[inside].mean(0)).max() < 12
        matte = cv2.imread(str(mattes / f"{index + 1:06d}.png"), cv2.IMREAD_GRAYSCALE)
        assert matte[far].max() < 20 and matte[inside].min() > 235


class _FailingSink(Sink):
    """A sink that breaks mid-job, like a disk that fills up."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.aborted = False

    def write(self, image: np.ndarray, pts: float | None) -> None:
        if self.written == self.after:
            raise OSError(28, "No space left on device")
        self.written += 1

    def close(self, complete: bool = True) -> None:
        raise AssertionError("a failed job must abort its sinks, not finalise them")

    def abort(self) -> None:
        self.aborted = True


def test_stage_error_stops_everything_and_reraises_the_original(tmp_path: Path, keyer: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=60, audio=False)
    source = open_source(str(clip))
    good = VideoFileSink(tmp_path / "out.mp4", source.size, source.fps, source.time_base)
    failing = _FailingSink(after=5)
    started = time.monotonic()
    with pytest.raises(OSError, match="No space left"):
        _pipeline(source, keyer, [good, failing]).run()
    assert time.monotonic() - started < 20
    assert failing.aborted
    assert list(tmp_path.iterdir()) == [clip]  # the good sink's partial file was removed too


class _SlowSink(Sink):
    """Takes 30 ms per frame (a slow encoder or network) and notes when each frame arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []

    def write(self, image: np.ndarray, pts: float | None) -> None:
        self.arrivals.append(time.monotonic())
        time.sleep(0.03)
        self.written += 1

    def close(self, complete: bool = True) -> None:
        pass


def test_live_mode_drops_oldest_instead_of_queueing(tmp_path: Path, keyer: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=120, audio=False)
    stats = []
    pipeline = _pipeline(open_source(str(clip)), keyer, [_SlowSink()], live=True, on_live_stats=stats.append,
                         report_every=0.05)
    result = pipeline.run()
    # decoding a file is far faster than a 30 ms sink: frames must be dropped, none queued up
    assert result.dropped > 0 and result.frames_out + result.dropped <= result.frames_in
    assert result.frames_out < result.frames_in
    assert stats and all(s.latency_ms < 200 for s in stats if s.frames)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_udp_stream_to_file(tmp_path: Path, keyer: Path) -> None:
    """MPEG-TS over UDP on 127.0.0.1: a sender thread, the stream source, a file out."""
    size, port = (96, 64), _free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    stop = threading.Event()

    def send() -> None:
        sink = StreamSink(url, size, 30)
        index = 0
        while not stop.is_set():
            sink.write(disc_frame(*size, index), None)
            index += 1
            time.sleep(1 / 30)
        sink.close()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        source = StreamSource(url + "?fifo_size=100000&overrun_nonfatal=1", open_timeout=10)
        assert source.live and source.size == size
        out = tmp_path / "live.mp4"
        sink = VideoFileSink(out, source.size, source.fps)
        stats = []
        result = _pipeline(source, keyer, [sink], duration=2.0, on_live_stats=stats.append).run()
    finally:
        stop.set()
        sender.join(5)
    assert result.frames_out >= 20
    info = probe(out)
    assert info["video"]["frames"] == result.frames_out
    assert stats and stats[-1].fps > 5
    with av.open(str(out)) as c:
        last = list(c.decode(video=0))[-1].to_ndarray(format="rgb24")
    # some of the frame is the new green background, some is the red person
    greenish = (last[:, :, 1] > 180) & (last[:, :, 0] < 80)
    assert 0.2 < greenish.mean() < 0.95


def test_third_party_mediapipe_replaces_the_sample_background(tmp_path: Path, mediapipe_manifest_path: Path) -> None:
    """The shipped sample clip through a model nobody here wrote: where the
    hand-drawn outline says there is no person, the output is the new colour."""
    from livematte.sample import sample_frames, write_sample

    size, seconds = (256, 144), 0.5
    clip = write_sample(tmp_path / "sample.mp4", size=size, seconds=seconds)
    source = open_source(str(clip))
    out = tmp_path / "out.mp4"
    sink = VideoFileSink(out, source.size, source.fps, source.time_base, audio_from=source.audio_path, quality=12)
    result = _pipeline(source, mediapipe_manifest_path, [sink]).run()
    assert result.frames_out == 15
    with av.open(str(out)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    truths = [alpha for _, alpha in sample_frames(size, seconds)]
    for frame, truth in zip(decoded[::7], truths[::7]):
        far = cv2.erode((truth < 0.01).astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
        inside = cv2.erode((truth > 0.99).astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
        green = (frame[:, :, 1] > 200) & (frame[:, :, 0] < 60) & (frame[:, :, 2] < 60)
        assert green[far].mean() > 0.9, "background left where there is no person"
        assert green[inside].mean() < 0.1, "person replaced by background"


def test_dropped_stream_reconnects_and_keeps_emitting(tmp_path: Path, keyer: Path) -> None:
    """The sender stops for a second and restarts: the source repeats the last
    frame meanwhile (a virtual camera must not freeze) and reconnects."""
    size, port = (96, 64), _free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    stop = threading.Event()

    def send_with_gap() -> None:
        time.sleep(0.5)  # let the receiver bind first, so it sees the first key frame
        for burst in range(2):
            sink = StreamSink(url, size, 30)
            for index in range(45):
                if stop.is_set():
                    break
                sink.write(disc_frame(*size, index), None)
                time.sleep(1 / 30)
            sink.close()
            if burst == 0:
                time.sleep(2.5)  # the stream drops

    sender = threading.Thread(target=send_with_gap, daemon=True)
    sender.start()
    try:
        # the read timeout is also how long the first key frame may take: 1 s leaves room for a loaded machine
        source = StreamSource(url, open_timeout=10, read_timeout=1.0, reconnect_for=8)
        sink = _SlowSink()
        sink.live = True  # stands in for a virtual camera: it gets the held frames too
        result = _pipeline(source, keyer, [sink], duration=5.0).run()
    finally:
        stop.set()
        sender.join(5)
    # a loaded machine can stall the sender past the read timeout once more, hence >= 1
    assert source.reconnects >= 1
    gaps = np.diff(sink.arrivals)
    # the only expected gap is the read timeout (1 s) that detects the drop; the 2.5 s outage itself is filled
    assert result.frames_out > 60 and gaps.max() < 1.6
