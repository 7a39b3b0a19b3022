"""The shape of every size-dependent graph input of an engine, at one graph size.

Backends that allocate fixed buffers (TensorRT, the torch CUDA graph) and the
TensorRT optimisation profile need a concrete shape for each graph input. The
manifest gives the image and the recurrent state; an engine may have more
image-sized inputs the manifest does not describe (the refinement engine's
``coarse`` alpha, N x 1 x H x W). Those are read from the ONNX graph: a
symbolic dimension named like one of the image input's takes that
dimension's size, so ``coarse[1, 1, "H", "W"]`` follows ``src[1, 3, "H", "W"]``.
Constant inputs are static in the graph and not listed.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import onnx

from livematte.errors import EngineError
from livematte.manifest import EngineManifest

Shape = tuple[int, ...]
Dims = tuple[int | str, ...]


def image_shape(manifest: EngineManifest, height: int, width: int) -> Shape:
    """The image input's shape for a graph input of ``height`` x ``width``."""
    return (1, 3, height, width) if manifest.input.layout == "NCHW" else (1, height, width, 3)


@lru_cache(maxsize=32)
def _graph_dims(onnx_path: Path, mtime_ns: int) -> dict[str, Dims]:
    """Graph input name -> dims (int, or the symbolic name; "" when unnamed)."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    initialisers = {t.name for t in model.graph.initializer}
    return {value.name: tuple(d.dim_value if d.HasField("dim_value") else d.dim_param
                              for d in value.type.tensor_type.shape.dim)
            for value in model.graph.input if value.name not in initialisers}


def extra_inputs(manifest: EngineManifest) -> dict[str, Dims]:
    """Graph inputs beyond the manifest's image, constants and state, with their dims."""
    dims = _graph_dims(manifest.onnx_path, manifest.onnx_path.stat().st_mtime_ns)
    known = {manifest.input.name, *(c.name for c in manifest.constants), *(s.input for s in manifest.state)}
    return {name: d for name, d in dims.items() if name not in known}


def input_shapes(manifest: EngineManifest, height: int, width: int) -> dict[str, Shape]:
    """Every size-dependent graph input's shape at graph size ``height`` x ``width``."""
    image = image_shape(manifest, height, width)
    shapes = {manifest.input.name: image}
    image_dims = _graph_dims(manifest.onnx_path, manifest.onnx_path.stat().st_mtime_ns).get(manifest.input.name, ())
    symbols = {d: size for d, size in zip(image_dims, image) if isinstance(d, str) and d}
    for name, dims in extra_inputs(manifest).items():
        resolved = [d if isinstance(d, int) else symbols.get(d) for d in dims]
        if any(d is None for d in resolved):
            raise EngineError(f"engine {manifest.name!r}: graph input {name!r} has dimensions {list(dims)} that "
                              f"neither the manifest nor the image input {manifest.input.name!r} determine")
        shapes[name] = tuple(resolved)  # type: ignore[arg-type]
    shapes.update({s.input: s.shape_for(height, width) for s in manifest.state})
    return shapes
