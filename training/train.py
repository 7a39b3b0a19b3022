"""Staged training of a matting model on real portraits and synthetic clips.

    python -m training.train --config training/configs/lm-mobile-recurrent.json --out runs/lm-mobile-recurrent

Stages follow SHM and AdaMatting: the trimap branch first, then the alpha
branch, then everything end to end on clips with the recurrent state
carried across frames (truncated backprop through each clip). A run is
resumable (``--resume``): checkpoints hold the model, optimiser, loss
weights, stage and step, and data is a pure function of (seed, index).
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from livematte import metrics
from livematte.aspect import nearest_aspect

from . import losses as L
from .config import StageConfig, TrainConfig
from .data.clips import load_backgrounds
from .data.dataset import ClipDataset, HoldoutSet, Teacher
from .data.pseudo_alpha import PseudoAlpha, build_cache, default_cache_dir
from .data.videos import load_sequences
from .data.teacher_alpha import FusionSetting, TeacherSetting, build_labels
from .models.base import MattingNet
from .models.blocks import upsample_to
from .models.registry import build_model

CHECKPOINT = "checkpoint.pt"


@dataclass
class Progress:
    stage: int = 0
    step: int = 0  # steps done within ``stage``


class WeightAverage:
    """Exponential moving average of a model's floating-point tensors (``StageConfig.ema``).

    The decay ramps up from 0.1 over the first steps (as TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``), so the average does
    not keep a share of the weights the stage started from."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in model.state_dict().items():
            if name in self.shadow:
                self.shadow[name].lerp_(value, 1.0 - decay)

    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.shadow, strict=False)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        self.shadow = state["shadow"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def label_portraits(cfg: TrainConfig) -> list[PseudoAlpha]:
    """Every training portrait with its soft alpha from the configured label source (cached)."""
    dataset = cfg.resolve(cfg.portraits)
    if cfg.labels == "closed-form":
        return build_cache(dataset, default_cache_dir() / "pseudo_alpha" / dataset.name,
                           workers=cfg.workers, limit=cfg.limit_portraits)
    if cfg.labels == "teacher":
        args = dict(cfg.label_args)
        teacher = TeacherSetting(tuple(args.pop("scales", TeacherSetting.scales)), args.pop("flip", TeacherSetting.flip))
        return build_labels(dataset, default_cache_dir() / "teacher_alpha", teacher, FusionSetting(**args),
                            limit=cfg.limit_portraits)
    raise ValueError(f"labels must be 'closed-form' or 'teacher', not {cfg.labels!r}")


def split_portraits(cfg: TrainConfig) -> tuple[list[PseudoAlpha], list[PseudoAlpha]]:
    """(train, holdout) labelled samples; the last ``holdout`` ids are held out."""
    samples = label_portraits(cfg)
    if cfg.holdout >= len(samples):
        raise ValueError(f"holdout {cfg.holdout} leaves no training portraits out of {len(samples)}")
    return samples[: len(samples) - cfg.holdout], samples[len(samples) - cfg.holdout:]


def holdout_size(cfg: TrainConfig, holdout: list[PseudoAlpha]) -> tuple[int, int]:
    """The training size nearest the held-out portraits' aspect: they are validated
    as the runtime would feed them, not squashed into another aspect."""
    import cv2

    return nearest_aspect(cfg.input_sizes(), *cv2.imread(str(holdout[0].image), cv2.IMREAD_GRAYSCALE).shape)


def configure_stage(model: MattingNet, stage: StageConfig) -> dict[str, list[torch.nn.Parameter]]:
    """Freeze every group the stage does not train; return the trained groups by name."""
    groups = model.parameter_groups()
    unknown = (set(stage.train) | set(stage.lr_scale)) - set(groups)
    if unknown:
        raise ValueError(f"stage {stage.name}: unknown parameter groups {sorted(unknown)}")
    for p in model.parameters():
        p.requires_grad_(False)
    trained = {g: groups[g] for g in stage.train}
    for params in trained.values():
        for p in params:
            p.requires_grad_(True)
    return trained


def clip_losses(model: MattingNet, batch: dict[str, torch.Tensor], stage: StageConfig,
                weighting: L.UncertaintyWeighting | None) -> tuple[torch.Tensor, dict[str, float]]:
    """Run the model over a B x T clip, carrying state, and combine the stage's losses."""
    src, gt = batch["src"], batch["alpha"]
    b, t = src.shape[:2]
    frame = torch.arange(t, device=src.device)
    keep = (frame[None, :] != batch["cut"][:, None]).float()  # B x T: 0 where a cut starts
    state = None
    alphas, alpha_rs, trimaps = [], [], []
    for i in range(t):
        if state is not None:
            k = keep[:, i].view(b, 1, 1, 1)
            state = (state[0] * k, state[1] * k)
        out = model(src[:, i], state)
        state = out["state"]
        alphas.append(out["alpha"])
        alpha_rs.append(out["alpha_r"])
        trimaps.append(out["trimap"])
    gt_flat = gt.flatten(0, 1)
    # models that predict below the truth's resolution are compared at the truth's
    alpha = upsample_to(torch.stack(alphas, 1).flatten(0, 1), gt_flat)
    alpha_r = upsample_to(torch.stack(alpha_rs, 1).flatten(0, 1), gt_flat)
    trimap_logits = upsample_to(torch.stack(trimaps, 1).flatten(0, 1), gt_flat)
    target = L.trimap_from_alpha(gt_flat)
    w = stage.losses
    terms: dict[str, torch.Tensor] = {}
    if w.get("trimap"):
        terms["trimap"] = L.trimap_loss(trimap_logits, target)
    if w.get("alpha"):
        terms["alpha"] = L.alpha_prediction_loss(alpha, gt_flat)
    if w.get("segmentation"):  # the hand-labelled masks: where the person is, with the labeller's edges
        terms["segmentation"] = L.alpha_prediction_loss(alpha, batch["mask"].flatten(0, 1))
    if w.get("alpha_unknown"):
        terms["alpha_unknown"] = L.alpha_prediction_loss(alpha_r, gt_flat, (target == 1).unsqueeze(1).float())
    if w.get("comp"):
        has_fb = batch["has_fb"].view(b, 1, 1, 1, 1).expand(b, t, 1, 1, 1).flatten(0, 1)
        terms["comp"] = L.compositional_loss(alpha, gt_flat, batch["fg"].flatten(0, 1), batch["bg"].flatten(0, 1),
                                             has_fb.expand_as(alpha))
    if w.get("temporal") and t > 1:
        pred_seq = alpha.view(b, t, *alpha.shape[1:])
        pairs = keep[:, 1:].view(b, t - 1, 1, 1, 1)
        diff = (torch.diff(pred_seq, dim=1) - torch.diff(gt, dim=1)).abs() * pairs
        terms["temporal"] = diff.sum() / (pairs.sum() * diff[0, 0].numel()).clamp_min(1.0)
    if w.get("distill") and "teacher" in batch:
        terms["distill"] = L.distillation_loss(alpha, batch["teacher"].flatten(0, 1))
    if weighting is not None:
        balanced = {k: terms.pop(k) * w[k] for k in ("trimap", "alpha") if k in terms}
        total = weighting(balanced) + sum(terms[k] * w[k] for k in terms)
        terms.update(balanced)
    else:
        total = sum(terms[k] * w[k] for k in terms)
    return total, {k: float(v.detach()) for k, v in terms.items()}


@torch.no_grad()
def validate(model: MattingNet, holdout: HoldoutSet, device: torch.device) -> dict[str, float]:
    """Mean SAD/MSE/IoU of the fused alpha on held-out portraits, state reset per image,
    against their soft labels and (``mask_*``, when the set has them) the hand-labelled masks."""
    model.eval()
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for item in DataLoader(holdout, batch_size=8):
        alpha = upsample_to(model(item["src"].to(device))["alpha"], item["alpha"]).cpu().numpy()[:, 0]
        for truth in ("alpha", "mask"):
            for pred, gt in zip(alpha, item[truth].numpy()[:, 0] if truth in item else []):
                rows.setdefault(truth, []).append((metrics.sad(pred, gt), metrics.mse(pred, gt), metrics.iou(pred, gt)))
    model.train()
    result = {}
    for truth, values in rows.items():
        prefix = "" if truth == "alpha" else "mask_"
        result.update({prefix + k: float(v) for k, v in zip(("SAD", "MSE", "IoU"), np.mean(values, axis=0))})
    return result


def save_checkpoint(path: Path, model: MattingNet, optimizer: torch.optim.Optimizer,
                    weighting: L.UncertaintyWeighting, progress: Progress, cfg: TrainConfig,
                    average: WeightAverage | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "weighting": weighting.state_dict(),
                "stage": progress.stage, "step": progress.step, "config": cfg.to_dict(),
                "average": average.state_dict() if average else None}, tmp)
    os.replace(tmp, path)


