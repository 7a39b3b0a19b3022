"""The one interface every matting backend implements.

A backend executes an engine's graph for one frame at a time and owns the
recurrent state between frames, so GPU backends can keep that state on the
device. Everything that is the same for all backends (resizing, normalising,
activation, upsampling) lives in :mod:`livematte.engine`, not here.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Mapping

import numpy as np


class BackendUnavailable(RuntimeError):
    """The backend's libraries or device are missing on this machine.

    The message is one line a user can act on (what to install, or why the
    device cannot be used); the CLI prints it as is.
    """


class MattingBackend(ABC):
    """Runs one engine graph frame by frame, carrying its recurrent state.

    Subclasses are built from a loaded manifest (``livematte.manifest``) and
    a graph input size; they must feed ``state[*].input`` from the previous
    frame's ``state[*].output`` and start from ``state[*].init``.
    """

    #: short name used on the command line (``--backend NAME``)
    name: str = ""

    @abstractmethod
    def reset(self) -> None:
        """Forget the recurrent state (seek, scene cut, source restart)."""

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one frame.

        ``inputs`` holds the graph's image input and constant inputs (not the
        state, which the backend supplies itself). Returns the graph outputs
        named in the manifest's ``outputs`` as host numpy arrays; state
        outputs are kept by the backend and need not be returned.
        """

    def close(self) -> None:
        """Release device memory and sessions; the default has nothing to free."""
