"""Synthetic training video made from still portraits.

There is no real video with per-frame mattes here, so clips are synthesised
from the EG1800 portraits (with their pseudo alphas and foregrounds):

- *composite* clips: the person is cut out with its soft alpha and
  foreground colours and re-composited over a real background photo or a
  generated indoor-like scene (the Deep Image Matting recipe), placed the
  way webcams frame people (large, off-centre, cut at the bottom), moving
  smoothly over the clip while the camera pans and zooms over the background;
- *photo* clips: the original photo (real edges, real lighting) seen
  through a slowly moving 16:9 window, or squashed whole, as a portrait
  photo is when fed to a landscape engine;
- in both: flips, rotation, colour and lighting drift, sensor noise,
  motion blur, grey frames, and occasional hard cuts to another clip
  (the net must not drag the old person into the new shot).

Every sample is generated from ``seed + index``, so a run is reproducible
and a resumed run sees the same data.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .pseudo_alpha import PseudoAlpha
from .videos import VideoSequence, excerpt

CanvasSize = tuple[int, int]  # (H, W)


@dataclass
class ClipConfig:
    """Probabilities and ranges of the synthesis (defaults are the shipped engine's)."""

    size: CanvasSize = (144, 256)
    length: int = 8
    p_composite: float = 0.65
    p_synthetic_bg: float = 0.2
    p_static_camera: float = 0.35
    p_cut: float = 0.15
    p_motion_blur: float = 0.15
    p_grey: float = 0.05
    p_squash: float = 0.4
    max_noise: float = 4.0
    #: composite clips: the person's height over the canvas height (small values: full-body, far from the camera)
    person_scale: tuple[float, float] = (0.7, 1.9)
    #: share of clips cut from real video (:mod:`.videos`), when the run has any
    p_video: float = 0.0


def load_backgrounds(root: Path, long_side: int = 512) -> list[np.ndarray]:
    """All background photos under ``root`` (recursively), RGB, downscaled once."""
    images = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        scale = long_side / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(np.ascontiguousarray(img[:, :, ::-1]))
    if not images:
        raise FileNotFoundError(f"no background images under {root}")
    return images


def synthetic_background(rng: np.random.Generator, size: CanvasSize) -> np.ndarray:
    """An indoor-like scene: a wall gradient, furniture-like boxes, a blur.

    The real background photos are mostly outdoor scenes; webcam users sit in
    rooms. These fill that gap with plain walls, shelves and door frames."""
    h, w = size[0] * 2, size[1] * 2
    top, bottom = rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = (top * (1 - ramp) + bottom * ramp).astype(np.float32) * np.ones((1, w, 1), np.float32)
    for _ in range(rng.integers(2, 9)):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        x1, y1 = x0 + rng.integers(w // 10, w // 2), y0 + rng.integers(h // 10, h)
        colour = rng.uniform(0, 255, 3)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), colour.tolist(), -1)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 6))
    return np.clip(img, 0, 255).astype(np.uint8)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def _affine(scale: float, angle_deg: float, centre_src: tuple[float, float], centre_dst: tuple[float, float]) -> np.ndarray:
    """2x3 matrix mapping ``centre_src`` to ``centre_dst`` with rotation and scale about it."""
    m = cv2.getRotationMatrix2D(centre_src, angle_deg, scale)
    m[:, 2] += np.array(centre_dst) - np.array(centre_src)
    return m


def _interp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return a + (b - a) * t