def make_optimizer(groups: dict[str, list[torch.nn.Parameter]], weighting: L.UncertaintyWeighting,
                   stage: StageConfig) -> torch.optim.Optimizer:
    """AdamW, one parameter group per trained group (its ``scale`` of the stage's rate) plus the loss weights."""
    param_groups = [{"params": params, "scale": stage.lr_scale.get(name, 1.0)} for name, params in groups.items()]
    param_groups.append({"params": list(weighting.parameters()), "weight_decay": 0.0, "scale": 1.0})
    return torch.optim.AdamW(param_groups, lr=stage.lr, weight_decay=1e-4)


def cosine_lr(stage: StageConfig, step: int) -> float:
    """Short warm-up, then cosine decay to 5 % of the stage's rate."""
    warm = max(1, min(50, stage.steps // 10))
    if step < warm:
        return stage.lr * (step + 1) / warm
    t = (step - warm) / max(1, stage.steps - warm)
    return stage.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def load_initial_weights(model: torch.nn.Module, path: Path, device: torch.device, log=print) -> None:
    """Start from an earlier run's weights (``init_checkpoint``).

    A run may change a head of the model it starts from (a full-resolution
    alpha decoder on a trained trunk): tensors the earlier model lacked, or
    had in another shape, keep their fresh initialisation, and the log names
    them and any of the earlier run's tensors left unused."""
    saved = torch.load(path, map_location=device, weights_only=False)["model"]
    own = model.state_dict()
    usable = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    fresh = [k for k in own if k not in usable]
    unused = [k for k in saved if k not in usable]
    if fresh or unused:
        log(f"started from {path}: {len(usable)} tensors; newly initialised: {', '.join(fresh) or 'none'}; "
            f"not used: {', '.join(unused) or 'none'}")


def train(cfg: TrainConfig, out: Path, resume: bool = False, device: str = "auto", log=print) -> dict[str, float]:
    """Run (or resume) every stage; returns the final validation metrics."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    model = build_model(cfg.model, **cfg.resolved_model_args()).to(dev)
    weighting = L.UncertaintyWeighting().to(dev)
    progress = Progress()
    ckpt_path = out / CHECKPOINT
    state = None
    if cfg.init_checkpoint:
        load_initial_weights(model, cfg.resolve(cfg.init_checkpoint), dev, log)
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=dev, weights_only=False)
        model.load_state_dict(state["model"])
        weighting.load_state_dict(state["weighting"])
        progress = Progress(state["stage"], state["step"])
        log(f"resumed from {ckpt_path}: stage {progress.stage} step {progress.step}")
    train_set, holdout_set = split_portraits(cfg)
    backgrounds = load_backgrounds(cfg.resolve(cfg.backgrounds))
    teacher = Teacher(cfg.resolve(cfg.teacher)) if cfg.teacher else None
    masks = cfg.resolve(cfg.portraits) / "mask"
    videos = load_sequences(cfg.resolve(cfg.videos), cfg.video_sequences) if cfg.videos else []
    holdout = HoldoutSet(holdout_set, holdout_size(cfg, holdout_set), masks if masks.is_dir() else None)
    log(f"{len(train_set)} training portraits, {len(holdout_set)} held out, {len(backgrounds)} backgrounds, "
        f"{sum(len(v) for v in videos)} video frames, device {dev}")
    result: dict[str, float] = {}
    while progress.stage < len(cfg.stages):
        stage = cfg.stages[progress.stage]
        groups = configure_stage(model, stage)
        params = [p for group in groups.values() for p in group]
        optimizer = make_optimizer(groups, weighting, stage)
        average = WeightAverage(model, stage.ema) if stage.ema else None
        if state is not None and state["stage"] == progress.stage and progress.step > 0:
            # mid-stage: the optimiser and the average go on; at a stage's start they are the last stage's
            optimizer.load_state_dict(state["optimizer"])
            if average:
                average.load_state_dict(state["average"])
        dataset = ClipDataset(train_set, backgrounds, cfg.clip_config(stage.clip_length), stage.steps * stage.batch,
                              seed=cfg.seed * 1000 + progress.stage, teacher=teacher if stage.losses.get("distill") else None,
                              sizes=cfg.input_sizes(), batch=stage.batch, masks=masks if masks.is_dir() else None,
                              videos=videos)
        remaining = Subset(dataset, range(progress.step * stage.batch, len(dataset)))
        loader = DataLoader(remaining, batch_size=stage.batch, num_workers=cfg.workers, shuffle=False,
                            persistent_workers=False, prefetch_factor=4 if cfg.workers else None)
        weighting_for_stage = weighting if stage.uncertainty else None
        t0, done0 = time.time(), progress.step
        for batch in loader:
            batch = {k: v.to(dev) for k, v in batch.items()}
            for g in optimizer.param_groups:
                g["lr"] = cosine_lr(stage, progress.step) * g["scale"]
            loss, parts = clip_losses(model, batch, stage, weighting_for_stage)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            if average:
                average.update(model)
            progress.step += 1
            if progress.step % cfg.log_every == 0 or progress.step == stage.steps:
                rate = (progress.step - done0) / max(1e-6, time.time() - t0)
                eta = (stage.steps - progress.step) / max(rate, 1e-6)
                terms = " ".join(f"{k}={v:.4f}" for k, v in parts.items())
                sig = " ".join(f"s_{k}={v:.2f}" for k, v in weighting.sigmas().items()) if stage.uncertainty else ""
                log(f"[{stage.name} {progress.step}/{stage.steps}] loss={float(loss):.4f} {terms} {sig} "
                    f"{rate:.2f} it/s eta {eta / 60:.1f} min")
            if progress.step % cfg.ckpt_every == 0:
                save_checkpoint(ckpt_path, model, optimizer, weighting, progress, cfg, average)
            if progress.step % cfg.val_every == 0:
                log(f"[{stage.name} {progress.step}] holdout {validate(model, holdout, dev)}")
        if average:
            log(f"[{stage.name} last step] holdout {validate(model, holdout, dev)}")
            average.copy_to(model)
        result = validate(model, holdout, dev)
        log(f"[{stage.name} done{', averaged' if average else ''}] holdout {result}")
        # each stage's weights stay: another run may start from them (``init_checkpoint``)
        torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "holdout": result},
                   out / f"stage{progress.stage + 1}-{stage.name}.pt")
        progress = Progress(progress.stage + 1, 0)
        save_checkpoint(ckpt_path, model, optimizer, weighting, progress, cfg)
        state = None
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "holdout": result}, out / "final.pt")
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train a livematte matting model.")
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=None, help="run folder (default runs/<config name>)")
    ap.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads on CPU")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = TrainConfig.load(args.config)
    except (OSError, ValueError, TypeError) as exc:
        sys.exit(f"training: error: {exc}")
    out = args.out or Path("runs") / cfg.name
    train(cfg, out, resume=args.resume, device=args.device, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
