"""Engine manifests: the JSON contract between a trained graph and the runtime.

The runtime never guesses how to feed a graph; everything it needs is read
here into frozen dataclasses, so a malformed manifest fails once, at load
time, with one line naming the file and the field, instead of producing a
wrong matte later. The format is specified in ``docs/engine-manifest.md``.
"""
from __future__ import annotations

import ast
import json
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from livematte.errors import EngineError

FORMAT = "livematte-engine/1"
LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
DTYPES = ("float32", "float16")
ACTIVATIONS = ("none", "sigmoid", "softmax")
#: ``constants[*].value`` may name this instead of a number: the internal
#: downsample ratio chosen for the current frame size.
RATIO = "ratio"


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the graph's image tensor: x = (pixel*scale - mean) / std."""

    name: str
    layout: str
    dtype: str
    color: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: [H, W] the graph needs, or None when the graph accepts any size
    size: tuple[int, int] | None
    #: dynamic graphs only: H and W are rounded to a multiple of this
    multiple_of: int
    #: True when the graph resizes internally by a ratio constant (e.g. RVM):
    #: the runtime then feeds the full frame and passes the ratio instead of
    #: resizing by it itself
    downsample_in_graph: bool


@dataclass(frozen=True)
class DownsampleRule:
    """Use ``ratio`` for frames whose long side is at most ``max_side``."""

    max_side: int
    ratio: float


@dataclass(frozen=True)
class ConstantSpec:
    """A graph input the runtime computes instead of the user (e.g. a ratio)."""

    name: str
    dtype: str
    #: a number, or ``"ratio"`` for the current internal downsample ratio
    value: float | str


@dataclass(frozen=True)
class StateSpec:
    """One recurrent tensor: fed from ``output`` of the previous frame into ``input``."""

    input: str
    output: str
    #: integers or expressions in H and W (the graph input's height and width)
    shape: tuple[int | str, ...]
    init: float

    def shape_for(self, height: int, width: int) -> tuple[int, ...]:
        """The initial tensor shape for a graph input of ``height`` x ``width``."""
        return tuple(evaluate_dim(dim, height, width) for dim in self.shape)


@dataclass(frozen=True)
class OutputSpec:
    """Where a result lives in the graph outputs and how to turn it into probabilities."""

    name: str
    layout: str
    #: the channel to pick after the activation (None: all channels, e.g. trimap)
    channel: int | None
    activation: str


@dataclass(frozen=True)
class OutputsSpec:
    alpha: OutputSpec
    trimap: OutputSpec | None = None
    foreground: OutputSpec | None = None

    def all(self) -> tuple[OutputSpec, ...]:
        """The outputs this engine declares, alpha first."""
        return tuple(o for o in (self.alpha, self.trimap, self.foreground) if o is not None)


@dataclass(frozen=True)
class EngineManifest:
    """A parsed, self-consistent engine manifest (not yet checked against its graph)."""

    name: str
    onnx_path: Path
    manifest_path: Path
    description: str
    input: InputSpec
    downsample: tuple[DownsampleRule, ...]
    constants: tuple[ConstantSpec, ...]
    state: tuple[StateSpec, ...]
    outputs: OutputsSpec
    provenance: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    metrics: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    speed: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    license: str = ""

    def ratio_for(self, frame_height: int, frame_width: int) -> float:
        """The internal downsample ratio for a frame of this size (1.0 without rules)."""
        long_side = max(frame_height, frame_width)
        for rule in self.downsample:
            if long_side <= rule.max_side:
                return rule.ratio
        return self.downsample[-1].ratio if self.downsample else 1.0

    def graph_size(self, frame_height: int, frame_width: int) -> tuple[int, int]:
        """The [H, W] the graph is fed for a frame of this size."""
        if self.input.size is not None:
            return self.input.size
        ratio = 1.0 if self.input.downsample_in_graph else self.ratio_for(frame_height, frame_width)
        m = self.input.multiple_of
        return (
            max(m, round(frame_height * ratio / m) * m),
            max(m, round(frame_width * ratio / m) * m),
        )


# --- safe evaluation of state shape expressions ------------------------------

def _ceil_div(a: int, b: int) -> int:
    # Strided convolutions with "same" padding produce ceil(H / stride), so "/"
    # in a shape rounds up: "H/16" is right for any H, not only multiples of 16.
    return -(-a // b)


_BINARY_OPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _ceil_div,
    ast.FloorDiv: operator.floordiv,
}


