"""Soft training alphas from a matting teacher (MODNet) fused with the hand-labelled masks.

EG1800's masks are binary and drawn a few pixels off at hair and shoulders;
closed-form matting in a thin band (:mod:`.pseudo_alpha`) only softens the
edge the mask already has. MODNet (Ke et al., AAAI 2022, Apache-2.0) is a
real soft-alpha portrait matting network, but it never saw these people and
sometimes drops an arm or keeps a backdrop patch. So the two are fused: the
mask decides away from its edge, the teacher decides in a band around it
(hair, soft edges), and where the teacher contradicts the mask beyond a
small tolerance inside that band, the mask wins.

The teacher is slow (about 0.5 s a frame on 2 cores), so its raw output is
cached per (model file, dataset, short side, flip) at the teacher's own
resolution, and the fused labels per fusion setting; a rerun reuses both.

    python -m training.data.teacher_alpha ../shared/data/eg1800-train --scales 384 --flip
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .pseudo_alpha import WORK_SIZE, PseudoAlpha, cached_sample, default_cache_dir, write_image

MODNET_ONNX = Path(__file__).resolve().parents[2].parent / "shared" / "peers" / "ZHKKKe__modnet_photographic_portrait_matting.onnx"
MODNET_MULTIPLE = 32  # MODNet's input sides must be multiples of 32


@dataclass(frozen=True)
class TeacherSetting:
    """Which teacher passes are averaged: short sides in pixels, with or without the mirror image."""

    scales: tuple[int, ...] = (384,)
    flip: bool = True

    def passes(self) -> list[tuple[int, bool]]:
        return [(s, f) for s in self.scales for f in ((False, True) if self.flip else (False,))]

    @property
    def key(self) -> str:
        return "s" + "-".join(map(str, self.scales)) + ("f" if self.flip else "")


@dataclass(frozen=True)
class FusionSetting:
    """Where the teacher may decide, in pixels at the label's working size (300x400).

    ``band``: half-width of the band around the mask edge handed to the
    teacher. ``tolerance``: inside the band, a pixel farther than this from
    the mask edge on which the teacher's person/background call (alpha at
    0.5) contradicts the mask takes the mask's value. The defaults were the
    best of those measured against real soft mattes (``training.label_quality``,
    docs/training.md): wider bands and tolerances let the teacher's mistakes in.
    """

    band: int = 4
    tolerance: int = 0

    @property
    def key(self) -> str:
        return f"b{self.band}t{self.tolerance}"


def model_key(onnx_path: Path) -> str:
    """Short content hash of the teacher graph, so a different file never reuses a cache."""
    return hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:12]


class ModnetTeacher:
    """MODNet through ONNX Runtime: RGB uint8 image in, alpha at the image's size out."""

    def __init__(self, onnx_path: Path = MODNET_ONNX, threads: int = 2) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, rgb: np.ndarray, short_side: int, flip: bool) -> np.ndarray:
        """One pass at ``short_side`` (the mirror image when ``flip``), alpha at the model's size."""
        h, w = rgb.shape[:2]
        scale = short_side / min(h, w)
        size = tuple(max(MODNET_MULTIPLE, round(d * scale / MODNET_MULTIPLE) * MODNET_MULTIPLE) for d in (h, w))
        x = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if flip:
            x = x[:, ::-1]
        x = (x.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        alpha = self.session.run(None, {self.input: np.ascontiguousarray(x)})[0][0, 0]
        return np.clip(alpha[:, ::-1] if flip else alpha, 0.0, 1.0)


class TeacherCache:
    """Raw teacher passes on disk: ``root/<model hash>/<dataset>/s<short>[f]/<stem>.png`` (16-bit)."""

    def __init__(self, root: Path, onnx_path: Path = MODNET_ONNX, threads: int = 2) -> None:
        self.onnx_path = onnx_path
        self.root = root / model_key(onnx_path)
        self.threads = threads
        self._teacher: ModnetTeacher | None = None

    def alpha(self, image_path: Path, setting: TeacherSetting, size: tuple[int, int]) -> np.ndarray:
        """Mean of the setting's passes for one image, float32 in [0, 1] at ``size`` (W, H)."""
        passes = []
        for short_side, flip in setting.passes():
            path = self.root / image_path.parent.parent.name / f"s{short_side}{'f' if flip else ''}" / f"{image_path.stem}.png"
            if not path.exists():
                if self._teacher is None:
                    self._teacher = ModnetTeacher(self.onnx_path, self.threads)
                rgb = cv2.cvtColor(cv2.imread(str(image_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_image(path, np.round(self._teacher(rgb, short_side, flip) * 65535).astype(np.uint16))
            raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535.0
            passes.append(cv2.resize(raw, size, interpolation=cv2.INTER_AREA))
        return np.mean(passes, axis=0)


def distance_to_edge(mask: np.ndarray) -> np.ndarray:
    """Pixels from each pixel to the nearest pixel of the other class of the binary ``mask``."""
    binary = (mask > 0.5).astype(np.uint8)
    inside = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - binary, cv2.DIST_L2, 5)
    return np.where(binary > 0, inside, outside)


def fuse(mask: np.ndarray, teacher: np.ndarray, setting: FusionSetting) -> np.ndarray:
    """The mask outside the band around its edge, the teacher inside it, the mask where they contradict."""
    binary = mask > 0.5
    dist = distance_to_edge(mask)
    contradicts = ((teacher >= 0.5) != binary) & (dist > setting.tolerance)
    use_teacher = (dist <= setting.band) & ~contradicts
    return np.where(use_teacher, teacher, binary.astype(np.float32)).astype(np.float32)


def label_one(image_path: Path, mask_path: Path, out_dir: Path, cache: TeacherCache,
              teacher: TeacherSetting, fusion: FusionSetting) -> PseudoAlpha:
    """Compute (or reuse) the fused label and foreground of one portrait at the working size."""
    return cached_sample(image_path, mask_path, out_dir,
                         lambda path, _rgb, mask: fuse(mask, cache.alpha(path, teacher, WORK_SIZE), fusion))


def label_dir(cache_root: Path, onnx_path: Path, dataset: Path, teacher: TeacherSetting, fusion: FusionSetting) -> Path:
    """Folder of one dataset's fused labels, named by everything that made them."""
    return cache_root / "fused" / f"{model_key(onnx_path)}-{teacher.key}-{fusion.key}" / dataset.resolve().name


def build_labels(dataset: Path, cache_root: Path, teacher: TeacherSetting = TeacherSetting(),
                 fusion: FusionSetting = FusionSetting(), limit: int | None = None,
                 onnx_path: Path = MODNET_ONNX, threads: int = 2) -> list[PseudoAlpha]:
    """Fused teacher labels for every ``image/*.jpg`` with a ``mask/*.png`` in ``dataset``."""
    if not onnx_path.is_file():
        raise FileNotFoundError(f"teacher model not found: {onnx_path}")
    out_dir = label_dir(cache_root, onnx_path, dataset, teacher, fusion)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = TeacherCache(cache_root / "raw", onnx_path, threads)
    images = sorted((dataset / "image").glob("*.jpg"))[:limit]
    results = []
    for i, image in enumerate(images):
        results.append(label_one(image, dataset / "mask" / f"{image.stem}.png", out_dir, cache, teacher, fusion))
        if i + 1 == len(images) or (i + 1) % 25 == 0:
            print(f"teacher labels {i + 1}/{len(images)}", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", type=Path, help="folder with image/ and mask/")
    ap.add_argument("--cache", type=Path, default=None, help="cache root (default: cache dir/teacher_alpha)")
    ap.add_argument("--teacher", type=Path, default=MODNET_ONNX, help="MODNet ONNX file")
    ap.add_argument("--scales", type=int, nargs="+", default=list(TeacherSetting.scales), help="short sides averaged")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=TeacherSetting.flip,
                    help="also average the mirror image")
    ap.add_argument("--band", type=int, default=FusionSetting.band)
    ap.add_argument("--tolerance", type=int, default=FusionSetting.tolerance)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    try:
        build_labels(args.dataset, args.cache or default_cache_dir() / "teacher_alpha",
                     TeacherSetting(tuple(args.scales), args.flip), FusionSetting(args.band, args.tolerance),
                     args.limit, args.teacher, args.threads)
    except (OSError, ValueError) as exc:
        sys.exit(f"teacher_alpha: error: {exc}")


if __name__ == "__main__":
    main()
