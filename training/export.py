"""Export a trained model to an engine: ONNX graph + manifest.

    python -m training.export runs/lm-mobile-recurrent/final.pt --name lm-mobile-recurrent --out engines

The recurrent state becomes explicit graph inputs/outputs (the runtime feeds
each frame's state into the next), shapes are static at the training
resolution, opset 17 with ops TensorRT's ONNX parser takes. The export is
checked before anything is written under the requested name: ONNX Runtime
must reproduce torch within 1e-4 over several frames with the state carried,
and the TensorRT op check must pass.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

from livematte.errors import LivematteError
from livematte.manifest import EngineManifest, InputSpec, OutputSpec, OutputsSpec, StateSpec, load_manifest
from livematte.onnx_check import check_model
from livematte.torch_graph import OnnxTorchGraph

from .config import REPO_ROOT, TrainConfig
from .models.base import MattingNet
from .models.registry import build_model

OPSET = 17
TOLERANCE = 1e-4

LICENCE = (
    "Code: Apache-2.0. Weights: Google's MediaPipe selfie segmentation (landscape), Apache-2.0, with heads "
    "trained on EG1800 portraits (Shen et al. 2016), which carry no licence and are released for academic/research use "
    "only: these weights are for research use."
)


class ExportWrapper(nn.Module):
    """(src, h, c) -> (alpha, trimap probabilities, h', c') with no Python state."""

    def __init__(self, model: MattingNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = self.model(src, (h, c))
        h2, c2 = out["state"]
        return out["alpha"], out["trimap_prob"], h2, c2


def load_trained(checkpoint: Path) -> tuple[MattingNet, TrainConfig, dict[str, Any]]:
    """Model (eval mode) and its config from a ``final.pt`` or ``checkpoint.pt``."""
    blob = torch.load(checkpoint, map_location="cpu", weights_only=False)
    raw = dict(blob["config"])
    raw["stages"] = []  # the schedule is history; only model settings matter here
    cfg = TrainConfig(**raw)
    model = build_model(cfg.model, **cfg.resolved_model_args())
    model.load_state_dict(blob["model"])
    return model.eval(), cfg, blob


def state_shape(model: MattingNet, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Shape of h/c for one frame, found by running the model once."""
    with torch.no_grad():
        out = model(torch.zeros(1, 3, *size))
    return tuple(out["state"][0].shape)  # type: ignore[return-value]


def export_onnx(model: MattingNet, size: tuple[int, int], path: Path) -> tuple[int, ...]:
    for module in model.modules():  # batch is 1 in the engine: keep Reshape targets constant
        if isinstance(module, OnnxTorchGraph):
            module.free_batch = False
    shape = state_shape(model, size)
    wrapper = ExportWrapper(model).eval()
    args = (torch.zeros(1, 3, *size), torch.zeros(shape), torch.zeros(shape))
    with torch.no_grad():
        torch.onnx.export(wrapper, args, str(path), opset_version=OPSET, dynamo=False, do_constant_folding=True,
                          input_names=["src", "h_in", "c_in"], output_names=["alpha", "trimap", "h_out", "c_out"])
    return shape


