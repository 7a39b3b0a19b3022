"""Which of an engine's declared input sizes a frame goes into, and where in it.

An engine trained for several shapes (``input.sizes`` in its manifest:
landscape, square, portrait) must never see a squashed frame: the runtime
picks the declared size whose aspect is nearest the frame's, resizes the
frame keeping its aspect to fit inside it, centres it and fills the rest by
repeating the frame's edge pixels. Every spatial output is then cropped back
to where the frame sits (:class:`Placement`). Pure geometry, no pixels, so
the manifest can answer "what size for this frame" without numpy or OpenCV.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

Shape = tuple[int, int]


def nearest_aspect(sizes: Sequence[Shape], frame_height: int, frame_width: int) -> Shape:
    """The (H, W) in ``sizes`` whose aspect W/H is nearest the frame's, measured in log space.

    Log space makes 2:1 as far from 1:1 as 1:2 is; on a tie the size listed
    first wins, so the choice never depends on float noise between runs.
    """
    target = math.log(frame_width / frame_height)
    height, width = min(sizes, key=lambda hw: abs(math.log(hw[1] / hw[0]) - target))
    return height, width


def _even_fit(exact: float, limit: int) -> int:
    """``exact`` rounded to an even number in [2, limit] (``limit`` itself when the frame fills it)."""
    if exact >= limit - 0.5:
        return limit
    return max(2, min(limit - limit % 2, 2 * round(exact / 2)))


@dataclass(frozen=True)
class Placement:
    """A frame placed in a graph input of ``graph`` (H, W): its content box there.

    ``top``/``left`` and ``height``/``width`` are even wherever the content
    does not fill the axis, so an output at half the input resolution (the
    shipped engines' stride 2) crops on exact pixel boundaries.
    """

    graph: Shape
    top: int
    left: int
    height: int
    width: int

    @property
    def padded(self) -> bool:
        """Whether the frame leaves part of the graph input to the edge padding."""
        return (self.height, self.width) != self.graph

    def box_at(self, out_height: int, out_width: int) -> tuple[slice, slice]:
        """Rows and columns of the content in an output of ``out_height`` x ``out_width``.

        The output may be a fraction of the graph input (a stride-2 head) or
        larger; the box scales with it, output size over graph input size.
        """
        gh, gw = self.graph
        sy, sx = out_height / gh, out_width / gw
        rows = slice(round(self.top * sy), round((self.top + self.height) * sy))
        cols = slice(round(self.left * sx), round((self.left + self.width) * sx))
        return rows, cols


def place(frame_height: int, frame_width: int, graph: Shape) -> Placement:
    """The frame resized keeping its aspect to fit inside ``graph``, centred."""
    gh, gw = graph
    scale = min(gh / frame_height, gw / frame_width)
    height = _even_fit(frame_height * scale, gh)
    width = _even_fit(frame_width * scale, gw)
    return Placement(graph=(gh, gw), top=(gh - height) // 4 * 2, left=(gw - width) // 4 * 2, height=height, width=width)
