"""Files per minute of `livematte batch`: 1, 2 and N parallel jobs on this machine, and the
same files as tasks on a local Ray instance, side by side.

    python benchmarks/batch.py [--files 6] [--seconds 3] [--size 640x360] [--jobs 1 2 4] [--repeat 3]

The inputs are sample clips (`livematte sample`), processed with the default
engine and `--bg blur` into a temporary folder; every run starts from an
empty output folder. Each row's time runs from the first file started to
the last finished, process start-up and engine loading included; Ray's own
start-up is timed separately (it is paid once per batch, or never on a
running cluster). With ``--repeat N`` the runners take turns N times (so a
burst of load elsewhere hits them alike) and each row shows the median and
the range of files per minute.
"""
from __future__ import annotations

import argparse
import os
import statistics
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
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every runner, taking turns")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    options = _options(args.model)
    cores = os.cpu_count() or 1
    runners = [(f"local, --jobs {n}", n, False) for n in args.jobs]
    runners += [(f"local Ray, {n} task(s) at once", n, True) for n in sorted({1, cores})]
    rates: dict[str, list[float]] = {name: [] for name, _, _ in runners}
    with tempfile.TemporaryDirectory(prefix="livematte-batch-bench-") as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for index in range(args.files):
            write_sample(inputs / f"clip{index:02d}.mp4", size=(width, height), seconds=args.seconds, fps=30.0)
        ray_start = None
        for round_ in range(args.repeat):
            for name, parallel, ray in runners:
                if ray and ray_start is None:  # started only now, so it idles through no local row
                    t0 = time.monotonic()
                    connect(None)
                    ray_start = time.monotonic() - t0
                out = Path(tmp) / f"out-{round_}-{'ray' if ray else 'local'}-{parallel}"
                elapsed, done = _timed(inputs, out, parallel, options, ray)
                rates[name].append(60 * done / elapsed)
    frames = round(args.seconds * 30)
    print(f"{args.files} clips of {args.seconds:g} s at {width}x{height} 30 fps, --bg blur, {cores} cores, "
          f"{args.repeat} round(s); Ray start-up {ray_start or 0:.1f} s (not in the rows); load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'runner':34s} {'files/min':>9s} {'range':>13s} {'frames/s':>9s}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:34s} {median:9.2f} {min(values):6.2f}-{max(values):<6.2f} {median * frames / 60:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
