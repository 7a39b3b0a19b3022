"""Alpha-matte quality metrics shared by training, evaluation and benchmarks.

One module so that every table in the project (training validation, the
``training.evaluate`` comparison against peers, runtime benchmarks) measures
the same thing the same way. Only numpy and OpenCV are used: the runtime has
no torch, and the benchmarks import this module.

Conventions
-----------
* Alphas may be float arrays in [0, 1] or uint8 (0-255) / uint16 arrays; they
  are normalised once by :func:`to_alpha`. Floats outside [0, 1] are rejected,
  because a float matte in 0-255 is the commonest silent bug in matting tables.
* Image metrics follow the evaluation convention of Rhemann et al. 2009
  (alphamatting.com) as implemented for Deep Image Matting: SAD, Gradient and
  Connectivity are *sums* over the evaluated pixels reported divided by 1000,
  MSE is a *mean* over the evaluated pixels. Semantic Human Matting (Chen et
  al. 2018) reports the same four numbers the same way; since SHM needs no
  trimap at inference, its whole-image evaluation is ``mask=None``.
* ``mask`` restricts the evaluated pixels and must be a boolean array. For
  trimap-based evaluation the unknown region is the trimap value 128:
  pass ``unknown_region(trimap)``. A trimap itself is refused as a mask, since
  its 255 foreground would silently count as "evaluate here" too.
* Video metrics follow Erofeev et al. 2015, "Perceptually motivated benchmark
  for video matting": dtSSD and MESSDdt are returned unscaled (no x100/x10).
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

__all__ = [
    "to_alpha",
    "unknown_region",
    "sad",
    "mse",
    "gradient_error",
    "connectivity_error",
    "iou",
    "dtssd",
    "messddt",
    "evaluate_pair",
]

TRIMAP_UNKNOWN = 128
"""Trimap value of the unknown band (0 background, 255 foreground)."""

GRADIENT_SIGMA = 1.4
"""Gaussian scale of the gradient filters (Rhemann et al. 2009, DIM code)."""

CONNECTIVITY_STEP = 0.1
CONNECTIVITY_THETA = 0.15
"""Threshold step and minimum counted alpha excess of the connectivity error."""

IOU_THRESHOLD = 0.5
"""Alpha at or above which a pixel counts as person for IoU."""

_GAUSS_TRUNCATION = 1e-2
"""Kernel half-size rule of the DIM gradient code: truncate where the
Gaussian falls below this fraction of a unit-peak density."""


def to_alpha(array: np.ndarray) -> np.ndarray:
    """Return ``array`` as a 2-D float64 alpha in [0, 1].

    Accepts uint8 (0-255), uint16 (0-65535), bool and float in [0, 1]; a
    trailing singleton channel (H, W, 1) is dropped so mattes read with
    OpenCV or produced by a network head both fit.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise ValueError(f"alpha must be 2-D (H, W), got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"alpha must be uint8, uint16, bool or float, got {a.dtype}")
    a = a.astype(np.float64)
    # NaN fails both comparisons, so this also rejects non-finite values.
    if a.size and not (a.min() >= 0.0 and a.max() <= 1.0):
        raise ValueError(
            "float alpha must be finite and in [0, 1] (pass uint8 for 0-255 mattes)"
        )
    return a


def unknown_region(trimap: np.ndarray) -> np.ndarray:
    """Boolean mask of a uint8 trimap's unknown band (value 128)."""
    t = np.asarray(trimap)
    if t.ndim == 3 and t.shape[2] == 1:
        t = t[:, :, 0]
    return t == TRIMAP_UNKNOWN


def _pair(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Normalise a prediction/ground-truth pair and its mask, checking shapes."""
    p, g = to_alpha(pred), to_alpha(gt)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: pred {p.shape} vs gt {g.shape}")
    if mask is None:
        return p, g, None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise ValueError(
            "mask must be boolean (for a trimap pass unknown_region(trimap))"
        )
    if m.shape != p.shape:
        raise ValueError(f"shape mismatch: mask {m.shape} vs alpha {p.shape}")
    return p, g, m


def _masked_sum(values: np.ndarray, mask: np.ndarray | None) -> float:
    return float(values.sum() if mask is None else values[mask].sum())


def sad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Sum of absolute alpha differences over the evaluated pixels, / 1000."""
    return _sad(*_pair(pred, gt, mask))


def _sad(p: np.ndarray, g: np.ndarray, m: np.ndarray | None) -> float:
    return _masked_sum(np.abs(p - g), m) / 1000.0


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared alpha error over the evaluated pixels (0.0 if there are none)."""
    return _mse(*_pair(pred, gt, mask))


def _mse(p: np.ndarray, g: np.ndarray, m: np.ndarray | None) -> float:
    count = p.size if m is None else int(m.sum())
    if count == 0:
        return 0.0
    return _masked_sum((p - g) ** 2, m) / count


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Separable factors of the unit-norm first-order Gaussian derivative filter.

    The 2-D x-derivative filter is ``g(y) * g'(x)`` normalised to unit
    Frobenius norm (the DIM convention); the norm of an outer product is the
    product of the norms, so each factor is normalised on its own.
    """
    half = math.ceil(
        sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * _GAUSS_TRUNCATION))
    )
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dgauss = -u * gauss / sigma**2
    return gauss / np.linalg.norm(gauss), dgauss / np.linalg.norm(dgauss)


