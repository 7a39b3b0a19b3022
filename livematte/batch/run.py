"""A whole batch: skip finished files, share the cores, run locally or on Ray, gather results."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from livematte.batch.job import SKIPPED, FileResult
from livematte.batch.local import StopSignals, run_local
from livematte.batch.plan import FileJob, is_finished

#: ``--ray`` without an address: a local Ray instance
LOCAL_RAY = ""


def default_jobs(cores: int | None = None) -> int:
    """Files at once on this machine: one per two cores.

    ``benchmarks/batch.py --repeat 3`` on the 2-core box (6 clips of 3 s at
    640x360, 2026-12-01, machine shared with other jobs), median files/min:
    19.0 with one job, 16.0 with two, 13.4 with four. One ``process`` job
    already overlaps decoding, the engine, compositing and encoding on both
    cores; more jobs only add contention, memory and time to the first
    finished file.
    """
    return max(1, (cores or os.cpu_count() or 1) // 2)


def share_cores(options: dict, parallel: int, cores: int | None = None) -> tuple[dict, int]:
    """The per-file options and engine threads for ``parallel`` jobs on ``cores`` cores.

    Each job gets ``cores // parallel`` cores for its engine, its encoder and
    (``--quality high``) its worker processes, so jobs times workers never
    exceeds the cores.
    """
    share = max(1, (cores or os.cpu_count() or 1) // parallel)
    shared = dict(options)
    if not shared.get("threads"):
        shared["threads"] = share
    if shared.get("quality") == "high":
        shared["quality_workers"] = min(shared.get("quality_workers") or share, share)
    return shared, share


@dataclass
class BatchOutcome:
    results: list[FileResult]
    elapsed_s: float
    #: the signal that stopped it early, None when it ran to the end
    signal: int | None


def run_batch(jobs: Sequence[FileJob], parallel: int, on_result: Callable[[FileResult], None],
              overwrite: bool = False, ray_address: str | None = None, retries: int = 2) -> BatchOutcome:
    """Run every job not already finished (all with ``overwrite``); ``ray_address`` None runs
    locally, :data:`LOCAL_RAY` on a local Ray instance, anything else on that cluster."""
    started = time.monotonic()
    results: dict[int, FileResult] = {}
    todo: list[tuple[int, FileJob]] = []
    for index, job in enumerate(jobs):
        if not overwrite and is_finished(job):
            results[index] = FileResult(str(job.input), str(job.output), SKIPPED, error="")
            on_result(results[index])
        else:
            todo.append((index, job))
    if todo:
        parallel = max(1, min(parallel, len(todo)))
        options, share = share_cores(todo[0][1].options, parallel)
        shared = [FileJob(job.input, job.relative, job.output, job.matte_out, options) for _, job in todo]
        if ray_address is not None:
            from livematte.batch.ray_runner import connect, run_ray

            connect(ray_address or None)  # before our signal handlers: Ray installs its own
        with StopSignals() as stop:
            if ray_address is None:
                done = run_local(shared, parallel, share, on_result, stop)
            else:
                done = run_ray(shared, ray_address or None, share, retries, on_result, lambda: stop.count > 0)
        results.update({index: result for (index, _), result in zip(todo, done)})
        signum = stop.signal
    else:
        signum = None
    return BatchOutcome([results[i] for i in range(len(jobs))], time.monotonic() - started, signum)
