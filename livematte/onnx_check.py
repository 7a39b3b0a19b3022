"""Does this graph use only what TensorRT 10's ONNX parser documents? Checked without TensorRT.

TensorRT cannot be installed on every machine that exports engines, so an
export that TensorRT would reject (an op its parser lacks, a Resize mode it
does not implement, a float64 tensor, an opset it does not know) would only
be discovered by a user with a GPU. This module reads the graph with
:mod:`onnx` alone and reports each problem as one line, so the test suite
can hold every shipped engine to what TensorRT's parser documents. It is a
reading of the documentation, not a TensorRT run: a graph that passes has
still never been parsed or built by TensorRT unless someone did so on a GPU.

The support table follows the operator support matrix of NVIDIA's
onnx-tensorrt parser (``docs/operators.md``). An op is listed here when the
matrix marks it supported both for TensorRT 8.5 and for TensorRT 10.15, so
every 10.x parser accepts it; the attribute rules are that matrix's
restrictions. The opset window is TensorRT 10.0's (9 to 20 inclusive); later
10.x releases accept more, never less. Two rules are this project's policy
rather than TensorRT's: no control flow (If/Loop/Scan) in a per-frame graph,
and every input either static or covered by an optimisation profile.

Run ``python -m livematte.onnx_check MODEL.onnx ...`` to check files by hand;
a file with an engine manifest beside it is checked with the optimisation
profile the TensorRT backend would build it with, and for an engine that
declares ``input.sizes`` that profile is printed (one plan per declared size,
each covering them all).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import onnx
from onnx import TensorProto, helper, numpy_helper

from livematte import trt_cache
from livematte.manifest import EngineManifest, load_manifest

#: TensorRT 10.0's ONNX parser: "operators in the inclusive range of opset 9 to opset 20"
OPSET_RANGE = (9, 20)

#: ops of the default ONNX domain that every TensorRT 10.x ONNX parser imports
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool
BatchNormalization Cast Ceil Celu Clip Concat Constant ConstantOfShape Conv
ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout Einsum
Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND
Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample GRU HardSigmoid HardSwish Identity If ImageScaler
InstanceNormalization IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LpNormalization LpPool LRN LSTM MatMul Max MaxPool Mean
MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot
Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal
RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1
ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN
RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape
Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign
SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK
Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

#: supported by TensorRT, but data-dependent control flow has no place in a
#: graph that runs every frame (and defeats CUDA graphs and static plans)
CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})

RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORDINATE_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"})
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})
#: Pad modes the parser maps onto TensorRT's slice fill modes (fill, reflect, clamp)
PAD_MODES = frozenset({"constant", "reflect", "edge"})

#: element types a TensorRT engine can take or give at its inputs and outputs
IO_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16,
                      TensorProto.INT32, TensorProto.BOOL, TensorProto.UINT8})

#: (op, input index) pairs TensorRT needs as build-time constants
CONSTANT_INPUTS = {
    "Squeeze": (1,), "Unsqueeze": (1,), "CumSum": (1,), "TopK": (1,), "Dropout": (2,),
    **{op: (1,) for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                           "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")},
}


@dataclass(frozen=True)
class Issue:
    """One reason TensorRT's parser (or this project's policy) rejects the graph."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _node_label(node: onnx.NodeProto) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node -> {list(node.output)}"


