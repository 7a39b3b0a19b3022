"""What a batch shows while it runs and leaves behind: a status line per file,
one progress line for the whole batch (on a terminal), a summary table and
an optional JSON report."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence, TextIO

from livematte.batch.job import DONE, FAILED, FileResult
from livematte.progress import frames_text


class BatchProgress:
    """Prints each file's result as it arrives and redraws one progress line below them."""

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()

    def __call__(self, result: FileResult) -> None:
        self.counts[result.status] += 1
        if self.quiet and result.status != FAILED:
            return
        detail = f": {result.error}" if result.error else f" ({frames_text(result.frames)}, {result.fps:.1f} fps)"
        clear = "\r\x1b[K" if self.tty else ""
        self.stream.write(f"{clear}livematte: {result.status:<11s} {result.input}{detail}\n")
        if self.tty and not self.quiet:
            self.stream.write(self.line())
        self.stream.flush()

    def line(self) -> str:
        """``[####----] 3/10 files  done 2  failed 1  0.8 files/min``."""
        finished = sum(self.counts.values())
        minutes = (time.monotonic() - self.started) / 60
        rate = finished / minutes if minutes > 0 else 0.0
        filled = round(24 * finished / self.total) if self.total else 24
        bar = f"[{'#' * filled}{'-' * (24 - filled)}] {finished}/{self.total}"
        counts = "  ".join(f"{status} {n}" for status, n in sorted(self.counts.items()))
        return f"{bar} files  {counts}  {rate:.1f} files/min"

    def finish(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()


def summary_table(results: Sequence[FileResult]) -> str:
    """A plain-text table: file, frames, fps, result."""
    rows = [("file", "frames", "fps", "result")]
    rows += [(r.input, str(r.frames), f"{r.fps:.1f}", r.status + (f": {r.error}" if r.error else ""))
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}  {d}" for a, b, c, d in rows)


def counts_line(results: Sequence[FileResult], elapsed_s: float) -> str:
    counts = Counter(r.status for r in results)
    shown = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    rate = counts[DONE] / (elapsed_s / 60) if elapsed_s > 0 else 0.0
    return f"{len(results)} files: {shown} in {elapsed_s:.1f} s ({rate:.2f} files/min)"


def write_report(path: Path, results: Sequence[FileResult], elapsed_s: float, runner: dict[str, Any]) -> None:
    """The JSON report, written under a temporary name and renamed (never half-written)."""
    data = {
        "elapsed_s": round(elapsed_s, 3),
        "runner": runner,
        "counts": dict(Counter(r.status for r in results)),
        "files": [r.as_json() for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    os.replace(tmp, path)
