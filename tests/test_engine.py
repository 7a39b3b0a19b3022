"""Matter end to end on real peer graphs and on small graphs built here with known arithmetic."""
from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from livematte.engine import STAGES, Matter
from livematte.manifest import FORMAT, load_manifest

from conftest import write_manifest


def _iou(alpha: np.ndarray, mask: np.ndarray) -> float:
    pred = alpha > 0.5
    return float((pred & mask).sum() / (pred | mask).sum())


@pytest.mark.parametrize("peer", ["mediapipe_manifest", "selfie_manifest", "sinet_manifest"])
def test_segmentation_peers_matte_a_real_portrait(request, peer, eg1800_portrait):
    rgb, mask = eg1800_portrait
    matter = Matter(request.getfixturevalue(peer))
    result = matter.infer(rgb)
    assert result.alpha.shape == rgb.shape[:2] and result.alpha.dtype == np.float32
    assert 0.0 <= result.alpha.min() and result.alpha.max() <= 1.0
    assert _iou(result.alpha, mask) > 0.85
    assert set(result.timings) == set(STAGES) and all(t >= 0 for t in result.timings.values())
    matter.close()


def test_intra_op_threads_reach_the_onnx_runtime_session(mediapipe_manifest, eg1800_portrait):
    rgb, mask = eg1800_portrait
    for threads in (1, 2):
        matter = Matter(mediapipe_manifest, threads=threads)
        assert _iou(matter.infer(rgb).alpha, mask) > 0.85
        assert matter.backend.session.get_session_options().intra_op_num_threads == threads
        matter.close()


def _small(rgb: np.ndarray) -> np.ndarray:
    return rgb[::3, ::3].copy()  # 267x200: keeps the recurrent peer fast


def test_rvm_through_matter_uses_its_state(rvm_manifest, eg1800_portrait):
    rgb, mask = eg1800_portrait
    frame = _small(rgb)
    matter = Matter(rvm_manifest, scene_cut_threshold=None)
    first = matter.infer(frame).alpha
    second = matter.infer(frame).alpha
    assert second.shape == frame.shape[:2]
    assert _iou(second, mask[::3, ::3]) > 0.85
    assert np.abs(second - first).max() > 1e-3  # the state changed the answer
    matter.reset()
    np.testing.assert_allclose(matter.infer(frame).alpha, first, atol=1e-6)
    assert matter.infer(frame).foreground.shape == (*rvm_manifest.graph_size(*frame.shape[:2]), 3)


def test_scene_cut_resets_the_state(rvm_manifest, eg1800_portrait):
    rgb, _ = eg1800_portrait
    frame = _small(rgb)
    other = 255 - frame  # a shot that shares nothing with the first one
    fresh = Matter(rvm_manifest).infer(other).alpha

    matter = Matter(rvm_manifest, scene_cut_threshold=40.0)
    assert not matter.infer(frame).scene_cut
    assert not matter.infer(frame).scene_cut
    cut = matter.infer(other)
    assert cut.scene_cut
    np.testing.assert_allclose(cut.alpha, fresh, atol=1e-6)

    never = Matter(rvm_manifest, scene_cut_threshold=None)
    never.infer(frame)
    carried = never.infer(other)
    assert not carried.scene_cut and np.abs(carried.alpha - fresh).max() > 1e-3


def _tiny_engine(tmp_path, op_output: str, layout: str, manifest_input: dict, alpha: dict):
    """An 8x8 graph whose output is built from its input by one known node."""
    shape = [1, 3, 8, 8] if layout == "NCHW" else [1, 8, 8, 3]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    nodes = {"identity": [helper.make_node("Identity", ["x"], ["y"])],
             "sqrt_neg": [helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Sqrt", ["n"], ["y"])],
             "reciprocal": [helper.make_node("Reciprocal", ["x"], ["y"])]}[op_output]
    graph = helper.make_graph(nodes, "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "tiny.onnx")
    data = {"format": FORMAT, "name": "tiny", "onnx": "tiny.onnx",
            "input": {"name": "x", "layout": layout, "size": [8, 8], **manifest_input},
            "outputs": {"alpha": {"name": "y", "layout": layout, **alpha}}}
    return load_manifest(write_manifest(tmp_path, data, "tiny"))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_normalisation_colour_order_and_layout(tmp_path, layout):
    manifest = _tiny_engine(
        tmp_path, "identity", layout,
        {"color": "BGR", "scale": 1 / 255, "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.25, 2.0]},
        {"channel": 0, "activation": "sigmoid"},
    )
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 100, 200
    tensor = Matter(manifest).preprocess(rgb, (8, 8))
    chw = tensor[0] if layout == "NCHW" else tensor[0].transpose(2, 0, 1)
    # BGR order: graph channel 0 is blue, normalised with mean[0]/std[0]
    np.testing.assert_allclose(chw[0], (200 / 255 - 0.1) / 0.5, rtol=1e-5)
    np.testing.assert_allclose(chw[1], (100 / 255 - 0.2) / 0.25, rtol=1e-5)
    np.testing.assert_allclose(chw[2], (10 / 255 - 0.3) / 2.0, rtol=1e-5)
    alpha = Matter(manifest).infer(rgb).alpha
    np.testing.assert_allclose(alpha, 1 / (1 + np.exp(-(200 / 255 - 0.1) / 0.5)), rtol=1e-5)


def test_softmax_picks_the_channel(tmp_path):
    manifest = _tiny_engine(tmp_path, "identity", "NHWC", {"scale": 1.0}, {"channel": 2, "activation": "softmax"})
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1], rgb[..., 2] = 1, 2
    expected = np.exp(2) / (1 + np.exp(1) + np.exp(2))
    np.testing.assert_allclose(Matter(manifest).infer(rgb).alpha, expected, rtol=1e-5)


# sqrt(-x) is NaN wherever the frame is not black; 1/x is +Inf wherever it is black
@pytest.mark.parametrize("op, word, top, bottom", [("sqrt_neg", "NaN", 0.0, 0.0), ("reciprocal", "Inf", 1 / 255, 1.0)])
def test_nonfinite_alpha_is_clamped_and_reported_once(tmp_path, caplog, op, word, top, bottom):
    manifest = _tiny_engine(tmp_path, op, "NHWC", {"scale": 1.0}, {"channel": 0})
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4] = 255
    matter = Matter(manifest)
    with caplog.at_level(logging.WARNING, logger="livematte.engine"):
        for _ in range(3):
            alpha = matter.infer(rgb).alpha
    assert np.isfinite(alpha).all()
    np.testing.assert_allclose(alpha[:4], top, rtol=1e-5)
    np.testing.assert_allclose(alpha[4:], bottom, rtol=1e-5)
    assert sum(word in r.getMessage() for r in caplog.records) == 1


def test_upsampler_choice_reaches_full_resolution(mediapipe_manifest, eg1800_portrait):
    rgb, mask = eg1800_portrait
    guided = Matter(mediapipe_manifest, upsampler="guided").infer(rgb).alpha
    bilinear = Matter(mediapipe_manifest, upsampler="bilinear").infer(rgb).alpha
    assert guided.shape == bilinear.shape == mask.shape
    assert np.abs(guided - bilinear).mean() > 1e-3
    with pytest.raises(ValueError, match="unknown upsampler"):
        Matter(mediapipe_manifest, upsampler="nearest")
