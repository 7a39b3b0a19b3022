"""Full-resolution alpha from a low-resolution alpha and the full-resolution frame.

Real-time engines predict alpha at ~256 px; stretching that to 1080p with
bilinear interpolation blurs hair and leaves a halo. The fast guided filter
(He, Sun & Tang, "Guided Image Filtering"; He & Sun, "Fast Guided Filter")
models alpha locally as ``a * I + b`` of the frame's luminance ``I``, fits
``a`` and ``b`` at a reduced working resolution, and applies them at full
resolution, so the edges come from the frame itself. Everything is box
filters and resizes in OpenCV: no per-pixel Python.
"""
from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np


class Upsampler(Protocol):
    def __call__(self, alpha: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """``alpha`` float32 or uint8 hxw at low res, ``guide`` uint8 HxWx3 RGB -> float32 HxW in [0, 1]."""


def _as_float(alpha: np.ndarray) -> np.ndarray:
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) * np.float32(1.0 / 255.0)
    return alpha.astype(np.float32, copy=False)


def bilinear_upsample(alpha: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """Plain bilinear resize to the guide's size: the baseline the guided filter must beat."""
    height, width = guide.shape[:2]
    return np.clip(cv2.resize(_as_float(alpha), (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


class GuidedUpsampler:
    """Fast grey-guided filter upsampler.

    ``work_side`` is the long side of the resolution where ``a`` and ``b``
    are fitted (the alpha is bilinearly enlarged, the guide shrunk to it);
    ``radius`` is the box radius at that resolution and ``eps`` the
    regulariser on [0, 1] intensities: larger ``eps`` trusts the low-res
    alpha more, smaller follows the frame's edges more closely.
    """

    def __init__(self, radius: int = 2, eps: float = 1e-3, work_side: int = 640):
        if radius < 1 or eps <= 0 or work_side < 16:
            raise ValueError("radius >= 1, eps > 0 and work_side >= 16 are required")
        self.radius = radius
        self.eps = eps
        self.work_side = work_side

    def __call__(self, alpha: np.ndarray, guide: np.ndarray) -> np.ndarray:
        height, width = guide.shape[:2]
        scale = min(1.0, self.work_side / max(height, width))
        wh, ww = max(1, round(height * scale)), max(1, round(width * scale))

        grey_full = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY)
        grey = cv2.resize(grey_full, (ww, wh), interpolation=cv2.INTER_AREA).astype(np.float32)
        grey *= np.float32(1.0 / 255.0)
        p = cv2.resize(_as_float(alpha), (ww, wh), interpolation=cv2.INTER_LINEAR)

        box = (2 * self.radius + 1, 2 * self.radius + 1)
        mean_i = cv2.boxFilter(grey, -1, box, borderType=cv2.BORDER_REFLECT)
        mean_p = cv2.boxFilter(p, -1, box, borderType=cv2.BORDER_REFLECT)
        corr_ii = cv2.boxFilter(grey * grey, -1, box, borderType=cv2.BORDER_REFLECT)
        corr_ip = cv2.boxFilter(grey * p, -1, box, borderType=cv2.BORDER_REFLECT)
        var_i = corr_ii - mean_i * mean_i
        cov_ip = corr_ip - mean_i * mean_p
        a = cov_ip / (var_i + np.float32(self.eps))
        b = mean_p - a * mean_i
        mean_a = cv2.boxFilter(a, -1, box, borderType=cv2.BORDER_REFLECT)
        mean_b = cv2.boxFilter(b, -1, box, borderType=cv2.BORDER_REFLECT)

        # fold the 1/255 of the full-resolution guide into a, so the guide can
        # be used as uint8 -> float32 without another full-frame multiply
        mean_a *= np.float32(1.0 / 255.0)
        a_full = cv2.resize(mean_a, (width, height), interpolation=cv2.INTER_LINEAR)
        b_full = cv2.resize(mean_b, (width, height), interpolation=cv2.INTER_LINEAR)
        out = cv2.multiply(a_full, grey_full, dtype=cv2.CV_32F)
        cv2.add(out, b_full, dst=out)
        return np.clip(out, 0.0, 1.0, out=out)


UPSAMPLERS = ("guided", "bilinear")


def make_upsampler(name: str) -> Upsampler:
    """The upsampler called ``name`` (``guided`` or ``bilinear``) with tuned defaults."""
    if name == "guided":
        return GuidedUpsampler()
    if name == "bilinear":
        return bilinear_upsample
    raise ValueError(f"unknown upsampler {name!r}; choose one of: {', '.join(UPSAMPLERS)}")
