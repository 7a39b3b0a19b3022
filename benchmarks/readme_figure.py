"""Regenerate docs/before-after.png with the README's main command.

    python benchmarks/readme_figure.py [--model NAME|path] [--frame 45]

Runs `livematte sample` and `livematte process sample.mp4 out.mp4 --bg blur`
in a temporary directory (with --model when given, else the default engine,
and --matte-out to keep the mattes), then puts the same frame of input and
output side by side. Below them, an enlarged piece at the person's edge:
the same frame and matte composited over the plain blur livematte used
before (the person's colours glow into the background) and the output's
halo-free blur.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from blur_halo import PlainBlur  # noqa: E402
from livematte.backgrounds import DEFAULT_BLUR_RADIUS  # noqa: E402
from livematte.cli import main as livematte  # noqa: E402
from livematte.compositor import Compositor  # noqa: E402
from livematte.sources import open_source  # noqa: E402

OUT = REPO / "docs" / "before-after.png"


def frame_at(path: Path, index: int) -> np.ndarray:
    with open_source(str(path)) as src:
        for frame in src:
            if frame.index == index:
                return frame.rgb
    raise SystemExit(f"{path} has no frame {index}")


def label(image: np.ndarray, text: str) -> np.ndarray:
    image = image.copy()
    cv2.putText(image, text, (16, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 0, 0), 5, cv2.LINE_AA)
    cv2.putText(image, text, (16, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (255, 255, 255), 2, cv2.LINE_AA)
    return image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="engine name or path (default: livematte's default engine)")
    parser.add_argument("--frame", type=int, default=45)
    parser.add_argument("--crop-x", type=int, default=420, help="left of the enlarged 320x180 piece, in frame pixels")
    parser.add_argument("--crop-y", type=int, default=330, help="top of the enlarged piece")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="livematte-figure-") as tmp:
        sample, out, mattes = Path(tmp) / "sample.mp4", Path(tmp) / "out.mp4", Path(tmp) / "mattes"
        model = ["--model", args.model] if args.model else []
        process = ["-q", "process", str(sample), str(out), "--bg", "blur", "--matte-out", str(mattes), *model]
        for command in (["-q", "sample", str(sample)], process):
            code = livematte(command)
            if code:
                return code
        before, after = frame_at(sample, args.frame), frame_at(out, args.frame)
        matte = cv2.imread(str(mattes / f"{args.frame + 1:06d}.png"), cv2.IMREAD_GRAYSCALE)
    height, width = before.shape[:2]
    plain = Compositor(PlainBlur(DEFAULT_BLUR_RADIUS), (width, height)).compose(before, matte)
    gap = np.full((height, 8, 3), 255, np.uint8)
    figure = np.hstack([label(before, "input (livematte sample)"), gap, label(after, "output (--bg blur)")])
    figure = cv2.resize(figure, (figure.shape[1] // 2, figure.shape[0] // 2), interpolation=cv2.INTER_AREA)
    zoom = [cv2.resize(image[args.crop_y:args.crop_y + 180, args.crop_x:args.crop_x + 320], (640, 360),
                       interpolation=cv2.INTER_NEAREST) for image in (plain, after)]
    halves = [label(zoom[0], "before: plain blur (halo)"), label(zoom[1], "after: person left out")]
    bottom = np.hstack([halves[0], np.full((360, figure.shape[1] - 1280, 3), 255, np.uint8), halves[1]])
    figure = np.vstack([figure, np.full((8, figure.shape[1], 3), 255, np.uint8), bottom])
    OUT.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(OUT), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
    print(f"wrote {OUT}" + (f" (engine {args.model})" if args.model else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
