"""Where numba keeps the machine code it compiles for ``--quality high``.

pymatting (the closed-form solver) compiles its numba kernels when it is
imported: minutes on a small CPU. numba caches them next to pymatting's
sources by default, which fails silently where site-packages is read-only,
so every run compiled again. livematte points numba at the user's cache
directory instead (``$XDG_CACHE_HOME/livematte/numba``, or ``~/.cache/...``;
an explicit ``NUMBA_CACHE_DIR`` wins) and tells the user, once, that the first
run is preparing rather than showing a bar stuck at 0 fps.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

#: seconds the first import of pymatting took here, compiling every kernel: 254 s
#: on the 2-core box with other jobs running (2026-12-01), 5.8 s from the cache after
FIRST_COMPILE_S = 250


def cache_dir() -> Path:
    """The directory numba writes to: ``NUMBA_CACHE_DIR`` if set, else the user's cache."""
    explicit = os.environ.get("NUMBA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "livematte" / "numba"


#: written into the cache directory once pymatting imported with it: numba's own layout
#: there changes between versions (0.68 names folders after the source folder and a hash,
#: without "pymatting"), so the cache is recognised by this marker, not by numba's paths
MARKER = "pymatting-compiled.txt"


def _versions() -> str:
    """What the cached machine code was compiled by and for: another version compiles again."""
    from importlib.metadata import version

    return f"numba {version('numba')}, pymatting {version('pymatting')}, python {sys.version_info[:2]}"


def _compiled(directory: Path) -> bool:
    marker = directory / MARKER
    try:
        return marker.is_file() and marker.read_text() == _versions() and any(directory.rglob("*.nbi"))
    except (OSError, ImportError):  # unreadable, or numba/pymatting missing: the import below says so
        return False


def prepare_quality(quiet: bool) -> float:
    """Import the quality mode with numba caching under :func:`cache_dir`
    (set for this process and the worker processes it spawns). Returns the
    seconds spent, after saying so when this is the compiling first run."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(directory)
    except OSError:  # no writable cache: numba's own default, compiling each run at worst
        pass
    started = time.monotonic()
    if not _compiled(directory) and "pymatting" not in sys.modules:
        if not quiet:
            print(f"livematte: preparing --quality high (first run compiles, about {FIRST_COMPILE_S} s; "
                  f"cached in {directory})", file=sys.stderr, flush=True)
    import livematte.quality.closed_form  # noqa: F401  - pymatting compiles, or loads the cached code

    try:
        (directory / MARKER).write_text(_versions())
    except OSError:  # a read-only cache: the next run says it is preparing again, nothing worse
        pass
    return time.monotonic() - started