def evaluate_dim(dim: int | str, height: int, width: int) -> int:
    """Evaluate one state dimension: an int, or an expression in H and W.

    Parsed with :mod:`ast` and walked node by node: only integers, ``H``,
    ``W``, ``+ - * / //`` and parentheses are accepted, so a manifest cannot
    run code.
    """
    if isinstance(dim, int):
        return dim
    try:
        tree = ast.parse(dim, mode="eval")
    except SyntaxError as exc:
        raise EngineError(f"state shape expression {dim!r} is not valid: {exc.msg}") from None
    names = {"H": height, "W": width}

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
            right = walk(node.right)
            if isinstance(node.op, (ast.Div, ast.FloorDiv)) and right == 0:
                raise EngineError(f"state shape expression {dim!r} divides by zero")
            return _BINARY_OPS[type(node.op)](walk(node.left), right)
        raise EngineError(
            f"state shape expression {dim!r} may only use integers, H, W and + - * / //"
        )

    return walk(tree)


# --- parsing -----------------------------------------------------------------

class _Fields:
    """Typed access to one JSON object, naming the file and field on error."""

    def __init__(self, data: Any, where: str, source: Path):
        if not isinstance(data, dict):
            raise EngineError(f"{source}: '{where}' must be an object")
        self.data = data
        self.where = where
        self.source = source

    def fail(self, key: str, what: str) -> EngineError:
        return EngineError(f"{self.source}: '{self.where}.{key}' {what}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., choices: tuple = ()) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(key, f"must be {_kind_name(kind)}, not {value!r}")
        if not isinstance(value, kind):
            raise self.fail(key, f"must be {_kind_name(kind)}, not {value!r}")
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def triple(self, key: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
        value = self.get(key, list, default=list(default))
        if len(value) != 3 or not all(_is_number(v) for v in value):
            raise self.fail(key, "must be a list of three numbers")
        return tuple(float(v) for v in value)  # type: ignore[return-value]

    def sub(self, key: str) -> "_Fields":
        return _Fields(self.get(key, dict), f"{self.where}.{key}", self.source)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "an object", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_input(f: _Fields) -> InputSpec:
    size = f.get("size", (list, type(None)), default=None)
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)):
        raise f.fail("size", "must be [H, W] with positive integers, or null")
    std = f.triple("std", (1.0, 1.0, 1.0))
    if any(s == 0 for s in std):
        raise f.fail("std", "must not contain 0")
    multiple_of = f.get("multiple_of", int, default=1)
    if multiple_of < 1:
        raise f.fail("multiple_of", "must be at least 1")
    return InputSpec(
        name=f.get("name", str),
        layout=f.get("layout", str, choices=LAYOUTS),
        dtype=f.get("dtype", str, default="float32", choices=DTYPES),
        color=f.get("color", str, default="RGB", choices=COLORS),
        scale=float(f.get("scale", (int, float), default=1.0 / 255.0)),
        mean=f.triple("mean", (0.0, 0.0, 0.0)),
        std=std,
        size=tuple(size) if size is not None else None,
        multiple_of=multiple_of,
        downsample_in_graph=f.get("downsample_in_graph", bool, default=False),
    )


def _parse_output(f: _Fields, default_channel: int | None) -> OutputSpec:
    return OutputSpec(
        name=f.get("name", str),
        layout=f.get("layout", str, choices=LAYOUTS),
        channel=f.get("channel", (int, type(None)), default=default_channel),
        activation=f.get("activation", str, default="none", choices=ACTIVATIONS),
    )


def _parse_list(f: _Fields, key: str) -> list[_Fields]:
    items = f.get(key, list, default=[])
    return [_Fields(item, f"{key}[{i}]", f.source) for i, item in enumerate(items)]


def _parse_state(f: _Fields) -> StateSpec:
    shape = f.get("shape", list)
    for dim in shape:
        if not (isinstance(dim, str) or (isinstance(dim, int) and not isinstance(dim, bool) and dim > 0)):
            raise f.fail("shape", f"entries must be positive integers or expressions in H and W, not {dim!r}")
    spec = StateSpec(
        input=f.get("input", str),
        output=f.get("output", str),
        shape=tuple(shape),
        init=float(f.get("init", (int, float), default=0.0)),
    )
    spec.shape_for(64, 64)  # rejects unsafe or malformed expressions now, not on the first frame
    return spec


