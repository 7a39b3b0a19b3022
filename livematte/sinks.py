"""Where composited frames go: video files, image sequences, a virtual camera,
an MPEG-TS stream or a preview window.

File outputs are written under a temporary name in the target directory and
renamed only when finished, so a failed or refused job never leaves a
half-written file under the name the user asked for. A job stopped with
Ctrl-C is still *finished*: the encoder is flushed and the file is playable.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
import cv2
import numpy as np

from livematte.errors import DeviceError, Hint, OutputError, first_line
from livematte.sources import LiveAudio, Source, is_stream_url

log = logging.getLogger(__name__)

#: extensions that mean "an image sequence" when used as a ``%06d`` pattern
IMAGE_EXTENSIONS = (".png",)


class Sink(ABC):
    """Consumes frames one by one; ``close`` finalises, ``abort`` discards."""

    #: frames written so far
    written: int = 0
    #: a live output (virtual camera, stream, preview) that must keep emitting;
    #: only live outputs get the repeated frames of a reconnecting source
    live: bool = False

    @abstractmethod
    def write(self, image: np.ndarray, pts: float | None) -> None:
        """Write one HxWx3 RGB or HxWx4 RGBA (or HxW grey) uint8 image."""

    @abstractmethod
    def close(self, complete: bool = True) -> None:
        """Finish the output (flush encoders, rename into place).

        ``complete=False`` means the job was interrupted: what was written is
        still finalised, but nothing is added past the last frame."""

    def abort(self) -> None:
        """Give up: release resources and remove anything partial. Default: close."""
        self.close()

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None or exc_type is KeyboardInterrupt:
            self.close(complete=exc_type is None)
        else:
            self.abort()


def _even(n: int) -> int:
    return n + (n & 1)


def _pad_even(image: np.ndarray) -> np.ndarray:
    """4:2:0 encoders need even sizes; repeat the last row/column instead of
    refusing odd-sized inputs (1 px more, never a crop of the picture)."""
    h, w = image.shape[:2]
    if not (h & 1 or w & 1):
        return image
    pad = [(0, h & 1), (0, w & 1)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pad, mode="edge")


def _video_frame(image: np.ndarray, yuv420: bool) -> "av.VideoFrame":
    """An encoder-ready frame. For a yuv420p encoder RGB is converted with
    OpenCV, about 5x faster than swscale for the same BT.601 limited-range
    result; anything else is left to the encoder's own conversion. An HxW
    image (a matte) becomes grey RGB, so the matte is the video's luma."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if yuv420 and image.ndim == 3 and image.shape[2] == 3 and not (image.shape[0] & 1 or image.shape[1] & 1):
        return av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
    fmt = "rgba" if image.ndim == 3 and image.shape[2] == 4 else "rgb24"
    return av.VideoFrame.from_ndarray(image, format=fmt)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputError(f"output exists: {path}", hint=Hint("overwrite", True, "to replace it"))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output directory does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory is not writable: {parent}")


def _default_permissions(path: Path) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; outputs should get
    the permissions any new file would (0666/0777 minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def _output_error(path: Path, exc: BaseException) -> OutputError:
    """One line for a write failure; disk full is the common one, so name it."""
    errno = getattr(exc, "errno", None)
    if errno == 28 or "No space left" in str(exc):
        return OutputError(f"disk full while writing {path}")
    return OutputError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}")


# --------------------------------------------------------------------------- files


