"""PyTorch CUDA backend: the engine's own ONNX run by torch, fp16, one CUDA graph per frame.

For machines with an NVIDIA GPU and torch but no TensorRT. No second model
artefact is needed: :class:`livematte.torch_graph.OnnxTorchGraph` evaluates
the shipped ONNX with torch ops, so this backend runs exactly the graph the
other backends run. On CUDA the module is cast to fp16 and channels-last,
the image, constants and recurrent state live in static device buffers, and
after a warm-up the whole per-frame step (graph plus state feedback) is
captured once as a CUDA graph and replayed, which removes the per-op launch
overhead that dominates a small real-time network. If capture fails (an op
that syncs with the host, say) the backend warns and stays eager.

``device="cpu"`` (fp32, no CUDA graph) exists so the graph wrapping and the
state feedback can be tested on machines without a GPU.
"""
from __future__ import annotations

import importlib.util
import warnings
from typing import Any, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from livematte.backends.base import BackendUnavailable, MattingBackend, initial_state, resolve_precision
from livematte.errors import EngineError
from livematte.graph_inputs import input_shapes
from livematte.manifest import EngineManifest

INSTALL_HINT = "install a CUDA build of PyTorch (https://pytorch.org/get-started/locally/)"

#: inputs the interpreter reads on the host (shapes, scales, bounds); they must stay
#: CPU float32 tensors so reading them neither syncs the GPU nor breaks graph capture
HOST_SIDE_INPUTS = {
    "Resize": (1, 2, 3), "Clip": (1, 2), "Pad": (1, 2), "Reshape": (1,), "Slice": (1, 2, 3, 4),
    "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Expand": (1,), "ConstantOfShape": (0,),
}
#: warm-up frames before capture: lets cuDNN pick algorithms and the allocator settle
WARMUP_STEPS = 3


def _import_torch() -> Any:
    if importlib.util.find_spec("torch") is None:
        raise BackendUnavailable(f"the torch backend needs PyTorch: {INSTALL_HINT}")
    import torch

    return torch


def require_cuda_torch() -> Any:
    """The ``torch`` module when it can use a CUDA GPU; BackendUnavailable saying why not."""
    torch = _import_torch()
    if not torch.cuda.is_available():
        built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
        raise BackendUnavailable(f"PyTorch {torch.__version__} ({built}) sees no CUDA GPU: {INSTALL_HINT}")
    return torch