@dataclass
class Portrait:
    """One portrait in memory: working-resolution RGB image, foreground, soft alpha and
    binary hand-labelled mask (float32 [0, 1])."""

    image: np.ndarray
    foreground: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray

    @classmethod
    def load(cls, paths: PseudoAlpha, masks: Path | None = None) -> "Portrait":
        """``masks``: the folder of the hand-labelled masks; without it the mask is the soft alpha thresholded."""
        image = cv2.imread(str(paths.image), cv2.IMREAD_COLOR)[:, :, ::-1]
        fg = cv2.imread(str(paths.foreground), cv2.IMREAD_COLOR)[:, :, ::-1]
        alpha = cv2.imread(str(paths.alpha), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        if masks is None:
            mask = (alpha >= 0.5).astype(np.float32)
        else:
            hand = cv2.imread(str(masks / f"{paths.stem}.png"), cv2.IMREAD_GRAYSCALE)
            mask = (cv2.resize(hand, alpha.shape[::-1], interpolation=cv2.INTER_AREA) > 127).astype(np.float32)
        return cls(np.ascontiguousarray(image), np.ascontiguousarray(fg), alpha, mask)

    def mirrored(self) -> "Portrait":
        return Portrait(self.image[:, ::-1], self.foreground[:, ::-1], self.alpha[:, ::-1], self.mask[:, ::-1])


class ClipSynthesizer:
    """Makes one clip: frames, alphas, true foreground/background and flags."""

    def __init__(self, portraits: list[PseudoAlpha], backgrounds: list[np.ndarray], config: ClipConfig,
                 masks: Path | None = None, videos: list[VideoSequence] | None = None) -> None:
        """``masks``: the hand-labelled masks' folder (each clip's ``mask``, the
        segmentation target); without it, the soft alphas thresholded.
        ``videos``: real sequences, a ``p_video`` share of the clips."""
        self.portraits = portraits
        self.backgrounds = backgrounds
        self.cfg = config
        self.masks = masks
        self.videos = videos or []

    def clip(self, rng: np.random.Generator, size: CanvasSize | None = None) -> dict[str, np.ndarray]:
        """One clip on a canvas of ``size`` (H, W; default: the config's)."""
        cfg = self.cfg
        size = tuple(size or cfg.size)
        frames = self._one_shot(rng, cfg.length, size)
        cut = -1
        if cfg.length >= 4 and rng.random() < cfg.p_cut:
            cut = int(rng.integers(2, cfg.length - 1))
            other = self._one_shot(rng, cfg.length - cut, size)
            frames = {k: np.concatenate([v[:cut], other[k]]) if v.ndim > 1 else v for k, v in frames.items()}
            frames["has_fb"] = np.minimum(frames["has_fb"], other["has_fb"])
        frames["cut"] = np.array(cut, np.int64)
        return frames

    def _one_shot(self, rng: np.random.Generator, length: int, size: CanvasSize) -> dict[str, np.ndarray]:
        if self.videos and rng.random() < self.cfg.p_video:
            frames, masks = excerpt(rng, self.videos[int(rng.integers(len(self.videos)))], length)
            alphas = list(masks.astype(np.float32) / 255)  # hand masks: hard edges are their truth
            out = self._through_window(rng, list(frames), alphas, alphas, size)
        else:
            portrait = Portrait.load(self.portraits[int(rng.integers(len(self.portraits)))], self.masks)
            if rng.random() < 0.5:
                portrait = portrait.mirrored()
            if rng.random() < self.cfg.p_composite:
                out = self._composite(rng, portrait, length, size)
            else:
                out = self._through_window(rng, [portrait.image] * length, [portrait.alpha] * length,
                                           [portrait.mask] * length, size)
        self._photometric(rng, out)
        return out

    # -- geometry -----------------------------------------------------------------
    def _motion(self, rng: np.random.Generator, length: int, start: np.ndarray, jitter: np.ndarray) -> list[np.ndarray]:
        """Per-frame parameter vectors moving smoothly from ``start`` to a nearby end."""
        if length == 1 or rng.random() < self.cfg.p_static_camera:
            end = start + rng.normal(0, 0.1, start.shape) * jitter
        else:
            end = start + rng.uniform(-1, 1, start.shape) * jitter
        ts = _smoothstep(np.linspace(0, 1, length)) if length > 1 else np.zeros(1)
        return [_interp(start, end, float(t)) for t in ts]

    def _background(self, rng: np.random.Generator, length: int, size: CanvasSize) -> list[np.ndarray]:
        h, w = size
        if rng.random() < self.cfg.p_synthetic_bg:
            src = synthetic_background(rng, size)
        else:
            src = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            if rng.random() < 0.5:
                src = src[:, ::-1]
        sh, sw = src.shape[:2]
        cover = max(h / sh, w / sw)
        start = np.array([cover * rng.uniform(1.0, 1.4), rng.uniform(0.35, 0.65) * sw, rng.uniform(0.35, 0.65) * sh, 0.0])
        jitter = np.array([0.1 * cover, 0.08 * sw, 0.05 * sh, 2.0])
        out = []
        for scale, cx, cy, angle in self._motion(rng, length, start, jitter):
            m = _affine(max(scale, cover), angle, (cx, cy), (w / 2, h / 2))
            out.append(cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        return out

    def _composite(self, rng: np.random.Generator, p: Portrait, length: int, size: CanvasSize) -> dict[str, np.ndarray]:
        h, w = size
        ph, pw = p.alpha.shape
        person_h = h * rng.uniform(*self.cfg.person_scale)
        scale = person_h / ph
        cx = rng.uniform(0.2, 0.8) * w
        bottom = h + rng.uniform(0.02, 0.35) * person_h
        start = np.array([scale, cx, bottom - person_h / 2, rng.uniform(-6, 6)])
        jitter = np.array([0.12 * scale, 0.12 * w, 0.06 * h, 6.0])
        bgs = self._background(rng, length, size)
        alphas, masks, fgs = [], [], []
        for (s, x, y, angle), bg in zip(self._motion(rng, length, start, jitter), bgs):
            m = _affine(s, angle, (pw / 2, ph / 2), (x, y))
            alphas.append(cv2.warpAffine(p.alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0))
            masks.append(cv2.warpAffine(p.mask, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0))
            fgs.append(cv2.warpAffine(p.foreground, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        fg = np.stack(fgs).astype(np.float32) / 255
        bg = np.stack(bgs).astype(np.float32) / 255
        alpha = np.stack(alphas)[..., None]
        src = alpha * fg + (1 - alpha) * bg
        return {"src": src, "alpha": alpha, "mask": np.stack(masks)[..., None], "fg": fg, "bg": bg,
                "has_fb": np.array(1.0, np.float32)}

    def _through_window(self, rng: np.random.Generator, images: list[np.ndarray], alphas: list[np.ndarray],
                        masks: list[np.ndarray], size: CanvasSize) -> dict[str, np.ndarray]:
        """Real pixels (a still photo repeated, or video frames) seen through a
        slowly moving window of the canvas's aspect, or squashed whole."""
        h, w = size
        length = len(images)
        ph, pw = alphas[0].shape
        if rng.random() < self.cfg.p_squash:
            # whole photo into the canvas, aspect not kept: what a landscape engine sees of a portrait photo
            win_w, win_h = pw * rng.uniform(0.85, 1.0), ph * rng.uniform(0.85, 1.0)
        else:  # a window of the canvas's aspect, inside the photo (a tall canvas narrows it)
            win_w = min(pw * rng.uniform(0.6, 1.0), ph * w / h)
            win_h = win_w * h / w
        start = np.array([rng.uniform(win_w / 2, pw - win_w / 2 + 1e-3), rng.uniform(win_h / 2, ph - win_h / 2 + 1e-3), 1.0, rng.uniform(-6, 6)])
        jitter = np.array([0.08 * pw, 0.08 * ph, 0.1, 3.0])
        out: dict[str, list[np.ndarray]] = {"src": [], "alpha": [], "mask": []}
        motion = self._motion(rng, length, start, jitter)
        for (cx, cy, zoom, angle), *layers in zip(motion, images, alphas, masks):
            sx, sy = w / (win_w / zoom), h / (win_h / zoom)
            m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
            m = np.diag([sx, sy]) @ m
            m[:, 2] += np.array([w / 2, h / 2]) - np.diag([sx, sy]) @ np.array([cx, cy])
            for key, layer in zip(out, layers):
                out[key].append(cv2.warpAffine(layer, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
        src = np.stack(out["src"]).astype(np.float32) / 255
        zeros = np.zeros_like(src)
        return {"src": src, "alpha": np.stack(out["alpha"])[..., None], "mask": np.stack(out["mask"])[..., None],
                "fg": zeros, "bg": zeros, "has_fb": np.array(0.0, np.float32)}

    # -- photometry ------------------------------------------------------------------
    def _photometric(self, rng: np.random.Generator, out: dict[str, np.ndarray]) -> None:
        """Colour jitter and lighting drift applied to the frame and, for the
        compositional loss to stay consistent, to the true fg/bg as well."""
        length = out["src"].shape[0]
        gains = rng.uniform(0.85, 1.15, 3) * rng.uniform(0.75, 1.2)
        drift = np.linspace(1.0, rng.uniform(0.85, 1.15), length)[:, None, None, None]
        grey = rng.random() < self.cfg.p_grey
        for key in ("src", "fg", "bg"):
            x = out[key] * gains * drift
            if grey:
                x = np.repeat(x.mean(-1, keepdims=True), 3, -1)
            out[key] = np.clip(x, 0, 1).astype(np.float32)
        if rng.random() < self.cfg.p_motion_blur:
            k = int(rng.integers(3, 8))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2] = 1.0 / k
            kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1), (k, k))
            kernel /= kernel.sum()
            for key in ("src", "alpha", "mask"):
                out[key] = np.stack([cv2.filter2D(f, -1, kernel).reshape(f.shape) for f in out[key]])
        sigma = rng.uniform(0, self.cfg.max_noise) / 255
        out["src"] = np.clip(out["src"] + rng.normal(0, sigma, out["src"].shape).astype(np.float32), 0, 1)
