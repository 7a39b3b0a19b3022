"""Ctrl-C and SIGTERM as requests to stop, never as exceptions inside a job.

Python raises KeyboardInterrupt wherever the main thread happens to be; in
the middle of ``Thread.join`` that marks a still-running thread as finished
(CPython 3.11/3.12), so outputs got closed while a stage was still writing
to them (crashes in FFmpeg, an abort in OpenCV at exit, a lost file). While
a job runs, :class:`StopRequests` turns the first signal into "finish what is
in flight and finalise" and the second into "stop now and discard"; outside
a job, SIGTERM raises :class:`Interrupted` the way Ctrl-C raises
KeyboardInterrupt, so the CLI can clean up and exit 143 instead of dying
with a temporary file left behind.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A job stopped by a signal with nothing to keep; ``message`` says why."""

    def __init__(self, signum: int, message: str = "interrupted; nothing kept") -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (the shell's 128 + signal number)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


#: a stop signal noted while :func:`deferred` was in force, for the job to act on
_pending: list[int] = []


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Note SIGINT/SIGTERM instead of raising while a job is set up: native
    libraries being imported or initialised turn an exception raised inside
    them into their own error (onnxruntime: ImportError "initialization
    failed", exit 4 instead of 130). :func:`checkpoint` raises it afterwards;
    a job that already runs picks it up in :class:`StopRequests`."""
    if not _on_main_thread():
        yield
        return
    _pending.clear()
    previous = {signum: signal.signal(signum, lambda signum, _frame: _pending.append(signum)) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def checkpoint() -> None:
    """Raise :class:`Interrupted` if a stop signal was noted meanwhile."""
    if _pending:
        raise Interrupted(_pending[0])


@contextlib.contextmanager
def raising() -> Iterator[None]:
    """Inside :func:`deferred`: a long pure-Python step (compiling) that a
    stop signal may interrupt at once."""
    checkpoint()

    def raise_interrupted(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, raise_interrupted) for signum in STOP_SIGNALS} if _on_main_thread() else {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Interrupted` (as Ctrl-C raises KeyboardInterrupt),
    so a job being set up is cleaned up instead of killed."""
    if not _on_main_thread():
        yield
        return

    def raise_interrupted(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopRequests:
    """While entered (main thread only), SIGINT/SIGTERM call ``finish(signum)``
    the first time and ``abort(signum)`` the second; nothing is raised."""

    def __init__(self, finish: Callable[[int], None], abort: Callable[[int], None]) -> None:
        self._finish = finish
        self._abort = abort
        self._received = 0
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        self._received += 1
        (self._finish if self._received == 1 else self._abort)(signum)

    def __enter__(self) -> "StopRequests":
        if _on_main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
            for signum in _pending[:2]:  # arrived while the job was being set up
                self._handle(signum, None)
            _pending.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
