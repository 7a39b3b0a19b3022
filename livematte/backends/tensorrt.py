"""TensorRT backend: an engine built from the ONNX on first use, state kept on the GPU.

The plan is built with TensorRT 10's Python API (explicit-batch network,
ONNX parser, fp16 when the GPU has fast fp16 unless fp32 is forced, an
optimisation profile from the manifest) and cached on disk by
:mod:`livematte.trt_cache`, so only the first run on a machine pays for the
build. Per frame, the image and constants go up from page-locked host
buffers and the declared outputs come back on one CUDA stream; the recurrent
state never leaves the device: the state input and output buffers are
swapped after each frame, so the next frame reads what this one wrote.

Needs the ``tensorrt`` and ``pycuda`` packages and an NVIDIA GPU; without
them constructing the backend raises :class:`BackendUnavailable` with the
install line, while this module itself still imports.
"""
from __future__ import annotations

import importlib
import importlib.util
from math import prod
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from livematte import trt_cache
from livematte.backends.base import BackendUnavailable, MattingBackend, initial_state, resolve_precision
from livematte.errors import EngineError, first_line
from livematte.graph_inputs import input_shapes
from livematte.manifest import EngineManifest

INSTALL_HINT = ("pip install 'livematte[gpu]' --extra-index-url https://pypi.nvidia.com "
                "(TensorRT wheels come from NVIDIA's package index)")

Progress = Callable[[str], None]


def import_gpu_libraries() -> tuple[Any, Any]:
    """``(tensorrt, pycuda.driver)``, or BackendUnavailable naming what is missing.

    A package that is installed but cannot load (no NVIDIA driver, so no
    ``libcuda``) is reported as such rather than as "missing".
    """
    modules = {}
    missing, broken = [], []
    for package, module in (("tensorrt", "tensorrt"), ("pycuda", "pycuda.driver")):
        if importlib.util.find_spec(package) is None:
            missing.append(package)
            continue
        try:
            modules[package] = importlib.import_module(module)
        except ImportError as exc:
            broken.append(f"{package} ({first_line(exc)})")
    if missing:
        raise BackendUnavailable(f"the TensorRT backend needs {' and '.join(missing)}: {INSTALL_HINT}")
    if broken:
        raise BackendUnavailable(f"installed but cannot load: {', '.join(broken)}; is the NVIDIA driver installed?")
    return modules["tensorrt"], modules["pycuda"]


def init_cuda(cuda: Any) -> None:
    """``cuInit`` through pycuda; BackendUnavailable (not pycuda's own error) when it fails.

    pycuda imports fine on a machine with the driver library but no usable
    GPU; the failure only comes at ``cuInit`` ("no CUDA-capable device is
    detected", a driver older than the toolkit), and it is a device problem.
    """
    try:
        cuda.init()
    except cuda.Error as exc:
        raise BackendUnavailable(f"CUDA cannot start: {first_line(exc)}; is an NVIDIA GPU visible "
                                 "and its driver installed?") from None


class _PrimaryContext:
    """The device's primary CUDA context, the one TensorRT's runtime calls also use.

    Made current around each call rather than once, because the pipeline
    runs inference on its own thread and a context is current per thread.
    """

    def __init__(self, cuda: Any, device_index: int = 0) -> None:
        init_cuda(cuda)
        if cuda.Device.count() <= device_index:
            raise BackendUnavailable("no NVIDIA GPU is visible to CUDA")
        self.cuda = cuda
        self.device = cuda.Device(device_index)
        self.context = self.device.retain_primary_context()

    def __enter__(self) -> "_PrimaryContext":
        self.context.push()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cuda.Context.pop()

    def identity(self) -> tuple[str, str]:
        """(GPU name, compute capability "major.minor") for the plan cache key."""
        major, minor = self.device.compute_capability()
        return self.device.name(), f"{major}.{minor}"

    def release(self) -> None:
        self.context.detach()


