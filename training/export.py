"""The one exporter: a trained model of any family -> engine (ONNX graph + manifest).

    python -m training.export runs/lm-realtime/final.pt --name lm-realtime --out engines

Every family declares its :class:`~training.models.spec.EngineSpec` beside
its class (matting or refinement, a coarse input, what its weights started
from and under which licence); this module turns a model and its spec into
a graph and a manifest written through :mod:`livematte.manifest`:

- recurrent state becomes explicit graph inputs/outputs (``h_in``/``c_in``
  -> ``h_out``/``c_out``: the runtime feeds each frame's state into the next);
- an engine trained at one size gets a static graph of that size; one
  trained at several aspect ratios (``sizes`` in its config) gets dynamic
  H/W and declares its sizes, and the runtime picks the one nearest each
  frame's aspect; a refinement stage runs at any size (tiles);
- opset 17, ops TensorRT's ONNX parser takes; exact rewrites that make the
  graph cheaper (:mod:`training.onnx_passes`) run before the checks.

Nothing is written under the requested name unless the export checks out:
ONNX Runtime must reproduce torch within 1e-4 at every declared size over
several frames with the state carried, and the TensorRT op check must pass
with the optimisation profile the TensorRT backend will build from the
manifest.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

from livematte.errors import LivematteError
from livematte.manifest import (CoarseSpec, EngineManifest, InputSpec, OutputSpec, OutputsSpec, Role, StateSpec,
                                load_manifest)
from livematte.onnx_check import check_model, profiled_inputs
from livematte.torch_graph import OnnxTorchGraph

from .config import REPO_ROOT, StageConfig, TrainConfig
from .models.base import MattingNet
from .models.registry import build_model
from .models.spec import EngineSpec
from .onnx_passes import optimise

OPSET = 17
TOLERANCE = 1e-4
#: refinement graphs run at any size: checked at sizes no stride divides
FREE_CHECK_SIZES = ((37, 53), (64, 48))


@dataclass(frozen=True)
class DatasetCredit:
    """What a data set is and the terms it came with."""

    description: str
    licence: str
    research_only: bool = True


#: every data set a shipped engine may have seen, by its folder under ../shared/data
DATASETS = {
    "eg1800-train": DatasetCredit(
        "EG1800 training portraits (Shen et al. 2016): Flickr photos with the authors' hand-labelled person masks",
        "no licence; released for academic/research use only"),
    "backgrounds": DatasetCredit(
        "192 background photos (Urban100, SUN/Hays80, Kodak24, McMaster) for re-composition",
        "research data sets; research use"),
    "davis-person": DatasetCredit("DAVIS 2016 person sequences with hand-labelled masks", "CC BY-NC 4.0"),
}


def licence_text(spec: EngineSpec, datasets: list[str]) -> str:
    """The manifest's licence line: code, where the weights started, what they saw."""
    seen = [DATASETS[name] for name in datasets]
    parts = ["Code: Apache-2.0.", f"Weights initialised from: {spec.initialisation_licence or 'random values'}."]
    parts.append("Trained on: " + "; ".join(f"{d.description.split(':')[0]} ({d.licence})" for d in seen) + ".")
    if any(d.research_only for d in seen):
        parts.append("These weights are for research use only.")
    return " ".join(parts)


