"""What every backend must do, checked the same way on the CPU and on a GPU.

The reference is a plain ONNX Runtime CPU session whose recurrent state is
fed back by hand, so a backend is compared with the graph's meaning, not
with its own bookkeeping. :func:`assert_carries_state` is the recurrent
contract: outputs within a max-error bound on every frame, and a reset that
really starts over (the carried and the reset outputs of one frame differ).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnxruntime as ort

from livematte.backends.base import MattingBackend, initial_state
from livematte.backends.onnxruntime_cpu import OnnxRuntimeBackend
from livematte.engine import activate
from livematte.manifest import EngineManifest

Inputs = Mapping[str, np.ndarray]

#: on the high-contrast engine a dropped or one-frame-late state is off by more than this
STATE_EFFECT = 0.3


def block_images(count: int, layout: str, height: int, width: int, channels: int = 3, seed: int = 0,
                 block: int = 8) -> list[np.ndarray]:
    """Random batch-1 images in [0, 1) made of ``block``-pixel squares, NCHW or NHWC.

    Coarse blocks survive a network's downsampling, so frames differ where
    the state is kept, which white noise averaged over 4x4 would not.
    """
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        small = rng.random((channels, -(-height // block), -(-width // block)), dtype=np.float32)
        full = np.repeat(np.repeat(small, block, 1), block, 2)[:, :height, :width]
        images.append(np.ascontiguousarray((full.transpose(1, 2, 0) if layout == "NHWC" else full)[None]))
    return images


def activated(manifest: EngineManifest, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each declared output after the manifest's activation (what the runtime uses)."""
    return {spec.name: activate(outputs[spec.name], spec) for spec in manifest.outputs.all()}


def reference_outputs(manifest: EngineManifest, feeds: Sequence[Inputs],
                      input_size: tuple[int, int]) -> list[dict[str, np.ndarray]]:
    """Activated declared outputs per frame from plain ONNX Runtime, state fed back by hand."""
    session = ort.InferenceSession(str(manifest.onnx_path), providers=["CPUExecutionProvider"])
    state = initial_state(manifest, input_size)
    declared = [o.name for o in manifest.outputs.all()]
    results = []
    for feed in feeds:
        values = session.run(declared + [s.output for s in manifest.state], {**feed, **state})
        state = {s.input: v for s, v in zip(manifest.state, values[len(declared):])}
        results.append(activated(manifest, dict(zip(declared, values))))
    return results


def max_error(got: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> float:
    """The largest absolute difference over every declared output."""
    return max(float(np.abs(got[name].astype(np.float32) - expected[name]).max()) for name in expected)


def assert_matches_reference(backend: MattingBackend, manifest: EngineManifest, feeds: Sequence[Inputs],
                             input_size: tuple[int, int], bound: float) -> list[dict[str, np.ndarray]]:
    """Run ``feeds`` through ``backend``; every frame's outputs within ``bound`` of the reference."""
    expected = reference_outputs(manifest, feeds, input_size)
    got = [activated(manifest, backend.run(feed)) for feed in feeds]
    errors = [max_error(g, e) for g, e in zip(got, expected)]
    assert max(errors) <= bound, f"max |backend - ONNX Runtime| per frame {errors} exceeds {bound}"
    return got


def assert_carries_state(backend: MattingBackend, manifest: EngineManifest, feeds: Sequence[Inputs],
                         input_size: tuple[int, int], bound: float) -> None:
    """The recurrent contract: carried state within ``bound`` on every frame, and reset starts over."""
    got = assert_matches_reference(backend, manifest, feeds, input_size, bound)
    alpha = manifest.outputs.alpha.name
    fresh = reference_outputs(manifest, feeds[-1:], input_size)[0]
    assert np.abs(got[-1][alpha] - fresh[alpha]).max() > STATE_EFFECT, "carried state made no difference"
    backend.reset()
    after_reset = activated(manifest, backend.run(feeds[-1]))
    assert max_error(after_reset, fresh) <= bound, "reset() did not restore the initial state"


class CpuDeviceStateBackend(MattingBackend):
    """The onnxruntime-gpu backend's state binding (``DeviceState``) on ONNX Runtime's CPU device."""

    def __init__(self, manifest: EngineManifest, input_size: tuple[int, int]) -> None:
        from livematte.backends.onnxruntime_gpu import DeviceState

        self._plain = OnnxRuntimeBackend(manifest, input_size)
        self._bound = DeviceState(self._plain.session, manifest, input_size, self._plain._state_dtypes, device="cpu")
        self._names = [o.name for o in manifest.outputs.all()]

    def reset(self) -> None:
        self._bound.reset()

    def run(self, inputs):
        return self._bound.run(inputs, self._names)
