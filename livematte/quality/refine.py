"""Runs the shipped DIM-style refinement engine at any resolution, tile by tile.

The refinement network is fully convolutional with a small receptive field
(its manifest says how many pixels, ``receptive_radius``). Each tile is fed
with a halo of that many context pixels and only its core is kept, so the
stitched result equals a whole-image run exactly while memory stays bounded
by the tile size, and tiles without any band pixel are never run at all.

A refinement manifest is an ordinary engine manifest (its ``input`` is the
RGB image) with ``"role": "refinement"``, a second graph input ``coarse``
(N x 1 x H x W alpha in [0, 1]) and ``receptive_radius``; see
``docs/engine-manifest.md``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from livematte.errors import EngineError
from livematte.manifest import EngineManifest, Role, load_manifest
from livematte.normalise import InputNormaliser
from livematte.quality.band import band_box

DEFAULT_TILE = 512


class Refiner:
    """Refines a coarse alpha inside a band with a refinement engine.

    ``path`` is the engine's ``.json`` or ``.onnx``; ``tile`` is the core
    size of one tile in pixels; ``threads`` caps ONNX Runtime's intra-op
    threads (1 when several worker processes share the CPU).
    """

    def __init__(self, path: str | Path, tile: int = DEFAULT_TILE, threads: int = 1):
        self.manifest: EngineManifest = load_manifest(path)
        # the parser has checked that a refinement manifest has both keys and layout NCHW
        if self.manifest.role is not Role.REFINEMENT or self.manifest.coarse is None \
                or self.manifest.receptive_radius is None:
            raise EngineError(f"{self.manifest.manifest_path}: not a refinement engine "
                              f"(role must be {Role.REFINEMENT.value!r})")
        self.coarse_name: str = self.manifest.coarse.name
        self.halo: int = self.manifest.receptive_radius
        self.tile = tile
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.manifest.onnx_path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises several unrelated types for bad graphs
            raise EngineError(f"{self.manifest.onnx_path}: cannot load refinement graph: {exc}") from None
        self._normalise = InputNormaliser(self.manifest.input)

    def _run(self, rgb: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        feeds = {self.manifest.input.name: self._normalise(rgb),
                 self.coarse_name: coarse[None, None].astype(np.float32)}
        (alpha,) = self.session.run([self.manifest.outputs.alpha.name], feeds)
        return alpha[0, 0]

    def refine(self, rgb: np.ndarray, coarse: np.ndarray, band: np.ndarray | None = None) -> np.ndarray:
        """Refined alpha (HxW float32): the network's output inside ``band``, ``coarse`` outside.

        ``band=None`` refines every pixel. ``rgb`` is HxWx3 uint8 RGB.
        """
        coarse = np.asarray(coarse, np.float32)
        h, w = coarse.shape
        if rgb.shape[:2] != (h, w):
            raise ValueError(f"image {rgb.shape[:2]} and coarse alpha {coarse.shape} differ in size")
        if band is None:
            band = np.ones((h, w), dtype=bool)
        out = coarse.copy()
        box = band_box(band, margin=0)
        if box is None:
            return out
        rows, cols = box
        t, halo = self.tile, self.halo
        for y0 in range(rows.start, rows.stop, t):
            for x0 in range(cols.start, cols.stop, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                core = band[y0:y1, x0:x1]
                if not core.any():
                    continue
                wy0, wx0 = max(0, y0 - halo), max(0, x0 - halo)
                wy1, wx1 = min(h, y1 + halo), min(w, x1 + halo)
                refined = self._run(rgb[wy0:wy1, wx0:wx1], coarse[wy0:wy1, wx0:wx1])
                refined = refined[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
                out[y0:y1, x0:x1][core] = refined[core]
        return out
