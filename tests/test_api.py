"""The Python API: livematte.process, the frame-level Matter, stages as a list, sinks by name, error hints."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

import livematte
from livematte.backgrounds import Colour
from livematte.compositor import Compositor
from livematte.errors import EngineError, Hint, InputError, OutputError
from livematte.pipeline import Pipeline
from livematte.sinks import ImageSequenceSink, Sink, StreamSink, VideoFileSink, open_sink
from livematte.sources import open_source
from livematte.stages import CompositeStage, MatteStage, Work
from media_helpers import disc_alpha, leftovers, probe, run_cli, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "in.mp4", size=(96, 64), frames=12, fps=12)


def test_process_writes_the_job_and_says_what_it_did(tmp_path: Path, keyer: Path, clip: Path) -> None:
    out, mattes = tmp_path / "out.mov", tmp_path / "mattes"
    result = livematte.process(clip, out, model=keyer, alpha=True, matte_out=mattes)
    assert result.frames_out == 12 and not result.interrupted and result.fps > 0
    assert probe(out)["video"]["frames"] == 12 and len(list(mattes.iterdir())) == 12
    assert set(result.engine_ms) >= {"inference", "upsample"}  # the engine's steps, summed over the frames
    assert leftovers(tmp_path) == []


def test_process_takes_a_background_object_and_a_matter_it_does_not_close(tmp_path: Path, keyer: Path,
                                                                          clip: Path) -> None:
    frames = tmp_path / "frames"
    with livematte.Matter(keyer) as matter:
        livematte.process(clip, frames, background=Colour((0, 0, 255)), model=matter)
        assert matter.infer(np.zeros((64, 96, 3), np.uint8)).alpha.shape == (64, 96)  # still usable
    person = disc_alpha(96, 64, 0)
    image = cv2.cvtColor(cv2.imread(str(frames / "000001.png")), cv2.COLOR_BGR2RGB)
    far = cv2.erode((~person).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.abs(image[far].mean(0) - (0, 0, 255)).max() < 3


@pytest.mark.parametrize("kwargs, error, message", [
    ({"quality": "best"}, InputError, "quality must be one of"),
    ({"alpha": True, "background": "#00ff00"}, InputError, "transparent output has no background"),
    ({"background": "plaid"}, InputError, "is not a colour"),
    ({"model": "no-such-engine"}, EngineError, "unknown engine"),
])
def test_process_refuses_bad_options_before_writing(tmp_path: Path, keyer: Path, clip: Path, kwargs: dict,
                                                    error: type, message: str) -> None:
    options = {"model": keyer, **kwargs}
    with pytest.raises(error, match=message):
        livematte.process(clip, tmp_path / "out.mp4", **options)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_names_the_option_each_front_end_spells_its_own_way(tmp_path: Path, keyer: Path,
                                                                              clip: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError) as info:
        livematte.process(clip, out, model=keyer)
    assert info.value.hint == Hint("overwrite", True, "to replace it")
    assert str(info.value) == f"output exists: {out} (pass overwrite=True to replace it)"
    done = run_cli("process", str(clip), str(out), "--model", str(keyer))
    assert done.returncode == 5
    assert done.stderr.strip() == f"livematte: error: output exists: {out} (use --overwrite to replace it)"
    assert out.read_bytes() == b"keep me"


def test_hints_spell_valued_options_with_their_value() -> None:
    hint = Hint("quality_method", "closed-form")
    assert hint.for_cli() == "use --quality-method closed-form"
    assert hint.for_python() == "pass quality_method='closed-form'"


def test_matter_carries_state_and_reset_forgets_it(rvm_manifest_path: Path) -> None:
    # the recurrent peer: the same frame gives a different matte once state has built up, the first again after reset
    frame = np.zeros((144, 256, 3), np.uint8)
    frame[30:144, 90:170] = (200, 160, 140)
    with livematte.Matter(rvm_manifest_path) as matter:
        first = matter.infer(frame).alpha
        later = [matter.infer(frame).alpha for _ in range(3)][-1]
        matter.reset()
        again = matter.infer(frame).alpha
    assert isinstance(first, np.ndarray) and first.shape == (144, 256) and first.dtype == np.float32
    assert np.abs(later - first).max() > 1e-3
    np.testing.assert_allclose(again, first, atol=1e-5)


def test_matter_by_name_is_the_default_engine() -> None:
    with livematte.Matter() as default, livematte.Matter("lm-live") as named:
        assert default.manifest.name == named.manifest.name == "lm-live"


def test_open_sink_picks_the_output_kind_from_the_target(tmp_path: Path, clip: Path) -> None:
    with open_source(str(clip)) as source:
        sinks = [open_sink(tmp_path / "a.mp4", source), open_sink(tmp_path / "frames", source),
                 open_sink(tmp_path / "b%03d.png", source), open_sink("udp://127.0.0.1:9", source)]
    try:
        assert [type(sink) for sink in sinks] == [VideoFileSink, ImageSequenceSink, ImageSequenceSink, StreamSink]
    finally:
        for sink in sinks:
            sink.abort()


class _Reverse:
    """A stage that holds every frame back and hands them on in reverse: breaks the order a stage must keep."""

    name = "reverse"

    def run(self, frames: Iterator[Work]) -> Iterator[Work]:
        yield from reversed(list(frames))


class _Invert:
    """A stage of one class: inverts the matte it is given (a test of the stage seam)."""

    name = "invert"

    def run(self, frames: Iterator[Work]) -> Iterator[Work]:
        for work in frames:
            assert work.matte is not None
            work.matte.alpha = 1.0 - work.matte.alpha
            yield work


class _Frames(Sink):
    """Keeps what it is given, in order."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.pts: list[float | None] = []

    def write(self, image: np.ndarray, pts: float | None) -> None:
        self.images.append(image)
        self.pts.append(pts)
        self.written += 1

    def close(self, complete: bool = True) -> None:
        pass


