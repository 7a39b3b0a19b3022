"""``Matter(flip_average=True)``: the mirror image's matte is turned back, averaged, and has its own state.

The hand-built engine of ``tiny_engines`` mattes each 2x2 block by its grey
level, so a frame and its mirror image give the same matte once the mirror's
is turned back: any misplacement shows as a difference. Its foreground output
counts the frames its state has carried.
"""
from __future__ import annotations

import numpy as np
import pytest
from tiny_engines import ASPECT_STEP, write_aspect_engine

from livematte import cli
from livematte.backends import create_backend
from livematte.backends.base import MattingBackend
from livematte.engine import Matter
from livematte.manifest import EngineManifest, load_manifest


@pytest.fixture(scope="module")
def aspect(tmp_path_factory: pytest.TempPathFactory) -> EngineManifest:
    return load_manifest(write_aspect_engine(tmp_path_factory.mktemp("aspect")))


def _frame(height: int, width: int) -> np.ndarray:
    """A frame that is not its own mirror image: a grey ramp and a bright block on the left."""
    rgb = np.repeat(np.linspace(0, 120, width, dtype=np.float32)[None, :, None], height, 0).repeat(3, 2)
    rgb[height // 4: 3 * height // 4, width // 8: width // 3] = 255
    return rgb.astype(np.uint8)


@pytest.mark.parametrize("size", [(720, 1280), (800, 600), (333, 500)])  # landscape, portrait, padded
def test_the_mirror_matte_is_turned_back_before_averaging(aspect: EngineManifest, size: tuple[int, int]) -> None:
    frame = _frame(*size)
    with Matter(aspect, scene_cut_threshold=None, upsampler="bilinear", person_crop=False) as plain, \
            Matter(aspect, scene_cut_threshold=None, upsampler="bilinear", person_crop=False,
                   flip_average=True) as both:
        want, got = plain.infer(frame).alpha, both.infer(frame).alpha
    assert float(np.abs(want[:, : size[1] // 2] - want[:, size[1] // 2:][:, ::-1]).max()) > 0.1  # not symmetric
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_each_view_carries_its_own_state_and_reset_restarts_both(aspect: EngineManifest) -> None:
    built: list[tuple[int, int]] = []

    def factory(size: tuple[int, int]) -> MattingBackend:
        built.append(size)
        return create_backend("cpu", aspect, size)

    frame = _frame(720, 1280)
    with Matter(aspect, scene_cut_threshold=None, upsampler="bilinear", person_crop=False, flip_average=True,
                backend_factory=factory) as matter:
        for frames in (1, 2, 3):
            result = matter.infer(frame)
            # shared by the two views, the state would advance twice a frame
            np.testing.assert_allclose(result.foreground, frames * ASPECT_STEP, atol=1e-5)
        matter.reset()
        np.testing.assert_allclose(matter.infer(frame).foreground, ASPECT_STEP, atol=1e-5)
    assert built == [(144, 256), (144, 256)]


def test_the_cli_option_reaches_every_job() -> None:
    parser = cli.build_parser()
    for command in (["process", "in.mp4", "out.mp4"], ["webcam", "--preview"], ["batch", "in", "out"]):
        assert parser.parse_args(command).flip_average == "auto"
        assert parser.parse_args([*command, "--flip-average", "on"]).flip_average == "on"
    assert cli.AUTO_ON_OFF["auto"] is None
