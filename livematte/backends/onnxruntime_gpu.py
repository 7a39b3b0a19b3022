"""ONNX Runtime on the GPU: TensorRT, then CUDA execution providers, state kept on the device.

The ``onnxruntime-gpu`` package replaces ``onnxruntime`` (same module name)
and adds the TensorRT and CUDA execution providers. TensorRT is preferred;
its engine cache goes into the same directory as the native TensorRT
backend's plans (:func:`livematte.trt_cache.cache_dir`), so the build cost is
paid once per machine. When a GPU provider is active the recurrent state is
bound as device-resident ``OrtValue``s with I/O binding and swapped between
frames, so only the image goes up and only the declared outputs come back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnxruntime as ort

from livematte import trt_cache
from livematte.backends.base import BackendUnavailable, initial_state, resolve_precision
from livematte.backends.onnxruntime_cpu import OnnxRuntimeBackend
from livematte.errors import EngineError, first_line
from livematte.manifest import EngineManifest

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
INSTALL_HINT = "pip uninstall onnxruntime && pip install onnxruntime-gpu (needs CUDA 12 and cuDNN 9)"


def gpu_providers(available: Sequence[str], precision: str = "auto", device_id: int = 0,
                  cache_directory: Path | None = None) -> list[tuple[str, dict]]:
    """The GPU execution providers to request, best first, with their options.

    ``precision`` (auto, fp16, fp32) decides TensorRT's fp16 flag; auto asks
    for fp16, which TensorRT only uses where the GPU has fast fp16 kernels.
    The CUDA provider runs the graph's own float32.
    """
    cache = str((cache_directory or trt_cache.cache_dir()) / "onnxruntime")
    providers: list[tuple[str, dict]] = []
    if "TensorrtExecutionProvider" in available:
        providers.append(("TensorrtExecutionProvider", {
            "device_id": device_id,
            "trt_fp16_enable": resolve_precision(precision, fast_fp16=True) == "fp16",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }))
    if "CUDAExecutionProvider" in available:
        providers.append(("CUDAExecutionProvider", {"device_id": device_id}))
    return providers


def require_gpu_providers() -> list[str]:
    """The GPU execution providers this onnxruntime offers; BackendUnavailable when none."""
    available = ort.get_available_providers()
    gpu = [p for p in GPU_PROVIDERS if p in available]
    if not gpu:
        raise BackendUnavailable(f"this onnxruntime {ort.__version__} has no GPU execution provider "
                                 f"({', '.join(available)}): {INSTALL_HINT}")
    return gpu


class DeviceState:
    """Recurrent state as ``OrtValue``s on the session's device, swapped after each frame.

    The previous frame's state output buffer is bound as this frame's state
    input and the old input buffer receives the new output, so the state is
    never copied, on the device or to the host. Works on any ORT device
    (``"cuda"`` in production, ``"cpu"`` in tests).
    """

    def __init__(self, session: ort.InferenceSession, manifest: EngineManifest, input_size: tuple[int, int],
                 dtypes: Mapping[str, type], device: str = "cuda", device_id: int = 0) -> None:
        self.session = session
        self.manifest = manifest
        self._binding = session.io_binding()
        self._initial = initial_state(manifest, input_size, dtypes)

        def allocate(name: str):
            array = self._initial[name]
            return ort.OrtValue.ortvalue_from_shape_and_type(array.shape, array.dtype, device, device_id)

        self._current = {s.input: allocate(s.input) for s in manifest.state}
        self._next = {s.input: allocate(s.input) for s in manifest.state}
        self.reset()

    def reset(self) -> None:
        for name, value in self._current.items():
            value.update_inplace(self._initial[name])

    def run(self, inputs: Mapping[str, np.ndarray], output_names: Sequence[str]) -> dict[str, np.ndarray]:
        """One frame: host inputs in, declared outputs back to the host, state stays put."""
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for name, array in inputs.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name in output_names:
            binding.bind_output(name, "cpu")
        for state in self.manifest.state:
            binding.bind_ortvalue_input(state.input, self._current[state.input])
            binding.bind_ortvalue_output(state.output, self._next[state.input])
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:  # ORT raises its own Fail/InvalidArgument types
            raise EngineError(f"engine {self.manifest.name!r} failed on a frame: {first_line(exc)}") from None
        values = binding.get_outputs()
        results = {name: values[i].numpy() for i, name in enumerate(output_names)}
        self._current, self._next = self._next, self._current
        return results

    def host_state(self) -> dict[str, np.ndarray]:
        """The state the next frame will read, copied to the host (for tests and debugging)."""
        return {name: value.numpy() for name, value in self._current.items()}


class OnnxRuntimeGpuBackend(OnnxRuntimeBackend):
    """:class:`OnnxRuntimeBackend` on the TensorRT or CUDA execution provider."""

    name = "onnxruntime-gpu"

    def __init__(self, manifest: EngineManifest, input_size: tuple[int, int], precision: str = "auto",
                 device_id: int = 0, cache_directory: Path | None = None) -> None:
        providers = gpu_providers(require_gpu_providers(), precision, device_id, cache_directory)
        if providers[0][0] == "TensorrtExecutionProvider":
            Path(providers[0][1]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        self.device_state: DeviceState | None = None
        super().__init__(manifest, input_size, providers=[*providers, "CPUExecutionProvider"])
        active = self.session.get_providers()
        if not any(p in active for p in GPU_PROVIDERS):
            raise BackendUnavailable(
                "onnxruntime-gpu could not start a GPU provider (missing CUDA/cuDNN libraries or no GPU); "
                "see https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements")
        self.active_providers = active
        self.device_state = DeviceState(self.session, manifest, input_size, self._state_dtypes,
                                        device="cuda", device_id=device_id)

    def reset(self) -> None:
        super().reset()
        if self.device_state is not None:
            self.device_state.reset()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.device_state.run(inputs, self._output_names)

    def close(self) -> None:
        self.device_state = None
        super().close()
