"""The --preview window's keys, as a table from key to action on the live controls."""
from __future__ import annotations

import pytest

from livematte.live_controls import MAX_BLUR, LiveControls, initial_state
from livematte.matte_adjust import MatteSettings
from livematte.preview_keys import PREVIEW_KEYS, apply_key, keys_help


@pytest.fixture()
def controls() -> LiveControls:
    live = LiveControls(initial_state("blur:20", MatteSettings(threshold=0.1)), (32, 24))
    yield live
    live.close()


@pytest.mark.parametrize("key, field, expected", [
    ("T", "threshold", 0.15), ("t", "threshold", 0.05), ("F", "feather", 1.0), ("S", "smoothing", 0.1),
    ("B", "blur", 25), ("b", "blur", 15), (" ", "paused", True),
])
def test_each_key_changes_its_setting(controls: LiveControls, key: str, field: str, expected: object) -> None:
    assert apply_key(ord(key), controls)
    assert controls.state.as_json()[field] == pytest.approx(expected)


def test_steps_stop_at_the_limits_and_r_resets(controls: LiveControls) -> None:
    for _ in range(60):
        apply_key(ord("B"), controls)
        apply_key(ord("f"), controls)
        apply_key(ord("t"), controls)
    state = controls.state.as_json()
    assert (state["blur"], state["feather"], state["threshold"]) == (MAX_BLUR, 0.0, 0.0)
    apply_key(ord(" "), controls)
    apply_key(ord("r"), controls)
    assert controls.state.as_json() == {"background": "blur", "blur": 20, "paused": False,
                                        "threshold": 0.1, "feather": 0.0, "smoothing": 0.0}


def test_unbound_keys_do_nothing_and_help_lists_every_key(controls: LiveControls) -> None:
    before = controls.state
    assert not apply_key(ord("x"), controls) and not apply_key(0xFF, controls)
    assert controls.state == before
    assert all(f"{'space' if key == ' ' else key}: " in keys_help() for key in PREVIEW_KEYS)
