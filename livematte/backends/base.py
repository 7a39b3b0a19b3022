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

from livematte.manifest import EngineManifest


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


def initial_state(manifest: EngineManifest, input_size: tuple[int, int],
                  dtypes: Mapping[str, type | np.dtype] | None = None) -> dict[str, np.ndarray]:
    """Every state input at graph size ``(height, width)``, filled with its ``init`` value.

    The one definition of a fresh recurrent state: each backend copies these
    host arrays into wherever it keeps the state (host, ORT device values,
    torch buffers, TensorRT device memory). ``dtypes`` maps state input
    names to the graph's element type (float32 when absent).
    """
    height, width = input_size
    return {s.input: np.full(s.shape_for(height, width), s.init, dtype=(dtypes or {}).get(s.input, np.float32))
            for s in manifest.state}


def resolve_precision(requested: str, fast_fp16: bool) -> str:
    """``fp16`` or ``fp32``: what ``--precision`` means on a device.

    ``auto`` is fp16 only where the device has fast fp16 (on others it would
    be emulated, slower than fp32); ``fp16`` and ``fp32`` are taken as asked.
    """
    if requested == "auto":
        return "fp16" if fast_fp16 else "fp32"
    if requested not in ("fp16", "fp32"):
        raise ValueError(f"precision must be auto, fp16 or fp32, not {requested!r}")
    return requested
