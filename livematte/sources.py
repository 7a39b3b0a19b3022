"""Where frames come from: video files, webcams and network streams.

Every source yields :class:`~livematte.frame.Frame` objects (upright RGB,
pts in seconds) so the pipeline never needs to know what it is reading.
Files are read with PyAV so timestamps, rotation and variable frame rate
survive; webcams go through OpenCV because that is what opens cameras the
same way on Linux, Windows and macOS; network streams use PyAV with
timeouts so a dead sender cannot hang the program.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import re
import threading
import time
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from livematte import ffmpeg_threads
from livematte.errors import DeviceError, InputError
from livematte.frame import Frame, Size

log = logging.getLogger(__name__)

#: URL schemes PyAV/FFmpeg can read live video from.
STREAM_SCHEMES = ("udp", "rtp", "rtsp", "rtmp", "http", "https", "srt", "tcp")


class Source(ABC):
    """A sequence of frames plus what sinks need to reproduce its timing.

    ``live`` sources (cameras, streams) run in real time and may drop frames;
    file sources must be processed completely and in order.
    """

    live: bool = False
    #: nominal frames per second (average for variable frame rate)
    fps: float = 30.0
    #: frame size after rotation
    size: Size = Size(0, 0)
    #: number of frames when known in advance (progress bars), else None
    frame_count: int | None = None
    #: time base the source's pts were expressed in, reused by file sinks so
    #: output timestamps equal input timestamps exactly
    time_base: Fraction = Fraction(1, 90000)
    #: frames that could not be decoded and were skipped
    decode_errors: int = 0
    #: path of a file whose audio a sink may copy, or None
    audio_path: str | None = None
    #: a recorded stream's audio as it arrives, for a sink to copy, or None
    live_audio: "LiveAudio | None" = None
    #: frames a recorded stream lost before they reached us (gaps in its timestamps)
    missing_frames: int = 0
    #: seconds a read may stay inside FFmpeg after the source was closed (a network
    #: stream's read timeout); 0 when reads return promptly
    blocking_read_s: float = 0.0

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Yield frames until the source ends or :meth:`close` is called."""

    @abstractmethod
    def close(self) -> None:
        """Release the file, camera or socket; safe to call twice."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _upright(rgb: np.ndarray, rotation: float) -> np.ndarray:
    """Apply a display-matrix rotation (counter-clockwise degrees, as FFmpeg reports it)."""
    quarter_turns = int(round(rotation / 90.0)) % 4
    if quarter_turns == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=quarter_turns))


def _check_input_path(path: Path) -> None:
    """Reject what is obviously not a video before FFmpeg prints its own noise."""
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        raise InputError(f"input is a directory, not a video file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"input is an empty file (0 bytes): {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"input is not readable (permissions): {path}")


class _AVSource(Source):
    """Shared PyAV decoding for files and network streams."""

    def __init__(self, container: "av.container.InputContainer", label: str) -> None:
        self._container = container
        self._label = label
        videos = container.streams.video
        if not videos:
            container.close()
            raise InputError(f"no video stream in {label} (audio-only, truncated or not a video)")
        self._stream = videos[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        self.fps = float(rate) if rate else 30.0
        self.time_base = self._stream.time_base or Fraction(1, 90000)
        self._closed = False
        self._seek_to: float | None = None
        self._packet_iter = self._packets()
        #: frames decoded ahead of iteration (the first packet can yield several)
        self._pending: list["av.VideoFrame"] = []
        first = self._peek()
        if first is None:
            container.close()
            raise InputError(f"no decodable video frame in {label}: file is damaged or truncated")
        self._rotation = float(first.rotation or 0)
        w, h = first.width, first.height
        self.size = Size(h, w) if int(round(self._rotation / 90.0)) % 2 else Size(w, h)

    def _peek(self) -> "av.VideoFrame | None":
        """Decode the first frame now: its rotation fixes the output size sinks
        need before anything is written, and a file with no decodable frame
        is rejected at open time instead of producing an empty output. Every
        frame that packet gave is kept: a short clip or a large frame decoded
        with frame threads comes out all at once at the final flush."""
        for packet in self._packet_iter:
            self._pending = self._decode(packet)
            if self._pending:
                return self._pending[0]
        return None

    def seek(self, seconds: float) -> None:
        """Continue from the key frame at or before ``seconds`` (file sources).

        Frames before ``seconds`` are decoded but not yielded, so the first
        frame yielded is the one showing that time.
        """
        offset = int(seconds / self.time_base)
        self._container.seek(offset, stream=self._stream, backward=True, any_frame=False)
        self._stream.codec_context.flush_buffers()
        self._packet_iter = self._packets()
        self._pending = []
        self._seek_to = seconds

    def _frames(self) -> Iterator["av.VideoFrame"]:
        pending, self._pending = self._pending, []
        yield from pending
        for packet in self._packet_iter:
            yield from self._decode(packet)

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for frame in self._frames():
            if self._closed:
                return
            # absolute pts (not shifted to 0): copied audio packets keep theirs too
            pts = None if frame.pts is None else float(frame.pts * self.time_base)
            if self._seek_to is not None and pts is not None and pts < self._seek_to - 1e-6:
                continue
            rgb = _upright(frame.to_ndarray(format="rgb24"), frame.rotation or self._rotation)
            yield Frame(rgb=rgb, pts=pts, index=index)
            index += 1

    def _packets(self) -> Iterator["av.Packet"]:
        demuxer = self._container.demux(self._stream)
        while True:
            try:
                packet = next(demuxer)
            except StopIteration:
                return
            except av.error.EOFError:
                return
            except (av.error.InvalidDataError, av.error.OSError) as exc:
                # A truncated file ends with a damaged packet: stop, keep what we have.
                self.decode_errors += 1
                log.warning("stopped reading %s at a damaged packet: %s", self._label, exc)
                return
            yield packet  # includes the flush packet (size 0) at the end

    def _decode(self, packet: "av.Packet") -> list["av.VideoFrame"]:
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            self.decode_errors += 1
            log.debug("skipped undecodable packet in %s: %s", self._label, exc)
            return []
        if packet.is_corrupt or any(frame.is_corrupt for frame in frames):
            # damage the demuxer or decoder noticed but concealed: keep the frames, count the damage
            self.decode_errors += 1
        return frames

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()


def _is_still_image(demuxer: str) -> bool:
    """FFmpeg opened a photo: its image demuxers (``image2`` for a plain path,
    ``png_pipe``, ``tiff_pipe``... when probed) read one frame and know no
    frame count. A GIF can move, so it is left to its stream's count."""
    return demuxer == "image2" or (demuxer.endswith("_pipe") and demuxer != "gif_pipe")


