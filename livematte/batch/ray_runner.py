"""Run a batch's files as Ray tasks: a local Ray instance, or a cluster by address.

The task is :func:`livematte.batch.job.run_file`, the same function the
local runner calls, so results, naming and resumption are identical. A file
that fails (bad input) fails once and is reported; a task whose worker
process dies (out of memory, a node lost) is retried by Ray up to
``retries`` times. Inputs and outputs are paths: on a cluster they must be
on storage every node sees at the same path. Ray is the ``[cluster]`` extra.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from livematte.batch.job import FAILED, INTERRUPTED, NOT_STARTED, FileResult, run_file
from livematte.batch.plan import FileJob
from livematte.errors import DeviceError, first_line

#: object store of a local instance: results are small, so the minimum Ray accepts is plenty
LOCAL_OBJECT_STORE_BYTES = 80 * 1024 * 1024


def _import_ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a user's machine
    try:
        import ray
    except ImportError:
        raise DeviceError("--ray needs Ray: pip install 'livematte[cluster]'") from None
    return ray


def connect(address: str | None, num_cpus: int | None = None) -> Any:
    """Join the cluster at ``address``, or start a local instance on 127.0.0.1 (no dashboard,
    a small object store); reuses a connection already made in this process."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     configure_logging=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                     _node_ip_address="127.0.0.1")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise DeviceError(f"cannot start or reach {where}: {first_line(exc)}") from None
    return ray


def _failure(job: FileJob, error: BaseException, retries: int) -> FileResult:
    name = type(error).__name__
    died = "WorkerCrashed" in name or "NodeDied" in name or "ActorDied" in name
    message = f"Ray worker died ({name}), tried {retries + 1} times" if died else f"{name}: {first_line(error)}"
    return FileResult(str(job.input), str(job.output), FAILED, error=message, attempts=retries + 1 if died else 1)


def run_ray(jobs: Sequence[FileJob], address: str | None, cpus_per_job: int, retries: int,
            on_result: Callable[[FileResult], None], should_stop: Callable[[], bool] = lambda: False,
            function: Callable[[FileJob, int], FileResult] = run_file) -> list[FileResult]:
    """Submit every job as a task of ``cpus_per_job`` CPUs, gather results as they finish.

    When ``should_stop()`` turns true, tasks not yet started are cancelled
    (left untouched) and running ones get an interrupt, which finalises them.
    """
    ray = connect(address)
    task = ray.remote(num_cpus=cpus_per_job, max_retries=retries, retry_exceptions=False)(function)
    refs = {task.remote(job, cpus_per_job): index for index, job in enumerate(jobs)}
    results: dict[int, FileResult] = {}
    cancelled = False
    while refs:
        if should_stop() and not cancelled:
            for ref in refs:
                ray.cancel(ref, force=False)
            cancelled = True
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
        for ref in ready:
            index = refs.pop(ref)
            job = jobs[index]
            try:
                result = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                result = FileResult(str(job.input), str(job.output), NOT_STARTED)
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                interrupted = isinstance(cause, KeyboardInterrupt)
                result = (FileResult(str(job.input), str(job.output), INTERRUPTED) if interrupted
                          else _failure(job, cause, retries))
            except ray.exceptions.RayError as exc:
                result = _failure(job, exc, retries)
            results[index] = result
            on_result(result)
    return [results[i] for i in range(len(jobs))]
