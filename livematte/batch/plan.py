"""Which files a batch processes and where each output goes.

Inputs are files, folders (searched recursively for videos, or for
photos when the output extension is an image format) and globs; each output
keeps the input's path relative to the folder or to the glob's fixed part,
under OUT_DIR, with ``suffix`` added to the stem and the extension
replaced. A finished output (its final name exists) is skipped, so
rerunning a batch resumes it.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from livematte.errors import InputError
from livematte.sinks import ALPHA_IMAGE_SUFFIXES, IMAGE_SUFFIXES

#: extensions a folder search treats as videos
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".ts", ".mts", ".flv", ".mpg",
                              ".mpeg", ".wmv", ".mxf", ".3gp"})
#: extensions a folder search treats as photos (for an image ``--ext``)
PHOTO_EXTENSIONS = frozenset(IMAGE_SUFFIXES)
#: what a batch writes, one file per input: video containers, or for photos image files
#: (PNG sequences are for ``process``)
VIDEO_OUTPUT_EXTENSIONS = (".mp4", ".mov", ".webm", ".mkv")
OUTPUT_EXTENSIONS = VIDEO_OUTPUT_EXTENSIONS + IMAGE_SUFFIXES


@dataclass(frozen=True)
class FileJob:
    """One input file and where its outputs go. ``relative`` is the name kept under OUT_DIR."""

    input: Path
    relative: Path
    output: Path
    matte_out: Path | None = None
    #: the ``process`` options (argparse names -> values), the same for every file
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def partial(self) -> Path:
        """Where an interrupted job's playable part goes (never taken for a finished output)."""
        return self.output.with_name(f"{self.output.stem}.partial{self.output.suffix}")

    @property
    def temporary(self) -> Path:
        """The hidden name the output is written under until it is complete."""
        return self.output.with_name(f".{self.output.stem}.batch-{os.getpid()}{self.output.suffix}")


def _is_glob(text: str) -> bool:
    return glob.has_magic(text)


def _glob_root(pattern: str) -> Path:
    """The part of ``pattern`` before its first wildcard: what names are kept relative to."""
    parts = Path(pattern).parts
    fixed = parts[: next(i for i, part in enumerate(parts) if glob.has_magic(part))]
    return Path(*fixed) if fixed else Path(".")


def expand_inputs(inputs: Sequence[str], exclude: Path | None = None,
                  photos: bool = False) -> list[tuple[Path, Path]]:
    """(file, name relative to its folder or glob) for every input, in a stable order.

    A folder gives its videos, or with ``photos`` its photos. A missing
    input or a glob that matches nothing is an :class:`InputError` (a typo
    should not silently shrink the batch). Files under ``exclude`` (the
    output folder, when it sits inside an input folder) are left out.
    """
    kind, extensions = ("photo", PHOTO_EXTENSIONS) if photos else ("video", VIDEO_EXTENSIONS)
    found: list[tuple[Path, Path]] = []
    for text in inputs:
        if _is_glob(text):
            root = _glob_root(text)
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"{text}: no file matches")
            found += [(p, p.relative_to(root)) for p in matches]
        elif Path(text).is_dir():
            root = Path(text)
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
            if not files:
                other = "--ext mp4 for videos" if photos else "--ext png for photos"
                raise InputError(f"{text}: no {kind} files in this folder ({', '.join(sorted(extensions))}; {other})")
            found += [(p, p.relative_to(root)) for p in files]
        elif Path(text).is_file():
            found.append((Path(text), Path(Path(text).name)))
        else:
            raise InputError(f"{text}: no such file, folder or matching glob")
    if exclude is not None:
        skip = exclude.resolve()
        found = [(p, rel) for p, rel in found if skip not in p.resolve().parents]
    return found


def plan_jobs(inputs: Sequence[str], out_dir: Path, suffix: str = "", ext: str | None = None,
              matte_root: Path | None = None, options: dict[str, Any] | None = None) -> list[FileJob]:
    """One :class:`FileJob` per input file; two inputs that would write the same output are an error.

    ``ext`` defaults to ``.mov`` with ``--alpha`` (ProRes 4444 keeps it), else ``.mp4``.
    """
    options = options or {}
    ext = ext or (".mov" if options.get("alpha") else ".mp4")
    ext = ext if ext.startswith(".") else "." + ext
    if ext.lower() not in OUTPUT_EXTENSIONS:
        raise InputError(f"--ext {ext}: batch writes one of {', '.join(OUTPUT_EXTENSIONS)}")
    if options.get("alpha") and ext.lower() not in (".mov", ".webm") + ALPHA_IMAGE_SUFFIXES:
        raise InputError(f"--alpha needs --ext mov (ProRes 4444) or webm (VP9), or png for photos, not {ext}")
    photos = ext.lower() in IMAGE_SUFFIXES
    jobs: list[FileJob] = []
    seen: dict[Path, Path] = {}
    for path, relative in expand_inputs(inputs, exclude=out_dir, photos=photos):
        name = relative.with_name(relative.stem + suffix + ext)
        output = out_dir / name
        if output in seen:
            raise InputError(f"{seen[output]} and {path} would both write {output}; use separate runs or --suffix")
        if output.resolve() == path.resolve():
            raise InputError(f"{path} would be overwritten by its own output; choose another OUT_DIR or a --suffix")
        seen[output] = path
        # a photo's matte is one grey PNG, a video's a folder of them
        matte_name = relative.stem + suffix + (".png" if photos else "")
        matte = matte_root / relative.parent / matte_name if matte_root is not None else None
        jobs.append(FileJob(path, relative, output, matte, options))
    return jobs


def is_finished(job: FileJob) -> bool:
    """A rerun skips a job whose output exists: outputs only get their final name when complete."""
    return job.output.exists()