class FileSource(_AVSource):
    """A video file decoded with PyAV; its audio stream is left for the sink to copy."""

    live = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        _check_input_path(p)
        try:
            container = av.open(str(p), mode="r")
        except av.error.FFmpegError as exc:
            raise InputError(f"not a readable video file: {p} ({_ffmpeg_reason(exc)})") from None
        super().__init__(container, str(p))
        if _is_still_image(container.format.name):
            self.frame_count = 1
        elif self._stream.frames:
            self.frame_count = int(self._stream.frames)
        elif self._stream.duration and self.fps:
            self.frame_count = int(round(float(self._stream.duration * self.time_base) * self.fps))
        elif container.duration and self.fps:
            self.frame_count = int(round(container.duration / av.time_base * self.fps))
        self.audio_path = str(p) if container.streams.audio else None


class PacedFileSource(FileSource):
    """A video file standing in for a camera (``webcam --device clip.mp4``):
    frames come at the file's own rate, as a camera would deliver them, so the
    live pipeline drops only what it cannot keep up with, not what a decoder
    running flat out produced too early."""

    live = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self.audio_path = None  # a live session records no audio

    def __iter__(self) -> Iterator[Frame]:
        start: float | None = None
        first_pts = 0.0
        for frame in super().__iter__():
            if start is None:
                start, first_pts = time.monotonic(), frame.pts or 0.0
            elif frame.pts is not None:
                wait = start + (frame.pts - first_pts) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            yield frame


class LiveAudio:
    """A recorded stream's audio packets, buffered as the network delivers
    them, on the recording's clock (the first video frame is time 0).

    Audio travels behind the video (the sender's encoder delay and PES
    buffering: 0.76 s measured on 127.0.0.1), so the stream is read for up
    to ``TAIL_S`` more after the last video frame, and a recording waits for
    that long for its audio to reach the end of its video."""

    TAIL_S = 1.5

    def __init__(self, stream: "av.audio.stream.AudioStream") -> None:
        self.stream = stream
        self._shift = 0
        self._packets: collections.deque["av.Packet"] = collections.deque()
        self._last_dts: int | None = None

    def start_at(self, origin: float) -> None:
        """Time 0 of the recording, in seconds of the stream's clock (known once the first frame is decoded)."""
        self._shift = int(round(origin / self.stream.time_base)) if self.stream.time_base else 0

    def put(self, packet: "av.Packet") -> None:
        if packet.pts is not None and packet.dts is not None:  # not the demuxer's flush packet
            self._packets.append(packet)

    def take(self) -> "av.Packet | None":
        """The next packet that has arrived, on the recording's clock, or None for "nothing yet"."""
        while self._packets:
            packet = self._packets.popleft()
            if packet.pts < self._shift:
                continue  # before the recording's first frame
            if self._last_dts is not None and packet.dts - self._shift <= self._last_dts:
                continue  # the sender's clock restarted: the muxer needs increasing times
            packet.pts -= self._shift
            packet.dts -= self._shift
            self._last_dts = packet.dts
            return packet
        return None


