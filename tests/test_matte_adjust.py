"""Threshold, feather and smoothing change the matte as their help says."""
from __future__ import annotations

import numpy as np
import pytest

from livematte.errors import InputError
from livematte.matte_adjust import MatteAdjuster, MatteSettings, smoothing_lag_frames


def adjust_once(matte: np.ndarray, **settings: float) -> np.ndarray:
    fixed = MatteSettings(**settings)
    return MatteAdjuster(lambda: fixed)(matte)


def test_threshold_cuts_below_and_stretches_the_rest() -> None:
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = adjust_once(ramp, threshold=0.4).ravel().astype(int)
    levels = np.arange(256)
    assert (out[levels < 0.4 * 255] == 0).all()
    assert out[255] == 255  # opaque stays opaque
    above = levels >= 0.4 * 255
    expected = np.round((levels[above] / 255 - 0.4) / 0.6 * 255)
    assert np.abs(out[above] - expected).max() <= 1
    assert (np.diff(out) >= 0).all()  # monotonic, continuous at the threshold


def test_feather_turns_a_hard_edge_into_a_ramp_of_that_width() -> None:
    edge = np.zeros((8, 200), np.uint8)
    edge[:, 100:] = 255
    row = adjust_once(edge, feather=12.0)[4].astype(float) / 255
    width = np.argmax(row >= 0.9) - np.argmax(row >= 0.1)
    assert width == pytest.approx(12, abs=1.5)
    hard = adjust_once(edge)[4].astype(float) / 255
    assert np.argmax(hard >= 0.9) - np.argmax(hard >= 0.1) == 0


def test_smoothing_delays_slow_changes_by_the_stated_lag_and_lets_motion_through() -> None:
    strength = 0.5
    adjuster = MatteAdjuster(lambda: MatteSettings(smoothing=strength))
    frames = [np.full((4, 4), 100, np.uint8)] + [np.full((4, 4), 120, np.uint8)] * 30
    outs = np.array([adjuster(f)[0, 0] for f in frames], float)
    step = (outs[1:] - 100) / 20  # response to a 20-level step (under the 24 motion threshold)
    mean_delay = np.sum(1 - step)  # mean delay of a step response, in frames
    assert mean_delay == pytest.approx(smoothing_lag_frames(strength), abs=0.25)
    jump = MatteAdjuster(lambda: MatteSettings(smoothing=strength))
    jump(np.zeros((4, 4), np.uint8))
    assert jump(np.full((4, 4), 200, np.uint8))[0, 0] == 200  # motion is not delayed


@pytest.mark.parametrize("settings", [{"threshold": 1.0}, {"threshold": -0.1}, {"feather": 51}, {"smoothing": 0.99},
                                      {"threshold": "0.2"}, {"feather": float("nan")}, {"smoothing": True}])
def test_out_of_range_settings_are_refused_with_the_name(settings: dict) -> None:
    with pytest.raises(InputError, match=next(iter(settings))):
        MatteSettings(**settings)


def test_settings_read_each_frame() -> None:
    current = {"settings": MatteSettings()}
    adjuster = MatteAdjuster(lambda: current["settings"])
    matte = np.full((2, 2), 50, np.uint8)
    assert adjuster(matte)[0, 0] == 50
    current["settings"] = MatteSettings(threshold=0.5)
    assert adjuster(matte)[0, 0] == 0
