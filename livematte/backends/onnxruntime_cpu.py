"""ONNX Runtime backend: the default that runs on any machine after ``pip install``.

Tuned for latency on a few cores (one frame at a time, all graph
optimisations, sequential execution). GPU execution providers reuse this
class through the ``providers`` and ``session_options`` parameters, so the
state feedback logic exists once.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from livematte.backends.base import BackendUnavailable, MattingBackend, initial_state
from livematte.errors import EngineError, first_line
from livematte.manifest import EngineManifest

try:
    import onnxruntime as ort
except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
    raise BackendUnavailable(f"onnxruntime cannot be imported: {exc}") from None

#: ONNX Runtime tensor type strings -> numpy dtypes, for state and constants
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def low_latency_session_options(threads: int | None = None, spin: bool = False) -> "ort.SessionOptions":
    """Session options for one-frame-at-a-time inference next to other busy threads.

    ``threads`` sets intra-op parallelism (None: ONNX Runtime's default, one
    per physical core). Spinning is off by default because in the pipeline
    decode, compositing and encoding threads need those cores between frames.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.log_severity_level = 3  # warnings about unused initialisers are noise to users
    return options


class OnnxRuntimeBackend(MattingBackend):
    """Runs an engine with ONNX Runtime and feeds its recurrent state back.

    ``input_size`` is the graph input (height, width); it fixes the initial
    state shapes. ``state`` exposes the tensors that will be fed into the next
    frame, which tests and GPU subclasses can inspect.
    """

    name = "cpu"

    def __init__(
        self,
        manifest: EngineManifest,
        input_size: tuple[int, int],
        providers: Sequence[str | tuple[str, dict]] = ("CPUExecutionProvider",),
        threads: int | None = None,
        session_options: "ort.SessionOptions | None" = None,
    ):
        self.manifest = manifest
        self.input_size = input_size
        options = session_options or low_latency_session_options(threads)
        try:
            self.session = ort.InferenceSession(str(manifest.onnx_path), options, providers=list(providers))
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise EngineError(
                f"engine {manifest.name!r}: ONNX Runtime cannot load {manifest.onnx_path.name}: "
                f"{first_line(exc)}"
            ) from None
        input_types = {i.name: i.type for i in self.session.get_inputs()}
        self._state_dtypes = {s.input: _ORT_DTYPES.get(input_types.get(s.input, ""), np.float32)
                              for s in manifest.state}
        self._output_names = [o.name for o in manifest.outputs.all()]
        self._state_outputs = [s.output for s in manifest.state]
        self.state: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        self.state = initial_state(self.manifest, self.input_size, self._state_dtypes)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = dict(inputs)
        feed.update(self.state)
        try:
            values = self.session.run(self._output_names + self._state_outputs, feed)
        except Exception as exc:
            raise EngineError(f"engine {self.manifest.name!r} failed on a frame: {first_line(exc)}") from None
        n = len(self._output_names)
        self.state = {s.input: v for s, v in zip(self.manifest.state, values[n:])}
        return dict(zip(self._output_names, values[:n]))

    def close(self) -> None:
        self.state = {}
        # dropping the session frees its arena; ORT has no explicit close
        self.session = None  # type: ignore[assignment]