def _parse(data: Any, source: Path) -> EngineManifest:
    root = _Fields(data, "manifest", source)
    fmt = root.get("format", str)
    if fmt != FORMAT:
        raise EngineError(f"{source}: format {fmt!r} is not supported (expected {FORMAT!r})")
    input_spec = _parse_input(root.sub("input"))

    rules = []
    for rule in _parse_list(root, "downsample"):
        ratio = float(rule.get("ratio", (int, float)))
        if not 0 < ratio <= 1:
            raise rule.fail("ratio", "must be in (0, 1]")
        rules.append(DownsampleRule(max_side=rule.get("max_side", int), ratio=ratio))
    rules.sort(key=lambda r: r.max_side)

    constants = []
    for const in _parse_list(root, "constants"):
        value = const.get("value", (int, float, str))
        if isinstance(value, str) and value != RATIO:
            raise const.fail("value", f"must be a number or {RATIO!r}, not {value!r}")
        constants.append(ConstantSpec(
            name=const.get("name", str),
            dtype=const.get("dtype", str, default="float32", choices=DTYPES),
            value=value if isinstance(value, str) else float(value),
        ))

    outputs = root.sub("outputs")
    trimap = outputs.get("trimap", dict, default=None)
    foreground = outputs.get("foreground", dict, default=None)
    outputs_spec = OutputsSpec(
        alpha=_parse_output(outputs.sub("alpha"), default_channel=0),
        trimap=_parse_output(outputs.sub("trimap"), default_channel=None) if trimap is not None else None,
        foreground=_parse_output(outputs.sub("foreground"), default_channel=None) if foreground is not None else None,
    )

    onnx_name = root.get("onnx", str)
    onnx_path = Path(onnx_name)
    if not onnx_path.is_absolute():
        onnx_path = source.parent / onnx_path

    manifest = EngineManifest(
        name=root.get("name", str),
        onnx_path=onnx_path,
        manifest_path=source,
        description=root.get("description", str, default=""),
        input=input_spec,
        downsample=tuple(rules),
        constants=tuple(constants),
        state=tuple(_parse_state(s) for s in _parse_list(root, "state")),
        outputs=outputs_spec,
        provenance=root.get("provenance", dict, default={}),
        metrics=root.get("metrics", dict, default={}),
        speed=root.get("speed", dict, default={}),
        license=root.get("license", str, default=""),
    )
    _check_consistency(manifest)
    return manifest


def _check_consistency(m: EngineManifest) -> None:
    """Rules that need no graph: names unique, ratio available where it is used."""
    src = m.manifest_path
    inputs = [m.input.name] + [c.name for c in m.constants] + [s.input for s in m.state]
    dup = {n for n in inputs if inputs.count(n) > 1}
    if dup:
        raise EngineError(f"{src}: graph input name(s) used twice: {', '.join(sorted(dup))}")
    outs = [o.name for o in m.outputs.all()] + [s.output for s in m.state]
    dup = {n for n in outs if outs.count(n) > 1}
    if dup:
        raise EngineError(f"{src}: graph output name(s) used twice: {', '.join(sorted(dup))}")
    if m.input.downsample_in_graph and not any(c.value == RATIO for c in m.constants):
        raise EngineError(f"{src}: input.downsample_in_graph needs a constant with value {RATIO!r}")
    if m.input.size is not None and m.input.downsample_in_graph:
        raise EngineError(f"{src}: input.downsample_in_graph only applies to graphs with size null")


def load_manifest(path: str | Path) -> EngineManifest:
    """Read an engine manifest, given the ``.json`` or the ``.onnx`` it sits beside.

    The ``onnx`` field is resolved relative to the manifest (absolute paths
    are kept), so an engine directory can be moved as a whole.
    """
    path = Path(path)
    json_path = path.with_suffix(".json") if path.suffix.lower() == ".onnx" else path
    if not json_path.is_file():
        if path.suffix.lower() == ".onnx":
            raise EngineError(f"{path}: no manifest {json_path.name} beside it (see docs/engine-manifest.md)")
        raise EngineError(f"{path}: engine manifest not found")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineError(f"{json_path}: cannot read manifest: {exc}") from None
    except json.JSONDecodeError as exc:
        raise EngineError(f"{json_path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return _parse(data, json_path.resolve())


# --- checking a manifest against its graph -----------------------------------

_ONNX_DTYPES = {1: "float32", 10: "float16"}


def _dims(value_info: Any) -> list[int | None]:
    """Static dims as ints, symbolic or unknown dims as None."""
    return [d.dim_value if d.HasField("dim_value") else None
            for d in value_info.type.tensor_type.shape.dim]


def _image_hw(dims: list[int | None], layout: str) -> tuple[int | None, int | None]:
    return (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])


