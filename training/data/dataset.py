"""Torch datasets over the clip synthesiser, plus the teacher's soft labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .clips import ClipConfig, ClipSynthesizer, Portrait
from .pseudo_alpha import PseudoAlpha
from .videos import VideoSequence


class Teacher:
    """Person probability from a peer ONNX segmenter (MediaPipe, Apache-2.0).

    Runs in the data-loader worker with ONNX Runtime, so distillation costs
    the training step nothing. Expects the MediaPipe landscape I/O: NHWC RGB
    in [0, 1] at the clip size, 2-class logits out."""

    def __init__(self, onnx_path: str | Path) -> None:
        self.path = str(onnx_path)
        self._session = None

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``frames``: T x H x W x 3 float32 -> T x H x W x 1 probability."""
        if self._session is None:  # created lazily: sessions don't survive fork
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self._session = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        name = self._session.get_inputs()[0].name
        out = np.concatenate([self._session.run(None, {name: f[None]})[0] for f in frames])
        e = np.exp(out - out.max(-1, keepdims=True))
        return (e[..., 1:2] / e.sum(-1, keepdims=True)).astype(np.float32)


class ClipDataset(Dataset):
    """Index ``i`` -> the clip generated from ``seed + i`` (T x C x H x W tensors)."""

    def __init__(
        self,
        portraits: list[PseudoAlpha],
        backgrounds: list[np.ndarray],
        config: ClipConfig,
        length: int,
        seed: int = 0,
        teacher: Teacher | None = None,
        sizes: list[tuple[int, int]] | None = None,
        batch: int = 1,
        masks: Path | None = None,
        videos: list[VideoSequence] | None = None,
    ) -> None:
        """``sizes``: canvas sizes taken in turn, one per ``batch`` consecutive
        indices (a batch shares one size; default: the config's size);
        ``masks``: the hand-labelled masks' folder and ``videos`` the real
        sequences (:class:`ClipSynthesizer`)."""
        self.synth = ClipSynthesizer(portraits, backgrounds, config, masks, videos)
        self.length = length
        self.seed = seed
        self.teacher = teacher
        self.sizes = sizes or [config.size]
        self.batch = batch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        clip = self.synth.clip(rng, self.sizes[(index // self.batch) % len(self.sizes)])
        if self.teacher is not None:
            clip["teacher"] = self.teacher(clip["src"])
        return {k: torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2)) if v.ndim == 4 else np.asarray(v)) for k, v in clip.items()}


class HoldoutSet(Dataset):
    """Held-out training portraits as single squashed frames, for validation
    during training (the reported validation set stays untouched).

    With ``masks`` (the folder of the hand-labelled masks) each item also
    carries the mask: the soft labels differ between label sources, the
    hand masks do not, so only they compare runs trained on different labels."""

    def __init__(self, portraits: list[PseudoAlpha], size: tuple[int, int], masks: Path | None = None) -> None:
        self.portraits = portraits
        self.size = size
        self.masks = masks

    def __len__(self) -> int:
        return len(self.portraits)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        import cv2

        p = Portrait.load(self.portraits[index])
        h, w = self.size
        src = cv2.resize(p.image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        alpha = cv2.resize(p.alpha, (w, h), interpolation=cv2.INTER_AREA)
        item = {"src": torch.from_numpy(src.transpose(2, 0, 1).copy()), "alpha": torch.from_numpy(alpha[None].copy())}
        if self.masks is not None:
            mask = cv2.imread(str(self.masks / f"{self.portraits[index].stem}.png"), cv2.IMREAD_GRAYSCALE)
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA) > 127
            item["mask"] = torch.from_numpy(mask[None].astype(np.float32))
        return item
