"""Real media for the I/O tests: tiny clips with audio written with PyAV, a
"keyer" engine whose matte is known exactly, and a CLI runner.

The keyer is a genuine ONNX graph (built with ``onnx.helper``) that says
"person" where the red channel is bright. On a clip of a red disc over a
blue background the true alpha of every frame is therefore known, which is
what lets tests check composited pixels without a trained model.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from livematte.manifest import FORMAT

REPO = Path(__file__).resolve().parents[1]

#: colours of the synthetic clip: the "person" disc and the background
PERSON_RGB = (230, 40, 40)
BACKDROP_RGB = (20, 40, 200)
AUDIO_RATE = 48000


def disc_alpha(width: int, height: int, index: int) -> np.ndarray:
    """The true person mask (bool) of frame ``index``: a disc drifting right."""
    cx = width * (0.35 + 0.3 * math.sin(index / 10.0))
    cy, radius = height / 2, min(width, height) * 0.3
    yy, xx = np.mgrid[0:height, 0:width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2


def disc_frame(width: int, height: int, index: int) -> np.ndarray:
    mask = disc_alpha(width, height, index)
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = BACKDROP_RGB
    frame[mask] = PERSON_RGB
    return frame


def write_clip(
    path: Path,
    size: tuple[int, int] = (96, 64),
    frames: int = 24,
    fps: int = 24,
    audio: bool = True,
    rotation: float | None = None,
    pts_ticks: list[int] | None = None,
    codec: str = "libx264",
) -> Path:
    """An H.264 clip of the red disc, with an AAC tone as long as the video.

    ``pts_ticks`` (in 1/fps/100 units, i.e. time base 1/(100*fps)) gives
    variable frame rate; ``rotation`` sets the display matrix (counter-
    clockwise degrees, as FFmpeg reports it).
    """
    width, height = size
    tb = Fraction(1, 100 * fps)
    with av.open(str(path), "w") as out:
        options = {"preset": "ultrafast", "crf": "18"} if codec == "libx264" else {}
        video = out.add_stream(codec, rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = tb
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=AUDIO_RATE)
            sound.layout = "mono"
        ticks = pts_ticks or [i * 100 for i in range(frames)]
        for i, tick in enumerate(ticks):
            frame = av.VideoFrame.from_ndarray(disc_frame(width, height, i), format="rgb24")
            frame.pts, frame.time_base = tick, tb
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            total = int(round((ticks[-1] + 100) * tb * AUDIO_RATE))
            for start in range(0, total, 1024):
                n = min(1024, total - start)
                wave = 0.2 * np.sin(2 * np.pi * 440 * (start + np.arange(n)) / AUDIO_RATE)
                af = av.AudioFrame.from_ndarray(wave.astype(np.float32)[None], format="fltp", layout="mono")
                af.sample_rate, af.pts = AUDIO_RATE, start
                for packet in sound.encode(af):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 0.1) -> Path:
    """An AAC file with no video stream (a podcast or a voice memo given by mistake)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=AUDIO_RATE)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, int(seconds * AUDIO_RATE)), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return path


def damage_video_packets(clip: Path, first: int, count: int) -> Path:
    """Overwrite the payload of ``count`` video packets from packet ``first`` with
    noise (bit rot, a bad sector): the container stays intact, the decoder
    gets garbage. Returns the damaged copy ``damaged-NAME``."""
    with av.open(str(clip)) as container:
        spans = [(p.pos, p.size) for p in container.demux(video=0) if p.size][first : first + count]
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(0)
    for pos, size in spans:
        # the first bytes (NAL length/header) stay, so the damage reaches the decoder
        data[pos + 4 : pos + size] = rng.integers(0, 256, size - 4, dtype=np.uint8).tobytes()
    damaged = clip.with_name(f"damaged-{clip.name}")
    damaged.write_bytes(bytes(data))
    return damaged


def write_keyer_engine(directory: Path, name: str = "red-keyer", shape: tuple[int, int] = (32, 48)) -> Path:
    """An ONNX engine: alpha = sigmoid(40 * (red - 0.5)), NCHW, fixed graph ``shape`` (H, W); returns its manifest."""
    import onnx
    from onnx import TensorProto, helper

    h, w = shape
    nodes = [
        helper.make_node("Slice", ["src", "starts", "ends", "axes"], ["red"]),
        helper.make_node("Sub", ["red", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["alpha"]),
    ]
    inits = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [40.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "red_keyer",
        [helper.make_tensor_value_info("src", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, h, w])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / f"{name}.onnx"))
    manifest = {
        "format": FORMAT,
        "name": name,
        "onnx": f"{name}.onnx",
        "description": "test keyer: red means person",
        "input": {"name": "src", "layout": "NCHW", "dtype": "float32", "color": "RGB",
                  "scale": 1.0 / 255.0, "mean": [0, 0, 0], "std": [1, 1, 1], "size": [h, w]},
        "outputs": {"alpha": {"name": "alpha", "layout": "NCHW", "channel": 0, "activation": "none"}},
        "license": "CC0-1.0",
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def probe(path: Path) -> dict:
    """What a player would see: per-stream frame counts, durations (s) and formats."""
    info: dict = {}
    with av.open(str(path)) as c:
        info["duration"] = c.duration / 1e6 if c.duration else None
        for s in c.streams:
            entry = {"codec": s.codec_context.name}
            if s.type == "video":
                frames = list(c.decode(s))
                entry.update(frames=len(frames), pix_fmt=frames[0].format.name if frames else None,
                             size=(frames[0].width, frames[0].height) if frames else None,
                             pts=[float(f.pts * f.time_base) for f in frames], metadata=dict(s.metadata))
                c.seek(0)
            elif s.type == "audio":
                # decoded samples, not container metadata (WebM has no per-stream duration)
                samples = [(f.samples, f.sample_rate) for f in c.decode(s)]
                entry["duration"] = sum(n for n, _ in samples) / samples[0][1] if samples else 0.0
                c.seek(0)
            info.setdefault(s.type, entry)
    return info


def cli_env() -> dict[str, str]:
    """The environment for a ``python -m livematte`` subprocess run from this checkout."""
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_cli(*args: str, timeout: float = 120, preexec_fn=None) -> subprocess.CompletedProcess:
    """``python -m livematte ARGS`` in a subprocess, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "livematte", *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), preexec_fn=preexec_fn)


def one_error_line(stderr: str) -> str:
    """The single ``livematte: error: ...`` line a failed command must print, and nothing else."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("livematte: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def leftovers(directory: Path) -> list[str]:
    """Temporary outputs a failed job must not leave behind."""
    return sorted(p.name for p in directory.iterdir() if ".part" in p.name)
