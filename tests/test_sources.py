"""Sources decode real files and fail on bad ones with one-line input errors."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from livematte.errors import DeviceError, InputError
from livematte.sources import CameraSource, FileSource, StreamSource, open_source
from media_helpers import BACKDROP_RGB, PERSON_RGB, disc_alpha, disc_frame, write_audio_only, write_clip


def test_file_source_yields_every_frame_with_pts_and_audio(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", size=(96, 64), frames=12, fps=24)
    with open_source(str(clip)) as src:
        assert isinstance(src, FileSource) and not src.live
        assert src.size == (96, 64) and src.fps == pytest.approx(24)
        assert src.frame_count == 12 and src.audio_path == str(clip)
        frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert [f.pts for f in frames] == pytest.approx([i / 24 for i in range(12)])
    first = frames[0].rgb
    assert first.shape == (64, 96, 3) and first.dtype == np.uint8
    mask = disc_alpha(96, 64, 0)
    # the decoded picture is the one encoded (colours survive H.264 within a few levels)
    assert np.abs(first[mask].mean(0) - PERSON_RGB).max() < 12
    assert np.abs(first[~mask].mean(0) - BACKDROP_RGB).max() < 12


def test_rotation_metadata_makes_frames_upright(tmp_path: Path) -> None:
    # -90 (counter-clockwise) is what phones write for portrait video: show it turned 90° clockwise
    clip = write_clip(tmp_path / "rotated.mp4", size=(96, 64), frames=3, audio=False, rotation=-90)
    with open_source(str(clip)) as src:
        assert (src.size.width, src.size.height) == (64, 96)
        frame = next(iter(src)).rgb
    assert frame.shape[:2] == src.size.shape == (96, 64)
    # the disc sits left of centre in the stored frame; clockwise it moves to the top
    expected = np.rot90(disc_alpha(96, 64, 0), k=-1)
    red = frame[:, :, 0] > 128
    assert (red == expected).mean() > 0.97


def test_variable_frame_rate_keeps_each_pts(tmp_path: Path) -> None:
    ticks = [0, 100, 150, 400, 410, 700]  # time base 1/2400 at fps=24
    clip = write_clip(tmp_path / "vfr.mp4", frames=len(ticks), audio=False, pts_ticks=ticks)
    with open_source(str(clip)) as src:
        pts = [f.pts for f in src]
    assert pts == pytest.approx([t / 2400 for t in ticks], abs=1e-4)


def test_seek_starts_at_the_requested_time(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=24, fps=24, audio=False)
    with open_source(str(clip)) as src:
        src.seek(0.5)
        pts = [f.pts for f in src]
    assert pts[0] == pytest.approx(0.5) and len(pts) == 12


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: d, "no images in folder"),  # a folder is an image sequence; this one has none
        (lambda d: _write(d / "empty.mp4", b""), "empty"),
        (lambda d: _write(d / "text.mp4", b"not a video\n" * 50), "not a readable video"),
    ],
    ids=["missing", "directory", "zero-byte", "text-named-mp4"],
)
def test_bad_files_are_input_errors(tmp_path: Path, make, words: str) -> None:
    with pytest.raises(InputError, match=words) as info:
        open_source(str(make(tmp_path)))
    assert "\n" not in str(info.value)


def test_truncated_and_audio_only_files_are_input_errors(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=12)
    data = clip.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # mp4 index (moov) is at the end: cut off
    with pytest.raises(InputError):
        open_source(str(truncated))

    with pytest.raises(InputError, match="no video stream"):
        open_source(str(write_audio_only(tmp_path / "audio.m4a")))


def test_corrupt_packets_in_the_middle_are_skipped_not_fatal(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.ts", frames=48, audio=False)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    # garbage over a stretch of the stream (MPEG-TS resyncs on the next 0x47 sync byte)
    data[middle : middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    with open_source(str(damaged)) as src:
        frames = list(src)
    assert 24 <= len(frames) <= 48  # decoding went on past the damage


def test_camera_that_does_not_open_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match="cannot open camera /dev/video99"):
        CameraSource("/dev/video99")


def test_stream_with_no_sender_times_out_as_input_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(InputError, match="no data from .* is the sender running"):
        StreamSource(f"udp://127.0.0.1:{port}", open_timeout=1.0)
    assert time.monotonic() - started < 10


def test_camera_that_drops_out_is_reopened(tmp_path: Path) -> None:
    """OpenCV opens a video file like a camera; when the file ends, reads fail
    the way an unplugged camera's do, and the source must reopen it."""
    clip = write_clip(tmp_path / "cam.mp4", size=(96, 64), frames=10, audio=False)
    source = CameraSource(str(clip), retries=2)
    assert source.live and source.size == (96, 64)
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == 25:
            break
    source.close()
    assert len(frames) == 25  # three passes over a 10-frame "camera"
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:]))


def test_camera_that_stays_gone_is_a_device_error(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "cam.mp4", size=(96, 64), frames=5, audio=False)
    source = CameraSource(str(clip), retries=2)
    clip.unlink()  # unplugged for good
    with pytest.raises(DeviceError, match="stopped delivering"):
        for _ in source:
            pass


def _write_frames(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        cv2.imwrite(str(folder / name), cv2.cvtColor(disc_frame(64, 48, index), cv2.COLOR_RGB2BGR))


def test_an_image_sequence_is_read_in_number_order_at_the_given_rate(tmp_path: Path) -> None:
    from livematte.sequence_source import ImageSequenceSource

    _write_frames(tmp_path / "seq", [f"f{i}.png" for i in range(1, 13)])  # f2 before f10: numbers, not text
    (tmp_path / "seq" / ".f5.part.png").write_bytes(b"an interrupted writer's temporary")  # hidden: not a frame
    for spec, fps in ((tmp_path / "seq", None), (tmp_path / "seq" / "f%d.png", 24.0)):
        with open_source(str(spec), fps=fps) as source:
            assert isinstance(source, ImageSequenceSource) and source.frame_count == 12
            frames = list(source)
        rate = fps or 30.0
        assert [f.pts for f in frames] == pytest.approx([i / rate for i in range(12)])
        for index, frame in enumerate(frames):
            assert np.array_equal(frame.rgb, disc_frame(64, 48, index)), (spec, index)


def test_bad_image_sequences_are_input_errors_and_a_bad_frame_is_skipped(tmp_path: Path) -> None:
    _write_frames(tmp_path / "mixed", ["a1.png", "a2.jpg"])
    _write_frames(tmp_path / "empty", [])
    (tmp_path / "videos").mkdir()
    write_clip(tmp_path / "videos" / "a.mp4", frames=2)
    for spec, words in ((tmp_path / "mixed", "holds .jpg and .png images"), (tmp_path / "empty", "no images"),
                        (tmp_path / "videos", "livematte batch"),
                        (tmp_path / "none" / "%06d.png", "input not found"),
                        (tmp_path / "empty" / "%06d.png", "no file in")):
        with pytest.raises(InputError, match=words):
            open_source(str(spec))
    with pytest.raises(InputError, match="keeps its own"):
        open_source(str(write_clip(tmp_path / "clip.mp4", frames=2)), fps=24.0)
    _write_frames(tmp_path / "seq", [f"{i:06d}.png" for i in range(1, 5)])
    (tmp_path / "seq" / "000003.png").write_bytes(b"not a png")
    with open_source(str(tmp_path / "seq")) as source:
        assert [f.index for f in source] == [0, 1, 2] and source.decode_errors == 1
