"""A frame as an engine's image tensor, the way its manifest's ``input`` says.

Both graphs that take an image, the matting engine (``livematte.engine``)
and the refinement engine (``livematte.quality.refine``), feed it through
here, so a manifest's colour order, scale, mean/std, layout and dtype mean
the same thing to every runner.
"""
from __future__ import annotations

import cv2
import numpy as np

from livematte.manifest import InputSpec


class InputNormaliser:
    """RGB uint8 HxWx3 -> the graph's 1x3xHxW (NCHW) or 1xHxWx3 (NHWC) input tensor.

    ``x = (pixel * scale - mean) / std`` is folded into one multiply-add
    with per-channel constants computed once.
    """

    def __init__(self, spec: InputSpec):
        self.spec = spec
        std = np.asarray(spec.std, np.float32)
        self._gain = np.float32(spec.scale) / std
        self._offset = -np.asarray(spec.mean, np.float32) / std
        self._dtype = np.dtype(spec.dtype)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if self.spec.color == "BGR" else rgb
        x = np.multiply(image, self._gain, dtype=np.float32)
        x += self._offset
        if self.spec.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None], dtype=self._dtype)
