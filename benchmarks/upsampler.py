"""Guided vs bilinear alpha upsampling: quality on real soft mattes and cost at 720p/1080p.

Quality: each ground-truth alpha is shrunk to ~256 px (what a real-time
engine predicts), enlarged back to full size with each upsampler, guided by
the real photo, and compared with the original alpha using
``livematte.metrics`` (SAD and Grad in thousands, MSE x 1e3, lower is
better). Data: ../shared/data/aisegment-matting-human-samples (human
mattes), alphamatting-lowres-train (hair/fur mattes) and eg1800-portraits
(hand-drawn binary masks: what the resolution alone costs a perfect
prediction on the portrait set; ``--side 128`` is stride 2 of a 256x192
input, the real-time engines' matte, for their 600x800 photos).

Cost: milliseconds per frame (wall and process CPU) upsampling a 144x256
alpha to 1280x720 and 1920x1080, over a real photo stretched to that size.

    python benchmarks/upsampler.py [--side 256] [--repeat 30]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without pip install

from livematte import metrics  # noqa: E402
from livematte.upsample import GuidedUpsampler, bilinear_upsample  # noqa: E402

DATA = REPO.parent / "shared" / "data"
#: data set -> folder holding its truth
SETS = {"aisegment-matting-human-samples": "alpha", "alphamatting-lowres-train": "alpha", "eg1800-portraits": "mask"}


def load_pairs(folder: Path, truth: str = "alpha") -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB uint8, alpha float32 in [0, 1]) for every image with a truth (in ``truth/``) of the same stem."""
    pairs = []
    for alpha_path in sorted((folder / truth).glob("*.png")):
        images = sorted((folder / "image").glob(alpha_path.stem + ".*"))
        if not images:
            continue
        rgb = cv2.cvtColor(cv2.imread(str(images[0]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        alpha = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        pairs.append((rgb, alpha))
    return pairs


def shrink(alpha: np.ndarray, side: int) -> np.ndarray:
    """The alpha area-averaged so its long side is ``side``: an ideal low-res prediction."""
    h, w = alpha.shape
    scale = side / max(h, w)
    return cv2.resize(alpha, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def quality(upsamplers: dict, pairs: list, side: int) -> dict[str, tuple[float, float, float]]:
    """Mean (SAD, MSE*1e3, Grad) per upsampler over ``pairs``."""
    results = {}
    for name, upsample in upsamplers.items():
        scores = []
        for rgb, alpha in pairs:
            pred = upsample(shrink(alpha, side), rgb)
            scores.append((metrics.sad(pred, alpha), metrics.mse(pred, alpha) * 1e3,
                           metrics.gradient_error(pred, alpha)))
        results[name] = tuple(np.mean(scores, axis=0))
    return results


def cost(upsample, rgb: np.ndarray, alpha: np.ndarray, size: tuple[int, int], repeat: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per call for a 144x256 alpha onto a frame of ``size`` (height, width)."""
    height, width = size
    frame = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    low = cv2.resize(alpha, (256, 144), interpolation=cv2.INTER_AREA)
    upsample(low, frame)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        upsample(low, frame)
    return ((time.perf_counter() - wall) / repeat * 1e3, (time.process_time() - cpu) / repeat * 1e3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=256, help="long side of the low-res alpha (default 256)")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per size (default 30)")
    args = parser.parse_args()

    sets = {name: load_pairs(DATA / name, truth) for name, truth in SETS.items() if (DATA / name / truth).is_dir()}
    if not sets:
        print(f"no evaluation data under {DATA}", file=sys.stderr)
        return 2
    upsamplers = {"bilinear": bilinear_upsample, "guided": GuidedUpsampler()}

    print(f"quality: ground truth shrunk to {args.side} px and enlarged back (lower is better)")
    print(f"{'data set':34} {'images':>6} {'upsampler':10} {'SAD':>8} {'MSEx1e3':>8} {'Grad':>8}")
    for name, pairs in sets.items():
        for method, (sad, mse, grad) in quality(upsamplers, pairs, args.side).items():
            print(f"{name:34} {len(pairs):>6} {method:10} {sad:8.3f} {mse:8.3f} {grad:8.3f}")

    rgb, alpha = next(iter(sets.values()))[0]
    print(f"\ncost: 144x256 alpha to full frame, mean of {args.repeat} calls, "
          f"{cv2.getNumThreads()} OpenCV threads")
    print(f"{'size':10} {'upsampler':10} {'wall ms':>8} {'CPU ms':>8}")
    for size in ((720, 1280), (1080, 1920)):
        for method, upsample in upsamplers.items():
            wall, cpu = cost(upsample, rgb, alpha, size, args.repeat)
            print(f"{size[1]}x{size[0]:<5} {method:10} {wall:8.2f} {cpu:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
