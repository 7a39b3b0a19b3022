"""Finding engines by name (the installed ``livematte_engines`` package) or by path.

Shipped engines are data files, so they are located with
:mod:`importlib.resources` rather than relative to this source file; that
keeps working from a wheel, an editable install or a source checkout.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path

from livematte.errors import EngineError, Hint
from livematte.manifest import EngineManifest, Role, load_manifest, validate_against_graph

#: the engine used when ``--model`` is not given
DEFAULT_ENGINE = "lm-live"

_PACKAGE = "livematte_engines"


def engines_dir() -> Path | None:
    """The directory holding the shipped engines, or None when none is installed.

    Uses the installed ``livematte_engines`` package; when running from a
    source checkout without ``pip install`` it falls back to the checkout's
    ``engines/`` directory, which is what that package maps to.
    """
    try:
        root = importlib.resources.files(_PACKAGE)
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[1] / "engines"
        return checkout if (checkout / "__init__.py").is_file() else None
    return Path(str(root))


def list_engines() -> list[EngineManifest]:
    """Every installed engine's manifest, sorted by name (graphs are not opened)."""
    root = engines_dir()
    if root is None:
        return []
    return sorted((load_manifest(p) for p in root.glob("*.json")), key=lambda m: m.name)


def _looks_like_path(name_or_path: str) -> bool:
    p = Path(name_or_path)
    return p.suffix.lower() in (".onnx", ".json") or len(p.parts) > 1 or p.exists()


def find_engine(name_or_path: str) -> EngineManifest:
    """Load and validate a matting engine given its registry name or an .onnx/.json path.

    Validation against the graph happens here, once, so a manifest that does
    not match its ONNX is reported before any video is opened.
    """
    if _looks_like_path(name_or_path):
        manifest = load_manifest(name_or_path)
    else:
        engines = {m.name: m for m in list_engines()}
        if name_or_path not in engines:
            raise _unknown_engine(name_or_path, sorted(engines))
        manifest = engines[name_or_path]
    if manifest.role is not Role.MATTING:
        raise EngineError(f"engine {manifest.name!r} is a {manifest.role.value} engine, not a matting engine: "
                          "it cannot matte frames on its own")
    validate_against_graph(manifest)
    return manifest


def _unknown_engine(name: str, installed: list[str]) -> EngineError:
    if name == DEFAULT_ENGINE and not installed:
        return EngineError(f"the default engine {DEFAULT_ENGINE!r} is not installed and no other engine is",
                           hint=Hint("model", "path/to/model.onnx", "with its .json manifest beside it"))
    if name == DEFAULT_ENGINE:
        return EngineError(f"the default engine {DEFAULT_ENGINE!r} is not installed",
                           hint=Hint("model", "NAME", f"with NAME one of: {', '.join(installed)}"))
    if not installed:
        return EngineError(f"unknown engine {name!r}: no engines are installed; "
                           "give a path to an .onnx with its .json manifest")
    return EngineError(f"unknown engine {name!r}; installed engines: {', '.join(installed)}")
