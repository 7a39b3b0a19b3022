"""Faults from issue 6 that the per-module tests did not inject: damaged
packets through a whole job, clips too short or too large for the decoder to
hand frames over one at a time, 1-pixel-wide video, a camera that goes away
during a recorded session, and the CLI's one-line errors for the bad inputs
and outputs the other CLI test does not try."""
from __future__ import annotations

import json
import time
from pathlib import Path

import av
import numpy as np
import pytest

from livematte.cli import main
from livematte.compositor import Compositor
from livematte.engine import Matter
from livematte.errors import DeviceError, EngineError
from livematte.manifest import load_manifest, validate_against_graph
from livematte.pipeline import Pipeline
from livematte.registry import find_engine
from livematte.sinks import Sink, VideoFileSink
from livematte.sources import CameraSource, open_source
from livematte.stages import realtime_stages
from tiny_engines import export_tiny_recurrent
from media_helpers import (damage_video_packets, leftovers, one_error_line, probe, run_cli, write_audio_only,
                           write_clip, write_keyer_engine)


@pytest.fixture(scope="module")
def keyer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_keyer_engine(tmp_path_factory.mktemp("keyer"))


def test_damaged_packets_are_skipped_counted_and_length_and_audio_kept(tmp_path: Path, keyer: Path, capsys) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=48, fps=24)
    damaged = damage_video_packets(clip, first=20, count=8)
    out = tmp_path / "out.mp4"
    assert main(["process", str(damaged), str(out), "--model", str(keyer)]) == 0
    assert "8 damaged packets skipped" in capsys.readouterr().err
    before, after = probe(clip), probe(out)
    # the damaged frames are gone (and frames predicted from them, which the decoder drops), the rest is kept
    assert 24 <= after["video"]["frames"] <= 48 - 8
    # every frame that survived keeps its time: the output is as long as the input, audio untouched
    assert set(after["video"]["pts"]) <= set(before["video"]["pts"])
    assert after["video"]["pts"][-1] == pytest.approx(before["video"]["pts"][-1], abs=1e-3)
    assert after["audio"]["duration"] == pytest.approx(before["audio"]["duration"], abs=1e-3)
    assert after["duration"] == pytest.approx(before["duration"], abs=0.05)


@pytest.mark.parametrize("frames", [1, 2, 3])
def test_clips_shorter_than_the_decoder_delay_keep_every_frame(tmp_path: Path, frames: int) -> None:
    """A decoder with frame threads hands a 2-frame clip (or two 8K frames)
    over at once, at the final flush; none of them may be lost."""
    clip = write_clip(tmp_path / "short.mp4", frames=frames, audio=False)
    with open_source(str(clip)) as source:
        assert len(list(source)) == frames


def test_one_pixel_wide_video_is_processed(tmp_path: Path, keyer: Path) -> None:
    clip = write_clip(tmp_path / "thin.mkv", size=(1, 64), frames=3, codec="mpeg4")  # H.264 cannot store 1 px
    out = tmp_path / "out.mp4"
    assert main(["-q", "process", str(clip), str(out), "--model", str(keyer), "--bg", "blur"]) == 0
    info = probe(out)
    assert info["video"]["frames"] == 3 and info["video"]["size"] == (2, 64)  # padded to even for 4:2:0


