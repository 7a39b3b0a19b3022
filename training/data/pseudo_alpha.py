"""Soft training alphas from binary person masks, the Deep Automatic Portrait Matting way.

EG1800 only has hand-labelled binary masks. A matting net trained on them
learns hard, jagged edges. DAPM's answer: build a trimap from the mask (a
band around its boundary is "unknown"), solve closed-form matting (the
matting Laplacian) inside the band, and keep the mask elsewhere. The
foreground colours are estimated as well, so a person can be re-composited
over new backgrounds without carrying a halo of the old one.

The solve runs at a reduced working resolution (the real-time engines train
at 144x256 anyway) and is cached on disk, because it costs ~0.5 s an image.

    python -m training.data.pseudo_alpha ../shared/data/eg1800-train --workers 2
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from livematte.quality.band import BACKGROUND, FOREGROUND, trimap_from_masks

WORK_SIZE = (300, 400)  # (W, H) of the cached alphas; EG1800 photos are 600x800


def default_cache_dir() -> Path:
    """``$LIVEMATTE_CACHE`` or ``$XDG_CACHE_HOME/livematte`` (``~/.cache/livematte``)."""
    if os.environ.get("LIVEMATTE_CACHE"):
        return Path(os.environ["LIVEMATTE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "livematte"


def trimap_from_mask(mask: np.ndarray, band: int) -> np.ndarray:
    """0/0.5/1 trimap: the mask eroded inwards and outwards by ``band`` pixels.

    Hand-drawn masks are off by a few pixels at hair and shoulders; the band
    must cover that error, or closed-form matting inherits it.
    """
    labels = trimap_from_masks(mask > 0.5, mask <= 0.5, band)  # the runtime's band, in pymatting's values
    trimap = np.full(mask.shape, 0.5, np.float64)
    trimap[labels == FOREGROUND] = 1.0
    trimap[labels == BACKGROUND] = 0.0
    return trimap


def closed_form_alpha(rgb: np.ndarray, mask: np.ndarray, band: int = 4) -> np.ndarray:
    """Closed-form matting (RGB float in [0, 1]) in a ``band``-pixel trimap band around the mask edge."""
    import pymatting  # only the producer needs it

    trimap = trimap_from_mask(mask, band)
    if (trimap == 0).any() and (trimap == 1).any():
        return np.clip(pymatting.estimate_alpha_cf(rgb, trimap), 0.0, 1.0)
    return (mask > 0.5).astype(np.float64)  # a face filling the frame: nothing to solve against, keep the mask


@dataclass(frozen=True)
class PseudoAlpha:
    """Paths of one cached sample: working-resolution image, alpha and foreground."""

    image: Path
    alpha: Path
    foreground: Path

    @property
    def stem(self) -> str:
        """The source photo's name without extension (its mask has the same stem)."""
        return self.alpha.name.removesuffix("_alpha.png")


def cache_paths(cache: Path, stem: str) -> PseudoAlpha:
    return PseudoAlpha(cache / f"{stem}_image.jpg", cache / f"{stem}_alpha.png", cache / f"{stem}_fg.jpg")


def solve_one(image_path: Path, mask_path: Path, cache: Path, band: int = 4) -> PseudoAlpha:
    """Compute (or reuse) the pseudo alpha and foreground for one portrait."""
    return cached_sample(image_path, mask_path, cache, lambda _path, rgb, mask: closed_form_alpha(rgb, mask, band))


#: (image path, RGB float image, float mask, both at WORK_SIZE) -> soft alpha
Labeller = Callable[[Path, np.ndarray, np.ndarray], np.ndarray]


def cached_sample(image_path: Path, mask_path: Path, cache: Path, label: Labeller) -> PseudoAlpha:
    """Compute (or reuse) one portrait's working-size image, soft alpha from ``label`` and foreground.

    The foreground colours are estimated from the alpha (``estimate_foreground_ml``)
    so the person can be re-composited without a halo of the old background.
    """
    import pymatting  # only the producer needs it

    out = cache_paths(cache, image_path.stem)
    if out.alpha.exists() and out.foreground.exists() and out.image.exists():
        return out
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if image is None or mask is None:
        raise ValueError(f"unreadable pair: {image_path}, {mask_path}")
    image = cv2.resize(image, WORK_SIZE, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, WORK_SIZE, interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
    rgb = image[:, :, ::-1].astype(np.float64) / 255.0
    alpha = np.asarray(label(image_path, rgb, mask), np.float64)
    foreground = np.clip(pymatting.estimate_foreground_ml(rgb, alpha), 0.0, 1.0)
    write_sample(out, image, alpha, foreground)
    return out


def write_sample(out: PseudoAlpha, image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray) -> None:
    """Write one cached sample: BGR uint8 image, float alpha and RGB foreground in [0, 1]."""
    write_image(out.image, image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    write_image(out.alpha, np.round(alpha * 255).astype(np.uint8))
    write_image(out.foreground, np.round(foreground[:, :, ::-1] * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])


def write_image(path: Path, data: np.ndarray, params: list[int] | None = None) -> None:
    """Write under a temporary name and rename, so an interrupted run never leaves half a file."""
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")  # keeps the extension cv2 picks the codec by
    if not cv2.imwrite(str(tmp), data, params or []):
        raise OSError(f"could not write {path}")
    os.replace(tmp, path)


def build_cache(dataset: Path, cache: Path, workers: int = 1, limit: int | None = None) -> list[PseudoAlpha]:
    """Pseudo alphas for every ``image/*.jpg`` with a ``mask/*.png`` in ``dataset``."""
    cache.mkdir(parents=True, exist_ok=True)
    images = sorted((dataset / "image").glob("*.jpg"))[:limit]
    pairs = [(p, dataset / "mask" / f"{p.stem}.png") for p in images]
    if workers <= 1:
        results = []
        for i, (img, msk) in enumerate(pairs):
            results.append(solve_one(img, msk, cache))
            _progress(i + 1, len(pairs))
        return results
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(solve_one, img, msk, cache) for img, msk in pairs]
        results = []
        for i, fut in enumerate(futures):
            results.append(fut.result())
            _progress(i + 1, len(pairs))
        return results


def _progress(done: int, total: int) -> None:
    if done == total or done % 25 == 0:
        print(f"\rpseudo-alpha {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", type=Path, help="folder with image/ and mask/")
    ap.add_argument("--cache", type=Path, default=None, help="output folder (default: cache dir/pseudo_alpha/NAME)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    cache = args.cache or default_cache_dir() / "pseudo_alpha" / args.dataset.resolve().name
    build_cache(args.dataset, cache, args.workers, args.limit)


if __name__ == "__main__":
    main()
