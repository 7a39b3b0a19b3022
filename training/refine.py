"""Train the DIM refinement stage and ship it as the ``lm-refine`` engine.

    python -m training.refine --out engines/refinement/lm-refine --steps 1600 --max-zoom 2.5

Training data are EG1800 portraits with soft pseudo alphas (closed-form
matting in a band around the hand-drawn mask, :mod:`training.data.pseudo_alpha`)
and their estimated foregrounds, composited over real background photos as
Deep Image Matting does, so alpha, foreground and background of every
training image are known and the compositional loss is exact. The coarse
alpha the stage learns to repair is simulated by degrading the true alpha
the ways real coarse mattes are wrong: binarised like a segmentation mask,
shifted by a few pixels, upsampled from a low resolution, blurred.

After training the graph is exported (ONNX opset 17, any H and W), checked
against torch, and evaluated on held-out sets with real soft alphas
(AISegment portraits, alphamatting.com, Composition-1k crops) through the
runtime's own :class:`livematte.quality.refine.Refiner`. The refined alpha
must beat its coarse input there; the table goes into the manifest.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from livematte.manifest import load_manifest
from livematte.metrics import evaluate_pair
from livematte.quality.band import UNKNOWN, trimap_from_alpha
from livematte.quality.refine import Refiner
from training.data.pseudo_alpha import build_cache, default_cache_dir
from training.export import export_engine, git_revision, licence_text
from training.models.dim import DIMRefinement

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
#: held-out sets with real soft alphas: (folder, image extension)
HELD_OUT = {
    "aisegment-matting-human-samples": ".png",
    "alphamatting-lowres-train": ".jpg",
    "adobe-comp1k-foamliu-samples": ".png",
}
BAND_RADIUS = 3
"""Band erosion radius at the 300x400 training resolution (1% of the short side)."""
EPS = 1e-6
METRICS_NOTE = ("held-out sets, never trained on: mean per image inside the unknown band of the coarse alpha; "
                "coarse = ground truth degraded by training.refine.degrade with a fixed seed per image")


@dataclass
class Sample:
    """One training portrait at working resolution: RGB uint8, alpha and foreground."""

    image: np.ndarray
    alpha: np.ndarray
    foreground: np.ndarray


def degrade(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible coarse matte for a true ``alpha`` (float32 HxW in [0, 1]).

    Each step mimics one failure of a real coarse matte: a segmentation
    net's hard mask, a boundary a few pixels off, the loss of detail of an
    engine running at 1/4-1/8 of the frame's resolution, and blur.
    """
    a = alpha.astype(np.float32)
    h, w = a.shape
    if rng.random() < 0.4:
        a = (a > rng.uniform(0.3, 0.7)).astype(np.float32)
    shift = int(rng.integers(0, 4))
    if shift:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shift + 1, 2 * shift + 1))
        a = cv2.dilate(a, kernel) if rng.random() < 0.5 else cv2.erode(a, kernel)
    factor = rng.uniform(2.0, 8.0)
    small = cv2.resize(a, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    a = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.5, 3.0))
    return np.clip(a, 0.0, 1.0)


def refinement_band(coarse: np.ndarray) -> np.ndarray:
    """Pixels the refinement may change: the unknown band of the coarse alpha.

    The runtime (:mod:`livematte.quality.offline`) applies the refined alpha
    only there, so the loss is measured only there too.
    """
    return trimap_from_alpha(coarse, radius=BAND_RADIUS) == UNKNOWN


def load_samples(dataset: Path, cache: Path, limit: int) -> list[Sample]:
    """Pseudo-alpha samples of the first ``limit`` portraits (computed if not cached)."""
    samples = []
    for paths in build_cache(dataset, cache, workers=1, limit=limit):
        image = cv2.imread(str(paths.image), cv2.IMREAD_COLOR)[:, :, ::-1]
        alpha = cv2.imread(str(paths.alpha), cv2.IMREAD_GRAYSCALE)
        fg = cv2.imread(str(paths.foreground), cv2.IMREAD_COLOR)[:, :, ::-1]
        samples.append(Sample(np.ascontiguousarray(image), alpha, np.ascontiguousarray(fg)))
    return samples


def load_backgrounds(folder: Path, limit: int, short_side: int = 400) -> list[np.ndarray]:
    """Up to ``limit`` background photos (RGB uint8), resized to ``short_side``."""
    photos = []
    for path in sorted(folder.rglob("*.jpg"))[:limit]:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        scale = short_side / min(bgr.shape[:2])
        bgr = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        photos.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    return photos


