"""Long live session (marked slow): a looping MPEG-TS stream on 127.0.0.1
through the live pipeline for LIVEMATTE_SOAK_SECONDS (default 600 s).

Memory must stay flat (RSS growth < 5 % after warm-up) and the output rate
must not drift (last tenth of the run within 10 % of the second tenth).
Run with: python -m pytest -m slow tests/test_soak.py -s
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from livematte.compositor import Compositor
from livematte.engine import Matter
from livematte.pipeline import LiveStats, Pipeline
from livematte.registry import find_engine
from livematte.sinks import Sink, StreamSink
from livematte.sources import StreamSource
from livematte.stages import realtime_stages
from media_helpers import disc_frame, write_keyer_engine


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _CountingSink(Sink):
    def write(self, image: np.ndarray, pts: float | None) -> None:
        self.written += 1

    def close(self, complete: bool = True) -> None:
        pass


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
def test_live_soak_memory_flat_and_no_drift(tmp_path: Path) -> None:
    seconds = float(os.environ.get("LIVEMATTE_SOAK_SECONDS", "600"))
    size = (320, 180)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"udp://127.0.0.1:{port}"
    stop = threading.Event()
    loop = [disc_frame(*size, i) for i in range(60)]

    def send() -> None:
        sink = StreamSink(url, size, 30)
        index, start = 0, time.monotonic()
        while not stop.is_set():
            sink.write(loop[index % len(loop)], None)
            index += 1
            time.sleep(max(0.0, start + index / 30 - time.monotonic()))
        sink.close()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    samples: list[tuple[float, int, LiveStats]] = []
    try:
        source = StreamSource(url, open_timeout=10)
        matter = Matter(find_engine(str(write_keyer_engine(tmp_path))))
        pipeline = Pipeline(source, realtime_stages(matter, Compositor("blur", source.size)), [_CountingSink()],
                            duration=seconds, on_live_stats=lambda st: samples.append((time.monotonic(), _rss_bytes(), st)))
        result = pipeline.run()
    finally:
        stop.set()
        sender.join(5)
    tenth = max(1, len(samples) // 10)
    warm_rss = np.median([rss for _, rss, _ in samples[tenth : 2 * tenth]])
    end_rss = np.median([rss for _, rss, _ in samples[-tenth:]])
    early_fps = np.mean([st.fps for _, _, st in samples[tenth : 2 * tenth]])
    late_fps = np.mean([st.fps for _, _, st in samples[-tenth:]])
    print(f"soak {seconds:.0f} s: {result.frames_out} frames, RSS {warm_rss / 2**20:.1f} -> {end_rss / 2**20:.1f} MiB, "
          f"fps {early_fps:.1f} -> {late_fps:.1f}, latency {samples[-1][2].latency_ms:.0f} ms, dropped {result.dropped}")
    assert end_rss <= warm_rss * 1.05
    assert abs(late_fps - early_fps) <= 0.1 * early_fps
