"""Exact rewrites of an exported graph that make it cheaper to run.

The seeded engines execute a graph converted from TensorFlow Lite through
:class:`livematte.torch_graph.OnnxTorchGraph`, and torch traces it back op
by op. Three patterns come out slower than they need to on ONNX Runtime's
CPU backend, which on x86 keeps convolutions in a blocked channel layout
(NCHWc) and must reorder tensors to plain NCHW and back around every op
that cannot take that layout:

- TensorFlow's "SAME" padding at stride 2 (one more row and column at the
  end than at the start) becomes a ``Pad`` before an unpadded ``Conv``,
  since torch convolutions only pad symmetrically; ONNX's ``Conv`` takes
  both ends itself (:func:`fold_pads_into_convs`);
- hard-swish is traced as ``x * (clip(x + 3, 0, 6) * 1/6)``, four
  elementwise ops and two reorders, where ONNX has one ``HardSwish``
  (:func:`fuse_hard_swish`);
- a 3x3 convolution to a single channel (the alpha head's last layer) is
  computed padded to a whole channel block, 8-16 times the work; as a
  depthwise 3x3 followed by a 1x1 sum it is the same function at a
  fraction of the cost (:func:`split_single_channel_convs`).

:func:`optimise` runs them all and drops what they leave unused. The
exporter still compares the rewritten graph with torch before anything is
written.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator


def constant_value(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    """The value of tensor ``name`` when it is computed from constants alone
    (initialisers and ``Constant`` nodes), else None."""
    graph = model.graph
    initialisers = {i.name: i for i in graph.initializer}
    if name in initialisers:
        return numpy_helper.to_array(initialisers[name])
    producer = {out: node for node in graph.node for out in node.output}
    graph_inputs = {i.name for i in graph.input}
    needed: dict[int, onnx.NodeProto] = {}
    used: set[str] = set()
    pending, seen = [name], set()
    while pending:
        tensor = pending.pop()
        if not tensor or tensor in seen:
            continue
        seen.add(tensor)
        if tensor in initialisers:
            used.add(tensor)
        elif tensor in graph_inputs or tensor not in producer:
            return None
        else:
            node = producer[tensor]
            needed[id(node)] = node
            pending.extend(node.input)
    in_order = [node for node in graph.node if id(node) in needed]
    sub = helper.make_graph(in_order, "constant", [],
                            [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)],
                            [initialisers[t] for t in sorted(used)])
    return ReferenceEvaluator(helper.make_model(sub, opset_imports=model.opset_import)).run(None, {})[0]


def _zero_padding(model: onnx.ModelProto, pad: onnx.NodeProto) -> list[int] | None:
    """A constant-mode, zero-valued Pad's spatial (begin..., end...) pads of a 4-D tensor, else None."""
    mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
    if mode != b"constant" or len(pad.input) < 2:
        return None
    if len(pad.input) > 2 and pad.input[2]:
        value = constant_value(model, pad.input[2])
        if value is None or np.any(value != 0):
            return None
    if len(pad.input) > 3 and pad.input[3]:  # opset 18 axes
        return None
    pads = constant_value(model, pad.input[1])
    if pads is None or pads.shape != (8,) or np.any(pads < 0) or np.any(pads[[0, 1, 4, 5]] != 0):
        return None
    return [int(p) for p in pads[[2, 3, 6, 7]]]


def fold_pads_into_convs(model: onnx.ModelProto) -> int:
    """Merge every zero ``Pad`` whose only readers are 2-D ``Conv`` nodes (explicit
    pads) into those convs, in place; returns how many Pads were removed."""
    graph = model.graph
    readers = _readers(graph)
    outputs = {o.name for o in graph.output}
    folded = []
    for pad in graph.node:
        if pad.op_type != "Pad" or pad.output[0] in outputs:
            continue
        convs = readers[pad.output[0]]
        if not convs or any(c.op_type != "Conv" or c.input[0] != pad.output[0]
                            or _attribute(c, "auto_pad", b"NOTSET") != b"NOTSET" for c in convs):
            continue
        extra = _zero_padding(model, pad)
        if extra is None:
            continue
        for conv in convs:
            _set_pads(conv, [old + more for old, more in zip(_pads(conv), extra)])
            conv.input[0] = pad.input[0]
        folded.append(pad)
    for pad in folded:
        graph.node.remove(pad)
    return len(folded)


