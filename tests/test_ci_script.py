"""``.ci/run`` refuses to pass in CI without the real data it is meant to test on."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CI_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "run"


@pytest.fixture
def clone_without_shared(tmp_path: Path) -> Path:
    """A checkout holding only ``.ci/run``, with no ``../shared`` beside it."""
    repo = tmp_path / "livematte"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy2(CI_SCRIPT, repo / ".ci" / "run")
    return repo


def test_ci_fails_loudly_without_shared(clone_without_shared: Path) -> None:
    env = {**os.environ, "CI": "true"}
    done = subprocess.run(["bash", str(clone_without_shared / ".ci" / "run")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "../shared/peers or ../shared/data is missing and CI=true" in done.stderr
    assert not (clone_without_shared / ".venv").exists()  # refused before any install


def test_user_clone_without_shared_is_warned_not_refused(clone_without_shared: Path, tmp_path: Path) -> None:
    """Outside CI the script goes on to the README's command (here a stand-in python3 that records it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "calls"
    fake = bin_dir / "python3"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {record}\nexit 3\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("CI", None)
    done = subprocess.run(["bash", str(clone_without_shared / ".ci" / "run")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert "tests on real data and peer models will skip" in done.stderr
    assert record.read_text().split() == ["-m", "venv", ".venv"]  # it went on to the README's first step
    assert done.returncode == 1  # the stand-in's venv failure, not the shared check
