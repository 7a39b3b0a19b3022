"""What ``pip install livematte`` puts into site-packages, read from pyproject.toml.

The wheel lists its packages by hand (the engines folder is mapped to
``livematte_engines``), so a new runtime subpackage missing from the list
would be missing from every install, and a ``training`` entry would put a
top-level package of that common name into users' environments.
"""
from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_wheel_installs_every_runtime_package_and_no_training():
    packages = set(_project()["tool"]["setuptools"]["packages"])
    runtime = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "livematte").rglob("__init__.py")}
    assert packages == runtime | {"livematte_engines"}
    assert not any(name.split(".")[0] == "training" for name in packages)


def test_pymatting_is_an_extra_for_the_quality_mode_and_training():
    project = _project()["project"]
    assert not any(dep.startswith("pymatting") for dep in project["dependencies"])
    for extra in ("quality", "train"):
        assert any(dep.startswith("pymatting") for dep in project["optional-dependencies"][extra])