def _random_crop(shape: tuple[int, int], crop: int, centre: tuple[int, int] | None,
                 rng: np.random.Generator) -> tuple[slice, slice]:
    h, w = shape
    if centre is None:
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
    else:
        jitter = rng.integers(-crop // 4, crop // 4 + 1, size=2)
        y = int(np.clip(centre[0] - crop // 2 + jitter[0], 0, h - crop))
        x = int(np.clip(centre[1] - crop // 2 + jitter[1], 0, w - crop))
    return slice(y, y + crop), slice(x, x + crop)


def make_batch(samples: list[Sample], backgrounds: list[np.ndarray], batch: int, crop: int,
               rng: np.random.Generator, max_zoom: float = 1.0) -> dict[str, torch.Tensor]:
    """A batch of edge-centred crops composited over random backgrounds (NCHW float32).

    Each crop is enlarged by a random zoom in [1, ``max_zoom``]: the pseudo
    alphas are solved at 300x400, where a soft edge spans a few pixels, while
    the stage runs on frames where hair spans several times more.
    """
    keys = ("image", "coarse", "alpha", "fg", "bg", "band")
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for _ in range(batch):
        s = samples[rng.integers(len(samples))]
        soft = np.argwhere((s.alpha > 0) & (s.alpha < 255))
        centre = tuple(soft[rng.integers(len(soft))]) if len(soft) else None
        source = max(8, round(crop / rng.uniform(1.0, max_zoom)))
        box = _random_crop(s.alpha.shape, source, centre, rng)
        alpha = s.alpha[box].astype(np.float32) / 255.0
        fg = s.foreground[box].astype(np.float32) / 255.0
        if source != crop:
            alpha = np.clip(cv2.resize(alpha, (crop, crop), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
            fg = np.clip(cv2.resize(fg, (crop, crop), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        bg_photo = backgrounds[rng.integers(len(backgrounds))]
        bg = bg_photo[_random_crop(bg_photo.shape[:2], crop, None, rng)].astype(np.float32) / 255.0
        if rng.random() < 0.5:
            alpha, fg = alpha[:, ::-1], fg[:, ::-1]
        # Quantised like a decoded video frame, so training sees what inference sees.
        image = np.round((alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg) * 255.0) / 255.0
        coarse = degrade(alpha, rng)
        for key, value in zip(keys, (image, coarse, alpha, fg, bg, refinement_band(coarse))):
            out[key].append(np.ascontiguousarray(value, dtype=np.float32))
    return {k: torch.from_numpy(_nchw(np.stack(v))) for k, v in out.items()}


def _nchw(stack: np.ndarray) -> np.ndarray:
    return stack[:, None] if stack.ndim == 3 else stack.transpose(0, 3, 1, 2).copy()


def dim_loss(pred: torch.Tensor, batch: dict[str, torch.Tensor], weight: float = 0.5) -> torch.Tensor:
    """DIM's loss in the band: alpha-prediction + compositional, Charbonnier-style.

    ``sqrt(d^2 + eps^2)`` is the paper's differentiable absolute error; the
    compositional term re-composites the true foreground and background with
    the predicted alpha and compares against the image, which penalises
    alpha errors where they are visible (high fg/bg contrast) the most.
    """
    band = batch["band"]
    area = band.sum().clamp_min(1.0)
    alpha_term = (torch.sqrt((pred - batch["alpha"]) ** 2 + EPS**2) * band).sum() / area
    composite = pred * batch["fg"] + (1.0 - pred) * batch["bg"]
    comp_term = (torch.sqrt((composite - batch["image"]) ** 2 + EPS**2).mean(1, keepdim=True) * band).sum() / area
    return weight * alpha_term + (1.0 - weight) * comp_term


def train(model: DIMRefinement, samples: list[Sample], backgrounds: list[np.ndarray], steps: int,
          batch: int = 16, crop: int = 96, lr: float = 1e-3, seed: int = 0, log_every: int = 100,
          max_zoom: float = 1.0) -> list[float]:
    """Adam with cosine decay; returns the loss of every step."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, steps))
    losses = []
    start = time.monotonic()
    model.train()
    for step in range(1, steps + 1):
        data = make_batch(samples, backgrounds, batch, crop, rng, max_zoom)
        loss = dim_loss(model(data["image"], data["coarse"]), data)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps):
            recent = np.mean(losses[-log_every:])
            print(f"step {step}/{steps} loss {recent:.5f} ({time.monotonic() - start:.0f} s)",
                  file=sys.stderr, flush=True)
    model.eval()
    return losses


def held_out_pairs(name: str, extension: str):
    """(name, RGB uint8, GT alpha uint8) of one held-out set."""
    folder = SHARED_DATA / name
    for alpha_path in sorted((folder / "alpha").glob("*.png")):
        bgr = cv2.imread(str(folder / "image" / (alpha_path.stem + extension)), cv2.IMREAD_COLOR)
        yield alpha_path.stem, np.ascontiguousarray(bgr[:, :, ::-1]), cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE)


def evaluate_held_out(refiner: Refiner, seed: int = 1234) -> dict[str, dict[str, dict[str, float]]]:
    """Mean metrics of degraded-GT coarse alphas vs their refinements, in the band.

    Each image gets its own fixed degradation (seeded by set and index), so
    two engines are compared on identical inputs.
    """
    table = {}
    for set_index, (name, extension) in enumerate(HELD_OUT.items()):
        rows: dict[str, list[dict[str, float]]] = {"coarse": [], "refined": []}
        for i, (_, rgb, gt) in enumerate(held_out_pairs(name, extension)):
            rng = np.random.default_rng([seed, set_index, i])
            coarse = degrade(gt.astype(np.float32) / 255.0, rng)
            band = refinement_band(coarse)
            refined = refiner.refine(rgb, coarse, band)
            rows["coarse"].append(evaluate_pair(coarse, gt, band))
            rows["refined"].append(evaluate_pair(refined, gt, band))
        if rows["coarse"]:
            table[name] = {k: {m: float(np.mean([r[m] for r in v])) for m in ("SAD", "MSE", "Grad", "Conn")}
                           for k, v in rows.items()}
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="engine path without extension, e.g. engines/refinement/lm-refine")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-zoom", type=float, default=2.5, help="crops are enlarged by up to this factor")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--images", type=int, default=300, help="EG1800 training portraits to use")
    ap.add_argument("--backgrounds", type=int, default=192)
    ap.add_argument("--cache", type=Path, default=None, help="pseudo-alpha cache (default: the user cache dir)")
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    dataset = args.data / "eg1800-train"
    if not dataset.is_dir():
        print(f"error: training data {dataset} not found", file=sys.stderr)
        return 2
    cache = args.cache or default_cache_dir() / "pseudo_alpha" / dataset.name
    samples = load_samples(dataset, cache, args.images)
    backgrounds = load_backgrounds(args.data / "backgrounds", args.backgrounds)
    model = DIMRefinement(args.channels)
    start = time.monotonic()
    losses = train(model, samples, backgrounds, args.steps, args.batch, args.crop, args.lr, args.seed,
                   max_zoom=args.max_zoom)
    seconds = time.monotonic() - start

    spec = model.engine_spec()
    provenance = {
        "training_data": [f"eg1800-train: first {len(samples)} portraits, closed-form pseudo alphas "
                          "(training.data.pseudo_alpha) composited over shared/data/backgrounds",
                          "research-only data"],
        "training_command": "python -m training.refine " + " ".join(sys.argv[1:] if argv is None else argv),
        "git_revision": git_revision(),
        "initialisation": spec.initialisation,
        "steps": args.steps, "train_seconds": round(seconds, 1),
        "final_loss": float(np.mean(losses[-100:])),
        "machine": "CPU, torch threads=%d" % args.threads,
        "metrics_note": METRICS_NOTE,
    }
    manifest_path = export_engine(model, spec, args.out.name, args.out.parent, None, provenance,
                                  licence_text(spec, ["eg1800-train", "backgrounds"]))
    manifest = load_manifest(manifest_path)
    if not args.no_eval:
        metrics = evaluate_held_out(Refiner(manifest_path))
        replace(manifest, metrics=metrics).dump(manifest_path)
        print(format_table(metrics))
    return 0


def format_table(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    """Held-out metrics as a plain-text table, coarse and refined side by side."""
    lines = [f"{'set':34s} {'alpha':8s} {'SAD':>8s} {'MSE':>8s} {'Grad':>8s} {'Conn':>8s}"]
    for name, rows in metrics.items():
        for kind, m in rows.items():
            lines.append(f"{name:34s} {kind:8s} {m['SAD']:8.3f} {m['MSE']:8.4f} {m['Grad']:8.3f} {m['Conn']:8.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
