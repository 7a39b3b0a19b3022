"""decode → infer → composite → encode, each stage in its own thread.

Stages are joined by small bounded channels. For files every channel blocks
when full (back-pressure: nothing is dropped, order is kept, so the output
has exactly the input's frames). For live sources every channel keeps only
the newest frames and drops the oldest, so a slow stage costs frames, never
latency. ONNX Runtime, OpenCV and FFmpeg release the GIL while they work, so
the stages genuinely overlap on separate cores.

The first exception in any stage stops every stage and is re-raised in the
caller's thread; Ctrl-C or SIGTERM stop reading, let the frames already in
flight finish, and finalise the outputs. A live source that is gone for good
(a camera unplugged and not back) ends the session the same way, then its
error is raised: a live recording is kept up to that moment.
"""
from __future__ import annotations

import collections
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

import cv2
import numpy as np

from livematte.errors import LivematteError
from livematte.frame import Frame
from livematte.compositor import alpha_to_u8
from livematte.sinks import Sink
from livematte.sources import Source

STAGES = ("decode", "infer", "composite", "encode")


class _Matter(Protocol):
    def infer(self, rgb: np.ndarray) -> Any: ...


class _Compositor(Protocol):
    def compose(self, rgb: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray: ...


@dataclass
class StageCounter:
    """Frames a stage handled and the time it spent working on them (queue
    waits excluded), i.e. the throughput that stage alone could sustain."""

    name: str
    frames: int = 0
    busy_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.busy_s if self.busy_s > 0 else 0.0


@dataclass
class LiveStats:
    """One report of a live session: output rate and glass-to-glass latency
    (time the frame was captured → time the sinks finished writing it)."""

    fps: float
    latency_ms: float
    dropped: int
    frames: int


@dataclass
class PipelineResult:
    frames_in: int
    frames_out: int
    dropped: int
    decode_errors: int
    interrupted: bool
    elapsed_s: float
    stages: dict[str, StageCounter] = field(default_factory=dict)
    #: signal that interrupted the run (SIGINT/SIGTERM), None if it completed
    signal: int | None = None

    @property
    def fps(self) -> float:
        return self.frames_out / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class _Item:
    frame: Frame
    captured: float
    alpha: np.ndarray | None = None
    foreground: np.ndarray | None = None
    image: np.ndarray | None = None
    matte: np.ndarray | None = None


_END = object()  # end of stream, travels through every stage
_STOPPED = object()  # returned by a channel once the pipeline is stopping


class _Channel:
    """Bounded hand-off between two stages: blocking (files) or drop-oldest (live)."""

    def __init__(self, capacity: int, drop_oldest: bool, stopping: threading.Event) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._capacity = capacity
        self._drop_oldest = drop_oldest
        self._stopping = stopping
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: Any) -> bool:
        """False when the pipeline is stopping and the item was not queued."""
        with self._cond:
            while len(self._items) >= self._capacity:
                if self._stopping.is_set():
                    return False
                if self._drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                    break
                self._cond.wait(0.1)
            if self._stopping.is_set():
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self) -> Any:
        with self._cond:
            while not self._items:
                if self._stopping.is_set():
                    return _STOPPED
                self._cond.wait(0.1)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class Pipeline:
    """Runs one job from ``source`` through ``matter`` and ``compositor`` to ``sinks``.

    ``matte_sinks`` receive the alpha matte as 8-bit grey instead of the
    composite. ``adjust`` (e.g. a :class:`~livematte.matte_adjust.MatteAdjuster`)
    changes the 8-bit matte before both the compositor and the matte sinks
    see it, in the compositing thread, one frame at a time in order. ``live`` defaults to the source's own kind. ``duration`` (live)
    stops after that many seconds. ``on_progress(done, total, fps)`` and
    ``on_live_stats(LiveStats)`` are called from the caller's thread about
    every ``report_every`` seconds.
    """

    def __init__(
        self,
        source: Source,
        matter: _Matter,
        compositor: _Compositor,
        sinks: Sequence[Sink],
        matte_sinks: Sequence[Sink] = (),
        live: bool | None = None,
        queue_size: int | None = None,
        duration: float | None = None,
        on_progress: Callable[[int, int | None, float], None] | None = None,
        on_live_stats: Callable[[LiveStats], None] | None = None,
        report_every: float = 1.0,
        adjust: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.source = source
        self.matter = matter
        self.compositor = compositor
        self.sinks = list(sinks)
        self.matte_sinks = list(matte_sinks)
        self.live = source.live if live is None else live
        self.duration = duration
        self.on_progress = on_progress
        self.on_live_stats = on_live_stats
        self.report_every = report_every
        self.adjust = adjust
        capacity = queue_size or (1 if self.live else 4)
        self._stopping = threading.Event()  # hard stop: error or second Ctrl-C
        self._cancel = threading.Event()  # soft stop: stop reading, drain the rest
        self._channels = [_Channel(capacity, self.live, self._stopping) for _ in range(3)]
        self.counters = {name: StageCounter(name) for name in STAGES}
        #: total milliseconds per engine step (preprocess, inference, upsample...)
        #: as the engine reports them, to show where the infer stage spends time
        self.engine_ms: dict[str, float] = {}
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._latencies: list[float] = []
        self._latency_lock = threading.Lock()
        self._signal: int | None = None
        #: the error that ended a live source for good (camera unplugged and not back)
        self._source_lost: LivematteError | None = None

    # ------------------------------------------------------------------ control

    def cancel(self, signum: int | None = None) -> None:
        """Stop reading new frames; frames in flight are finished and written."""
        self._signal = self._signal or signum
        self._cancel.set()

    def _fail(self, exc: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = exc
        self._stopping.set()
        for channel in self._channels:
            channel.wake()

    # ------------------------------------------------------------------ stages

    def _run_stage(self, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._fail(exc)

    def _decode(self) -> None:
        out = self._channels[0]
        counter = self.counters["decode"]
        frames: Iterator[Frame] = iter(self.source)
        started = time.monotonic()
        while not (self._cancel.is_set() or self._stopping.is_set()):
            if self.duration is not None and time.monotonic() - started >= self.duration:
                break
            t0 = time.perf_counter()
            try:
                frame = next(frames, None)
            except LivematteError as exc:
                if not self.live:
                    raise
                # a live session's recording is complete up to here: end it, keep what was written
                self._source_lost = exc
                break
            if frame is None:
                break
            counter.busy_s += time.perf_counter() - t0
            counter.frames += 1
            if not out.put(_Item(frame, time.monotonic())):
                return
        out.put(_END)

    def _stage(self, name: str, index: int, work: Callable[[_Item], None]) -> None:
        """Generic middle stage: take from channel ``index``, work, pass on."""
        source, out = self._channels[index], self._channels[index + 1]
        counter = self.counters[name]
        while True:
            item = source.get()
            if item is _STOPPED:
                return
            if item is _END:
                out.put(_END)
                return
            t0 = time.perf_counter()
            work(item)
            counter.busy_s += time.perf_counter() - t0
            counter.frames += 1
            if not out.put(item):
                return

    def _infer(self, item: _Item) -> None:
        result = self.matter.infer(item.frame.rgb)
        item.alpha = result.alpha
        # only a full-resolution foreground (the quality mode's) beats the
        # compositor's own decontamination; a graph-resolution one would blur the edges
        foreground = getattr(result, "foreground", None)
        if foreground is not None and foreground.shape[:2] == item.alpha.shape[:2]:
            item.foreground = foreground
        for step, ms in getattr(result, "timings", {}).items():
            self.engine_ms[step] = self.engine_ms.get(step, 0.0) + ms

    def _composite(self, item: _Item) -> None:
        matte = alpha_to_u8(item.alpha)  # once: the compositor and matte sinks share it
        if self.adjust is not None:
            matte = self.adjust(matte)
        item.image = self.compositor.compose(item.frame.rgb, matte, item.foreground)
        if self.matte_sinks:
            item.matte = matte
        item.frame.rgb = None  # type: ignore[assignment]  # free the input early
        item.alpha = item.foreground = None

    def _encode(self) -> None:
        source = self._channels[2]
        counter = self.counters["encode"]
        while True:
            item = source.get()
            if item is _STOPPED or item is _END:
                return
            t0 = time.perf_counter()
            for sink in self.sinks:
                sink.write(item.image, item.frame.pts)
            for sink in self.matte_sinks:
                sink.write(item.matte, item.frame.pts)
            done = time.perf_counter()
            counter.busy_s += done - t0
            counter.frames += 1
            if self.live:
                with self._latency_lock:
                    self._latencies.append(time.monotonic() - item.captured)

    # ------------------------------------------------------------------ run

    def run(self) -> PipelineResult:
        """Run to the end (or until cancelled) and finalise the sinks.

        Raises the first stage error after aborting every sink (no partial
        file is kept). On Ctrl-C/SIGTERM the outputs are finalised and the
        result says ``interrupted``.
        """
        threads = [
            threading.Thread(target=self._run_stage, args=(self._decode,), name="livematte-decode", daemon=True),
            threading.Thread(
                target=self._run_stage, args=(lambda: self._stage("infer", 0, self._infer),), name="livematte-infer", daemon=True
            ),
            threading.Thread(
                target=self._run_stage,
                args=(lambda: self._stage("composite", 1, self._composite),),
                name="livematte-composite",
                daemon=True,
            ),
            threading.Thread(target=self._run_stage, args=(self._encode,), name="livematte-encode", daemon=True),
        ]
        # the stages already keep every core busy, so OpenCV's own worker pool only
        # adds hand-offs between them (2 cores: no change when idle, 7-17% more
        # fps end to end while another process loads the machine)
        opencv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        started = time.monotonic()
        try:
            with _signals_cancel(self):
                for thread in threads:
                    thread.start()
                self._wait(threads, started)
        finally:
            cv2.setNumThreads(opencv_threads)
        elapsed = time.monotonic() - started
        self.source.close()
        return self._finish(elapsed)

    def _wait(self, threads: list[threading.Thread], started: float) -> None:
        """Join the stages while reporting; Ctrl-C once drains, twice aborts."""
        next_report = started + self.report_every
        last_frames, last_time = 0, started
        encode = threads[-1]  # the last stage ends after every other one
        while encode.is_alive():
            try:
                encode.join(0.05)
                now = time.monotonic()
                if now >= next_report:
                    done = self.counters["encode"].frames
                    self._report(done, (done - last_frames) / (now - last_time))
                    last_frames, last_time, next_report = done, now, now + self.report_every
            except KeyboardInterrupt:
                if self._cancel.is_set():
                    self._fail(KeyboardInterrupt())  # second Ctrl-C: stop now
                else:
                    self.cancel(signal.SIGINT)
        self._stopping.set()  # a source blocked on a dead stream must not hold us
        for thread in threads:
            thread.join(1.0)

    def _report(self, done: int, rate: float) -> None:
        if self.live and self.on_live_stats:
            with self._latency_lock:
                latencies, self._latencies = self._latencies, []
            latency = 1000.0 * float(np.mean(latencies)) if latencies else 0.0
            self.on_live_stats(LiveStats(rate, latency, self.dropped, done))
        elif not self.live and self.on_progress:
            self.on_progress(done, self.source.frame_count, rate)

    @property
    def dropped(self) -> int:
        return sum(channel.dropped for channel in self._channels)

    def _finish(self, elapsed: float) -> PipelineResult:
        sinks = self.sinks + self.matte_sinks
        error = self._error
        if error is not None and not isinstance(error, KeyboardInterrupt):
            for sink in sinks:
                sink.abort()
            raise error
        interrupted = self._cancel.is_set() or error is not None or self._source_lost is not None
        finalise_error: BaseException | None = None
        for sink in sinks:
            try:
                sink.close(complete=not interrupted)
            except BaseException as exc:  # noqa: BLE001 - close the rest first
                finalise_error = finalise_error or exc
        if self._source_lost is not None:
            raise self._source_lost  # the cause, even when it left a sink with nothing to keep
        if finalise_error is not None:
            raise finalise_error
        return PipelineResult(
            frames_in=self.counters["decode"].frames,
            frames_out=self.counters["encode"].frames,
            dropped=self.dropped,
            decode_errors=self.source.decode_errors,
            interrupted=interrupted,
            elapsed_s=elapsed,
            stages=dict(self.counters),
            signal=self._signal if interrupted else None,
        )


class _signals_cancel:
    """While the pipeline runs, SIGTERM cancels it like Ctrl-C does (only
    possible from the main thread; elsewhere signals keep their handlers)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._previous: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, lambda signum, _frame: self._pipeline.cancel(signum))

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