_READ_DONE = object()  # the packet reader's last item


class StreamSource(_AVSource):
    """A network stream (udp/rtsp/http/srt...) read live through PyAV.

    ``open_timeout`` bounds how long we wait for the first data (a stream that
    never starts is an input error), ``read_timeout`` how long a running
    stream may stall before it counts as dropped. A dropped stream is
    reopened with back-off for up to ``reconnect_for`` seconds; meanwhile the
    last good frame is repeated at the stream's rate, so a virtual camera fed
    from it keeps emitting instead of freezing the call. Frame pts are wall
    clock seconds since the source started, which stays monotonic across
    reconnects (the sender's own clock restarts).
    """

    live = True
    #: the longest pause between two reconnect attempts (they start 0.25 s apart and double)
    RECONNECT_BACKOFF_S = 4.0

    def __init__(
        self, url: str, open_timeout: float = 10.0, read_timeout: float = 5.0, reconnect_for: float = 30.0,
        record: bool = False,
    ) -> None:
        self._url = url
        self._timeouts = (open_timeout, read_timeout)
        self.blocking_read_s = read_timeout + LiveAudio.TAIL_S
        self.reconnect_for = reconnect_for
        self.record = record
        self._reader: threading.Thread | None = None
        self._closed_at = 0.0
        #: how many times the stream dropped and came back
        self.reconnects = 0
        # A receiver that joins between key frames decodes nothing until the next one, which
        # can be further off than the read timeout (a loaded sender, a long GOP); a timed-out
        # read cannot be resumed, so reopen until the open timeout is spent.
        deadline = time.monotonic() + open_timeout
        has_video = False
        while True:
            try:
                container = self._connect(max(0.1, deadline - time.monotonic()))
            except av.error.ExitError:  # the open timeout's interrupt: nothing arrived
                if has_video:
                    raise InputError(f"no decodable video frame from {url} within {open_timeout:g} s") from None
                raise InputError(
                    f"no data from {url} within {open_timeout:g} s: is the sender running and sending to this "
                    "address and port?"
                ) from None
            except av.error.FFmpegError as exc:
                raise InputError(f"cannot open stream {url}: {_ffmpeg_reason(exc)}") from None
            has_video = bool(container.streams.video)
            try:
                super().__init__(container, url)
                self._start_recording()
                return
            except InputError:
                if not has_video or time.monotonic() >= deadline:
                    raise
                log.debug("no key frame from %s yet; reopening", url)

    def _connect(self, open_timeout: float) -> "av.container.InputContainer":
        # low latency drops what arrived while the stream was being probed: fine live, not in a recording
        options = {} if self.record else {"fflags": "nobuffer", "flags": "low_delay"}
        if self._url.startswith("rtsp://"):
            options["rtsp_transport"] = "tcp"
        return av.open(self._url, mode="r", options=options, timeout=(open_timeout, self._timeouts[1]))

    def _start_recording(self) -> None:
        """A recording keeps the sender's clock, so the audio lines up, and its audio."""
        first = self._pending[0]
        self._origin = float(first.pts * self.time_base) if first.pts is not None else 0.0
        if self.live_audio is not None:
            self.live_audio.start_at(self._origin)

    def _demux(self) -> Iterator["av.Packet"]:
        """Video packets until the stream ends or stalls; a recording's audio packets go to ``live_audio``."""
        audio = self._container.streams.audio[0] if self.record and self._container.streams.audio else None
        if audio is not None and self.live_audio is None:
            self.live_audio = LiveAudio(audio)
        demuxer = self._container.demux(*([self._stream, audio] if audio is not None else [self._stream]))
        while not self._closed or (audio is not None and time.monotonic() - self._closed_at < LiveAudio.TAIL_S):
            try:
                packet = next(demuxer)
            except (StopIteration, av.error.EOFError):
                return
            except av.error.ExitError:
                # the read timeout's interrupt callback fired: the sender went away
                log.warning("stream %s stopped sending", self._label)
                return
            except (av.error.InvalidDataError, av.error.OSError) as exc:
                self.decode_errors += 1
                log.debug("skipped damaged data in %s: %s", self._label, exc)
                continue
            if audio is not None and packet.stream is audio:
                self.live_audio.put(packet)
                continue
            yield packet

    def _packets(self) -> Iterator["av.Packet"]:
        if not self.record:
            yield from self._demux()
            return
        # A recording is never dropped inside the program: a reader thread keeps taking
        # packets off the network (compressed, small) while the pipeline works through them.
        packets: queue.SimpleQueue = queue.SimpleQueue()
        container = self._container

        def read() -> None:
            try:
                for packet in self._demux():
                    packets.put(packet)
            finally:
                packets.put(_READ_DONE)
                if self._closed:  # closed while this thread was reading: it owns the container
                    container.close()
                ffmpeg_threads.finished()

        self._reader = threading.Thread(target=read, name="livematte-stream-reader", daemon=True)
        ffmpeg_threads.started(self._reader, self.blocking_read_s)
        self._reader.start()
        while (packet := packets.get()) is not _READ_DONE:
            yield packet
        flush = av.Packet()  # the frames still inside the decoder when the stream stopped
        flush.stream = self._stream
        yield flush

    def _recorded_pts(self, frame: "av.VideoFrame", previous: float | None) -> float | None:
        """The frame's time on the sender's clock from the first frame; a jump of
        more than half a frame past the next one counts the frames lost."""
        if frame.pts is None:
            return None
        pts = float(frame.pts * self.time_base) - self._origin
        if previous is not None and self.fps:
            missing = round((pts - previous) * self.fps) - 1
            if 0 < missing < 10 * self.fps:  # larger: the sender restarted its clock
                self.missing_frames += missing
        return pts

    def __iter__(self) -> Iterator[Frame]:
        started = time.monotonic()
        index = 0
        last: np.ndarray | None = None
        previous: float | None = None
        while not self._closed:
            for frame in self._frames():
                if self._closed:
                    return
                rgb = _upright(frame.to_ndarray(format="rgb24"), frame.rotation or self._rotation)
                if (rgb.shape[1], rgb.shape[0]) != self.size:  # the sender restarted at another size
                    rgb = _fit(rgb, self.size)
                last = rgb
                if self.record:
                    pts = previous = self._recorded_pts(frame, previous)
                else:
                    pts = time.monotonic() - started
                yield Frame(rgb=rgb, pts=pts, index=index)
                index += 1
            if self._closed or self.reconnect_for <= 0:
                return
            for held in self._reconnect(last):
                yield Frame(rgb=held, pts=time.monotonic() - started, index=index, held=True)
                index += 1
            if self._container is None:
                return

    def _reconnect(self, last: np.ndarray | None) -> Iterator[np.ndarray]:
        """Reopen in a helper thread (opening blocks) while yielding ``last``
        at the stream's rate; ends with ``self._container`` set, or None when
        ``reconnect_for`` ran out."""
        self._container.close()
        self._container = None  # type: ignore[assignment]
        result: list["av.container.InputContainer"] = []
        deadline = time.monotonic() + self.reconnect_for

        def reopen() -> None:
            delay = 0.25
            try:
                while not self._closed and time.monotonic() < deadline:
                    try:
                        result.append(self._connect(min(self._timeouts[0], max(0.1, deadline - time.monotonic()))))
                        return
                    except av.error.FFmpegError:
                        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                        delay = min(delay * 2, self.RECONNECT_BACKOFF_S)
            finally:
                ffmpeg_threads.finished()

        thread = threading.Thread(target=reopen, name="livematte-reconnect", daemon=True)
        ffmpeg_threads.started(thread, self._timeouts[0] + self.RECONNECT_BACKOFF_S)  # an open, or a back-off sleep
        thread.start()
        period = 1.0 / (self.fps or 30.0)
        while thread.is_alive() and not self._closed:
            if last is not None:
                yield last
            thread.join(period)
        if not result:
            log.warning("stream %s did not come back within %.0f s", self._label, self.reconnect_for)
            return
        container = result[0]
        if self._closed or not container.streams.video:
            container.close()
            return
        self.reconnects += 1
        log.warning("stream %s reconnected", self._label)
        self._container = container
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._packet_iter = self._packets()
        self._pending = []

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._closed_at = time.monotonic()
            reading = self._reader is not None and self._reader.is_alive()
            if self._container is not None and not reading:  # else the reader closes it when its read returns
                self._container.close()


