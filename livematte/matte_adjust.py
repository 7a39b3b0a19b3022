"""The matte knobs streamers expect: threshold, feather and temporal smoothing.

They act on the 8-bit matte between the engine and the compositor, so the
composite and ``--matte-out`` see the same adjusted matte (what is saved is
what is shown). Order: smoothing first (it damps flicker in the engine's raw
output, before a threshold could turn a flickering 0.3 into an on/off
blink), then the threshold, then the feather.

- **threshold** ``t`` in [0, 1): alpha below ``t`` becomes 0; alpha at or
  above it is stretched linearly from [t, 1] to [0, 1]. The mapping is
  continuous (``t`` maps to 0) and keeps 1 at 1, so edges stay soft and the
  person stays opaque; only the faint haze below ``t`` is cut.
- **feather** ``f`` pixels: the matte is blurred with a Gaussian of sigma
  ``f / 2.56``, so a hard edge becomes a ramp whose 10-90 % width is ``f``
  pixels.
- **smoothing** ``s`` in [0, 0.95]: :class:`~livematte.compositor.TemporalSmoother`
  mixes each pixel with its previous value by weight ``s`` where it changed
  by less than 24/255, so still edges stop shimmering while motion passes
  at once. On those slow changes it adds on average ``s / (1 - s)`` frames of
  lag (0.5: 1 frame; 0.8: 4 frames).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from livematte.compositor import TemporalSmoother
from livematte.errors import InputError

#: the largest accepted feather, in pixels (beyond it the person dissolves)
MAX_FEATHER = 50.0
#: the largest accepted smoothing (1.0 would freeze the matte)
MAX_SMOOTHING = 0.95
#: the 10-90 % width of a Gaussian ramp is 2.56 sigma
_RAMP_PER_SIGMA = 2.5631


def smoothing_lag_frames(smoothing: float) -> float:
    """Mean delay, in frames, that exponential smoothing of weight ``smoothing`` adds to slow changes."""
    return smoothing / (1.0 - smoothing)


@dataclass(frozen=True)
class MatteSettings:
    """Threshold (0..1), feather (pixels) and smoothing (0..0.95); all 0 leaves the matte as it is."""

    threshold: float = 0.0
    feather: float = 0.0
    smoothing: float = 0.0

    def __post_init__(self) -> None:
        for name, low, high, closed in (("threshold", 0.0, 1.0, False), ("feather", 0.0, MAX_FEATHER, True),
                                        ("smoothing", 0.0, MAX_SMOOTHING, True)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise InputError(f"{name} must be a number, got {value!r}")
            if not (low <= value <= high if closed else low <= value < high):
                bracket = "]" if closed else ")"
                raise InputError(f"{name} must be in [{low:g}, {high:g}{bracket}, got {value:g}")

    @property
    def is_identity(self) -> bool:
        return self.threshold == 0 and self.feather == 0 and self.smoothing == 0


def threshold_table(threshold: float) -> np.ndarray:
    """The 256-entry uint8 lookup table of the threshold remap (see the module docstring)."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    stretched = (levels - threshold) / (1.0 - threshold)
    return np.clip(np.round(stretched * 255.0), 0, 255).astype(np.uint8)


class MatteAdjuster:
    """Applies the current :class:`MatteSettings` to each 8-bit matte, in frame order.

    ``settings`` is read once per frame, so a live control can change it
    between frames; the smoother keeps its state across changes of strength.
    """

    def __init__(self, settings: Callable[[], MatteSettings]) -> None:
        self._settings = settings
        self._smoother = TemporalSmoother(0.0)
        self._table_for: float | None = None
        self._table = threshold_table(0.0)

    def reset(self) -> None:
        """Forget the previous frame (seek, scene cut)."""
        self._smoother.reset()

    def __call__(self, matte: np.ndarray) -> np.ndarray:
        settings = self._settings()
        if settings.smoothing > 0:
            self._smoother.strength = settings.smoothing
            matte = self._smoother(matte)
        else:
            self._smoother.reset()  # turning smoothing back on starts from the current frame
        if settings.threshold > 0:
            if self._table_for != settings.threshold:
                self._table, self._table_for = threshold_table(settings.threshold), settings.threshold
            matte = cv2.LUT(matte, self._table)
        if settings.feather > 0:
            matte = cv2.GaussianBlur(matte, (0, 0), sigmaX=settings.feather / _RAMP_PER_SIGMA,
                                     borderType=cv2.BORDER_REPLICATE)
        return matte
