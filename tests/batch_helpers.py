"""For the batch runners' tests: per-file options as the CLI makes them, and a job function
importable by worker processes (spawned locally, or Ray workers) that dies on some files."""
from __future__ import annotations

import os
from pathlib import Path

from livematte.batch.job import FileResult, run_file
from livematte.batch.plan import FileJob
from livematte.cli import batch_job_options, build_parser


def job_options(model: Path) -> dict:
    """Each file's options for ``livematte batch IN OUT --model MODEL --bg '#00ff00' --preset ultrafast``."""
    args = build_parser().parse_args(["batch", "in", "out", "--model", str(model), "--bg", "#00ff00", "--preset", "ultrafast"])
    return batch_job_options(args)


def dies_on_crash_files(job: FileJob, engine_threads: int) -> FileResult:
    """The worker process dies (as a segfaulting decoder would) on inputs named ``crash*``;
    each attempt is logged beside the input so tests can count retries."""
    if job.input.name.startswith("crash"):
        with open(Path(job.input).with_suffix(".attempts"), "a", encoding="utf-8") as log:
            log.write("attempt\n")
        os._exit(3)
    return run_file(job, engine_threads)
