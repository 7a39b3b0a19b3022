"""Backend selection and the ONNX Runtime backend's recurrent state, on real peer graphs."""
from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from livematte.backends import BACKENDS, available_backends, create_backend
from livematte.backends.onnxruntime_cpu import OnnxRuntimeBackend
from livematte.errors import DeviceError, InputError

RVM_SIZE = (192, 256)  # small frames keep the recurrent peer fast


def _rvm_inputs(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """RVM's graph inputs (NHWC RGB in [0, 1], ratio 0.5), without the state."""
    small = cv2.resize(rgb, RVM_SIZE[::-1], interpolation=cv2.INTER_AREA)
    return {"src": (small.astype(np.float32) / 255.0)[None], "downsample_ratio:0": np.array([0.5], np.float32)}


@pytest.fixture(scope="module")
def two_frames(eg1800_portrait):
    rgb, _ = eg1800_portrait
    shifted = np.roll(rgb, 24, axis=1)  # the person moved: a plausible next frame
    return _rvm_inputs(rgb), _rvm_inputs(shifted)


def test_names_and_alias(mediapipe_manifest):
    assert {"cpu", "onnxruntime", "onnxruntime-gpu", "tensorrt", "torch"} <= set(available_backends())
    for name in ("cpu", "onnxruntime"):
        backend = create_backend(name, mediapipe_manifest, (144, 256))
        assert isinstance(backend, OnnxRuntimeBackend)
        backend.close()


def test_unknown_backend_is_a_bad_option_listing_the_registry(mediapipe_manifest):
    with pytest.raises(InputError, match="unknown backend 'cuda'; choose one of: cpu") as info:
        create_backend("cuda", mediapipe_manifest, (144, 256))
    assert info.value.exit_code == 2
    assert all(name in str(info.value) for name in BACKENDS)


def test_cli_refuses_an_unknown_backend_with_exit_2_before_any_work(tmp_path, capsys):
    from livematte.cli import main

    with pytest.raises(SystemExit) as info:
        main(["process", str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4"), "--backend", "cuda"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown backend 'cuda'; choose one of: " + ", ".join(BACKENDS) in err
    assert not any(tmp_path.iterdir())


def test_backend_help_is_read_from_the_registry():
    from livematte.cli import build_parser

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["process"].format_help().split())
    for spec in BACKENDS.values():
        assert f"{spec.name}: {spec.summary}" in help_text


def test_cpu_backend_refuses_fp16_as_a_bad_option(mediapipe_manifest):
    with pytest.raises(InputError, match="backend 'cpu' cannot run fp16") as info:
        create_backend("cpu", mediapipe_manifest, (144, 256), precision="fp16")
    assert info.value.exit_code == 2


def _gpu_usable(name: str) -> bool:
    if name == "onnxruntime-gpu":
        return "CUDAExecutionProvider" in ort.get_available_providers()
    if name == "tensorrt":
        return importlib.util.find_spec("tensorrt") is not None and importlib.util.find_spec("pycuda") is not None
    if importlib.util.find_spec("torch") is None:
        return False
    import torch
    return torch.cuda.is_available()


@pytest.mark.parametrize("name", ["onnxruntime-gpu", "tensorrt", "torch"])
def test_gpu_backend_without_its_device_is_one_line(mediapipe_manifest, name):
    if _gpu_usable(name):
        pytest.skip(f"{name} is usable on this machine")
    with pytest.raises(DeviceError) as info:
        create_backend(name, mediapipe_manifest, (144, 256))
    assert name in str(info.value) and "\n" not in str(info.value)


def test_rvm_state_is_fed_back(rvm_manifest, two_frames):
    first, second = two_frames
    backend = OnnxRuntimeBackend(rvm_manifest, RVM_SIZE)
    assert all(v.shape == (1, 1, 1, 1) and not v.any() for v in backend.state.values())
    backend.run(first)
    state_after_first = {k: v.copy() for k, v in backend.state.items()}
    assert state_after_first["r1i:0"].shape[-1] == 16 and np.abs(state_after_first["r1i:0"]).max() > 0
    out_second = backend.run(second)

    # the same graph run by hand: frame 2 with frame 1's state outputs as its state inputs
    session = ort.InferenceSession(str(rvm_manifest.onnx_path), providers=["CPUExecutionProvider"])
    by_hand = session.run(["pha"], {**second, **state_after_first})[0]
    np.testing.assert_allclose(out_second["pha"], by_hand, atol=1e-5)
    stateless = session.run(["pha"], {**second, **{k: np.zeros((1, 1, 1, 1), np.float32) for k in state_after_first}})[0]
    assert np.abs(out_second["pha"] - stateless).max() > 1e-3


def test_rvm_reset_restores_initial_state(rvm_manifest, two_frames):
    first, second = two_frames
    backend = OnnxRuntimeBackend(rvm_manifest, RVM_SIZE, threads=1)
    fresh = backend.run(second)["pha"]
    backend.run(first)
    backend.reset()
    assert all(v.shape == (1, 1, 1, 1) and not v.any() for v in backend.state.values())
    np.testing.assert_allclose(backend.run(second)["pha"], fresh, atol=1e-6)
