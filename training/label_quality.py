"""Which soft training labels are closer to real mattes: closed-form pseudo alphas or fused teacher labels?

    python -m training.label_quality --json label_quality.json

Each label source only sees what training sees: the photo and a binary
person mask. On the two AISegment images (the only real soft human mattes
in ``../shared``) the mask is the binarised truth (alpha >= 0.5), so a label
can be scored against the soft truth it never saw; a second pass redraws that
mask as polygons, the way hand-labelled masks cut across hair. On the 240
``eg1800-portraits`` the truth *is* the binary mask the labels are made
from: there the numbers only say how far a label strays from the hand mask
(the mask itself scores 0), which is a sanity check, not a quality score.

Everything is compared at the labels' working size (300x400), SAD (/1000)
and MSE inside a fixed band around the mask edge (the same for every
source, so fusion settings with wider bands stay comparable) and over the
whole image.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from livematte import metrics

from .config import REPO_ROOT
from .data.pseudo_alpha import WORK_SIZE, closed_form_alpha, default_cache_dir
from .data.teacher_alpha import MODNET_ONNX, FusionSetting, TeacherCache, TeacherSetting, distance_to_edge, fuse

DATA = REPO_ROOT.parent / "shared" / "data"
EVAL_BAND = 8  # pixels at 300x400 on each side of the mask edge (about 16 at 600x800)
HAND_TOLERANCE = 2.0  # pixels at 300x400 a hand-clicked outline may stray from the true edge

#: the teacher and fusion settings compared by default
TEACHERS = (TeacherSetting((384,), False), TeacherSetting((384,), True), TeacherSetting((512,), True),
            TeacherSetting((384, 512), True))
FUSIONS = (FusionSetting(4, 0), FusionSetting(4, 2), FusionSetting(8, 1), FusionSetting(8, 3), FusionSetting(12, 6))


def binarised(gt: np.ndarray) -> np.ndarray:
    """The truth cut at 0.5: a mask drawn exactly along the matte's middle."""
    return (gt >= 0.5).astype(np.float64)


def hand_drawn(gt: np.ndarray, tolerance: float = HAND_TOLERANCE) -> np.ndarray:
    """The binarised truth redrawn as polygons (Douglas-Peucker, ``tolerance`` px): hand
    annotators click outlines, so their masks cut straight across hair and small concavities."""
    contours, _ = cv2.findContours((gt >= 0.5).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    mask = np.zeros(gt.shape, np.uint8)
    polygons = [cv2.approxPolyDP(c, tolerance, True) for c in contours]
    cv2.drawContours(mask, polygons, -1, 1, thickness=cv2.FILLED)
    return mask.astype(np.float64)


def read_sample(image: Path, truth: Path) -> tuple[np.ndarray, np.ndarray]:
    """(RGB float image, soft truth in [0, 1]) at the working size."""
    bgr = cv2.resize(cv2.imread(str(image), cv2.IMREAD_COLOR), WORK_SIZE, interpolation=cv2.INTER_AREA)
    gt = cv2.resize(cv2.imread(str(truth), cv2.IMREAD_GRAYSCALE), WORK_SIZE, interpolation=cv2.INTER_AREA)
    return bgr[:, :, ::-1].astype(np.float64) / 255.0, gt.astype(np.float64) / 255.0


def sources(cache: TeacherCache, teachers: tuple[TeacherSetting, ...] = TEACHERS
            ) -> dict[str, Callable[[Path, np.ndarray, np.ndarray], np.ndarray]]:
    """Label source name -> (image path, RGB, mask) -> alpha."""
    out: dict[str, Callable[[Path, np.ndarray, np.ndarray], np.ndarray]] = {
        "mask": lambda _p, _rgb, mask: mask,
        "closed-form (band 4)": lambda _p, rgb, mask: closed_form_alpha(rgb, mask, 4),
    }
    for teacher in teachers:
        out[f"MODNet {teacher.key}"] = lambda p, _rgb, _m, t=teacher: cache.alpha(p, t, WORK_SIZE)
        for fusion in FUSIONS:
            out[f"fused {teacher.key} {fusion.key}"] = (
                lambda p, _rgb, mask, t=teacher, f=fusion: fuse(mask, cache.alpha(p, t, WORK_SIZE), f))
    return out


def score(folder: Path, truth: str, make_mask: Callable[[np.ndarray], np.ndarray],
          labellers: dict[str, Callable[[Path, np.ndarray, np.ndarray], np.ndarray]],
          limit: int | None) -> dict[str, dict[str, float]]:
    """Mean SAD/MSE in the evaluation band (around the true edge) and over the whole image, per label source."""
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    for image in sorted((folder / "image").iterdir())[:limit]:
        rgb, gt = read_sample(image, folder / truth / f"{image.stem}.png")
        mask = make_mask(gt)
        band = distance_to_edge(binarised(gt)) <= EVAL_BAND
        for name, label in labellers.items():
            alpha = np.clip(np.asarray(label(image, rgb, mask), np.float64), 0.0, 1.0)
            rows.setdefault(name, []).append((metrics.sad(alpha, gt, band), metrics.mse(alpha, gt, band),
                                              metrics.sad(alpha, gt), metrics.mse(alpha, gt)))
    return {name: dict(zip(("SAD band", "MSE band", "SAD", "MSE"), map(float, np.mean(r, axis=0))))
            for name, r in rows.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=None, help="teacher cache root (default: cache dir/teacher_alpha)")
    ap.add_argument("--limit", type=int, default=None, help="at most N eg1800 portraits (default: all 240)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--teachers", nargs="+", choices=[t.key for t in TEACHERS], default=[t.key for t in TEACHERS],
                    help="teacher settings to compare (each runs MODNet where its passes are not cached)")
    args = ap.parse_args(argv)
    cache = TeacherCache((args.cache or default_cache_dir() / "teacher_alpha") / "raw", MODNET_ONNX)
    labellers = sources(cache, tuple(t for t in TEACHERS if t.key in args.teachers))
    aisegment = DATA / "aisegment-matting-human-samples"
    table = {"aisegment, binarised (n=2)": score(aisegment, "alpha", binarised, labellers, None),
             "aisegment, hand-drawn (n=2)": score(aisegment, "alpha", hand_drawn, labellers, None),
             "eg1800-portraits": score(DATA / "eg1800-portraits", "mask", binarised, labellers, args.limit)}
    print("| set | label | SAD in band | MSE in band | SAD | MSE |\n|---|---|---|---|---|---|")
    for set_name, rows in table.items():
        for name, m in rows.items():
            print(f"| {set_name} | {name} | {m['SAD band']:.3f} | {m['MSE band']:.4f} | {m['SAD']:.3f} | {m['MSE']:.5f} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
