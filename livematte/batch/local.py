"""Run a batch's files in parallel worker processes on this machine.

``jobs`` worker processes (spawned, so no thread state is forked) each take
one file at a time and stay up for the next, so the imports are paid once
per worker, not once per file. A worker that dies (a decoder segfault)
fails only the file it was on, and a fresh worker takes its place. Workers
sit in their own process group, so the terminal's Ctrl-C reaches only this
process, which then starts no new file and forwards one interrupt to each
worker: the pipeline there finishes the frames in flight and finalises its
output (a second Ctrl-C forwards a second interrupt, which aborts them).
Files not started are left untouched.
"""
from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

from livematte.batch.job import FAILED, NOT_STARTED, FileResult, run_file
from livematte.batch.plan import FileJob

JobFunction = Callable[[FileJob, int], FileResult]


def _worker(function: JobFunction, engine_threads: int, conn: multiprocessing.connection.Connection) -> None:
    """A worker's life: run each job it is sent until told to stop (None) or interrupted between jobs."""
    os.setpgrp()  # the terminal's Ctrl-C goes to the parent, which forwards exactly one
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for job in iter(conn.recv, None):
            conn.send(function(job, engine_threads))
    except (KeyboardInterrupt, EOFError):
        pass


@dataclass
class _Slot:
    process: multiprocessing.Process
    conn: multiprocessing.connection.Connection
    #: the index of the job it is running, None when idle
    job: int | None = None


class StopSignals:
    """SIGINT/SIGTERM while a batch runs: counted (the runners start nothing new once one
    came) and forwarded as one interrupt to each local worker process."""

    def __init__(self) -> None:
        self.count = 0
        self.signal: int | None = None
        #: running worker processes, by id, for forwarding interrupts
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
    """Run ``jobs`` on ``parallel`` workers until done or ``stop`` has a signal; every file's result, in job order."""
    context = multiprocessing.get_context("spawn")
    pending = collections.deque(range(len(jobs)))
    results: dict[int, FileResult] = {}
    slots: list[_Slot] = []

    def start_worker() -> _Slot:
        ours, theirs = context.Pipe()
        process = context.Process(target=_worker, args=(function, engine_threads, theirs), name="livematte-batch")
        process.start()
        theirs.close()
        stop.workers[id(process)] = process
        return _Slot(process, ours)

    def retire(slot: _Slot) -> None:
        slots.remove(slot)
        slot.conn.close()
        slot.process.join()
        del stop.workers[id(slot.process)]

    try:
        while pending and not stop.count or any(slot.job is not None for slot in slots):
            while pending and not stop.count and len(slots) < min(parallel, len(pending) + len(slots)):
                slots.append(start_worker())
            for slot in slots:
                if slot.job is None and pending and not stop.count:
                    slot.job = pending.popleft()
                    slot.conn.send(jobs[slot.job])
            by_conn = {slot.conn: slot for slot in slots}
            for conn in multiprocessing.connection.wait(list(by_conn), timeout=0.5):
                slot = by_conn[conn]
                try:
                    result = conn.recv()
                except (EOFError, OSError):  # the worker died: the file it was on fails, a new worker follows
                    retire(slot)
                    if slot.job is None:
                        continue
                    job = jobs[slot.job]
                    result = FileResult(str(job.input), str(job.output), FAILED,
                                        error=f"worker process died (exit code {slot.process.exitcode})")
                results[slot.job] = result
                slot.job = None
                on_result(result)
    finally:
        for slot in list(slots):
            try:
                slot.conn.send(None)
            except OSError:
                pass
            retire(slot)
    for index in pending:
        job = jobs[index]
        results[index] = FileResult(str(job.input), str(job.output), NOT_STARTED)
    return [results[i] for i in range(len(jobs))]
