"""``livematte batch`` on one machine: relative names, resume, failures that do not stop
the batch, the report and exit codes, Ctrl-C, a worker process that dies."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch_helpers import dies_on_crash_files, job_options
from livematte.batch.job import DONE, FAILED
from livematte.batch.local import StopSignals, run_local
from livematte.batch.plan import expand_inputs, plan_jobs
from livematte.batch.run import share_cores
from livematte.errors import InputError
from media_helpers import cli_env, probe, run_cli, write_clip, write_keyer_engine


@pytest.fixture(scope="module")
def keyer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_keyer_engine(tmp_path_factory.mktemp("keyer"))


@pytest.fixture()
def clips(tmp_path: Path) -> Path:
    """in/a.mp4 (12 frames), in/sub/b.mp4 (18), in/bad.mp4 (not a video), in/notes.txt."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    write_clip(root / "a.mp4", frames=12)
    write_clip(root / "sub" / "b.mp4", frames=18)
    (root / "bad.mp4").write_bytes(b"not a video at all")
    (root / "notes.txt").write_text("not an input")
    return root


def test_inputs_keep_relative_names(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder = {str(rel) for _, rel in expand_inputs([str(clips)])}
    assert folder == {"a.mp4", "bad.mp4", "sub/b.mp4"}
    globbed = {str(rel) for _, rel in expand_inputs([str(clips) + "/**/b.mp4"])}
    assert globbed == {"sub/b.mp4"}
    jobs = plan_jobs([str(clips / "a.mp4"), str(clips / "sub")], out, suffix="_m", ext="webm")
    assert [j.output for j in jobs] == [out / "a_m.webm", out / "b_m.webm"]
    with pytest.raises(InputError, match="both write"):
        plan_jobs([str(clips / "a.mp4"), str(clips) + "/a.*"], out)
    with pytest.raises(InputError, match="no such file"):
        plan_jobs([str(clips / "missing.mp4")], out)
    with pytest.raises(InputError, match="--alpha needs"):
        plan_jobs([str(clips)], out, options={"alpha": True}, ext="mp4")


def test_a_batch_of_photos_writes_one_cut_out_and_one_matte_image_each(tmp_path: Path, keyer: Path) -> None:
    import cv2

    from media_helpers import disc_alpha, disc_frame

    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for index, name in enumerate(("a.jpg", "sub/b.png")):
        cv2.imwrite(str(photos / name), cv2.cvtColor(disc_frame(96, 64, index * 7), cv2.COLOR_RGB2BGR))
    write_clip(photos / "clip.mp4", frames=6)  # a video beside them is not a photo: left out
    out, mattes = tmp_path / "out", tmp_path / "mattes"
    result = run_cli("batch", str(photos), str(out), "--model", str(keyer), "--ext", "png", "--alpha",
                     "--matte-out", str(mattes))
    assert result.returncode == 0, result.stderr
    assert "2 done" in result.stderr and "(1 frame," in result.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == ["a.png", "sub/b.png"]
    for index, name in enumerate(("a.png", "sub/b.png")):
        alpha = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)[..., 3]
        person = disc_alpha(96, 64, index * 7)
        assert alpha[person].mean() > 240 and alpha[~person].mean() < 15
        assert (cv2.imread(str(mattes / name), cv2.IMREAD_GRAYSCALE) == alpha).all()
    videos = run_cli("batch", str(photos), str(tmp_path / "out2"), "--model", str(keyer))  # no --ext: the videos
    assert videos.returncode == 0 and "1 done" in videos.stderr, videos.stderr
    assert [p.name for p in (tmp_path / "out2").rglob("*.*")] == ["clip.mp4"]
    with pytest.raises(InputError, match="--ext png for photos"):
        plan_jobs([str(photos / "sub")], tmp_path / "out3")
    with pytest.raises(InputError, match="--alpha needs"):
        plan_jobs([str(photos)], tmp_path / "out3", options={"alpha": True}, ext="jpg")


