"""Engine manifests: the JSON contract between a trained graph and the runtime.

The runtime never guesses how to feed a graph; everything it needs is read
here into frozen dataclasses, so a malformed manifest fails once, at load
time, with one line naming the file and the field, instead of producing a
wrong matte later. The format is specified in ``docs/engine-manifest.md``.
"""
from __future__ import annotations

import ast
import enum
import json
import operator
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from livematte.aspect import Placement, nearest_aspect, place
from livematte.errors import EngineError, first_line

#: the current format; :meth:`EngineManifest.dump` stamps the oldest of
#: :data:`FORMATS` that can express the manifest (see :func:`format_for`)
FORMAT = "livematte-engine/2"
#: every format this runtime reads, oldest first: /2 added ``input.sizes``
FORMATS = ("livematte-engine/1", FORMAT)
LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
DTYPES = ("float32", "float16")
ACTIVATIONS = ("none", "sigmoid", "softmax")
#: ``constants[*].value`` may name this instead of a number: the internal
#: downsample ratio chosen for the current frame size.
RATIO = "ratio"


class Role(str, enum.Enum):
    """What an engine is for, which decides who may run it.

    A ``str`` enum, so it compares equal to (and is written as) its JSON value.
    """

    #: frame -> alpha (and optionally trimap/foreground): run by
    #: ``livematte.engine.Matter``; the only role ``--model`` accepts
    MATTING = "matting"
    #: image + coarse alpha -> refined alpha: run by
    #: ``livematte.quality.refine.Refiner`` in the quality mode; needs
    #: ``coarse`` and ``receptive_radius``
    REFINEMENT = "refinement"


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the graph's image tensor: x = (pixel*scale - mean) / std.

    The defaults are the manifest format's defaults for absent keys.
    """

    name: str
    layout: str
    dtype: str = "float32"
    color: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    #: (H, W) the graph needs, in the JSON's and the tensor's order, or None
    #: when the graph accepts any size
    size: tuple[int, int] | None = None
    #: (H, W) sizes a dynamic graph was trained for (format /2): each frame
    #: goes into the one nearest its aspect, padded, never squashed
    sizes: tuple[tuple[int, int], ...] = ()
    #: dynamic graphs only: H and W are rounded to a multiple of this
    multiple_of: int = 1
    #: True when the graph resizes internally by a ratio constant (e.g. RVM):
    #: the runtime then feeds the full frame and passes the ratio instead of
    #: resizing by it itself
    downsample_in_graph: bool = False


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
    init: float = 0.0

    def shape_for(self, height: int, width: int) -> tuple[int, ...]:
        """The initial tensor shape for a graph input of ``height`` x ``width``."""
        return tuple(evaluate_dim(dim, height, width) for dim in self.shape)


@dataclass(frozen=True)
class OutputSpec:
    """Where a result lives in the graph outputs and how to turn it into probabilities."""

    name: str
    layout: str
    #: the channel to pick after the activation (None: all channels, e.g. trimap)
    channel: int | None = None
    activation: str = "none"


@dataclass(frozen=True)
class CoarseSpec:
    """A refinement engine's second graph input: the coarse alpha, N x 1 x H x W in [0, 1]."""

    name: str
    layout: str = "NCHW"


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
    """A parsed, self-consistent engine manifest (not yet checked against its graph).

    Built by :func:`load_manifest` from a file, or directly by a writer (the
    exporters, :mod:`livematte.peers`), which then calls :meth:`dump`: this
    class is the only code that writes a manifest, so what is written is
    always something :func:`load_manifest` reads back equal.
    """

    name: str
    #: the graph as the manifest names it: relative to the manifest, or absolute
    onnx: str
    input: InputSpec
    outputs: OutputsSpec
    role: Role = Role.MATTING
    description: str = ""
    downsample: tuple[DownsampleRule, ...] = ()
    constants: tuple[ConstantSpec, ...] = ()
    state: tuple[StateSpec, ...] = ()
    #: refinement engines only: the coarse-alpha graph input
    coarse: CoarseSpec | None = None
    #: refinement engines only: pixels of context one output pixel depends on
    #: each side, the halo a tile needs to give the same result as a whole image
    receptive_radius: int | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    metrics: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    speed: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    license: str = ""
    #: where the manifest was read from (None for one built in memory and not yet dumped)
    manifest_path: Path | None = field(default=None, compare=False)

    @property
    def onnx_path(self) -> Path:
        """The graph's path: ``onnx`` resolved against the manifest's directory."""
        path = Path(self.onnx)
        if path.is_absolute() or self.manifest_path is None:
            return path
        return self.manifest_path.parent / path

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON data, in the documented key order.

        Optional keys are left out when they hold their default, so a manifest
        that was written sparingly reads back the same after a rewrite.
        """
        data: dict[str, Any] = {"format": format_for(self), "name": self.name}
        if self.role is not Role.MATTING:
            data["role"] = self.role.value
        data["onnx"] = self.onnx
        if self.description:
            data["description"] = self.description
        data["input"] = _input_dict(self.input)
        if self.downsample:
            data["downsample"] = [{"max_side": r.max_side, "ratio": r.ratio} for r in self.downsample]
        if self.constants:
            data["constants"] = [{"name": c.name, "dtype": c.dtype, "value": c.value} for c in self.constants]
        if self.state:
            data["state"] = [{"input": s.input, "output": s.output, "shape": list(s.shape), "init": s.init}
                             for s in self.state]
        if self.coarse is not None:
            data["coarse"] = {"name": self.coarse.name, "layout": self.coarse.layout}
        if self.receptive_radius is not None:
            data["receptive_radius"] = self.receptive_radius
        data["outputs"] = {"alpha": _output_dict(self.outputs.alpha, keep_channel=True)}
        for key in ("trimap", "foreground"):
            spec = getattr(self.outputs, key)
            if spec is not None:
                data["outputs"][key] = _output_dict(spec, keep_channel=False)
        for key in ("provenance", "metrics", "speed"):
            if getattr(self, key):
                data[key] = dict(getattr(self, key))
        if self.license:
            data["license"] = self.license
        return data

    def dump(self, path: str | Path | None = None) -> Path:
        """Write the manifest to ``path`` (default: where it was read from) and return the path.

        Written under a temporary name and renamed, so a reader never sees
        half a manifest. ``onnx`` is written as it is: a relative graph path
        stays relative to wherever the manifest goes.
        """
        target = Path(path) if path is not None else self.manifest_path
        if target is None:
            raise ValueError(f"engine {self.name!r}: dump() needs a path for a manifest built in memory")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def ratio_for(self, frame_height: int, frame_width: int) -> float:
        """The internal downsample ratio for a frame of this size (1.0 without rules)."""
        long_side = max(frame_height, frame_width)
        for rule in self.downsample:
            if long_side <= rule.max_side:
                return rule.ratio
        return self.downsample[-1].ratio if self.downsample else 1.0

    def graph_size(self, frame_height: int, frame_width: int) -> tuple[int, int]:
        """The [H, W] the graph is fed for a frame of this size.

        With ``input.sizes``, the declared size whose aspect is nearest the
        frame's (:func:`livematte.aspect.nearest_aspect`).
        """
        if self.input.size is not None:
            return self.input.size
        if self.input.sizes:
            return nearest_aspect(self.input.sizes, frame_height, frame_width)
        ratio = 1.0 if self.input.downsample_in_graph else self.ratio_for(frame_height, frame_width)
        m = self.input.multiple_of
        return (
            max(m, round(frame_height * ratio / m) * m),
            max(m, round(frame_width * ratio / m) * m),
        )

    def placement(self, frame_height: int, frame_width: int, graph: tuple[int, int] | None = None) -> Placement:
        """Where a frame of this size sits in its graph input (``graph``, default :meth:`graph_size`).

        For ``input.sizes`` engines the frame keeps its aspect and is padded;
        for the others it fills the whole graph input (resized to it, as ever).
        """
        graph = graph or self.graph_size(frame_height, frame_width)
        if self.input.sizes:
            return place(frame_height, frame_width, graph)
        return Placement(graph=graph, top=0, left=0, height=graph[0], width=graph[1])


def format_for(manifest: EngineManifest) -> str:
    """The oldest format that expresses ``manifest``: /2 only when it declares ``input.sizes``.

    So every manifest that does not need /2 stays readable by runtimes that
    only know /1, and the /1 files already shipped rewrite byte for byte.
    """
    return FORMAT if manifest.input.sizes else FORMATS[0]


def _input_dict(spec: InputSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"name": spec.name, "layout": spec.layout, "dtype": spec.dtype, "color": spec.color,
                            "scale": spec.scale, "mean": list(spec.mean), "std": list(spec.std),
                            "size": list(spec.size) if spec.size is not None else None}
    if spec.sizes:
        data["sizes"] = [list(hw) for hw in spec.sizes]
    if spec.size is None or spec.multiple_of != 1:
        data["multiple_of"] = spec.multiple_of
    if spec.downsample_in_graph:
        data["downsample_in_graph"] = True
    return data


def _output_dict(spec: OutputSpec, keep_channel: bool) -> dict[str, Any]:
    # alpha's channel defaults to 0 when absent, the others' to None (all
    # channels), so alpha always states it and the others only when set
    data: dict[str, Any] = {"name": spec.name, "layout": spec.layout}
    if keep_channel or spec.channel is not None:
        data["channel"] = spec.channel
    data["activation"] = spec.activation
    return data


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

    def only(self, known: tuple[str, ...]) -> None:
        """Refuse keys the format does not define: a misspelt optional key
        (``mutliple_of``) would otherwise be dropped silently, and a rewrite
        by :meth:`EngineManifest.dump` would lose it."""
        for key in self.data:
            if key not in known:
                raise self.fail(key, "is not a manifest field (see docs/engine-manifest.md)")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "an object", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_INPUT_DEFAULTS = InputSpec(name="", layout="NCHW")
_INPUT_KEYS = tuple(InputSpec.__dataclass_fields__)
_OUTPUT_KEYS = ("name", "layout", "channel", "activation")
_TOP_KEYS = ("format", "name", "role", "onnx", "description", "input", "downsample", "constants", "state",
             "coarse", "receptive_radius", "outputs", "provenance", "metrics", "speed", "license")


def _parse_input(f: _Fields) -> InputSpec:
    f.only(_INPUT_KEYS)
    d = _INPUT_DEFAULTS
    size = f.get("size", (list, type(None)), default=d.size)
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)):
        raise f.fail("size", "must be [H, W] with positive integers, or null")
    std = f.triple("std", d.std)
    if any(s == 0 for s in std):
        raise f.fail("std", "must not contain 0")
    multiple_of = f.get("multiple_of", int, default=d.multiple_of)
    if multiple_of < 1:
        raise f.fail("multiple_of", "must be at least 1")
    return InputSpec(
        name=f.get("name", str),
        layout=f.get("layout", str, choices=LAYOUTS),
        dtype=f.get("dtype", str, default=d.dtype, choices=DTYPES),
        color=f.get("color", str, default=d.color, choices=COLORS),
        scale=float(f.get("scale", (int, float), default=d.scale)),
        mean=f.triple("mean", d.mean),
        std=std,
        size=tuple(size) if size is not None else None,
        sizes=_parse_sizes(f),
        multiple_of=multiple_of,
        downsample_in_graph=f.get("downsample_in_graph", bool, default=d.downsample_in_graph),
    )


def _parse_sizes(f: _Fields) -> tuple[tuple[int, int], ...]:
    """``input.sizes`` as (H, W) pairs; :func:`check_consistency` checks what they may be."""
    sizes = f.get("sizes", list, default=[])
    if "sizes" in f.data and not sizes:
        raise f.fail("sizes", "must list at least one [H, W] (or be left out)")
    for hw in sizes:
        if not (isinstance(hw, list) and len(hw) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in hw)):
            raise f.fail("sizes", f"entries must be [H, W] with positive integers, not {hw!r}")
    return tuple(tuple(hw) for hw in sizes)  # type: ignore[return-value]


def _parse_output(f: _Fields, default_channel: int | None) -> OutputSpec:
    f.only(_OUTPUT_KEYS)
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
    f.only(("input", "output", "shape", "init"))
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


def _parse_downsample(f: _Fields) -> DownsampleRule:
    f.only(("max_side", "ratio"))
    ratio = float(f.get("ratio", (int, float)))
    if not 0 < ratio <= 1:
        raise f.fail("ratio", "must be in (0, 1]")
    return DownsampleRule(max_side=f.get("max_side", int), ratio=ratio)


def _parse_constant(f: _Fields) -> ConstantSpec:
    f.only(("name", "dtype", "value"))
    value = f.get("value", (int, float, str))
    if isinstance(value, str) and value != RATIO:
        raise f.fail("value", f"must be a number or {RATIO!r}, not {value!r}")
    return ConstantSpec(
        name=f.get("name", str),
        dtype=f.get("dtype", str, default="float32", choices=DTYPES),
        value=value if isinstance(value, str) else float(value),
    )


def _parse_outputs(f: _Fields) -> OutputsSpec:
    f.only(("alpha", "trimap", "foreground"))
    optional = {key: _parse_output(f.sub(key), default_channel=None)
                for key in ("trimap", "foreground") if f.get(key, dict, default=None) is not None}
    return OutputsSpec(alpha=_parse_output(f.sub("alpha"), default_channel=0), **optional)


def _parse_coarse(f: _Fields) -> CoarseSpec | None:
    if f.get("coarse", dict, default=None) is None:
        return None
    coarse = f.sub("coarse")
    coarse.only(("name", "layout"))
    return CoarseSpec(name=coarse.get("name", str), layout=coarse.get("layout", str, default="NCHW", choices=LAYOUTS))


def parse_manifest(data: Any, source: Path) -> EngineManifest:
    """A manifest from JSON data that lives (or will live) at ``source``.

    ``source`` names the file in error messages and anchors a relative
    ``onnx`` path. Writers that hold JSON-shaped data (:mod:`livematte.peers`)
    go through here, so what they write has passed the same checks as
    what the runtime reads.
    """
    root = _Fields(data, "manifest", source)
    root.only(_TOP_KEYS)
    fmt = root.get("format", str)
    if fmt not in FORMATS:
        raise EngineError(f"{source}: format {fmt!r} is not supported (expected one of {', '.join(FORMATS)})")
    input_spec = _parse_input(root.sub("input"))
    if input_spec.sizes and fmt == FORMATS[0]:
        raise EngineError(f"{source}: 'manifest.input.sizes' needs format {FORMAT!r}, this manifest says {fmt!r}")
    radius = root.get("receptive_radius", int, default=None)
    if radius is not None and radius < 0:
        raise root.fail("receptive_radius", "must be a non-negative integer")
    manifest = EngineManifest(
        name=root.get("name", str),
        onnx=root.get("onnx", str),
        role=Role(root.get("role", str, default=Role.MATTING.value, choices=tuple(r.value for r in Role))),
        description=root.get("description", str, default=""),
        input=input_spec,
        downsample=tuple(sorted((_parse_downsample(r) for r in _parse_list(root, "downsample")),
                                key=lambda r: r.max_side)),
        constants=tuple(_parse_constant(c) for c in _parse_list(root, "constants")),
        state=tuple(_parse_state(s) for s in _parse_list(root, "state")),
        coarse=_parse_coarse(root),
        receptive_radius=radius,
        outputs=_parse_outputs(root.sub("outputs")),
        provenance=root.get("provenance", dict, default={}),
        metrics=root.get("metrics", dict, default={}),
        speed=root.get("speed", dict, default={}),
        license=root.get("license", str, default=""),
        manifest_path=source,
    )
    check_consistency(manifest)
    return manifest


def graph_input_names(m: EngineManifest) -> dict[str, str]:
    """Every graph input the manifest feeds -> which part of the manifest names it."""
    declared = {m.input.name: "input.name"}
    declared.update({c.name: f"constant {c.name!r}" for c in m.constants})
    declared.update({s.input: f"state input {s.input!r}" for s in m.state})
    if m.coarse is not None:
        declared[m.coarse.name] = "coarse.name"
    return declared


def check_consistency(m: EngineManifest) -> None:
    """Rules that need no graph: names unique, ratio available where it is used,
    the refinement keys present exactly on refinement engines.

    :func:`parse_manifest` applies them; a writer that builds an
    :class:`EngineManifest` directly calls this before :meth:`~EngineManifest.dump`.
    """
    src = m.manifest_path or f"engine {m.name!r}"
    inputs = [m.input.name] + [c.name for c in m.constants] + [s.input for s in m.state]
    if m.coarse is not None:
        inputs.append(m.coarse.name)
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
    if m.input.sizes:
        _check_sizes(m, src)
    refinement_keys = m.coarse is not None or m.receptive_radius is not None
    if m.role is Role.REFINEMENT:
        if m.coarse is None or m.receptive_radius is None:
            raise EngineError(f"{src}: a refinement engine needs 'coarse' and 'receptive_radius'")
        if m.input.layout != "NCHW" or m.coarse.layout != "NCHW":
            raise EngineError(f"{src}: refinement engines must use layout NCHW for input and coarse")
    elif refinement_keys:
        raise EngineError(f"{src}: 'coarse' and 'receptive_radius' belong to role {Role.REFINEMENT.value!r} "
                          f"engines, this one is {m.role.value!r}")


def _check_sizes(m: EngineManifest, src: object) -> None:
    """``input.sizes``: a dynamic graph, distinct sizes on the ``multiple_of`` grid, state defined at each."""
    where = f"{src}: 'manifest.input.sizes'"
    if m.input.size is not None or m.input.downsample_in_graph:
        raise EngineError(f"{where} needs 'size': null and no downsample_in_graph (the graph's H and W dynamic)")
    for i, hw in enumerate(m.input.sizes):
        if hw in m.input.sizes[:i]:
            raise EngineError(f"{where} lists {list(hw)} twice")
        if any(v % m.input.multiple_of for v in hw):
            raise EngineError(f"{where} entry {list(hw)} is not a multiple of multiple_of ({m.input.multiple_of})")
        for state in m.state:
            shape = state.shape_for(*hw)
            if any(d < 1 for d in shape):
                raise EngineError(f"{where} entry {list(hw)} gives state {state.input!r} the shape {list(shape)}")


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
    return parse_manifest(data, json_path.resolve())


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
        raise EngineError(f"{where}: {path.name} is not a valid ONNX model: {first_line(exc)}") from None

    initializers = {init.name for init in model.graph.initializer}
    graph_inputs = {i.name: i for i in model.graph.input if i.name not in initializers}
    graph_outputs = {o.name: o for o in model.graph.output}

    declared = graph_input_names(manifest)
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
    size, sizes = manifest.input.size, manifest.input.sizes
    if sizes:
        fixed_to_the_one_size = len(sizes) == 1 and all(g in (None, want) for g, want in zip(hw, sizes[0]))
        if any(d is not None for d in hw) and not fixed_to_the_one_size:
            raise EngineError(
                f"{where}: input {image.name!r} has static size {hw} in the graph but manifest input.sizes "
                f"lists {[list(s) for s in sizes]}: the graph's H and W must be dynamic"
            )
    elif size is None:
        if any(d is not None for d in hw):
            raise EngineError(f"{where}: input {image.name!r} has static size {hw} but manifest input.size is null")
    else:
        for axis, graph_dim, want in zip("HW", hw, size):
            if graph_dim is not None and graph_dim != want:
                raise EngineError(
                    f"{where}: input {image.name!r} has {axis}={graph_dim} in the graph, "
                    f"manifest input.size says {axis}={want}"
                )

    # the sizes the graph will be fed at, where they are known ahead of the first frame
    known_sizes = sizes or ((size,) if size is not None else ())
    for state in manifest.state:
        graph_dims = _dims(graph_inputs[state.input])
        if len(graph_dims) != len(state.shape):
            raise EngineError(
                f"{where}: state input {state.input!r} has rank {len(graph_dims)} in the graph, "
                f"manifest shape has {len(state.shape)}"
            )
        for check_h, check_w in known_sizes:
            want_shape = state.shape_for(check_h, check_w)
            for axis, (graph_dim, want) in enumerate(zip(graph_dims, want_shape)):
                if graph_dim is not None and graph_dim != want:
                    raise EngineError(
                        f"{where}: state input {state.input!r} dim {axis} is {graph_dim} in the graph, "
                        f"manifest shape gives {want} at input size {check_h}x{check_w} (HxW)"
                    )
