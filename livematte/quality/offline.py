"""The offline quality mode: coarse matte -> band -> closed-form and/or refinement.

Per frame: the real-time engine gives a coarse alpha (and trimap
probabilities when it has a trimap head); an unknown band is built from
them; inside the band the alpha is re-solved by closed-form matting, by the
refinement engine, or by both; the foreground colours are unmixed for the
compositor; a temporal stabiliser removes frame-to-frame shimmer.

The coarse engine is recurrent, so it runs in frame order in the calling
process and its state is carried from frame to frame exactly as in the
real-time mode. The expensive band work needs no state and runs in a
bounded process pool; :meth:`QualityMatter.imap` keeps at most
``2 * workers`` frames in flight and yields results in frame order, so
memory stays bounded and a long file finishes in (frames x per-frame cost
/ workers) time.
"""
from __future__ import annotations

import functools
import multiprocessing
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

import numpy as np

from livematte.engine import MatteResult
from livematte.errors import EngineError, Hint
from livematte.quality.band import DEFAULT_BAND_FRACTION, UNKNOWN, band_radius, trimap_from_alpha, \
    trimap_from_probabilities
from livematte.quality.closed_form import DEFAULT_MAX_PIXELS, estimate_foreground, solve_alpha
from livematte.quality.refine import Refiner
from livematte.quality.temporal import TemporalStabiliser

METHODS = ("closed-form", "refine", "both")
REFINE_ENGINE = "lm-refine"
REFINEMENT_DIR = "refinement"


class CoarseMatter(Protocol):
    """What the quality mode needs from the real-time engine (``livematte.engine.Matter``)."""

    def infer(self, rgb: np.ndarray) -> MatteResult: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class QualitySettings:
    """Everything a worker needs to refine one frame (picklable, no sessions)."""

    method: str = "closed-form"
    refine_engine: Path | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    band_fraction: float = DEFAULT_BAND_FRACTION
    foreground: bool = True


def shipped_refine_engine() -> Path:
    """The installed ``lm-refine`` manifest, or an EngineError saying it is missing.

    Refinement engines live in ``engines/refinement/``, apart from the
    matting engines the registry lists for ``--model``: their second graph
    input (the coarse alpha) is not something ``Matter`` can feed.
    """
    from livematte.registry import engines_dir

    root = engines_dir()
    path = root / REFINEMENT_DIR / f"{REFINE_ENGINE}.json" if root is not None else None
    if path is None or not path.is_file():
        raise EngineError(f"the refinement engine {REFINE_ENGINE!r} is not installed",
                          hint=Hint("quality_method", "closed-form"))
    return path


@functools.lru_cache(maxsize=2)
def _refiner(path: Path) -> Refiner:
    """One ONNX Runtime session per process and engine, built on first use."""
    return Refiner(path)


def band_trimap(coarse: np.ndarray, probabilities: np.ndarray | None,
                band_fraction: float) -> np.ndarray:
    """The 0/128/255 trimap of one frame: from the engine's trimap head if it has one."""
    radius = band_radius(coarse.shape, band_fraction)
    if probabilities is not None:
        return trimap_from_probabilities(probabilities, coarse.shape, radius)
    return trimap_from_alpha(coarse, radius)


def refine_frame(rgb: np.ndarray, coarse: np.ndarray, probabilities: np.ndarray | None,
                 settings: QualitySettings) -> tuple[np.ndarray, np.ndarray | None]:
    """One frame's quality alpha (float32 HxW) and foreground (uint8 HxWx3 or None).

    Runs in a worker process: everything it needs comes in its arguments.
    The foreground travels back as uint8 to keep the inter-process copy small.
    """
    trimap = band_trimap(coarse, probabilities, settings.band_fraction)
    alpha = coarse
    if settings.method in ("refine", "both"):
        alpha = _refiner(settings.refine_engine).refine(rgb, alpha, trimap == UNKNOWN)
    if settings.method == "both":
        # The refined alpha places the band better than the coarse one did;
        # this order beat closed-form-then-refine on both portrait sets
        # (docs/quality.md).
        trimap = band_trimap(alpha, None, settings.band_fraction)
    if settings.method in ("closed-form", "both"):
        alpha = solve_alpha(rgb, trimap, prior=alpha, max_pixels=settings.max_pixels)
    foreground = None
    if settings.foreground:
        foreground = np.round(estimate_foreground(rgb, alpha) * 255.0).astype(np.uint8)
    return alpha.astype(np.float32, copy=False), foreground


