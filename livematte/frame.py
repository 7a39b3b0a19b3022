"""The unit every source yields and every later stage consumes, and its size.

One order for sizes, throughout: a **size** is (width, height), a
:class:`Size`, as cv2, video containers and ``--size WxH`` give it
(``Source.size``, ``Compositor``); a **shape** is (height, width), numpy's
order (``array.shape[:2]``, ``cover(rgb, shape)``). Graph inputs are
shapes too: the manifest's ``input.size`` is ``[H, W]`` like the NCHW tensor
it describes, and ``EngineManifest.graph_size`` returns (height, width).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Size(NamedTuple):
    """A frame size, (width, height): named, so nobody has to remember the order."""

    width: int
    height: int

    @classmethod
    def of(cls, image: np.ndarray) -> "Size":
        """The size of an HxW(xC) image."""
        return cls(image.shape[1], image.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width): numpy's order, for comparing with ``array.shape[:2]``."""
        return self.height, self.width

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass
class Frame:
    """One decoded video frame.

    ``rgb`` is HxWx3 uint8 in RGB order, already rotated upright.
    ``pts`` is the presentation time in seconds (None for live sources that
    have none); ``index`` counts frames from 0 in decode order. ``held``
    marks a repeat of the last good frame while a live source reconnects:
    live outputs show it so they never freeze, recordings leave it out.
    """

    rgb: np.ndarray
    pts: float | None
    index: int
    held: bool = False