def test_jobs_never_oversubscribe_the_cores() -> None:
    options, share = share_cores({"quality": "high", "quality_workers": 8, "threads": 0}, parallel=2, cores=8)
    assert share == 4 and options["threads"] == 4 and options["quality_workers"] == 4
    assert share_cores({"quality": "high", "quality_workers": 1}, parallel=4, cores=8)[0]["quality_workers"] == 1
    assert share_cores({}, parallel=4, cores=2)[1] == 1


def test_batch_writes_reports_fails_one_and_resumes(clips: Path, tmp_path: Path, keyer: Path) -> None:
    out, report, mattes = tmp_path / "out", tmp_path / "report.json", tmp_path / "mattes"
    args = ["batch", str(clips), str(out), "--model", str(keyer), "--bg", "#00ff00", "--jobs", "2",
            "--report", str(report), "--matte-out", str(mattes), "--threshold", "0.2"]
    first = run_cli(*args)
    assert first.returncode == 6, first.stderr
    assert "Traceback" not in first.stderr and "2 done, 1 failed" in first.stderr
    assert probe(out / "a.mp4")["video"]["frames"] == 12 and probe(out / "sub" / "b.mp4")["video"]["frames"] == 18
    assert len(list((mattes / "sub" / "b").iterdir())) == 18
    assert not (out / "bad.mp4").exists()
    assert sorted(p.name for p in out.rglob("*")) == ["a.mp4", "b.mp4", "sub"]  # no temporary names left
    data = json.loads(report.read_text())
    by_name = {Path(f["input"]).name: f for f in data["files"]}
    assert by_name["bad.mp4"]["status"] == FAILED and "not a readable video" in by_name["bad.mp4"]["error"]
    assert by_name["b.mp4"]["frames"] == 18 and data["counts"] == {"done": 2, "failed": 1}

    stamp = (out / "a.mp4").stat().st_mtime_ns
    (clips / "bad.mp4").unlink()
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert "2 skipped" in second.stderr and (out / "a.mp4").stat().st_mtime_ns == stamp
    third = run_cli(*args, "--overwrite")
    assert third.returncode == 0 and "2 done" in third.stderr and (out / "a.mp4").stat().st_mtime_ns != stamp


def test_bad_options_are_refused_before_any_file(clips: Path, tmp_path: Path, keyer: Path) -> None:
    result = run_cli("batch", str(clips), str(tmp_path / "out"), "--model", str(keyer), "--bg", "nowhere.png")
    assert result.returncode == 2 and result.stderr.startswith("livematte: error: background")
    assert not (tmp_path / "out").exists()


def test_a_worker_that_dies_fails_only_its_file(clips: Path, tmp_path: Path, keyer: Path) -> None:
    write_clip(clips / "crash.mp4", frames=6)
    options = job_options(keyer)
    jobs = [j for j in plan_jobs([str(clips)], tmp_path / "out", options=options) if j.input.name != "bad.mp4"]
    seen = []
    with StopSignals() as stop:
        results = run_local(jobs, 2, 1, seen.append, stop, function=dies_on_crash_files)
    status = {Path(r.input).name: (r.status, r.error) for r in results}
    assert status["crash.mp4"] == (FAILED, "worker process died (exit code 3)")
    assert status["a.mp4"][0] == status["b.mp4"][0] == DONE and len(seen) == 3


def test_ctrl_c_finalises_the_file_in_flight_and_leaves_the_rest(tmp_path: Path, keyer: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    for name in ("one", "two"):
        write_clip(root / f"{name}.mp4", size=(320, 240), frames=600, fps=30, audio=False)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "livematte", "batch", str(root), str(out), "--model", str(keyer),
                                "--jobs", "1", "--preset", "ultrafast"],
                               env=cli_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(out.glob(".*part*")) and time.monotonic() < deadline:  # the first file is being written
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGINT)  # to the batch only: it forwards one interrupt to its worker
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "1 interrupted, 1 not started" in stderr
    partial = out / "one.partial.mp4"
    assert 0 < probe(partial)["video"]["frames"] < 600
    assert sorted(p.name for p in out.iterdir()) == ["one.partial.mp4"]  # no temporary file, two.mp4 untouched
