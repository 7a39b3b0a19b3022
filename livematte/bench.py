"""Pipeline speed: per-stage throughput and end-to-end fps of a real file job.

Each measurement writes a clip of the sample scene at the requested size,
then runs :func:`livematte.api.process` on it, as ``livematte process`` does
(PyAV decode → engine → compositor → H.264 encode to a temporary file), with
an engine warmed up beforehand. A stage's
throughput is frames divided by the time that stage spent working, so it
shows which stage limits the end-to-end rate.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from livematte.pipeline import STAGES


@dataclass
class BenchRow:
    engine: str
    size: tuple[int, int]
    frames: int
    background: str
    stage_fps: dict[str, float]
    end_to_end_fps: float
    #: mean milliseconds per frame of each engine step inside the infer stage
    engine_ms: dict[str, float]


def _write_clip(path: Path, size: tuple[int, int], frames: int, fps: float = 30.0) -> None:
    from livematte.sample import write_sample

    write_sample(path, size=size, seconds=frames / fps, fps=fps)


def bench_one(
    model: str, size: tuple[int, int], frames: int, backend: str = "cpu", background: str = "blur",
    upsampler: str = "guided", workdir: Path | None = None, threads: int | None = None,
    precision: str = "auto",
) -> BenchRow:
    """Measure one engine at one frame size (the clip is generated in ``workdir``);
    ``threads`` is the CPU backend's intra-op thread count (None: its default),
    ``precision`` the backend's ``--precision``."""
    from livematte.api import process
    from livematte.engine import Matter

    with tempfile.TemporaryDirectory(prefix="livematte-bench-", dir=workdir) as tmp, \
            Matter(model, backend=backend, upsampler=upsampler, threads=threads, precision=precision) as matter:
        clip = Path(tmp) / f"clip-{size[0]}x{size[1]}.mp4"
        _write_clip(clip, size, frames)
        matter.infer(_first_frame(clip))  # warm-up: session creation is not per-frame cost
        matter.reset()
        result = process(clip, Path(tmp) / "out.mp4", background, model=matter)
    return BenchRow(
        engine=matter.manifest.name,
        size=size,
        frames=result.frames_out,
        background=background,
        stage_fps={name: result.stages[name].fps for name in STAGES},
        end_to_end_fps=result.fps,
        engine_ms={step: total / max(1, result.frames_out) for step, total in result.engine_ms.items()},
    )


def _first_frame(clip: Path):
    """The clip's first frame, for warming the engine up outside the timing."""
    from livematte.sources import open_source

    with open_source(str(clip)) as src:
        return next(iter(src)).rgb


def run_benchmark(
    models: Sequence[str], sizes: Sequence[tuple[int, int]], frames: int = 90, backend: str = "cpu",
    background: str = "blur", upsampler: str = "guided", threads: int | None = None, precision: str = "auto",
) -> list[BenchRow]:
    """Every model at every size, in order."""
    return [bench_one(m, s, frames, backend, background, upsampler, threads=threads, precision=precision)
            for m in models for s in sizes]


def format_table(rows: Sequence[BenchRow]) -> str:
    """A plain-text table: fps per stage and end to end."""
    head = f"{'engine':30s} {'size':>9s} {'frames':>6s} {'bg':>8s} " + " ".join(f"{s:>9s}" for s in STAGES) + f" {'end-to-end':>10s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        stages = " ".join(f"{r.stage_fps[s]:9.1f}" for s in STAGES)
        lines.append(f"{r.engine:30s} {r.size[0]:>4d}x{r.size[1]:<4d} {r.frames:6d} {r.background:>8s} {stages} {r.end_to_end_fps:10.1f}")
        if r.engine_ms:
            lines.append("    infer ms/frame: " + ", ".join(f"{k} {v:.1f}" for k, v in r.engine_ms.items()))
    lines.append(f"(frames per second; stage columns are each stage's own throughput; {os.cpu_count()} CPU cores)")
    return "\n".join(lines)
