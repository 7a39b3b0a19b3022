"""Closed-form matting in the unknown band (the DAPM matting layer), via pymatting.

Deep Automatic Portrait Matting refines a CNN trimap with the matting
Laplacian of Levin et al.; pymatting provides the sparse solver and the
multilevel foreground estimator, so neither is written here. What this
module adds is cost control for video frames: the solve runs only on the
bounding box of the band and, when that box is large, at a reduced working
resolution, so a 1080p frame costs about as much as a 0.5-megapixel one.
"""
from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np

from livematte.errors import DeviceError
from livematte.quality.band import BACKGROUND, FOREGROUND, UNKNOWN, band_box

try:
    from pymatting import estimate_alpha_cf, estimate_foreground_ml
except ImportError as exc:  # an optional extra: say what to install, in one line (exit code 4)
    raise DeviceError(f"the quality mode needs the package {exc.name or 'pymatting'!r}, which is not installed: "
                      "pip install 'livematte[quality]'") from None

DEFAULT_MAX_PIXELS = 500_000
"""Working-resolution cap of one solve (pixels of the band's bounding box)."""


def _downscale_trimap(trimap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Shrink a trimap keeping a pixel known only if everything under it was.

    Nearest-neighbour sampling could drop a thin band entirely or mark a
    mixed pixel as sure foreground; area-averaging each class does neither.
    """
    w, h = size
    fg = cv2.resize((trimap == FOREGROUND).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    bg = cv2.resize((trimap == BACKGROUND).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    small = np.full((h, w), UNKNOWN, dtype=np.uint8)
    small[fg > 0.999] = FOREGROUND
    small[bg > 0.999] = BACKGROUND
    return small


def solve_alpha(rgb: np.ndarray, trimap: np.ndarray, prior: np.ndarray | None = None,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Alpha (HxW float32 in [0, 1]) from an image and a 0/128/255 trimap.

    Known pixels keep their trimap value; unknown ones come from the
    closed-form solution. If the band's box holds no sure foreground or no
    sure background the problem has no anchor, and ``prior`` (a coarse
    alpha) is returned in the band instead (0.5 without a prior).
    """
    unknown = trimap == UNKNOWN
    alpha = (trimap == FOREGROUND).astype(np.float32)
    if not unknown.any():
        return alpha
    box = band_box(unknown, margin=max(4, min(trimap.shape) // 100))
    crop_rgb, crop_tri = rgb[box], trimap[box]
    if not ((crop_tri == FOREGROUND).any() and (crop_tri == BACKGROUND).any()):
        alpha[unknown] = 0.5 if prior is None else prior[unknown]
        return alpha
    h, w = crop_tri.shape
    scale = min(1.0, float(np.sqrt(max_pixels / (h * w))))
    if scale < 1.0:
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        work_rgb = cv2.resize(crop_rgb, size, interpolation=cv2.INTER_AREA)
        work_tri = _downscale_trimap(crop_tri, size)
    else:
        work_rgb, work_tri = crop_rgb, crop_tri
    # pymatting prints preconditioner retries to stdout, which would garble
    # the CLI's output (the retry itself is harmless: it shifts and goes on)
    with contextlib.redirect_stdout(io.StringIO()):
        solved = estimate_alpha_cf(work_rgb.astype(np.float64) / 255.0,
                                   work_tri.astype(np.float64) / 255.0)
    solved = np.clip(solved, 0.0, 1.0).astype(np.float32)
    if scale < 1.0:
        solved = cv2.resize(solved, (w, h), interpolation=cv2.INTER_LINEAR)
    crop_alpha = alpha[box]
    crop_unknown = unknown[box]
    crop_alpha[crop_unknown] = solved[crop_unknown]
    return alpha


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours (HxWx3 float32 in [0, 1]) with the background unmixed.

    Only pixels with 0 < alpha < 1 need unmixing, so the multilevel solver
    runs on their bounding box; everywhere else the foreground is the image.
    """
    foreground = rgb.astype(np.float32) / 255.0
    mixed = (alpha > 1e-3) & (alpha < 1.0 - 1e-3)
    box = band_box(mixed, margin=8)
    if box is None:
        return foreground
    foreground[box] = estimate_foreground_ml(foreground[box].astype(np.float64),
                                             alpha[box].astype(np.float64)).astype(np.float32)
    return foreground
