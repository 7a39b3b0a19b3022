"""A one-line progress bar on stderr for file jobs.

Twenty lines of code do not justify a dependency: this redraws one line
with ``\\r`` when stderr is a terminal and stays silent otherwise, so logs and
test captures get only the final summary.
"""
from __future__ import annotations

import sys
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def frames_text(count: int) -> str:
    """``1 frame``, ``24 frames``: a photo is one frame, and is said so."""
    return f"{count} frame{'' if count == 1 else 's'}"


def format_progress(done: int, total: int | None, fps: float, width: int = 24) -> str:
    """``[#####-----]  120/300  40%  31.2 fps  ETA 0:06`` (no bar or ETA when the total is unknown)."""
    if not total:
        return f"{done} frames  {fps:5.1f} fps"
    fraction = min(1.0, done / total)
    filled = int(round(fraction * width))
    eta = _clock((total - done) / fps) if fps > 0 and done < total else "--:--"
    return f"[{'#' * filled}{'-' * (width - filled)}] {done:>{len(str(total))}}/{total} {fraction:4.0%}  {fps:5.1f} fps  ETA {eta}"


class ProgressBar:
    """Callable for :class:`livematte.pipeline.Pipeline`'s ``on_progress``."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._drawn = False

    def __call__(self, done: int, total: int | None, fps: float) -> None:
        if self.enabled:
            self.stream.write("\r" + format_progress(done, total, fps) + "\x1b[K")
            self.stream.flush()
            self._drawn = True

    def finish(self) -> None:
        """End the bar's line so the summary starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
