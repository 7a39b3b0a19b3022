"""Where in a frame the expensive per-pixel work is needed, as a few rectangles.

Matting work that only matters at the soft edge (colour-guided alpha,
blending with decontamination) would otherwise run over the whole frame,
although the edge covers a tenth of a portrait. The frame is cut into square
tiles; each tile row contributes one rectangle per run of adjacent tiles
holding something, so a handful of whole-array OpenCV calls cover the edge.
"""
from __future__ import annotations

import numpy as np


def active_runs(mask: np.ndarray, tile: int) -> list[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)`` rectangles covering every nonzero pixel of the 2-D ``mask``.

    Rectangles are whole ``tile`` x ``tile`` tiles (clipped at the frame's
    border) starting on multiples of ``tile``.
    """
    h, w = mask.shape
    rows, cols = -(-h // tile), -(-w // tile)
    if (rows * tile, cols * tile) != (h, w):
        mask = np.pad(mask, ((0, rows * tile - h), (0, cols * tile - w)))
    # max over each tile's rows (contiguous, fast), then over its columns
    per_row = np.maximum.reduce(mask.reshape(rows, tile, cols * tile), axis=1)
    tiles = (per_row.reshape(rows, cols, tile).max(axis=2) > 0).astype(np.int8)
    runs = []
    for ty in range(rows):
        edges = np.flatnonzero(np.diff(tiles[ty], prepend=0, append=0))
        for start, stop in zip(edges[::2], edges[1::2]):
            runs.append((ty * tile, min(h, (ty + 1) * tile), int(start) * tile, min(w, int(stop) * tile)))
    return runs