class _GraphFacts:
    """What the rules need to know about tensors: constness and element types."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.constants = set(self.initializers)
        self.constants.update(o for n in graph.node if n.op_type == "Constant" for o in n.output)
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
        except Exception:  # inference is a help for dtype rules, never a reason to crash
            inferred = graph
        self.types: dict[str, int] = {}
        for info in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
            if info.type.HasField("tensor_type"):
                self.types[info.name] = info.type.tensor_type.elem_type
        for t in graph.initializer:
            self.types[t.name] = t.data_type


def _check_opset(model: onnx.ModelProto) -> list[Issue]:
    issues = []
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            low, high = OPSET_RANGE
            if not low <= opset.version <= high:
                issues.append(Issue("model", f"opset {opset.version} is outside TensorRT 10's range {low}..{high}"))
    return issues


def _check_inputs(model: onnx.ModelProto, facts: _GraphFacts, profiled: set[str]) -> list[Issue]:
    issues = []
    for value in model.graph.input:
        if value.name in facts.initializers:
            continue
        tensor = value.type.tensor_type
        if tensor.elem_type not in IO_TYPES:
            issues.append(Issue(f"input {value.name!r}",
                                f"element type {TensorProto.DataType.Name(tensor.elem_type)} cannot be an engine input"
                                " (use float32, float16 or int32)"))
        dynamic = [i for i, d in enumerate(tensor.shape.dim) if not d.HasField("dim_value")]
        if not tensor.HasField("shape"):
            dynamic = [-1]
        if dynamic and value.name not in profiled:
            issues.append(Issue(f"input {value.name!r}",
                                "has dynamic dimensions but no optimisation profile covers it"
                                " (give the graph a static size or declare it in the manifest)"))
    for value in model.graph.output:
        elem = value.type.tensor_type.elem_type
        if elem not in IO_TYPES:
            issues.append(Issue(f"output {value.name!r}",
                                f"element type {TensorProto.DataType.Name(elem)} cannot be an engine output"))
    return issues


def _check_float64(model: onnx.ModelProto, facts: _GraphFacts) -> list[Issue]:
    doubles = sorted(name for name, elem in facts.types.items() if elem == TensorProto.DOUBLE)
    issues = [Issue(f"tensor {name!r}", "is float64; TensorRT would clamp it to float32 (export float32)")
              for name in doubles]
    for node in model.graph.node:
        if node.op_type == "Cast":
            to = {a.name: helper.get_attribute_value(a) for a in node.attribute}.get("to")
            if to == TensorProto.DOUBLE and not any(o in doubles for o in node.output):
                issues.append(Issue(_node_label(node), "casts to float64"))
    return issues


def _resize_rules(node: onnx.NodeProto, attrs: dict) -> list[str]:
    problems = []
    mode = _text(attrs.get("mode", "nearest"))
    if mode not in RESIZE_MODES:
        problems.append(f"mode {mode!r} is not supported (only {', '.join(sorted(RESIZE_MODES))})")
    if node.op_type == "Resize":
        ctm = _text(attrs.get("coordinate_transformation_mode", "half_pixel"))
        if ctm not in RESIZE_COORDINATE_MODES:
            problems.append(f"coordinate_transformation_mode {ctm!r} is not supported")
        nearest = _text(attrs.get("nearest_mode", "round_prefer_floor"))
        if mode == "nearest" and nearest not in RESIZE_NEAREST_MODES:
            problems.append(f"nearest_mode {nearest!r} is not supported")
        if attrs.get("antialias", 0):
            problems.append("antialias is not supported")
        policy = _text(attrs.get("keep_aspect_ratio_policy", "stretch"))
        if policy != "stretch":
            problems.append(f"keep_aspect_ratio_policy {policy!r} is not supported (only 'stretch')")
    return problems


def _pool_rules(node: onnx.NodeProto, attrs: dict) -> list[str]:
    problems = []
    kernel = attrs.get("kernel_shape", [])
    if len(kernel) not in (2, 3):
        problems.append(f"{len(kernel)}-D pooling is not supported (2-D or 3-D only)")
    if any(d != 1 for d in attrs.get("dilations", [])):
        problems.append("dilations other than 1 are not supported")
    if node.op_type == "MaxPool" and len([o for o in node.output if o]) > 1:
        problems.append("the Indices output is not supported")
    return problems


def _node_rules(node: onnx.NodeProto, facts: _GraphFacts) -> list[str]:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    problems: list[str] = []
    if op in ("Resize", "Upsample"):
        problems += _resize_rules(node, attrs)
    elif op in ("AveragePool", "MaxPool", "LpPool"):
        problems += _pool_rules(node, attrs)
    elif op == "Pad":
        mode = _text(attrs.get("mode", "constant"))
        if mode not in PAD_MODES:
            problems.append(f"mode {mode!r} is not supported (only {', '.join(sorted(PAD_MODES))})")
    elif op == "TopK" and attrs.get("sorted", 1) != 1:
        problems.append("sorted must be 1")
    elif op == "LayerNormalization" and len([o for o in node.output if o]) > 1:
        problems.append("only the first output (Y) is supported")
    elif op == "Constant" and any(k in attrs for k in ("sparse_value", "value_string", "value_strings")):
        problems.append("sparse and string constants are not supported")
    for index in CONSTANT_INPUTS.get(op, ()):
        if index < len(node.input) and node.input[index] and node.input[index] not in facts.constants:
            problems.append(f"input {index} ({node.input[index]!r}) must be a build-time constant")
    if op == "Dropout" and len(node.input) > 2 and node.input[2] in facts.initializers:
        if bool(numpy_helper.to_array(facts.initializers[node.input[2]])):
            problems.append("is_training must be false")
    return problems


def _check_nodes(model: onnx.ModelProto, facts: _GraphFacts) -> list[Issue]:
    issues = []
    for node in model.graph.node:
        label = _node_label(node)
        if node.domain not in ("", "ai.onnx"):
            issues.append(Issue(label, f"custom domain {node.domain!r} needs a TensorRT plugin"))
        elif node.op_type in CONTROL_FLOW_OPS:
            issues.append(Issue(label, "control flow in a per-frame graph (fold it at export time)"))
        elif node.op_type not in SUPPORTED_OPS:
            issues.append(Issue(label, "op is not supported by TensorRT's ONNX parser"))
        else:
            issues += [Issue(label, p) for p in _node_rules(node, facts)]
    return issues


def check_model(model: onnx.ModelProto, profiled_inputs: Iterable[str] = ()) -> list[Issue]:
    """Every way this graph leaves what TensorRT 10's parser documents; empty when it stays within.

    ``profiled_inputs`` names the inputs an optimisation profile will cover,
    which may therefore have dynamic dimensions.
    """
    facts = _GraphFacts(model)
    return (_check_opset(model) + _check_inputs(model, facts, set(profiled_inputs))
            + _check_float64(model, facts) + _check_nodes(model, facts))


def profiled_inputs(manifest: EngineManifest) -> tuple[str, ...]:
    """The inputs the TensorRT backend's optimisation profile covers (:func:`trt_cache.profile_shapes`).

    The same function gives the shapes the backend builds with, so what this
    check counts as covered is exactly what the build will set.
    """
    return tuple(trt_cache.profile_shapes(manifest))


def check_engine(manifest: EngineManifest) -> list[Issue]:
    """Check an engine's ONNX with the optimisation profile the TensorRT backend would give it."""
    return check_model(onnx.load(str(manifest.onnx_path)), profiled_inputs(manifest))


