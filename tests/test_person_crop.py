"""Matting the region around the person (livematte.person_crop) instead of the whole frame.

The geometry is checked on its own, then through ``Matter`` with the
hand-built multi-size engine of ``tiny_engines`` (alpha = the grey level, so
a white block on black is a "person" whose matte is known exactly), and on
real video with the shipped default engine.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_engines import write_aspect_engine

from livematte import metrics
from livematte.backends import create_backend
from livematte.backends.base import MattingBackend
from livematte.engine import Matter
from livematte.manifest import EngineManifest, load_manifest
from livematte.person_crop import PersonCrop, person_box

from conftest import DATA, read_grey, read_rgb

SIZES = [(144, 256), (192, 256), (256, 256), (256, 192), (256, 144)]
FRAME = (720, 1280)


def _standing(top: int, left: int, height: int = 300, width: int = 90) -> np.ndarray:
    """A full-frame matte with one standing person-shaped block."""
    alpha = np.zeros(FRAME, np.float32)
    alpha[top:top + height, left:left + width] = 1.0
    return alpha


def test_a_small_standing_person_gets_a_portrait_region_around_them_with_a_margin() -> None:
    crop = PersonCrop(SIZES)
    assert crop.region(*FRAME) is None  # nothing known yet: the whole frame
    crop.update(_standing(300, 600))
    region = crop.region(*FRAME)
    assert region is not None and region.width / region.height == pytest.approx(144 / 256, rel=0.02)
    assert region.top <= 300 - 0.2 * 300 + 4 and region.top + region.height >= 600 + 0.2 * 300 - 4
    assert region.left <= 600 and region.left + region.width >= 690
    assert 0 <= region.top and region.top + region.height <= FRAME[0] and region.left + region.width <= FRAME[1]


def test_close_up_framing_and_an_empty_frame_keep_the_whole_frame() -> None:
    crop = PersonCrop(SIZES)
    crop.update(_standing(100, 200, height=620, width=900))  # head and shoulders filling the shot
    assert crop.region(*FRAME) is None
    crop.update(np.zeros(FRAME, np.float32))  # nobody: look at everything
    assert crop.region(*FRAME) is None


def test_the_region_grows_at_once_and_shrinks_gradually() -> None:
    crop = PersonCrop(SIZES, shrink=0.2)
    crop.update(_standing(300, 600))
    before = crop.region(*FRAME)
    crop.update(_standing(300, 600, width=200))  # an arm stretched out: covered on the next frame
    wide = crop.region(*FRAME)
    assert wide.left + wide.width >= 800
    crop.update(_standing(300, 600))  # arm back: the region narrows only part of the way
    narrower = crop.region(*FRAME)
    assert before.height < narrower.height < wide.height or before.width < narrower.width < wide.width


def test_the_aspect_changes_only_when_another_fits_clearly_better() -> None:
    crop = PersonCrop(SIZES, shrink=1.0)
    crop.update(_standing(300, 600, height=300, width=120))
    portrait = crop.region(*FRAME).width / crop.region(*FRAME).height
    crop.update(_standing(300, 600, height=300, width=150))  # a little wider: still the portrait size
    assert crop.region(*FRAME).width / crop.region(*FRAME).height == pytest.approx(portrait, rel=0.02)
    crop.update(_standing(300, 500, height=200, width=400))  # now lying down: landscape
    assert crop.region(*FRAME).width > crop.region(*FRAME).height


def test_probes_come_every_few_frames_once_someone_is_found_and_reset_forgets() -> None:
    crop = PersonCrop(SIZES, probe_every=5)
    due = []
    for _ in range(11):
        due.append(crop.probe_due())
        crop.update(_standing(300, 600))
    assert due == [False] * 5 + [True] + [False] * 4 + [True]
    crop.reset()
    assert crop.region(*FRAME) is None and not crop.probe_due()
    assert person_box(np.zeros(FRAME, np.float32)) is None


# --- through Matter -----------------------------------------------------------------

@pytest.fixture(scope="module")
def aspect(tmp_path_factory: pytest.TempPathFactory) -> EngineManifest:
    return load_manifest(write_aspect_engine(tmp_path_factory.mktemp("aspect")))


def _frame(*blocks: tuple[int, int]) -> np.ndarray:
    rgb = np.zeros((*FRAME, 3), np.uint8)
    for top, left in blocks:
        rgb[top:top + 300, left:left + 90] = 255
    return rgb


def test_matter_mattes_the_region_and_finds_a_newcomer_outside_it(aspect: EngineManifest) -> None:
    built: list[tuple[int, int]] = []

    def factory(size: tuple[int, int]) -> MattingBackend:
        built.append(size)
        return create_backend("cpu", aspect, size)

    with Matter(aspect, scene_cut_threshold=None, upsampler="bilinear", backend_factory=factory) as matter:
        assert matter.person_crop is not None  # on by default for an engine with several sizes
        first = matter.infer(_frame((300, 600))).alpha
        second = matter.infer(_frame((300, 600))).alpha
        assert built[0] == (144, 256) and (256, 144) in built  # the whole frame, then a portrait crop
        truth = _standing(300, 600)
        assert metrics.iou(second, truth) > metrics.iou(first, truth) - 0.01 and metrics.iou(second, truth) > 0.95
        # someone walks in far from the first person: a probe finds them, the region covers both
        both = _frame((300, 600), (300, 100))
        found = [metrics.iou(matter.infer(both).alpha[:, :400], _standing(300, 100)[:, :400]) for _ in range(20)]
        assert found[-1] > 0.9, found


def test_no_probe_runs_while_the_whole_frame_is_matted(aspect: EngineManifest) -> None:
    """Close-up framing: the region is the whole frame, so a probe would repeat the same pass."""
    with Matter(aspect, scene_cut_threshold=None, upsampler="bilinear") as matter:
        assert matter.person_crop is not None and matter.person_crop.probe_every < 20
        close_up = np.zeros((*FRAME, 3), np.uint8)
        close_up[100:, 300:1000] = 255
        for _ in range(20):
            matter.infer(close_up)
        assert matter.person_crop.region(*FRAME) is None
        assert not matter._probes  # a probe builds its own backend on first use


def test_person_crop_off_mattes_the_whole_frame(aspect: EngineManifest) -> None:
    with Matter(aspect, scene_cut_threshold=None, person_crop=False) as matter:
        assert matter.person_crop is None
        for _ in range(3):
            matter.infer(_frame((300, 600)))
        assert set(matter._backends) == {(144, 256)}


def test_the_default_engine_matches_a_far_person_better_with_the_crop() -> None:
    """Real video (a held-out DAVIS sequence: a tennis player far from the camera):
    the crop must not cost quality where it engages, and does engage."""
    frames = sorted((DATA / "davis-person" / "tennis" / "frames").glob("*.jpg"))[:12]
    if not frames:
        pytest.skip("davis-person not available")
    scores = {}
    for crop in (True, False):
        with Matter(person_crop=crop, scene_cut_threshold=None) as matter:
            ious = [metrics.iou(matter.infer(read_rgb(f)).alpha,
                                metrics.to_alpha(read_grey(f.parent.parent / "mask" / f"{f.stem}.png")))
                    for f in frames]
            scores[crop] = float(np.mean(ious[1:]))
            if crop:
                assert len(matter._backends) > 1  # a crop of another aspect than the frame's was matted
    assert scores[True] > scores[False] + 0.02, scores
