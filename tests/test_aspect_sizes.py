"""Engines that declare ``input.sizes``: a frame goes into the size nearest its aspect, never squashed.

Runs a hand-built dynamic-shape engine (``tiny_engines.write_aspect_engine``:
alpha = grey level at stride 2, a state that counts frames) through the
runtime, so where the matte's edges land and when the state restarts are
observed on real outputs, not on the code's own arithmetic.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from backend_checks import CpuDeviceStateBackend
from onnx import TensorProto, helper, save
from tiny_engines import ASPECT_SIZES, ASPECT_STEP, write_aspect_engine

from livematte import trt_cache
from livematte.aspect import place
from livematte.backends import create_backend
from livematte.backends.base import MattingBackend
from livematte.engine import Matter
from livematte.errors import EngineError
from livematte.manifest import FORMATS, EngineManifest, load_manifest, validate_against_graph
from livematte.onnx_check import check_engine, main as onnx_check_main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def aspect_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_aspect_engine(tmp_path_factory.mktemp("aspect"))


@pytest.fixture(scope="module")
def aspect(aspect_path: Path) -> EngineManifest:
    return load_manifest(aspect_path)


def _edited(path: Path, tmp_path: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of the manifest at ``path`` changed by ``edit``, its graph path made absolute."""
    data = json.loads(path.read_text())
    data["onnx"] = str(path.with_suffix(".onnx"))
    edit(data)
    out = tmp_path / path.name
    out.write_text(json.dumps(data))
    return out


# --- which size, and where in it --------------------------------------------------

@pytest.mark.parametrize("frame_wh, graph_hw", [
    ((1280, 720), (144, 256)),   # 16:9 landscape webcam
    ((600, 800), (256, 192)),    # 3:4 portrait photo
    ((1080, 1920), (256, 144)),  # 9:16 phone video
    ((640, 640), (256, 256)),    # square
    ((640, 480), (192, 256)),    # 4:3 camera
    ((800, 400), (144, 256)),    # 2:1, nearer 16:9 than 4:3 in log space
    ((870, 1000), (256, 256)),   # nearer 1:1 than 3:4 in log space (not in linear)
])
def test_the_size_nearest_the_frames_aspect_is_chosen(aspect, frame_wh, graph_hw) -> None:
    width, height = frame_wh
    assert aspect.graph_size(height, width) == graph_hw


@pytest.mark.parametrize("frame_hw", [(600, 400), (400, 800), (720, 1280), (1080, 1920), (333, 517), (517, 333),
                                      (480, 854), (1000, 999)])
def test_the_frame_keeps_its_aspect_centred_on_even_pixels(aspect, frame_hw) -> None:
    h, w = frame_hw
    p = aspect.placement(h, w)
    gh, gw = p.graph
    assert p.graph == aspect.graph_size(h, w)
    # it fits, fills one axis, and keeps the frame's aspect to within one graph pixel
    assert 0 <= p.top and p.top + p.height <= gh and 0 <= p.left and p.left + p.width <= gw
    assert p.height == gh or p.width == gw
    scale = min(gh / h, gw / w)
    assert abs(p.height - h * scale) <= 1 and abs(p.width - w * scale) <= 1
    # centred, and even wherever there is padding, so a stride-2 output crops exactly
    assert abs((gh - p.height) - 2 * p.top) <= 2 and abs((gw - p.width) - 2 * p.left) <= 2
    assert all(v % 2 == 0 for v in (p.top, p.left, p.height, p.width))


def test_fixed_and_any_size_engines_fill_the_whole_graph_input(aspect) -> None:
    fixed = replace(aspect, input=replace(aspect.input, sizes=(), size=(144, 256)))
    assert not fixed.placement(800, 600).padded and fixed.placement(800, 600).graph == (144, 256)
    free = replace(aspect, input=replace(aspect.input, sizes=()))
    assert free.placement(720, 1280) == place(720, 1280, free.graph_size(720, 1280)) and not free.placement(720, 1280).padded


