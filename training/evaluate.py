"""Evaluate engines and peer models side by side on the real data in ``../shared/data``.

    python -m training.evaluate lm-mobile-recurrent --peers --json results.json

Every model runs through the runtime (:class:`livematte.engine.Matter`, CPU
ONNX Runtime, guided upsampling to full resolution unless ``--upsampler``
says otherwise), exactly as users get it, so the table measures the
product and not a training-time shortcut.

Sets:
- ``eg1800-portraits``: 240 held-out portraits, hand-labelled binary masks
  (SAD/MSE/Grad/Conn against a binary truth mostly measure segmentation);
  ``eg1800-portraits-band`` the same within :data:`EDGE_BAND` pixels of the
  mask's edge, where a matte's edges are judged (a binary truth there only
  says on which side of the hand-drawn edge each pixel lies);
- ``aisegment``: the 2 real soft human mattes;
- ``aisegment-band``, ``alphamatting-unknown``, ``comp1k-unknown``: edge
  quality inside the unknown band of soft mattes (AISegment, the 27
  alphamatting.com training images with their trimap1, 10 Composition-1k
  crops around hair);
- ``davis-person``: 4 real video sequences with a hand mask on every frame,
  run in order with the state carried (per-frame IoU and SAD, dtSSD and
  MESSDdt against the masks); recurrent engines also with the state reset
  on every frame;
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
from livematte.upsample import UPSAMPLERS

from .config import REPO_ROOT
from .data.clips import ClipConfig, ClipSynthesizer
from .data.pseudo_alpha import PseudoAlpha
from .data.videos import sequence_files

SHARED = REPO_ROOT.parent / "shared"
DATA = SHARED / "data"
#: peers compared by default (the models in ../shared/peers)
DEFAULT_PEERS = ("mediapipe", "selfie", "sinet", "rvm", "modnet")
#: soft-truth edge sets: (folder, trimap folder or None to derive one from the truth)
EDGE_SETS = {"aisegment-band": ("aisegment-matting-human-samples", None),
             "alphamatting-unknown": ("alphamatting-lowres-train", "trimap1"),
             "comp1k-unknown": ("adobe-comp1k-foamliu-samples", "trimap")}
#: what ``--sets`` may choose ("edges" is every EDGE_SETS entry, "clips" both pseudo-video kinds)
SETS = ("eg1800-portraits", "aisegment", "edges", "davis-person", "clips", "speed")
#: half-width in pixels of the band derived around a soft truth's edge where no trimap exists
EDGE_BAND = 10


@dataclass
class Model:
    label: str
    manifest: EngineManifest
    recurrent: bool
    flip_average: bool = False
    upsampler: str = "guided"

    def matter(self) -> Matter:
        """The runtime's matter for this model, as every set runs it (no scene-cut resets)."""
        return Matter(self.manifest, scene_cut_threshold=None, flip_average=self.flip_average,
                      upsampler=self.upsampler)


def read_pairs(folder: Path, truth: str) -> list[tuple[Path, Path]]:
    pairs = []
    for image in sorted((folder / "image").iterdir()):
        gt = folder / truth / f"{image.stem}.png"
        if gt.exists():
            pairs.append((image, gt))
    return pairs


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def image_metrics(model: Model, pairs: list[tuple[Path, Path]],
                  limit: int | None) -> tuple[dict[str, float], dict[str, float]]:
    """Mean SAD/MSE/Grad/Conn/IoU over still images, state reset before each one;
    and SAD/MSE/Grad/Conn within :data:`EDGE_BAND` pixels of each truth's 0.5 contour."""
    matter = model.matter()
    rows, band_rows = [], []
    for image, gt in pairs[:limit]:
        matter.reset()
        alpha = matter.infer(read_rgb(image)).alpha
        truth = cv2.imread(str(gt), cv2.IMREAD_GRAYSCALE)
        rows.append(metrics.evaluate_pair(alpha, truth))
        band_rows.append(metrics.evaluate_pair(alpha, truth, edge_band(truth)))
    matter.close()
    for row in band_rows:
        del row["IoU"]  # whole-frame by definition: not an edge measure
    return ({k: float(np.mean([r[k] for r in rows])) for k in rows[0]},
            {k: float(np.mean([r[k] for r in band_rows])) for k in band_rows[0]})