def _progress_monitor(trt: Any, progress: Progress) -> Any:
    """A TensorRT IProgressMonitor that reports top-level build phases as lines."""

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            if parent_phase is None:
                progress(f"TensorRT: {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            pass

    return _Monitor()


def effective_precision(trt: Any, logger: Any, requested: str) -> str:
    """``--precision`` on this GPU: auto is fp16 only where the GPU has fast fp16."""
    if requested == "auto":
        return resolve_precision(requested, getattr(trt.Builder(logger), "platform_has_fast_fp16", True))
    return resolve_precision(requested, fast_fp16=False)


def build_plan(trt: Any, logger: Any, manifest: EngineManifest, precision: str,
               progress: Progress | None = None, graph_size: tuple[int, int] | None = None) -> bytes:
    """Parse the engine's ONNX and build a serialised plan (the slow step).

    ``graph_size`` is the input size the plan is tuned for when the engine
    declares ``input.sizes`` (:func:`livematte.trt_cache.profile_shapes`).
    """
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10 networks are always explicit-batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(manifest.onnx_path)):
        errors = [parser.get_error(i).desc() for i in range(parser.num_errors)]
        raise EngineError(f"engine {manifest.name!r}: TensorRT cannot parse {manifest.onnx_path.name}: "
                          f"{first_line(errors[0]) if errors else 'unknown parser error'}")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    shapes = trt_cache.profile_shapes(manifest, graph_size)
    profile = builder.create_optimization_profile()
    dynamic = False
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if all(d >= 0 for d in tensor.shape):
            continue
        if tensor.name not in shapes:
            raise EngineError(f"engine {manifest.name!r}: input {tensor.name!r} has dynamic dimensions "
                              "the manifest gives no shapes for")
        r = shapes[tensor.name]
        profile.set_shape(tensor.name, r.min, r.opt, r.max)
        dynamic = True
    if dynamic:
        config.add_optimization_profile(profile)
    if progress is not None:
        config.progress_monitor = _progress_monitor(trt, progress)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError(f"engine {manifest.name!r}: TensorRT could not build a {precision} plan "
                          "(run with TensorRT logging at VERBOSE to see why)")
    return bytes(plan)


def _cached_or_built_plan(trt: Any, logger: Any, gpu: _PrimaryContext, manifest: EngineManifest,
                          precision: str, progress: Progress | None, directory: Path | None,
                          force: bool = False, graph_size: tuple[int, int] | None = None
                          ) -> tuple[trt_cache.PlanKey, bytes]:
    name, capability = gpu.identity()
    key = trt_cache.PlanKey.create(manifest, gpu_name=name, compute_capability=capability,
                                   tensorrt_version=trt.__version__,
                                   precision=effective_precision(trt, logger, precision), graph_size=graph_size)
    plan = None if force else trt_cache.load_plan(key, directory)
    if plan is None:
        if progress is not None:
            progress(f"building TensorRT {key.precision} engine for {manifest.name!r} on {name} "
                     "(once per GPU and TensorRT version)")
        plan = build_plan(trt, logger, manifest, key.precision, progress, graph_size)
        trt_cache.store_plan(key, plan, directory)
    return key, plan


def build_engine_cache(manifest: EngineManifest, precision: str = "auto",
                       progress: Progress | None = None, directory: Path | None = None,
                       force: bool = False) -> list[Path]:
    """Build (or verify) the cached plans for ``manifest`` ahead of time; returns their paths.

    What ``livematte engines build NAME --precision P`` runs, so the first
    live frame does not wait for the build; ``process --precision P`` then
    finds the same plan (the cache key holds the precision resolved on this GPU).
    One plan, or one per declared size for an ``input.sizes`` engine (each
    tuned for its size), as the backend asks for them.
    """
    resolve_precision(precision, fast_fp16=False)  # a bad value fails before the GPU is touched
    trt, cuda = import_gpu_libraries()
    gpu = _PrimaryContext(cuda)  # no device: a one-line BackendUnavailable before TensorRT is touched
    try:
        logger = trt.Logger(trt.Logger.WARNING)
        with gpu:
            keys = [_cached_or_built_plan(trt, logger, gpu, manifest, precision, progress, directory, force, size)[0]
                    for size in manifest.input.sizes or (None,)]
    finally:
        gpu.release()
    return [key.plan_path(directory) for key in keys]


