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

import math
from typing import Protocol

import cv2
import numpy as np

from livematte.resize import shrink
from livematte.tiles import active_runs


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


def _box(image: np.ndarray, radius: int, normalize: bool = True) -> np.ndarray:
    """Window mean (or, ``normalize=False``, sum) over a (2 * radius + 1)-pixel square."""
    size = (2 * radius + 1, 2 * radius + 1)
    return cv2.boxFilter(image, -1, size, normalize=normalize, borderType=cv2.BORDER_REFLECT)


#: index pairs of the colour covariance's six distinct entries
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
#: alpha range (0..1) under which a window counts as flat: half an 8-bit grey level
_FLAT = 0.5 / 255.0
#: side, in low-resolution pixels, of the tiles the full-resolution model is applied by
_TILE = 8
#: largest change (0..1) the colour term may make to alpha and still be skipped
_NEGLIGIBLE = 1e-4


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

    def coefficients(self, alpha: np.ndarray, small_guide: np.ndarray) -> np.ndarray:
        """The fitted model at the alpha's resolution: hxwx4 float32 holding ``A``
        (3 channels, for a 0..255 guide) and ``b / 255``, so that alpha is the dot
        product of those four with the guide's RGBA (alpha channel 255).

        ``small_guide`` is the RGB frame already shrunk to the alpha's size.
        Where alpha is constant over a window the fit is exactly ``A = 0``,
        ``b = alpha``; windows whose alpha spans under half an 8-bit grey
        level are treated the same, because a network's output is never
        exactly flat and fitting its noise would turn the whole frame into
        "edge". So the 3x3 solve runs only on the edge band's pixels, and the
        full-resolution colour model only near them.

        Window sums are float32 box filters, exact for the guide's moments
        (integer sums below 2**24); the nearly singular colour covariance is
        then formed and inverted in float64 on the band only (in float32 it
        errs by up to 0.3 in alpha).
        """
        p = np.clip(_as_float(alpha), 0.0, 1.0)
        h, w = p.shape
        r = self.radius
        count = float((2 * r + 1) ** 2)
        window = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
        band = np.flatnonzero(cv2.dilate(p, window) - cv2.erode(p, window) > _FLAT)
        # planes: p, R, G, B, R*p, G*p, B*p, then RR, RG, RB, GG, GB, BB (0..255 guide)
        planes = np.empty((7 + len(_PAIRS), h, w), np.float32)
        planes[0] = p
        planes[1:4] = small_guide.transpose(2, 0, 1)
        np.multiply(planes[1:4], p, out=planes[4:7])
        for k, (i, j) in enumerate(_PAIRS):
            np.multiply(planes[1 + i], planes[1 + j], out=planes[7 + k])
        sums = [_box(plane, r, normalize=False) for plane in planes]
        coeffs = np.zeros((4, h, w), np.float32)
        coeffs[3] = sums[0] * np.float32(1.0 / (255.0 * count))
        if band.size:
            s = np.stack([plane.ravel()[band] for plane in sums]).astype(np.float64)
            mean_i = s[1:4] / count
            cov = (s[4:7] - mean_i * s[0]) / count
            eps = self.eps * 255.0 ** 2
            s00, s01, s02, s11, s12, s22 = (
                (count * s[7 + k] - s[1 + i] * s[1 + j]) / count ** 2 + (eps if i == j else 0.0)
                for k, (i, j) in enumerate(_PAIRS))
            # inverse of the symmetric 3x3 covariance by cofactors, all band pixels at once
            c00 = s11 * s22 - s12 * s12
            c01 = s02 * s12 - s01 * s22
            c02 = s01 * s12 - s02 * s11
            c11 = s00 * s22 - s02 * s02
            c12 = s01 * s02 - s00 * s12
            c22 = s00 * s11 - s01 * s01
            inv_det = 1.0 / (s00 * c00 + s01 * c01 + s02 * c02)
            a_band = np.stack([c00 * cov[0] + c01 * cov[1] + c02 * cov[2],
                               c01 * cov[0] + c11 * cov[1] + c12 * cov[2],
                               c02 * cov[0] + c12 * cov[1] + c22 * cov[2]]) * inv_det
            flat = coeffs.reshape(4, h * w)
            flat[:3, band] = a_band
            flat[3, band] = (s[0] / count - (a_band * mean_i).sum(axis=0)) / 255.0
        return cv2.merge([_box(plane, r) for plane in coeffs])

    def __call__(self, alpha: np.ndarray, guide: np.ndarray, small_guide: np.ndarray | None = None) -> np.ndarray:
        """Full-resolution alpha; pass ``small_guide`` (the frame at the alpha's size) if already made."""
        h, w = alpha.shape[:2]
        if small_guide is None:
            small_guide = shrink(guide, w, h)
        return apply_coefficients(self.coefficients(alpha, small_guide), guide)


