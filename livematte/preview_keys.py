"""Keyboard shortcuts of the ``--preview`` window: the live controls from the keyboard.

The window itself cannot be tested without a desktop, so the keys are a
plain table from key to action on :class:`~livematte.live_controls.LiveControls`,
tested on its own; the window only passes the key it got.
Steps past a limit are clamped to it, so holding a key never errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from livematte.live_controls import MAX_BLUR, LiveControls
from livematte.matte_adjust import MAX_FEATHER, MAX_SMOOTHING


@dataclass(frozen=True)
class KeyAction:
    """What a key does: a description for ``--help`` and the change it makes to the controls."""

    description: str
    apply: Callable[[LiveControls], object]


def _step(name: str, delta: float, low: float, high: float) -> Callable[[LiveControls], object]:
    """Move setting ``name`` by ``delta``, clamped to [low, high] (whole numbers stay whole)."""

    def apply(controls: LiveControls) -> object:
        value = min(high, max(low, controls.state.as_json()[name] + delta))
        return controls.update({name: round(value, 3) if isinstance(delta, float) else int(value)})

    return apply


#: key -> action; keys are the characters ``cv2.waitKey`` returns (masked to 8 bits)
PREVIEW_KEYS: dict[str, KeyAction] = {
    " ": KeyAction("pause / resume the matte (camera passed through)",
                   lambda controls: controls.update({"paused": not controls.state.paused})),
    "t": KeyAction("threshold -0.05", _step("threshold", -0.05, 0.0, 0.95)),
    "T": KeyAction("threshold +0.05", _step("threshold", +0.05, 0.0, 0.95)),
    "f": KeyAction("feather -1 px", _step("feather", -1.0, 0.0, MAX_FEATHER)),
    "F": KeyAction("feather +1 px", _step("feather", +1.0, 0.0, MAX_FEATHER)),
    "s": KeyAction("smoothing -0.1", _step("smoothing", -0.1, 0.0, MAX_SMOOTHING)),
    "S": KeyAction("smoothing +0.1", _step("smoothing", +0.1, 0.0, MAX_SMOOTHING)),
    "b": KeyAction("blur strength -5 px", _step("blur", -5, 1, MAX_BLUR)),
    "B": KeyAction("blur strength +5 px", _step("blur", +5, 1, MAX_BLUR)),
    "r": KeyAction("back to the settings it started with", LiveControls.reset),
}


def apply_key(key: int, controls: LiveControls) -> bool:
    """Apply the action bound to ``key`` (a ``cv2.waitKey`` code); False when the key means nothing."""
    action = PREVIEW_KEYS.get(chr(key & 0xFF))
    if action is None:
        return False
    action.apply(controls)
    return True


def keys_help() -> str:
    """One line per key, for ``--help`` and the README."""
    shown = {" ": "space"}
    return "; ".join(f"{shown.get(key, key)}: {action.description}" for key, action in PREVIEW_KEYS.items())