def describe_profile(manifest: EngineManifest) -> list[str]:
    """One line per profiled input of an ``input.sizes`` engine: its min and max shapes, and the opt per plan.

    Empty for other engines, whose profile is a fixed size or the runtime's
    frame-size scan (:func:`livematte.trt_cache.graph_size_range`).
    """
    sizes = manifest.input.sizes
    if not sizes:
        return []
    per_size = [trt_cache.profile_shapes(manifest, size) for size in sizes]
    lines = [f"TensorRT profile for input.sizes {[list(s) for s in sizes]}: one plan per size, opt = that size"]
    for name, shape in per_size[0].items():
        opts = ", ".join(str(list(p[name].opt)) for p in per_size)
        lines.append(f"  {name}: min {list(shape.min)} max {list(shape.max)} opt {opts}")
    return lines


def _check_file(path: str) -> tuple[list[Issue], list[str]]:
    """A file's issues (with its manifest's profile when one sits beside it) and that profile's description."""
    if Path(path).with_suffix(".json").is_file():
        manifest = load_manifest(path)
        return check_engine(manifest), describe_profile(manifest)
    return check_model(onnx.load(path)), []


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m livematte.onnx_check FILE...``: print issues, exit 1 when any."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m livematte.onnx_check MODEL.onnx [MODEL.onnx ...]", file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        try:
            issues, profile = _check_file(path)
        except Exception as exc:  # unreadable, not protobuf, bad manifest: one line, no traceback
            print(f"{path}: cannot read ONNX: {exc}", file=sys.stderr)
            status = 2
            continue
        for line in profile:
            print(f"{path}: {line}")
        for issue in issues:
            print(f"{path}: {issue}")
        if issues:
            status = max(status, 1)
        else:
            print(f"{Path(path).name}: uses only ops and attributes TensorRT 10's parser documents "
                  "(not built with TensorRT here)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
