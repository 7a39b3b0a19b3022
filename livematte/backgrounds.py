"""What goes behind the person: one class per ``--bg`` kind, found through a registry.

A kind is a :class:`Background` subclass registered with
:func:`register_background`. :func:`parse_background` offers a ``--bg``
text to each registered kind in turn, so the CLI, the Python API and the
compositor parse it once and never dispatch on strings again, and a new
kind is one class. A background is rendered from the frame *and its matte*
(``render(rgb, alpha)``), which is what kinds that depend on where the
person is need: the default blur leaves the person out of the blur (no
halo), and the bokeh blurs more the farther a pixel is from the person.

Kinds: a colour (``#rrggbb``, ``#rgb`` or a name), ``transparent`` (RGBA
output), ``blur[:RADIUS]``, ``bokeh[:RADIUS]``, an image (scaled to cover,
centre-cropped) or a video (looped).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Sequence, TypeVar

import cv2
import numpy as np

from livematte.errors import InputError
from livematte.fill import push_pull
from livematte.resize import shrink, to_long_side
from livematte.tiles import active_runs

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "gray": (128, 128, 128),
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "cyan": (0, 255, 255), "magenta": (255, 0, 255), "orange": (255, 165, 0), "purple": (128, 0, 128),
    "pink": (255, 192, 203), "brown": (165, 42, 42), "navy": (0, 0, 128), "teal": (0, 128, 128),
}
DEFAULT_BLUR_RADIUS = 25
DEFAULT_BOKEH_RADIUS = 40

#: long side of the working image for the blurred backgrounds
_WORK_SIDE = 320
#: side of the tiles the bokeh mixes the sharp frame in on, in frame pixels
_MIX_TILE = 64
#: blurred background weight below which a pixel is filled in from around, not averaged
_FILL_BELOW = 1e-3


class Background(ABC):
    """One kind of new background; subclasses register with :func:`register_background`.

    An instance is what one ``--bg`` value asked for, already checked (files
    decoded once), and serves one job at a time: kinds that read a file keep
    their reader open until :meth:`close`.
    """

    #: 4 when the output keeps the alpha (RGBA) instead of a background, else 3
    channels: ClassVar[int] = 3
    #: how ``--bg`` spells this kind, for the help text and errors
    usage: ClassVar[str]

    @classmethod
    @abstractmethod
    def parse(cls, text: str) -> Background | None:
        """This kind for a ``--bg`` text; None when the text is not this kind.

        Raises :class:`InputError` (one line) when the text is this kind but
        unusable (a bad radius, an image that does not decode).
        """

    @abstractmethod
    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
        """The background for frame ``rgb`` (uint8 HxWx3) whose person has matte ``alpha`` (uint8 HxW).

        A new uint8 HxWx3 array the caller may write into, or None for no
        background (the output keeps the alpha).
        """

    def close(self) -> None:
        """Release what the background holds open (a video reader); it may still render afterwards."""


_KINDS: list[type[Background]] = []
K = TypeVar("K", bound=type[Background])


def register_background(kind: K) -> K:
    """Class decorator: offer ``--bg`` texts to ``kind`` after the kinds registered before it."""
    _KINDS.append(kind)
    return kind


def background_kinds() -> tuple[type[Background], ...]:
    """The registered kinds, in the order a ``--bg`` text is offered to them."""
    return tuple(_KINDS)


def background_usage() -> str:
    """Every registered spelling, for ``--bg``'s help and the error on a text none of them takes."""
    spellings = [kind.usage for kind in _KINDS]
    return ", ".join(spellings[:-1]) + " or " + spellings[-1]


def parse_background(spec: str) -> Background:
    """The background a ``--bg`` value asks for; anything else raises :class:`InputError` with one line."""
    text = spec.strip()
    for kind in _KINDS:
        background = kind.parse(text)
        if background is not None:
            return background
    raise InputError(f"background {spec!r} is not {background_usage()}")


def _existing_file(text: str) -> Path | None:
    """The file ``text`` names; None when nothing is there; InputError for a directory."""
    path = Path(text).expanduser()
    if text.startswith("#") or not path.exists():
        return None
    if not path.is_file():
        raise InputError(f"background {path}: not a file")
    return path