def read_gray(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def edge_band(truth: np.ndarray) -> np.ndarray:
    """The pixels within :data:`EDGE_BAND` of the truth's person/background edge (its 0.5 contour)."""
    person = (truth >= 128).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_BAND + 1, 2 * EDGE_BAND + 1))
    return cv2.dilate(person, kernel) != cv2.erode(person, kernel)


def unknown_band(truth: np.ndarray, trimap: np.ndarray | None) -> np.ndarray:
    """Where edge quality is judged: the trimap's unknown band, or (without a trimap)
    the truth's soft pixels widened by :data:`EDGE_BAND` the way DIM makes trimaps."""
    if trimap is not None:
        return metrics.unknown_region(trimap)
    soft = ((truth > 0) & (truth < 255)).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_BAND + 1, 2 * EDGE_BAND + 1))
    return cv2.dilate(soft, kernel) > 0


def edge_metrics(model: Model, folder: Path, trimaps: str | None) -> dict[str, float]:
    """Mean SAD/MSE/Grad/Conn inside the unknown band of each soft matte, state reset per image.

    The band is where mattes differ from masks (hair, fur, blur); the
    alphamatting.com and Composition-1k images are objects and crops as well
    as people, so a person model's numbers there partly measure segmentation."""
    matter = model.matter()
    rows = []
    for image, gt in read_pairs(folder, "alpha"):
        matter.reset()
        alpha = matter.infer(read_rgb(image)).alpha
        truth = read_gray(gt)
        trimap = read_gray(folder / trimaps / gt.name) if trimaps else None
        row = metrics.evaluate_pair(alpha, truth, unknown_band(truth, trimap))
        del row["IoU"]  # whole-frame by definition: not an edge measure
        rows.append(row)
    matter.close()
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def video_sequences(root: Path, limit: int | None,
                    exclude: frozenset[str] = frozenset()) -> list[tuple[list[Path], list[Path]]]:
    """(frames, masks) of every real video sequence under ``root`` (``<seq>/frames``,
    ``<seq>/mask``) but those in ``exclude``."""
    sequences = []
    for seq in sorted(p for p in root.iterdir() if (p / "frames").is_dir() and p.name not in exclude):
        frames, masks = sequence_files(seq)
        sequences.append((frames[:limit], masks[:limit]))
    return sequences


def video_metrics(model: Model, sequences: list[tuple[list[Path], list[Path]]], carry_state: bool) -> dict[str, float]:
    """Real video against hand masks: per-frame IoU and SAD, and dtSSD/MESSDdt per sequence.

    The state is reset at the start of each sequence and, with ``carry_state``
    off, before every frame (the control for recurrent engines). Each
    sequence counts once, however many frames it has."""
    matter = model.matter()
    rows = []
    for frames, masks in sequences:
        matter.reset()
        preds, truths = [], []
        for frame, mask in zip(frames, masks):
            if not carry_state:
                matter.reset()
            preds.append(matter.infer(read_rgb(frame)).alpha)
            truths.append(metrics.to_alpha(read_gray(mask)))
        rows.append((float(np.mean([metrics.iou(p, g) for p, g in zip(preds, truths)])),
                     float(np.mean([metrics.sad(p, g) for p, g in zip(preds, truths)])),
                     metrics.dtssd(preds, truths), metrics.messddt(preds, truths)))
    matter.close()
    iou, sad, dt, me = np.mean(rows, axis=0)
    return {"IoU": float(iou), "SAD": float(sad), "dtSSD": float(dt), "MESSDdt": float(me)}


