"""Putting the matted person over a new background, in uint8 and whole-frame OpenCV calls.

Compositing ``alpha * frame + (1 - alpha) * background`` with the frame's own
colours leaves a fringe of the old background around hair: an edge pixel is
already a mix ``alpha * F + (1 - alpha) * B_old``. The compositor therefore
estimates ``B_old`` near the edge (the mean of nearby pure-background pixels,
at low resolution, like the background half of Germer et al.'s blur-fusion
foreground estimation) and uses ``alpha * F = frame - (1 - alpha) * B_old``,
which removes the spill without a per-pixel solver.

Backgrounds: a colour (``#rrggbb``, ``#rgb`` or a name), an image (scaled to
cover, centre-cropped), a looping video (PyAV), the blurred original frame
(``blur`` or ``blur:RADIUS``), or ``transparent`` (RGBA output).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livematte.errors import InputError
from livematte.resize import shrink
from livematte.tiles import active_runs

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "gray": (128, 128, 128),
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "cyan": (0, 255, 255), "magenta": (255, 0, 255), "orange": (255, 165, 0), "purple": (128, 0, 128),
    "pink": (255, 192, 203), "brown": (165, 42, 42), "navy": (0, 0, 128), "teal": (0, 128, 128),
}
DEFAULT_BLUR_RADIUS = 25

#: alpha (0..255) below which a pixel counts as pure background for the spill estimate
_PURE_BACKGROUND = 13
#: long side of the working image for the blurred background
_WORK_SIDE = 320
#: long side of the working image for the (smooth) old-background estimate
_ESTIMATE_SIDE = 160
#: side of the tiles the soft-edge blend runs on, in frame pixels
_BLEND_TILE = 64


@dataclass(frozen=True)
class BackgroundSpec:
    """What ``--bg`` asked for: ``kind`` is colour, image, video, blur or transparent."""

    kind: str
    color: tuple[int, int, int] | None = None
    path: Path | None = None
    radius: int = 0


def _parse_colour(spec: str) -> tuple[int, int, int] | None:
    text = spec.strip().lower()
    if text in NAMED_COLOURS:
        return NAMED_COLOURS[text]
    if text.startswith("#") and len(text) in (4, 7) and all(c in "0123456789abcdef" for c in text[1:]):
        digits = text[1:] if len(text) == 7 else "".join(c * 2 for c in text[1:])
        return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    return None


def _first_video_frame(path: Path) -> None:
    """Raise InputError unless PyAV can decode at least one video frame from ``path``."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"background {path}: no video stream")
            for _ in container.decode(video=0):
                return
    except av.error.FFmpegError as exc:
        raise InputError(f"background {path}: not an image or a video it can decode ({exc.strerror})") from None
    raise InputError(f"background {path}: the video has no frames")


def parse_background(spec: str) -> BackgroundSpec:
    """Parse a ``--bg`` value; unreadable files raise :class:`InputError` with one line."""
    text = spec.strip()
    if text.lower() == "transparent":
        return BackgroundSpec("transparent")
    if text.lower() == "blur" or text.lower().startswith("blur:"):
        radius_text = text[5:] if ":" in text else str(DEFAULT_BLUR_RADIUS)
        if not radius_text.isdigit() or int(radius_text) < 1:
            raise InputError(f"background {spec!r}: blur radius must be a positive integer (e.g. blur:25)")
        return BackgroundSpec("blur", radius=int(radius_text))
    colour = _parse_colour(text)
    if colour is not None:
        return BackgroundSpec("colour", color=colour)
    path = Path(text).expanduser()
    if text.startswith("#") or not path.exists():
        raise InputError(
            f"background {spec!r} is not a colour (#rrggbb or a name), 'blur[:radius]', "
            "'transparent' or an existing image/video file"
        )
    if not path.is_file():
        raise InputError(f"background {path}: not a file")
    if cv2.haveImageReader(str(path)):
        if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
            raise InputError(f"background {path}: the image cannot be decoded")
        return BackgroundSpec("image", path=path)
    _first_video_frame(path)
    return BackgroundSpec("video", path=path)


