"""Helper threads that may be blocked inside FFmpeg, and a safe exit around them.

A network read or open cannot be cancelled: it returns when data arrives or
its timeout fires, up to the read timeout after the source was closed. While
it waits, FFmpeg calls PyAV's interrupt callback every few milliseconds, and
that callback takes the GIL. If the interpreter finalises meanwhile, the
callback runs on a torn-down thread state and the process dies with SIGSEGV
after the job itself succeeded. So such threads are registered here:

* :func:`started` / :func:`finished` bracket the blocking work;
* at interpreter exit (library users) the registered threads are joined,
  each for at most its own timeout, so finalisation never overtakes them;
* the command line, whose outputs are complete by then, leaves at once with
  :func:`exit_now` instead of waiting out a dead sender's read timeout.
"""
from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time

_lock = threading.Lock()
#: thread -> seconds it may still block after its source was closed
_blocked: dict[threading.Thread, float] = {}


def started(thread: threading.Thread, bound_s: float) -> None:
    """Register ``thread`` (call before ``thread.start()``) as one that may stay
    inside FFmpeg for up to ``bound_s`` seconds after being asked to stop."""
    with _lock:
        _blocked[thread] = bound_s


def finished() -> None:
    """Called by a registered thread as its last step: it has left FFmpeg."""
    with _lock:
        _blocked.pop(threading.current_thread(), None)


def pending() -> list[threading.Thread]:
    """Registered threads still alive (possibly blocked inside FFmpeg)."""
    with _lock:
        return [thread for thread in _blocked if thread.is_alive()]


def wait(limit_s: float | None = None) -> bool:
    """Join the pending threads, each for at most its own bound (and all
    together for at most ``limit_s``); True when none is left."""
    deadline = None if limit_s is None else time.monotonic() + limit_s
    for thread in pending():
        with _lock:
            bound = _blocked.get(thread, 0.0)
        if deadline is not None:
            bound = min(bound, max(0.0, deadline - time.monotonic()))
        thread.join(bound)
    return not pending()


def exit_now(code: int) -> None:
    """Exit with ``code``; when FFmpeg threads are still blocked, skip the
    interpreter's finalisation (it would crash under them) after flushing
    what the program wrote. Callers must have closed their outputs."""
    if pending():
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed or broken pipe: nothing more to deliver
                pass
        os._exit(code)
    sys.exit(code)


atexit.register(wait)
