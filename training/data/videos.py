"""Real video with a hand mask on every frame (the ``davis-person`` sequences).

The synthetic clips move a still person; these move the way people do
(full bodies, fast limbs, people small in the frame), which is what the
ConvLSTM state and the segmentation of far, full-body people need to see.
Sequences named in a run's config are trained on; the evaluation reports
only on the others (``training.evaluate``), and the engine's provenance
names them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass
class VideoSequence:
    """One sequence: T x H x W x 3 RGB frames and T x H x W masks, both uint8."""

    name: str
    frames: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def sequence_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """A sequence's frames in order (``<folder>/frames/*``) and each one's mask
    (``<folder>/mask/<stem>.png``): the layout of ``davis-person``."""
    frames = sorted((folder / "frames").iterdir()) if (folder / "frames").is_dir() else []
    return frames, [folder / "mask" / f"{frame.stem}.png" for frame in frames]


def load_sequences(root: Path, names: list[str]) -> list[VideoSequence]:
    """The named sequences under ``root`` (see :func:`sequence_files`)."""
    sequences = []
    for name in names:
        frame_paths, mask_paths = sequence_files(root / name)
        if not frame_paths:
            raise FileNotFoundError(f"no frames under {root / name / 'frames'}")
        frames, masks = [], []
        for path, mask_path in zip(frame_paths, mask_paths):
            mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise FileNotFoundError(f"{path} has no mask {mask_path}")
            frames.append(cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
            masks.append(mask)
        sequences.append(VideoSequence(name, np.stack(frames), np.stack(masks)))
    return sequences


def excerpt(rng: np.random.Generator, sequence: VideoSequence, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``length`` consecutive frames and masks (every frame or every other one,
    forwards or backwards, mirrored or not): the motion varies, the labels stay true."""
    stride = int(rng.integers(1, 3)) if len(sequence) > 2 * length else 1
    span = min(len(sequence), (length - 1) * stride + 1)
    start = int(rng.integers(0, len(sequence) - span + 1))
    index = np.arange(start, start + span, stride)[:length]
    index = np.resize(index, length)  # a sequence shorter than the clip repeats its frames
    if rng.random() < 0.5:
        index = index[::-1]
    frames, masks = sequence.frames[index], sequence.masks[index]
    if rng.random() < 0.5:
        frames, masks = frames[:, :, ::-1], masks[:, :, ::-1]
    return np.ascontiguousarray(frames), np.ascontiguousarray(masks)
