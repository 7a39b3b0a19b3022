"""Choosing a matting backend by its ``--backend`` name.

Backend modules are imported only when chosen: GPU backends pull in CUDA,
TensorRT or torch, which most machines do not have and the CPU path must
never need.
"""
from __future__ import annotations

import importlib

from livematte.backends.base import BackendUnavailable, MattingBackend
from livematte.errors import DeviceError
from livematte.manifest import EngineManifest

#: ``--backend`` name -> (module under livematte.backends, class name)
_BACKENDS: dict[str, tuple[str, str]] = {
    "cpu": ("onnxruntime_cpu", "OnnxRuntimeBackend"),
    "onnxruntime": ("onnxruntime_cpu", "OnnxRuntimeBackend"),
    "onnxruntime-gpu": ("onnxruntime_gpu", "OnnxRuntimeGpuBackend"),
    "tensorrt": ("tensorrt", "TensorRTBackend"),
    "torch": ("torch_cuda", "TorchCudaBackend"),
}

_INSTALL_HINT = {
    "onnxruntime-gpu": "pip install onnxruntime-gpu",
    "tensorrt": "pip install 'livematte[gpu]'",
    "torch": "pip install torch (a CUDA build)",
}


def available_backends() -> list[str]:
    """Every backend name ``--backend`` accepts (whether or not its libraries are installed)."""
    return list(_BACKENDS)


def create_backend(name: str, manifest: EngineManifest, input_size: tuple[int, int],
                   threads: int | None = None) -> MattingBackend:
    """Build backend ``name`` for ``manifest`` at graph input size ``(height, width)``.

    ``threads`` is the CPU backend's intra-op thread count (None: ONNX
    Runtime's default, one per core); GPU backends have no use for it.

    Raises :class:`DeviceError` (one line, exit code 4) when the backend's
    module, libraries or device are missing, so the CLI can print it as is.
    """
    if name not in _BACKENDS:
        raise DeviceError(f"unknown backend {name!r}; choose one of: {', '.join(_BACKENDS)}")
    module_name, class_name = _BACKENDS[name]
    hint = _INSTALL_HINT.get(name, "")
    try:
        module = importlib.import_module(f"livematte.backends.{module_name}")
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if missing == f"livematte.backends.{module_name}":
            raise DeviceError(f"backend {name!r} is not part of this livematte build") from None
        raise DeviceError(
            f"backend {name!r} needs the Python package {missing.split('.')[0]!r}"
            + (f" ({hint})" if hint else "")
        ) from None
    except BackendUnavailable as exc:
        raise DeviceError(f"backend {name!r} is unavailable: {exc}") from None
    backend_class = getattr(module, class_name)
    try:
        extra = {"threads": threads} if name == "cpu" and threads is not None else {}
        return backend_class(manifest, input_size, **extra)
    except BackendUnavailable as exc:
        raise DeviceError(f"backend {name!r} is unavailable: {exc}") from None