class GraphModule(nn.Module):
    """The model with the engine's flat signature: tensors in, tensors out, no Python state.

    Matting: ``(src[, h, c]) -> (alpha, trimap probabilities[, h', c'])``;
    refinement: ``(src, coarse) -> alpha``."""

    def __init__(self, model: nn.Module, spec: EngineSpec) -> None:
        super().__init__()
        self.model = model
        self.spec = spec
        self.recurrent = bool(getattr(model, "recurrent", False))
        if spec.role is Role.REFINEMENT:
            self.input_names, self.output_names = ["src", "coarse"], ["alpha"]
        else:
            state = ["h", "c"] if self.recurrent else []
            self.input_names = ["src"] + [f"{k}_in" for k in state]
            self.output_names = ["alpha", "trimap"] + [f"{k}_out" for k in state]

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        if self.spec.role is Role.REFINEMENT:
            return (self.model(*inputs),)
        out = self.model(inputs[0], (inputs[1], inputs[2]) if self.recurrent else None)
        return (out["alpha"], out["trimap_prob"]) + (tuple(out["state"]) if self.recurrent else ())

    @torch.no_grad()
    def state_shape(self, size: tuple[int, int]) -> tuple[int, ...] | None:
        """Shape of h/c for one frame of ``size`` (H, W), found by running the model once."""
        if not self.recurrent:
            return None
        return tuple(self.model(torch.zeros(1, 3, *size))["state"][0].shape)

    def frame_inputs(self, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
        """Random image (and coarse alpha) inputs of one frame at ``size``."""
        feeds = [rng.random((1, 3, *size), dtype=np.float32)]
        if self.spec.coarse:
            feeds.append(rng.random((1, 1, *size), dtype=np.float32))
        return feeds

    def initial_state(self, size: tuple[int, int]) -> list[np.ndarray]:
        """Zero h and c for frames of ``size`` (empty for single-image models)."""
        shape = self.state_shape(size)
        return [] if shape is None else [np.zeros(shape, np.float32)] * 2


def export_onnx(graph: GraphModule, sizes: list[tuple[int, int]] | None, path: Path) -> None:
    """Write the graph: static at ``sizes[0]`` when it is the only size, else dynamic H/W."""
    for module in graph.modules():  # batch is 1 in the engine: keep Reshape targets constant
        if isinstance(module, OnnxTorchGraph):
            module.free_batch = False
    size = sizes[0] if sizes else FREE_CHECK_SIZES[1]
    feeds = graph.frame_inputs(size, np.random.default_rng(0)) + graph.initial_state(size)
    example = tuple(torch.from_numpy(a) for a in feeds)
    dynamic = sizes is None or len(sizes) > 1
    axes = {name: {2: "H", 3: "W"} for name in ("src", "coarse", "alpha", "trimap")}
    axes.update({name: {2: "h", 3: "w"} for name in ("h_in", "c_in", "h_out", "c_out")})
    names = graph.input_names + graph.output_names
    with torch.no_grad():
        torch.onnx.export(graph.eval(), example, str(path), opset_version=OPSET, dynamo=False, do_constant_folding=True,
                          input_names=graph.input_names, output_names=graph.output_names,
                          dynamic_axes={k: v for k, v in axes.items() if k in names} if dynamic else None)
    model = onnx.load(str(path))
    optimise(model)
    onnx.save(model, str(path))


def max_difference(graph: GraphModule, onnx_path: Path, sizes: list[tuple[int, int]] | None,
                   frames: int = 4, seed: int = 0) -> float:
    """Largest |torch - ONNX Runtime| over ``frames`` random frames per size, state carried."""
    rng = np.random.default_rng(seed)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    state_at = len(graph.output_names) - (2 if graph.recurrent else 0)
    worst = 0.0
    for size in sizes or FREE_CHECK_SIZES:
        state = graph.initial_state(size)
        for _ in range(frames):
            feeds = graph.frame_inputs(size, rng) + state
            got = session.run(None, dict(zip(graph.input_names, feeds)))
            with torch.no_grad():
                want = [t.numpy() for t in graph(*(torch.from_numpy(a) for a in feeds))]
            worst = max(worst, *(float(np.abs(g - w).max()) for g, w in zip(got, want)))
            state = want[state_at:]
    return worst


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_manifest(name: str, graph: GraphModule, sizes: list[tuple[int, int]] | None, provenance: dict[str, Any],
                   licence: str, multiple_of: int = 1) -> EngineManifest:
    """The manifest of ``graph`` exported at ``sizes`` (None: any size)."""
    spec = graph.spec
    state: tuple[StateSpec, ...] = ()
    probe = sizes[0] if sizes else FREE_CHECK_SIZES[1]
    shape = graph.state_shape(probe)
    if shape is not None:
        stride_h, stride_w = probe[0] // shape[2], probe[1] // shape[3]
        state = tuple(StateSpec(input=f"{k}_in", output=f"{k}_out", shape=(1, shape[1], f"H/{stride_h}", f"W/{stride_w}"))
                      for k in ("h", "c"))
    if spec.role is Role.REFINEMENT:
        image = InputSpec(name="src", layout="NCHW")
        outputs = OutputsSpec(alpha=OutputSpec("alpha", "NCHW", channel=0))
        description = spec.family
    else:
        static = sizes is not None and len(sizes) == 1
        image = InputSpec(name="src", layout="NCHW", size=sizes[0] if static else None,
                          sizes=() if static or sizes is None else tuple(sizes), multiple_of=1 if static else multiple_of)
        outputs = OutputsSpec(alpha=OutputSpec("alpha", "NCHW", channel=0), trimap=OutputSpec("trimap", "NCHW"))
        at = (f"{sizes[0][1]}x{sizes[0][0]} internal" if static else
              "internal " + ", ".join(f"{w}x{h}" for h, w in sizes) + " (nearest the frame's aspect)")
        description = f"Real-time human matting: {spec.family}, {at}"
        if provenance.get("video_sequences"):
            description += "; trained on real video as well as portraits"
    return EngineManifest(
        name=name, onnx=f"{name}.onnx", description=description, role=spec.role, input=image, state=state,
        coarse=CoarseSpec(name="coarse", layout="NCHW") if spec.coarse else None,
        receptive_radius=spec.receptive_radius, outputs=outputs, provenance=provenance, license=licence)


def export_engine(model: nn.Module, spec: EngineSpec, name: str, out_dir: Path, sizes: list[tuple[int, int]] | None,
                  provenance: dict[str, Any], licence: str, multiple_of: int = 1) -> Path:
    """Export, verify, then move ONNX + manifest into ``out_dir`` (only if every check passes).

    Measured numbers (``metrics``, ``speed``) of an earlier engine of the same
    name are kept: they are rewritten by ``training.evaluate --record``."""
    graph = GraphModule(model.eval(), spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        onnx_tmp = Path(tmp) / f"{name}.onnx"
        export_onnx(graph, sizes, onnx_tmp)
        worst = max_difference(graph, onnx_tmp, sizes)
        if worst > TOLERANCE:
            raise RuntimeError(f"ONNX Runtime differs from torch by {worst:.2e} (> {TOLERANCE:.0e})")
        manifest = build_manifest(name, graph, sizes, provenance, licence, multiple_of)
        problems = check_model(onnx.load(str(onnx_tmp)), profiled_inputs(manifest))
        if problems:
            raise RuntimeError("TensorRT compatibility: " + "; ".join(str(p) for p in problems))
        previous = out_dir / f"{name}.json"
        if previous.exists():
            old = load_manifest(previous)
            manifest = replace(manifest, metrics=old.metrics, speed=old.speed)
        manifest_tmp = manifest.dump(Path(tmp) / f"{name}.json")
        os.replace(onnx_tmp, out_dir / f"{name}.onnx")
        os.replace(manifest_tmp, out_dir / f"{name}.json")
    print(f"exported {out_dir / name}.onnx ({(out_dir / f'{name}.onnx').stat().st_size / 1e6:.2f} MB), "
          f"torch vs ONNX Runtime max diff {worst:.1e}")
    return out_dir / f"{name}.json"


# --- runs of training.train ---------------------------------------------------

def load_trained(checkpoint: Path) -> tuple[MattingNet, TrainConfig, dict[str, Any]]:
    """Model (eval mode) and its config from a ``final.pt`` or ``checkpoint.pt``."""
    blob = torch.load(checkpoint, map_location="cpu", weights_only=False)
    raw = dict(blob["config"])
    raw["stages"] = [StageConfig(**stage) for stage in raw["stages"]]
    cfg = TrainConfig(**raw)
    model = build_model(cfg.model, **cfg.resolved_model_args())
    model.load_state_dict(blob["model"])
    return model.eval(), cfg, blob


def dataset_of(path: Path) -> str:
    """The data set (a :data:`DATASETS` key) a folder belongs to: itself or the nearest parent listed."""
    for folder in (path, *path.parents):
        if folder.name in DATASETS:
            return folder.name
    raise KeyError(f"{path} is in no data set this exporter knows the licence of ({', '.join(DATASETS)})")


def run_datasets(cfg: TrainConfig) -> list[str]:
    """The ../shared/data sets a run read (credited in its engine)."""
    return [dataset_of(cfg.resolve(path)) for path in (cfg.portraits, cfg.backgrounds, cfg.videos) if path]


def run_provenance(cfg: TrainConfig, spec: EngineSpec, training_command: str) -> dict[str, Any]:
    portraits, backgrounds, *videos = run_datasets(cfg)
    labels = ("soft alphas by closed-form matting in a band around the mask" if cfg.labels == "closed-form" else
              "soft alphas from the MODNet teacher (Apache-2.0) fused with the masks")
    video_lines = [f"{name}: {DATASETS[name].description}, sequences {', '.join(cfg.video_sequences)} only "
                   "(the others held out for evaluation)" for name in videos]
    return {
        "model": cfg.model,
        "training_data": [
            f"{portraits}: {DATASETS[portraits].description} (the last {cfg.holdout} ids held out); masks turned into {labels}",
            f"{backgrounds}: {DATASETS[backgrounds].description}, plus generated backgrounds",
            "synthetic pseudo-video clips made from those stills (motion, lighting drift, cuts)",
            *video_lines,
        ],
        **({"video_sequences": {name: list(cfg.video_sequences) for name in videos}} if videos else {}),
        **({"teacher": "MediaPipe selfie segmentation (landscape), Apache-2.0, Google: distillation target"}
           if any(stage.losses.get("distill") for stage in cfg.stages) else {}),
        "initialisation": spec.initialisation,
        **({"started_from": f"{cfg.init_checkpoint} (the weights of an earlier run of training/)"}
           if cfg.init_checkpoint else {}),
        "training_command": training_command,
        "git_revision": git_revision(),
    }


def run_export_args(cfg: TrainConfig, spec: EngineSpec, training_command: str,
                    sizes: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """What :func:`export_engine` and :func:`build_manifest` take for a run of ``cfg``,
    besides the model and the name: its sizes (``sizes``, else those it trained at),
    provenance, licence and size multiple."""
    provenance = run_provenance(cfg, spec, training_command)
    if sizes and sizes != cfg.input_sizes():
        provenance["trained_sizes"] = [list(size) for size in cfg.input_sizes()]
    sizes = sizes or cfg.input_sizes()
    return {"sizes": sizes, "provenance": provenance, "licence": licence_text(spec, run_datasets(cfg)),
            "multiple_of": int(np.gcd.reduce([d for size in sizes for d in size])) if len(sizes) > 1 else 1}


def export_run(checkpoint: Path, name: str, out_dir: Path, training_command: str,
               sizes: list[tuple[int, int]] | None = None) -> Path:
    """Export a ``training.train`` checkpoint at ``sizes`` (H, W), by default
    those its config trained at. Other sizes need a size-free graph: a
    fully convolutional net trained at one resolution can run at a higher one,
    which sees small (full-body, far) people in more detail; the exporter's
    torch/ORT check runs at every size all the same."""
    model, cfg, _ = load_trained(checkpoint)
    if sizes and not model.any_size and set(sizes) - set(cfg.input_sizes()):
        raise ValueError(f"{cfg.model} was not built size-free: it runs only at "
                         + ", ".join(f"{h}x{w}" for h, w in cfg.input_sizes()))
    spec = model.engine_spec()
    return export_engine(model, spec, name, out_dir, **run_export_args(cfg, spec, training_command, sizes))


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` (rows first, as the manifests and configs write sizes) -> (H, W)."""
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW, e.g. 256x448") from None
    return h, w


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Export a trained checkpoint to an engine (ONNX + manifest).")
    ap.add_argument("checkpoint", type=Path, help="final.pt or checkpoint.pt of a training run")
    ap.add_argument("--name", required=True, help="engine name (file stem and registry name)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "engines", help="output folder (default: engines/)")
    ap.add_argument("--training-command", default="", help="recorded in the manifest's provenance")
    ap.add_argument("--sizes", nargs="+", type=parse_size, metavar="HxW",
                    help="input sizes to export for (default: those the run trained at); needs a size-free model")
    args = ap.parse_args(argv)
    try:
        export_run(args.checkpoint, args.name, args.out, args.training_command, args.sizes)
    except (OSError, RuntimeError, KeyError, ValueError, LivematteError) as exc:
        sys.exit(f"export: error: {exc}")


if __name__ == "__main__":
    main()
