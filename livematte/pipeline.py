"""decode → stages (matte, composite, ...) → encode, each in its own thread.

The job's steps between reading and writing are an ordered list of
:class:`~livematte.stages.Stage` objects; reading the source, each stage and
writing the sinks run in their own threads, joined by small bounded
channels. For files every channel blocks when full (back-pressure: nothing
is dropped, order is kept, so the output has exactly the input's frames). For live sources every channel keeps only
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
import functools
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

from livematte import ffmpeg_threads
from livematte.errors import LivematteError
from livematte.frame import Frame
from livematte.interrupts import Interrupted, StopRequests
from livematte.sinks import Sink
from livematte.sources import Source
from livematte.stages import Stage, Work

#: the counters of a real-time job: reading, the matte and composite stages, writing
STAGES = ("decode", "infer", "composite", "encode")


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
    #: frames a recorded stream lost on the network (gaps in its timestamps)
    missing_frames: int = 0
    #: seconds spent before the job could start (the quality mode's first compile), not in ``elapsed_s``
    preparing_s: float = 0.0
    #: total milliseconds per engine step (preprocess, inference, upsample...) over the frames written
    engine_ms: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_out / self.elapsed_s if self.elapsed_s > 0 else 0.0


_END = object()  # end of stream, travels through every stage
_STOPPED = object()  # returned by a channel once the pipeline is stopping


class _HardStop(Exception):
    """Raised into a stage that asks for its next frame once the pipeline stops hard."""


class _Channel:
    """Bounded hand-off between two stages: blocking (files) or drop-oldest (live).

    The upstream stage ends the stream with :meth:`close`; so can the caller,
    when a live source hangs in a read and the frames already taken must still
    reach the outputs."""

    def __init__(self, capacity: int, drop_oldest: bool, stopping: threading.Event) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._capacity = capacity
        self._drop_oldest = drop_oldest
        self._stopping = stopping
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> bool:
        """False when the pipeline is stopping or the channel was closed; the item was not queued."""
        with self._cond:
            while len(self._items) >= self._capacity:
                if self._stopping.is_set() or self._closed:
                    return False
                if self._drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                    break
                self._cond.wait(0.1)
            if self._stopping.is_set() or self._closed:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self) -> Any:
        """The next item; ``_END`` once closed and empty, ``_STOPPED`` on a hard stop."""
        with self._cond:
            while not self._items:
                if self._stopping.is_set():
                    return _STOPPED
                if self._closed:
                    return _END
                self._cond.wait(0.1)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """End of stream: what is queued is still delivered, nothing more is accepted."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class Pipeline:
    """Runs one job from ``source`` through ``stages``, in order, to ``sinks``.

    ``stages`` end with the composite stage (:mod:`livematte.stages`);
    ``matte_sinks`` receive its 8-bit matte instead of the composite.
    ``live`` (live stats instead of a progress bar) defaults to
    the source's own kind; ``drop_frames`` (drop the oldest frame rather
    than queue) defaults to ``live``: a recording of a live stream keeps
    every frame. ``duration`` stops after that many seconds: wall clock when
    frames are dropped (a live session), else media time, which cuts video
    and audio alike. ``on_progress(done, total, fps)`` and
    ``on_live_stats(LiveStats)`` are called from the caller's thread about
    every ``report_every`` seconds.
    """

    #: how long a live source hanging in a read may hold up the end of a stopped job
    #: (twice: before the frames already read are sent on without it, and before leaving it)
    SOURCE_GRACE_S = 0.3

    def __init__(
        self,
        source: Source,
        stages: Sequence[Stage],
        sinks: Sequence[Sink],
        matte_sinks: Sequence[Sink] = (),
        live: bool | None = None,
        queue_size: int | None = None,
        duration: float | None = None,
        on_progress: Callable[[int, int | None, float], None] | None = None,
        on_live_stats: Callable[[LiveStats], None] | None = None,
        report_every: float = 1.0,
        drop_frames: bool | None = None,
    ) -> None:
        self.source = source
        self.stages = list(stages)
        self.sinks = list(sinks)
        self.matte_sinks = list(matte_sinks)
        self.live = source.live if live is None else live
        self.drop_frames = self.live if drop_frames is None else drop_frames
        self.duration = duration
        self.on_progress = on_progress
        self.on_live_stats = on_live_stats
        self.report_every = report_every
        capacity = queue_size or (1 if self.drop_frames else 4)
        self._stopping = threading.Event()  # hard stop: error or second Ctrl-C
        self._cancel = threading.Event()  # soft stop: stop reading, drain the rest
        self._time_up = threading.Event()  # --duration reached: stop reading, a normal end
        self._read_to_end = False
        self._channels = [_Channel(capacity, self.drop_frames, self._stopping) for _ in range(len(self.stages) + 1)]
        names = ["decode", *(stage.name for stage in self.stages), "encode"]
        self.counters = {name: StageCounter(name) for name in names}
        #: total milliseconds per engine step (preprocess, inference, upsample...)
        #: as the engine reports them, to show where the infer stage spends time
        self.engine_ms: dict[str, float] = {}
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._latencies: list[float] = []
        self._latency_lock = threading.Lock()
        self._signal: int | None = None
        self._held = 0  # repeated frames of a reconnecting source: live outputs only
        #: the error that ended a live source for good (camera unplugged and not back)
        self._source_lost: LivematteError | None = None

    # ------------------------------------------------------------------ control

    def cancel(self, signum: int | None = None) -> None:
        """Stop reading new frames; frames in flight are finished and written."""
        self._signal = self._signal or signum
        self._cancel.set()

    def abort(self, signum: int | None = None) -> None:
        """Stop at once and discard the outputs (a second Ctrl-C)."""
        self._signal = self._signal or signum
        self._cancel.set()
        self._fail(Interrupted(self._signal or signal.SIGINT, "interrupted twice: stopped at once, nothing kept"))

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
        except KeyboardInterrupt:  # the user closed the preview window: stop, keep the outputs
            self.cancel(signal.SIGINT)
            self._stopping.set()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._fail(exc)

    def _decode(self) -> None:
        """Reads the source and, as its only user, closes it: closing a
        camera or stream from another thread while a read is under way crashes."""
        try:
            self._read_frames(self._channels[0])
        finally:
            self._channels[0].close()
            self.source.close()
            ffmpeg_threads.finished()

    def _read_frames(self, out: _Channel) -> None:
        counter = self.counters["decode"]
        frames: Iterator[Frame] = iter(self.source)
        started = time.monotonic()
        first_pts: float | None = None
        while not (self._cancel.is_set() or self._time_up.is_set() or self._stopping.is_set()):
            if self.drop_frames and self.duration is not None and time.monotonic() - started >= self.duration:
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
                self._read_to_end = True
                break
            if self._cancel.is_set() or self._time_up.is_set():
                break
            if not self.drop_frames and self.duration is not None and frame.pts is not None:
                first_pts = frame.pts if first_pts is None else first_pts
                if frame.pts - first_pts >= self.duration - 1e-6:  # media time, as the audio is cut
                    break
            counter.busy_s += time.perf_counter() - t0
            counter.frames += 1
            if not out.put(Work(frame, time.monotonic())):
                return

    def _stage(self, index: int) -> None:
        """Run stage ``index`` between its two channels, counting only its own time.

        The stage pulls frames from an iterator over its input channel; the
        time it spends waiting there is not its work. The iterator ends when
        the input does (the stage then hands on what it holds) and raises
        when the pipeline stops hard (the stage must not finish frames that
        nobody will write); either way the stage's own iterator is closed.
        """
        stage, source, out = self.stages[index], self._channels[index], self._channels[index + 1]
        counter = self.counters[stage.name]
        waited = 0.0

        def arriving() -> Iterator[Work]:
            nonlocal waited
            while True:
                t0 = time.perf_counter()
                item = source.get()
                waited += time.perf_counter() - t0
                if item is _STOPPED:
                    raise _HardStop
                if item is _END:
                    return
                yield item

        leaving = stage.run(arriving())
        try:
            while True:
                t0, waited_before = time.perf_counter(), waited
                item = next(leaving, None)
                if item is None:
                    return
                counter.busy_s += time.perf_counter() - t0 - (waited - waited_before)
                counter.frames += 1
                if not out.put(item):
                    return
        except _HardStop:
            return
        finally:
            leaving.close()
            out.close()

    def _encode(self) -> None:
        source = self._channels[-1]
        counter = self.counters["encode"]
        while True:
            item = source.get()
            if item is _STOPPED or item is _END:
                return
            t0 = time.perf_counter()
            held = item.frame.held
            self._held += held
            for sink in self.sinks:
                if sink.live or not held:  # a recording gets no frozen frames while a source reconnects
                    sink.write(item.image, item.frame.pts)
            for sink in self.matte_sinks:
                if not held:
                    sink.write(item.alpha, item.frame.pts)
            done = time.perf_counter()
            counter.busy_s += done - t0
            counter.frames += 1
            for step, ms in item.timings.items():
                self.engine_ms[step] = self.engine_ms.get(step, 0.0) + ms
            if self.live:
                with self._latency_lock:
                    self._latencies.append(time.monotonic() - item.captured)

    # ------------------------------------------------------------------ run

    def run(self) -> PipelineResult:
        """Run to the end (or until cancelled) and finalise the sinks.

        Raises the first stage error after aborting every sink (no partial
        file is kept). On Ctrl-C/SIGTERM the outputs are finalised and the
        result says ``interrupted``; a second one aborts them and raises
        :class:`~livematte.interrupts.Interrupted`. Sinks are closed only
        once no stage can touch them any more.
        """
        decode = threading.Thread(target=self._run_stage, args=(self._decode,), name="livematte-decode", daemon=True)
        if self.source.blocking_read_s:  # a stopped job may leave this thread inside a network read
            ffmpeg_threads.started(decode, self.source.blocking_read_s)
        workers = [
            threading.Thread(target=self._run_stage, args=(functools.partial(self._stage, index),),
                             name=f"livematte-{stage.name}", daemon=True)
            for index, stage in enumerate(self.stages)
        ]
        workers.append(threading.Thread(target=self._run_stage, args=(self._encode,), name="livematte-encode", daemon=True))
        # the stages already keep every core busy, so OpenCV's own worker pool only
        # adds hand-offs between them (2 cores: no change when idle, 7-17% more
        # fps end to end while another process loads the machine)
        opencv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        started = time.monotonic()
        try:
            with StopRequests(self.cancel, self.abort):
                decode.start()
                for thread in workers:
                    thread.start()
                self._wait(decode, workers, started)
        finally:
            cv2.setNumThreads(opencv_threads)
        return self._finish(time.monotonic() - started)

    def _wait(self, decode: threading.Thread, workers: list[threading.Thread], started: float) -> None:
        """Wait for every stage while reporting. A stopped job whose live source
        hangs in a read is ended without it: the frames already read still go
        out, and the reader, which owns the source, closes it when the read returns."""
        next_report = started + self.report_every
        last_frames, last_time = 0, started
        stopped_at: float | None = None
        while any(thread.is_alive() for thread in workers):
            workers[-1].join(0.05)
            now = time.monotonic()
            if self.drop_frames and self.duration is not None and now - started >= self.duration:
                self._time_up.set()
            if (self._cancel.is_set() or self._time_up.is_set()) and decode.is_alive():
                stopped_at = stopped_at or now
                if now - stopped_at >= self.SOURCE_GRACE_S:
                    self._channels[0].close()
            if now >= next_report:
                done = self.counters["encode"].frames
                self._report(done, (done - last_frames) / (now - last_time))
                last_frames, last_time, next_report = done, now, now + self.report_every
        for thread in workers:
            thread.join()
        self._stopping.set()  # the reader stops at its next frame
        decode.join(self.SOURCE_GRACE_S)

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
        if error is not None:
            for sink in sinks:
                sink.abort()
            raise error
        interrupted = self._cancel.is_set() or self._source_lost is not None
        if self._signal is not None and self.counters["encode"].frames == 0:
            for sink in sinks:
                sink.abort()
            raise Interrupted(self._signal, "interrupted before any frame was written; nothing kept")
        finalise_error: BaseException | None = None
        for sink in sinks:
            try:
                sink.close(complete=self._read_to_end and not interrupted)
            except BaseException as exc:  # noqa: BLE001 - close the rest first
                finalise_error = finalise_error or exc
        if self._source_lost is not None:
            raise self._source_lost  # the cause, even when it left a sink with nothing to keep
        if finalise_error is not None:
            raise finalise_error
        return PipelineResult(
            frames_in=self.counters["decode"].frames,
            # what a recording holds; live outputs also showed the held frames
            frames_out=self.counters["encode"].frames - (self._held if any(not sink.live for sink in sinks) else 0),
            dropped=self.dropped,
            decode_errors=self.source.decode_errors,
            interrupted=interrupted,
            elapsed_s=elapsed,
            stages=dict(self.counters),
            signal=self._signal if interrupted else None,
            missing_frames=self.source.missing_frames,
            engine_ms=dict(self.engine_ms),
        )