def max_difference(model: MattingNet, onnx_path: Path, size: tuple[int, int], frames: int = 4, seed: int = 0) -> float:
    """Largest |torch - ONNX Runtime| over ``frames`` random frames with state carried."""
    rng = np.random.default_rng(seed)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    wrapper = ExportWrapper(model).eval()
    shape = state_shape(model, size)
    h = c = np.zeros(shape, np.float32)
    th, tc = torch.zeros(shape), torch.zeros(shape)
    worst = 0.0
    for _ in range(frames):
        src = rng.random((1, 3, *size), dtype=np.float32)
        got = session.run(None, {"src": src, "h_in": h, "c_in": c})
        with torch.no_grad():
            want = [t.numpy() for t in wrapper(torch.from_numpy(src), th, tc)]
        worst = max(worst, *(float(np.abs(g - w).max()) for g, w in zip(got, want)))
        h, c = got[2], got[3]
        th, tc = torch.from_numpy(want[2]), torch.from_numpy(want[3])
    return worst


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_manifest(name: str, cfg: TrainConfig, size: tuple[int, int], shape: tuple[int, ...],
                   training_command: str) -> EngineManifest:
    """The manifest of an exported recurrent engine at graph ``size`` (H, W) with state ``shape``."""
    stride_h, stride_w = size[0] // shape[2], size[1] // shape[3]
    provenance: dict[str, Any] = {
        "model": cfg.model,
        "training_data": [
            "EG1800 training portraits (1,339 Flickr photos with the authors' hand-labelled person masks; "
            f"the last {cfg.holdout} ids held out), masks turned into soft alphas by closed-form matting in a band",
            "192 background photos (Urban100, SUN/Hays80, Kodak24, McMaster) for re-composition, plus generated backgrounds",
            "synthetic pseudo-video clips made from those stills (motion, lighting drift, cuts)",
        ],
        **({"teacher": "MediaPipe selfie segmentation (landscape), Apache-2.0, Google: distillation target"}
           if any(stage.losses.get("distill") for stage in cfg.stages) else {}),
        "initialisation": "encoder and trimap decoder are MediaPipe selfie segmentation (landscape) weights, "
                          f"frozen up to tensor {cfg.model_args.get('freeze_until')!r}",
        "training_command": training_command,
        "git_revision": git_revision(),
    }
    return EngineManifest(
        name=name,
        onnx=f"{name}.onnx",
        description=f"Real-time recurrent human matting ({cfg.model}), {size[1]}x{size[0]} internal, ConvLSTM state",
        input=InputSpec(name="src", layout="NCHW", size=(size[0], size[1])),
        state=tuple(StateSpec(input=f"{k}_in", output=f"{k}_out",
                              shape=(1, shape[1], f"H/{stride_h}", f"W/{stride_w}")) for k in ("h", "c")),
        outputs=OutputsSpec(alpha=OutputSpec("alpha", "NCHW", channel=0),
                            trimap=OutputSpec("trimap", "NCHW")),
        provenance=provenance,
        license=LICENCE,
    )


def export_engine(checkpoint: Path, name: str, out_dir: Path, training_command: str) -> Path:
    """Export, verify, then move ONNX + manifest into ``out_dir`` (only if all checks pass)."""
    model, cfg, _ = load_trained(checkpoint)
    size = cfg.clip_config(1).size
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        onnx_tmp = Path(tmp) / f"{name}.onnx"
        shape = export_onnx(model, size, onnx_tmp)
        worst = max_difference(model, onnx_tmp, size)
        if worst > TOLERANCE:
            raise RuntimeError(f"ONNX Runtime differs from torch by {worst:.2e} (> {TOLERANCE:.0e})")
        problems = check_model(onnx.load(str(onnx_tmp)))
        if problems:
            raise RuntimeError("TensorRT compatibility: " + "; ".join(str(p) for p in problems))
        manifest = build_manifest(name, cfg, size, shape, training_command)
        previous = out_dir / f"{name}.json"
        if previous.exists():  # keep measured numbers of an earlier export of the same engine
            old = load_manifest(previous)
            manifest = replace(manifest, metrics=old.metrics, speed=old.speed)
        manifest_tmp = manifest.dump(Path(tmp) / f"{name}.json")
        os.replace(onnx_tmp, out_dir / f"{name}.onnx")
        os.replace(manifest_tmp, out_dir / f"{name}.json")
    print(f"exported {out_dir / name}.onnx ({(out_dir / f'{name}.onnx').stat().st_size / 1e6:.2f} MB), "
          f"torch vs ONNX Runtime max diff {worst:.1e}")
    return out_dir / f"{name}.json"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Export a trained checkpoint to an engine (ONNX + manifest).")
    ap.add_argument("checkpoint", type=Path, help="final.pt or checkpoint.pt of a training run")
    ap.add_argument("--name", required=True, help="engine name (file stem and registry name)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "engines", help="output folder (default: engines/)")
    ap.add_argument("--training-command", default="", help="recorded in the manifest's provenance")
    args = ap.parse_args(argv)
    try:
        export_engine(args.checkpoint, args.name, args.out, args.training_command)
    except (OSError, RuntimeError, KeyError, ValueError, LivematteError) as exc:
        sys.exit(f"export: error: {exc}")


if __name__ == "__main__":
    main()