def validate_against_graph(manifest: EngineManifest, onnx_path: str | Path | None = None) -> None:
    """Check the manifest's names, sizes and state against the ONNX graph.

    Runs the ONNX checker, then the rules of ``docs/engine-manifest.md``;
    the first mismatch raises :class:`EngineError` with one line that names
    the tensor and both sides of the disagreement.
    """
    import onnx  # the graph library is only needed here, not to run an engine

    path = Path(onnx_path) if onnx_path is not None else manifest.onnx_path
    where = f"engine {manifest.name!r}"
    if not path.is_file():
        raise EngineError(f"{where}: graph {path} not found")
    try:
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # the checker raises several unrelated types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"{where}: {path.name} is not a valid ONNX model: {first}") from None

    initializers = {init.name for init in model.graph.initializer}
    graph_inputs = {i.name: i for i in model.graph.input if i.name not in initializers}
    graph_outputs = {o.name: o for o in model.graph.output}

    declared = {manifest.input.name: "input.name"}
    declared.update({c.name: f"constant {c.name!r}" for c in manifest.constants})
    declared.update({s.input: f"state input {s.input!r}" for s in manifest.state})
    missing = [n for n in declared if n not in graph_inputs]
    if missing:
        raise EngineError(
            f"{where}: manifest names graph input {missing[0]!r} ({declared[missing[0]]}) "
            f"but the graph's inputs are {', '.join(sorted(graph_inputs))}"
        )
    unfed = sorted(n for n in graph_inputs if n not in declared)
    if unfed:
        raise EngineError(f"{where}: graph input(s) {', '.join(unfed)} are not fed by the manifest")

    wanted = {o.name: "outputs" for o in manifest.outputs.all()}
    wanted.update({s.output: f"state output for {s.input!r}" for s in manifest.state})
    for name, role in wanted.items():
        if name not in graph_outputs:
            raise EngineError(
                f"{where}: {role} {name!r} is not a graph output "
                f"(outputs are {', '.join(sorted(graph_outputs))})"
            )

    image = graph_inputs[manifest.input.name]
    dtype = _ONNX_DTYPES.get(image.type.tensor_type.elem_type, f"onnx type {image.type.tensor_type.elem_type}")
    if dtype != manifest.input.dtype:
        raise EngineError(f"{where}: input {image.name!r} is {dtype} in the graph, manifest says {manifest.input.dtype}")
    dims = _dims(image)
    if len(dims) != 4:
        raise EngineError(f"{where}: input {image.name!r} has rank {len(dims)}, expected 4 ({manifest.input.layout})")
    channels = dims[1] if manifest.input.layout == "NCHW" else dims[3]
    if channels is not None and channels != 3:
        raise EngineError(
            f"{where}: input {image.name!r} has {channels} channels in layout {manifest.input.layout}; "
            f"graph dims are {dims}: check input.layout"
        )
    hw = _image_hw(dims, manifest.input.layout)
    size = manifest.input.size
    if size is None:
        if any(d is not None for d in hw):
            raise EngineError(f"{where}: input {image.name!r} has static size {hw} but manifest input.size is null")
    else:
        for axis, graph_dim, want in zip("HW", hw, size):
            if graph_dim is not None and graph_dim != want:
                raise EngineError(
                    f"{where}: input {image.name!r} has {axis}={graph_dim} in the graph, "
                    f"manifest input.size says {axis}={want}"
                )

    check_h, check_w = size if size is not None else (None, None)
    for state in manifest.state:
        graph_dims = _dims(graph_inputs[state.input])
        if len(graph_dims) != len(state.shape):
            raise EngineError(
                f"{where}: state input {state.input!r} has rank {len(graph_dims)} in the graph, "
                f"manifest shape has {len(state.shape)}"
            )
        if check_h is None:
            continue
        want_shape = state.shape_for(check_h, check_w)
        for axis, (graph_dim, want) in enumerate(zip(graph_dims, want_shape)):
            if graph_dim is not None and graph_dim != want:
                raise EngineError(
                    f"{where}: state input {state.input!r} dim {axis} is {graph_dim} in the graph, "
                    f"manifest shape gives {want}"
                )
