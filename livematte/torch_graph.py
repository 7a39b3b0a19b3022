"""Execute an ONNX graph with PyTorch ops, as a trainable ``nn.Module``.

Two jobs need an ONNX graph inside torch: ``training/`` initialises its
real-time engine from the Apache-2.0 MediaPipe selfie-segmentation weights
(fine-tuning them, with taps on intermediate tensors), and the ``torch``
backend runs any engine's ONNX on CUDA in fp16 without TensorRT. The
interpreter covers the ops those graphs use; an unknown op is a clear error
at construction time, not in the middle of a video.

Float initialisers with more than one element become ``nn.Parameter`` (they
are weights and biases); scalars and integer tensors (clip bounds, shapes)
stay constant buffers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

Tensor = torch.Tensor


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _conv_padding(x: Tensor, pads: list[int] | None, spatial: int) -> tuple[Tensor, int | tuple]:
    """ONNX pads are (begin..., end...); torch convs only take symmetric ones."""
    if not pads:
        return x, 0
    begin, end = pads[:spatial], pads[spatial:]
    if begin == end:
        return x, tuple(begin)
    flat: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        flat += [b, e]
    return F.pad(x, flat), 0


def _divide(a: Tensor, b: Tensor) -> Tensor:
    """ONNX Div: integer tensors (shape arithmetic) divide with truncation, not to float."""
    if a.is_floating_point() or b.is_floating_point():
        return torch.div(a, b)
    return torch.div(a, b, rounding_mode="trunc")


#: ONNX element types Cast may target -> torch dtypes
_TORCH_DTYPES = {
    onnx.TensorProto.FLOAT: torch.float32, onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.DOUBLE: torch.float64, onnx.TensorProto.BFLOAT16: torch.bfloat16,
    onnx.TensorProto.INT64: torch.int64, onnx.TensorProto.INT32: torch.int32,
    onnx.TensorProto.INT16: torch.int16, onnx.TensorProto.INT8: torch.int8,
    onnx.TensorProto.UINT8: torch.uint8, onnx.TensorProto.BOOL: torch.bool,
}


def _cast(x: Tensor, to: int) -> Tensor:
    """ONNX Cast to element type ``to``.

    A float target keeps a float tensor's dtype: the module runs every float
    at one precision (fp16 on the GPU), and an fp32 island would make the next
    op mix dtypes. Integer and boolean tensors (shape arithmetic, pads) become
    float32, and any tensor cast to an integer or bool type is converted for
    real (floats truncate toward zero, as in ONNX Runtime).
    """
    target = _TORCH_DTYPES.get(to)
    if target is None:
        raise NotImplementedError(f"Cast to ONNX type {onnx.TensorProto.DataType.Name(to)}")
    if target.is_floating_point:
        return x if x.is_floating_point() else x.to(torch.float32)
    if target == torch.bool:
        return x != 0
    return x.to(target)


class OnnxTorchGraph(nn.Module):
    """A torch module that evaluates an ONNX graph node by node.

    ``forward(*inputs, taps=...)`` returns the graph outputs as a tuple;
    ``taps`` names intermediate tensors to return in a dict alongside (how
    decoder heads read pretrained features).

    ``size_free``: graphs converted from TensorFlow Lite bake their input
    size into pooling kernels and resize targets, so their weights would run
    at that one size only. With this set, an AveragePool whose kernel spans
    its whole input (squeeze-excitation, global context) becomes a global
    mean and a Resize becomes its scale factor at the native size, so the
    same weights run at any size whose strides divide it: what training an
    engine at several aspect ratios from MediaPipe's square weights needs.
    Both trace to ONNX with the spatial size left dynamic.
    """

    SUPPORTED = {
        "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Clip", "Conv",
        "ConvTranspose", "Transpose", "Reshape", "MatMul", "AveragePool",
        "GlobalAveragePool", "Resize", "Concat", "Softmax", "HardSigmoid",
        "HardSwish", "Identity", "Flatten", "Gemm", "MaxPool", "PRelu",
        "BatchNormalization", "Pad", "Shape", "Gather", "Unsqueeze", "Squeeze",
        "Cast", "Slice", "Split", "Constant", "DepthToSpace", "Max", "Min",
        "Exp", "ConstantOfShape", "Expand", "ReduceMean",
    }

    def __init__(self, model: onnx.ModelProto | str | Path, free_batch: bool = False, size_free: bool = False) -> None:
        """``free_batch``: graphs converted from TensorFlow often bake batch 1
        into their Reshape targets; with this set, a leading 1 in a constant
        Reshape target means "the batch", so training can use batches."""
        super().__init__()
        self.free_batch = free_batch
        if not isinstance(model, onnx.ModelProto):
            model = onnx.load(str(model))
        graph = model.graph
        #: size_free only: node index -> "global" (AveragePool) or the (h, w) scale of a Resize
        self._size_free: dict[int, str | tuple[float, float]] = {}
        unknown = sorted({n.op_type for n in graph.node} - self.SUPPORTED)
        if unknown:
            raise NotImplementedError(f"ONNX ops not supported by the torch interpreter: {', '.join(unknown)}")
        self.nodes = list(graph.node)
        init_names = {t.name for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in init_names]
        self.output_names = [o.name for o in graph.output]
        self.params = nn.ParameterDict()
        self.consts: dict[str, Tensor] = {}
        self._keys: dict[str, str] = {}
        for i, t in enumerate(graph.initializer):
            arr = numpy_helper.to_array(t).copy()
            if arr.dtype.kind == "f" and arr.size > 1:
                key = f"p{i}"
                self.params[key] = nn.Parameter(torch.from_numpy(arr.astype(np.float32)))
                self._keys[t.name] = key
            else:
                self.consts[t.name] = torch.from_numpy(arr)
        if size_free:
            self._size_free = self._native_geometry(graph)

    @torch.no_grad()
    def _native_geometry(self, graph: onnx.GraphProto) -> dict[int, str | tuple[float, float]]:
        """Which nodes tie the graph to its input size, found by running it once
        at that size: AveragePools whose kernel is their whole input ("global")
        and Resizes (their scale there)."""
        shapes = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input if i.name in self.input_names]
        if not all(d > 0 for shape in shapes for d in shape):
            raise ValueError("size_free needs a graph whose inputs have a static size")
        env = self._environment([torch.zeros(shape) for shape in shapes])
        found: dict[int, str | tuple[float, float]] = {}
        for index, node in enumerate(self.nodes):
            args = [env[i] if i else None for i in node.input]
            out = self._run(node, args)
            env.update(zip(node.output, out))
            if node.op_type == "AveragePool" and list(_attrs(node)["kernel_shape"]) == list(args[0].shape[2:]):
                found[index] = "global"
            elif node.op_type == "Resize":
                found[index] = (out[0].shape[2] / args[0].shape[2], out[0].shape[3] / args[0].shape[3])
        return found

    def parameter_for(self, name: str) -> nn.Parameter:
        """The trainable tensor behind initialiser ``name`` (for surgery and freezing)."""
        return self.params[self._keys[name]]

    def constant_or_parameter(self, name: str) -> Tensor:
        """Initialiser ``name``, trainable or not (a converted graph keeps
        one-element biases as constants)."""
        return self.params[self._keys[name]] if name in self._keys else self.consts[name]

    def parameters_up_to(self, tensor: str) -> list[nn.Parameter]:
        """Parameters of the nodes up to the one producing ``tensor`` (e.g. to
        freeze a pretrained encoder's high-resolution layers, whose backward
        pass is most of a training step's cost)."""
        last = next((i for i, n in enumerate(self.nodes) if tensor in n.output), None)
        if last is None:
            raise KeyError(f"no node produces {tensor!r}")
        names = {i for n in self.nodes[: last + 1] for i in n.input if i in self._keys}
        return [self.params[self._keys[n]] for n in sorted(names)]

    def forward(
        self,
        *inputs: Tensor,
        taps: tuple[str, ...] = (),
        outputs: bool = True,
    ) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
        """``outputs=False`` stops once every tap is computed and returns no
        graph outputs: a head that reads the decoder's features skips the
        pretrained output layer (and its fixed-size Reshape)."""
        env = self._environment(inputs)
        wanted = set(taps)
        for index, node in enumerate(self.nodes):
            if not outputs and not wanted - env.keys():
                break
            args = [env[i] if i else None for i in node.input]
            env.update(zip(node.output, self._run(node, args, index)))
        return (tuple(env[o] for o in self.output_names) if outputs else ()), {t: env[t] for t in taps}

    def _environment(self, inputs: Sequence[Tensor]) -> dict[str, Tensor]:
        """Tensor name -> value before the first node: constants, parameters, graph inputs."""
        env: dict[str, Tensor] = {**self.consts, **{name: self.params[key] for name, key in self._keys.items()}}
        env.update(zip(self.input_names, inputs))
        return env

    def _run(self, node: onnx.NodeProto, a: list, index: int = -1) -> list[Tensor]:
        op, at = node.op_type, _attrs(node)
        free = self._size_free.get(index)
        if free == "global":
            return [F.adaptive_avg_pool2d(a[0], 1)]
        if isinstance(free, tuple):
            if _text(at.get("mode", b"nearest")) == "linear":
                return [F.interpolate(a[0], scale_factor=free, mode="bilinear", align_corners=False)]
            return [F.interpolate(a[0], scale_factor=free, mode="nearest")]
        if op in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
            fn = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": _divide,
                  "Max": torch.maximum, "Min": torch.minimum}[op]
            out = a[0]
            for other in a[1:]:
                out = fn(out, other)
            return [out]
        if op == "Relu":
            return [F.relu(a[0])]
        if op == "Sigmoid":
            return [torch.sigmoid(a[0])]
        if op == "Tanh":
            return [torch.tanh(a[0])]
        if op == "Exp":
            return [torch.exp(a[0])]
        if op == "HardSigmoid":
            return [torch.clamp(a[0] * at.get("alpha", 0.2) + at.get("beta", 0.5), 0, 1)]
        if op == "HardSwish":
            return [F.hardswish(a[0])]
        if op == "Clip":
            lo = a[1] if len(a) > 1 and a[1] is not None else at.get("min")
            hi = a[2] if len(a) > 2 and a[2] is not None else at.get("max")
            return [torch.clamp(a[0], None if lo is None else float(lo), None if hi is None else float(hi))]
        if op == "PRelu":
            return [torch.where(a[0] >= 0, a[0], a[0] * a[1])]
        if op == "Identity":
            return [a[0]]
        if op == "Cast":
            return [_cast(a[0], at["to"])]
        if op == "Constant":
            return [torch.from_numpy(numpy_helper.to_array(at["value"]).copy())]
        if op == "ConstantOfShape":
            fill = numpy_helper.to_array(at["value"]) if "value" in at else np.zeros(1, np.float32)
            shape = [int(d) for d in a[0].tolist()]
            return [torch.from_numpy(np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype))]
        if op == "Expand":
            shape = torch.broadcast_shapes(a[0].shape, tuple(int(d) for d in a[1].tolist()))
            return [a[0].expand(shape)]
        if op == "Conv":
            spatial = a[1].dim() - 2
            x, pad = _conv_padding(a[0], at.get("pads"), spatial)
            conv = F.conv2d if spatial == 2 else F.conv1d
            return [conv(x, a[1], a[2] if len(a) > 2 else None, stride=tuple(at.get("strides", [1] * spatial)),
                         padding=pad, dilation=tuple(at.get("dilations", [1] * spatial)), groups=at.get("group", 1))]
        if op == "ConvTranspose":
            if at.get("pads") and any(at["pads"]):
                raise NotImplementedError("ConvTranspose with pads")
            return [F.conv_transpose2d(a[0], a[1], a[2] if len(a) > 2 else None, stride=tuple(at.get("strides", [1, 1])),
                                       groups=at.get("group", 1), dilation=tuple(at.get("dilations", [1, 1])))]
        if op == "Transpose":
            return [a[0].permute(*at["perm"])]
        if op == "Reshape":
            shape = [int(s) for s in a[1].tolist()]
            shape = [a[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            if self.free_batch and shape and shape[0] == 1:
                shape[0] = a[0].shape[0]
            return [a[0].reshape(shape)]
        if op == "Flatten":
            return [torch.flatten(a[0], at.get("axis", 1))]
        if op == "MatMul":
            return [torch.matmul(a[0], a[1])]
        if op == "Gemm":
            x = a[0].t() if at.get("transA") else a[0]
            w = a[1].t() if at.get("transB") else a[1]
            out = at.get("alpha", 1.0) * (x @ w)
            if len(a) > 2 and a[2] is not None:
                out = out + at.get("beta", 1.0) * a[2]
            return [out]
        if op == "AveragePool":
            x, pad = _conv_padding(a[0], at.get("pads"), 2)
            return [F.avg_pool2d(x, tuple(at["kernel_shape"]), tuple(at.get("strides", at["kernel_shape"])), pad,
                                 count_include_pad=bool(at.get("count_include_pad", 0)))]
        if op == "MaxPool":
            x, pad = _conv_padding(a[0], at.get("pads"), 2)
            return [F.max_pool2d(x, tuple(at["kernel_shape"]), tuple(at.get("strides", at["kernel_shape"])), pad)]
        if op == "ReduceMean":  # axes: an attribute up to opset 17, an input from 18
            axes = at["axes"] if "axes" in at else (a[1].tolist() if len(a) > 1 and a[1] is not None else None)
            dims = tuple(int(d) for d in axes) if axes is not None else tuple(range(a[0].dim()))
            return [a[0].mean(dim=dims, keepdim=bool(at.get("keepdims", 1)))]
        if op == "GlobalAveragePool":
            return [F.adaptive_avg_pool2d(a[0], 1)]
        if op == "Resize":
            return [self._resize(a, at)]
        if op == "Concat":
            return [torch.cat(a, dim=at["axis"])]
        if op == "Softmax":
            return [torch.softmax(a[0], dim=at.get("axis", -1))]
        if op == "BatchNormalization":
            return [F.batch_norm(a[0], a[3], a[4], a[1], a[2], False, 0.0, at.get("epsilon", 1e-5))]
        if op == "DepthToSpace":
            if at.get("mode", b"DCR") not in (b"CRD", "CRD"):
                raise NotImplementedError("DepthToSpace DCR mode")
            return [F.pixel_shuffle(a[0], at["blocksize"])]
        if op == "Pad":
            pads = [int(p) for p in a[1].tolist()]
            half = len(pads) // 2
            flat: list[int] = []
            for b, e in zip(reversed(pads[:half]), reversed(pads[half:])):
                flat += [b, e]
            value = float(a[2]) if len(a) > 2 and a[2] is not None else 0.0
            mode = _text(at.get("mode", b"constant"))
            return [F.pad(a[0], flat, mode=mode, value=value) if mode == "constant" else F.pad(a[0], flat, mode=mode)]
        if op == "Shape":
            return [torch.tensor(a[0].shape, dtype=torch.int64)]
        if op == "Gather":
            return [torch.index_select(a[0], at.get("axis", 0), a[1].reshape(-1).long()).reshape(
                a[0].shape[: at.get("axis", 0)] + a[1].shape + a[0].shape[at.get("axis", 0) + 1:])]
        if op in ("Unsqueeze", "Squeeze"):
            axes = at.get("axes") if "axes" in at else [int(v) for v in a[1].tolist()]
            x = a[0]
            if op == "Unsqueeze":
                for ax in sorted(axes):
                    x = x.unsqueeze(ax)
            else:
                for ax in sorted(axes, reverse=True):
                    x = x.squeeze(ax)
            return [x]
        if op == "Slice":
            starts, ends = a[1].tolist(), a[2].tolist()
            axes = a[3].tolist() if len(a) > 3 and a[3] is not None else list(range(len(starts)))
            steps = a[4].tolist() if len(a) > 4 and a[4] is not None else [1] * len(starts)
            x = a[0]
            for s, e, ax, st in zip(starts, ends, axes, steps):
                # Python's slice arithmetic clamps out-of-range bounds exactly as ONNX does
                start, stop, step = slice(int(s), int(e), int(st)).indices(x.shape[int(ax)])
                if step > 0:
                    x = x[(slice(None),) * (int(ax) % x.dim()) + (slice(start, stop, step),)]
                else:  # torch has no negative-step slices: gather the reversed indices
                    x = torch.index_select(x, int(ax), torch.arange(start, stop, step, device=x.device))
            return [x]
        if op == "Split":
            sizes = a[1].tolist() if len(a) > 1 and a[1] is not None else at.get("split")
            return list(torch.split(a[0], sizes, dim=at.get("axis", 0)))
        raise NotImplementedError(op)

    @staticmethod
    def _resize(a: list, at: dict) -> Tensor:
        mode = _text(at.get("mode", b"nearest"))
        ctm = _text(at.get("coordinate_transformation_mode", b"half_pixel"))
        x = a[0]
        sizes = a[3] if len(a) > 3 and a[3] is not None and a[3].numel() else None
        if sizes is not None:
            size = tuple(int(s) for s in sizes.tolist()[2:])
        else:
            scales = a[2].tolist()[2:]
            size = tuple(int(round(d * s)) for d, s in zip(x.shape[2:], scales))
        if mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        if mode != "linear" or ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise NotImplementedError(f"Resize mode={mode} coordinate_transformation_mode={ctm}")
        return F.interpolate(x, size=size, mode="bilinear", align_corners=ctm == "align_corners")