def _period(low: int, full: int) -> int:
    """Low-res pixels after which the low-res and full-res pixel grids line up again."""
    return low // math.gcd(low, full)


def apply_coefficients(coeffs: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """Alpha = ``coeffs`` . RGBA guide at the guide's resolution, ``coeffs`` enlarged bilinearly.

    Away from edges ``A`` is 0 and alpha is just the enlarged ``b``, which
    is what the whole frame gets first; the colour model is then evaluated
    only on tiles whose bilinear footprint touches a nonzero ``A``
    (typically a tenth to a quarter of a portrait frame). Tiles start where
    the two pixel grids line up, so resizing a tile (with a margin) samples
    exactly where resizing the whole frame would.
    """
    height, width = guide.shape[:2]
    h, w = coeffs.shape[:2]
    # off the edges b is alpha's local mean: clipping only removes box-filter rounding
    b = np.clip(coeffs[..., 3] * np.float32(255.0), 0.0, 1.0)
    out = cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
    # the colour term counts where it can move alpha by more than _NEGLIGIBLE; a
    # full-res pixel reads the two nearest low-res pixels per axis: grow that by one
    matters = (np.abs(coeffs[..., :3]).sum(axis=2) * 255.0 > _NEGLIGIBLE).astype(np.uint8)
    active = cv2.dilate(matters, np.ones((3, 3), np.uint8))
    py, px = _period(h, height), _period(w, width)
    tile = -(-_TILE // math.lcm(py, px)) * math.lcm(py, px)  # tiles start on grid-aligned pixels
    ones = np.ones((1, 4), np.float32)
    for y0, y1, x0, x1 in active_runs(active, tile):
        # low-res crop with a one-period margin, so interpolation at the tile's edges
        # reads the same neighbours as in the whole frame (the frame's border replicates)
        cy0, cy1, cx0, cx1 = max(0, y0 - py), min(h, y1 + py), max(0, x0 - px), min(w, x1 + px)
        top, bottom = cy0 * height // h, cy1 * height // h
        left, right = cx0 * width // w, cx1 * width // w
        enlarged = cv2.resize(coeffs[cy0:cy1, cx0:cx1], (right - left, bottom - top), interpolation=cv2.INTER_LINEAR)
        ty0, ty1, tx0, tx1 = y0 * height // h, y1 * height // h, x0 * width // w, x1 * width // w
        enlarged = enlarged[ty0 - top:ty1 - top, tx0 - left:tx1 - left]
        rgba = cv2.cvtColor(guide[ty0:ty1, tx0:tx1], cv2.COLOR_RGB2RGBA)
        tile_alpha = cv2.transform(cv2.multiply(enlarged, rgba, dtype=cv2.CV_32F), ones)
        out[ty0:ty1, tx0:tx1] = np.clip(tile_alpha, 0.0, 1.0, out=tile_alpha)
    return out


UPSAMPLERS = ("guided", "bilinear")


def make_upsampler(name: str) -> Upsampler:
    """The upsampler called ``name`` (``guided`` or ``bilinear``) with tuned defaults."""
    if name == "guided":
        return GuidedUpsampler()
    if name == "bilinear":
        return bilinear_upsample
    raise ValueError(f"unknown upsampler {name!r}; choose one of: {', '.join(UPSAMPLERS)}")
