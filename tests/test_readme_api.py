"""The README's "Python API" examples, run as written on a small generated clip."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from livematte.sample import write_sample
from media_helpers import cli_env

README = Path(__file__).resolve().parents[1] / "README.md"


def python_api_examples() -> list[str]:
    """The ```python blocks of the README's "Python API" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_examples_of_each_entry_point():
    code = "\n".join(python_api_examples())
    for name in ("livematte.process(", "livematte.Matter(", ".infer(", ".reset()", "register_background", "LivematteError"):
        assert name in code, name


def test_python_api_examples_run(tmp_path: Path):
    write_sample(tmp_path / "sample.mp4", size=(320, 180), seconds=1.0, fps=15)
    script = tmp_path / "examples.py"
    script.write_text("\n\n".join(python_api_examples()), encoding="utf-8")  # one program: later blocks use earlier names
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "15 frames at" in done.stdout
    assert "output exists: out.mp4 (pass overwrite=True to replace it)" in done.stdout
    assert "person covers" in done.stdout
    for output in ("out.mp4", "soft.mp4", "striped.mp4", "frames/000015.png", "mattes/000015.png"):
        assert (tmp_path / output).is_file(), output
