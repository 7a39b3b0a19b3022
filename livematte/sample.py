"""A sample clip anyone may use and redistribute: NASA's public-domain
astronaut portrait moving over a generated background, with a tone track.

The portrait ships as ``livematte/assets/astronaut.jpg`` (see the NOTICE
beside it) rather than being taken from scikit-image at run time, so the
command works on a fresh ``pip install`` without the dev extras. The person
outline is a hand-drawn polygon, feathered; it is only used to place the
person, and :func:`sample_frames` also returns it so tests know where the
person is in every frame.
"""
from __future__ import annotations

import math
import os
import tempfile
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

#: hand-drawn outline of the astronaut (head, suit, held helmet) in the
#: 512x512 portrait, clockwise from the top of the head
ASTRONAUT_OUTLINE = (
    (222, 14), (258, 18), (290, 35), (308, 62), (305, 100), (300, 130), (292, 150),
    (300, 170), (305, 205), (300, 235), (330, 260), (350, 285), (358, 330), (362, 345),
    (400, 345), (445, 355), (480, 380), (500, 420), (505, 470), (511, 511), (18, 511),
    (20, 420), (25, 330), (35, 285), (60, 255), (95, 235), (115, 215), (112, 190),
    (125, 170), (155, 150), (160, 125), (152, 90), (158, 55), (185, 28),
)  # fmt: skip

AUDIO_RATE = 48000
#: the tone played in each second of the clip (A major arpeggio), so a
#: listener hears at once whether audio stayed in sync
TONES_HZ = (440.0, 554.37, 659.25, 880.0)


def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """The portrait (512x512x3 uint8 RGB) and its feathered outline alpha (float32)."""
    data = resources.files("livematte").joinpath("assets/astronaut.jpg").read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.array(ASTRONAUT_OUTLINE, np.int32)], 255)
    alpha = cv2.GaussianBlur(mask, (0, 0), 1.5).astype(np.float32) / 255.0
    return rgb, alpha


def scene_background(width: int, height: int, t: float) -> np.ndarray:
    """The background at time ``t`` s: a teal-to-violet gradient with slowly drifting translucent discs."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top, bottom = np.array([30, 120, 140], np.float32), np.array([90, 40, 120], np.float32)
    bg = np.broadcast_to(top + (bottom - top) * y, (height, width, 3)).astype(np.uint8)
    overlay = bg.copy()
    scale = min(width, height)
    for i, colour in enumerate(((240, 190, 60), (80, 200, 120), (230, 90, 90))):
        cx = int(width * (0.2 + 0.3 * i) + 0.08 * width * math.sin(0.6 * t + i))
        cy = int(height * (0.3 + 0.15 * math.cos(0.4 * t + 2 * i)))
        cv2.circle(overlay, (cx, cy), int(scale * (0.12 + 0.03 * i)), colour, -1, cv2.LINE_AA)
    return cv2.addWeighted(overlay, 0.45, bg, 0.55, 0.0)


def sample_frames(
    size: tuple[int, int] = (1280, 720), seconds: float = 5.0, fps: float = 30.0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (frame RGB uint8, true person alpha float32) for every frame.

    The person stands on the bottom edge (the portrait is cut at the chest,
    so it must never float) and sways left and right, bobbing slightly.
    """
    width, height = size
    portrait, outline = astronaut()
    side = int(round(height * 1.05))
    person = cv2.resize(portrait, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    matte = cv2.resize(outline, (side, side), interpolation=cv2.INTER_AREA)
    for index in range(int(round(seconds * fps))):
        t = index / fps
        x = int(round((width - side) / 2 + 0.18 * width * math.sin(2 * math.pi * t / 5.0)))
        y = height - side + int(round(0.04 * height * (1 + math.sin(2 * math.pi * t / 2.5)) / 2))
        alpha = np.zeros((height, width), np.float32)
        # intersect the portrait's placement with the frame
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + side, width), min(y + side, height)
        alpha[y0:y1, x0:x1] = matte[y0 - y : y1 - y, x0 - x : x1 - x]
        fg = np.zeros((height, width, 3), np.float32)
        fg[y0:y1, x0:x1] = person[y0 - y : y1 - y, x0 - x : x1 - x]
        bg = scene_background(width, height, t).astype(np.float32)
        a = alpha[:, :, None]
        frame = np.clip(fg * a + bg * (1 - a) + 0.5, 0, 255).astype(np.uint8)
        yield frame, alpha


def _write_tones(path: Path, seconds: float) -> None:
    """An AAC track: one tone per second, with short fades so steps do not click."""
    import av  # only writing needs PyAV; sample_frames runs without it (e.g. on a bare GPU machine)

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=AUDIO_RATE)
        stream.layout = "stereo"
        total = int(round(seconds * AUDIO_RATE))
        chunk = 1024
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            t = (start + np.arange(n)) / AUDIO_RATE
            freq = np.array([TONES_HZ[int(s) % len(TONES_HZ)] for s in t], np.float64)
            fade = np.clip(np.minimum(t % 1.0, 1.0 - t % 1.0) / 0.02, 0.0, 1.0)
            wave = (0.2 * fade * np.sin(2 * math.pi * freq * t)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def write_sample(
    path: str | os.PathLike[str],
    size: tuple[int, int] = (1280, 720),
    seconds: float = 5.0,
    fps: float = 30.0,
    overwrite: bool = False,
) -> Path:
    """Write the sample clip (H.264 + AAC) to ``path`` and return it."""
    from livematte.sinks import VideoFileSink  # PyAV, imported only to write

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with tempfile.TemporaryDirectory(prefix="livematte-sample-") as tmp:
        tones = Path(tmp) / "tones.m4a"
        _write_tones(tones, seconds)
        with VideoFileSink(
            path, size, float(rate), time_base=1 / rate, quality=18, audio_from=str(tones), overwrite=overwrite
        ) as sink:
            for index, (frame, _alpha) in enumerate(sample_frames(size, seconds, fps)):
                sink.write(frame, float(index / rate))
    return path
