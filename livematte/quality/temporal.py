"""Temporal stabiliser: keeps offline refinements from flickering on static content.

Closed-form matting and the refinement network see each frame alone; sensor
noise and compression change their band solution a little every frame, and
a viewer sees that as shimmering hair on a person standing still. Where the
image did not change since the previous frame the matte should not change
either, so there the new alpha is blended with the previous output; where
the image changed (motion, lighting, a cut) the new alpha is taken as is,
so moving edges never lag.
"""
from __future__ import annotations

import cv2
import numpy as np


class TemporalStabiliser:
    """Per-pixel recursive blend of consecutive alphas, gated by image change.

    ``strength`` is the weight of the previous output where the image is
    unchanged (0 disables); ``threshold`` is the change in grey levels
    (0-255, after a light blur that averages sensor noise away) at which the
    previous output stops counting at all. Call :meth:`reset` on seek or
    scene cut; frames of a new size reset it by themselves.
    """

    def __init__(self, strength: float = 0.8, threshold: float = 8.0, noise_sigma: float = 1.5):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        self.strength = strength
        self.threshold = threshold
        self.noise_sigma = noise_sigma
        self._grey: np.ndarray | None = None
        self._alpha: np.ndarray | None = None

    def reset(self) -> None:
        self._grey = None
        self._alpha = None

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The stabilised alpha (float32 HxW) for this frame, given its new ``alpha``."""
        grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0),
                                self.noise_sigma)
        alpha = np.asarray(alpha, np.float32)
        previous_grey, previous_alpha = self._grey, self._alpha
        if previous_grey is None or previous_grey.shape != grey.shape:
            out = alpha
        else:
            change = np.abs(grey - previous_grey)
            keep = self.strength * np.clip(1.0 - change / self.threshold, 0.0, 1.0)
            out = keep * previous_alpha + (1.0 - keep) * alpha
        self._grey, self._alpha = grey, out
        return out
