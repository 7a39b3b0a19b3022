"""The matting backends, by their ``--backend`` name: a typed registry.

Each backend is described by a :class:`BackendSpec`; the command line's
``--backend`` help, its unknown-name error and :func:`create_backend` all
read :data:`BACKENDS`, so adding a backend is one module plus one entry
here. Backend modules are imported only when chosen: GPU backends pull in
CUDA, TensorRT or torch, which most machines do not have and the CPU path
must never need.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from livematte.backends.base import BackendUnavailable, MattingBackend
from livematte.errors import DeviceError, InputError
from livematte.manifest import EngineManifest

#: ``--precision`` values: ``auto`` is fp16 where the device has fast fp16, fp32 elsewhere
PRECISIONS = ("auto", "fp16", "fp32")
DEFAULT_BACKEND = "cpu"


@dataclass(frozen=True)
class BackendSpec:
    """What the registry knows about a backend before importing it.

    ``module`` is under ``livematte.backends``; ``precisions`` are the
    ``--precision`` values it honours; ``takes_threads`` says whether its
    constructor accepts a CPU thread count.
    """

    name: str
    module: str
    class_name: str
    summary: str
    install_hint: str = ""
    precisions: tuple[str, ...] = PRECISIONS
    takes_threads: bool = False


_CPU = dict(module="onnxruntime_cpu", class_name="OnnxRuntimeBackend", precisions=("auto", "fp32"),
            takes_threads=True)

#: every backend ``--backend`` accepts, in the order the help lists them
BACKENDS: Mapping[str, BackendSpec] = MappingProxyType({spec.name: spec for spec in (
    BackendSpec("cpu", summary="ONNX Runtime on the CPU (default; fp32)", **_CPU),
    BackendSpec("onnxruntime", summary="alias of cpu", **_CPU),
    BackendSpec("onnxruntime-gpu", "onnxruntime_gpu", "OnnxRuntimeGpuBackend",
                "ONNX Runtime's TensorRT/CUDA providers", "pip install onnxruntime-gpu"),
    BackendSpec("tensorrt", "tensorrt", "TensorRTBackend", "TensorRT 10 plan, cached",
                "pip install 'livematte[gpu]'"),
    BackendSpec("torch", "torch_cuda", "TorchCudaBackend", "PyTorch CUDA, CUDA graphs",
                "pip install torch (a CUDA build)"),
)})


class UnknownBackend(InputError):
    """A ``--backend`` name the registry does not know: a bad option (exit code 2)."""


def available_backends() -> list[str]:
    """Every backend name ``--backend`` accepts (whether or not its libraries are installed)."""
    return list(BACKENDS)


def backend_help() -> str:
    """The ``--backend`` help text: each name with what it runs on."""
    return "; ".join(f"{spec.name}: {spec.summary}" for spec in BACKENDS.values())


def backend_spec(name: str) -> BackendSpec:
    """The registry entry for ``name``; :class:`UnknownBackend` listing the names otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown backend {name!r}; choose one of: {', '.join(available_backends())}") from None


def check_precision(spec: BackendSpec, precision: str) -> None:
    """InputError (a bad option combination) when ``spec`` cannot run at ``precision``."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision not in spec.precisions:
        raise InputError(f"backend {spec.name!r} cannot run {precision}; use --precision "
                         f"{' or '.join(spec.precisions)}")


def create_backend(name: str, manifest: EngineManifest, input_size: tuple[int, int],
                   threads: int | None = None, precision: str = "auto") -> MattingBackend:
    """Build backend ``name`` for ``manifest`` at graph input size ``(height, width)``.

    ``threads`` is the CPU backend's intra-op thread count (None: ONNX
    Runtime's default, one per core); GPU backends have no use for it.
    ``precision`` is one of :data:`PRECISIONS`.

    Raises :class:`UnknownBackend` or :class:`InputError` (exit code 2) for
    a bad name or precision, and :class:`DeviceError` (one line, exit code 4)
    when the backend's module, libraries or device are missing.
    """
    spec = backend_spec(name)
    check_precision(spec, precision)
    hint = f" ({spec.install_hint})" if spec.install_hint else ""
    try:
        module = importlib.import_module(f"livematte.backends.{spec.module}")
    except ModuleNotFoundError as exc:
        missing = exc.name or spec.module
        if missing == f"livematte.backends.{spec.module}":
            raise DeviceError(f"backend {name!r} is not part of this livematte build") from None
        raise DeviceError(f"backend {name!r} needs the Python package {missing.split('.')[0]!r}{hint}") from None
    except BackendUnavailable as exc:
        raise DeviceError(f"backend {name!r} is unavailable: {exc}") from None
    backend_class = getattr(module, spec.class_name)
    options: dict[str, object] = {"threads": threads} if spec.takes_threads and threads is not None else {}
    if "fp16" in spec.precisions:  # fp32-only backends have nothing to choose
        options["precision"] = precision
    try:
        return backend_class(manifest, input_size, **options)
    except BackendUnavailable as exc:
        raise DeviceError(f"backend {name!r} is unavailable: {exc}") from None
