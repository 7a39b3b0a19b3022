"""What an engine of one model family looks like, declared beside the family's class.

The exporter (``training/export.py``) is the same for every family; what
differs (the role, a coarse-alpha input, the receptive radius a tiled
refinement needs, what the weights started from and under which licence)
is declared here by each class, so a new family adds its spec, not a second
exporter.
"""
from __future__ import annotations

from dataclasses import dataclass

from livematte.manifest import Role


@dataclass(frozen=True)
class EngineSpec:
    """``family``: the design, for the manifest's description; ``initialisation``:
    what the weights started from; ``initialisation_licence``: that
    starting point's licence (``None`` when it was random); ``coarse``: the
    graph takes a coarse alpha after the image (refinement engines);
    ``receptive_radius``: pixels of context per output pixel (refinement)."""

    family: str
    initialisation: str
    initialisation_licence: str | None = None
    role: Role = Role.MATTING
    coarse: bool = False
    receptive_radius: int | None = None


#: the initialisation of every family trained from scratch
RANDOM_INITIALISATION = "random (trained from scratch)"
