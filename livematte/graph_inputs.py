"""The shape of every size-dependent graph input of an engine, at one graph size.

Backends that allocate fixed buffers (TensorRT, the torch CUDA graph) and the
TensorRT optimisation profile need a concrete shape for each graph input that
follows the image size: the image itself, the recurrent state, and a
refinement engine's coarse alpha (N x 1 x H x W, or N x H x W x 1). Constant
inputs are static in the graph and not listed.
"""
from __future__ import annotations

from livematte.manifest import EngineManifest

Shape = tuple[int, ...]


def image_shape(manifest: EngineManifest, height: int, width: int) -> Shape:
    """The image input's shape for a graph input of ``height`` x ``width``."""
    return (1, 3, height, width) if manifest.input.layout == "NCHW" else (1, height, width, 3)


def input_shapes(manifest: EngineManifest, height: int, width: int) -> dict[str, Shape]:
    """Every size-dependent graph input's shape at graph size ``height`` x ``width``."""
    shapes = {manifest.input.name: image_shape(manifest, height, width)}
    if manifest.coarse is not None:
        coarse = manifest.coarse
        shapes[coarse.name] = (1, 1, height, width) if coarse.layout == "NCHW" else (1, height, width, 1)
    shapes.update({s.input: s.shape_for(height, width) for s in manifest.state})
    return shapes
