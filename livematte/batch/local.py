"""Run a batch's files in parallel processes on this machine.

Each file runs in its own process (spawned, so no thread state is forked),
at most ``jobs`` at once: a crash in one (a decoder segfault) fails that
file only. Workers sit in their own process group, so the terminal's Ctrl-C
reaches only this process, which then starts no new file and forwards one
interrupt to each worker: the pipeline there finishes the frames in flight
and finalises its output (a second Ctrl-C forwards a second interrupt,
which aborts them). Files not started are left untouched.
"""
from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from typing import Callable, Sequence

from livematte.batch.job import FAILED, NOT_STARTED, FileResult, run_file
from livematte.batch.plan import FileJob

JobFunction = Callable[[FileJob, int], FileResult]


def _worker(function: JobFunction, job: FileJob, engine_threads: int, conn: multiprocessing.connection.Connection) -> None:
    os.setpgrp()  # the terminal's Ctrl-C goes to the parent, which forwards exactly one
    signal.signal(signal.SIGINT, signal.default_int_handler)
    conn.send(function(job, engine_threads))
    conn.close()


class StopSignals:
    """SIGINT/SIGTERM while a batch runs: counted (the runners start nothing new once one
    came) and forwarded as one interrupt to each local worker process."""

    def __init__(self) -> None:
        self.count = 0
        self.signal: int | None = None
        self.workers: dict[int, multiprocessing.Process] = {}
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.count += 1
        self.signal = self.signal or signum
        for process in list(self.workers.values()):
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGINT)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def run_local(jobs: Sequence[FileJob], parallel: int, engine_threads: int, on_result: Callable[[FileResult], None],
              stop: StopSignals, function: JobFunction = run_file) -> list[FileResult]:
    """Run ``jobs``, ``parallel`` at a time, until done or ``stop`` has a signal; every file's result, in job order."""
    context = multiprocessing.get_context("spawn")
    pending = collections.deque(enumerate(jobs))
    results: dict[int, FileResult] = {}
    running: dict[multiprocessing.connection.Connection, tuple[int, multiprocessing.Process]] = {}
    while running or (pending and not stop.count):
        while pending and not stop.count and len(running) < parallel:
            index, job = pending.popleft()
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_worker, args=(function, job, engine_threads, send),
                                      name=f"livematte-batch-{index}")
            process.start()
            send.close()
            running[receive] = (index, process)
            stop.workers[index] = process
        for conn in multiprocessing.connection.wait(list(running), timeout=0.5):
            index, process = running.pop(conn)
            try:
                result = conn.recv()
            except (EOFError, OSError):  # it died without an answer
                process.join()
                job = jobs[index]
                result = FileResult(str(job.input), str(job.output), FAILED,
                                    error=f"worker process died (exit code {process.exitcode})")
            process.join()
            conn.close()
            del stop.workers[index]
            results[index] = result
            on_result(result)
    for index, job in pending:
        results[index] = FileResult(str(job.input), str(job.output), NOT_STARTED)
    return [results[i] for i in range(len(jobs))]
