"""Feeds the threaded pipeline from :meth:`QualityMatter.imap`, so the pool works ahead.

The pipeline asks its matter for one frame at a time, which would leave the
process pool idle. Here the pipeline's decode stage iterates the quality
job instead: each decoded frame gets its coarse matte (in order, recurrent
state carried) and is queued to the pool, and a frame is passed on only
when its quality matte is ready; the infer stage then just picks that matte
up. Files only: a live source drops frames, which would break the strict
frame-for-frame pairing this relies on, and live video has no time for the
quality mode anyway.
"""
from __future__ import annotations

from collections import deque
from typing import Iterator

import numpy as np

from livematte.engine import MatteResult
from livematte.errors import InputError
from livematte.frame import Frame
from livematte.quality.offline import QualityMatter
from livematte.sources import Source


class _PrefetchingSource(Source):
    """The wrapped source's frames, each released once its quality matte exists."""

    def __init__(self, inner: Source, owner: "QualityPrefetch"):
        self._inner = inner
        self._owner = owner
        self.live = inner.live
        self.fps = inner.fps
        self.size = inner.size
        self.frame_count = inner.frame_count
        self.time_base = inner.time_base
        self.audio_path = inner.audio_path

    @property
    def decode_errors(self) -> int:  # type: ignore[override]
        return self._inner.decode_errors

    def __iter__(self) -> Iterator[Frame]:
        return self._owner._frames(self._inner)

    def close(self) -> None:
        self._inner.close()


class QualityPrefetch:
    """Pairs a file source with a :class:`QualityMatter` for ``Pipeline``.

    Pass :attr:`source` as the pipeline's source and this object as its
    matter.
    """

    def __init__(self, source: Source, quality: QualityMatter):
        if source.live:
            raise InputError("--quality high needs a file input; live sources use the real-time mode")
        self.quality = quality
        self.source: Source = _PrefetchingSource(source, self)
        self._ready: deque[tuple[np.ndarray, MatteResult]] = deque()

    def _frames(self, inner: Source) -> Iterator[Frame]:
        decoded: deque[Frame] = deque()

        def images() -> Iterator[np.ndarray]:
            for frame in inner:
                decoded.append(frame)
                yield frame.rgb

        for result in self.quality.imap(images()):
            frame = decoded.popleft()
            self._ready.append((frame.rgb, result))
            yield frame

    def infer(self, rgb: np.ndarray) -> MatteResult:
        """The prefetched matte of ``rgb`` (the very array the source yielded)."""
        while self._ready:
            image, result = self._ready.popleft()
            if image is rgb:
                return result
        raise RuntimeError("quality matte requested for a frame the prefetching source never yielded")

    def reset(self) -> None:
        self.quality.reset()

    def close(self) -> None:
        self.quality.close()