class QualityMatter:
    """Drop-in for :class:`livematte.engine.Matter` that trades speed for edges.

    ``coarse`` is the real-time matter whose recurrent state is carried;
    ``method`` is one of :data:`METHODS`; ``workers`` > 0 lets :meth:`imap`
    spread frames over that many processes (``infer`` always works in this
    process). ``refine_engine`` defaults to the shipped ``lm-refine``.
    """

    def __init__(self, coarse: CoarseMatter, method: str = "closed-form", workers: int = 0,
                 refine_engine: str | Path | None = None, stabiliser: TemporalStabiliser | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, band_fraction: float = DEFAULT_BAND_FRACTION,
                 foreground: bool = True):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        engine = None
        if method in ("refine", "both"):
            engine = Path(refine_engine).resolve() if refine_engine is not None else shipped_refine_engine()
            _refiner(engine)  # a broken engine fails now, not in a worker mid-file
        self.coarse = coarse
        self.settings = QualitySettings(method, engine, max_pixels, band_fraction, foreground)
        self.workers = workers
        self.stabiliser = stabiliser if stabiliser is not None else TemporalStabiliser()
        self._pool: ProcessPoolExecutor | None = None

    def reset(self) -> None:
        """Forget the coarse engine's state and the stabiliser's history (seek, restart)."""
        self.coarse.reset()
        self.stabiliser.reset()

    def close(self) -> None:
        """Stop the worker processes and release the coarse engine."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self.coarse.close()

    def _coarse(self, rgb: np.ndarray) -> tuple[MatteResult, float]:
        t0 = time.perf_counter()
        return self.coarse.infer(rgb), (time.perf_counter() - t0) * 1000.0

    def _finish(self, rgb: np.ndarray, coarse: MatteResult, coarse_ms: float, alpha: np.ndarray,
                foreground: np.ndarray | None, quality_ms: float) -> MatteResult:
        if coarse.scene_cut:  # here, in frame order, not when the frame was submitted
            self.stabiliser.reset()
        stable = self.stabiliser(rgb, alpha)
        fg = foreground.astype(np.float32) * np.float32(1.0 / 255.0) if foreground is not None else None
        return MatteResult(alpha=stable, trimap=coarse.trimap, foreground=fg, scene_cut=coarse.scene_cut,
                           timings={"coarse": coarse_ms, "quality": quality_ms})

    def infer(self, rgb: np.ndarray) -> MatteResult:
        """The quality matte of one RGB uint8 frame, computed in this process."""
        coarse, coarse_ms = self._coarse(rgb)
        t0 = time.perf_counter()
        alpha, foreground = refine_frame(rgb, coarse.alpha, coarse.trimap, self.settings)
        return self._finish(rgb, coarse, coarse_ms, alpha, foreground, (time.perf_counter() - t0) * 1000.0)

    def imap(self, frames: Iterable[np.ndarray]) -> Iterator[MatteResult]:
        """Quality mattes of ``frames`` in order, the band work spread over the pool.

        With ``workers`` <= 0 this is ``infer`` frame by frame. ``timings``
        hold the worker's own time per frame ("quality"), which is what a
        progress bar should show as the per-frame cost.
        """
        if self.workers <= 0:
            yield from (self.infer(rgb) for rgb in frames)
            return
        if self._pool is None:
            # spawn, not fork: the parent holds ONNX Runtime threads that fork would copy mid-flight
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        pending: deque[tuple[np.ndarray, MatteResult, float, Future]] = deque()
        for rgb in frames:
            coarse, coarse_ms = self._coarse(rgb)
            future = self._pool.submit(_timed_refine, rgb, coarse.alpha, coarse.trimap, self.settings)
            pending.append((rgb, coarse, coarse_ms, future))
            if len(pending) >= 2 * self.workers:
                yield self._collect(*pending.popleft())
        while pending:
            yield self._collect(*pending.popleft())

    def _collect(self, rgb: np.ndarray, coarse: MatteResult, coarse_ms: float, future: Future) -> MatteResult:
        alpha, foreground, quality_ms = future.result()
        return self._finish(rgb, coarse, coarse_ms, alpha, foreground, quality_ms)


def _timed_refine(rgb: np.ndarray, coarse: np.ndarray, probabilities: np.ndarray | None,
                  settings: QualitySettings) -> tuple[np.ndarray, np.ndarray | None, float]:
    t0 = time.perf_counter()
    alpha, foreground = refine_frame(rgb, coarse, probabilities, settings)
    return alpha, foreground, (time.perf_counter() - t0) * 1000.0