def cover(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scale ``rgb`` to cover ``shape`` (height, width, as ``frame.shape[:2]``) keeping
    its aspect, then centre-crop."""
    height, width = shape
    h, w = rgb.shape[:2]
    scale = max(height / h, width / w)
    sh, sw = max(height, round(h * scale)), max(width, round(w * scale))
    if scale < 1:
        scaled = shrink(rgb, sw, sh)
    else:
        scaled = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_LINEAR) if (sh, sw) != (h, w) else rgb
    top, left = (sh - height) // 2, (sw - width) // 2
    return np.ascontiguousarray(scaled[top:top + height, left:left + width])


# --------------------------------------------------------------------------- blurred backgrounds


def _working_images(rgb: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frame (float32) and the background's share of each pixel (1 - alpha) at the working size."""
    small = to_long_side(rgb, _WORK_SIDE).astype(np.float32)
    share = 1.0 - to_long_side(alpha, _WORK_SIDE).astype(np.float32) / 255.0
    return small, share


def _gaussian(radius: float, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """A Gaussian blur of about ``radius`` frame pixels for an image ``scale`` times the frame's size."""
    sigma = max(0.5, radius * scale / 2.0)
    return lambda image: cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)


def _behind_person(small: np.ndarray, share: np.ndarray,
                   blurs: Sequence[tuple[Callable[[np.ndarray], np.ndarray], np.ndarray | float]]) -> np.ndarray:
    """The blurred background without the person: an alpha-weighted, normalised blur.

    ``blurs`` are (blur, mix) pairs: the result is their per-pixel mix
    (``mix`` an HxW array or a number), normalised once. Each pixel counts by
    ``share ** 4`` (an edge pixel is a mix that still carries the person's
    colour, so it counts little: see ``benchmarks/blur_halo.py``), and the
    blurred sum is divided by the blurred weight, so the person's colours
    never spread into the background around them (the halo of a plain blur).
    Under the person, where no background shows within the blur's reach, the
    nearest blurred background is filled in (:func:`push_pull`), which is
    what a soft edge shows through.
    """
    counts = share ** 4
    if float(counts.max()) < _FILL_BELOW:  # no background anywhere: the frame itself stands in
        return small
    values = small * counts[..., None]
    total = np.zeros_like(small)
    weight = np.zeros_like(share)
    for blur, mix in blurs:
        mix = np.asarray(mix, np.float32)
        total += mix[..., None] * blur(values) if mix.ndim else mix * blur(values)
        weight += mix * blur(counts)
    return push_pull(total / np.maximum(weight, _FILL_BELOW)[..., None], weight)


def _to_frame(small: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A working-size float image back at the frame's size as uint8."""
    return cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


@register_background
@dataclass(frozen=True)
class Colour(Background):
    """A solid colour."""

    colour: tuple[int, int, int]
    usage: ClassVar[str] = "a colour (#rrggbb, #rgb or a name)"

    @classmethod
    def parse(cls, text: str) -> Colour | None:
        lowered = text.lower()
        if lowered in NAMED_COLOURS:
            return cls(NAMED_COLOURS[lowered])
        hex_digits = lowered[1:]
        if lowered.startswith("#") and len(hex_digits) in (3, 6) and all(c in "0123456789abcdef" for c in hex_digits):
            digits = hex_digits if len(hex_digits) == 6 else "".join(c * 2 for c in hex_digits)
            return cls((int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)))
        return None

    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        out = np.empty_like(rgb)
        out[:] = self.colour
        return out


@register_background
@dataclass(frozen=True)
class Transparent(Background):
    """No background: the output keeps the alpha (RGBA, straight colour)."""

    channels: ClassVar[int] = 4
    usage: ClassVar[str] = "'transparent'"

    @classmethod
    def parse(cls, text: str) -> Transparent | None:
        return cls() if text.lower() == "transparent" else None

    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> None:
        return None


class _Blurred(Background):
    """A kind spelt ``WORD`` (its default radius) or ``WORD:RADIUS``, RADIUS in frame pixels."""

    word: ClassVar[str]
    #: a dataclass field of each subclass, with that kind's default
    radius: int

    @classmethod
    def parse(cls, text: str) -> _Blurred | None:
        lowered = text.lower()
        if lowered == cls.word:
            return cls()
        if not lowered.startswith(cls.word + ":"):
            return None
        radius = text[len(cls.word) + 1:]
        if not radius.isdigit() or int(radius) < 1:
            raise InputError(f"background {text!r}: {cls.word} radius must be a positive integer (e.g. {cls.word}:25)")
        return cls(int(radius))


@register_background
@dataclass(frozen=True)
class Blur(_Blurred):
    """The frame's own background, blurred with a Gaussian of about ``radius`` frame pixels, the person left out."""

    radius: int = DEFAULT_BLUR_RADIUS
    usage: ClassVar[str] = "'blur[:RADIUS]'"

    word: ClassVar[str] = "blur"

    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        small, share = _working_images(rgb, alpha)
        blur = _gaussian(self.radius, small.shape[1] / rgb.shape[1])
        return _to_frame(_behind_person(small, share, [(blur, 1.0)]), rgb.shape)


@register_background
@dataclass(frozen=True)
class Bokeh(_Blurred):
    """Portrait mode: the background sharp beside the person and blurrier with distance, up to ``radius``.

    A camera focused on the person blurs what lies behind more the farther it
    is; without depth, distance from the person's outline stands in for it.
    Blur levels of a third, two thirds and all of ``radius`` are mixed by
    that distance (halo-free, as :class:`Blur`), reaching full blur a quarter
    of the frame's long side away; nearer than a third of that, the sharp
    frame is mixed in.
    """

    radius: int = DEFAULT_BOKEH_RADIUS
    usage: ClassVar[str] = "'bokeh[:RADIUS]'"
    word: ClassVar[str] = "bokeh"
    #: blurred levels between sharp and ``radius``
    levels: ClassVar[int] = 3
    #: distance from the person, as a share of the long side, at which the blur is full
    reach: ClassVar[float] = 0.25

    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        small, share = _working_images(rgb, alpha)
        outside = (share > 0.5).astype(np.uint8)
        if outside.all():  # nobody in the frame: nothing to focus on, blur it all
            depth = np.full(share.shape, float(self.levels), np.float32)
        else:
            distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
            depth = np.minimum(distance / (self.reach * max(share.shape)), 1.0) * self.levels
        scale = small.shape[1] / rgb.shape[1]
        blurs = []
        for level in range(1, self.levels + 1):
            # each level takes its share of the depth where it lies within one level; the first also the nearest
            mix = np.maximum(0.0, 1.0 - np.abs(np.maximum(depth, 1.0) - level))
            if mix.any():
                blurs.append((_gaussian(self.radius * level / self.levels, scale), mix))
        blurred = _behind_person(small, share, blurs)
        out = _to_frame(blurred, rgb.shape)
        sharp = _to_frame(np.clip(255.0 - depth * 255.0, 0.0, 255.0), rgb.shape)
        for y0, y1, x0, x1 in active_runs(sharp, _MIX_TILE):  # the sharp frame shows only near the person
            box = (slice(y0, y1), slice(x0, x1))
            s3 = cv2.merge([sharp[box]] * 3)
            out[box] = cv2.add(cv2.multiply(rgb[box], s3, scale=1.0 / 255.0),
                               cv2.multiply(out[box], cv2.bitwise_not(s3), scale=1.0 / 255.0))
        return out


@register_background
@dataclass
class Image(Background):
    """A still image, scaled to cover the frame and centre-cropped."""

    path: Path
    pixels: np.ndarray = field(repr=False, compare=False)
    _covered: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    usage: ClassVar[str] = "an image file"

    @classmethod
    def parse(cls, text: str) -> Image | None:
        path = _existing_file(text)
        if path is None or not cv2.haveImageReader(str(path)):
            return None
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"background {path}: the image cannot be decoded")
        return cls(path, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        if self._covered is None or self._covered.shape != rgb.shape:
            self._covered = cover(self.pixels, rgb.shape[:2])
        return self._covered.copy()


@register_background
@dataclass
class Video(Background):
    """A video, looped; offered every existing file no earlier kind took, so it is registered last."""

    path: Path
    _reader: LoopingVideo | None = field(default=None, init=False, repr=False, compare=False)
    usage: ClassVar[str] = "a video file (looped)"

    @classmethod
    def parse(cls, text: str) -> Video | None:
        path = _existing_file(text)
        if path is None:
            return None
        _first_video_frame(path)
        return cls(path)

    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        shape = rgb.shape[:2]
        if self._reader is None or self._reader.shape != shape:
            self.close()
            self._reader = LoopingVideo(self.path, shape)
        return self._reader.next()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = None


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
