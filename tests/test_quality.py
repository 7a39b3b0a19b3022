"""Offline quality mode: band construction, closed-form solve, tiled refinement,
temporal stabiliser and the QualityMatter wrapper on real images."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from livematte.engine import Matter
from livematte.manifest import FORMAT
from livematte.metrics import dtssd, sad, unknown_region
from livematte.quality import QualityMatter
from livematte.quality.band import band_radius, trimap_from_alpha, trimap_from_probabilities
from livematte.quality.closed_form import estimate_foreground, solve_alpha
from livematte.quality.refine import Refiner
from livematte.quality.temporal import TemporalStabiliser
from tests.conftest import DATA, read_grey, read_rgb


def ramp_alpha(h: int, w: int, x0: int, x1: int) -> np.ndarray:
    """A vertical edge: 1 left of column x0, 0 right of x1, linear in between."""
    x = np.arange(w, dtype=np.float32)
    row = np.clip((x1 - x) / (x1 - x0), 0.0, 1.0)
    return np.repeat(row[None], h, axis=0)


# --- band -------------------------------------------------------------------

def test_band_from_alpha_has_three_classes_and_the_requested_width():
    alpha = ramp_alpha(40, 100, 45, 55)  # soft between columns 45 and 55
    for radius in (2, 5):
        trimap = trimap_from_alpha(alpha, radius=radius)
        assert set(np.unique(trimap)) == {0, 128, 255}
        row = trimap[20]
        unknown = np.flatnonzero(row == 128)
        # soft pixels (alpha in (0.05, 0.95)) plus `radius` eroded on each side
        soft = np.flatnonzero((alpha[20] > 0.05) & (alpha[20] < 0.95))
        assert unknown[0] == soft[0] - radius and unknown[-1] == soft[-1] + radius
        assert (row[: unknown[0]] == 255).all() and (row[unknown[-1] + 1:] == 0).all()
        # no band along the frame border: the person touching it stays foreground
        assert trimap[0, 0] == 255 and trimap[-1, -1] == 0


def test_band_width_scales_with_image_size():
    assert band_radius((1080, 1920)) > band_radius((360, 640)) >= 2


def test_band_from_probabilities_follows_the_upsampled_class_boundary():
    probs = np.zeros((9, 16, 3), np.float32)
    probs[:, :8, 2] = 1.0  # foreground on the left
    probs[:, 8:, 0] = 1.0  # background on the right
    trimap = trimap_from_probabilities(probs, (90, 160), radius=4)
    unknown_cols = np.flatnonzero((trimap == 128).any(axis=0))
    assert 70 <= unknown_cols[0] and unknown_cols[-1] <= 90  # around x = 80
    assert trimap[45, 10] == 255 and trimap[45, 150] == 0
    with pytest.raises(ValueError):
        trimap_from_probabilities(np.zeros((9, 16, 2)), (90, 160))


# --- closed-form ------------------------------------------------------------

def test_closed_form_recovers_a_known_ramp_between_two_colours():
    h, w = 60, 120
    alpha = ramp_alpha(h, w, 50, 70)
    fg, bg = np.array([220.0, 60.0, 40.0]), np.array([30.0, 90.0, 200.0])
    rgb = np.round(alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.uint8)
    trimap = trimap_from_alpha(alpha, radius=4)
    solved = solve_alpha(rgb, trimap)
    band = unknown_region(trimap)
    assert np.abs(solved - alpha)[band].max() < 0.03
    # a coarse guess (a hard step) is far worse: the solver did real work
    assert np.abs((alpha > 0.5) - alpha)[band].mean() > 5 * np.abs(solved - alpha)[band].mean()
    # foreground unmixing gives back the flat foreground colour in the band
    est = estimate_foreground(rgb, solved)
    mixed = band & (alpha > 0.2)
    assert np.abs(est[mixed] * 255 - fg).max() < 12


def test_closed_form_at_reduced_working_resolution_stays_close_on_a_real_image():
    root = DATA / "alphamatting-lowres-train"
    if not root.is_dir():
        pytest.skip(f"{root} not available")
    rgb = read_rgb(root / "image" / "GT01.jpg")[::2, ::2].copy()
    gt = read_grey(root / "alpha" / "GT01.png")[::2, ::2].copy()
    trimap = read_grey(root / "trimap1" / "GT01.png")[::2, ::2].copy()
    band = unknown_region(trimap)
    full = solve_alpha(rgb, trimap)
    reduced = solve_alpha(rgb, trimap, max_pixels=full.size // 4)
    coarse_sad = sad((trimap > 128).astype(np.float32), gt, band)
    assert sad(full, gt, band) < 0.5 * coarse_sad
    assert sad(reduced, gt, band) < 0.6 * coarse_sad
    assert np.array_equal(full[trimap == 255], np.ones(int((trimap == 255).sum()), np.float32))


# --- tiled refinement -------------------------------------------------------

def write_conv_refiner(directory: Path, seed: int = 0) -> Path:
    """A refinement engine of 4 random dilated convolutions (the lm-refine topology)."""
    rng = np.random.default_rng(seed)
    dilations, width = (1, 2, 4, 1), 8
    nodes, inits = [helper.make_node("Concat", ["src", "coarse"], ["x0"], axis=1)], []
    cin = 4
    for i, d in enumerate(dilations):
        cout = 1 if i == 3 else width
        inits += [numpy_helper.from_array(rng.normal(0, 0.3, (cout, cin, 3, 3)).astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(rng.normal(0, 0.1, (cout,)).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Conv", [f"x{i}", f"w{i}", f"b{i}"], [f"c{i}"],
                                      pads=[d] * 4, dilations=[d, d], kernel_shape=[3, 3]))
        if i < 3:
            nodes.append(helper.make_node("Relu", [f"c{i}"], [f"x{i + 1}"]))
        cin = cout
    inits += [numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
              numpy_helper.from_array(np.array(1.0, np.float32), "hi")]
    nodes += [helper.make_node("Add", ["coarse", "c3"], ["sum"]),
              helper.make_node("Clip", ["sum", "lo", "hi"], ["alpha"])]
    dims = [1, None, "H", "W"]
    graph = helper.make_graph(
        nodes, "refine",
        [helper.make_tensor_value_info("src", TensorProto.FLOAT, [1, 3, "H", "W"]),
         helper.make_tensor_value_info("coarse", TensorProto.FLOAT, [1, 1, "H", "W"])],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, dims)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, directory / "test-refine.onnx")
    manifest = {
        "format": FORMAT, "name": "test-refine", "role": "refinement",
        "onnx": "test-refine.onnx",
        "input": {"name": "src", "layout": "NCHW", "dtype": "float32", "color": "RGB",
                  "scale": 1 / 255, "size": None},
        "coarse": {"name": "coarse", "layout": "NCHW"}, "receptive_radius": sum(dilations),
        "outputs": {"alpha": {"name": "alpha", "layout": "NCHW", "channel": 0}},
    }
    path = directory / "test-refine.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_tiled_refinement_equals_a_whole_image_run(tmp_path):
    engine = write_conv_refiner(tmp_path)
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (53, 71, 3), dtype=np.uint8)
    coarse = cv2.GaussianBlur(ramp_alpha(53, 71, 30, 40), (0, 0), 2.0)
    whole = Refiner(engine, tile=1000).refine(rgb, coarse)
    tiled = Refiner(engine, tile=16).refine(rgb, coarse)
    assert np.abs(whole - coarse).max() > 0.05  # the random network does change the alpha
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    band = trimap_from_alpha(coarse, radius=2) == 128
    banded = Refiner(engine, tile=16).refine(rgb, coarse, band)
    np.testing.assert_array_equal(banded[~band], coarse[~band])
    np.testing.assert_allclose(banded[band], whole[band], atol=1e-5)


def test_refiner_rejects_an_ordinary_matting_engine(mediapipe_manifest_path):
    from livematte.errors import EngineError

    with pytest.raises(EngineError, match="not a refinement engine"):
        Refiner(mediapipe_manifest_path)


# --- temporal ---------------------------------------------------------------

def test_stabiliser_reduces_flicker_on_a_static_noisy_clip():
    root = DATA / "adobe-comp1k-foamliu-samples"
    if not root.is_dir():
        pytest.skip(f"{root} not available")
    rgb = read_rgb(root / "image" / "0.png")[:160, :160]
    gt = read_grey(root / "alpha" / "0.png")[:160, :160].astype(np.float32) / 255.0
    trimap = trimap_from_alpha(gt, radius=4)
    rng = np.random.default_rng(0)
    stabiliser = TemporalStabiliser()
    raw, stable = [], []
    for _ in range(6):
        noisy = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
        alpha = solve_alpha(noisy, trimap)
        raw.append(alpha)
        stable.append(stabiliser(noisy, alpha))
    static_gt = [gt] * len(raw)
    assert dtssd(stable, static_gt) < 0.6 * dtssd(raw, static_gt)


def test_stabiliser_follows_a_moving_edge_without_lag():
    stabiliser = TemporalStabiliser()
    for shift in (0, 10, 20):
        alpha = ramp_alpha(40, 100, 40 + shift, 42 + shift)
        rgb = np.repeat((alpha * 255).astype(np.uint8)[..., None], 3, axis=2)
        out = stabiliser(rgb, alpha)
    assert np.abs(out - alpha).max() < 0.05


# --- the QualityMatter wrapper ---------------------------------------------

@pytest.fixture(scope="module")
def portrait():
    root = DATA / "aisegment-matting-human-samples"
    if not root.is_dir():
        pytest.skip(f"{root} not available")
    image = sorted((root / "image").glob("*.png"))[0]
    return read_rgb(image)[::2, ::2].copy(), read_grey(root / "alpha" / image.name)[::2, ::2].copy()


def test_quality_matter_re_solves_the_band_of_the_mediapipe_matte(mediapipe_manifest, portrait):
    rgb, gt = portrait
    coarse = Matter(mediapipe_manifest).infer(rgb).alpha
    result = QualityMatter(Matter(mediapipe_manifest), method="closed-form").infer(rgb)
    assert result.alpha.shape == gt.shape and result.foreground.shape == rgb.shape
    assert result.alpha.dtype == np.float32 and 0.0 <= result.alpha.min() and result.alpha.max() <= 1.0
    assert set(result.timings) == {"coarse", "quality"}
    assert sad(result.alpha, gt) < sad(coarse, gt)


def test_pool_results_are_ordered_and_equal_to_in_process_results(mediapipe_manifest, portrait, tmp_path):
    rgb, _ = portrait
    frames = [rgb, rgb[:, ::-1].copy(), np.roll(rgb, 15, axis=1)]
    engine = write_conv_refiner(tmp_path)
    serial = QualityMatter(Matter(mediapipe_manifest), method="both", refine_engine=engine)
    pooled = QualityMatter(Matter(mediapipe_manifest), method="both", refine_engine=engine, workers=2)
    try:
        expected = [serial.infer(f).alpha for f in frames]
        got = [r.alpha for r in pooled.imap(frames)]
    finally:
        pooled.close()
    assert len(got) == len(frames)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, atol=1e-5)


def test_unknown_method_and_missing_engine_are_clear_errors(mediapipe_manifest, tmp_path):
    with pytest.raises(ValueError, match="method"):
        QualityMatter(Matter(mediapipe_manifest), method="sharpest")
    from livematte.errors import EngineError
    with pytest.raises(EngineError):
        QualityMatter(Matter(mediapipe_manifest), method="refine", refine_engine=tmp_path / "none.json")


# --- feeding the pipeline ---------------------------------------------------

def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "0"}
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def test_parallel_stage_hands_on_every_frame_in_order_with_its_own_matte(mediapipe_manifest, portrait, tmp_path):
    import time

    from livematte.sources import open_source
    from livematte.stages import ParallelMatteStage, Work

    rgb, _ = portrait
    rgb = rgb[:240, :300].copy()
    clip = tmp_path / "clip.mp4"
    write_clip(clip, [np.roll(rgb, 4 * i, axis=1) for i in range(5)])
    parallel = QualityMatter(Matter(mediapipe_manifest), method="closed-form", workers=2)
    serial = QualityMatter(Matter(mediapipe_manifest), method="closed-form")
    try:
        with open_source(str(clip)) as source:
            frames = [Work(frame, time.monotonic()) for frame in source]
        done = list(ParallelMatteStage(parallel).run(iter(frames)))
        assert [work.frame.index for work in done] == [0, 1, 2, 3, 4]
        for work in done:  # each frame leaves with the matte of its own pixels
            np.testing.assert_allclose(work.matte.alpha, serial.infer(work.frame.rgb).alpha, atol=1e-5)
    finally:
        parallel.close()
        serial.close()


def test_cli_quality_mode_high_end_to_end(mediapipe_manifest_path, portrait, tmp_path):
    from livematte.cli import main

    rgb, _ = portrait
    rgb = rgb[:240, :300].copy()
    clip = tmp_path / "clip.mp4"
    write_clip(clip, [np.roll(rgb, 3 * i, axis=1) for i in range(3)])
    mattes = {}
    for mode in ("realtime", "high"):
        out_dir = tmp_path / f"matte-{mode}"
        argv = ["process", str(clip), str(tmp_path / f"{mode}.mp4"), "--model", str(mediapipe_manifest_path),
                "--matte-out", str(out_dir), "--quality", mode, "--quality-method", "both",
                "--quality-workers", "1", "-q"]
        assert main(argv) == 0
        assert (tmp_path / f"{mode}.mp4").stat().st_size > 0
        mattes[mode] = [read_grey(p) for p in sorted(out_dir.glob("*.png"))]
    assert len(mattes["high"]) == len(mattes["realtime"]) == 3
    changed = [np.mean(h != r) for h, r in zip(mattes["high"], mattes["realtime"])]
    assert all(0.005 < c < 0.5 for c in changed)  # the band was re-solved, the rest kept



def test_quality_mode_without_the_extra_says_what_to_install(tmp_path):
    import subprocess
    import sys

    from tests.media_helpers import cli_env, leftovers, one_error_line, write_clip as write_test_clip, \
        write_keyer_engine

    clip = write_test_clip(tmp_path / "in.mp4", frames=4)
    keyer = write_keyer_engine(tmp_path)
    out = tmp_path / "out.mp4"
    # None in sys.modules makes "import pymatting" fail as if it were not installed
    hide = ("import runpy, sys; sys.modules['pymatting'] = None; "
            "sys.argv = ['livematte'] + sys.argv[1:]; runpy.run_module('livematte', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", hide, "process", str(clip), str(out), "--model", str(keyer),
                             "--quality", "high"], capture_output=True, text=True, timeout=120, env=cli_env())
    assert result.returncode == 4
    assert "pip install 'livematte[quality]'" in one_error_line(result.stderr)
    assert not out.exists() and leftovers(tmp_path) == []
