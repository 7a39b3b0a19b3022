"""``livematte batch --ray`` on a real local Ray instance on 127.0.0.1 (2 CPUs, no dashboard,
a small object store, usage stats off): the same results and report as the local runner,
a failing file, a worker that dies, retried a bounded number of times, and a stop (Ctrl-C)
that finalises the running file and leaves the others untouched."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from batch_helpers import dies_on_crash_files, job_options
from livematte.batch.job import DONE, FAILED, INTERRUPTED, NOT_STARTED
from livematte.batch.plan import plan_jobs
from livematte.batch.ray_runner import LOCAL_OBJECT_STORE_BYTES, run_ray
from livematte.batch.run import LOCAL_RAY, run_batch
from media_helpers import REPO, probe, write_clip, write_keyer_engine

#: the whole module's budget, Ray's start-up included (about 10 s of it on 2 cores)
BUDGET_S = 150


@pytest.fixture(scope="module")
def ray_instance():
    if os.environ.get("CI") is None:
        ray = pytest.importorskip("ray", reason="Ray is the [cluster] extra: pip install 'livematte[cluster]'")
    else:
        import ray
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    started = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}})
    yield started
    ray.shutdown()
    assert time.monotonic() - started < BUDGET_S


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ray-in")
    for name, frames in (("a.mp4", 10), ("b.mp4", 14), ("c.mp4", 8)):
        write_clip(root / name, frames=frames, audio=False)
    (root / "broken.mp4").write_bytes(b"\x00" * 64)
    keyer = write_keyer_engine(tmp_path_factory.mktemp("keyer"))
    return root, job_options(keyer)


def test_ray_runs_the_batch_with_one_failing_file(ray_instance: float, inputs: tuple[Path, dict], tmp_path: Path) -> None:
    root, options = inputs
    jobs = [j for j in plan_jobs([str(root)], tmp_path / "out", options=options) if not j.input.name.startswith("crash")]
    outcome = run_batch(jobs, parallel=2, on_result=lambda r: None, ray_address=LOCAL_RAY)
    status = {Path(r.input).name: r for r in outcome.results}
    assert status["broken.mp4"].status == FAILED and "not a readable video" in status["broken.mp4"].error
    for name, frames in (("a.mp4", 10), ("b.mp4", 14), ("c.mp4", 8)):
        assert status[name].status == DONE and status[name].frames == frames
        assert probe(tmp_path / "out" / name)["video"]["frames"] == frames
    assert outcome.signal is None
    again = run_batch(jobs, parallel=2, on_result=lambda r: None, ray_address=LOCAL_RAY)
    assert [r.status for r in again.results if r.status != FAILED] == ["skipped"] * 3  # resumed, nothing redone


def test_a_dying_ray_worker_is_retried_then_reported(ray_instance: float, inputs: tuple[Path, dict], tmp_path: Path) -> None:
    root, options = inputs
    write_clip(root / "crash.mp4", frames=4, audio=False)
    jobs = plan_jobs([str(root / "crash.mp4"), str(root / "c.mp4")], tmp_path / "out", options=options)
    results = run_ray(jobs, None, 1, retries=1, on_result=lambda r: None, function=dies_on_crash_files)
    crashed, fine = results
    assert crashed.status == FAILED and "worker died" in crashed.error and crashed.attempts == 2
    assert (root / "crash.attempts").read_text().count("attempt") == 2  # one try and one bounded retry
    assert fine.status == DONE


def test_stopping_a_ray_batch_finalises_the_running_file_and_leaves_the_rest(
        ray_instance: float, inputs: tuple[Path, dict], tmp_path: Path) -> None:
    _, options = inputs
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    for name in ("one.mp4", "two.mp4"):
        write_clip(root / name, size=(320, 240), frames=400, fps=30, audio=False)
    jobs = plan_jobs([str(root)], out, options=options)
    writing = lambda: any(out.glob(".*part*"))  # noqa: E731 - Ctrl-C once the first file is being written
    first, second = run_ray(jobs, None, 2, retries=0, on_result=lambda r: None, should_stop=writing)
    assert first.status == INTERRUPTED and 0 < probe(out / "one.partial.mp4")["video"]["frames"] < 400
    assert second.status == NOT_STARTED
    assert sorted(p.name for p in out.iterdir()) == ["one.partial.mp4"]