def test_the_graph_input_is_the_frame_padded_with_its_edge_pixels(aspect) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (600, 400, 3), dtype=np.uint8)
    with Matter(aspect, scene_cut_threshold=None) as matter:
        p = aspect.placement(600, 400)
        content, image = matter.fit_frame(rgb, p)
    assert image.shape[:2] == p.graph == (256, 192) and content.shape[:2] == (p.height, p.width)
    assert p.left > 0 and p.top == 0  # a 2:3 frame in the 3:4 size: padded left and right
    box = image[p.top:p.top + p.height, p.left:p.left + p.width]
    np.testing.assert_array_equal(box, content)
    np.testing.assert_array_equal(image[:, :p.left], np.repeat(content[:, :1], p.left, axis=1))
    right = p.graph[1] - p.left - p.width
    np.testing.assert_array_equal(image[:, p.left + p.width:], np.repeat(content[:, -1:], right, axis=1))


# --- the matte comes back where the frame is ----------------------------------------

def _edge(profile: np.ndarray) -> float:
    """Where a falling 1 -> 0 profile crosses 0.5, between pixel centres."""
    i = int(np.flatnonzero(profile < 0.5)[0])
    return i - 1 + (profile[i - 1] - 0.5) / (profile[i - 1] - profile[i])


@pytest.mark.parametrize("frame_hw, axis", [((600, 400), 1), ((400, 800), 0), ((350, 700), 0)])
def test_the_matte_edge_lands_where_the_frames_edge_is(aspect, frame_hw, axis) -> None:
    """A white quarter of the frame gives a matte edge at that quarter, within a pixel, for padded aspects."""
    h, w = frame_hw
    assert aspect.placement(h, w).padded
    length = frame_hw[axis]
    rgb = np.zeros((h, w, 3), np.uint8)
    if axis == 1:
        rgb[:, : length // 4] = 255
    else:
        rgb[: length // 4] = 255
    with Matter(aspect, upsampler="bilinear", scene_cut_threshold=None) as matter:
        result = matter.infer(rgb)
    assert result.alpha.shape == (h, w)
    profile = result.alpha[h // 2] if axis == 1 else result.alpha[:, w // 2]
    assert abs(_edge(profile) - (length // 4 - 0.5)) <= 1.0
    # the outputs at the graph's resolution are cropped to the frame's part at stride 2
    p = aspect.placement(h, w)
    assert result.foreground.shape == (p.height // 2, p.width // 2, 3)


def test_an_unpadded_frame_is_used_whole(aspect) -> None:
    rgb = np.zeros((720, 1280, 3), np.uint8)
    rgb[:, :320] = 255
    with Matter(aspect, upsampler="bilinear", scene_cut_threshold=None) as matter:
        result = matter.infer(rgb)
    assert not aspect.placement(720, 1280).padded and result.foreground.shape == (72, 128, 3)
    assert abs(_edge(result.alpha[360]) - 319.5) <= 1.0


# --- the recurrent state follows the chosen size --------------------------------------

def _torch_cpu(manifest: EngineManifest, size: tuple[int, int]) -> MattingBackend:
    pytest.importorskip("torch")
    from livematte.backends.torch_cuda import TorchCudaBackend

    return TorchCudaBackend(manifest, size, precision="fp32", device="cpu")


CPU_BACKENDS = {
    "cpu": lambda manifest, size: create_backend("cpu", manifest, size),
    "torch-on-cpu": _torch_cpu,
    "onnxruntime-gpu-state-on-cpu": CpuDeviceStateBackend,
}


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_state_restarts_when_the_chosen_size_changes_and_is_carried_otherwise(aspect, backend) -> None:
    make = CPU_BACKENDS[backend]
    built: list[tuple[int, int]] = []

    def factory(size: tuple[int, int]) -> MattingBackend:
        built.append(size)
        return make(aspect, size)

    # (frame H, W), frames the state has carried after it
    stream = [((720, 1280), 1), ((720, 1280), 2),
              ((1080, 1920), 3),  # another resolution, same 16:9 size: carried
              ((1280, 720), 1),   # the phone turns: 9:16, restarted
              ((1920, 1080), 2),
              ((720, 1280), 1)]   # and back
    with Matter(aspect, scene_cut_threshold=None, upsampler="bilinear", backend_factory=factory) as matter:
        for (h, w), frames in stream:
            result = matter.infer(np.full((h, w, 3), 128, np.uint8))
            np.testing.assert_allclose(result.foreground, frames * ASPECT_STEP, atol=1e-5)
    assert built == [(144, 256), (256, 144)]  # each size's backend is kept, its state restarted on return


# --- the manifest ----------------------------------------------------------------

def test_sizes_manifest_validates_and_rewrites_byte_for_byte_as_format_2(aspect, tmp_path) -> None:
    validate_against_graph(aspect)
    written = aspect.dump(tmp_path / "a.json")
    assert json.loads(written.read_text())["format"] == FORMATS[-1] == "livematte-engine/2"
    again = load_manifest(written)
    assert again == aspect and again.input.sizes == tuple(map(tuple, ASPECT_SIZES))
    assert again.dump(tmp_path / "b.json").read_bytes() == written.read_bytes()


def test_format_1_manifests_still_load_and_stay_format_1(tmp_path) -> None:
    older = [p for p in sorted((REPO / "engines").rglob("*.json")) if "sizes" not in json.loads(p.read_text())["input"]]
    assert {p.stem for p in older} >= {"lm-mobile-recurrent", "lm-refine"}
    for path in older:
        assert json.loads(path.read_text())["format"] == "livematte-engine/1"
        manifest = load_manifest(path)
        assert manifest.input.sizes == ()
        assert json.loads(manifest.dump(tmp_path / path.name).read_text())["format"] == "livematte-engine/1"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="livematte-engine/1"), "'manifest.input.sizes' needs format 'livematte-engine/2'"),
    (lambda d: d.update(format="livematte-engine/3"), "format 'livematte-engine/3' is not supported"),
    (lambda d: d["input"].update(sizes=[]), "'manifest.input.sizes' must list at least one"),
    (lambda d: d["input"].update(sizes=[[144, 256], [0, 16]]), "entries must be \\[H, W\\] with positive integers"),
    (lambda d: d["input"].update(sizes=[[144, 256, 3]]), "entries must be \\[H, W\\]"),
    (lambda d: d["input"].update(sizes=[[144, True]]), "entries must be \\[H, W\\]"),
    (lambda d: d["input"].update(sizes=[[144.0, 256]]), "entries must be \\[H, W\\]"),
    (lambda d: d["input"].update(sizes=[144, 256]), "entries must be \\[H, W\\]"),
    (lambda d: d["input"].update(sizes="144x256"), "'manifest.input.sizes' must be a list"),
    (lambda d: d["input"].update(sizes=[[144, 256], [150, 256]]), "entry \\[150, 256\\] is not a multiple of multiple_of \\(16\\)"),
    (lambda d: d["input"].update(sizes=[[144, 256], [256, 144], [144, 256]]), "lists \\[144, 256\\] twice"),
    (lambda d: d["input"].update(size=[144, 256]), "needs 'size': null"),
    (lambda d: d["state"][0].update(shape=[1, 1, "H/2 - 100", "W/2"]), "entry \\[144, 256\\] gives state 'h_in' the shape"),
])
def test_bad_sizes_are_one_line_errors_naming_file_and_field(aspect_path, tmp_path, edit, message) -> None:
    bad = _edited(aspect_path, tmp_path, edit)
    with pytest.raises(EngineError, match=message) as info:
        load_manifest(bad)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def _static_copy(aspect_path: Path, tmp_path: Path, hw: tuple[int, int]) -> Path:
    """The aspect engine with its image input fixed at ``hw`` in the graph."""
    import onnx

    model = onnx.load(str(aspect_path.with_suffix(".onnx")))
    src = model.graph.input[0]
    src.CopyFrom(helper.make_tensor_value_info("src", TensorProto.FLOAT, [1, 3, *hw]))
    save(model, str(tmp_path / "static.onnx"))
    return tmp_path / "static.onnx"


def test_graph_must_be_dynamic_unless_it_is_the_only_size(aspect, aspect_path, tmp_path) -> None:
    static = _static_copy(aspect_path, tmp_path, (144, 256))
    with pytest.raises(EngineError, match="the graph's H and W must be dynamic"):
        validate_against_graph(aspect, static)
    validate_against_graph(replace(aspect, input=replace(aspect.input, sizes=((144, 256),))), static)
    with pytest.raises(EngineError, match="the graph's H and W must be dynamic"):
        validate_against_graph(replace(aspect, input=replace(aspect.input, sizes=((192, 256),))), static)


def test_state_rank_and_static_state_dims_are_checked_at_every_size(aspect, tmp_path) -> None:
    wrong_rank = replace(aspect, state=(replace(aspect.state[0], shape=(1, "H/2", "W/2")),))
    with pytest.raises(EngineError, match="state input 'h_in' has rank 4 in the graph, manifest shape has 3"):
        validate_against_graph(wrong_rank)
    import onnx

    model = onnx.load(str(aspect.onnx_path))
    model.graph.input[1].CopyFrom(helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 1, 72, "W2"]))
    save(model, str(tmp_path / "state72.onnx"))
    with pytest.raises(EngineError, match="dim 2 is 72 in the graph, manifest shape gives 96 at input size 192x256"):
        validate_against_graph(aspect, tmp_path / "state72.onnx")


