"""Unknown band (trimap) construction for the offline quality mode.

Closed-form matting and the refinement stage only need to work where the
matte is genuinely uncertain: a band around the person's outline. The band
comes either from a network's trimap probabilities or from a coarse alpha;
in both cases the sure foreground and sure background are *eroded* so the
band has a width that scales with the image (hair at 1080p spans more pixels
than at 360p), and everything that is neither sure class is unknown.

Trimaps follow the usual convention: uint8, 0 background, 128 unknown,
255 foreground (``livematte.metrics.unknown_region`` reads the same values).
"""
from __future__ import annotations

import cv2
import numpy as np

BACKGROUND, UNKNOWN, FOREGROUND = 0, 128, 255

DEFAULT_BAND_FRACTION = 0.01
"""Band half-width as a fraction of the image's short side: 11 px at 1080p,
6 px at 600x800, wide enough for the blur of an upsampled low-res matte."""


def band_radius(shape: tuple[int, ...], fraction: float = DEFAULT_BAND_FRACTION,
                minimum: int = 2) -> int:
    """Erosion radius (pixels) for an image of ``shape`` (H, W, ...)."""
    return max(minimum, int(round(fraction * min(shape[0], shape[1]))))


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    # Pixels outside the frame count as "still this class", so a person
    # touching the frame border does not get a spurious band along it.
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)


def trimap_from_masks(sure_fg: np.ndarray, sure_bg: np.ndarray, radius: int) -> np.ndarray:
    """Trimap whose known classes are ``sure_fg``/``sure_bg`` eroded by ``radius``.

    Where both masks are set (they should not be) the pixel becomes unknown.
    """
    fg = _erode(sure_fg, radius)
    bg = _erode(sure_bg, radius)
    trimap = np.full(fg.shape, UNKNOWN, dtype=np.uint8)
    trimap[fg & ~bg] = FOREGROUND
    trimap[bg & ~fg] = BACKGROUND
    return trimap


def trimap_from_alpha(alpha: np.ndarray, radius: int | None = None,
                      low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """Trimap from a coarse alpha (float in [0, 1]) or a binary/0-255 mask.

    ``alpha >= high`` is sure foreground and ``alpha <= low`` sure
    background before erosion; soft values in between stay unknown whatever
    the radius. ``radius=None`` picks :func:`band_radius` for the image size.
    """
    a = np.asarray(alpha)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    if radius is None:
        radius = band_radius(a.shape)
    return trimap_from_masks(a >= high, a <= low, radius)


def trimap_from_probabilities(probs: np.ndarray, shape: tuple[int, int],
                              radius: int | None = None) -> np.ndarray:
    """Trimap of ``shape`` (H, W, as ``frame.shape[:2]``) from HxWx3 class probabilities (bg, unknown, fg).

    The probabilities come at the network's resolution; they are resized
    bilinearly before the per-pixel argmax so the band follows the smooth
    class boundary instead of the graph's pixel grid.
    """
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 3 or p.shape[2] != 3:
        raise ValueError(f"trimap probabilities must be HxWx3, got shape {p.shape}")
    h, w = shape
    if p.shape[:2] != (h, w):
        p = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
    label = np.argmax(p, axis=2)
    if radius is None:
        radius = band_radius((h, w))
    return trimap_from_masks(label == 2, label == 0, radius)


def band_box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """Bounding box of ``mask`` grown by ``margin`` and clipped to the image."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + margin + 1)))