def _temporary_beside(path: Path) -> Path:
    """A new hidden file next to ``path`` to write into; :func:`_put_in_place`
    renames it onto ``path`` once complete, so no half-written output ever
    carries the final name."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent or ".")
    except OSError as exc:
        raise _output_error(path, exc) from None
    os.close(fd)
    _default_permissions(Path(tmp))
    return Path(tmp)


def _put_in_place(tmp: Path, path: Path, written: int) -> None:
    """Rename a completed temporary onto its final name; with nothing written, leave nothing."""
    if written == 0:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"no frames were written; {path} not created")
    os.replace(tmp, path)


class _AudioTrack:
    """The input's first audio stream in the output, interleaved with the
    video by time so players never starve.

    Packets are copied untouched whenever the output container can hold the
    codec; only when it cannot (AAC into WebM) is the audio re-encoded, to
    Opus, the codec WebM players expect.
    """

    def __init__(self, source: "str | LiveAudio", output: "av.container.OutputContainer") -> None:
        self._live = source if isinstance(source, LiveAudio) else None
        self._input = None if self._live else av.open(source)
        in_stream = self._live.stream if self._live else self._input.streams.audio[0]
        codec = in_stream.codec_context.name
        supported = getattr(output, "supported_codecs", None) or {codec}
        self._output = output
        self._resampler: "av.AudioResampler | None" = None
        if codec in supported:
            self._out_stream = output.add_stream_from_template(in_stream)
        elif "opus" in supported:
            log.info("re-encoding %s audio to Opus: %s cannot hold %s", codec, output.format.name, codec)
            self._out_stream = output.add_stream("libopus", rate=48000)
            self._out_stream.layout = in_stream.layout.name if in_stream.layout.nb_channels <= 2 else "stereo"
            self._resampler = av.AudioResampler(format="flt", layout=self._out_stream.layout.name, rate=48000)
        else:
            if self._input is not None:
                self._input.close()
            raise ValueError(f"{codec} audio cannot be stored in {output.format.name}")
        self._packets = None if self._live else self._input.demux(in_stream)
        self._pending: "av.Packet | None" = None
        self._done = False

    def _next(self) -> "av.Packet | None":
        return self._live.take() if self._live else next(self._packets, None)

    def copy_until(self, seconds: float | None, wait_s: float = 0.0) -> None:
        """Mux every packet that starts before ``seconds`` (None: all of them;
        for a live stream, all that have arrived, waiting up to ``wait_s`` for
        the audio to reach ``seconds``)."""
        deadline = time.monotonic() + wait_s
        while not self._done:
            packet = self._pending or self._next()
            self._pending = None
            if packet is None and self._live and seconds is not None:
                if time.monotonic() >= deadline:
                    break  # more is on its way
                time.sleep(0.02)
                continue
            if packet is None:
                self._done = True
                self._flush()
                break
            if packet.dts is None:  # the demuxer's final flush packet
                continue
            start = float(packet.pts * packet.time_base) if packet.pts is not None else None
            if seconds is not None and start is not None and start >= seconds:
                self._pending = packet
                break
            self._write(packet)

    def _write(self, packet: "av.Packet") -> None:
        if self._resampler is None:
            packet.stream = self._out_stream
            self._output.mux(packet)
            return
        for frame in packet.decode():
            for resampled in self._resampler.resample(frame):
                self._output.mux(self._out_stream.encode(resampled))

    def _flush(self) -> None:
        if self._resampler is not None:
            for resampled in self._resampler.resample(None):
                self._output.mux(self._out_stream.encode(resampled))
            self._output.mux(self._out_stream.encode(None))

    def close(self, complete: bool = True) -> None:
        """``complete=False``: the video stopped early; end the audio there too."""
        if not self._done and not complete:
            self._done = True
            self._flush()
        if self._input is not None:
            self._input.close()


#: still-image formats (OpenCV reads and writes them): a photo's cut-out, an image sequence's
#: frames; and those of them that keep an alpha channel
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
ALPHA_IMAGE_SUFFIXES = (".png", ".webp", ".tif", ".tiff")


def check_alpha_container(suffix: str) -> None:
    """Refuse a container that cannot hold a transparent background
    (it would be flattened onto black with coloured fringes, passed off as done)."""
    if suffix.lower() not in (".mov", ".webm") + ALPHA_IMAGE_SUFFIXES:
        raise OutputError(
            "a transparent background needs a .mov (ProRes 4444), .webm (VP9), PNG-sequence "
            f"or, for a photo, .png output, not {suffix or 'no extension'}"
        )


def _video_codec(suffix: str, alpha: bool) -> tuple[str, str, dict[str, str]]:
    """(codec, pix_fmt, options) for a container extension; alpha picks the
    formats editors read with transparency."""
    if alpha:
        check_alpha_container(suffix)
        if suffix == ".mov":
            return "prores_ks", "yuva444p10le", {"profile": "4", "alpha_bits": "16"}
        return "libvpx-vp9", "yuva420p", {"deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    if suffix == ".webm":
        return "libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    return "libx264", "yuv420p", {}


class VideoFileSink(Sink):
    """A video file encoded with PyAV, timestamps copied from the input.

    ``quality`` is a CRF value (lower is better, 18 is visually lossless for
    H.264, 23 its default); ``preset`` trades x264 speed for size.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: tuple[int, int],
        fps: float,
        time_base: Fraction | None = None,
        alpha: bool = False,
        quality: int = 20,
        preset: str = "superfast",
        audio_from: "str | LiveAudio | None" = None,
        overwrite: bool = False,
        threads: int = 0,
    ) -> None:
        self.path = Path(path)
        _refuse_existing(self.path, overwrite)
        codec, pix_fmt, options = _video_codec(self.path.suffix.lower(), alpha)
        if codec == "libx264":
            options = {"crf": str(quality), "preset": preset}
        elif codec == "libvpx-vp9":
            options = {**options, "crf": str(quality + 10), "b": "0"}
        self.alpha = alpha
        self._pad = pix_fmt.endswith("420p")
        self._tb = time_base or Fraction(1, 90000)
        self._tmp = _temporary_beside(self.path)
        try:
            self._out = _open_container(self._tmp, self.path.suffix)
            rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
            self._stream = self._out.add_stream(codec, rate=rate, options=options)
            width, height = size
            self._stream.width = _even(width) if self._pad else width
            self._stream.height = _even(height) if self._pad else height
            self._stream.pix_fmt = pix_fmt
            self._stream.codec_context.time_base = self._tb
            self._stream.time_base = self._tb
            if threads:
                self._stream.codec_context.thread_count = threads
            self._audio = self._open_audio(audio_from)
        except OutputError:
            self._discard()
            raise
        except ValueError:  # PyAV: the container cannot hold this codec (H.264 in .gif...)
            self._discard()
            raise _unknown_format(self.path.suffix) from None
        except (av.error.FFmpegError, OSError) as exc:
            self._discard()
            raise _output_error(self.path, exc) from None
        self._last_pts: int | None = None
        self._last_seconds: float | None = None
        self._closed = False

    def _open_audio(self, audio_from: "str | LiveAudio | None") -> _AudioTrack | None:
        if not audio_from:
            return None
        try:
            return _AudioTrack(audio_from, self._out)
        except ValueError as exc:
            log.warning("output has no audio: %s", exc)
            return None

    def write(self, image: np.ndarray, pts: float | None) -> None:
        if self._pad:
            image = _pad_even(image)
        frame = _video_frame(image, self._stream.pix_fmt == "yuv420p")
        ticks = round(pts / self._tb) if pts is not None else None
        if ticks is None or (self._last_pts is not None and ticks <= self._last_pts):
            # missing or repeated pts (damaged input): keep strictly increasing
            step = max(1, round(1 / (float(self._stream.codec_context.framerate or 30) * self._tb)))
            ticks = (self._last_pts + step) if self._last_pts is not None else 0
        frame.pts = ticks
        frame.time_base = self._tb
        self._last_pts = ticks
        self._last_seconds = float(ticks * self._tb)
        try:
            for packet in self._stream.encode(frame):
                self._out.mux(packet)
            if self._audio is not None:
                self._audio.copy_until(self._last_seconds)
        except (av.error.FFmpegError, OSError) as exc:
            raise _output_error(self.path, exc) from None
        self.written += 1

    def close(self, complete: bool = True) -> None:
        """Flush and rename into place. ``complete=False`` (Ctrl-C) copies audio
        only up to the last video frame so the partial file stays in sync."""
        if self._closed:
            return
        try:
            for packet in self._stream.encode():
                self._out.mux(packet)
            if self._audio is not None:
                frame_time = 1 / float(self._stream.codec_context.framerate or 30)
                end = None if complete else (self._last_seconds or 0.0) + frame_time
                self._audio.copy_until(end, wait_s=LiveAudio.TAIL_S)
                self._audio.close(complete)
            self._out.close()
        except (av.error.FFmpegError, OSError) as exc:
            self._discard()
            raise _output_error(self.path, exc) from None
        self._closed = True
        _put_in_place(self._tmp, self.path, self.written)

    def abort(self) -> None:
        self._discard()

    def _discard(self) -> None:
        self._closed = True
        for closeable in (getattr(self, "_audio", None), getattr(self, "_out", None)):
            if closeable is not None:
                try:
                    closeable.close()
                except Exception:  # already failing: the temp file goes anyway
                    pass
        self._tmp.unlink(missing_ok=True)


