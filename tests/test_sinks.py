"""Sinks write real, playable files (checked back with PyAV) and never leave
half-written outputs under the requested name."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from livematte.errors import DeviceError, OutputError
from livematte.compositor import alpha_to_u8
from livematte.sinks import ImageSequenceSink, VideoFileSink, VirtualCameraSink
from livematte.sources import open_source
from media_helpers import leftovers, probe, write_clip


def _copy(clip: Path, out: Path, alpha: bool = False, **kwargs) -> VideoFileSink:
    """Re-encode ``clip`` into ``out`` through the sink (RGBA with a ramp alpha when asked)."""
    with open_source(str(clip)) as src:
        sink = VideoFileSink(out, src.size, src.fps, src.time_base, alpha=alpha, audio_from=src.audio_path, **kwargs)
        with sink:
            for frame in src:
                image = frame.rgb
                if alpha:
                    ramp = np.linspace(0, 255, image.shape[1], dtype=np.uint8)
                    image = np.dstack([image, np.broadcast_to(ramp, image.shape[:2])])
                sink.write(image, frame.pts)
    return sink


def test_mp4_keeps_frame_count_timestamps_and_audio(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=24, fps=24)
    out = tmp_path / "out.mp4"
    _copy(clip, out)
    before, after = probe(clip), probe(out)
    assert after["video"]["codec"] == "h264" and after["video"]["pix_fmt"] == "yuv420p"
    assert after["video"]["frames"] == before["video"]["frames"] == 24
    assert after["video"]["pts"] == pytest.approx(before["video"]["pts"], abs=1e-3)
    assert "audio" in after and after["audio"]["codec"] == "aac"
    assert after["audio"]["duration"] == pytest.approx(before["audio"]["duration"], abs=1e-3)
    assert after["duration"] == pytest.approx(before["duration"], abs=0.05)
    assert leftovers(tmp_path) == []


def test_mov_alpha_is_prores_4444_with_alpha(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "out.mov"
    _copy(clip, out, alpha=True)
    info = probe(out)
    assert info["video"]["codec"] == "prores" and info["video"]["frames"] == 6
    assert info["video"]["pix_fmt"].startswith("yuva444p")
    assert "audio" in info
    import av

    with av.open(str(out)) as c:
        rgba = next(c.decode(video=0)).to_ndarray(format="rgba")
    ramp = np.linspace(0, 255, rgba.shape[1])
    assert np.abs(rgba[:, :, 3].mean(0) - ramp).max() < 3  # the alpha we wrote comes back


def test_webm_alpha_is_vp9_with_alpha_plane(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=12)
    out = tmp_path / "out.webm"
    _copy(clip, out, alpha=True)
    info = probe(out)
    assert info["video"]["codec"] == "vp9" and info["video"]["frames"] == 12
    # WebM cannot hold the input's AAC: the audio is re-encoded to Opus, same length
    assert info["audio"]["codec"] == "opus"
    assert info["audio"]["duration"] == pytest.approx(probe(clip)["audio"]["duration"], abs=0.03)
    # Matroska flags the BlockAdditional alpha plane; FFmpeg's libvpx decoder reads it
    assert info["video"]["metadata"].get("alpha_mode") == "1"
    import av

    decoder = av.CodecContext.create("libvpx-vp9", "r")
    with av.open(str(out)) as c:
        frames = [f for packet in c.demux(video=0) for f in decoder.decode(packet)]
    assert frames[0].format.name == "yuva420p"
    alpha = frames[0].to_ndarray(format="rgba")[:, :, 3]
    assert np.abs(alpha.mean(0) - np.linspace(0, 255, alpha.shape[1])).max() < 12  # the ramp we wrote


def test_alpha_in_mp4_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="transparent background"):
        VideoFileSink(tmp_path / "out.mp4", (64, 48), 24, alpha=True)
    assert list(tmp_path.iterdir()) == []


def test_png_sequence_rgba_and_grey_mattes(tmp_path: Path) -> None:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 77
    alpha = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    with ImageSequenceSink(tmp_path / "rgba") as frames, ImageSequenceSink(tmp_path / "matte") as mattes:
        for _ in range(3):
            frames.write(rgba, None)
            mattes.write(alpha_to_u8(alpha), None)
    assert sorted(p.name for p in (tmp_path / "rgba").iterdir()) == ["000001.png", "000002.png", "000003.png"]
    back = cv2.imread(str(tmp_path / "rgba" / "000002.png"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (20, 30, 4) and back[0, 0, 3] == 77 and back[0, 0, 2] == 200
    grey = cv2.imread(str(tmp_path / "matte" / "000003.png"), cv2.IMREAD_UNCHANGED)
    assert grey.dtype == np.uint8 and grey.ndim == 2
    assert np.array_equal(grey, alpha_to_u8(alpha))  # lossless 8-bit
    assert leftovers(tmp_path) == []


def test_png_pattern_output(tmp_path: Path) -> None:
    (tmp_path / "seq").mkdir()
    with ImageSequenceSink(tmp_path / "seq" / "frame_%04d.png") as sink:
        sink.write(np.zeros((4, 4, 3), np.uint8), None)
    assert [p.name for p in (tmp_path / "seq").iterdir()] == ["frame_0001.png"]


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=4, audio=False)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        _copy(clip, out)
    assert out.read_bytes() == b"keep me"
    _copy(clip, out, overwrite=True)
    assert probe(out)["video"]["frames"] == 4


def test_abort_removes_the_partial_file(tmp_path: Path) -> None:
    sink = VideoFileSink(tmp_path / "out.mp4", (64, 48), 24)
    for i in range(5):
        sink.write(np.full((48, 64, 3), i * 20, np.uint8), i / 24)
    assert leftovers(tmp_path)  # written under a temporary name meanwhile
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_unwritable_directory_is_an_output_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        missing = tmp_path / "no" / "such" / "dir" / "out.mp4"
        with pytest.raises(OutputError, match="does not exist"):
            VideoFileSink(missing, (64, 48), 24)
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="not writable"):
        VideoFileSink(locked / "out.mp4", (64, 48), 24)


def test_odd_sizes_are_padded_for_h264(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with VideoFileSink(out, (63, 1), 24) as sink:
        for i in range(3):
            sink.write(np.full((1, 63, 3), 100, np.uint8), i / 24)
    info = probe(out)
    assert info["video"]["frames"] == 3 and info["video"]["size"] == (64, 2)


def test_virtual_camera_without_device_says_how_to_get_one() -> None:
    try:
        sink = VirtualCameraSink((64, 48), 30)
    except DeviceError as exc:
        message = str(exc)
        assert "\n" not in message and "virtual camera" in message
        assert any(hint in message for hint in ("modprobe v4l2loopback", "OBS"))
    else:  # a real virtual camera exists here: it must accept frames
        sink.write(np.zeros((48, 64, 3), np.uint8), None)
        sink.close()
        pytest.skip(f"a virtual camera device exists ({sink.device}); wrote one frame to it")