# --- TensorRT: the profile covers every declared size ---------------------------------

def test_tensorrt_profile_covers_every_declared_size_tuned_for_the_one_built(aspect) -> None:
    for size in aspect.input.sizes:
        shapes = trt_cache.profile_shapes(aspect, size)
        image, state = shapes["src"], shapes["h_in"]
        assert image.min == (1, 3, 144, 144) and image.max == (1, 3, 256, 256) and image.opt == (1, 3, *size)
        for h, w in aspect.input.sizes:
            assert all(lo <= d <= hi for lo, d, hi in zip(image.min, (1, 3, h, w), image.max))
            assert all(lo <= d <= hi for lo, d, hi in zip(state.min, aspect.state[0].shape_for(h, w), state.max))
        assert state.opt == aspect.state[0].shape_for(*size)
    with pytest.raises(ValueError, match="not one of its input.sizes"):
        trt_cache.profile_shapes(aspect, (160, 256))


def test_each_declared_size_has_its_own_plan(aspect) -> None:
    fields = dict(gpu_name="NVIDIA H200", compute_capability="9.0", tensorrt_version="10.3.0", precision="fp16")
    keys = {trt_cache.PlanKey.create(aspect, graph_size=size, **fields).digest() for size in aspect.input.sizes}
    assert len(keys) == len(aspect.input.sizes)


def test_tensorrt_check_covers_and_reports_the_profile(aspect, aspect_path, capsys) -> None:
    assert check_engine(aspect) == []
    assert onnx_check_main([str(aspect_path.with_suffix(".onnx"))]) == 0
    out = capsys.readouterr().out
    assert "one plan per size" in out
    assert "src: min [1, 3, 144, 144] max [1, 3, 256, 256] opt [1, 3, 144, 256], [1, 3, 192, 256]" in out


def test_engines_info_lists_the_sizes_as_the_cli_writes_sizes(aspect_path, capsys) -> None:
    from livematte.cli import main as cli_main

    assert cli_main(["engines", "info", str(aspect_path)]) == 0
    out = capsys.readouterr().out
    assert "256x144, 256x192, 256x256, 192x256, 144x256 (WxH; the one nearest the frame's aspect, padded)" in out
