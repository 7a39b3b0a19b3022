"""How much of the person glows into the blurred background, before and after the halo-free blur.

    python benchmarks/blur_halo.py [--size 1280x720] [--frames 30] [--radius 25]

On the sample clip, whose true alpha and true background are known, it
compares each blurred background with the true background blurred (what a
blur would show with nobody in front of it) on the pure-background pixels
within two radii of the person: the plain blur of the whole frame that
livematte used before (:class:`PlainBlur`, kept here only to compare) against
the halo-free blur given the true matte, and the CPU time each takes per
frame on one OpenCV thread, as in the pipeline (and the bokeh's; CPU time,
not wall time, so a busy machine does not inflate it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livematte.backgrounds import Background, Blur, Bokeh  # noqa: E402
from livematte.resize import to_long_side  # noqa: E402
from livematte.sample import sample_frames, scene_background  # noqa: E402


class PlainBlur(Background):
    """The blur livematte had before: the whole frame, person included, at the same working size.

    Not registered: ``--bg`` never offers it; it is here to show what the halo-free blur fixed.
    """

    usage = "(not offered)"

    def __init__(self, radius: int):
        self.radius = radius

    @classmethod
    def parse(cls, text: str) -> None:
        return None

    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        small = to_long_side(rgb, 320)
        sigma = max(0.5, self.radius * small.shape[1] / w / 2.0)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--radius", type=int, default=25)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    cv2.setNumThreads(1)  # as the pipeline runs its stages
    fps = 30.0
    blur = Blur(args.radius)
    kinds = {"plain blur (before)": PlainBlur(args.radius).render,
             "halo-free blur": blur.render, f"bokeh:{args.radius}": Bokeh(args.radius).render}
    errors: dict[str, list[np.ndarray]] = {name: [] for name in kinds}
    seconds: dict[str, list[float]] = {name: [] for name in kinds}
    for index, (frame, true_alpha) in enumerate(sample_frames((width, height), args.frames / fps, fps)):
        alpha = np.round(true_alpha * 255).astype(np.uint8)
        empty = np.zeros_like(alpha)
        ideal = blur.render(scene_background(width, height, index / fps), empty).astype(np.int16)
        distance = cv2.distanceTransform((alpha == 0).astype(np.uint8), cv2.DIST_L2, 3)
        ring = (alpha == 0) & (distance < 2 * args.radius)
        for name, render in kinds.items():
            start = time.process_time()
            out = render(frame, alpha)
            seconds[name].append(time.process_time() - start)
            errors[name].append(np.abs(out.astype(np.int16) - ideal)[ring])
    print(f"{width}x{height}, {args.frames} frames of the sample clip, radius {args.radius}; error in grey levels "
          f"on pure-background pixels within {2 * args.radius} px of the person, against the true background blurred")
    print(f"{'':22s} {'mean':>6s} {'p99':>5s} {'max':>5s} {'CPU ms/frame':>13s}")
    print("(the bokeh's error is mostly its sharp focus zone: the true background there is not blurred)")
    for name, error in errors.items():
        error = np.concatenate(error)
        print(f"{name:22s} {error.mean():6.2f} {np.percentile(error, 99):5.0f} {error.max():5d} "
              f"{np.mean(seconds[name]) * 1000:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
