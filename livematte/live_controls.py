"""Settings a live session changes without restarting, shared between threads.

The HTTP control endpoint and the preview window's keys write them; the
compositing stage reads them once per frame. Everything a writer sends is
validated before anything changes (one bad value leaves every setting as it
was), and a new background is opened in the writer's thread, so a slow or
broken file never stalls the stream: the compositing stage only swaps in a
background that is ready.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import cv2
import numpy as np

from livematte.backgrounds import DEFAULT_BLUR_RADIUS, Blur, parse_background
from livematte.compositor import Compositor
from livematte.errors import InputError
from livematte.matte_adjust import MatteSettings

#: the largest accepted blur radius, in pixels
MAX_BLUR = 200
#: seconds between two preview snapshots kept for the control panel
SNAPSHOT_EVERY_S = 0.5
#: width of the preview snapshot, in pixels
SNAPSHOT_WIDTH = 320


@dataclass(frozen=True)
class LiveState:
    """Everything the controls can change. ``background`` is a ``--bg`` value
    other than ``transparent``; ``blur`` is the radius used when it is ``blur``;
    ``paused`` passes the camera through unchanged."""

    background: str = "blur"
    blur: int = DEFAULT_BLUR_RADIUS
    matte: MatteSettings = MatteSettings()
    paused: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"background": self.background, "blur": self.blur, "paused": self.paused,
                **dataclasses.asdict(self.matte)}

    @property
    def background_spec(self) -> str:
        return f"{Blur.word}:{self.blur}" if self.background == Blur.word else self.background


_FIELDS = ("background", "blur", "threshold", "feather", "smoothing", "paused")


def _changed_state(state: LiveState, changes: Mapping[str, Any]) -> LiveState:
    """``state`` with ``changes`` applied; :class:`InputError` names the first bad field."""
    unknown = sorted(set(changes) - set(_FIELDS))
    if unknown:
        raise InputError(f"unknown setting {unknown[0]!r}; known: {', '.join(_FIELDS)}")
    if "paused" in changes and not isinstance(changes["paused"], bool):
        raise InputError(f"paused must be true or false, got {changes['paused']!r}")
    blur = changes.get("blur", state.blur)
    background = changes.get("background", state.background)
    if not isinstance(background, str) or not background.strip():
        raise InputError(f"background must be a --bg value such as 'blur', '#00ff00' or a file, got {background!r}")
    background = background.strip()
    parsed = parse_background(background) if background.lower().startswith(Blur.word + ":") else None
    if isinstance(parsed, Blur):  # 'blur:40' sets the strength too
        background, blur = Blur.word, parsed.radius
    if isinstance(blur, bool) or not isinstance(blur, int) or not 1 <= blur <= MAX_BLUR:
        raise InputError(f"blur must be a whole number of pixels in [1, {MAX_BLUR}], got {blur!r}")
    matte = {name: changes.get(name, getattr(state.matte, name)) for name in ("threshold", "feather", "smoothing")}
    return LiveState(background=background, blur=blur, matte=MatteSettings(**matte),
                     paused=changes.get("paused", state.paused))


def initial_state(background: str, matte: MatteSettings) -> LiveState:
    """The state for ``--bg background`` and the matte options (``blur:40`` is blur of strength 40)."""
    return _changed_state(LiveState(matte=matte), {"background": background})


class LiveControls:
    """The live settings of one session, plus what the control panel shows (stats, a preview).

    ``size`` is the frames' (width, height): a background is opened for that
    size when it is set, in the setter's thread.
    """

    def __init__(self, initial: LiveState, size: tuple[int, int]) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        self._state = initial
        self._initial = initial
        self._compositor = self._open(initial)
        self._retired: list[Compositor] = []
        self._stats: dict[str, float] = {"fps": 0.0, "latency_ms": 0.0, "dropped": 0, "frames": 0}
        self._snapshot: np.ndarray | None = None
        self._snapshot_at = 0.0

    def _open(self, state: LiveState) -> Compositor:
        background = parse_background(state.background_spec)
        if background.channels != 3:
            background.close()
            raise InputError(f"background {state.background!r} is not possible live: the outputs have no alpha "
                             "(use `livematte process ... --alpha`)")
        return Compositor(background, self.size)

    # ------------------------------------------------------------------ settings

    @property
    def state(self) -> LiveState:
        with self._lock:
            return self._state

    @property
    def matte(self) -> MatteSettings:
        """The current matte settings (a :class:`~livematte.matte_adjust.MatteAdjuster` source)."""
        return self.state.matte

    def update(self, changes: Mapping[str, Any]) -> LiveState:
        """Apply ``changes`` (field -> value) all or nothing; bad values raise :class:`InputError`."""
        with self._writer:  # one writer at a time: no update is lost between read and write
            current = self.state
            wanted = _changed_state(current, changes)
            compositor = self._open(wanted) if wanted.background_spec != current.background_spec else None
            with self._lock:
                if compositor is not None:
                    self._retired.append(self._compositor)
                    self._compositor = compositor
                self._state = wanted
            return wanted

    def reset(self) -> LiveState:
        """Back to the settings the session started with."""
        return self.update(self._initial.as_json())

    # ------------------------------------------------------------------ panel data

    def record_stats(self, fps: float, latency_ms: float, dropped: int, frames: int) -> None:
        with self._lock:
            self._stats = {"fps": fps, "latency_ms": latency_ms, "dropped": dropped, "frames": frames}

    @property
    def stats(self) -> dict[str, float]:
        with self._lock:
            return dict(self._stats)

    def snapshot_jpeg(self, quality: int = 75) -> bytes | None:
        """The latest preview frame as JPEG bytes (None before the first frame)."""
        with self._lock:
            image = self._snapshot
        if image is None:
            return None
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        return data.tobytes() if ok else None

    def _keep_snapshot(self, image: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._snapshot_at < SNAPSHOT_EVERY_S:
            return
        h, w = image.shape[:2]
        small = cv2.resize(image, (SNAPSHOT_WIDTH, max(1, round(h * SNAPSHOT_WIDTH / w))), interpolation=cv2.INTER_AREA)
        with self._lock:
            self._snapshot, self._snapshot_at = small, now

    # ------------------------------------------------------------------ the compositing stage

    def compose(self, rgb: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
        """The pipeline's compositor: the current background, or the camera frame itself while paused."""
        with self._lock:
            paused, compositor, retired, self._retired = self._state.paused, self._compositor, self._retired, []
        for old in retired:  # closed here: only this thread ever used them
            old.close()
        out = rgb if paused else compositor.compose(rgb, alpha, foreground)
        self._keep_snapshot(out)
        return out

    def close(self) -> None:
        with self._lock:
            compositors, self._retired = [self._compositor, *self._retired], []
        for compositor in compositors:
            compositor.close()


def stats_recorder(controls: LiveControls, then: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
    """An ``on_live_stats`` callback that keeps the numbers for the panel, then calls ``then``."""

    def record(stats: Any) -> None:
        controls.record_stats(stats.fps, stats.latency_ms, stats.dropped, stats.frames)
        if then is not None:
            then(stats)

    return record
