"""Build a model from its registry name and a config dict."""
from __future__ import annotations

from typing import Any, Callable

from .base import MattingNet
from .disentangled import DisentangledMatting, SeededDisentangledMatting
from .shm import SHM

_BUILDERS: dict[str, Callable[..., MattingNet]] = {
    "shm-mobile": lambda **kw: SHM("mobile", **kw),
    "shm-large": lambda **kw: SHM("large", **kw),
    "disentangled-mobile": lambda **kw: DisentangledMatting("mobile", **kw),
    "disentangled-large": lambda **kw: DisentangledMatting("large", **kw),
    "disentangled-mediapipe": lambda **kw: SeededDisentangledMatting(**kw),
}


def model_names() -> list[str]:
    return sorted(_BUILDERS)


def build_model(name: str, **config: Any) -> MattingNet:
    """``config`` holds the constructor's keyword arguments (e.g. ``hidden``, ``teacher_onnx``)."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(model_names())}") from None
    return builder(**config)
