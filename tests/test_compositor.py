"""Exact compositing over every background kind, RGBA output, spill removal and smoothing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.backgrounds import parse_background
from livematte.compositor import Compositor, TemporalSmoother, alpha_to_u8
from livematte.frame import Size

SHAPE = (90, 160)         # (height, width) of the frames
SIZE = Size(160, 90)      # the same as the compositor's (width, height)


def _frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*SHAPE, 3), dtype=np.uint8)


def _alpha() -> np.ndarray:
    """Left third 0, right third 1, a soft ramp between."""
    ramp = np.clip((np.arange(SHAPE[1]) - 53) / 54.0, 0.0, 1.0).astype(np.float32)
    return np.repeat(ramp[None], SHAPE[0], axis=0)


def _kinds(image_path, video_path):
    return ["#102030", str(image_path), str(video_path), "blur:9", "bokeh:9"]


@pytest.mark.parametrize("decontaminate", [True, False])
def test_alpha_zero_is_background_and_alpha_one_is_frame(image_path, video_path, decontaminate):
    rgb, alpha = _frame(), _alpha()
    for spec in _kinds(image_path, video_path):
        compositor = Compositor(spec, SIZE, decontaminate=decontaminate)
        background = parse_background(spec).render(rgb, alpha_to_u8(alpha))  # the same first background frame
        out = compositor.compose(rgb, alpha)
        assert out.shape == (*SHAPE, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out[alpha == 0], background[alpha == 0], err_msg=spec)
        np.testing.assert_array_equal(out[alpha == 1], rgb[alpha == 1], err_msg=spec)
        soft = (alpha > 0) & (alpha < 1)
        lo = np.minimum(rgb, background)[soft].astype(int)
        hi = np.maximum(rgb, background)[soft].astype(int)
        if not decontaminate:  # a plain mix stays between its two sources
            assert ((out[soft] >= lo - 1) & (out[soft] <= hi + 1)).all()
        compositor.close()


def test_transparent_gives_rgba_with_the_alpha():
    rgb, alpha = _frame(), _alpha()
    for decontaminate in (True, False):
        compositor = Compositor("transparent", SIZE, decontaminate=decontaminate)
        assert compositor.channels == 4
        out = compositor.compose(rgb, alpha)
        assert out.shape == (*SHAPE, 4) and out.dtype == np.uint8
        np.testing.assert_array_equal(out[..., 3], np.round(alpha * 255).astype(np.uint8))
        np.testing.assert_array_equal(out[..., :3][alpha == 1], rgb[alpha == 1])


def test_decontamination_removes_green_spill_on_a_known_edge():
    foreground = np.array([200, 170, 140], np.float32)   # skin-like, known exactly
    old_bg, new_bg = np.array([0, 255, 0], np.float32), np.array([40, 40, 200], np.float32)
    alpha = _alpha()
    a = np.round(alpha * 255) / 255
    frame = np.round(a[..., None] * foreground + (1 - a[..., None]) * old_bg).astype(np.uint8)
    ideal = a[..., None] * foreground + (1 - a[..., None]) * new_bg
    soft = (alpha > 0) & (alpha < 1)

    errors = {}
    for decontaminate in (True, False):
        out = Compositor("#2828c8", SIZE, decontaminate=decontaminate).compose(frame, alpha)
        errors[decontaminate] = np.abs(out.astype(np.float32) - ideal)[soft].mean()
    assert errors[True] < 0.2 * errors[False], errors
    assert errors[True] < 3.0


def test_a_solved_foreground_gives_the_exact_edge_colours():
    # a textured old background that the smooth spill estimate cannot know: only the given F recovers the colours
    rng = np.random.default_rng(3)
    alpha = _alpha()
    a = (np.round(alpha * 255) / 255)[..., None]
    foreground = rng.integers(0, 256, (*alpha.shape, 3)).astype(np.uint8)
    old_bg = rng.integers(0, 256, (*alpha.shape, 3)).astype(np.float32)
    new_bg = np.array([40, 40, 200], np.float32)
    frame = np.round(a * foreground + (1 - a) * old_bg).astype(np.uint8)
    ideal = a * foreground + (1 - a) * new_bg
    soft = (alpha > 0) & (alpha < 1)
    compositor = Compositor("#2828c8", SIZE)
    given = compositor.compose(frame, alpha, foreground.astype(np.float32) / 255.0)
    estimated = compositor.compose(frame, alpha)
    error = lambda out: np.abs(out.astype(np.float32) - ideal)[soft].mean()
    assert error(given) < 1.0
    assert error(given) < 0.5 * error(estimated)
    rgba = Compositor("transparent", SIZE).compose(frame, alpha, foreground)
    np.testing.assert_array_equal(rgba[..., :3][soft], foreground[soft])
    with pytest.raises(ValueError, match="foreground"):
        compositor.compose(frame, alpha, foreground[:10])


def test_smoothing_damps_flicker_but_follows_motion():
    rng = np.random.default_rng(1)
    base = np.full((40, 40), 128, np.uint8)
    smoother = TemporalSmoother(strength=0.6, threshold=24)
    raw, smoothed = [], []
    for _ in range(10):
        noisy = np.clip(base.astype(int) + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)
        raw.append(noisy)
        smoothed.append(smoother(noisy))
    jitter = lambda seq: np.mean([np.abs(x.astype(int) - y).mean() for x, y in zip(seq[1:], seq[:-1])])
    assert jitter(smoothed) < 0.6 * jitter(raw)
    moved = np.zeros_like(base)
    np.testing.assert_array_equal(smoother(moved), moved)  # a 128-level jump is motion, not flicker


def test_size_mismatch_is_refused():
    with pytest.raises(ValueError, match="do not match"):
        Compositor("black", SIZE).compose(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.float32))


def test_blend_covers_every_soft_pixel_of_a_real_matte(soft_alpha_samples):
    # a real hair matte at 720p: the blend runs tile by tile, and no soft pixel may be missed
    rgb, gt = soft_alpha_samples[-1]
    rgb, a = cv2.resize(rgb, (1280, 720)), cv2.resize(gt, (1280, 720))
    out = Compositor("#2828c8", (1280, 720), decontaminate=False).compose(rgb, a)
    w = a[..., None].astype(np.float64) / 255.0
    expected = w * rgb + (1.0 - w) * np.array([40, 40, 200], np.float64)
    assert ((a > 0) & (a < 255)).mean() > 0.02  # the matte really is soft in places
    assert np.abs(out - expected).max() <= 1.0  # two roundings of half a level each


def test_a_solved_foreground_leaves_the_blurred_background_to_the_frame():
    # --quality high passes the solved foreground; the blur behind the person must still come from the frame
    rng = np.random.default_rng(5)
    frame, alpha = _frame(4), _alpha()
    foreground = rng.integers(0, 256, frame.shape).astype(np.uint8)
    compositor = Compositor("blur:9", SIZE)
    with_foreground = compositor.compose(frame, alpha, foreground)
    plain = compositor.compose(frame, alpha)
    np.testing.assert_array_equal(with_foreground[alpha == 0], plain[alpha == 0])


def test_size_is_width_by_height_and_shape_is_height_by_width():
    frame = np.zeros((*SHAPE, 3), np.uint8)
    size = Size.of(frame)
    assert size == SIZE and (size.width, size.height) == (160, 90) and str(size) == "160x90"
    assert size.shape == frame.shape[:2] == SHAPE
    # a portrait frame is not a landscape one: the compositor refuses the transposed size
    with pytest.raises(ValueError, match="frame 160x90 / alpha 160x90 do not match compositor size 90x160"):
        Compositor("black", Size(90, 160)).compose(frame, np.zeros(SHAPE, np.float32))
    assert Compositor("black", size).compose(frame, np.zeros(SHAPE, np.float32)).shape == frame.shape
