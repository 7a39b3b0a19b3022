"""The ``livematte`` command as users run it: real files in, real files out,
one-line errors with distinct exit codes, nothing half-written left behind."""
from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from livematte.cli import main
from media_helpers import cli_env, leftovers, one_error_line as _one_error_line, probe, run_cli, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "in.mp4", size=(96, 64), frames=24, fps=24)


def test_process_writes_video_audio_and_mattes(tmp_path: Path, keyer: Path, clip: Path, capsys) -> None:
    out, mattes = tmp_path / "out.mp4", tmp_path / "mattes"
    code = main(["process", str(clip), str(out), "--model", str(keyer), "--bg", "#00ff00", "--matte-out", str(mattes)])
    assert code == 0
    assert "wrote 24 frames" in capsys.readouterr().err
    before, after = probe(clip), probe(out)
    assert after["video"]["frames"] == 24 and after["audio"]["duration"] == pytest.approx(before["audio"]["duration"], abs=1e-3)
    assert after["duration"] == pytest.approx(before["duration"], abs=0.05)
    assert sorted(p.name for p in mattes.iterdir())[:2] == ["000001.png", "000002.png"]
    assert len(list(mattes.iterdir())) == 24
    assert leftovers(tmp_path) == []


def test_matte_out_as_a_video_file_carries_the_matte_as_its_luma(tmp_path: Path, keyer: Path, clip: Path) -> None:
    import av

    pngs, video = tmp_path / "mattes", tmp_path / "matte.mp4"
    for matte_out in (pngs, video):
        assert main(["-q", "process", str(clip), str(tmp_path / f"{matte_out.stem}-out.mp4"), "--model", str(keyer),
                     "--matte-out", str(matte_out)]) == 0
    info = probe(video)
    assert info["video"]["frames"] == 24 and info["video"]["size"] == (96, 64) and "audio" not in info
    assert info["duration"] == pytest.approx(probe(clip)["duration"], abs=0.05)
    with av.open(str(video)) as container:
        lumas = [frame.to_ndarray(format="gray").astype(np.float32) for frame in container.decode(video=0)]
    truth = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) for path in sorted(pngs.iterdir())]
    assert truth[12].min() < 10 and truth[12].max() > 245  # a real matte, not a blank one
    assert max(float(np.abs(a - b).mean()) for a, b in zip(lumas, truth)) < 3.0
    assert leftovers(tmp_path) == []