@pytest.mark.slow
def test_8k_video_is_processed(tmp_path: Path, keyer: Path) -> None:
    size = (7680, 4320)
    clip = tmp_path / "8k.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for i in range(2):
            image = np.zeros((size[1], size[0], 3), np.uint8)
            image[:, : size[0] // 2, 0] = 230  # red ("person") on the left half
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = tmp_path / "out.mp4"
    assert main(["-q", "process", str(clip), str(out), "--model", str(keyer), "--bg", "#00ff00"]) == 0
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 2 and decoded[-1].shape == (size[1], size[0], 3)
    assert decoded[-1][:, -100:, 1].mean() > 200 and decoded[-1][:, :100, 0].mean() > 200


def test_state_shape_that_does_not_match_the_graph_is_an_engine_error(tmp_path: Path) -> None:
    manifest_path = export_tiny_recurrent(tmp_path)
    data = json.loads(manifest_path.read_text())
    data["state"][0]["shape"] = [1, 4, "H/8", "W/8"]  # the graph's state is at 1/4 resolution
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(EngineError, match="state input 'h_in' dim 2 is 8 in the graph, manifest shape gives 4"):
        validate_against_graph(load_manifest(manifest_path))


class _ArrivalSink(Sink):
    """Notes when each frame reached the outputs (what a virtual camera would emit)."""

    live = True

    def __init__(self) -> None:
        self.arrivals: list[float] = []

    def write(self, image: np.ndarray, pts: float | None) -> None:
        self.arrivals.append(time.monotonic())
        self.written += 1

    def close(self, complete: bool = True) -> None:
        pass


def test_camera_unplugged_for_good_keeps_emitting_then_keeps_the_recording(tmp_path: Path, keyer: Path) -> None:
    """OpenCV opens a file like a camera; once it has been read and deleted,
    reads fail and reopening fails as for an unplugged camera. While the
    source backs off, the last frame must keep going out to live outputs;
    when it gives up, the session ends with the device error and the
    recording is kept, with the camera's 10 frames and no frozen tail."""
    clip = write_clip(tmp_path / "cam.mp4", size=(96, 64), frames=10, audio=False)
    source = CameraSource(str(clip), retries=2)
    clip.unlink()  # the open handle still reads the 10 frames, then the camera is gone
    record, live = tmp_path / "rec.mp4", _ArrivalSink()
    sinks = [VideoFileSink(record, source.size, source.fps), live]
    # OpenCV reads the file faster than a camera would deliver it: room for all 10 frames, none dropped
    pipeline = Pipeline(source, realtime_stages(Matter(find_engine(str(keyer))), Compositor("#00ff00", source.size)),
                        sinks, queue_size=32)
    with pytest.raises(DeviceError, match="stopped delivering"):
        pipeline.run()
    # back-off of 0.2 s then 0.4 s, at 24 fps: frames kept coming, no gap a call would see as a freeze
    assert len(live.arrivals) >= 15 and np.diff(live.arrivals).max() < 0.2
    assert probe(record)["video"]["frames"] == sinks[0].written == 10
    assert leftovers(tmp_path) == []


def test_more_bad_inputs_and_outputs_end_with_one_line_and_the_right_code(tmp_path: Path, keyer: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=4, audio=False)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    no_onnx = tmp_path / "no-onnx.json"
    no_onnx.write_text(json.dumps({**json.loads(keyer.read_text()), "onnx": str(tmp_path / "gone.onnx")}))
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep")
    out = tmp_path / "out" / "result.mp4"
    out.parent.mkdir()
    model = ["--model", str(keyer)]
    cases = [
        (["process", str(tmp_path), str(out), *model], 2, "no images in folder"),  # nor an image sequence
        (["process", str(empty), str(out), *model], 2, "empty file"),
        (["process", str(write_audio_only(tmp_path / "voice.m4a")), str(out), *model], 2, "no video stream"),
        (["process", str(clip), str(out), "--model", str(no_onnx)], 3, "gone.onnx"),
        (["process", str(clip), str(tmp_path / "no" / "such" / "out.mp4"), *model], 5, "does not exist"),
        (["process", str(clip), str(existing), *model], 5, "--overwrite"),
        (["process", str(clip), str(out.with_suffix(".xyz")), *model], 5, "unknown output format .xyz"),
        # a camera index that is not there: OpenCV's own warnings must not reach the terminal
        (["process", "camera:99", str(out), *model], 4, "cannot open camera 99"),
    ]
    for args, code, words in cases:
        result = run_cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert words in one_error_line(result.stderr), (args, result.stderr)
        assert list(out.parent.iterdir()) == [], args
    assert existing.read_bytes() == b"keep" and leftovers(tmp_path) == []