def _fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class CameraSource(Source):
    """A webcam through OpenCV, by index (``0``) or device path (``/dev/video2``).

    The requested size and fps are a wish: cameras pick the nearest mode they
    have, and :attr:`size`/:attr:`fps` report what was actually granted.
    """

    live = True

    def __init__(
        self,
        device: int | str,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        retries: int = 5,
    ) -> None:
        self._device = device
        self._requested = (size, fps)
        self._retries = retries
        self._cap = self._open()
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = Size(width, height)
        granted = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(granted) if granted and granted > 0 else float(fps or 30.0)
        self._closed = False

    def _open(self) -> "cv2.VideoCapture":
        with _opencv_quiet():
            cap = cv2.VideoCapture(self._device)
        if not cap.isOpened():
            cap.release()
            raise DeviceError(
                f"cannot open camera {self._device}: it does not exist or another program is using it"
            )
        size, fps = self._requested
        if size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # stale buffered frames add latency
        return cap

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        start = time.monotonic()
        failures = 0
        last: np.ndarray | None = None
        while not self._closed:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                failures += 1
                if self._closed:
                    return
                if failures > self._retries:
                    raise DeviceError(f"camera {self._device} stopped delivering frames (unplugged?)")
                delay = 0.2 * 2 ** (failures - 1)
                log.warning("camera %s delivered no frame; reopening in %.1f s", self._device, delay)
                for held in self._hold(last, delay):
                    yield Frame(rgb=held, pts=time.monotonic() - start, index=index, held=True)
                    index += 1
                self._reopen()
                continue
            failures = 0
            last = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield Frame(rgb=last, pts=time.monotonic() - start, index=index)
            index += 1

    def _hold(self, last: np.ndarray | None, seconds: float) -> Iterator[np.ndarray]:
        """Back off for ``seconds`` while repeating the last good frame at the
        camera's rate, so a virtual camera fed from it keeps emitting."""
        period = 1.0 / (self.fps or 30.0)
        deadline = time.monotonic() + seconds
        while not self._closed and time.monotonic() < deadline:
            if last is not None:
                yield last
            time.sleep(min(period, max(0.0, deadline - time.monotonic())))

    def _reopen(self) -> None:
        """Reopen after a back-off: a camera unplugged for a moment comes back."""
        self._cap.release()
        try:
            self._cap = self._open()
        except DeviceError:
            self._cap = cv2.VideoCapture()  # closed handle: next read fails and retries

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cap.release()


