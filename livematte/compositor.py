"""Putting the matted person over a new background, in uint8 and whole-frame OpenCV calls.

Compositing ``alpha * frame + (1 - alpha) * background`` with the frame's own
colours leaves a fringe of the old background around hair: an edge pixel is
already a mix ``alpha * F + (1 - alpha) * B_old``. The compositor therefore
estimates ``B_old`` near the edge (the mean of nearby pure-background pixels,
at low resolution, like the background half of Germer et al.'s blur-fusion
foreground estimation) and uses ``alpha * F = frame - (1 - alpha) * B_old``,
which removes the spill without a per-pixel solver.

What goes behind the person is a :class:`~livematte.backgrounds.Background`
(``--bg``), rendered from the frame and its matte.
"""
from __future__ import annotations

import cv2
import numpy as np

from livematte.backgrounds import Background, parse_background
from livematte.fill import push_pull
from livematte.frame import Size
from livematte.resize import to_long_side
from livematte.tiles import active_runs

#: alpha (0..255) below which a pixel counts as pure background for the spill estimate
_PURE_BACKGROUND = 13
#: long side of the working image for the (smooth) old-background estimate
_ESTIMATE_SIDE = 160
#: side of the tiles the soft-edge blend runs on, in frame pixels
_BLEND_TILE = 64


