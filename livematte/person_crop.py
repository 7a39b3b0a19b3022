"""Matte a crop around the person instead of the whole frame, when that helps.

A real-time engine sees a 1280x720 frame at about 256x144: a standing
person far from the camera is then 60-100 pixels tall, too few for their
limbs and edges. An engine that declares several input sizes (landscape,
square, portrait) can instead be given the part of the frame the person is
in, cut to the declared aspect that fits them (a standing person: the
portrait size), at the same cost per frame. Close-up framing, the usual
webcam shot, fills the frame and is left alone.

:class:`PersonCrop` decides, frame by frame, from the mattes already made:

* the region is the box around every pixel the last matte called person,
  widened by ``margin`` on each side, at the declared aspect nearest the
  box's, never smaller than ``min_fraction`` of the frame's height;
* it grows at once (a limb that moves out must not be cut off) and shrinks
  gradually, so the region, and the carried state with it, stays steady;
* the aspect changes only when another fits clearly better (a change of
  input size restarts the engine's recurrent state);
* every ``probe_every`` frames while a region is in use the caller also
  mattes the whole frame without state (:meth:`probe_due`), so someone
  entering outside the region is found; the region then covers them too.
  While the whole frame is matted anyway, a probe would see nothing new.

Pure geometry on mattes; the engine calls are the caller's (``Matter``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

Shape = tuple[int, int]


@dataclass(frozen=True)
class Region:
    """A rectangle of the frame in pixels."""

    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


#: a box (top, left, bottom, right) in frame pixels, floats
Box = tuple[float, float, float, float]


def person_box(alpha: np.ndarray, threshold: float = 0.5, step: int = 4) -> Box | None:
    """The box around the pixels of ``alpha`` (H x W in [0, 1]) above ``threshold``,
    read every ``step`` pixels (plenty for a box); None when there are too few to be a person."""
    person = alpha[::step, ::step] > threshold
    rows = np.flatnonzero(person.any(axis=1))
    if rows.size < 2:
        return None
    cols = np.flatnonzero(person.any(axis=0))
    return (float(rows[0] * step), float(cols[0] * step), float((rows[-1] + 1) * step), float((cols[-1] + 1) * step))


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


class PersonCrop:
    """Chooses the region of each frame to matte (see the module docstring).

    ``sizes`` are the engine's declared (H, W) input sizes; ``margin`` the
    share of the person's box added on each side; ``min_fraction`` the
    smallest region height as a share of the frame's; ``full_above`` the
    region area (share of the frame) above which the whole frame is used;
    ``shrink`` how much of the way to a smaller box one frame goes.
    """

    #: log-aspect advantage another declared aspect needs before the region switches to it
    SWITCH_MARGIN = 0.25

    def __init__(self, sizes: Sequence[Shape], margin: float = 0.2, min_fraction: float = 0.35,
                 full_above: float = 0.5, shrink: float = 0.2, probe_every: int = 15) -> None:
        self.aspects = sorted({w / h for h, w in sizes})
        self.margin = margin
        self.min_fraction = min_fraction
        self.full_above = full_above
        self.shrink = shrink
        self.probe_every = probe_every
        self.reset()

    def reset(self) -> None:
        """Forget the person (a new clip, a scene cut): the next frame is matted whole."""
        self._box: Box | None = None
        self._shape: Shape | None = None  # the frame size the box was found in
        self._aspect: float | None = None
        self._frames = 0

    def probe_due(self) -> bool:
        """Whether the caller should also matte this frame whole (statelessly) and pass it to :meth:`update`."""
        return self._box is not None and self._frames % self.probe_every == 0

    def region(self, frame_height: int, frame_width: int) -> Region | None:
        """Where to matte the next frame; None for the whole frame (also when
        the frame size changed: a box found in another frame says nothing here)."""
        if self._box is None or (frame_height, frame_width) != self._shape:
            return None
        top, left, bottom, right = self._box
        box_h, box_w = (bottom - top) * (1 + 2 * self.margin), (right - left) * (1 + 2 * self.margin)
        aspect = self._choose_aspect(box_w / max(box_h, 1.0))
        height = min(float(frame_height), max(box_h, box_w / aspect, self.min_fraction * frame_height))
        width = min(float(frame_width), height * aspect)
        height = width / aspect
        if height * width >= self.full_above * frame_height * frame_width:
            return None
        h, w = max(2, round(height)), max(2, round(width))
        cy, cx = (top + bottom) / 2, (left + right) / 2
        y = int(round(min(max(cy - h / 2, 0.0), frame_height - h)))
        x = int(round(min(max(cx - w / 2, 0.0), frame_width - w)))
        return Region(y, x, h, w)

    def update(self, alpha: np.ndarray, probe: np.ndarray | None = None) -> None:
        """Learn from this frame's full-frame ``alpha`` (and the whole-frame
        ``probe`` matte when one was made) where the person is."""
        self._frames += 1
        if alpha.shape != self._shape:
            self._box, self._shape = None, alpha.shape[:2]
        target = _union(person_box(alpha), None if probe is None else person_box(probe))
        if target is None or self._box is None:
            self._box = target
            return
        old = self._box
        grow = (min(old[0], target[0]), min(old[1], target[1]), max(old[2], target[2]), max(old[3], target[3]))
        # at once where the person reaches out of the box, gradually where they left room
        self._box = tuple(g + self.shrink * (t - g) for g, t in zip(grow, target))  # type: ignore[assignment]

    def _choose_aspect(self, wanted: float) -> float:
        def distance(aspect: float) -> float:
            return abs(math.log(aspect) - math.log(wanted))

        best = min(self.aspects, key=distance)
        if self._aspect is None or distance(best) + self.SWITCH_MARGIN < distance(self._aspect):
            self._aspect = best
        return self._aspect
