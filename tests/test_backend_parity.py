"""Every backend runs every engine like ONNX Runtime and carries the recurrent state.

Default suite (CPU): each shipped engine and the MediaPipe, selfie and SINet
peers through every backend that runs on a CPU (ONNX Runtime, the torch
backend on the CPU device, and the onnxruntime-gpu backend's device-state
binding on ONNX Runtime's CPU device), within 1e-4 of plain ONNX Runtime on
every output; and the high-contrast recurrent engine, whose alpha spans 0..1
and whose state moves it by tenths, through the same backends with a
carried != reset check. With a GPU (``-m gpu``) the same checks run on
each GPU backend in fp32 and fp16.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
import pytest

from backend_checks import CpuDeviceStateBackend, assert_carries_state, assert_matches_reference, block_images
from livematte.backends import create_backend
from livematte.backends.base import MattingBackend
from livematte.manifest import EngineManifest, load_manifest
from tiny_engines import HEIGHT, WIDTH, write_contrast_recurrent

ENGINES = Path(__file__).resolve().parents[1] / "engines"
HAS_TORCH = importlib.util.find_spec("torch") is not None
#: fp32 on a CPU: the same float maths in another order
CPU_BOUND = 1e-4
#: on a GPU: fp32 may use TF32 tensor cores; fp16 is the issue's 4/255 goal
GPU_BOUNDS = {"fp32": 2 / 255, "fp16": 4 / 255}
FRAMES = 6

Factory = Callable[[EngineManifest, tuple[int, int]], MattingBackend]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """torch's thread pool spins against the other processes on a small shared CPU: 1 thread is 10x faster."""
    if not HAS_TORCH:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _torch_cpu(manifest: EngineManifest, size: tuple[int, int]) -> MattingBackend:
    if not HAS_TORCH:
        pytest.skip("torch is not installed")
    from livematte.backends.torch_cuda import TorchCudaBackend

    return TorchCudaBackend(manifest, size, precision="fp32", device="cpu")


CPU_BACKENDS: dict[str, Factory] = {
    "cpu": lambda manifest, size: create_backend("cpu", manifest, size),
    "torch-on-cpu": _torch_cpu,
    "onnxruntime-gpu-state-on-cpu": CpuDeviceStateBackend,
}


# --- every engine through every CPU backend ------------------------------------------

#: engine id -> (where its manifest comes from, graph size to run it at)
ENGINE_CASES = {
    "lm-mobile-recurrent": (ENGINES / "lm-mobile-recurrent.json", (144, 256)),
    "lm-realtime": (ENGINES / "lm-realtime.json", (256, 192)),
    "lm-live": (ENGINES / "lm-live.json", (144, 256)),
    "lm-refine": (ENGINES / "refinement" / "lm-refine.json", (72, 128)),
    "peer-mediapipe": ("mediapipe_manifest", (144, 256)),
    "peer-selfie": ("selfie_manifest", (256, 256)),
    "peer-sinet": ("sinet_manifest", (320, 320)),
}


def _engine(request: pytest.FixtureRequest, case: str) -> EngineManifest:
    source, _ = ENGINE_CASES[case]
    return load_manifest(source) if isinstance(source, Path) else request.getfixturevalue(source)


def _feeds(manifest: EngineManifest, size: tuple[int, int], count: int) -> list[dict[str, np.ndarray]]:
    """Image (and, for the refinement engine, coarse alpha) per frame, at graph size ``size``."""
    height, width = size
    images = block_images(count, manifest.input.layout, height, width, seed=1)
    if manifest.coarse is None:
        return [{manifest.input.name: image} for image in images]
    coarse = block_images(count, manifest.coarse.layout, height, width, channels=1, seed=2)
    return [{manifest.input.name: image, manifest.coarse.name: alpha} for image, alpha in zip(images, coarse)]