def _gradient_magnitude(alpha: np.ndarray, sigma: float) -> np.ndarray:
    smooth, deriv = _gaussian_derivative_kernels(sigma)
    # Correlation instead of convolution only flips the sign of the
    # antisymmetric derivative, which the magnitude discards.
    gx = cv2.sepFilter2D(alpha, cv2.CV_64F, deriv, smooth, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(alpha, cv2.CV_64F, smooth, deriv, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx * gx + gy * gy)


def gradient_error(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, sigma: float = GRADIENT_SIGMA
) -> float:
    """Sum of squared differences of Gaussian-derivative gradient magnitudes, / 1000.

    Measures blur and ringing of the matte edge that SAD barely sees. The DIM
    reference code first stretches each matte to [0, 1] by its own min/max;
    that is skipped here, because it makes the error of a matte depend on its
    darkest and brightest pixel anywhere in the image.
    """
    return _gradient_error(*_pair(pred, gt, mask), sigma)


def _gradient_error(p: np.ndarray, g: np.ndarray, m: np.ndarray | None, sigma: float) -> float:
    diff = _gradient_magnitude(p, sigma) - _gradient_magnitude(g, sigma)
    return _masked_sum(diff * diff, m) / 1000.0


def _largest_component(binary: np.ndarray) -> np.ndarray:
    """Mask of the largest 4-connected component (empty if ``binary`` is empty).

    Ties go to the component found first in row-major order.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S
    )
    if count <= 1:
        return np.zeros(binary.shape, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def connectivity_error(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    step: float = CONNECTIVITY_STEP,
    theta: float = CONNECTIVITY_THETA,
) -> float:
    """Connectivity error of Rhemann et al. 2009, / 1000.

    Penalises foreground islands disconnected from the main matte, which
    viewers notice far more than their area suggests. For each threshold
    ``t`` in ``step, 2*step, ..., 1`` the source region is the largest
    4-connected component of ``(pred >= t) & (gt >= t)``; a pixel's level
    ``l`` is the last threshold at which it was still in that region (1 if
    never dropped). Each matte maps to ``phi = 1 - d * (d >= theta)`` with
    ``d = alpha - l``, and the error sums ``|phi_pred - phi_gt|``.
    """
    return _connectivity_error(*_pair(pred, gt, mask), step, theta)


def _connectivity_error(
    p: np.ndarray, g: np.ndarray, m: np.ndarray | None, step: float, theta: float
) -> float:
    levels = int(round(1.0 / step))
    if levels < 1 or abs(levels * step - 1.0) > 1e-9:
        raise ValueError(f"step must divide 1 evenly, got {step}")
    # i / levels is the double nearest to e.g. 0.9, unlike repeated adding.
    thresholds = np.arange(levels + 1, dtype=np.float64) / levels
    # Index into thresholds of each pixel's level; "never dropped" is the
    # last index, whose threshold is 1.
    level_index = np.full(p.shape, levels, dtype=np.intp)
    for i in range(1, levels + 1):
        source = _largest_component((p >= thresholds[i]) & (g >= thresholds[i]))
        level_index[(level_index == levels) & ~source] = i - 1
    level = thresholds[level_index]
    d_pred, d_gt = p - level, g - level
    phi_pred = 1.0 - d_pred * (d_pred >= theta)
    phi_gt = 1.0 - d_gt * (d_gt >= theta)
    return _masked_sum(np.abs(phi_pred - phi_gt), m) / 1000.0


def iou(pred: np.ndarray, gt: np.ndarray, threshold: float = IOU_THRESHOLD) -> float:
    """Intersection over union of the person regions ``alpha >= threshold``.

    A segmentation measure of the whole frame, so it takes no mask: inside a
    trimap's unknown band it would mostly measure the band's shape. Two empty
    regions agree perfectly (1.0).
    """
    p, g, _ = _pair(pred, gt, None)
    return _iou(p, g, threshold)


def _iou(p: np.ndarray, g: np.ndarray, threshold: float) -> float:
    fp, fg = p >= threshold, g >= threshold
    union = int(np.count_nonzero(fp | fg))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(fp & fg)) / union


def _sequence(frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Stack a clip of alphas into a (T, H, W) float64 array in [0, 1]."""
    clip = np.stack([to_alpha(f) for f in frames]) if len(frames) else np.empty((0, 0, 0))
    if clip.shape[0] < 2:
        raise ValueError(f"a video metric needs at least 2 frames, got {clip.shape[0]}")
    return clip


def _clip_pair(
    pred_seq: Sequence[np.ndarray] | np.ndarray, gt_seq: Sequence[np.ndarray] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    p, g = _sequence(pred_seq), _sequence(gt_seq)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: pred clip {p.shape} vs gt clip {g.shape}")
    return p, g


def dtssd(
    pred_seq: Sequence[np.ndarray] | np.ndarray, gt_seq: Sequence[np.ndarray] | np.ndarray
) -> float:
    """Temporal-gradient error dtSSD (Erofeev et al. 2015), unscaled.

    Flicker is an error of the *change* between frames, so it compares the
    temporal derivatives: the mean over frame pairs of
    ``sqrt(mean_pixels(((p_t - p_{t-1}) - (g_t - g_{t-1}))**2))``.
    A prediction whose error is constant in time scores 0.
    """
    p, g = _clip_pair(pred_seq, gt_seq)
    dt = np.diff(p, axis=0) - np.diff(g, axis=0)
    return float(np.sqrt((dt * dt).mean(axis=(1, 2))).mean())


def _warp_to_current(alpha: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample the previous frame at ``(x, y) + flow(x, y)`` of the current frame."""
    h, w = alpha.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        alpha,
        grid_x + flow[:, :, 0].astype(np.float32),
        grid_y + flow[:, :, 1].astype(np.float32),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def messddt(
    pred_seq: Sequence[np.ndarray] | np.ndarray,
    gt_seq: Sequence[np.ndarray] | np.ndarray,
    flows: Sequence[np.ndarray] | None = None,
) -> float:
    """Motion-aware temporal error MESSDdt (Erofeev et al. 2015), unscaled.

    The mean over frame pairs of ``mean_pixels(|E_t(x) - E_{t-1}(x + v_t(x))|)``
    with ``E = (pred - gt)**2``: an error that moves with the object is not
    flicker, one that appears or vanishes is.

    ``flows`` holds one (H, W, 2) array per frame pair (T - 1 in all), the
    ground truth's backward motion: ``flows[t-1][y, x] = (dx, dy)`` such that
    pixel (x, y) of frame t is at (x + dx, y + dy) in frame t - 1 (what
    ``cv2.calcOpticalFlowFarneback(frame_t, frame_t_minus_1, ...)`` returns).
    The paper uses motion vectors of the ground-truth video; without them
    (``flows=None``) zero motion is assumed, which also counts an error that
    merely moves with the person, so such numbers are an upper bound and
    only comparable with other zero-motion numbers.
    """
    p, g = _clip_pair(pred_seq, gt_seq)
    error = (p - g) ** 2
    if flows is None:
        previous = error[:-1]
    else:
        if len(flows) != len(error) - 1:
            raise ValueError(f"need {len(error) - 1} flows for {len(error)} frames, got {len(flows)}")
        shape = error.shape[1:] + (2,)
        for flow in flows:
            if np.shape(flow) != shape:
                raise ValueError(f"flow must have shape {shape}, got {np.shape(flow)}")
        previous = np.stack([_warp_to_current(e, f) for e, f in zip(error[:-1], flows)])
    return float(np.abs(error[1:] - previous).mean(axis=(1, 2)).mean())


def evaluate_pair(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """All image metrics of one matte, keyed as in the project's tables.

    ``mask`` applies to SAD, MSE, Grad and Conn; IoU is always whole-frame.
    """
    p, g, m = _pair(pred, gt, mask)
    return {
        "SAD": _sad(p, g, m),
        "MSE": _mse(p, g, m),
        "Grad": _gradient_error(p, g, m, GRADIENT_SIGMA),
        "Conn": _connectivity_error(p, g, m, CONNECTIVITY_STEP, CONNECTIVITY_THETA),
        "IoU": _iou(p, g, IOU_THRESHOLD),
    }
