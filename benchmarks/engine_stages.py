"""Per-stage cost of the matting engine and the compositor at 720p and 1080p.

Engine: for each engine (every installed engine, and the peer models in
../shared/peers through the manifests of livematte.peers), the mean milliseconds per
frame of each ``Matter`` stage (preprocess, inference, postprocess,
upsample) on a real portrait from ../shared/data (or the scikit-image
astronaut when that is absent), CPU backend.

Compositor: mean milliseconds per ``Compositor.compose`` for each
background kind, with and without colour decontamination.

With ``--repeat N`` every engine is timed N times, the rounds interleaved
(each round times every engine once, so a slow spell of a shared machine
falls on all of them alike), and each number is the median over the
rounds; the ``vs ref`` column is the median over the rounds of the
engine's inference (model call) time divided by the reference engine's in
the same round (``--reference``, MediaPipe square by default).

    python benchmarks/engine_stages.py [--frames 20] [--repeat 3] [--threads N] [--peers selfie mediapipe]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without pip install

from livematte.backgrounds import cover  # noqa: E402
from livematte.compositor import Compositor  # noqa: E402
from livematte.engine import STAGES, Matter  # noqa: E402
from livematte.errors import LivematteError  # noqa: E402
from livematte.peers import PEERS, write_peer_manifest  # noqa: E402
from livematte.registry import DEFAULT_ENGINE, find_engine, list_engines  # noqa: E402

SIZES = ((720, 1280), (1080, 1920))
PEER_DIR = REPO.parent / "shared" / "peers"
PORTRAITS = REPO.parent / "shared" / "data" / "eg1800-portraits"
BACKGROUNDS = REPO.parent / "shared" / "data" / "backgrounds"


def portrait_and_alpha() -> tuple[np.ndarray, np.ndarray]:
    """A real portrait and a soft alpha for it (its mask, feathered)."""
    images = sorted((PORTRAITS / "image").glob("*.jpg"))
    if images:
        rgb = cv2.cvtColor(cv2.imread(str(images[0])), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(PORTRAITS / "mask" / (images[0].stem + ".png")), cv2.IMREAD_GRAYSCALE)
    else:
        from skimage import data

        rgb = data.astronaut()
        mask = np.zeros(rgb.shape[:2], np.uint8)
        cv2.ellipse(mask, (256, 230), (150, 230), 0, 0, 360, 255, -1)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 3)
    return rgb, alpha


def engines(manifest_dir: Path, peers: list[str]) -> list:
    """Every installed engine, the default first, and the named peer models present in ../shared/peers."""
    found = sorted(list_engines(), key=lambda m: m.name != DEFAULT_ENGINE)
    for peer, (onnx_name, _) in PEERS.items():
        if peer in peers and (PEER_DIR / onnx_name).is_file():
            found.append(find_engine(str(write_peer_manifest(peer, PEER_DIR / onnx_name, manifest_dir))))
    return found


def time_engine(manifest, frame: np.ndarray, frames: int) -> tuple[dict[str, float], float]:
    """Mean wall ms per stage, and mean process CPU ms per frame (all threads)."""
    matter = Matter(manifest, scene_cut_threshold=None)
    matter.infer(frame)  # warm-up: session arenas, first-frame allocations
    totals = dict.fromkeys(STAGES, 0.0)
    cpu = time.process_time()
    for _ in range(frames):
        for stage, ms in matter.infer(frame).timings.items():
            totals[stage] += ms
    cpu_ms = (time.process_time() - cpu) / frames * 1e3
    matter.close()
    return {stage: total / frames for stage, total in totals.items()}, cpu_ms


def time_compositor(spec: str, frame: np.ndarray, alpha: np.ndarray, decontaminate: bool,
                    frames: int) -> tuple[float, float]:
    """(wall ms, process CPU ms) per composed frame."""
    height, width = frame.shape[:2]
    compositor = Compositor(spec, (width, height), decontaminate=decontaminate)
    compositor.compose(frame, alpha)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(frames):
        compositor.compose(frame, alpha)
    wall_ms = (time.perf_counter() - start) / frames * 1e3
    cpu_ms = (time.process_time() - cpu) / frames * 1e3
    compositor.close()
    return wall_ms, cpu_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="timed frames per measurement (default 20)")
    parser.add_argument("--threads", type=int, default=None, help="OpenCV threads (default: OpenCV's choice)")
    parser.add_argument("--peers", nargs="*", choices=sorted(PEERS), default=sorted(PEERS), metavar="PEER",
                        help=f"peer models to compare (default all: {', '.join(sorted(PEERS))})")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds per engine; medians are printed (default 1)")
    parser.add_argument("--reference", default="peer-selfie-square",
                        help="engine whose model call the 'vs ref' column divides by (default peer-selfie-square)")
    parser.add_argument("--no-compositor", action="store_true", help="time the engines only")
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    rgb, alpha = portrait_and_alpha()
    try:
        with tempfile.TemporaryDirectory() as manifest_dir:
            manifests = engines(Path(manifest_dir), args.peers)
    except LivematteError as exc:
        print(exc, file=sys.stderr)
        return 3

    rounds: dict[tuple[str, int, int], list[tuple[dict[str, float], float]]] = defaultdict(list)
    for _ in range(args.repeat):
        for manifest in manifests:
            for height, width in SIZES:
                # the recurrent peer runs its graph at full frame size: fewer frames keep this short
                frames = max(3, args.frames // 4) if manifest.input.downsample_in_graph else args.frames
                rounds[manifest.name, height, width].append(time_engine(manifest, cover(rgb, (height, width)), frames))

    print(f"engine stages, mean wall ms per frame over {args.frames} frames (CPU backend), median of {args.repeat} "
          f"interleaved round(s); cpu = process CPU ms per frame, all threads; vs ref = inference / {args.reference}'s")
    print(f"{'engine':30} {'frame':>9} " + " ".join(f"{s:>11}" for s in STAGES) + f" {'total':>8} {'cpu':>8} {'vs ref':>7}")
    for (name, height, width), timed in rounds.items():
        stages = {s: statistics.median(t[0][s] for t in timed) for s in STAGES}
        cpu_ms = statistics.median(t[1] for t in timed)
        reference = rounds.get((args.reference, height, width))
        ratio = (f"{statistics.median(t[0]['inference'] / r[0]['inference'] for t, r in zip(timed, reference)):7.2f}"
                 if reference else f"{'-':>7}")
        print(f"{name:30} {width}x{height:<4} " + " ".join(f"{stages[s]:11.2f}" for s in STAGES)
              + f" {sum(stages.values()):8.2f} {cpu_ms:8.2f} {ratio}")

    if args.no_compositor:
        return 0
    print(f"\ncompositor, mean ms per frame over {args.frames} frames, wall / process CPU")
    print(f"{'background':14} {'frame':>9} {'decontaminate':>16} {'plain':>16}")
    images = sorted(BACKGROUNDS.rglob("*.jpg")) + sorted(BACKGROUNDS.rglob("*.png"))
    kinds = ["#00b140", "blur", "bokeh", "transparent"] + ([str(images[0])] if images else [])
    for spec in kinds:
        for height, width in SIZES:
            frame, matte = cover(rgb, (height, width)), cover(alpha, (height, width))
            cost = [time_compositor(spec, frame, matte, d, args.frames) for d in (True, False)]
            label = spec if len(spec) < 14 else "image"
            print(f"{label:14} {width}x{height:<4} " + " ".join(f"{w:8.2f} /{c:6.2f}" for w, c in cost))
    return 0


if __name__ == "__main__":
    sys.exit(main())
