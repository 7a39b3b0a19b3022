"""Every shipped engine must stay buildable by TensorRT 10, checked without TensorRT.

The checker (livematte.onnx_check) runs over each engines/*.onnx, over real
third-party graphs, and over tiny graphs that each break one TensorRT rule,
so a future export that TensorRT would reject fails here, not on a user's GPU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import MEDIAPIPE_ONNX, RVM_ONNX
from livematte import trt_cache
from livematte.manifest import load_manifest
from livematte.onnx_check import check_engine, check_model, main, profiled_inputs
from tiny_engines import export_tiny_recurrent

ENGINES = Path(__file__).resolve().parents[1] / "engines"
SHIPPED = sorted(ENGINES.rglob("*.onnx"))


@pytest.mark.parametrize(
    "onnx_path",
    [pytest.param(p, id=p.stem) for p in SHIPPED]
    or [pytest.param(None, marks=pytest.mark.skip(reason="no engine is shipped in engines/ yet"))],
)
def test_shipped_engine_uses_only_documented_tensorrt_ops(onnx_path: Path) -> None:
    manifest = load_manifest(onnx_path)
    issues = check_engine(manifest)
    assert not issues, "\n".join(map(str, issues))


def test_refinement_engine_is_checked_with_the_profile_the_backend_builds() -> None:
    """Its image and coarse alpha are dynamic: without a profile the check fails, with it both are covered."""
    manifest = load_manifest(ENGINES / "refinement" / "lm-refine.json")
    unprofiled = check_model(onnx.load(str(manifest.onnx_path)))
    assert {i.where for i in unprofiled} == {"input 'src'", "input 'coarse'"}
    shapes = trt_cache.profile_shapes(manifest)
    assert set(profiled_inputs(manifest)) == set(shapes) == {"src", "coarse"}
    for bound in ("min", "opt", "max"):
        image = getattr(shapes["src"], bound)
        assert getattr(shapes["coarse"], bound) == (1, 1, *image[2:])


def test_mediapipe_peer_is_accepted() -> None:
    if not MEDIAPIPE_ONNX.is_file():
        pytest.skip(f"{MEDIAPIPE_ONNX} not available")
    assert check_model(onnx.load(str(MEDIAPIPE_ONNX))) == []


def test_rvm_peer_is_rejected_for_control_flow_even_with_profiles(rvm_manifest) -> None:
    """The TF.js RVM export has If nodes: a real graph the checker must refuse."""
    model = onnx.load(str(RVM_ONNX))
    unprofiled = check_model(model)
    assert any("no optimisation profile" in i.message for i in unprofiled)
    profiled = check_model(model, profiled_inputs(rvm_manifest))
    assert profiled and all("control flow" in i.message for i in profiled)


def test_torch_exported_recurrent_engine_is_accepted(tmp_path: Path) -> None:
    manifest = load_manifest(export_tiny_recurrent(tmp_path))
    assert check_engine(manifest) == []


# --- tiny graphs, each breaking one rule -------------------------------------

def _out(name: str, rank: int = 4, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, [f"{name}{i}" for i in range(rank)])


def _model(nodes, inputs=None, initializers=(), opset=17, outputs=None, out_rank=4,
           domains: tuple[str, ...] = ()) -> onnx.ModelProto:
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
    outputs = outputs or [_out("y", out_rank)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.checker.check_model(model)  # the graph is valid ONNX: only TensorRT's rules can reject it
    return model


def _scales(*values: float):
    return numpy_helper.from_array(np.array(values, dtype=np.float32), "scales")


def _supported() -> onnx.ModelProto:
    return _model([helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="linear",
                                    coordinate_transformation_mode="half_pixel"),
                   helper.make_node("Relu", ["r"], ["y"])], initializers=[_scales(1, 1, 2, 2)])


def test_supported_tiny_graph_passes() -> None:
    assert check_model(_supported()) == []


REJECTED = {
    "cubic-resize": (lambda: _model([helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic")],
                                    initializers=[_scales(1, 1, 2, 2)]), "mode 'cubic'"),
    "crop-and-resize": (lambda: _model([helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                                                         coordinate_transformation_mode="tf_crop_and_resize")],
                                       initializers=[_scales(1, 1, 2, 2)]), "tf_crop_and_resize"),
    "antialias": (lambda: _model([helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                                                   antialias=1)],
                                 initializers=[_scales(1, 1, 0.5, 0.5)], opset=18), "antialias"),
    "wrap-pad": (lambda: _model([helper.make_node("Pad", ["x", "pads"], ["y"], mode="wrap")],
                                initializers=[numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1]), "pads")],
                                opset=19), "mode 'wrap'"),
    "if-node": (lambda: _model(
        [helper.make_node("If", ["cond"], ["y"],
                          then_branch=helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "t", [],
                                                        [_out("t")]),
                          else_branch=helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "e", [],
                                                        [_out("e")]))],
        initializers=[numpy_helper.from_array(np.array(True), "cond")]), "control flow"),
    "unsupported-op": (lambda: _model([helper.make_node("Unique", ["x"], ["y"])], out_rank=1), "not supported"),
    "float64": (lambda: _model([helper.make_node("Cast", ["x"], ["d"], to=TensorProto.DOUBLE),
                                helper.make_node("Cast", ["d"], ["y"], to=TensorProto.FLOAT)]), "float64"),
    "opset-21": (lambda: _model([helper.make_node("Relu", ["x"], ["y"])], opset=21), "opset 21"),
    "dynamic-input": (lambda: _model([helper.make_node("Relu", ["x"], ["y"])], inputs=[
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])]), "no optimisation profile"),
    "int64-input": (lambda: _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], inputs=[
        helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3])], out_rank=2), "INT64"),
    "custom-domain": (lambda: _model([helper.make_node("Relu", ["x"], ["y"], domain="com.example")],
                                             domains=("com.example",)),
                      "custom domain"),
    "max-pool-indices": (lambda: _model([helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2])],
                                        outputs=[_out("y"), _out("idx", 4, TensorProto.INT64)]),
                         "Indices"),
    "dynamic-unsqueeze-axes": (lambda: _model([helper.make_node("Unsqueeze", ["x", "axes"], ["y"])], inputs=[
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
        helper.make_tensor_value_info("axes", TensorProto.INT64, [1])], out_rank=3), "build-time constant"),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_unsupported_tiny_graph_is_rejected(case: str) -> None:
    build, expected = REJECTED[case]
    issues = check_model(build())
    assert any(expected in str(issue) for issue in issues), [str(i) for i in issues]


def test_command_line_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    onnx.save(_supported(), str(good))
    onnx.save(REJECTED["cubic-resize"][0](), str(bad))
    assert main([str(good)]) == 0
    assert "uses only ops and attributes TensorRT 10's parser documents" in capsys.readouterr().out
    assert main([str(good), str(bad)]) == 1
    assert "mode 'cubic'" in capsys.readouterr().out
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    assert main([str(garbage)]) == 2
