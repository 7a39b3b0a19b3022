"""Offline quality mode: seconds per 1080p frame per path, and edge quality side by side.

    python benchmarks/quality_mode.py [--model NAME|PATH] [--refine PATH] [--eg1800 40] [--frames 3] [--flip-average]

Speed: one 1080p frame (an AISegment portrait composited at full height over
a background photo) through the real-time engine alone and through each
quality path (closed-form, refine, both), in this process, then the pool's
throughput with ``--workers`` processes.

Quality (mean per image, via ``livematte.metrics``):

- alphamatting-lowres-train (trimap1) and the Composition-1k crops, in the
  trimap's unknown region: the real-time engine; closed-form given the GT
  trimap; a coarse alpha (the GT degraded as ``training.refine.degrade``
  does, fixed seed) and its refinement;
- temporal: dtSSD on a static-camera clip (one portrait, new sensor noise
  each frame) for the real-time engine and each path with and without the
  temporal stabiliser;
- portraits, whole image: AISegment soft alphas and EG1800 validation masks,
  real-time vs each ``--quality high`` method, plus the share of the error
  that lies *outside* the band (pixels the quality mode never touches, so
  only a better coarse matte can fix them).

The real-time engine defaults to the shipped default engine (``DEFAULT_ENGINE``) and
falls back to the MediaPipe peer (docs/examples) when it is not installed.
Needs ../shared/data; the degraded coarse alphas need torch (training extra).
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without pip install

from livematte.engine import Matter  # noqa: E402
from livematte.errors import EngineError  # noqa: E402
from livematte.metrics import evaluate_pair, unknown_region  # noqa: E402
from livematte.quality import METHODS, QualityMatter  # noqa: E402
from livematte.quality.band import UNKNOWN  # noqa: E402
from livematte.quality.closed_form import solve_alpha  # noqa: E402
from livematte.quality.offline import band_trimap, shipped_refine_engine  # noqa: E402
from livematte.quality.refine import Refiner  # noqa: E402
from livematte.quality.temporal import TemporalStabiliser  # noqa: E402
from livematte.metrics import dtssd  # noqa: E402
from livematte.registry import DEFAULT_ENGINE, find_engine  # noqa: E402

DATA = REPO.parent / "shared" / "data"
PEER_EXAMPLE = REPO / "docs" / "examples" / "obsbgr__mediapipe.json"
METRICS = ("SAD", "MSE", "Grad", "Conn")


def read_rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])


def read_grey(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def pairs(folder: str, truth: str, limit: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    root = DATA / folder
    out = []
    for truth_path in sorted((root / truth).glob("*.png"))[:limit]:
        image = next(iter(sorted((root / "image").glob(truth_path.stem + ".*"))))
        out.append((truth_path.stem, read_rgb(image), read_grey(truth_path)))
    return out


def coarse_manifest(name: str):
    try:
        return find_engine(name)
    except EngineError:
        if name != DEFAULT_ENGINE:
            raise
        print(f"note: {DEFAULT_ENGINE} not installed, real-time engine = MediaPipe peer", file=sys.stderr)
        return find_engine(str(PEER_EXAMPLE))


def frame_1080p() -> np.ndarray:
    """A portrait composited at full height onto a 1920x1080 background photo."""
    _, rgb, alpha = pairs("aisegment-matting-human-samples", "alpha", 1)[0]
    bg = read_rgb(sorted((DATA / "backgrounds" / "urban100").glob("*.jpg"))[0])
    bg = cv2.resize(bg, (1920, 1080), interpolation=cv2.INTER_AREA).astype(np.float32)
    scale = 1080 / rgb.shape[0]
    size = (round(rgb.shape[1] * scale), 1080)
    fg = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)
    a = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0
    x0 = (1920 - size[0]) // 2
    bg[:, x0:x0 + size[0]] = a * fg + (1 - a) * bg[:, x0:x0 + size[0]]
    return np.round(bg).astype(np.uint8)


def available_methods(refine: Path | None) -> list[str]:
    return [m for m in METHODS if refine is not None or m == "closed-form"]


def speed(new_matter: Callable[[], Matter], refine: Path | None, frames: int, workers: int) -> None:
    rgb = frame_1080p()
    print(f"\nSeconds per 1080p frame ({frames} frames each, after one warm-up; 2-core CPU box)")
    matter = new_matter()
    matter.infer(rgb)
    t0 = time.perf_counter()
    for _ in range(frames):
        matter.infer(rgb)
    print(f"  {'real-time engine only':30s} {(time.perf_counter() - t0) / frames:7.3f} s")
    for method in available_methods(refine):
        quality = QualityMatter(new_matter(), method=method, refine_engine=refine)
        quality.infer(rgb)
        t0 = time.perf_counter()
        for _ in range(frames):
            result = quality.infer(rgb)
        per = (time.perf_counter() - t0) / frames
        print(f"  {'quality ' + method:30s} {per:7.3f} s   (band work {result.timings['quality'] / 1000:.3f} s)")
    if workers > 0:
        quality = QualityMatter(new_matter(), method="closed-form", workers=workers)
        try:
            list(quality.imap([rgb] * workers))  # start the workers and JIT-compile there
            n = max(frames, 2 * workers)
            t0 = time.perf_counter()
            list(quality.imap([rgb] * n))
            print(f"  {f'closed-form, pool of {workers}':30s} {(time.perf_counter() - t0) / n:7.3f} s (throughput)")
        finally:
            quality.close()


def temporal(new_matter: Callable[[], Matter], refine: Path | None, frames: int = 8, noise: float = 3.0) -> None:
    """dtSSD on a static-camera clip: one portrait, fresh sensor noise every frame."""
    _, rgb, gt = pairs("aisegment-matting-human-samples", "alpha", 1)[0]
    rng = np.random.default_rng(0)
    clip = [np.clip(rgb + rng.normal(0.0, noise, rgb.shape), 0, 255).astype(np.uint8) for _ in range(frames)]
    truth = [gt] * frames
    print(f"\nStatic-camera clip ({frames} frames of one AISegment portrait, noise sigma {noise}): dtSSD vs the static truth")
    realtime = new_matter()
    print(f"  {'real-time engine':44s} {dtssd([realtime.infer(f).alpha for f in clip], truth):.5f}")
    for method in available_methods(refine):
        for label, strength in (("without stabiliser", 0.0), ("with stabiliser", 0.8)):
            quality = QualityMatter(new_matter(), method=method, refine_engine=refine,
                                    stabiliser=TemporalStabiliser(strength=strength))
            alphas = [r.alpha for r in quality.imap(clip)]
            print(f"  {f'quality {method}, {label}':44s} {dtssd(alphas, truth):.5f}")


def mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def print_table(title: str, table: dict[str, list[dict[str, float]]], extra: tuple[str, ...] = ()) -> None:
    print(f"\n{title}")
    print(f"  {'method':34s}" + "".join(f"{m:>9s}" for m in METRICS + extra))
    for name, rows in table.items():
        mean = mean_rows(rows)
        print(f"  {name:34s}" + "".join(f"{mean[m]:9.4f}" if m == "MSE" else f"{mean[m]:9.3f}"
                                         for m in METRICS + extra))


def trimap_sets(new_matter: Callable[[], Matter], refine: Path | None) -> None:
    from training.refine import degrade

    sets = {"alphamatting-lowres-train (trimap1, unknown region)": ("alphamatting-lowres-train", "trimap1"),
            "Composition-1k crops (trimap, unknown region)": ("adobe-comp1k-foamliu-samples", "trimap")}
    refiner = Refiner(refine) if refine is not None else None
    for set_index, (title, (folder, trimap_dir)) in enumerate(sets.items()):
        table: dict[str, list[dict[str, float]]] = {}
        for i, (stem, rgb, gt) in enumerate(pairs(folder, "alpha")):
            trimap = read_grey(DATA / folder / trimap_dir / f"{stem}.png")
            region = unknown_region(trimap)
            realtime = new_matter()
            table.setdefault("real-time engine", []).append(evaluate_pair(realtime.infer(rgb).alpha, gt, region))
            table.setdefault("closed-form, GT trimap", []).append(evaluate_pair(solve_alpha(rgb, trimap), gt, region))
            coarse = degrade(gt.astype(np.float32) / 255.0, np.random.default_rng([1234, set_index, i]))
            table.setdefault("coarse (degraded GT)", []).append(evaluate_pair(coarse, gt, region))
            band = band_trimap(coarse, None, 0.01)
            table.setdefault("closed-form, band of coarse", []).append(
                evaluate_pair(solve_alpha(rgb, band, prior=coarse), gt, region))
            if refiner is not None:
                refined = refiner.refine(rgb, coarse, band == UNKNOWN)
                table.setdefault("refine(coarse)", []).append(evaluate_pair(refined, gt, region))
        print_table(title, table)


def portrait_sets(new_matter: Callable[[], Matter], refine: Path | None, eg1800: int) -> None:
    sets = {"AISegment portraits (soft alpha, whole image)": pairs("aisegment-matting-human-samples", "alpha"),
            f"EG1800 validation, first {eg1800} (binary masks, whole image)":
                pairs("eg1800-portraits", "mask", eg1800)}
    methods = available_methods(refine)
    for title, samples in sets.items():
        table: dict[str, list[dict[str, float]]] = {}
        realtime = new_matter()
        qualities = {m: QualityMatter(new_matter(), method=m, refine_engine=refine) for m in methods}
        for _, rgb, gt in samples:
            realtime.reset()
            result = realtime.infer(rgb)
            band = band_trimap(result.alpha, result.trimap, 0.01) == UNKNOWN
            row = evaluate_pair(result.alpha, gt)
            row["out%"] = 100.0 * evaluate_pair(result.alpha, gt, ~band)["SAD"] / max(row["SAD"], 1e-9)
            table.setdefault("real-time", []).append(row)
            for method, quality in qualities.items():
                quality.reset()
                row = evaluate_pair(quality.infer(rgb).alpha, gt)
                row["out%"] = 100.0 * evaluate_pair(result.alpha, gt, ~band)["SAD"] / max(row["SAD"], 1e-9)
                table.setdefault(f"--quality high ({method})", []).append(row)
        print_table(title + "; out% = share of SAD outside the band", table, ("out%",))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_ENGINE, help="real-time engine name or path")
    ap.add_argument("--refine", type=Path, help="refinement engine (default: the shipped lm-refine if installed)")
    ap.add_argument("--frames", type=int, default=3, help="1080p frames timed per path")
    ap.add_argument("--workers", type=int, default=2, help="pool size for the throughput row (0: skip)")
    ap.add_argument("--eg1800", type=int, default=40, help="EG1800 validation portraits to evaluate")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--flip-average", action="store_true",
                    help="the real-time engine also mattes each mirror image and averages (Matter(flip_average=True))")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"error: {DATA} not found (the benchmark needs ../shared/data)", file=sys.stderr)
        return 2
    manifest = coarse_manifest(args.model)
    refine = args.refine
    if refine is None:
        try:
            refine = shipped_refine_engine()
        except EngineError as exc:
            print(f"note: {exc}; refinement rows skipped", file=sys.stderr)
    print(f"real-time engine: {manifest.name}{' (mirror image averaged in)' if args.flip_average else ''}; "
          f"refinement engine: {refine or 'none'}")
    new_matter = functools.partial(Matter, manifest, flip_average=args.flip_average)
    if not args.skip_speed:
        speed(new_matter, refine, args.frames, args.workers)
    temporal(new_matter, refine)
    trimap_sets(new_matter, refine)
    portrait_sets(new_matter, refine, args.eg1800)
    return 0


if __name__ == "__main__":
    sys.exit(main())
