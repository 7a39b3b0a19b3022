"""Offline quality mode (``livematte process --quality high``): slower, better edges.

:class:`QualityMatter` wraps the real-time engine: its coarse matte seeds an
unknown band that closed-form matting (:mod:`.closed_form`) and/or the DIM
refinement engine (:mod:`.refine`) re-solve, with foreground colours
unmixed and a temporal stabiliser (:mod:`.temporal`) against flicker.

The names below are imported on first use (PEP 562), so the light modules
(:mod:`.band`, which training's pseudo alphas use too) load without the
``[quality]`` extra's pymatting and numba, and without their seconds of
import time.
"""
from __future__ import annotations

from typing import Any

__all__ = ["METHODS", "QualityMatter"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from livematte.quality import offline

        return getattr(offline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
