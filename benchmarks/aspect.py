"""Portrait frames into fixed-size engines: squashed (what the runtime does today) or padded to the engine's aspect.

Issue 11 asks for aspect-correct input ("never squash a frame"). Before a
new input size is trained, this measures what padding alone does with the
engines that exist: each 600x800 ``eg1800-portraits`` photo is either
squashed into the engine's input, or placed in the middle of a frame of the
engine's aspect (black bars, or the photo's edge pixels repeated) and the
matte cropped back; SAD/MSE/IoU against the hand masks, full resolution.

    python benchmarks/aspect.py lm-mobile-recurrent --peers mediapipe selfie [--limit 240]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without pip install

from livematte import metrics  # noqa: E402
from livematte.engine import Matter  # noqa: E402
from training.evaluate import DATA, Model, load_models, read_gray, read_pairs, read_rgb  # noqa: E402

#: how the rest of the engine-shaped frame is filled (None: squash the photo instead)
FILLS = {"squash": None, "black bars": cv2.BORDER_CONSTANT, "edge repeated": cv2.BORDER_REPLICATE}


def padded(rgb: np.ndarray, aspect: float, border: int) -> tuple[np.ndarray, slice]:
    """The photo centred in a frame of width/height ``aspect`` (wider only), and its columns there."""
    h, w = rgb.shape[:2]
    extra = max(0, round(h * aspect) - w)
    left = extra // 2
    frame = cv2.copyMakeBorder(rgb, 0, 0, left, extra - left, border, value=(0, 0, 0))
    return frame, slice(left, left + w)


def scores(model: Model, pairs: list[tuple[Path, Path]], border: int | None) -> dict[str, float]:
    """Mean SAD/MSE/IoU with the photo squashed (``border`` None) or padded with ``border``."""
    size = model.manifest.input.size
    aspect = size[1] / size[0] if size else None
    matter = Matter(model.manifest, scene_cut_threshold=None)
    rows = []
    for image, truth in pairs:
        rgb, gt = read_rgb(image), read_gray(truth)
        matter.reset()
        if border is None or aspect is None:
            alpha = matter.infer(rgb).alpha
        else:
            frame, columns = padded(rgb, aspect, border)
            alpha = np.ascontiguousarray(matter.infer(frame).alpha[:, columns])
        rows.append((metrics.sad(alpha, gt), metrics.mse(alpha, gt), metrics.iou(alpha, gt)))
    matter.close()
    return dict(zip(("SAD", "MSE", "IoU"), map(float, np.mean(rows, axis=0))))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("engines", nargs="*", help="engine names or manifest/ONNX paths")
    ap.add_argument("--peers", nargs="*", default=[], help="peer models from ../shared/peers")
    ap.add_argument("--limit", type=int, default=None, help="at most N portraits (default: all 240)")
    args = ap.parse_args(argv)
    pairs = read_pairs(DATA / "eg1800-portraits", "mask")[: args.limit]
    print(f"| model | fill | SAD | MSE | IoU |  ({len(pairs)} eg1800-portraits)\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in load_models(args.engines, tuple(args.peers), Path(tmp)):
            for fill, border in FILLS.items():
                m = scores(model, pairs, border)
                print(f"| {model.label} | {fill} | {m['SAD']:.2f} | {m['MSE']:.4f} | {m['IoU']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