@pytest.mark.parametrize("backend", list(CPU_BACKENDS))
@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_every_cpu_backend_runs_every_engine_like_onnxruntime(request, case: str, backend: str) -> None:
    manifest = _engine(request, case)
    size = ENGINE_CASES[case][1]
    instance = CPU_BACKENDS[backend](manifest, size)
    try:
        assert_matches_reference(instance, manifest, _feeds(manifest, size, 2), size, CPU_BOUND)
    finally:
        instance.close()


def test_the_shipped_engine_list_is_covered() -> None:
    shipped = {p.stem for p in ENGINES.rglob("*.onnx")}
    assert shipped <= set(ENGINE_CASES), f"engines without a parity case: {sorted(shipped - set(ENGINE_CASES))}"


# --- the recurrent contract on the high-contrast engine -------------------------------

@pytest.fixture(scope="module")
def contrast(tmp_path_factory: pytest.TempPathFactory) -> EngineManifest:
    return load_manifest(write_contrast_recurrent(tmp_path_factory.mktemp("contrast")))


def _contrast_feeds(manifest: EngineManifest) -> list[dict[str, np.ndarray]]:
    return [{manifest.input.name: f} for f in block_images(FRAMES, "NCHW", HEIGHT, WIDTH, seed=3)]


@pytest.mark.parametrize("backend", list(CPU_BACKENDS))
def test_cpu_backend_carries_state_and_resets(contrast, backend: str) -> None:
    instance = CPU_BACKENDS[backend](contrast, (HEIGHT, WIDTH))
    assert_carries_state(instance, contrast, _contrast_feeds(contrast), (HEIGHT, WIDTH), CPU_BOUND)


def test_contrast_engine_alpha_spans_zero_to_one(contrast) -> None:
    from backend_checks import reference_outputs

    alphas = [o["alpha"] for o in reference_outputs(contrast, _contrast_feeds(contrast), (HEIGHT, WIDTH))]
    assert min(a.min() for a in alphas) < 0.01 and max(a.max() for a in alphas) > 0.99


# --- the same checks on a GPU ----------------------------------------------------------

def _cuda_torch() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


def _gpu_factory(name: str, precision: str, tmp_path: Path) -> Factory:
    if name == "torch":
        if not _cuda_torch():
            pytest.skip("no CUDA GPU for torch on this machine")
        from livematte.backends.torch_cuda import TorchCudaBackend

        return lambda manifest, size: TorchCudaBackend(manifest, size, precision=precision)
    if name == "tensorrt":
        if importlib.util.find_spec("tensorrt") is None:
            pytest.skip("tensorrt is not installed")
        from livematte.backends.tensorrt import TensorRTBackend

        return lambda manifest, size: TensorRTBackend(manifest, size, precision=precision, cache_directory=tmp_path)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed")
    from livematte.backends.onnxruntime_gpu import OnnxRuntimeGpuBackend

    return lambda manifest, size: OnnxRuntimeGpuBackend(manifest, size, precision=precision,
                                                        cache_directory=tmp_path)


GPU_BACKENDS = ("torch", "tensorrt", "onnxruntime-gpu")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", list(GPU_BOUNDS))
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_backend_carries_state_and_resets(contrast, backend: str, precision: str, tmp_path: Path) -> None:
    instance = _gpu_factory(backend, precision, tmp_path)(contrast, (HEIGHT, WIDTH))
    try:
        assert_carries_state(instance, contrast, _contrast_feeds(contrast), (HEIGHT, WIDTH), GPU_BOUNDS[precision])
    finally:
        instance.close()


@pytest.mark.gpu
@pytest.mark.parametrize("precision", list(GPU_BOUNDS))
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_gpu_backend_runs_every_engine_like_onnxruntime(request, case: str, backend: str, precision: str,
                                                       tmp_path: Path) -> None:
    manifest = _engine(request, case)
    size = ENGINE_CASES[case][1]
    instance = _gpu_factory(backend, precision, tmp_path)(manifest, size)
    try:
        assert_matches_reference(instance, manifest, _feeds(manifest, size, 2), size, GPU_BOUNDS[precision])
    finally:
        instance.close()
