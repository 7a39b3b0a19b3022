"""The unit every source yields and every later stage consumes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One decoded video frame.

    ``rgb`` is HxWx3 uint8 in RGB order, already rotated upright.
    ``pts`` is the presentation time in seconds (None for live sources that
    have none); ``index`` counts frames from 0 in decode order.
    """

    rgb: np.ndarray
    pts: float | None
    index: int