class TensorRTBackend(MattingBackend):
    """Runs a cached TensorRT plan of the engine at one graph input size."""

    name = "tensorrt"

    def __init__(self, manifest: EngineManifest, input_size: tuple[int, int], precision: str = "auto",
                 progress: Progress | None = None, cache_directory: Path | None = None) -> None:
        trt, cuda = import_gpu_libraries()
        self.manifest = manifest
        self.input_size = input_size
        self._cuda = cuda
        self._gpu = _PrimaryContext(cuda)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._device: dict[str, Any] = {}
        try:
            with self._gpu:
                self._load(trt, precision, progress, cache_directory)
        except BaseException:
            self.close()
            raise

    def _load(self, trt: Any, precision: str, progress: Progress | None, cache_directory: Path | None) -> None:
        manifest = self.manifest
        self.plan_key, plan = _cached_or_built_plan(trt, self._logger, self._gpu, manifest, precision,
                                                    progress, cache_directory, graph_size=self.input_size)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise EngineError(f"engine {manifest.name!r}: TensorRT rejected its cached plan; "
                              f"delete {self.plan_key.plan_path(cache_directory)} to rebuild it")
        self._context = self._engine.create_execution_context()
        self._stream = self._cuda.Stream()
        self._allocate(trt)
        self._fill_state()

    def _allocate(self, trt: Any) -> None:
        engine, context, cuda = self._engine, self._context, self._cuda
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for name, shape in input_shapes(self.manifest, *self.input_size).items():
            if name in inputs and any(d < 0 for d in engine.get_tensor_shape(name)):
                if not context.set_input_shape(name, shape):
                    raise EngineError(f"engine {self.manifest.name!r}: input {name!r} shape {shape} is outside "
                                      "the optimisation profile of the cached plan")
        declared = {o.name for o in self.manifest.outputs.all()}
        state_inputs = {s.input for s in self.manifest.state}
        self._dtypes: dict[str, np.dtype] = {}
        self._counts: dict[str, int] = {}
        self._host_inputs: dict[str, np.ndarray] = {}
        self._host_outputs: dict[str, np.ndarray] = {}
        for name in names:
            shape = tuple(context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            self._dtypes[name] = dtype
            self._counts[name] = max(1, prod(shape))
            self._device[name] = cuda.mem_alloc(self._counts[name] * dtype.itemsize)
            if name in inputs and name not in state_inputs:
                self._host_inputs[name] = cuda.pagelocked_empty(shape, dtype)
            elif name in declared:
                self._host_outputs[name] = cuda.pagelocked_empty(shape, dtype)
        for state in self.manifest.state:
            in_shape, out_shape = (tuple(context.get_tensor_shape(n)) for n in (state.input, state.output))
            if in_shape != out_shape:
                raise EngineError(f"engine {self.manifest.name!r}: state {state.input!r} is {in_shape} but "
                                  f"{state.output!r} is {out_shape}; the TensorRT backend needs them equal")
        for name in names:
            context.set_tensor_address(name, int(self._device[name]))

    def reset(self) -> None:
        with self._gpu:
            self._fill_state()

    def _fill_state(self) -> None:
        """Copy the initial state into every state input buffer (between frames, so synchronously)."""
        for name, value in initial_state(self.manifest, self.input_size, self._dtypes).items():
            self._cuda.memcpy_htod(self._device[name], value)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        with self._gpu:
            for name, host in self._host_inputs.items():
                if name not in inputs:
                    raise EngineError(f"engine {self.manifest.name!r}: input {name!r} was not given")
                value = np.asarray(inputs[name])
                if value.size != host.size:
                    raise EngineError(f"engine {self.manifest.name!r}: input {name!r} has shape {value.shape}, "
                                      f"the TensorRT engine was set up for {host.shape}")
                np.copyto(host, value.reshape(host.shape), casting="same_kind")
                cuda.memcpy_htod_async(self._device[name], host, self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise EngineError(f"engine {self.manifest.name!r}: TensorRT failed to run a frame")
            for name, host in self._host_outputs.items():
                cuda.memcpy_dtoh_async(host, self._device[name], self._stream)
            self._swap_state()
            self._stream.synchronize()
            return {name: host.copy() for name, host in self._host_outputs.items()}

    def _swap_state(self) -> None:
        """This frame's state output becomes the next frame's state input, on the device.

        The addresses enqueued for this frame are already captured by
        ``execute_async_v3``, so rebinding now only affects the next frame.
        """
        for state in self.manifest.state:
            device = self._device
            device[state.input], device[state.output] = device[state.output], device[state.input]
            self._context.set_tensor_address(state.input, int(device[state.input]))
            self._context.set_tensor_address(state.output, int(device[state.output]))

    def close(self) -> None:
        """Free the device buffers and the engine, then let go of the CUDA context (idempotent)."""
        if self._gpu is None:
            return
        with self._gpu:
            stream = getattr(self, "_stream", None)
            if stream is not None:
                stream.synchronize()
            for allocation in self._device.values():
                allocation.free()
            self._device.clear()
            self._context = self._engine = self._runtime = None
        self._gpu.release()
        self._gpu = None