def eval_clips(pairs: list[tuple[Path, Path]], static: bool, count: int, length: int = 10,
               size: tuple[int, int] = (360, 640)) -> list[dict[str, np.ndarray]]:
    """Deterministic pseudo-video from held-out portraits (photo mode, no cuts)."""
    cfg = ClipConfig(size=size, length=length, p_composite=0.0, p_cut=0.0, p_motion_blur=0.0,
                     p_grey=0.0, p_static_camera=1.0 if static else 0.0, max_noise=3.0)
    portraits = [PseudoAlpha(image=img, alpha=gt, foreground=img) for img, gt in pairs]
    synth = ClipSynthesizer(portraits, [], cfg)
    return [synth.clip(np.random.default_rng([7, i, int(static)])) for i in range(count)]


def clip_metrics(model: Model, clips: list[dict[str, np.ndarray]], carry_state: bool) -> dict[str, float]:
    matter = model.matter()
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
    matter = model.matter()
    rgb = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    times = [matter.infer(rgb).timings["inference"] for _ in range(frames)]
    matter.close()
    return float(np.median(times[5:]))


def load_models(names: list[str], peers: tuple[str, ...], tmp: Path, flip_average: bool = False,
                upsampler: str = "guided") -> list[Model]:
    """The named engines, then the peers, then (``flip_average``) each named engine
    again with the mirror image averaged in, labelled ``NAME+flip``; every one
    enlarges its matte with ``upsampler``."""
    models = []
    for name in names:
        manifest = find_engine(name)
        models.append(Model(manifest.name, manifest, bool(manifest.state), upsampler=upsampler))
    flipped = [replace(m, label=f"{m.label}+flip", flip_average=True) for m in models] if flip_average else []
    for peer in peers:
        onnx_path = SHARED / "peers" / PEERS[peer][0]
        if onnx_path.exists():
            manifest = load_manifest(write_peer_manifest(peer, onnx_path, tmp))
            models.append(Model(manifest.name, manifest, bool(manifest.state), upsampler=upsampler))
        else:
            print(f"note: {onnx_path} absent, peer {peer} skipped", file=sys.stderr)
    return models + flipped


def trained_sequences(models: list[Model], also: tuple[str, ...] = ()) -> frozenset[str]:
    """The ``davis-person`` sequences any of ``models`` trained on (their
    provenance names them), plus ``also``: every model is judged on the rest."""
    named = set(also)
    for model in models:
        named.update(model.manifest.provenance.get("video_sequences", {}).get("davis-person", []))
    return frozenset(named)


def evaluate(models: list[Model], limit: int | None, clips: int, sets: tuple[str, ...] = SETS,
             exclude: tuple[str, ...] = ()) -> dict[str, dict[str, dict[str, float]]]:
    """Every model on every chosen set (see :data:`SETS`), as {model: {set: {metric: value}}}.
    Video sequences any model trained on, or named in ``exclude``, are left out
    for all, and the set is then called ``davis-person-held-out``."""
    portraits = read_pairs(DATA / "eg1800-portraits", "mask")
    static = eval_clips(portraits[:clips], True, clips) if "clips" in sets else []
    moving = eval_clips(portraits[clips:2 * clips], False, clips) if "clips" in sets else []
    trained = trained_sequences(models, exclude) if "davis-person" in sets else frozenset()
    video = video_sequences(DATA / "davis-person", limit, trained) if "davis-person" in sets else []
    davis = "davis-person-held-out" if trained else "davis-person"
    if trained:
        print(f"davis-person: left out (trained on) {', '.join(sorted(trained))}; "
              f"judged on {len(video)} other sequences", file=sys.stderr)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for model in models:
        t0 = time.time()
        row: dict[str, dict[str, float]] = {}
        if "eg1800-portraits" in sets:
            row["eg1800-portraits"], row["eg1800-portraits-band"] = image_metrics(model, portraits, limit)
        if "aisegment" in sets:
            row["aisegment"], _ = image_metrics(model, read_pairs(DATA / "aisegment-matting-human-samples", "alpha"), None)
        if "edges" in sets:
            row.update({name: edge_metrics(model, DATA / folder, trimaps) for name, (folder, trimaps) in EDGE_SETS.items()})
        for carry in (True, False) if model.recurrent else (True,):
            suffix = "" if carry else "-per-frame"
            if "davis-person" in sets:
                row[davis + suffix] = video_metrics(model, video, carry_state=carry)
            if "clips" in sets:
                row["clips-static" + suffix] = clip_metrics(model, static, carry_state=carry)
                row["clips-moving" + suffix] = clip_metrics(model, moving, carry_state=carry)
        if "speed" in sets:
            row["speed"] = {"engine_ms_720p": engine_ms(model)}
        table[model.label] = row
        print(f"evaluated {model.label} in {time.time() - t0:.0f} s", file=sys.stderr)
    return table


