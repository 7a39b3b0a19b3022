"""Matting metrics against cases small enough to work out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from livematte import metrics


# --- SAD / MSE ---------------------------------------------------------------

PRED = np.array([[0.0, 0.5], [1.0, 0.25]])
GT = np.array([[0.0, 1.0], [0.5, 0.25]])
# |PRED - GT| = [[0, .5], [.5, 0]]: SAD = 1.0 / 1000, MSE = (.25 + .25) / 4


def test_sad_and_mse_by_hand():
    assert metrics.sad(PRED, GT) == pytest.approx(0.001)
    assert metrics.mse(PRED, GT) == pytest.approx(0.125)


def test_mask_restricts_to_evaluated_pixels():
    mask = np.array([[False, True], [False, False]])
    assert metrics.sad(PRED, GT, mask) == pytest.approx(0.0005)
    assert metrics.mse(PRED, GT, mask) == pytest.approx(0.25)


def test_empty_mask_scores_zero():
    empty = np.zeros((2, 2), dtype=bool)
    assert metrics.sad(PRED, GT, empty) == 0.0
    assert metrics.mse(PRED, GT, empty) == 0.0


def test_unknown_region_is_trimap_128():
    trimap = np.array([[0, 128], [255, 128]], dtype=np.uint8)
    np.testing.assert_array_equal(
        metrics.unknown_region(trimap), [[False, True], [False, True]]
    )
    # |PRED - GT| on the unknown pixels: .5 and 0
    assert metrics.sad(PRED, GT, metrics.unknown_region(trimap)) == pytest.approx(0.0005)


# --- input handling ----------------------------------------------------------


def test_uint8_and_float_inputs_agree():
    rng = np.random.default_rng(0)
    pred8 = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    gt8 = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    mask = rng.random((40, 50)) > 0.5
    from_uint8 = metrics.evaluate_pair(pred8, gt8, mask)
    from_float = metrics.evaluate_pair(pred8 / 255.0, (gt8 / 255.0).astype(np.float32), mask)
    assert from_uint8.keys() == {"SAD", "MSE", "Grad", "Conn", "IoU"}
    for key, value in from_uint8.items():
        assert from_float[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
    assert from_uint8["SAD"] > 0


def test_channel_axis_of_one_is_accepted():
    assert metrics.sad(PRED[:, :, None], GT) == pytest.approx(0.001)


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.sad(np.zeros((2, 3)), np.zeros((3, 2))),
        lambda: metrics.evaluate_pair(np.zeros((4, 4)), np.zeros((4, 5))),
        lambda: metrics.dtssd(np.zeros((3, 4, 4)), np.zeros((3, 4, 5))),
        lambda: metrics.dtssd(np.zeros((3, 4, 4)), np.zeros((2, 4, 4))),
        lambda: metrics.mse(PRED, GT, np.ones((3, 3), dtype=bool)),
    ],
)
def test_shape_mismatch_raises(call):
    with pytest.raises(ValueError, match="shape"):
        call()


def test_float_matte_in_0_255_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.sad(PRED * 255.0, GT)


def test_trimap_as_mask_is_refused():
    trimap = np.full((2, 2), 128, dtype=np.uint8)
    with pytest.raises(ValueError, match="boolean"):
        metrics.sad(PRED, GT, trimap)


# --- Gradient ----------------------------------------------------------------


def _step_edge_amplitudes(width: int, edge: int, sigma: float) -> list[float]:
    """Gradient magnitude per column of a vertical 0->1 step, from the definition.

    The filter is g(y) g'(x) scaled to unit Frobenius norm, g the Gaussian
    density; kernel half-size for sigma 1.4 is
    ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4.
    Rows are identical, so the y-derivative is 0 and the x-response factors
    into (sum g) * (sum over v of g'(v) * I(x + v)), with I clamped at the
    image border. A direct loop, no filtering library.
    """
    half = 4
    g = [math.exp(-(v * v) / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))
         for v in range(-half, half + 1)]
    dg = [-v * g[v + half] / (sigma * sigma) for v in range(-half, half + 1)]
    norm = math.sqrt(sum(a * a for a in g)) * math.sqrt(sum(b * b for b in dg))
    amplitudes = []
    for x in range(width):
        response = 0.0
        for v in range(-half, half + 1):
            column = min(max(x + v, 0), width - 1)
            response += dg[v + half] * (1.0 if column >= edge else 0.0)
        amplitudes.append(abs(sum(g) * response) / norm)
    return amplitudes


def _step(height: int, width: int, edge: int) -> np.ndarray:
    alpha = np.zeros((height, width))
    alpha[:, edge:] = 1.0
    return alpha


def test_gradient_error_zero_for_identical():
    alpha = _step(12, 20, 9)
    assert metrics.gradient_error(alpha, alpha) == 0.0


def test_gradient_error_step_edge_vs_shifted_edge():
    height, width = 12, 30
    amp_gt = _step_edge_amplitudes(width, 14, 1.4)
    amp_pred = _step_edge_amplitudes(width, 15, 1.4)
    expected = height * sum((a - b) ** 2 for a, b in zip(amp_pred, amp_gt)) / 1000.0
    got = metrics.gradient_error(_step(height, width, 15), _step(height, width, 14))
    assert expected > 0
    assert got == pytest.approx(expected, rel=1e-9)


def test_gradient_error_mask_counts_only_masked_rows():
    height, width = 12, 30
    mask = np.zeros((height, width), dtype=bool)
    mask[:3] = True
    whole = metrics.gradient_error(_step(height, width, 15), _step(height, width, 14))
    part = metrics.gradient_error(_step(height, width, 15), _step(height, width, 14), mask)
    assert part == pytest.approx(whole * 3 / height)


# --- Connectivity ------------------------------------------------------------


def test_connectivity_zero_for_identical():
    alpha = np.linspace(0, 1, 30).reshape(5, 6)
    assert metrics.connectivity_error(alpha, alpha) == 0.0


def test_connectivity_split_matte_by_hand():
    # gt is solid foreground; pred has a 3x3 block of 1.0, a wall of 0 in
    # column 3 and a 3x2 island of 0.6. At every threshold the source region
    # is the 3x3 block (9 > 6 pixels), so the block keeps level l = 1 and the
    # wall and island drop at the first threshold: l = 0.
    #   block:  pred d = 0 -> phi 1;      gt d = 0 -> phi 1;  |diff| 0
    #   wall:   pred d = 0 -> phi 1;      gt d = 1 -> phi 0;  |diff| 1   x 3 px
    #   island: pred d = .6 -> phi .4;    gt d = 1 -> phi 0;  |diff| .4  x 6 px
    # total 3 + 2.4 = 5.4 -> / 1000
    gt = np.ones((3, 6))
    pred = np.ones((3, 6))
    pred[:, 3] = 0.0
    pred[:, 4:] = 0.6
    assert metrics.connectivity_error(pred, gt) == pytest.approx(0.0054)
    wall = np.zeros((3, 6), dtype=bool)
    wall[:, 3] = True
    assert metrics.connectivity_error(pred, gt, wall) == pytest.approx(0.003)


def test_connectivity_ignores_excess_below_theta():
    # Same layout with a faint island of 0.1: it still drops at the first
    # threshold (l = 0), but pred d = .1 < theta .15 -> phi 1 while gt d = 1
    # -> phi 0, so |diff| 1 x 6 px; the wall adds 3 as before: 9 -> / 1000.
    gt = np.ones((3, 6))
    pred = np.ones((3, 6))
    pred[:, 3] = 0.0
    pred[:, 4:] = 0.1
    assert metrics.connectivity_error(pred, gt) == pytest.approx(0.009)


def test_connectivity_uses_4_neighbourhood():
    # A 3x3 block of 1.0 and a 2x2 block of 0.9 that touch only at a corner,
    # zeros elsewhere, gt solid 1. With 4-connectivity the 2x2 block is never
    # in the source region: l = 0, pred d = .9 -> phi .1, gt d = 1 -> phi 0,
    # |diff| .1 x 4 px. The 12 zero pixels: pred phi 1, gt phi 0 -> 12.
    # Total 12.4 (8-connectivity would give l = .9 on the block and 12.0).
    pred = np.zeros((5, 5))
    pred[:3, :3] = 1.0
    pred[3:, 3:] = 0.9
    assert metrics.connectivity_error(pred, np.ones((5, 5))) == pytest.approx(0.0124)


def test_connectivity_step_must_divide_one():
    with pytest.raises(ValueError, match="step"):
        metrics.connectivity_error(PRED, GT, step=0.3)


# --- IoU ---------------------------------------------------------------------


def test_iou_by_hand():
    pred = np.array([[0.9, 0.6, 0.1, 0.0]])
    gt = np.array([[1.0, 0.0, 1.0, 0.0]])
    # person pixels: pred {0, 1}, gt {0, 2} -> 1 shared of 3
    assert metrics.iou(pred, gt) == pytest.approx(1 / 3)
    assert metrics.iou(pred, gt, threshold=0.7) == pytest.approx(1 / 2)
    assert metrics.iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


# --- Video -------------------------------------------------------------------

GT_CLIP = np.zeros((3, 1, 2))
PRED_CLIP = np.array([[[0.0, 0.0]], [[0.2, 0.0]], [[0.2, 0.4]]])


def test_dtssd_zero_for_temporally_constant_error():
    rng = np.random.default_rng(1)
    gt = rng.random((4, 8, 9)) * 0.8
    pred = gt + 0.1 * rng.random((8, 9))  # same error in every frame
    assert metrics.dtssd(pred, gt) == pytest.approx(0.0, abs=1e-12)
    assert metrics.dtssd(list(pred), list(gt)) == pytest.approx(0.0, abs=1e-12)


def test_dtssd_three_frames_by_hand():
    # temporal differences of the error: [.2, 0] then [0, .4]
    # frame RMS: sqrt((.04 + 0) / 2), sqrt((0 + .16) / 2); dtSSD is their mean
    expected = (math.sqrt(0.02) + math.sqrt(0.08)) / 2
    assert metrics.dtssd(PRED_CLIP, GT_CLIP) == pytest.approx(expected)


def test_messddt_three_frames_by_hand():
    # squared errors: [0, 0], [.04, 0], [.04, .16]
    # mean |E_t - E_{t-1}|: (.04 + 0) / 2 = .02 and (0 + .16) / 2 = .08 -> .05
    assert metrics.messddt(PRED_CLIP, GT_CLIP) == pytest.approx(0.05)


def test_messddt_follows_motion_vectors():
    # A 4x4 person square moves right by 1 px per frame; the prediction is
    # half as opaque, so its error (.25 on the square) moves with it.
    frames, height, width, side = 3, 10, 12, 4
    gt = np.zeros((frames, height, width))
    for t in range(frames):
        gt[t, 3:3 + side, 3 + t:3 + t + side] = 1.0
    pred = gt * 0.5
    # Pixel (x, y) of frame t sits at (x - 1, y) in frame t - 1.
    flow = np.zeros((height, width, 2), dtype=np.float32)
    flow[:, :, 0] = -1.0
    assert metrics.messddt(pred, gt, [flow] * (frames - 1)) == pytest.approx(0.0, abs=1e-12)
    # Without motion the error appears on one column and vanishes on another:
    # 2 columns x 4 px x .25 over 120 px, the same for both frame pairs.
    assert metrics.messddt(pred, gt) == pytest.approx(2 * side * 0.25 / (height * width))


def test_messddt_flow_count_checked():
    flow = np.zeros((1, 2, 2))
    with pytest.raises(ValueError, match="flows"):
        metrics.messddt(PRED_CLIP, GT_CLIP, [flow])


def test_video_metrics_need_two_frames():
    with pytest.raises(ValueError, match="2 frames"):
        metrics.dtssd(PRED_CLIP[:1], GT_CLIP[:1])