def test_a_photo_becomes_a_cut_out_image_and_its_matte(tmp_path: Path, keyer: Path, capsys) -> None:
    from media_helpers import disc_alpha, disc_frame

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(disc_frame(96, 64, 3), cv2.COLOR_RGB2BGR))
    cutout, matte, flat = tmp_path / "cutout.png", tmp_path / "matte.png", tmp_path / "flat.jpg"
    assert main(["process", str(photo), str(cutout), "--model", str(keyer), "--alpha", "--matte-out", str(matte)]) == 0
    assert "wrote 1 frame to" in capsys.readouterr().err
    rgba = cv2.imread(str(cutout), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (64, 96, 4)
    person = disc_alpha(96, 64, 3)
    assert rgba[..., 3][person].mean() > 240 and rgba[..., 3][~person].mean() < 15
    assert np.array_equal(cv2.imread(str(matte), cv2.IMREAD_UNCHANGED), rgba[..., 3])  # both lossless
    assert main(["-q", "process", str(photo), str(flat), "--model", str(keyer), "--bg", "#00ff00"]) == 0
    green = cv2.imread(str(flat))[~person].mean(axis=0)  # BGR
    assert green[1] > 200 and green[0] < 40 and green[2] < 40
    assert leftovers(tmp_path) == []


def test_an_image_file_output_is_refused_for_a_video_or_a_transparent_jpeg(tmp_path: Path, keyer: Path,
                                                                          clip: Path) -> None:
    from media_helpers import disc_frame

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(disc_frame(96, 64, 3), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    out.mkdir()
    for args, words in (([str(clip), str(out / "frame.png")], "the input is a video"),
                        ([str(photo), str(out / "cut.jpg"), "--alpha"], "not .jpg")):
        result = run_cli("process", *args, "--model", str(keyer))
        assert result.returncode == 5, result.stderr
        assert words in _one_error_line(result.stderr)
        assert list(out.iterdir()) == []


def test_an_image_sequence_in_is_a_video_out_at_the_given_rate(tmp_path: Path, keyer: Path, clip: Path) -> None:
    frames, out, again = tmp_path / "frames", tmp_path / "out.mp4", tmp_path / "again"
    assert main(["-q", "process", str(clip), str(frames), "--model", str(keyer), "--bg", "#00ff00"]) == 0
    assert main(["-q", "process", str(frames), str(out), "--model", str(keyer), "--fps", "12"]) == 0
    info = probe(out)
    assert info["video"]["frames"] == 24 and info["duration"] == pytest.approx(2.0, abs=0.1)
    assert main(["-q", "process", str(frames / "%06d.png"), str(again), "--model", str(keyer), "--alpha"]) == 0
    assert len(list(again.iterdir())) == 24
    result = run_cli("process", str(clip), str(tmp_path / "x.mp4"), "--model", str(keyer), "--fps", "12")
    assert result.returncode == 2 and "keeps its own" in _one_error_line(result.stderr)
    assert leftovers(tmp_path) == []


def test_matte_out_is_refused_before_anything_is_written(tmp_path: Path, keyer: Path, clip: Path) -> None:
    out, matte = tmp_path / "out.mp4", tmp_path / "matte.mp4"
    matte.write_bytes(b"precious")
    for matte_out, code, words in ((matte, 5, "--overwrite"), ("udp://127.0.0.1:5000", 5, "cannot be streamed")):
        result = run_cli("process", str(clip), str(out), "--model", str(keyer), "--matte-out", str(matte_out))
        assert result.returncode == code, result.stderr
        assert words in _one_error_line(result.stderr)
        assert not out.exists() and matte.read_bytes() == b"precious" and leftovers(tmp_path) == []


@pytest.mark.parametrize("name, expect", [("out.mov", "yuva444p"), ("out.webm", "yuv420p"), ("frames/", "png")])
def test_process_alpha_outputs(tmp_path: Path, keyer: Path, clip: Path, name: str, expect: str) -> None:
    out = tmp_path / name
    assert main(["-q", "process", str(clip), str(tmp_path) + "/" + name, "--model", str(keyer), "--alpha"]) == 0
    if name.endswith("/"):
        first = cv2.imread(str(out / "000001.png"), cv2.IMREAD_UNCHANGED)
        assert first.shape[2] == 4 and len(list(out.iterdir())) == 24
        alpha = first[:, :, 3]
        assert alpha.min() < 10 and alpha.max() > 245  # transparent around the person, opaque on it
        return
    info = probe(out)
    assert info["video"]["frames"] == 24 and info["video"]["pix_fmt"].startswith(expect)
    if name.endswith(".webm"):
        assert info["video"]["metadata"].get("alpha_mode") == "1"


def test_engines_list_and_info(keyer: Path, capsys) -> None:
    assert main(["engines", "list"]) == 0
    assert main(["engines", "info", str(keyer)]) == 0
    out = capsys.readouterr().out
    # sizes read width x height, as --size takes them: the keyer's graph is 32 high, 48 wide
    assert "red-keyer" in out and "48x32" in out and "32x48" not in out
    assert "CC0-1.0" in out and "not measured" in out


def test_sample_command_writes_a_clip_with_audio(tmp_path: Path) -> None:
    out = tmp_path / "sample.mp4"
    assert main(["-q", "sample", str(out), "--size", "160x96", "--seconds", "1"]) == 0
    info = probe(out)
    assert info["video"]["frames"] == 30 and info["video"]["size"] == (160, 96)
    assert info["audio"]["duration"] == pytest.approx(1.0, abs=0.05)


def _bad_manifest(tmp_path: Path, keyer: Path) -> Path:
    """A manifest naming an input its ONNX does not have."""
    data = json.loads(keyer.read_text())
    data["input"]["name"] = "image"
    data["onnx"] = str(keyer.with_suffix(".onnx"))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


def test_bad_inputs_end_with_one_line_and_the_right_code(tmp_path: Path, keyer: Path, clip: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    out = tmp_path / "out" / "result.mp4"
    out.parent.mkdir()
    cases = [
        (["process", str(tmp_path / "missing.mp4"), str(out), "--model", str(keyer)], 2, "not found"),
        (["process", str(text), str(out), "--model", str(keyer)], 2, "not a readable video"),
        (["process", str(truncated), str(out), "--model", str(keyer)], 2, str(truncated)),
        (["process", str(clip), str(out), "--model", "no-such-engine"], 3, "no-such-engine"),
        (["process", str(clip), str(out), "--model", str(_bad_manifest(tmp_path, keyer))], 3, ""),
        (["process", str(clip), str(out), "--model", str(keyer), "--bg", "#00ff00", "--alpha"], 2, "--alpha"),
        (["process", str(clip), str(out), "--model", str(keyer), "--alpha"], 5, "transparent background needs"),
        (["webcam", "--device", "/dev/video99", "--model", str(keyer), "--virtual-cam"], 4, "cannot open camera"),
    ]
    for args, code, words in cases:
        result = run_cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert words in _one_error_line(result.stderr), (args, result.stderr)
        assert list(out.parent.iterdir()) == [], args  # nothing under the requested name, no temp left


def test_existing_output_is_refused_without_overwrite(tmp_path: Path, keyer: Path, clip: Path, capsys) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    assert main(["process", str(clip), str(out), "--model", str(keyer)]) == 5
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert main(["-q", "process", str(clip), str(out), "--model", str(keyer), "--overwrite"]) == 0
    assert probe(out)["video"]["frames"] == 24


def _limit_file_size() -> None:
    # a file-size limit behaves like a full disk for the writer (EFBIG instead of a kill)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_full_disk_leaves_no_output(tmp_path: Path, keyer: Path) -> None:
    big = write_clip(tmp_path / "big.mp4", size=(320, 240), frames=48, fps=24)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run_cli("process", str(big), str(out_dir / "out.mp4"), "--model", str(keyer), "--crf", "0",
                            preexec_fn=_limit_file_size)
    assert result.returncode == 5, result.stderr
    _one_error_line(result.stderr)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_leaves_a_playable_partial_file(tmp_path: Path, keyer: Path, signum: int) -> None:
    long_clip = write_clip(tmp_path / "long.mp4", size=(96, 64), frames=1500, fps=30)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "livematte", "process", str(long_clip), str(out), "--model", str(keyer)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 2000 for p in tmp_path.glob(".out.*.part.mp4")):
        assert proc.poll() is None and time.monotonic() < deadline, "job ended before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    info = probe(out)
    assert 0 < info["video"]["frames"] < 1500
    assert info["audio"]["duration"] == pytest.approx(info["video"]["frames"] / 30, abs=0.1)  # audio cut to match
    assert leftovers(tmp_path) == []


def test_python_dash_m_entry_point() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "process" in result.stdout and "webcam" in result.stdout




def test_bench_prints_every_stage(keyer: Path, capsys) -> None:
    assert main(["bench", "--model", str(keyer), "--sizes", "160x96", "--frames", "8"]) == 0
    table = capsys.readouterr().out
    assert all(column in table for column in ("decode", "infer", "composite", "encode", "end-to-end"))
    assert "red-keyer" in table and "160x96" in table


@pytest.mark.parametrize(
    "variant, clip_args, out_size",
    [
        ("rotated", dict(size=(96, 64), rotation=-90), (64, 96)),
        ("vfr", dict(size=(96, 64), pts_ticks=[0, 100, 150, 400, 410, 700, 800]), (96, 64)),
        ("no-audio", dict(size=(96, 64), audio=False), (96, 64)),
        ("odd-size", dict(size=(95, 63), codec="mpeg4"), (96, 64)),
    ],
)
def test_process_input_variants_keep_frames_and_timing(tmp_path: Path, keyer: Path, variant: str, clip_args: dict,
                                                       out_size: tuple[int, int]) -> None:
    if variant == "odd-size":  # H.264 cannot store odd sizes; MPEG-4 part 2 in .mkv can
        clip = write_clip(tmp_path / "in.mkv", frames=6, **clip_args)
    else:
        clip = write_clip(tmp_path / "in.mp4", frames=6, **clip_args)
    out = tmp_path / "out.mp4"
    assert main(["-q", "process", str(clip), str(out), "--model", str(keyer)]) == 0
    before, after = probe(clip), probe(out)
    assert after["video"]["frames"] == before["video"]["frames"]
    assert after["video"]["pts"] == pytest.approx(before["video"]["pts"], abs=2e-3)
    assert after["video"]["size"] == out_size
    assert ("audio" in after) == ("audio" in before)


def test_webcam_command_records_and_fails_cleanly_without_virtual_camera(tmp_path: Path, keyer: Path, clip: Path,
                                                                        capsys) -> None:
    """OpenCV opens a video file as if it were a camera, so the whole webcam
    command runs here; without v4l2loopback the virtual camera must fail with
    one line, code 4, and remove the recording it had already started.
    A file given as --device plays at its own rate (24 fps here), as a
    camera would, and --duration ends the session on time."""
    record = tmp_path / "rec.mp4"
    three_seconds = write_clip(tmp_path / "cam.mp4", size=(96, 64), frames=72, fps=24, audio=False)
    started = time.monotonic()
    assert main(["webcam", "--device", str(three_seconds), "--model", str(keyer), "--record", str(record),
                 "--duration", "1.5"]) == 0
    assert 1.4 < time.monotonic() - started < 3.0
    assert 30 <= probe(record)["video"]["frames"] <= 38  # 1.5 s at 24 fps, none read ahead
    assert "latency" in capsys.readouterr().err  # live stats were reported

    from livematte.errors import DeviceError
    from livematte.sinks import VirtualCameraSink

    try:
        VirtualCameraSink((96, 64), 30).close()
        pytest.skip("a virtual camera device exists on this machine")
    except DeviceError:
        pass
    second = tmp_path / "rec2.mp4"
    result = run_cli("webcam", "--device", str(clip), "--model", str(keyer), "--record", str(second), "--virtual-cam")
    assert result.returncode == 4
    assert "virtual camera" in _one_error_line(result.stderr)
    assert not second.exists() and leftovers(tmp_path) == []


def test_progress_line_shows_count_rate_and_eta() -> None:
    from livematte.progress import format_progress

    line = format_progress(50, 150, 25.0)
    assert " 50/150" in line and "33%" in line and "25.0 fps" in line and "ETA 0:04" in line
    assert "ETA" not in format_progress(50, None, 25.0)