def format_table(table: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| model | set | SAD | MSE | Grad | Conn | IoU | dtSSD | MESSDdt | engine ms (720p) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, row in table.items():
        ms = f"{row['speed']['engine_ms_720p']:.1f}" if "speed" in row else ""
        for name, m in row.items():
            if name == "speed":
                continue
            cells = [f"{m[k]:.4f}" if k in m else "" for k in ("SAD", "MSE", "Grad", "Conn", "IoU", "dtSSD", "MESSDdt")]
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + f" | {ms} |")
    return "\n".join(lines)


def record_in_manifest(model: Model, row: dict[str, dict[str, float]], command: str) -> None:
    """Write an engine's measured quality and speed into its own manifest, so
    ``livematte engines info`` shows numbers this command produced. Sets this
    run did not measure keep their earlier numbers."""
    measured = {name: {k: round(v, 5) for k, v in values.items()} for name, values in row.items() if name != "speed"}
    speed = model.manifest.speed
    if "speed" in row:
        speed = {"ms_per_frame": round(row["speed"]["engine_ms_720p"], 2),
                 "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, ONNX Runtime, 720p frame",
                 "command": command}
    replace(model.manifest, metrics={**model.manifest.metrics, **measured}, speed=speed).dump()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate engines (and peer models) on ../shared/data.")
    ap.add_argument("engines", nargs="*", help="engine names or manifest/ONNX paths")
    ap.add_argument("--peers", nargs="*", choices=DEFAULT_PEERS, default=None, metavar="PEER",
                    help=f"also evaluate these peers from ../shared/peers (no names: all of {', '.join(DEFAULT_PEERS)})")
    ap.add_argument("--limit", type=int, default=None,
                    help="at most N portraits and N frames of each video sequence (default: all)")
    ap.add_argument("--clips", type=int, default=12, help="pseudo-video clips per kind (default 12)")
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="what to measure (default: all)")
    ap.add_argument("--exclude-sequences", nargs="+", default=[], metavar="NAME",
                    help="davis-person sequences to leave out besides those the engines trained on "
                         "(to compare peers on the same held-out sequences)")
    ap.add_argument("--flip-average", action="store_true",
                    help="also evaluate each named engine with the mirror image averaged in (NAME+flip; not recorded)")
    ap.add_argument("--upsampler", choices=UPSAMPLERS, default="guided",
                    help="how every model's matte is enlarged to the frame (default guided, as the runtime's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    ap.add_argument("--record", action="store_true",
                    help="write each named engine's results into its manifest (metrics, speed)")
    args = ap.parse_args(argv)
    if args.record and args.upsampler != "guided":
        ap.error("--record measures what the runtime runs by default: leave --upsampler guided")
    if not (DATA / "eg1800-portraits").is_dir():
        sys.exit(f"evaluate: error: evaluation data not found at {DATA}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            peers = () if args.peers is None else tuple(args.peers) or DEFAULT_PEERS
            models = load_models(args.engines, peers, Path(tmp), args.flip_average, args.upsampler)
            if not models:
                sys.exit("evaluate: error: nothing to evaluate (name engines or pass --peers)")
            table = evaluate(models, args.limit, args.clips, tuple(args.sets), tuple(args.exclude_sequences))
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
