"""Numbered images read as a video: a folder of frames, or a ``name%06d.png`` pattern.

Compositing tools hand each other image sequences, and ``livematte process
IN frames/`` writes one, so a sequence is an input too. Images carry no
frame rate, so the caller gives one (``--fps``, default 30). Frames are
read one at a time with OpenCV, in the order of the number in their names;
one that cannot be read, or has another size than the first, is skipped and
counted, as a damaged packet in a video file is.
"""
from __future__ import annotations

import collections
import logging
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from livematte.errors import InputError
from livematte.frame import Frame, Size
from livematte.sinks import IMAGE_SUFFIXES
from livematte.sources import Source

log = logging.getLogger(__name__)

#: the frame rate of a sequence when none is given
DEFAULT_SEQUENCE_FPS = 30.0

_PRINTF_NUMBER = re.compile(r"%0?(\d*)d")


def is_sequence_input(spec: str) -> bool:
    """A folder, or a path that is not a file and whose name holds a ``%d``-style frame number."""
    path = Path(spec)
    return path.is_dir() or (not path.is_file() and bool(_PRINTF_NUMBER.search(path.name)))


def _natural_key(path: Path) -> list[object]:
    """``frame2`` before ``frame10``: numbers compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def sequence_files(spec: str) -> list[Path]:
    """The frames ``spec`` names, in order: a folder's images (all of one
    format), or the files a ``dir/name%06d.png`` pattern matches, by number."""
    path = Path(spec)
    if path.is_dir():
        # hidden files are left out: an interrupted writer's temporaries, a desktop's thumbnails
        images = [p for p in path.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
        formats = collections.Counter(p.suffix.lower() for p in images)
        if not images:
            from livematte.batch.plan import VIDEO_EXTENSIONS

            if any(p.suffix.lower() in VIDEO_EXTENSIONS for p in path.iterdir()):
                raise InputError(f"no images in folder {path}, but videos: `livematte batch {path} OUT_DIR` "
                                 "processes each of them")
            raise InputError(f"no images in folder {path} (an image sequence is {', '.join(sorted(IMAGE_SUFFIXES))})")
        if len(formats) > 1:
            raise InputError(f"folder {path} holds {' and '.join(sorted(formats))} images: name one sequence "
                             f"with a pattern such as {path / ('%06d' + formats.most_common(1)[0][0])}")
        return sorted(images, key=_natural_key)
    folder = path.parent if str(path.parent) else Path(".")
    match = _PRINTF_NUMBER.search(path.name)
    assert match is not None, "is_sequence_input() first"
    width = match.group(1)
    digits = rf"\d{{{int(width)},}}" if width else r"\d+"
    name = re.compile(re.escape(path.name[:match.start()]) + f"({digits})" + re.escape(path.name[match.end():]) + "$")
    if not folder.is_dir():
        raise InputError(f"input not found: {spec} (no folder {folder})")
    numbered = sorted((int(m.group(1)), folder / entry) for entry in os.listdir(folder)
                      if not entry.startswith(".") and (m := name.match(entry)))
    if not numbered:
        raise InputError(f"input not found: no file in {folder} matches {path.name}")
    return [file for _, file in numbered]


def _read_rgb(path: Path) -> np.ndarray | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageSequenceSource(Source):
    """Numbered images as frames at ``fps``, timed from 0 (``frame i`` at ``i / fps`` s)."""

    live = False

    def __init__(self, spec: str, fps: float | None = None) -> None:
        self._files = sequence_files(spec)
        first = _read_rgb(self._files[0])
        if first is None:
            raise InputError(f"not a readable image: {self._files[0]}")
        self.size = Size.of(first)
        self.fps = float(fps or DEFAULT_SEQUENCE_FPS)
        self.time_base = 1 / Fraction(self.fps).limit_denominator(1001)
        self.frame_count = len(self._files)
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for number, path in enumerate(self._files):
            if self._closed:
                return
            rgb = _read_rgb(path)
            if rgb is None or Size.of(rgb) != self.size:
                self.decode_errors += 1
                log.warning("skipped %s: %s", path, "unreadable" if rgb is None else "another size than the first")
                continue
            yield Frame(rgb=rgb, pts=float(number * self.time_base), index=index)
            index += 1

    def close(self) -> None:
        self._closed = True
