"""One file of a batch: the single function every runner (local processes, Ray tasks) calls.

It never raises for a file's own problem: a bad input, an engine or output
error, even an unexpected exception, becomes a ``failed`` :class:`FileResult`
with the one-line message, so one file can never stop the batch. The output
is written under a hidden temporary name and renamed when complete; an
interrupted file is finalised as ``NAME.partial.EXT`` (playable, and not
mistaken for a finished output by the next run).
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from livematte.batch.plan import FileJob
from livematte.errors import LivematteError

DONE, FAILED, SKIPPED, INTERRUPTED, NOT_STARTED = "done", "failed", "skipped", "interrupted", "not started"


@dataclass
class FileResult:
    """What happened to one file; ``status`` is one of done, failed, skipped, interrupted, not started."""

    input: str
    output: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    error: str = ""
    #: how many times it was run (Ray retries a task whose worker died)
    attempts: int = 1
    #: where the Ray task ran, or the local worker's process id
    worker: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "fps": round(self.fps, 2)}


def _process(job: FileJob, target: Path, engine_threads: int) -> Any:
    """The ``process`` job for ``job`` into ``target`` (the CLI's option handling, then
    :func:`livematte.process`), so a batch file is processed exactly as ``livematte process``."""
    from livematte.cli import run_process

    options = dict(job.options, input=str(job.input), output=str(target), overwrite=True, quiet=True,
                   matte_out=str(job.matte_out) if job.matte_out else None)
    return run_process(argparse.Namespace(**options), engine_threads=engine_threads)


def run_file(job: FileJob, engine_threads: int = 1) -> FileResult:
    """Process one file of a batch into ``job.output`` (see the module docstring)."""
    result = FileResult(str(job.input), str(job.output), FAILED, worker=f"{os.uname().nodename}:{os.getpid()}")
    started = time.monotonic()
    target = job.temporary
    try:
        for folder in (job.output.parent, job.matte_out.parent if job.matte_out else None):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        outcome = _process(job, target, engine_threads)
        result.frames = outcome.frames_out
        if outcome.interrupted:
            result.status = INTERRUPTED
            if target.exists():  # nothing to keep when it stopped before the first frame
                os.replace(target, job.partial)
                result.output = str(job.partial)
        else:
            os.replace(target, job.output)
            job.partial.unlink(missing_ok=True)  # an earlier interrupted run's part is superseded
            result.status = DONE
    except LivematteError as exc:
        result.error = exc.for_cli()  # reported by the batch command line
    except KeyboardInterrupt:
        result.status, result.error = INTERRUPTED, "stopped before its first frame"
    except Exception as exc:  # noqa: BLE001 - a bug on one file must not end the batch
        result.error = f"internal error: {type(exc).__name__}: {exc}"
    finally:
        result.seconds = time.monotonic() - started
        target.unlink(missing_ok=True)
    return result
