"""Full-resolution alpha from a low-resolution alpha and the full-resolution frame.

Real-time engines predict alpha at ~256 px; stretching that to 1080p with
bilinear interpolation blurs hair and leaves a halo. The fast guided filter
(He, Sun & Tang, "Guided Image Filtering"; He & Sun, "Fast Guided Filter")
models alpha locally as a linear function of the frame's colour, fits that
model at the low resolution, and applies it at full resolution, so the
edges come from the frame itself. Everything is box filters, resizes and
whole-array arithmetic: no per-pixel Python.
"""
from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from livematte.resize import shrink


class Upsampler(Protocol):
    def __call__(self, alpha: np.ndarray, guide: np.ndarray, small_guide: np.ndarray | None = None) -> np.ndarray:
        """``alpha`` float32 or uint8 hxw at low res, ``guide`` uint8 HxWx3 RGB -> float32 HxW in [0, 1].

        ``small_guide`` optionally gives the guide already resized to hxw,
        which the engine has from preprocessing; upsamplers may ignore it.
        """


def _as_float(alpha: np.ndarray) -> np.ndarray:
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) * np.float32(1.0 / 255.0)
    return alpha.astype(np.float32, copy=False)


def bilinear_upsample(alpha: np.ndarray, guide: np.ndarray, small_guide: np.ndarray | None = None) -> np.ndarray:
    """Plain bilinear resize to the guide's size: the baseline the guided filter must beat."""
    height, width = guide.shape[:2]
    # bilinear interpolation stays within its inputs' range: clip the small image
    small = np.clip(_as_float(alpha), 0.0, 1.0)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


class GuidedUpsampler:
    """Fast colour-guided filter upsampler.

    The local model ``alpha = A . rgb + b`` (A a 3-vector per pixel) is the
    one closed-form matting rests on; fitting it in colour rather than grey
    is what separates hair from a background of similar brightness (a grey
    guide lost to plain bilinear in ``benchmarks/upsampler.py``). ``A`` and
    ``b`` are fitted at the low-resolution alpha's own size, then bilinearly
    enlarged and applied to the full-resolution frame. ``radius`` is the box
    radius in low-resolution pixels; ``eps`` regularises on [0, 1]
    intensities (larger trusts the low-res alpha more, smaller follows the
    frame's colours more). Defaults come from that benchmark.
    """

    def __init__(self, radius: int = 1, eps: float = 1e-5):
        if radius < 1 or eps <= 0:
            raise ValueError("radius >= 1 and eps > 0 are required")
        self.radius = radius
        self.eps = eps

    def coefficients(self, alpha: np.ndarray, small_guide: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``A`` (hxwx3, scaled for a 0..255 guide) and ``b`` (hxw) at the alpha's resolution.

        ``small_guide`` is the RGB frame already shrunk to the alpha's size.
        Where alpha is constant over a window the fit is exactly ``A = 0``,
        ``b = alpha``, so the 3x3 solve runs only on the edge band's pixels.
        It runs in float64: with a small ``eps`` the colour covariance is
        nearly singular and float32 errs by up to 0.3 in alpha (measured).
        """
        p = _as_float(alpha).astype(np.float64)
        h, w = p.shape
        r = self.radius
        mean_p = _box(p, r)
        window = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
        band = np.flatnonzero(cv2.dilate(p, window) > cv2.erode(p, window))
        a_band = np.zeros((3, band.size))
        b_band = mean_p.ravel()[band]
        if band.size:
            def local_mean(x: np.ndarray) -> np.ndarray:
                return _box(x, r).ravel()[band]

            rgb = [plane.astype(np.float64) * (1.0 / 255.0) for plane in cv2.split(small_guide)]
            mean_i = [local_mean(c) for c in rgb]
            cov = [local_mean(c * p) - m * b_band for c, m in zip(rgb, mean_i)]

            def var(i: int, j: int) -> np.ndarray:
                return local_mean(rgb[i] * rgb[j]) - mean_i[i] * mean_i[j] + (self.eps if i == j else 0.0)

            s00, s01, s02, s11, s12, s22 = var(0, 0), var(0, 1), var(0, 2), var(1, 1), var(1, 2), var(2, 2)
            # inverse of the symmetric 3x3 covariance by cofactors, all band pixels at once
            c00 = s11 * s22 - s12 * s12
            c01 = s02 * s12 - s01 * s22
            c02 = s01 * s12 - s02 * s11
            c11 = s00 * s22 - s02 * s02
            c12 = s01 * s02 - s00 * s12
            c22 = s00 * s11 - s01 * s01
            inv_det = 1.0 / (s00 * c00 + s01 * c01 + s02 * c02)
            a_band[0] = (c00 * cov[0] + c01 * cov[1] + c02 * cov[2]) * inv_det
            a_band[1] = (c01 * cov[0] + c11 * cov[1] + c12 * cov[2]) * inv_det
            a_band[2] = (c02 * cov[0] + c12 * cov[1] + c22 * cov[2]) * inv_det
            b_band = b_band - a_band[0] * mean_i[0] - a_band[1] * mean_i[1] - a_band[2] * mean_i[2]
        coeffs = np.zeros((h * w, 4))
        coeffs[:, 3] = mean_p.ravel()
        coeffs[band, :3] = a_band.T
        coeffs[band, 3] = b_band
        coeffs = _box(coeffs.reshape(h, w, 4), r).astype(np.float32)
        return coeffs[..., :3] * np.float32(1.0 / 255.0), np.ascontiguousarray(coeffs[..., 3])

    def __call__(self, alpha: np.ndarray, guide: np.ndarray, small_guide: np.ndarray | None = None) -> np.ndarray:
        """Full-resolution alpha; pass ``small_guide`` (the frame at the alpha's size) if already made."""
        height, width = guide.shape[:2]
        h, w = alpha.shape[:2]
        if small_guide is None:
            small_guide = shrink(guide, w, h)
        a, b = self.coefficients(alpha, small_guide)
        a_full = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
        out = cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
        weighted = cv2.multiply(a_full, guide.astype(np.float32), dst=a_full)
        out += cv2.transform(weighted, np.ones((1, 3), np.float32))
        return np.clip(out, 0.0, 1.0, out=out)


UPSAMPLERS = ("guided", "bilinear")


def make_upsampler(name: str) -> Upsampler:
    """The upsampler called ``name`` (``guided`` or ``bilinear``) with tuned defaults."""
    if name == "guided":
        return GuidedUpsampler()
    if name == "bilinear":
        return bilinear_upsample
    raise ValueError(f"unknown upsampler {name!r}; choose one of: {', '.join(UPSAMPLERS)}")