def constants_as_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every ``Constant`` node turned into an initializer.

    The interpreter would otherwise create those tensors on the CPU every
    frame; as initializers they are moved to the device once, with the weights.
    """
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    keep = []
    for node in graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and "value" in attrs:
            tensor = numpy_helper.from_array(numpy_helper.to_array(attrs["value"].t), name=node.output[0])
            graph.initializer.append(tensor)
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    return folded


def _host_side_names(model: onnx.ModelProto) -> set[str]:
    names = set()
    for node in model.graph.node:
        for index in HOST_SIDE_INPUTS.get(node.op_type, ()):
            if index < len(node.input) and node.input[index]:
                names.add(node.input[index])
    return names


def _static_dims(model: onnx.ModelProto, name: str) -> tuple[int, ...]:
    for value in model.graph.input:
        if value.name == name:
            dims = value.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                return tuple(d.dim_value for d in dims)
            raise EngineError(f"graph input {name!r} needs a static shape for the torch backend")
    raise EngineError(f"graph input {name!r} not found")


class TorchCudaBackend(MattingBackend):
    """Runs the engine's ONNX through torch on one device with static buffers."""

    name = "torch"

    def __init__(self, manifest: EngineManifest, input_size: tuple[int, int], precision: str = "auto",
                 device: str = "cuda", cuda_graph: bool = True) -> None:
        torch = require_cuda_torch() if device.startswith("cuda") else _import_torch()
        from livematte.torch_graph import OnnxTorchGraph

        self._torch = torch
        self.manifest = manifest
        self.input_size = input_size
        self.device = torch.device(device)
        on_gpu = self.device.type == "cuda"
        # tensor cores (compute capability 7.0 on) make fp16 fast; older GPUs and the CPU emulate it
        fast_fp16 = on_gpu and torch.cuda.get_device_capability(self.device) >= (7, 0)
        self.precision = resolve_precision(precision, fast_fp16)
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        model = constants_as_initializers(onnx.load(str(manifest.onnx_path)))
        try:
            self.graph = OnnxTorchGraph(model)
        except NotImplementedError as exc:
            raise EngineError(f"engine {manifest.name!r}: {exc}") from None
        self.graph.eval().requires_grad_(False)
        self.graph.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        self._place_constants(_host_side_names(model))
        self._declared = [o.name for o in manifest.outputs.all()]
        self._buffers = self._static_inputs(model)
        self._staging = {name: torch.empty(buf.shape, dtype=torch.float32, pin_memory=on_gpu)
                         for name, buf in self._buffers.items() if name not in self._state_names()}
        self._cuda_graph = None
        self._graph_outputs: dict[str, Any] = {}
        if on_gpu and cuda_graph:
            self._capture()

    def _state_names(self) -> set[str]:
        return {s.input for s in self.manifest.state}

    def _place_constants(self, host_side: set[str]) -> None:
        """Weights follow the module; host-read tensors go back to CPU float32.

        Float constants with dimensions take part in arithmetic, so they move
        to the device and dtype; 0-d ones act as scalars and stay on the CPU.
        """
        torch = self._torch
        for name in host_side:
            try:
                param = self.graph.parameter_for(name)
            except KeyError:  # not a parameter: an int or scalar constant, already on the CPU
                continue
            param.data = param.data.to("cpu", torch.float32)
        for name, value in self.graph.consts.items():
            if name not in host_side and value.is_floating_point() and value.dim() > 0:
                self.graph.consts[name] = value.to(self.device, self.dtype)

    def _static_inputs(self, model: onnx.ModelProto) -> dict[str, Any]:
        """One fixed device buffer per graph input (CUDA graphs replay fixed addresses)."""
        torch = self._torch
        spec = self.manifest.input
        shapes = input_shapes(self.manifest, *self.input_size)
        shapes.update({c.name: _static_dims(model, c.name) for c in self.manifest.constants})
        buffers = {}
        for name in self.graph.input_names:
            if name not in shapes:
                raise EngineError(f"engine {self.manifest.name!r}: graph input {name!r} is not in the manifest")
            buf = torch.zeros(shapes[name], device=self.device, dtype=self.dtype)
            if buf.dim() == 4 and (name != spec.name or spec.layout == "NCHW"):
                buf = buf.contiguous(memory_format=torch.channels_last)
            buffers[name] = buf
        self._fill_state(buffers)
        return buffers

    def _fill_state(self, buffers: Mapping[str, Any]) -> None:
        for name, value in initial_state(self.manifest, self.input_size).items():
            buffers[name].copy_(self._torch.from_numpy(value))

    def _step(self) -> dict[str, Any]:
        """One frame from the static buffers; state outputs are copied into the state inputs."""
        outputs, _ = self.graph(*(self._buffers[name] for name in self.graph.input_names))
        by_name = dict(zip(self.graph.output_names, outputs))
        for state in self.manifest.state:
            target, value = self._buffers[state.input], by_name[state.output]
            if target.shape != value.shape:
                raise EngineError(f"engine {self.manifest.name!r}: state {state.output!r} is {tuple(value.shape)} "
                                  f"but {state.input!r} is {tuple(target.shape)}")
            target.copy_(value)
        return {name: by_name[name] for name in self._declared}

    def _capture(self) -> None:
        """Record the per-frame step as a CUDA graph after a warm-up on a side stream."""
        torch = self._torch
        try:
            with torch.no_grad():
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(WARMUP_STEPS):
                        self._step()
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self._graph_outputs = self._step()
            self._cuda_graph = graph
        except EngineError:
            raise
        except Exception as exc:  # capture refuses host syncs and some kernels; eager still works
            warnings.warn(f"torch backend: CUDA graph capture failed, running eagerly ({exc})", RuntimeWarning)
            self._cuda_graph = None
        self._fill_state(self._buffers)  # the warm-up frames advanced the state

    def reset(self) -> None:
        with self._torch.no_grad():
            self._fill_state(self._buffers)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.no_grad():
            for name, staging in self._staging.items():
                if name not in inputs:
                    raise EngineError(f"engine {self.manifest.name!r}: input {name!r} was not given")
                value = np.asarray(inputs[name], dtype=np.float32)
                if value.size != staging.numel():
                    raise EngineError(f"engine {self.manifest.name!r}: input {name!r} has shape {value.shape}, "
                                      f"the backend was set up for {tuple(staging.shape)}")
                staging.copy_(torch.from_numpy(value.reshape(staging.shape)))
                self._buffers[name].copy_(staging, non_blocking=True)
            if self._cuda_graph is not None:
                self._cuda_graph.replay()
                outputs = self._graph_outputs
            else:
                outputs = self._step()
            return {name: t.float().cpu().numpy().copy() for name, t in outputs.items()}

    @property
    def uses_cuda_graph(self) -> bool:
        """Whether frames replay a captured CUDA graph (False: eager, e.g. capture failed)."""
        return self._cuda_graph is not None

    def close(self) -> None:
        self._cuda_graph = None
        self._graph_outputs = {}
        self._buffers = {}
        self._staging = {}
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()
