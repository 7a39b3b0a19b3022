"""GPU backends: speed at 720p, 1080p and 4K, and agreement with ONNX Runtime on the CPU.

    python benchmarks/gpu.py [--model NAME|PATH] [--frames 200] [--precisions fp16 fp32]

For each GPU backend that can run on this machine (tensorrt, torch,
onnxruntime-gpu) and each precision, it prints one row per frame size:

- graph: the engine's input size for that frame size (fixed-size engines feed
  every frame size at the same graph size; only resizing and upsampling grow);
- model fps: ``backend.run`` alone on a preprocessed frame, including the
  host/device copies of image and outputs (the state stays on the device);
- matte fps: the whole per-frame matte (resize, normalise, model, activation,
  guided upsampling to the frame) via ``livematte.engine.Matter``, at the
  backend's default precision (fp16) since ``Matter`` picks backends by name;
- MAD: mean absolute difference of the alpha probability from the CPU ONNX
  Runtime alpha on the same sequence of real sample frames, state carried
  (goal: at most 1/255 = 0.0039);

then end-to-end file processing fps (``livematte process`` on a generated
1080p sample clip, decode + matte + composite + H.264 encode). Backends that
cannot run are listed with the reason, which is all this prints on a machine
without an NVIDIA GPU.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without pip install

from livematte.backends import create_backend  # noqa: E402
from livematte.backends.base import BackendUnavailable, MattingBackend  # noqa: E402
from livematte.engine import Matter, activate  # noqa: E402
from livematte.errors import LivematteError  # noqa: E402
from livematte.manifest import EngineManifest  # noqa: E402
from livematte.registry import DEFAULT_ENGINE, find_engine  # noqa: E402
from livematte.sample import sample_frames, write_sample  # noqa: E402

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4K": (2160, 3840)}
GPU_BACKENDS = ("tensorrt", "torch", "onnxruntime-gpu")
WARMUP = 10
AGREEMENT_FRAMES = 30
E2E_SECONDS = 4.0


def _tensorrt_probe() -> None:
    from livematte.backends.tensorrt import import_gpu_libraries

    _, cuda = import_gpu_libraries()
    cuda.init()
    if cuda.Device.count() == 0:
        raise BackendUnavailable("no NVIDIA GPU is visible to CUDA")


def _torch_probe() -> None:
    from livematte.backends.torch_cuda import require_cuda_torch

    require_cuda_torch()


def _onnxruntime_gpu_probe() -> None:
    from livematte.backends.onnxruntime_gpu import require_gpu_providers

    require_gpu_providers()


PROBES: dict[str, Callable[[], None]] = {
    "tensorrt": _tensorrt_probe, "torch": _torch_probe, "onnxruntime-gpu": _onnxruntime_gpu_probe,
}


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None when its libraries and GPU are present."""
    try:
        PROBES[name]()
    except BackendUnavailable as exc:
        return str(exc)
    return None


def make_backend(name: str, manifest: EngineManifest, graph_size: tuple[int, int], precision: str) -> MattingBackend:
    """A GPU backend at an explicit precision (``create_backend`` always takes the default)."""
    if name == "tensorrt":
        from livematte.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(manifest, graph_size, precision=precision,
                               progress=lambda line: print(f"  {line}", file=sys.stderr))
    if name == "torch":
        from livematte.backends.torch_cuda import TorchCudaBackend

        return TorchCudaBackend(manifest, graph_size, precision=precision)
    from livematte.backends.onnxruntime_gpu import OnnxRuntimeGpuBackend

    return OnnxRuntimeGpuBackend(manifest, graph_size, precision=precision)