def cover(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``rgb`` to cover ``size`` (height, width) keeping its aspect, then centre-crop."""
    height, width = size
    h, w = rgb.shape[:2]
    scale = max(height / h, width / w)
    sh, sw = max(height, round(h * scale)), max(width, round(w * scale))
    if scale < 1:
        scaled = shrink(rgb, sw, sh)
    else:
        scaled = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_LINEAR) if (sh, sw) != (h, w) else rgb
    top, left = (sh - height) // 2, (sw - width) // 2
    return np.ascontiguousarray(scaled[top:top + height, left:left + width])


class LoopingVideo:
    """Background video frames of ``shape`` (height, width), forever: the file restarts when it ends.

    The container is reopened at the end rather than seeked, so every loop
    starts from a clean decoder state and no frame is skipped or repeated at
    the seam.
    """

    def __init__(self, path: Path, shape: tuple[int, int]):
        self.path = path
        self.shape = shape
        self._container = None
        self._frames = None

    def _open(self) -> None:
        import av

        self.close()
        self._container = av.open(str(self.path))
        self._container.streams.video[0].thread_type = "AUTO"
        self._frames = self._container.decode(video=0)

    def next(self) -> np.ndarray:
        """The next frame, RGB uint8 of ``shape``."""
        for _attempt in range(2):
            if self._frames is None:
                self._open()
            frame = next(self._frames, None)
            if frame is not None:
                return cover(frame.to_ndarray(format="rgb24"), self.shape)
            self._frames = None  # end of file: reopen and go round again
        raise InputError(f"background {self.path}: no frames could be decoded")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None


def _small(image: np.ndarray, side: int = _WORK_SIDE, area: bool = True) -> np.ndarray:
    """A reduced copy with long side ~``side``: area-averaged, or sampled (``area=False``)."""
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return shrink(image, *size) if area else cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)


def blurred(rgb: np.ndarray, radius: int) -> np.ndarray:
    """The frame blurred with a Gaussian of about ``radius`` pixels, computed at low resolution."""
    h, w = rgb.shape[:2]
    small = _small(rgb)
    sigma = max(0.5, radius * small.shape[1] / w / 2.0)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill every pixel with the weighted mean colour of the nearest weighted pixels.

    A pyramid "push-pull" fill: weighted sums are halved down to one pixel,
    then each level keeps its own estimate where it has enough weight and
    takes the coarser level's elsewhere, so holes of any size are filled
    from their surroundings in a few whole-image operations.
    """
    levels = [(values * weight[..., None], weight)]
    while max(levels[-1][1].shape) > 1:
        summed, w = levels[-1]
        size = (max(1, w.shape[1] // 2), max(1, w.shape[0] // 2))
        levels.append((cv2.resize(summed, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(w, size, interpolation=cv2.INTER_AREA).reshape(size[::-1])))
    summed, w = levels[-1]
    estimate = summed / np.maximum(w, 1e-6)[..., None]
    for summed, w in reversed(levels[:-1]):
        coarse = cv2.resize(estimate, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        coarse = coarse.reshape(summed.shape)
        own = summed / np.maximum(w, 1e-6)[..., None]
        trust = np.minimum(1.0, w * 4.0)[..., None]  # a quarter of a pixel's worth of weight is enough
        estimate = own * trust + coarse * (1.0 - trust)
    return estimate


def estimate_old_background(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The original background colour behind each pixel, uint8 hxwx3 with long side 160.

    It is smooth, so it stays small until the compositor enlarges it.

    Pure-background pixels (alpha < 5 %) at low resolution are spread into
    the rest of the image by :func:`_push_pull`, so an edge pixel gets the
    colour of the background nearest to it however wide the soft band is.
    A frame with no background at all returns the small frame itself, which only
    matters where alpha is 1 and the estimate is unused.
    """
    # nearest sampling is enough: the estimate averages many samples anyway
    small = _small(rgb, _ESTIMATE_SIDE, area=False)
    weight = (_small(alpha, _ESTIMATE_SIDE, area=False) < _PURE_BACKGROUND).astype(np.float32)
    if not weight.any():
        return small
    return np.clip(_push_pull(small.astype(np.float32), weight), 0, 255).astype(np.uint8)


class TemporalSmoother:
    """Light exponential smoothing of alpha that damps flicker but not motion.

    A pixel is mixed with its previous value (weight ``strength``) only when
    it changed by less than ``threshold`` (0..255), so still edges stop
    shimmering while a moving arm leaves no trail.
    """

    def __init__(self, strength: float = 0.5, threshold: int = 24):
        if not 0.0 <= strength < 1.0:
            raise ValueError("smoothing strength must be in [0, 1)")
        self.strength = strength
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def __call__(self, alpha: np.ndarray) -> np.ndarray:
        previous = self._previous
        if previous is None or previous.shape != alpha.shape:
            self._previous = alpha
            return alpha
        mixed = cv2.addWeighted(alpha, 1.0 - self.strength, previous, self.strength, 0.0)
        still = cv2.absdiff(alpha, previous) < self.threshold
        out = alpha.copy()
        np.copyto(out, mixed, where=still)
        self._previous = out
        return out


def alpha_to_u8(alpha: np.ndarray) -> np.ndarray:
    """Float [0, 1] (or uint8) alpha as uint8 0..255, rounded and saturated."""
    if alpha.dtype == np.uint8:
        return alpha
    return cv2.convertScaleAbs(alpha, alpha=255.0)


class Compositor:
    """Composites frames of one size over one background.

    ``size`` is (width, height), as :attr:`livematte.sources.Source.size`. ``decontaminate``
    removes the old background's colour from edge pixels; ``smoothing``
    (0 disables) is the :class:`TemporalSmoother` strength. Output is uint8
    HxWx3 RGB, or HxWx4 RGBA (straight alpha) for ``transparent``.
    """

    def __init__(self, spec: BackgroundSpec | str, size: tuple[int, int],
                 decontaminate: bool = True, smoothing: float = 0.0):
        self.spec = parse_background(spec) if isinstance(spec, str) else spec
        self.size = size
        width, height = size
        #: (height, width): the shape of the frames it accepts
        self.shape = (height, width)
        self.decontaminate = decontaminate
        self.smoother = TemporalSmoother(smoothing) if smoothing > 0 else None
        self._video: LoopingVideo | None = None
        self._still: np.ndarray | None = None
        if self.spec.kind == "colour":
            self._still = np.empty((height, width, 3), np.uint8)
            self._still[:] = self.spec.color
        elif self.spec.kind == "image":
            image = cv2.imread(str(self.spec.path), cv2.IMREAD_COLOR)
            if image is None:
                raise InputError(f"background {self.spec.path}: the image cannot be decoded")
            self._still = cover(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), self.shape)
        elif self.spec.kind == "video":
            self._video = LoopingVideo(self.spec.path, self.shape)

    @property
    def channels(self) -> int:
        """3 for RGB output, 4 for RGBA (transparent background)."""
        return 4 if self.spec.kind == "transparent" else 3

    def background(self, rgb: np.ndarray) -> np.ndarray | None:
        """The new background for this frame (None for transparent)."""
        if self._still is not None:
            return self._still
        if self._video is not None:
            return self._video.next()
        if self.spec.kind == "blur":
            return blurred(rgb, self.spec.radius)
        return None

    def reset(self) -> None:
        """Forget temporal state (seek, scene cut)."""
        if self.smoother is not None:
            self.smoother.reset()

    def close(self) -> None:
        if self._video is not None:
            self._video.close()

    def compose(self, rgb: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
        """The composited frame for RGB uint8 ``rgb`` and alpha (float [0, 1] or uint8), both HxW.

        Over a background, opaque pixels are the frame and clear ones the
        background, copied in two whole-frame passes; the blend (and the
        decontamination) runs only on the tiles holding soft alpha.

        ``foreground`` (HxWx3, uint8 or float [0, 1]) is a solved foreground
        colour, e.g. from the offline quality mode; when given, the soft
        pixels take their colour from it instead of from the frame minus the
        estimated old background.
        """
        if rgb.shape[:2] != self.shape or alpha.shape[:2] != self.shape:
            raise ValueError(f"frame {rgb.shape[:2]} / alpha {alpha.shape[:2]} (HxW) do not match "
                             f"compositor size {self.size} (WxH)")
        a = alpha_to_u8(alpha)
        if self.smoother is not None:
            a = self.smoother(a)
        spill = None
        background = self.background(rgb)  # from the frame, never from a solved foreground
        if foreground is not None:
            rgb = _foreground_u8(foreground, self.shape)
        elif self.decontaminate:
            # one whole-frame enlargement costs less than one warp per soft tile (measured)
            spill = cv2.resize(estimate_old_background(rgb, a), self.size, interpolation=cv2.INTER_LINEAR)
        if background is None:
            a3 = cv2.merge([a, a, a])
            # straight (not premultiplied) colour: F = (alpha * F) / alpha, 0 where alpha is 0
            colour = cv2.divide(_weighted_foreground(rgb, a3, spill), a3, scale=255.0) if spill is not None else rgb
            return np.dstack((colour, a))
        # a fresh background (blur, video) is written over in place: a tile's blend reads
        # it only where alpha < 255, which the copy of the opaque pixels left alone
        out = background.copy() if background is self._still else background
        cv2.copyTo(rgb, cv2.compare(a, 255, cv2.CMP_EQ), out)
        for y0, y1, x0, x1 in active_runs(cv2.inRange(a, 1, 254), _BLEND_TILE):
            box = (slice(y0, y1), slice(x0, x1))
            out[box] = _blend(rgb[box], a[box], background[box], None if spill is None else spill[box])
        return out


def _foreground_u8(foreground: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A solved foreground as uint8 HxWx3, checked against the frame's size."""
    if foreground.shape != (*shape, 3):
        raise ValueError(f"foreground {foreground.shape} does not match the frame {(*shape, 3)}")
    if foreground.dtype == np.uint8:
        return foreground
    return np.clip(foreground * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _weighted_foreground(rgb: np.ndarray, a3: np.ndarray, spill: np.ndarray | None) -> np.ndarray:
    """alpha * F: the frame's share of each pixel; with the old background's
    estimate ``spill``, the frame minus that background's share, clamped to [0, 255 * alpha]."""
    if spill is None:
        return cv2.multiply(rgb, a3, scale=1.0 / 255.0)
    return cv2.min(cv2.subtract(rgb, cv2.multiply(spill, cv2.bitwise_not(a3), scale=1.0 / 255.0)), a3)


def _blend(rgb: np.ndarray, a: np.ndarray, background: np.ndarray, spill: np.ndarray | None) -> np.ndarray:
    """alpha * F + (1 - alpha) * new background, in uint8 fixed point."""
    a3 = cv2.merge([a, a, a])
    return cv2.add(_weighted_foreground(rgb, a3, spill),
                   cv2.multiply(background, cv2.bitwise_not(a3), scale=1.0 / 255.0))
