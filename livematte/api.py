"""livematte as a library: one call for a whole job.

:func:`process` is what ``livematte process`` does, for a file or a stream,
with the same checks, outputs and Ctrl-C guarantees; the CLI turns its
options into this call and the result into a summary line, and the
benchmark times it. :func:`run_job` is the step below it, for a job whose
source and sinks the caller opens (``livematte webcam``). Frame by frame,
use :class:`livematte.engine.Matter` directly.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Sequence

import numpy as np

from livematte.backgrounds import Background, parse_background
from livematte.compositor import Compositor
from livematte.engine import Matter
from livematte.errors import Hint, InputError
from livematte.interrupts import checkpoint, raising
from livematte.numba_cache import prepare_quality
from livematte.pipeline import LiveStats, Pipeline, PipelineResult
from livematte.registry import DEFAULT_ENGINE, find_engine
from livematte.sinks import (Sink, check_alpha_target, check_matte_target, open_matte_sink, open_sink, open_sinks,
                             refuse_existing_output)
from livematte.sources import Source, open_source
from livematte.stages import CompositeStage, MatteStage, ParallelMatteStage, Stage

#: the ``quality`` values :func:`process` takes
QUALITY_MODES = ("realtime", "high")

#: ``on_progress(frames_done, frames_total_or_None, fps)``
ProgressCallback = Callable[[int, "int | None", float], None]


def process(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    background: str | Background | None = None,
    model: str | os.PathLike[str] | Matter | None = None,
    alpha: bool = False,
    quality: str = "realtime",
    *,
    matte_out: str | os.PathLike[str] | None = None,
    backend: str = "cpu",
    precision: str = "auto",
    overwrite: bool = False,
    duration: float | None = None,
    crf: int = 20,
    preset: str = "superfast",
    threads: int = 0,
    quality_method: str = "both",
    quality_workers: int | None = None,
    engine_threads: int | None = None,
    quiet: bool = False,
    adjust: Callable[[np.ndarray], np.ndarray] | None = None,
    on_progress: ProgressCallback | None = None,
    on_live_stats: Callable[[LiveStats], None] | None = None,
    person_crop: bool | None = None,
    flip_average: bool | None = None,
    fps: float | None = None,
) -> PipelineResult:
    """Matte ``input`` (a video file, a photo, an image sequence or a stream URL) into ``output``; return what was done.

    An image sequence is a folder of numbered images or a
    ``dir/name%06d.png`` pattern, read at ``fps`` frames a second (default
    30; a video or stream keeps its own rate and refuses ``fps``).
    ``output`` is a video file (``.mp4``, ``.mkv``, ``.mov``, ``.webm``), a
    PNG directory or ``dir/name%06d.png`` pattern, a stream URL, or for a
    one-frame input (a photo) an image file (``.png``, ``.jpg``...).
    ``background`` is a ``--bg`` text or a :class:`~livematte.backgrounds.Background`
    (None: ``blur``). ``model`` is an engine name, an ``.onnx`` path with its
    manifest beside it, None for the default engine, or a :class:`Matter`
    the caller keeps (and closes). ``alpha`` keeps the background
    transparent (``.mov``, ``.webm`` or PNG). ``matte_out`` also writes the
    matte: a PNG directory or pattern (lossless), a video file (its luma)
    or, for a photo, an image file. ``quality="high"`` re-solves
    the edges offline (files only, seconds per frame). The keywords are the
    ``livematte process`` options of the same names; ``adjust`` changes the
    8-bit matte before compositing (threshold, feather), ``engine_threads``
    caps the CPU engine's threads, ``person_crop`` mattes the region around
    the person (``Matter``; None: the engine decides), ``flip_average`` also
    mattes each frame's mirror image and averages the two (``Matter``; None:
    :func:`default_flip_average`), ``quiet`` keeps the quality mode's
    first-run notice off stderr. A live input (a stream URL) is recorded:
    every frame is queued, none dropped, and its audio kept.

    Options are checked before anything is written, the output is written
    under a temporary name and renamed when complete, and Ctrl-C or SIGTERM
    finalise what was done (``result.interrupted``). Anything the caller can
    fix raises a :class:`~livematte.errors.LivematteError`.
    """
    if quality not in QUALITY_MODES:
        raise InputError(f"quality must be one of {', '.join(QUALITY_MODES)}, not {quality!r}")
    if not isinstance(background, Background):
        background = parse_background("transparent" if alpha and background is None else background or "blur")
    if alpha and background.channels != 4:
        raise InputError("a transparent output has no background: give a background or keep the alpha, not both")
    manifest = model.manifest if isinstance(model, Matter) else find_engine(str(model or DEFAULT_ENGINE))
    if background.channels == 4:
        check_alpha_target(output)
    if matte_out is not None:
        check_matte_target(matte_out)
    with contextlib.ExitStack() as cleanup:
        source = open_source(str(input), fps=fps)
        try:  # until the pipeline runs; then the pipeline owns the source and closes it
            if quality == "high" and source.live:
                raise InputError("the quality mode needs a file input; live sources use the real-time mode",
                                 hint=Hint("quality", "realtime"))
            for target in (output, matte_out) if matte_out is not None else (output,):
                refuse_existing_output(target, overwrite)  # before the engine loads; the sink checks again
            matter = model if isinstance(model, Matter) else cleanup.enter_context(
                Matter(manifest, backend=backend, threads=engine_threads, precision=precision, person_crop=person_crop,
                       flip_average=default_flip_average(quality, source) if flip_average is None else flip_average))
            matte, preparing_s = _matte_stage(matter, quality, quality_method, quality_workers, quiet, cleanup)
            compositor = cleanup.enter_context(contextlib.closing(Compositor(background, source.size)))
            openers = [lambda: open_sink(output, source, alpha=background.channels == 4,
                                         overwrite=overwrite, crf=crf, preset=preset, threads=threads)]
            if matte_out is not None:
                openers.append(lambda: open_matte_sink(matte_out, source, overwrite=overwrite, crf=crf, preset=preset,
                                                       threads=threads))
            checkpoint()  # stopped while setting up: nothing to open
            sinks = open_sinks(openers)
        except BaseException:
            source.close()
            raise
        result = run_job(source, [matte, CompositeStage(compositor, adjust)], sinks[:1], sinks[1:],
                         duration=duration, on_progress=on_progress, on_live_stats=on_live_stats,
                         drop_frames=False)  # a recording job, even of a live stream: queue, never drop
    result.preparing_s = preparing_s
    return result


def default_flip_average(quality: str, source: Source) -> bool:
    """Whether a job mattes the mirror image too when the caller leaves it open:
    for ``quality="high"``, whose coarse matte it improves at a cost that is
    small beside the edge solving, and for a photo (a one-frame file), where
    twice a few milliseconds buys a better matte and nobody waits on a frame
    rate (on the 240 EG1800 portraits SAD 11.18 -> 10.95, MSE 0.0163 -> 0.0152)."""
    return quality == "high" or (not source.live and source.frame_count == 1)


def _matte_stage(matter: Matter, quality: str, method: str, workers: int | None, quiet: bool,
                 cleanup: contextlib.ExitStack) -> tuple[Stage, float]:
    """The real-time matte, or for ``quality="high"`` its edges re-solved ahead in a process pool;
    and the seconds spent preparing it (the quality mode's first run compiles for minutes)."""
    if quality != "high":
        return MatteStage(matter), 0.0
    with raising():  # minutes of compiling the first time: Ctrl-C stops it at once
        preparing_s = prepare_quality(quiet)
    from livematte.quality import QualityMatter

    quality_matter = QualityMatter(matter, method=method, workers=workers or os.cpu_count() or 1)
    cleanup.callback(quality_matter.close)
    return ParallelMatteStage(quality_matter), preparing_s


def run_job(
    source: Source,
    stages: Sequence[Stage],
    sinks: Sequence[Sink],
    matte_sinks: Sequence[Sink] = (),
    *,
    duration: float | None = None,
    on_progress: ProgressCallback | None = None,
    on_live_stats: Callable[[LiveStats], None] | None = None,
    queue_size: int | None = None,
    drop_frames: bool | None = None,
) -> PipelineResult:
    """Run ``source`` through ``stages`` into sinks that are already open; the pipeline closes them.

    ``drop_frames`` (default: when the source is live) drops the oldest frame
    between stages rather than queue it, to keep a live session's latency.

    A stop before the pipeline took the sinks over (Ctrl-C or SIGTERM while
    it starts) still removes their temporary files.
    """
    pipeline = Pipeline(source, stages, sinks, matte_sinks, duration=duration, on_progress=on_progress,
                        on_live_stats=on_live_stats, queue_size=queue_size, drop_frames=drop_frames)
    try:
        return pipeline.run()
    except BaseException:
        for sink in [*sinks, *matte_sinks]:
            sink.abort()
        raise