def graph_inputs(matter: Matter, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """What ``Matter`` feeds the backend for this frame (image tensor and constants)."""
    h, w = rgb.shape[:2]
    graph_size = matter.manifest.graph_size(h, w)
    inputs = {matter.manifest.input.name: matter.preprocess(rgb, graph_size)}
    inputs.update(matter._constants(h, w))  # Matter's own constant feed, so both paths agree
    return inputs


def per_second(count: int, work: Callable[[], None]) -> float:
    """Calls per second of ``work`` over ``count`` calls after a warm-up."""
    for _ in range(WARMUP):
        work()
    start = time.perf_counter()
    for _ in range(count):
        work()
    return count / (time.perf_counter() - start)


def alpha_sequence(backend: MattingBackend, manifest: EngineManifest, inputs: list[dict]) -> list[np.ndarray]:
    backend.reset()
    spec = manifest.outputs.alpha
    return [activate(backend.run(x)[spec.name], spec) for x in inputs]


def e2e_fps(model: str, backend: str, clip: Path, frames: int, workdir: Path) -> str:
    """``livematte process`` on the clip: frames per wall-clock second, or why it failed."""
    from livematte.cli import main as cli_main

    out = workdir / f"out-{backend}.mp4"
    start = time.perf_counter()
    code = cli_main(["process", str(clip), str(out), "--model", model, "--backend", backend, "--overwrite", "-q"])
    elapsed = time.perf_counter() - start
    return f"{frames / elapsed:8.1f} fps" if code == 0 else f"failed (exit {code}, message above)"


def _gpu_name() -> str:
    try:
        from livematte.backends.tensorrt import import_gpu_libraries

        _, cuda = import_gpu_libraries()
        cuda.init()
        return cuda.Device(0).name()
    except BackendUnavailable:
        pass
    try:
        from livematte.backends.torch_cuda import require_cuda_torch

        return require_cuda_torch().cuda.get_device_name(0)
    except BackendUnavailable:
        return "no CUDA GPU"


def measure(args: argparse.Namespace, manifest: EngineManifest, backends: list[str]) -> list[tuple]:
    rows = []
    reference = Matter(manifest, backend="cpu")
    for label, (h, w) in SIZES.items():
        frames = [rgb for rgb, _ in sample_frames((w, h), seconds=AGREEMENT_FRAMES / 30.0, fps=30.0)]
        inputs = [graph_inputs(reference, rgb) for rgb in frames]
        graph_size = manifest.graph_size(h, w)
        cpu = create_backend("cpu", manifest, graph_size)
        expected = alpha_sequence(cpu, manifest, inputs)
        cpu.close()
        for name in backends:
            for precision in args.precisions:
                try:
                    backend = make_backend(name, manifest, graph_size, precision)
                except (BackendUnavailable, LivematteError) as exc:
                    rows.append((name, precision, label, graph_size, None, None, None, str(exc)))
                    continue
                try:
                    model = per_second(args.frames, lambda: backend.run(inputs[0]))
                    got = alpha_sequence(backend, manifest, inputs)
                    mad = float(np.mean([np.abs(g - e).mean() for g, e in zip(got, expected)]))
                finally:
                    backend.close()
                matte = None
                if precision == "fp16":
                    matter = Matter(manifest, backend=name, scene_cut_threshold=None)
                    try:
                        matte = per_second(max(20, args.frames // 4), lambda: matter.infer(frames[0]))
                    finally:
                        matter.close()
                rows.append((name, precision, label, graph_size, model, matte, mad, ""))
    reference.close()
    return rows


def print_table(rows: list[tuple]) -> None:
    print(f"{'backend':16s} {'prec':5s} {'frame':6s} {'graph':>9s} {'model fps':>10s} {'matte fps':>10s} {'MAD':>8s}  note")
    for name, precision, label, (gh, gw), model, matte, mad, note in rows:
        cell = (lambda v, f: f"{v:{f}}" if v is not None else "-")
        print(f"{name:16s} {precision:5s} {label:6s} {f'{gh}x{gw}':>9s} {cell(model, '10.1f'):>10s} "
              f"{cell(matte, '10.1f'):>10s} {cell(mad, '8.5f'):>8s}  {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_ENGINE, help=f"engine name or .onnx/.json path (default {DEFAULT_ENGINE})")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per measurement (default 200)")
    parser.add_argument("--precisions", nargs="+", choices=("fp16", "fp32"), default=["fp16", "fp32"])
    parser.add_argument("--backends", nargs="+", choices=GPU_BACKENDS, default=list(GPU_BACKENDS))
    args = parser.parse_args(argv)

    print(f"GPU: {_gpu_name()}")
    available = []
    for name in args.backends:
        reason = unavailable_reason(name)
        print(f"  {name:16s} {'available' if reason is None else 'unavailable: ' + reason}")
        if reason is None:
            available.append(name)
    if not available:
        print("no GPU backend can run on this machine: nothing to measure")
        return 0
    try:
        manifest = find_engine(args.model)
    except LivematteError as exc:
        print(f"gpu.py: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"engine: {manifest.name} ({manifest.onnx_path.name})")
    print_table(measure(args, manifest, available))

    with tempfile.TemporaryDirectory(prefix="livematte-gpu-bench-") as tmp:
        workdir = Path(tmp)
        clip = write_sample(workdir / "sample-1080p.mp4", size=(1920, 1080), seconds=E2E_SECONDS, fps=30.0)
        frames = int(round(E2E_SECONDS * 30.0))
        print(f"\nend to end, livematte process on a {frames}-frame 1080p clip (default precision):")
        for name in ["cpu"] + available:
            print(f"  {name:16s} {e2e_fps(args.model, name, clip, frames, workdir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