def _run(clip: Path, keyer: Path, extra: list) -> _Frames:
    source = open_source(str(clip))
    sink = _Frames()
    with livematte.Matter(keyer) as matter:
        stages = [MatteStage(matter), *extra, CompositeStage(Compositor("#00ff00", source.size))]
        result = Pipeline(source, stages, [sink]).run()
    assert result.stages["decode"].frames == result.stages["encode"].frames == 12
    assert all(result.stages[stage.name].frames == 12 for stage in stages)
    return sink


def test_a_new_stage_is_one_class_in_the_list(clip: Path, keyer: Path) -> None:
    plain, inverted = _run(clip, keyer, []), _run(clip, keyer, [_Invert()])
    person = disc_alpha(96, 64, 5)
    # inverted matte: the person becomes background (green) and the backdrop is kept
    assert np.abs(plain.images[5][~person].astype(int) - (0, 255, 0)).mean() < 20
    assert np.abs(inverted.images[5][person].astype(int) - (0, 255, 0)).mean() < 20
    assert plain.pts == sorted(plain.pts)


def test_frames_reach_the_sinks_in_the_order_the_stages_hand_them_on(clip: Path, keyer: Path) -> None:
    # the pipeline keeps no order of its own: a stage that reorders shows up at the sink (so the rule is the stage's)
    assert _run(clip, keyer, [_Reverse()]).pts == sorted(_run(clip, keyer, []).pts, reverse=True)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_a_photo_is_one_frame_and_mattes_its_mirror_image_too_by_default(tmp_path: Path, clip: Path,
                                                                         suffix: str) -> None:
    from livematte.api import default_flip_average

    photo = tmp_path / f"photo{suffix}"
    cv2.imwrite(str(photo), np.full((64, 96, 3), 90, np.uint8))
    with open_source(str(photo)) as source:
        assert source.frame_count == 1  # every image demuxer, not only the one a plain .jpg path gets
        assert default_flip_average("realtime", source)
    with open_source(str(clip)) as source:
        assert not default_flip_average("realtime", source) and default_flip_average("high", source)