def fuse_hard_swish(model: onnx.ModelProto) -> int:
    """Replace every ``x * (clip(x + 3, 0, 6) * 1/6)`` whose intermediate values
    nothing else reads by ``HardSwish(x)``, in place; returns how many."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    readers = _readers(graph)
    outputs = {o.name for o in graph.output}

    def only_reader(tensor: str) -> bool:
        return len(readers[tensor]) == 1 and tensor not in outputs

    def is_constant(tensor: str, value: float) -> bool:
        found = constant_value(model, tensor)
        return found is not None and found.size == 1 and bool(np.isclose(found, value))

    fused: list[tuple[onnx.NodeProto, str, list[onnx.NodeProto]]] = []
    for outer in graph.node:
        if outer.op_type != "Mul" or len(outer.input) != 2:
            continue
        for x, gate_name in (outer.input, outer.input[::-1]):
            scale = producer.get(gate_name)
            if scale is None or scale.op_type != "Mul" or not only_reader(gate_name):
                continue
            clip_name = next((t for t in scale.input if t in producer and producer[t].op_type == "Clip"), None)
            if clip_name is None or not only_reader(clip_name) or not is_constant(
                    next(t for t in scale.input if t != clip_name), 1 / 6):
                continue
            clip = producer[clip_name]
            add = producer.get(clip.input[0])
            if (add is None or add.op_type != "Add" or x not in add.input or not only_reader(clip.input[0])
                    or len(clip.input) < 3 or not is_constant(clip.input[1], 0.0) or not is_constant(clip.input[2], 6.0)
                    or not is_constant(next(t for t in add.input if t != x), 3.0)):
                continue
            fused.append((outer, x, [add, clip, scale]))
            break
    for outer, x, replaced in fused:
        index = list(graph.node).index(outer)
        graph.node.insert(index, helper.make_node("HardSwish", [x], list(outer.output), name=f"{outer.name}/HardSwish"))
        for node in (*replaced, outer):
            graph.node.remove(node)
    return len(fused)


def split_single_channel_convs(model: onnx.ModelProto) -> int:
    """Rewrite every ungrouped k x k ``Conv`` (k > 1) with one output channel and
    constant weights as a depthwise k x k conv and a 1x1 conv summing its
    channels (same function, the bias on the sum), in place; returns how many."""
    graph = model.graph
    count = 0
    for conv in list(graph.node):
        if conv.op_type != "Conv" or _attribute(conv, "group", 1) != 1 or len(conv.input) < 2:
            continue
        weight = constant_value(model, conv.input[1])
        if weight is None or weight.ndim != 4 or weight.shape[0] != 1 or weight.shape[2:] == (1, 1):
            continue
        channels = weight.shape[1]
        depthwise = numpy_helper.from_array(weight.reshape(channels, 1, *weight.shape[2:]), f"{conv.name}/depthwise_weight")
        ones = numpy_helper.from_array(np.ones((1, channels, 1, 1), weight.dtype), f"{conv.name}/sum_weight")
        graph.initializer.extend([depthwise, ones])
        spatial = helper.make_node("Conv", [conv.input[0], depthwise.name], [f"{conv.name}/depthwise"],
                                   name=f"{conv.name}/depthwise", group=channels)
        spatial.attribute.extend(a for a in conv.attribute if a.name != "group")
        total = helper.make_node("Conv", [spatial.output[0], ones.name, *conv.input[2:3]], list(conv.output),
                                 name=f"{conv.name}/sum", kernel_shape=[1, 1])
        index = list(graph.node).index(conv)
        graph.node.remove(conv)
        graph.node.insert(index, total)
        graph.node.insert(index, spatial)
        count += 1
    return count


def remove_unused(model: onnx.ModelProto) -> int:
    """Drop nodes none of whose outputs is read or is a graph output, and
    initialisers nothing reads, in place; returns how many nodes went."""
    graph = model.graph
    wanted = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(out in wanted for out in node.output):
            kept.append(node)
            wanted.update(node.input)
    removed = len(graph.node) - len(kept)
    graph.ClearField("node")
    graph.node.extend(reversed(kept))
    unused = [i for i in graph.initializer if i.name not in wanted]
    for initialiser in unused:
        graph.initializer.remove(initialiser)
    return removed


def optimise(model: onnx.ModelProto) -> dict[str, int]:
    """Every rewrite of this module, in place; how many times each applied."""
    applied = {
        "pads folded into convs": fold_pads_into_convs(model),
        "hard-swish fused": fuse_hard_swish(model),
        "single-channel convs split": split_single_channel_convs(model),
    }
    remove_unused(model)
    return applied


def _readers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    return readers


def _attribute(node: onnx.NodeProto, name: str, default: object) -> object:
    found = next((a for a in node.attribute if a.name == name), None)
    return default if found is None else helper.get_attribute_value(found)


def _pads(conv: onnx.NodeProto) -> list[int]:
    return list(_attribute(conv, "pads", [0, 0, 0, 0]))


def _set_pads(conv: onnx.NodeProto, pads: list[int]) -> None:
    for attribute in conv.attribute:
        if attribute.name == "pads":
            conv.attribute.remove(attribute)
            break
    conv.attribute.append(helper.make_attribute("pads", pads))
