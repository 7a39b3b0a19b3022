"""Training configuration: a JSON file, read into dataclasses.

Paths in a config are relative to the repository root, so the shipped
configs work from any clone that has ``../shared`` beside it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .data.clips import ClipConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class StageConfig:
    """One phase of the schedule (SHM/AdaMatting: trimap, alpha, then end to end).

    ``train`` names the parameter groups that learn in this stage
    (``trimap``, ``alpha``, ``recurrent``); ``losses`` maps loss names to
    weights (``trimap``, ``alpha``, ``alpha_unknown``, ``comp``, ``temporal``,
    ``distill``, ``segmentation``: the matte against the hand-labelled masks); with ``uncertainty`` the trimap and alpha terms are
    balanced by learned variances instead of their fixed weights.
    ``lr_scale`` multiplies ``lr`` per group (e.g. ``{"pretrained": 0.1}``:
    pretrained weights fine-tuned gently while new heads learn fast).
    ``ema`` (0 < ema < 1) keeps an exponential moving average of the weights
    with that decay and ends the stage on the average instead of the last
    step's weights, which a small data set makes noisy."""

    name: str
    steps: int
    batch: int = 8
    clip_length: int = 1
    lr: float = 1e-3
    train: list[str] = field(default_factory=lambda: ["trimap", "alpha", "recurrent"])
    losses: dict[str, float] = field(default_factory=lambda: {"alpha": 1.0, "trimap": 0.01})
    uncertainty: bool = False
    lr_scale: dict[str, float] = field(default_factory=dict)
    ema: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"stage {self.name}: ema must be in [0, 1), not {self.ema}")


@dataclass
class TrainConfig:
    name: str
    model: str
    model_args: dict[str, Any] = field(default_factory=dict)
    portraits: str = "../shared/data/eg1800-train"
    backgrounds: str = "../shared/data/backgrounds"
    teacher: str | None = None
    #: soft training alphas: "closed-form" (pseudo_alpha) or "teacher" (teacher_alpha,
    #: MODNet fused with the masks; ``label_args`` may set scales, flip, band, tolerance)
    labels: str = "closed-form"
    label_args: dict[str, Any] = field(default_factory=dict)
    holdout: int = 64
    #: real video with a mask on every frame (``davis-person``) and the sequences
    #: trained on; the evaluation reports only on the others
    videos: str | None = None
    video_sequences: list[str] = field(default_factory=list)
    limit_portraits: int | None = None
    clip: dict[str, Any] = field(default_factory=dict)
    #: weights to start from: the ``final.pt`` of another run of the same model
    #: (a larger engine fine-tuned from the real-time one at higher resolution)
    init_checkpoint: str | None = None
    #: (H, W) input sizes the engine is trained at and exported for, one per
    #: aspect ratio (the runtime picks the nearest to each frame's); empty:
    #: the single ``clip.size``
    sizes: list[list[int]] = field(default_factory=list)
    stages: list[StageConfig] = field(default_factory=list)
    seed: int = 0
    workers: int = 1
    log_every: int = 10
    val_every: int = 200
    ckpt_every: int = 50

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        raw = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        raw["stages"] = [StageConfig(**s) for s in raw.get("stages", [])]
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolve(self, path: str | None) -> Path | None:
        """A config path made absolute against the repository root."""
        if path is None:
            return None
        p = Path(path)
        return p if p.is_absolute() else (REPO_ROOT / p).resolve()

    def clip_config(self, length: int) -> ClipConfig:
        return ClipConfig(**{**self.clip, "length": length})

    def input_sizes(self) -> list[tuple[int, int]]:
        """Every (H, W) the model trains at: ``sizes``, or the clip size alone."""
        return [tuple(s) for s in self.sizes] or [tuple(self.clip_config(1).size)]

    def resolved_model_args(self) -> dict[str, Any]:
        """Model arguments with file paths (``*_onnx``) made absolute."""
        return {k: str(self.resolve(v)) if k.endswith("_onnx") else v for k, v in self.model_args.items()}
