"""Filling holes in a low-resolution image from what surrounds them.

The compositor needs the old background behind the person's edge and the
blurred backgrounds need a value under the person: both know colours only
where the background shows, and both want every other pixel to take the
colour of the background nearest to it.
"""
from __future__ import annotations

import cv2
import numpy as np


def push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill every pixel with the weighted mean colour of the nearest weighted pixels.

    ``values`` is HxWx3 float32, ``weight`` HxW float32 in [0, 1]. A pyramid
    "push-pull" fill: weighted sums are halved down to one pixel, then each
    level keeps its own estimate where it has enough weight and takes the
    coarser level's elsewhere, so holes of any size are filled from their
    surroundings in a few whole-image operations.
    """
    levels = [(values * weight[..., None], weight)]
    while max(levels[-1][1].shape) > 1:
        summed, w = levels[-1]
        size = (max(1, w.shape[1] // 2), max(1, w.shape[0] // 2))
        levels.append((cv2.resize(summed, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(w, size, interpolation=cv2.INTER_AREA).reshape(size[::-1])))
    summed, w = levels[-1]
    estimate = summed / np.maximum(w, 1e-6)[..., None]
    for summed, w in reversed(levels[:-1]):
        coarse = cv2.resize(estimate, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        coarse = coarse.reshape(summed.shape)
        own = summed / np.maximum(w, 1e-6)[..., None]
        trust = np.minimum(1.0, w * 4.0)[..., None]  # a quarter of a pixel's worth of weight is enough
        estimate = own * trust + coarse * (1.0 - trust)
    return estimate