def _container_format(suffix: str) -> str | None:
    return {".mov": "mov", ".webm": "webm", ".mp4": "mp4", ".mkv": "matroska", ".ts": "mpegts"}.get(suffix.lower())


def _open_container(path: Path, suffix: str) -> "av.container.OutputContainer":
    """The output container for ``suffix``; FFmpeg knows more than the listed ones (.avi, .flv...)."""
    try:
        return av.open(str(path), mode="w", format=_container_format(suffix))
    except ValueError:  # PyAV's answer when FFmpeg has no muxer for the extension
        raise _unknown_format(suffix) from None


def _unknown_format(suffix: str) -> OutputError:
    return OutputError(
        f"unknown output format {suffix or '(no extension)'}: "
        "use .mp4, .mov, .webm or .mkv, or a directory for PNG frames"
    )


class _StagedDirectory:
    """Files written into a hidden sibling directory, moved into the target on
    success, so an interrupted job never mixes old and new frames."""

    def __init__(self, target: Path, name_pattern: str, overwrite: bool) -> None:
        self.target = target
        self.pattern = name_pattern
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise OutputError(f"output directory does not exist: {parent}")
        first = target / (name_pattern % 1)
        if first.exists() and not overwrite:
            raise OutputError(f"output exists: {first}", hint=Hint("overwrite", True, "to replace it"))
        if target.exists() and not target.is_dir():
            raise OutputError(f"output is a file, expected a directory: {target}")
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
            _default_permissions(self.staging)
        except OSError as exc:
            raise _output_error(target, exc) from None

    def path(self, number: int) -> Path:
        return self.staging / (self.pattern % number)

    def commit(self) -> None:
        """Move the staged files into the target (replacing same-named ones)."""
        if not self.target.exists():
            os.replace(self.staging, self.target)
            return
        for item in sorted(self.staging.iterdir()):
            os.replace(item, self.target / item.name)
        self.staging.rmdir()

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _write_image(path: Path, image: np.ndarray, params: Sequence[int] = ()) -> None:
    """An RGB, RGBA or HxW grey image to ``path`` in the format its suffix names."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image, list(params)):
        raise _output_error(path, OSError(28 if _disk_full(path) else 5, "write failed"))


def is_image_file(target: str | os.PathLike[str]) -> bool:
    """One image file (``cutout.png``): the output of a one-frame input, a photo."""
    return not is_image_sequence(target) and Path(target).suffix.lower() in IMAGE_SUFFIXES


class ImageFileSink(Sink):
    """One image, for an input of one frame (a photo): ``cutout.png`` keeps the
    alpha (``--alpha``), an HxW matte is written grey. Written under a
    temporary name and renamed when the job completes."""

    def __init__(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        self.path = Path(path)
        _refuse_existing(self.path, overwrite)
        self._tmp = _temporary_beside(self.path)
        self._closed = False

    def write(self, image: np.ndarray, pts: float | None) -> None:
        if self.written:
            raise OutputError(f"{self.path} holds one image but the input has more frames: "
                              "give a folder or dir/%06d.png for a sequence")
        _write_image(self._tmp, image)
        self.written += 1

    def close(self, complete: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        _put_in_place(self._tmp, self.path, self.written)

    def abort(self) -> None:
        self._closed = True
        self._tmp.unlink(missing_ok=True)


class ImageSequenceSink(Sink):
    """Lossless PNGs, one per frame, numbered from 1 (``000001.png``...).

    RGBA images keep their alpha (``--alpha``), HxW images are written as
    8-bit grey (mattes). ``target`` is a directory or a ``dir/name%06d.png``
    pattern.
    """

    def __init__(self, target: str | os.PathLike[str], overwrite: bool = False) -> None:
        target = str(target)
        if "%" in Path(target).name:
            directory, pattern = Path(target).parent, Path(target).name
        else:
            directory, pattern = Path(target), "%06d.png"
        self.path = directory
        self._dir = _StagedDirectory(directory, pattern, overwrite)
        self._closed = False

    def write(self, image: np.ndarray, pts: float | None) -> None:
        # compression 1: lossless either way, level 1 is several times faster than 3
        _write_image(self._dir.path(self.written + 1), image, (cv2.IMWRITE_PNG_COMPRESSION, 1))
        self.written += 1

    def close(self, complete: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._dir.commit()
        except OSError as exc:
            self._dir.discard()
            raise _output_error(self.path, exc) from None

    def abort(self) -> None:
        self._closed = True
        self._dir.discard()


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < 1 << 20
    except OSError:
        return False


# --------------------------------------------------------------------------- live


def virtual_camera_help() -> str:
    """What to install for a virtual camera on this OS, in one sentence."""
    system = platform.system()
    if system == "Linux":
        return "install v4l2loopback and run: sudo modprobe v4l2loopback devices=1 exclusive_caps=1"
    if system == "Windows":
        return "install OBS Studio (26+), start it once and click 'Start Virtual Camera', then stop it"
    if system == "Darwin":
        return "install OBS Studio (28+), start it once and click 'Start Virtual Camera', then stop it"
    return "install a virtual camera driver supported by pyvirtualcam"


class VirtualCameraSink(Sink):
    """Frames to a virtual webcam (v4l2loopback, OBS Virtual Camera) that video
    call apps can select. RGBA input is flattened: cameras carry no alpha."""

    live = True

    def __init__(self, size: tuple[int, int], fps: float, device: str | None = None) -> None:
        import pyvirtualcam

        width, height = size
        try:
            self._cam = pyvirtualcam.Camera(
                width=width, height=height, fps=fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device, print_fps=False
            )
        except Exception as exc:  # pyvirtualcam raises RuntimeError/ValueError per backend
            raise DeviceError(f"no virtual camera device ({first_line(exc)}); {virtual_camera_help()}") from None
        self.device = self._cam.device
        log.info("virtual camera: %s (%dx%d @ %.0f fps)", self.device, width, height, fps)

    def write(self, image: np.ndarray, pts: float | None) -> None:
        if image.ndim == 3 and image.shape[2] == 4:
            image = np.ascontiguousarray(image[:, :, :3])
        self._cam.send(image)
        self.written += 1

    def close(self, complete: bool = True) -> None:
        self._cam.close()


class StreamSink(Sink):
    """Low-latency H.264 in MPEG-TS to a URL (``udp://host:port``, ``srt://``...),
    which OBS's media source or ``ffplay`` can open. Timestamps come from the
    wall clock so the receiver plays at the real rate even when frames drop."""

    live = True

    def __init__(self, url: str, size: tuple[int, int], fps: float, bitrate: str = "4M") -> None:
        self.url = url
        target = url
        if url.startswith("udp://") and "pkt_size" not in url:
            target += ("&" if "?" in url else "?") + "pkt_size=1316"  # 7 TS packets per datagram
        options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "bf": "0",
            "g": str(max(1, int(round(fps)))),
            "b": bitrate,
        }
        try:
            self._out = av.open(target, mode="w", format="mpegts", timeout=5.0)
            self._stream = self._out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001), options=options)
            self._stream.width, self._stream.height = _even(size[0]), _even(size[1])
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = Fraction(1, 90000)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot open stream output {url}: {first_line(exc)}") from None
        self._t0: float | None = None
        self._last = -1

    def write(self, image: np.ndarray, pts: float | None) -> None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        ticks = max(self._last + 1, int((now - self._t0) * 90000))
        self._last = ticks
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        frame = _video_frame(np.ascontiguousarray(_pad_even(image)), yuv420=True)
        frame.pts = ticks
        frame.time_base = Fraction(1, 90000)
        try:
            for packet in self._stream.encode(frame):
                self._out.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"stream output {self.url} failed: {first_line(exc)}") from None
        self.written += 1

    def close(self, complete: bool = True) -> None:
        try:
            for packet in self._stream.encode():
                self._out.mux(packet)
        except (av.error.FFmpegError, OSError):
            pass  # the receiver may be gone; nothing to keep
        self._out.close()


def display_available() -> str | None:
    """None if a preview window can open, else the reason in a few words."""
    info = cv2.getBuildInformation()
    gui_line = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    if "NONE" in gui_line.upper():
        return "this OpenCV build has no GUI (opencv-python-headless); install opencv-python for a preview window"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY/WAYLAND_DISPLAY unset); a preview window needs a desktop session"
    return None


class PreviewSink(Sink):
    """An OpenCV window showing the output; closing it (or q/Esc) stops the job.

    Any other key goes to ``on_key`` (the live controls' shortcuts).
    """

    live = True

    WINDOW = "livematte preview"

    def __init__(self, on_key: Callable[[int], object] | None = None) -> None:
        reason = display_available()
        if reason:
            raise DeviceError(f"cannot open a preview window: {reason}")
        cv2.namedWindow(self.WINDOW, cv2.WINDOW_NORMAL)
        self.closed_by_user = False
        self._on_key = on_key

    def write(self, image: np.ndarray, pts: float | None) -> None:
        code = cv2.COLOR_RGBA2BGR if image.ndim == 3 and image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        cv2.imshow(self.WINDOW, cv2.cvtColor(image, code))
        key = cv2.waitKey(1) & 0xFF
        if key in (27, ord("q")):
            self.closed_by_user = True
            raise KeyboardInterrupt
        if key != 0xFF and self._on_key is not None:
            self._on_key(key)
        self.written += 1

    def close(self, complete: bool = True) -> None:
        cv2.destroyWindow(self.WINDOW)


def is_image_sequence(target: str | os.PathLike[str]) -> bool:
    """A directory (existing, trailing slash, or no extension) or a ``%06d.png`` pattern."""
    text, path = str(target), Path(target)
    return "%" in path.name or text.endswith(("/", "\\")) or path.is_dir() or not path.suffix


def check_alpha_target(target: str | os.PathLike[str]) -> None:
    """Refuse, before anything is opened, a target that cannot hold a transparent background."""
    if is_stream_url(str(target)):
        raise OutputError(f"a transparent background cannot be streamed ({target} carries no alpha)")
    if not is_image_sequence(target):
        check_alpha_container(Path(target).suffix)


def check_matte_target(target: str | os.PathLike[str]) -> None:
    """Refuse, before anything is opened, a ``--matte-out`` that cannot hold a matte."""
    if is_stream_url(str(target)):
        raise OutputError(f"a matte cannot be streamed ({target}): give a PNG folder or a video file")


def refuse_existing_output(target: str | os.PathLike[str], overwrite: bool) -> None:
    """Refuse an existing video file (unless ``overwrite``) before the job sets up; PNG folders take new frames."""
    if not is_stream_url(str(target)) and not is_image_sequence(target):
        _refuse_existing(Path(target), overwrite)


def open_sink(
    target: str | os.PathLike[str],
    source: Source,
    alpha: bool = False,
    overwrite: bool = False,
    crf: int = 20,
    preset: str = "superfast",
    threads: int = 0,
    audio: bool = True,
) -> Sink:
    """Open what ``target`` names for the frames of ``source``, as :func:`~livematte.sources.open_source` opens inputs.

    A stream URL becomes an MPEG-TS stream, a directory or ``%06d.png``
    pattern a PNG sequence, an image file the one frame of a photo,
    anything else a video file with the source's size, rate, time base and
    (with ``audio``) audio (a file's, or a recorded stream's). ``alpha``
    keeps the alpha (RGBA frames); ``crf``, ``preset`` and ``threads`` tune
    the encoder.
    """
    if is_stream_url(str(target)):
        return StreamSink(str(target), source.size, source.fps)
    if is_image_sequence(target):
        return ImageSequenceSink(target, overwrite=overwrite)
    if is_image_file(target):
        return _one_image_sink(target, source, overwrite)
    return VideoFileSink(target, source.size, source.fps, source.time_base, alpha=alpha, quality=crf, preset=preset,
                         audio_from=(source.live_audio or source.audio_path) if audio else None, overwrite=overwrite,
                         threads=threads)


def _one_image_sink(target: str | os.PathLike[str], source: Source, overwrite: bool) -> ImageFileSink:
    """An image file for a photo; refused up front for an input known to have more frames."""
    if source.live or (source.frame_count or 1) > 1:
        raise OutputError(f"{target} holds one image but the input is a video: give a folder or dir/%06d.png "
                          "for its frames, or a video file")
    return ImageFileSink(target, overwrite=overwrite)


def open_matte_sink(
    target: str | os.PathLike[str],
    source: Source,
    overwrite: bool = False,
    crf: int = 20,
    preset: str = "superfast",
    threads: int = 0,
) -> Sink:
    """Open ``--matte-out``: a directory or ``%06d.png`` pattern gets lossless
    8-bit grey PNGs, a video file the matte as its luma (lossy, but one file
    an editor can drop on a track as a luma matte, with no audio), timed as
    the source; a photo's matte an image file."""
    check_matte_target(target)
    return open_sink(target, source, overwrite=overwrite, crf=crf, preset=preset, threads=threads, audio=False)


def open_sinks(openers: Sequence[Callable[[], Sink]]) -> list[Sink]:
    """Open sinks in order; if one fails, abort those already open (no temporary file is left)."""
    opened: list[Sink] = []
    try:
        for open_one in openers:
            opened.append(open_one())
    except BaseException:
        for sink in opened:
            sink.abort()
        raise
    return opened
