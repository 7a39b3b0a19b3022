"""The steps between a source and its sinks: one small protocol, one class per step.

A job is an ordered list of stages (:class:`~livematte.pipeline.Pipeline`
runs each in its own thread, joined by bounded channels). A stage takes the
frames in order and hands them on in the same order, each with its part
filled in: the matte stage a :class:`~livematte.engine.MatteResult`, the
composite stage the output image. Taking and giving a stream rather than one
frame per call is what lets a stage work ahead: the quality mode keeps
several frames in a process pool and still hands them on in order. A new
step (a refinement, a control surface) is one class with a ``name`` and a
``run``.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import numpy as np

from livematte.compositor import alpha_to_u8
from livematte.engine import MatteResult
from livematte.frame import Frame


@dataclass
class Work:
    """One frame on its way from the source to the sinks."""

    frame: Frame
    #: ``time.monotonic()`` when it was read: live latency is measured from here
    captured: float
    #: the matte stage's result; the composite stage takes the arrays and leaves it None
    matte: MatteResult | None = None
    #: the uint8 matte the compositor used (after any adjustment), for the matte sinks
    alpha: np.ndarray | None = None
    #: the composited output image (RGB, or RGBA for a transparent background)
    image: np.ndarray | None = None
    #: milliseconds per engine step (preprocess, inference, upsample...), from the matte stage
    timings: dict[str, float] = field(default_factory=dict)


class Stage(Protocol):
    """A step of the job: ``run`` yields every frame it is given, in the order given.

    ``name`` labels its throughput counter (``infer``, ``composite``...). A
    stage may hold frames back while it works ahead, but must hand on every
    one it took once its input ends; when the pipeline stops early it closes
    the iterator ``run`` returned (``GeneratorExit``), and the stage drops
    what it held.
    """

    name: str

    def run(self, frames: Iterator[Work]) -> Iterator[Work]: ...


class FrameMatter(Protocol):
    """What the matte stage needs: :class:`livematte.engine.Matter` or anything with its ``infer``."""

    def infer(self, rgb: np.ndarray) -> MatteResult: ...


class MatteStage:
    """The real-time matte, frame by frame, the engine's recurrent state carried in order."""

    name = "infer"

    def __init__(self, matter: FrameMatter) -> None:
        self.matter = matter

    def run(self, frames: Iterator[Work]) -> Iterator[Work]:
        for work in frames:
            work.matte = self.matter.infer(work.frame.rgb)
            yield work


class OrderedMatter(Protocol):
    """A matter that mattes a stream ahead, in order (:class:`livematte.quality.QualityMatter`)."""

    def imap(self, frames: Iterator[np.ndarray]) -> Iterator[MatteResult]: ...


class ParallelMatteStage:
    """A matte computed ahead by a pool of workers (the quality mode), handed on in frame order.

    The frames whose mattes are in the pool wait here in a queue; each one
    leaves with its own result, as ``imap`` returns results in the order the
    frames went in. Files only: a live job drops frames between stages, and
    has no time for this anyway.
    """

    name = "infer"

    def __init__(self, matter: OrderedMatter) -> None:
        self.matter = matter

    def run(self, frames: Iterator[Work]) -> Iterator[Work]:
        waiting: deque[Work] = deque()

        def images() -> Iterator[np.ndarray]:
            for work in frames:
                waiting.append(work)
                yield work.frame.rgb

        for result in self.matter.imap(images()):
            work = waiting.popleft()
            work.matte = result
            yield work


class Composer(Protocol):
    """What the composite stage needs: :class:`livematte.compositor.Compositor`, or anything with its ``compose``
    (a background switched while live)."""

    def compose(self, rgb: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray: ...


class CompositeStage:
    """The person over the new background; ``adjust`` (threshold, feather...) changes the uint8 matte first.

    Only a full-resolution foreground (the quality mode's) replaces the
    compositor's own edge decontamination: an engine's foreground at its
    graph resolution would blur the edges.
    """

    name = "composite"

    def __init__(self, compositor: Composer, adjust: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.compositor = compositor
        self.adjust = adjust

    def run(self, frames: Iterator[Work]) -> Iterator[Work]:
        for work in frames:
            result = work.matte
            assert result is not None, "the composite stage needs a matte stage before it"
            matte = alpha_to_u8(result.alpha)  # once: the compositor and the matte sinks share it
            if self.adjust is not None:
                matte = self.adjust(matte)
            foreground = result.foreground
            if foreground is not None and foreground.shape[:2] != matte.shape[:2]:
                foreground = None
            work.image = self.compositor.compose(work.frame.rgb, matte, foreground)
            work.alpha = matte
            work.timings = result.timings
            work.matte = None  # free the float matte and the frame early
            work.frame.rgb = None  # type: ignore[assignment]
            yield work


def realtime_stages(matter: FrameMatter, compositor: Composer,
                    adjust: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Stage]:
    """The stages of a real-time job: the engine's matte, then the composite."""
    return [MatteStage(matter), CompositeStage(compositor, adjust)]
