"""Teacher labels: the fusion rule on constructed cases, and the cache on a real portrait with MODNet."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DATA, PEERS
from training.data import teacher_alpha
from training.data.teacher_alpha import FusionSetting, TeacherSetting, build_labels, fuse

MODNET = PEERS / "ZHKKKe__modnet_photographic_portrait_matting.onnx"


def test_fusion_mask_away_from_edge_teacher_at_edge_mask_where_they_contradict() -> None:
    mask = np.zeros((60, 60), np.float32)
    mask[:, :30] = 1.0  # person on the left, edge between columns 29 and 30
    teacher = np.full(mask.shape, 0.7, np.float32)  # says "person" everywhere, softly
    teacher[:, 30:] = 0.3
    teacher[:, 28] = 0.2  # contradicts the mask 2 px inside the person
    fused = fuse(mask, teacher, FusionSetting(band=4, tolerance=1))
    assert np.all(fused[:, :24] == 1.0) and np.all(fused[:, 36:] == 0.0)  # beyond the band: the mask
    assert np.allclose(fused[:, 29], 0.7) and np.allclose(fused[:, 30], 0.3)  # at the edge: the teacher
    assert np.all(fused[:, 28] == 1.0)  # contradiction beyond the tolerance: the mask wins
    assert np.allclose(fuse(mask, teacher, FusionSetting(band=4, tolerance=3))[:, 28], 0.2)


def test_labels_are_soft_at_the_edge_and_reused_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = DATA / "eg1800-portraits"
    if not MODNET.is_file() or not (dataset / "image").is_dir():
        pytest.skip("MODNet or eg1800-portraits not available")
    teacher = TeacherSetting((256,), flip=False)  # one small pass keeps the test fast
    first = build_labels(dataset, tmp_path, teacher, FusionSetting(), limit=1, onnx_path=MODNET)
    alpha = cv2.imread(str(first[0].alpha), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(dataset / "mask" / f"{first[0].alpha.stem[:-len('_alpha')]}.png"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.resize(mask, alpha.shape[::-1], interpolation=cv2.INTER_AREA) > 127
    far = teacher_alpha.distance_to_edge(mask.astype(np.float32)) > FusionSetting().band + 1
    assert np.array_equal(alpha[far] > 127, mask[far])
    assert np.count_nonzero((alpha > 10) & (alpha < 245)) > 100  # soft somewhere along the edge

    def no_model(*_args, **_kwargs):
        raise AssertionError("the teacher ran although its output was cached")

    monkeypatch.setattr(teacher_alpha, "ModnetTeacher", no_model)
    assert build_labels(dataset, tmp_path, teacher, FusionSetting(), limit=1, onnx_path=MODNET) == first
    wider = build_labels(dataset, tmp_path, teacher, FusionSetting(band=8, tolerance=2), limit=1, onnx_path=MODNET)
    assert wider[0].alpha.parent != first[0].alpha.parent and wider[0].alpha.is_file()
