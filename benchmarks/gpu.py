"""Backend speed and agreement on one machine: the script to run when a GPU is lent.

    python benchmarks/gpu.py                       # CUDA backends present, fp16 and fp32
    python benchmarks/gpu.py --device cpu --frames 3 --warmup 1 --sizes 720p    # CPU smoke run

For each backend present on ``--device`` (cuda: torch, tensorrt,
onnxruntime-gpu; cpu: cpu, torch) and each precision it prints:

- **model** rows, one per engine at its internal size (the shipped matting
  engine at its fixed graph size; the refinement engine at one 512x512
  tile): ``backend.run`` calls per second on a prepared input, host/device
  copies included; the max and mean |alpha - CPU ONNX Runtime alpha| over a
  sequence of sample frames with the state carried; and carried vs reset:
  the mean |alpha carried - alpha after reset()| on the last frame (non-zero
  means the state matters) and the max |after reset - fresh reference|
  (zero means reset() restores the initial state);
- **matte** rows, one per frame size (720p, 1080p, 4K): whole-frame matting
  per second through ``livematte.engine.Matter``: resize to the graph size,
  normalise, model, activation, guided upsampling back to the frame;
- **end to end**: ``livematte process`` on a generated 1080p clip (decode,
  matte, composite, H.264 encode), skipped with a message without PyAV;
  registry backends only (the torch backend on the CPU device is not one).

Backends that cannot run are listed with the reason. The reference is ONNX
Runtime on the CPU; without onnxruntime it is the torch backend on the CPU
in fp32 (the test suite holds the two within 1e-4) and the script says so.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without pip install

from livematte.backends import create_backend  # noqa: E402
from livematte.backends.base import MattingBackend  # noqa: E402
from livematte.engine import Matter, activate  # noqa: E402
from livematte.errors import LivematteError  # noqa: E402
from livematte.graph_inputs import input_shapes  # noqa: E402
from livematte.manifest import EngineManifest, load_manifest  # noqa: E402
from livematte.registry import DEFAULT_ENGINE, find_engine  # noqa: E402
from livematte.sample import sample_frames  # noqa: E402

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4K": (2160, 3840)}
DEVICE_BACKENDS = {"cuda": ("torch", "tensorrt", "onnxruntime-gpu"), "cpu": ("cpu", "torch")}

Factory = Callable[[tuple[int, int]], MattingBackend]


def backend_factory(name: str, device: str, manifest: EngineManifest, precision: str) -> Factory:
    """Builds backend ``name`` for a graph size; the torch backend on ``device``, others from the registry."""
    if name == "torch":
        def make_torch(size: tuple[int, int]) -> MattingBackend:
            from livematte.backends.torch_cuda import TorchCudaBackend
            return TorchCudaBackend(manifest, size, precision=precision, device=device)
        return make_torch
    return lambda size: create_backend(name, manifest, size, precision=precision)


def reference_factory(manifest: EngineManifest) -> tuple[Factory, str]:
    """CPU ONNX Runtime, or the torch backend on the CPU when onnxruntime is missing; and its label."""
    if importlib.util.find_spec("onnxruntime") is not None:
        return backend_factory("cpu", "cpu", manifest, "fp32"), "ONNX Runtime CPU"
    return backend_factory("torch", "cpu", manifest, "fp32"), "torch on the CPU, fp32 (no onnxruntime here)"


def per_second(count: int, warmup: int, work: Callable[[], object]) -> float:
    """Calls per second of ``work`` over ``count`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        work()
    start = time.perf_counter()
    for _ in range(count):
        work()
    return count / (time.perf_counter() - start)


def frames_at(size: tuple[int, int], count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` consecutive sample frames (RGB uint8, true alpha) at (height, width) ``size``."""
    height, width = size
    return list(sample_frames((width, height), seconds=count / 30.0, fps=30.0))[:count]


def engine_feeds(manifest: EngineManifest, graph_size: tuple[int, int], count: int,
                 make_reference: Factory) -> list[dict[str, np.ndarray]]:
    """Graph inputs for ``count`` sample frames: the normalised image, constants, and the
    refinement engine's coarse alpha (the sample's true alpha) when the graph has one.

    ``Matter``'s own preprocessing makes them, so every backend sees what the runtime feeds.
    """
    matter = Matter(manifest, backend_factory=make_reference)
    feeds = []
    try:
        for rgb, alpha in frames_at(graph_size, count):
            h, w = rgb.shape[:2]
            feed = {manifest.input.name: matter.preprocess(rgb, graph_size), **matter._constants(h, w)}
            if manifest.coarse is not None:
                shape = input_shapes(manifest, *graph_size)[manifest.coarse.name]
                feed[manifest.coarse.name] = alpha.reshape(shape).astype(np.float32)
            feeds.append(feed)
    finally:
        matter.close()
    return feeds


def alphas(backend: MattingBackend, manifest: EngineManifest, feeds: Iterable[dict]) -> list[np.ndarray]:
    """The activated alpha per feed, from a freshly reset state."""
    backend.reset()
    spec = manifest.outputs.alpha
    return [activate(backend.run(feed)[spec.name], spec) for feed in feeds]


@dataclass
class ModelRow:
    backend: str
    precision: str
    engine: str
    graph: tuple[int, int]
    fps: float
    max_diff: float
    mean_diff: float
    carried_vs_reset: float
    reset_error: float


def model_row(name: str, precision: str, manifest: EngineManifest, graph_size: tuple[int, int],
              make: Factory, reference: list[np.ndarray], fresh_last: np.ndarray,
              feeds: list[dict], args: argparse.Namespace) -> ModelRow:
    backend = make(graph_size)
    try:
        fps = per_second(args.frames, args.warmup, lambda: backend.run(feeds[0]))
        got = alphas(backend, manifest, feeds)
        backend.reset()
        after_reset = activate(backend.run(feeds[-1])[manifest.outputs.alpha.name], manifest.outputs.alpha)
    finally:
        backend.close()
    diffs = [np.abs(g - r) for g, r in zip(got, reference)]
    return ModelRow(name, precision, manifest.name, graph_size, fps, float(max(d.max() for d in diffs)),
                    float(np.mean([d.mean() for d in diffs])), float(np.abs(got[-1] - after_reset).mean()),
                    float(np.abs(after_reset - fresh_last).max()))


def matte_fps(manifest: EngineManifest, make: Factory, size: tuple[int, int], args: argparse.Namespace) -> float:
    """Whole-frame matting per second at frame ``size`` (resize + model + upsample)."""
    frames = [rgb for rgb, _ in frames_at(size, max(1, min(args.sequence, args.frames)))]
    matter = Matter(manifest, scene_cut_threshold=None, backend_factory=make)
    step = iter(range(1 << 30))
    try:
        return per_second(args.frames, args.warmup, lambda: matter.infer(frames[next(step) % len(frames)]))
    finally:
        matter.close()


def measure(args: argparse.Namespace, matting: EngineManifest, engines: list[tuple[EngineManifest, tuple[int, int]]],
            present: list[str]) -> tuple[list[ModelRow], list[tuple]]:
    model_rows, matte_rows = [], []
    references = {}
    for manifest, graph_size in engines:
        make_reference, label = reference_factory(manifest)
        feeds = engine_feeds(manifest, graph_size, args.sequence, make_reference)
        reference = make_reference(graph_size)
        try:
            expected = alphas(reference, manifest, feeds)
            fresh_last = alphas(reference, manifest, feeds[-1:])[0]
        finally:
            reference.close()
        references[manifest.name] = (feeds, expected, fresh_last, label)
    for name in present:
        for precision in args.precisions:
            for manifest, graph_size in engines:
                feeds, expected, fresh_last, _ = references[manifest.name]
                make = backend_factory(name, args.device, manifest, precision)
                try:
                    model_rows.append(model_row(name, precision, manifest, graph_size, make, expected,
                                                fresh_last, feeds, args))
                except LivematteError as exc:
                    print(f"  {name} {precision} {manifest.name}: {exc}")
            make = backend_factory(name, args.device, matting, precision)
            for label in args.sizes:
                try:
                    fps = matte_fps(matting, make, SIZES[label], args)
                except LivematteError as exc:
                    print(f"  {name} {precision} matte {label}: {exc}")
                    continue
                matte_rows.append((name, precision, label, matting.graph_size(*SIZES[label]), fps))
    print("reference: " + ", ".join(sorted({ref[3] for ref in references.values()})))
    return model_rows, matte_rows


def print_tables(model_rows: list[ModelRow], matte_rows: list[tuple]) -> None:
    print(f"\n{'backend':16s} {'prec':5s} {'engine':22s} {'graph':>9s} {'model fps':>10s} {'max diff':>9s} "
          f"{'mean diff':>9s} {'carried-reset':>13s} {'reset err':>9s}")
    for r in model_rows:
        print(f"{r.backend:16s} {r.precision:5s} {r.engine:22s} {f'{r.graph[0]}x{r.graph[1]}':>9s} {r.fps:10.1f} "
              f"{r.max_diff:9.5f} {r.mean_diff:9.5f} {r.carried_vs_reset:13.5f} {r.reset_error:9.5f}")
    print(f"\n{'backend':16s} {'prec':5s} {'frame':6s} {'graph':>9s} {'matte fps':>10s}")
    for name, precision, label, (gh, gw), fps in matte_rows:
        print(f"{name:16s} {precision:5s} {label:6s} {f'{gh}x{gw}':>9s} {fps:10.1f}")


def end_to_end(args: argparse.Namespace, present: list[str]) -> None:
    """``livematte process`` fps on a generated 1080p clip per registry backend, or why not."""
    if args.e2e_seconds <= 0:
        return
    if importlib.util.find_spec("av") is None:
        print("\nend to end: skipped, PyAV is not installed here (pip install av)")
        return
    from livematte.cli import main as cli_main
    from livematte.sample import write_sample

    runnable = [n for n in present if not (n == "torch" and args.device == "cpu")]
    frames = int(round(args.e2e_seconds * 30.0))
    print(f"\nend to end, livematte process on a {frames}-frame 1080p clip:")
    with tempfile.TemporaryDirectory(prefix="livematte-gpu-bench-") as tmp:
        clip = write_sample(Path(tmp) / "sample-1080p.mp4", size=(1920, 1080), seconds=args.e2e_seconds, fps=30.0)
        for name in runnable:
            for precision in args.precisions:
                start = time.perf_counter()
                code = cli_main(["process", str(clip), str(Path(tmp) / "out.mp4"), "--model", args.model,
                                 "--backend", name, "--precision", precision, "--overwrite", "-q"])
                elapsed = time.perf_counter() - start
                result = f"{frames / elapsed:8.1f} fps" if code == 0 else f"failed (exit {code}, message above)"
                print(f"  {name:16s} {precision:5s} {result}")


def device_name(device: str) -> str:
    if device == "cpu":
        import os
        import platform

        return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    try:
        from livematte.backends.torch_cuda import require_cuda_torch

        return require_cuda_torch().cuda.get_device_name(0)
    except Exception as exc:  # no torch, no CUDA: this is a report line, not a failure
        return f"no CUDA GPU via torch ({exc})"


def present_backends(args: argparse.Namespace, matting: EngineManifest) -> list[str]:
    """The backends that start on this device, each tried once at the engine's graph size."""
    present = []
    size = matting.graph_size(*SIZES[args.sizes[0]])
    for name in args.backends or DEVICE_BACKENDS[args.device]:
        try:
            backend_factory(name, args.device, matting, args.precisions[0])(size).close()
        except Exception as exc:  # a report line per backend: missing libraries, no device, ...
            print(f"  {name:16s} unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        print(f"  {name:16s} available")
        present.append(name)
    return present


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=sorted(DEVICE_BACKENDS), default="cuda",
                        help="cuda (the GPU backends) or cpu (smoke run with the CPU backends)")
    parser.add_argument("--model", default=DEFAULT_ENGINE, help=f"matting engine name or path (default {DEFAULT_ENGINE})")
    parser.add_argument("--frames", type=int, default=200, help="timed calls per measurement (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first (default 10)")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--precisions", nargs="+", choices=("fp16", "fp32"), default=None,
                        help="default: fp16 and fp32 on cuda, fp32 on cpu")
    parser.add_argument("--backends", nargs="+", help="default: every backend of --device")
    parser.add_argument("--sequence", type=int, default=8,
                        help="frames compared with the reference, state carried (default 8)")
    parser.add_argument("--no-refine", action="store_true", help="skip the refinement engine's model rows")
    parser.add_argument("--e2e-seconds", type=float, default=2.0,
                        help="length of the end-to-end 1080p clip; 0 skips that part (default 2)")
    args = parser.parse_args(argv)
    args.precisions = args.precisions or (["fp16", "fp32"] if args.device == "cuda" else ["fp32"])

    print(f"device: {device_name(args.device)}")
    try:
        matting = find_engine(args.model)
        engines = [(matting, matting.graph_size(*SIZES[args.sizes[0]]))]
        if not args.no_refine:  # the quality package pulls in pymatting/numba: only when measured
            from livematte.quality.offline import shipped_refine_engine
            from livematte.quality.refine import DEFAULT_TILE

            # loaded like the quality mode's Refiner: its coarse input is not Matter's to feed
            engines.append((load_manifest(shipped_refine_engine()), (DEFAULT_TILE, DEFAULT_TILE)))
    except LivematteError as exc:
        print(f"gpu.py: error: {exc}", file=sys.stderr)
        return exc.exit_code
    present = present_backends(args, matting)
    if not present:
        print(f"no backend can run on {args.device} here: nothing to measure")
        return 0
    print_tables(*measure(args, matting, engines, present))
    end_to_end(args, present)
    return 0


if __name__ == "__main__":
    sys.exit(main())
