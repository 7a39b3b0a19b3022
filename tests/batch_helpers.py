"""Per-file job functions for the batch runners' tests, importable by their worker processes
(spawned locally or Ray workers): the real job, or a worker that dies on some files."""
from __future__ import annotations

import os
from pathlib import Path

from livematte.batch.job import FileResult, run_file
from livematte.batch.plan import FileJob


def dies_on_crash_files(job: FileJob, engine_threads: int) -> FileResult:
    """The worker process dies (as a segfaulting decoder would) on inputs named ``crash*``;
    each attempt is logged beside the input so tests can count retries."""
    if job.input.name.startswith("crash"):
        with open(Path(job.input).with_suffix(".attempts"), "a", encoding="utf-8") as log:
            log.write("attempt\n")
        os._exit(3)
    return run_file(job, engine_threads)
