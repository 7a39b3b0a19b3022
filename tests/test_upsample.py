"""Alpha upsamplers on real photos with real soft ground-truth mattes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.metrics import gradient_error, sad
from livematte.resize import shrink
from livematte.upsample import GuidedUpsampler, bilinear_upsample, make_upsampler


def _shrink(alpha: np.ndarray, side: int = 256) -> np.ndarray:
    h, w = alpha.shape
    scale = side / max(h, w)
    return cv2.resize(alpha, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def test_guided_beats_bilinear_on_real_hair_mattes(soft_alpha_samples):
    # the alphamatting.com samples: real hair/fur mattes, where edges matter most
    hair = soft_alpha_samples[-2:]
    guided = GuidedUpsampler()
    for rgb, gt in hair:
        alpha = gt.astype(np.float32) / 255.0
        low = _shrink(alpha)
        g, b = guided(low, rgb), bilinear_upsample(low, rgb)
        assert g.shape == b.shape == alpha.shape and g.dtype == np.float32
        assert sad(g, alpha) < 0.9 * sad(b, alpha)
        assert gradient_error(g, alpha) < 0.7 * gradient_error(b, alpha)


def test_output_range_dtype_and_uint8_input(soft_alpha_samples):
    rgb, gt = soft_alpha_samples[0]
    low_u8 = _shrink(gt)
    out = GuidedUpsampler()(low_u8, rgb)
    assert out.dtype == np.float32 and out.shape == gt.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    # flat regions stay exactly flat: alpha 0 and 1 far from the edge survive
    assert out[gt == 0].mean() < 0.01 and out[gt == 255].mean() > 0.99


def test_small_guide_shortcut_gives_the_same_answer(soft_alpha_samples):
    rgb, gt = soft_alpha_samples[-1]
    low = _shrink(gt.astype(np.float32) / 255.0)
    small = shrink(rgb, low.shape[1], low.shape[0])
    up = GuidedUpsampler()
    np.testing.assert_allclose(up(low, rgb, small), up(low, rgb), atol=1e-6)


def test_make_upsampler_names():
    assert isinstance(make_upsampler("guided"), GuidedUpsampler)
    assert make_upsampler("bilinear") is bilinear_upsample
    with pytest.raises(ValueError):
        make_upsampler("bicubic")


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)])
def test_colour_model_on_edge_tiles_equals_the_whole_frame(soft_alpha_samples, size):
    # the model is evaluated only on tiles near edges: that must change nothing anywhere
    rgb, gt = soft_alpha_samples[-1]
    frame = cv2.resize(rgb, size)
    low = cv2.resize(gt, (256, 144), interpolation=cv2.INTER_AREA)
    up = GuidedUpsampler()
    coeffs = up.coefficients(low, shrink(frame, 256, 144))
    assert (np.abs(coeffs[..., :3]).sum(axis=2) > 0).mean() < 0.5  # there are flat tiles to skip
    everywhere = cv2.resize(coeffs, size, interpolation=cv2.INTER_LINEAR)
    rgba = cv2.cvtColor(frame, cv2.COLOR_RGB2RGBA).astype(np.float32)
    expected = np.clip((everywhere * rgba).sum(axis=2), 0.0, 1.0)
    np.testing.assert_allclose(up(low, frame), expected, atol=1e-5)
