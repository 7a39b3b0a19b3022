"""training/onnx_passes.py: each rewrite applies where it should, leaves the rest, and keeps the function."""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from training.onnx_passes import (fold_pads_into_convs, fuse_hard_swish, optimise, remove_unused,  # noqa: E402
                                  split_single_channel_convs)

REPO = Path(__file__).resolve().parents[1]


class Patterns(nn.Module):
    """Each pattern once where a pass applies, and once where it must not."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.down = nn.Conv2d(3, 8, 3, stride=2)
        self.side = nn.Conv2d(3, 8, 3, stride=2)
        self.alpha = nn.Conv2d(8, 1, 3, padding=1)
        self.point = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = self.down(F.pad(x, (0, 1, 0, 1)))  # TensorFlow "SAME" at stride 2: folds
        z = self.side(F.pad(x, (0, 1, 0, 1), value=0.5))  # pads with 0.5: a conv cannot do that
        gate = torch.clamp(y + 3, 0, 6) * (1 / 6)
        swish = y * gate  # hard-swish: fuses
        kept_gate = torch.clamp(z + 3, 0, 6) * (1 / 6)
        kept = z * kept_gate  # its gate is also an output: stays
        return self.alpha(swish), self.point(swish), kept, kept_gate


def _export(tmp_path: Path) -> onnx.ModelProto:
    path = tmp_path / "patterns.onnx"
    with torch.no_grad():
        torch.onnx.export(Patterns().eval(), (torch.rand(1, 3, 32, 48),), str(path), opset_version=17, dynamo=False,
                          input_names=["src"], dynamic_axes={"src": {2: "H", 3: "W"}})
    return onnx.load(str(path))


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"src": x})


def _ops(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph.node)


@pytest.mark.parametrize("rewrite, before, after", [
    (fold_pads_into_convs, {"Pad": 2}, {"Pad": 1}),
    (fuse_hard_swish, {"HardSwish": 0, "Clip": 2}, {"HardSwish": 1, "Clip": 1}),
    (split_single_channel_convs, {"Conv": 4}, {"Conv": 5}),
])
def test_each_rewrite_applies_once_and_keeps_the_outputs(tmp_path: Path, rewrite, before: dict, after: dict) -> None:
    model = _export(tmp_path)
    assert {op: _ops(model)[op] for op in before} == before
    x = np.random.default_rng(1).random((1, 3, 37, 53), dtype=np.float32)  # odd sizes: other pads than traced
    want = _run(model, x)
    assert rewrite(model) == 1
    remove_unused(model)
    onnx.checker.check_model(model)
    assert {op: _ops(model)[op] for op in after} == after
    for got, expected in zip(_run(model, x), want):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_optimise_runs_every_rewrite_and_drops_what_they_leave(tmp_path: Path) -> None:
    model = _export(tmp_path)
    x = np.random.default_rng(2).random((1, 3, 40, 64), dtype=np.float32)
    want = _run(model, x)
    nodes = len(model.graph.node)
    assert optimise(model) == {"pads folded into convs": 1, "hard-swish fused": 1, "single-channel convs split": 1}
    assert len(model.graph.node) < nodes - 4  # the pads' shape arithmetic and the swish ops are gone
    read = {name for node in model.graph.node for name in node.input}
    assert all(i.name in read for i in model.graph.initializer)
    for got, expected in zip(_run(model, x), want):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert optimise(model) == dict.fromkeys(optimise(model), 0)  # nothing left to do


@pytest.mark.parametrize("engine", ["lm-live", "lm-realtime"])
def test_the_shipped_seeded_engines_were_exported_with_the_rewrites(engine: str) -> None:
    model = onnx.load(str(REPO / "engines" / f"{engine}.onnx"))
    assert _ops(model)["HardSwish"] > 0
    assert optimise(model) == dict.fromkeys(optimise(model), 0)