def estimate_old_background(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The original background colour behind each pixel, uint8 hxwx3 with long side 160.

    It is smooth, so it stays small until the compositor enlarges it.

    Pure-background pixels (alpha < 5 %) at low resolution are spread into
    the rest of the image by :func:`~livematte.fill.push_pull`, so an edge pixel gets the
    colour of the background nearest to it however wide the soft band is.
    A frame with no background at all returns the small frame itself, which only
    matters where alpha is 1 and the estimate is unused.
    """
    # nearest sampling is enough: the estimate averages many samples anyway
    small = to_long_side(rgb, _ESTIMATE_SIDE, area=False)
    weight = (to_long_side(alpha, _ESTIMATE_SIDE, area=False) < _PURE_BACKGROUND).astype(np.float32)
    if not weight.any():
        return small
    return np.clip(push_pull(small.astype(np.float32), weight), 0, 255).astype(np.uint8)


class TemporalSmoother:
    """Light exponential smoothing of alpha that damps flicker but not motion.

    A pixel is mixed with its previous value (weight ``strength``) only when
    it changed by less than ``threshold`` (0..255), so still edges stop
    shimmering while a moving arm leaves no trail.
    """

    def __init__(self, strength: float = 0.5, threshold: int = 24):
        if not 0.0 <= strength < 1.0:
            raise ValueError("smoothing strength must be in [0, 1)")
        self.strength = strength
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def __call__(self, alpha: np.ndarray) -> np.ndarray:
        previous = self._previous
        if previous is None or previous.shape != alpha.shape:
            self._previous = alpha
            return alpha
        mixed = cv2.addWeighted(alpha, 1.0 - self.strength, previous, self.strength, 0.0)
        still = cv2.absdiff(alpha, previous) < self.threshold
        out = alpha.copy()
        np.copyto(out, mixed, where=still)
        self._previous = out
        return out


def alpha_to_u8(alpha: np.ndarray) -> np.ndarray:
    """Float [0, 1] (or uint8) alpha as uint8 0..255, rounded and saturated."""
    if alpha.dtype == np.uint8:
        return alpha
    return cv2.convertScaleAbs(alpha, alpha=255.0)


class Compositor:
    """Composites frames of one size over one background.

    ``size`` is the frames' :class:`~livematte.frame.Size` (width, height), as
    :attr:`livematte.sources.Source.size`; a plain (width, height) tuple is taken too. ``decontaminate``
    removes the old background's colour from edge pixels. Temporal smoothing
    of the matte happens before compositing (:mod:`livematte.matte_adjust`), so
    what ``--matte-out`` saves is what is shown. Output is uint8
    HxWx3 RGB, or HxWx4 RGBA (straight alpha) for ``transparent``.
    """

    def __init__(self, background: Background | str, size: Size | tuple[int, int],
                 decontaminate: bool = True):
        #: what goes behind the person; a ``--bg`` text is parsed once, here
        self.background = parse_background(background) if isinstance(background, str) else background
        self.size = Size(*size)
        #: (height, width): the shape of the frames it accepts
        self.shape = self.size.shape
        self.decontaminate = decontaminate

    @property
    def channels(self) -> int:
        """3 for RGB output, 4 for RGBA (transparent background)."""
        return self.background.channels

    def close(self) -> None:
        self.background.close()

    def compose(self, rgb: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
        """The composited frame for RGB uint8 ``rgb`` and alpha (float [0, 1] or uint8), both HxW.

        Over a background, opaque pixels are the frame and clear ones the
        background, copied in two whole-frame passes; the blend (and the
        decontamination) runs only on the tiles holding soft alpha.

        ``foreground`` (HxWx3, uint8 or float [0, 1]) is a solved foreground
        colour, e.g. from the offline quality mode; when given, the soft
        pixels take their colour from it instead of from the frame minus the
        estimated old background.
        """
        if rgb.shape[:2] != self.shape or alpha.shape[:2] != self.shape:
            raise ValueError(f"frame {Size.of(rgb)} / alpha {Size.of(alpha)} do not match "
                             f"compositor size {self.size}")
        a = alpha_to_u8(alpha)
        spill = None
        background = self.background.render(rgb, a)  # from the frame, never from a solved foreground
        if foreground is not None:
            rgb = _foreground_u8(foreground, self.shape)
        elif self.decontaminate:
            # one whole-frame enlargement costs less than one warp per soft tile (measured)
            spill = cv2.resize(estimate_old_background(rgb, a), self.size, interpolation=cv2.INTER_LINEAR)
        if background is None:
            a3 = cv2.merge([a, a, a])
            # straight (not premultiplied) colour: F = (alpha * F) / alpha, 0 where alpha is 0
            colour = cv2.divide(_weighted_foreground(rgb, a3, spill), a3, scale=255.0) if spill is not None else rgb
            return np.dstack((colour, a))
        # the background is fresh and is written over in place: a tile's blend reads
        # it only where alpha < 255, which the copy of the opaque pixels left alone
        out = background
        cv2.copyTo(rgb, cv2.compare(a, 255, cv2.CMP_EQ), out)
        for y0, y1, x0, x1 in active_runs(cv2.inRange(a, 1, 254), _BLEND_TILE):
            box = (slice(y0, y1), slice(x0, x1))
            out[box] = _blend(rgb[box], a[box], background[box], None if spill is None else spill[box])
        return out


def _foreground_u8(foreground: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A solved foreground as uint8 HxWx3, checked against the frame's size."""
    if foreground.shape != (*shape, 3):
        raise ValueError(f"foreground {foreground.shape} does not match the frame {(*shape, 3)}")
    if foreground.dtype == np.uint8:
        return foreground
    return np.clip(foreground * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _weighted_foreground(rgb: np.ndarray, a3: np.ndarray, spill: np.ndarray | None) -> np.ndarray:
    """alpha * F: the frame's share of each pixel; with the old background's
    estimate ``spill``, the frame minus that background's share, clamped to [0, 255 * alpha]."""
    if spill is None:
        return cv2.multiply(rgb, a3, scale=1.0 / 255.0)
    return cv2.min(cv2.subtract(rgb, cv2.multiply(spill, cv2.bitwise_not(a3), scale=1.0 / 255.0)), a3)


def _blend(rgb: np.ndarray, a: np.ndarray, background: np.ndarray, spill: np.ndarray | None) -> np.ndarray:
    """alpha * F + (1 - alpha) * new background, in uint8 fixed point."""
    a3 = cv2.merge([a, a, a])
    return cv2.add(_weighted_foreground(rgb, a3, spill),
                   cv2.multiply(background, cv2.bitwise_not(a3), scale=1.0 / 255.0))
