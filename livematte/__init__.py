"""livematte: real-time human matting for live video.

The Python API (see the README's "Python API")::

    import livematte
    livematte.process("talk.mp4", "out.mp4", background="bokeh")   # a whole job, as the CLI runs it
    with livematte.Matter() as matter:                               # frame by frame
        result = matter.infer(rgb)                                   # a MatteResult: result.alpha ...

The names below are imported on first use, so ``import livematte`` stays
cheap (the CLI starts without loading OpenCV or ONNX Runtime).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "process": "livematte.api",
    "run_job": "livematte.api",
    "Matter": "livematte.engine",
    "MatteResult": "livematte.engine",
    "Background": "livematte.backgrounds",
    "parse_background": "livematte.backgrounds",
    "register_background": "livematte.backgrounds",
    "Compositor": "livematte.compositor",
    "open_source": "livematte.sources",
    "open_sink": "livematte.sinks",
    "PipelineResult": "livematte.pipeline",
    "write_sample": "livematte.sample",
    "LivematteError": "livematte.errors",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:
    from livematte.api import process, run_job
    from livematte.backgrounds import Background, parse_background, register_background
    from livematte.compositor import Compositor
    from livematte.engine import Matter, MatteResult
    from livematte.errors import LivematteError
    from livematte.pipeline import PipelineResult
    from livematte.sample import write_sample
    from livematte.sinks import open_sink
    from livematte.sources import open_source


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'livematte' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
