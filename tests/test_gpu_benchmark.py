"""benchmarks/gpu.py runs end to end on the CPU (``--device cpu``), so it cannot rot before a GPU is lent."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from livematte.registry import DEFAULT_ENGINE

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_smoke_run_on_cpu() -> None:
    args = ["--device", "cpu", "--backends", "cpu", "torch", "--frames", "1", "--warmup", "0",
            "--sequence", "2", "--sizes", "720p", "--no-refine", "--e2e-seconds", "0.2"]
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    model = {m["backend"]: m for m in re.finditer(
        rf"^(?P<backend>cpu|torch)\s+fp32\s+{re.escape(DEFAULT_ENGINE)}\s+144x256\s+(?P<fps>[\d.]+)\s+(?P<max>[\d.]+)\s+"
        r"(?P<mean>[\d.]+)\s+(?P<carried>[\d.]+)\s+(?P<reset>[\d.]+)$", out, re.M)}
    assert set(model) == {"cpu", "torch"}, out
    for row in model.values():
        assert float(row["fps"]) > 0 and float(row["max"]) <= 1e-4 and float(row["reset"]) <= 1e-4
        assert float(row["carried"]) > 0  # the shipped engine's state changes its output
    assert re.search(r"^cpu\s+fp32\s+720p\s+144x256\s+[\d.]+$", out, re.M), out
    assert re.search(r"^torch\s+fp32\s+720p\s+144x256\s+[\d.]+$", out, re.M), out
    assert re.search(r"^\s+cpu\s+fp32\s+[\d.]+ fps$", out, re.M), out
