"""Errors a user can act on, each mapped to a distinct exit code.

The CLI catches :class:`LivematteError` and prints its message as one line;
anything else is a bug and only shows a traceback with ``--debug``.
"""
from __future__ import annotations


class LivematteError(Exception):
    """Base class: the message is the one line shown to the user."""

    exit_code = 1


class InputError(LivematteError):
    """The input (file, camera, stream, background) is missing or unreadable."""

    exit_code = 2


class EngineError(LivematteError):
    """The engine is unknown, missing, or its manifest does not match its graph."""

    exit_code = 3


class DeviceError(LivematteError):
    """A device is missing: camera, virtual camera, GPU or its libraries, or the
    optional library a feature needs (an extra such as ``[quality]``)."""

    exit_code = 4


class OutputError(LivematteError):
    """The output cannot be written (unwritable, exists, disk full)."""

    exit_code = 5


def first_line(error: object) -> str:
    """The first line of an error's text, or its type name when it has none.

    Library errors (ONNX, ONNX Runtime, TensorRT, PyAV) carry multi-line
    reports; the user gets one line (``livematte: error: ...``) and
    ``--debug`` for the rest.
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


#: exit code of ``livematte batch`` when some files failed (the others were written)
BATCH_FAILED_EXIT = 6
