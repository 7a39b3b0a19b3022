"""Files per minute of `livematte batch`: 1, 2 and N parallel jobs on this machine, and the
same files as tasks on a local Ray instance, side by side.

    python benchmarks/batch.py [--files 6] [--seconds 3] [--size 640x360] [--jobs 1 2 4]

The inputs are sample clips (`livematte sample`), processed with the default
engine and `--bg blur` into a temporary folder; every run starts from an
empty output folder. Each row's time runs from the first file started to
the last finished, process start-up and engine loading included; Ray's own
start-up is timed separately (it is paid once per batch, or never on a
running cluster).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livematte.batch.plan import plan_jobs  # noqa: E402
from livematte.batch.ray_runner import connect  # noqa: E402
from livematte.batch.run import LOCAL_RAY, run_batch  # noqa: E402
from livematte.cli import batch_job_options, build_parser  # noqa: E402
from livematte.sample import write_sample  # noqa: E402


def _options(model: str | None) -> dict:
    """The per-file options `livematte batch IN OUT --bg blur` would pass."""
    args = build_parser().parse_args(["batch", "in", "out", "--bg", "blur", *(["--model", model] if model else [])])
    return batch_job_options(args)


def _timed(inputs: Path, out: Path, parallel: int, options: dict, ray: bool) -> tuple[float, int]:
    jobs = plan_jobs([str(inputs)], out, options=options)
    outcome = run_batch(jobs, parallel, on_result=lambda result: None, ray_address=LOCAL_RAY if ray else None)
    done = sum(r.status == "done" for r in outcome.results)
    return outcome.elapsed_s, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each clip")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--jobs", type=int, nargs="+", default=sorted({1, 2, os.cpu_count() or 1}))
    parser.add_argument("--model", help="engine (default: the shipped default)")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    options = _options(args.model)
    rows = []
    with tempfile.TemporaryDirectory(prefix="livematte-batch-bench-") as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for index in range(args.files):
            write_sample(inputs / f"clip{index:02d}.mp4", size=(width, height), seconds=args.seconds, fps=30.0)
        frames = round(args.seconds * 30) * args.files
        for parallel in args.jobs:
            elapsed, done = _timed(inputs, Path(tmp) / f"out-local-{parallel}", parallel, options, ray=False)
            rows.append((f"local, --jobs {parallel}", elapsed, done))
        t0 = time.monotonic()
        connect(None)
        ray_start = time.monotonic() - t0
        cores = os.cpu_count() or 1
        for parallel in sorted({1, cores}):
            elapsed, done = _timed(inputs, Path(tmp) / f"out-ray-{parallel}", parallel, options, ray=True)
            rows.append((f"local Ray, {parallel} task(s) at once", elapsed, done))
    print(f"{args.files} clips of {args.seconds:g} s at {width}x{height} 30 fps ({frames} frames), --bg blur, "
          f"{os.cpu_count()} cores; Ray start-up {ray_start:.1f} s (not in the rows)")
    print(f"{'runner':34s} {'files done':>10s} {'seconds':>8s} {'files/min':>9s} {'frames/s':>9s}")
    for name, elapsed, done in rows:
        print(f"{name:34s} {done:>10d} {elapsed:8.1f} {60 * done / elapsed:9.2f} {frames * done / args.files / elapsed:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