@contextlib.contextmanager
def _opencv_quiet() -> Iterator[None]:
    """Silence OpenCV's own log while a camera opens: a missing camera makes it
    print several WARN lines, and the DeviceError already says it in one.
    ``--debug`` (livematte logging at DEBUG) keeps them."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's reason without the file name it repeats."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return reason.strip().rstrip(".")


def parse_camera(spec: str) -> int | str:
    """``"0"`` → camera index 0; anything else (``/dev/video2``) is a device path."""
    return int(spec) if re.fullmatch(r"\d+", spec) else spec


def is_stream_url(spec: str) -> bool:
    """True for ``udp://``, ``rtsp://``, ``http(s)://``, ``srt://`` ... URLs."""
    scheme, sep, _ = spec.partition("://")
    return bool(sep) and scheme.lower() in STREAM_SCHEMES


def open_live_device(spec: str, size: tuple[int, int] | None = None, fps: float | None = None) -> Source:
    """What ``webcam --device`` names: a stream URL, a video file (played at
    its own rate), or a camera index or device path (``size``/``fps`` apply)."""
    if is_stream_url(spec):
        return StreamSource(spec)
    if not spec.startswith("/dev/") and Path(spec).is_file():
        return PacedFileSource(spec)
    return CameraSource(parse_camera(spec), size=size, fps=fps)


def open_source(
    spec: str,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    open_timeout: float = 10.0,
) -> Source:
    """Open a file path, stream URL, ``camera:N`` / ``/dev/videoN`` device,
    or an image sequence (a folder of numbered images, or ``dir/name%06d.png``).

    ``size`` only applies to cameras; ``fps`` to cameras and image sequences
    (files and streams keep their own rate, and refuse another).
    """
    from livematte.sequence_source import ImageSequenceSource, is_sequence_input

    if spec.startswith("camera:"):
        return CameraSource(parse_camera(spec[len("camera:"):]), size=size, fps=fps)
    if spec.startswith("/dev/video"):
        return CameraSource(spec, size=size, fps=fps)
    if not is_stream_url(spec) and is_sequence_input(spec):
        return ImageSequenceSource(spec, fps)
    if fps is not None:
        raise InputError(f"a frame rate is for an image sequence or a camera; {spec} keeps its own")
    if is_stream_url(spec):
        return StreamSource(spec, open_timeout=open_timeout, record=True)
    return FileSource(spec)
