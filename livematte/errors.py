"""Errors a user can act on, each mapped to a distinct exit code.

The CLI catches :class:`LivematteError` and prints its message as one line;
anything else is a bug and only shows a traceback with ``--debug``. The
library says what went wrong in words that fit every front end; what to
change is a :class:`Hint` naming the option, which the CLI spells as a flag
(``use --overwrite``) and Python as a keyword (``pass overwrite=True``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    """What to change to get past an error: ``option`` (the Python keyword) set to ``value``, ``why``."""

    option: str
    #: True for an on/off option to turn on
    value: object = True
    #: what the change does, e.g. "to replace it"
    why: str = ""

    def for_cli(self) -> str:
        """The hint as the command line spells it: ``use --overwrite to replace it``."""
        flag = "--" + self.option.replace("_", "-")
        setting = flag if self.value is True else f"{flag} {self.value}"
        return " ".join(part for part in ("use", setting, self.why) if part)

    def for_python(self) -> str:
        """The hint as a Python caller spells it: ``pass overwrite=True to replace it``."""
        return " ".join(part for part in ("pass", f"{self.option}={self.value!r}", self.why) if part)


class LivematteError(Exception):
    """Base class: ``message`` is the one line shown to the user, ``hint`` what to change (if anything).

    ``str()`` gives the message with the hint as a Python caller would act
    on it; the CLI prints :meth:`for_cli` instead.
    """

    exit_code = 1

    def __init__(self, message: str, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint.for_python()})" if self.hint else self.message

    def for_cli(self) -> str:
        """The message with the hint as the command line spells it."""
        return f"{self.message} ({self.hint.for_cli()})" if self.hint else self.message


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
