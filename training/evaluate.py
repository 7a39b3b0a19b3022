"""Evaluate engines and peer models side by side on the real data in ``../shared/data``.

    python -m training.evaluate lm-mobile-recurrent --peers --json results.json

Every model runs through the runtime (:class:`livematte.engine.Matter`, CPU
ONNX Runtime, guided upsampling to full resolution), exactly as users get
it, so the table measures the product and not a training-time shortcut.

Sets:
- ``eg1800-portraits``: 240 held-out portraits, hand-labelled binary masks
  (SAD/MSE/Grad/Conn against a binary truth mostly measure segmentation);
- ``aisegment``: the 2 real soft human mattes;
- ``clips-static`` / ``clips-moving``: pseudo-video from the held-out
  portraits (a static camera with sensor noise and lighting flicker; a
  moving camera), for dtSSD and MESSDdt. Recurrent engines are measured
  with their state carried and, as a control, reset on every frame.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from livematte import metrics
from livematte.engine import Matter
from livematte.errors import LivematteError
from livematte.manifest import EngineManifest, load_manifest
from livematte.peers import PEERS, write_peer_manifest
from livematte.registry import find_engine

from .config import REPO_ROOT
from .data.clips import ClipConfig, ClipSynthesizer
from .data.pseudo_alpha import PseudoAlpha

SHARED = REPO_ROOT.parent / "shared"
DATA = SHARED / "data"
#: peers compared by default (the models in ../shared/peers)
DEFAULT_PEERS = ("mediapipe", "selfie", "sinet", "rvm")


@dataclass
class Model:
    label: str
    manifest: EngineManifest
    recurrent: bool


def read_pairs(folder: Path, truth: str) -> list[tuple[Path, Path]]:
    pairs = []
    for image in sorted((folder / "image").iterdir()):
        gt = folder / truth / f"{image.stem}.png"
        if gt.exists():
            pairs.append((image, gt))
    return pairs


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def image_metrics(model: Model, pairs: list[tuple[Path, Path]], limit: int | None) -> dict[str, float]:
    """Mean SAD/MSE/Grad/Conn/IoU over still images, state reset before each one."""
    matter = Matter(model.manifest, scene_cut_threshold=None)
    rows = []
    for image, gt in pairs[:limit]:
        matter.reset()
        alpha = matter.infer(read_rgb(image)).alpha
        rows.append(metrics.evaluate_pair(alpha, cv2.imread(str(gt), cv2.IMREAD_GRAYSCALE)))
    matter.close()
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def eval_clips(pairs: list[tuple[Path, Path]], static: bool, count: int, length: int = 10,
               size: tuple[int, int] = (360, 640)) -> list[dict[str, np.ndarray]]:
    """Deterministic pseudo-video from held-out portraits (photo mode, no cuts)."""
    cfg = ClipConfig(size=size, length=length, p_composite=0.0, p_cut=0.0, p_motion_blur=0.0,
                     p_grey=0.0, p_static_camera=1.0 if static else 0.0, max_noise=3.0)
    portraits = [PseudoAlpha(image=img, alpha=gt, foreground=img) for img, gt in pairs]
    synth = ClipSynthesizer(portraits, [], cfg)
    return [synth.clip(np.random.default_rng([7, i, int(static)])) for i in range(count)]


def clip_metrics(model: Model, clips: list[dict[str, np.ndarray]], carry_state: bool) -> dict[str, float]:
    matter = Matter(model.manifest, scene_cut_threshold=None)
    rows = []
    for clip in clips:
        matter.reset()
        preds = []
        for frame in clip["src"]:
            if not carry_state:
                matter.reset()
            preds.append(matter.infer(np.round(frame * 255).astype(np.uint8)).alpha)
        gt = clip["alpha"][..., 0]
        rows.append((metrics.dtssd(np.stack(preds), gt), metrics.messddt(np.stack(preds), gt),
                     float(np.mean([metrics.sad(p, g) for p, g in zip(preds, gt)]))))
    matter.close()
    dt, me, sad = np.mean(rows, axis=0)
    return {"dtSSD": float(dt), "MESSDdt": float(me), "SAD": float(sad)}


def engine_ms(model: Model, size: tuple[int, int] = (720, 1280), frames: int = 25) -> float:
    """Median ms per frame of the backend call alone (the engine's own cost)."""
    matter = Matter(model.manifest, scene_cut_threshold=None)
    rgb = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    times = [matter.infer(rgb).timings["inference"] for _ in range(frames)]
    matter.close()
    return float(np.median(times[5:]))


def load_models(names: list[str], peers: tuple[str, ...], tmp: Path) -> list[Model]:
    models = []
    for name in names:
        manifest = find_engine(name)
        models.append(Model(manifest.name, manifest, bool(manifest.state)))
    for peer in peers:
        onnx_path = SHARED / "peers" / PEERS[peer][0]
        if onnx_path.exists():
            manifest = load_manifest(write_peer_manifest(peer, onnx_path, tmp))
            models.append(Model(manifest.name, manifest, bool(manifest.state)))
        else:
            print(f"note: {onnx_path} absent, peer {peer} skipped", file=sys.stderr)
    return models


def evaluate(models: list[Model], limit: int | None, clips: int) -> dict[str, dict[str, dict[str, float]]]:
    portraits = read_pairs(DATA / "eg1800-portraits", "mask")
    soft = read_pairs(DATA / "aisegment-matting-human-samples", "alpha")
    static = eval_clips(portraits[:clips], True, clips)
    moving = eval_clips(portraits[clips:2 * clips], False, clips)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for model in models:
        t0 = time.time()
        row = {
            "eg1800-portraits": image_metrics(model, portraits, limit),
            "aisegment": image_metrics(model, soft, None),
            "clips-static": clip_metrics(model, static, carry_state=True),
            "clips-moving": clip_metrics(model, moving, carry_state=True),
            "speed": {"engine_ms_720p": engine_ms(model)},
        }
        if model.recurrent:
            row["clips-static-per-frame"] = clip_metrics(model, static, carry_state=False)
            row["clips-moving-per-frame"] = clip_metrics(model, moving, carry_state=False)
        table[model.label] = row
        print(f"evaluated {model.label} in {time.time() - t0:.0f} s", file=sys.stderr)
    return table


def format_table(table: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| model | set | SAD | MSE | Grad | Conn | IoU | dtSSD | MESSDdt | engine ms (720p) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, row in table.items():
        ms = row["speed"]["engine_ms_720p"]
        for name, m in row.items():
            if name == "speed":
                continue
            cells = [f"{m[k]:.4f}" if k in m else "" for k in ("SAD", "MSE", "Grad", "Conn", "IoU", "dtSSD", "MESSDdt")]
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + f" | {ms:.1f} |")
    return "\n".join(lines)


def record_in_manifest(model: Model, row: dict[str, dict[str, float]], command: str) -> None:
    """Write an engine's measured quality and speed into its own manifest, so
    ``livematte engines info`` shows numbers this command produced."""
    metrics = {name: {k: round(v, 5) for k, v in values.items()} for name, values in row.items() if name != "speed"}
    speed = {"ms_per_frame": round(row["speed"]["engine_ms_720p"], 2),
             "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, ONNX Runtime, 720p frame",
             "command": command}
    replace(model.manifest, metrics=metrics, speed=speed).dump()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate engines (and peer models) on ../shared/data.")
    ap.add_argument("engines", nargs="*", help="engine names or manifest/ONNX paths")
    ap.add_argument("--peers", action="store_true", help=f"also evaluate {', '.join(DEFAULT_PEERS)} from ../shared/peers")
    ap.add_argument("--limit", type=int, default=None, help="at most N portraits (default: all 240)")
    ap.add_argument("--clips", type=int, default=12, help="pseudo-video clips per kind (default 12)")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    ap.add_argument("--record", action="store_true",
                    help="write each named engine's results into its manifest (metrics, speed)")
    args = ap.parse_args(argv)
    if not (DATA / "eg1800-portraits").is_dir():
        sys.exit(f"evaluate: error: evaluation data not found at {DATA}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            models = load_models(args.engines, DEFAULT_PEERS if args.peers else (), Path(tmp))
            if not models:
                sys.exit("evaluate: error: nothing to evaluate (name engines or pass --peers)")
            table = evaluate(models, args.limit, args.clips)
    except LivematteError as exc:
        sys.exit(f"evaluate: error: {exc}")
    print(format_table(table))
    if args.record:
        command = "python -m training.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
        for model in models[: len(args.engines)]:
            record_in_manifest(model, table[model.label], command)
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
