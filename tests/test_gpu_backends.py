"""GPU backends: what can be proven without a GPU, and GPU-marked checks for machines with one.

Without a GPU: the TensorRT plan cache (keying, stale and damaged plans),
optimisation-profile shapes from manifests, the install hints of the import
guards, the torch backend's ONNX-graph wrapping and state feedback on the
CPU (constant folding), and the ONNX Runtime device-state swapping on the
CPU device. Accuracy and recurrent-state checks for every backend, CPU and
GPU, are in ``test_backend_parity.py``.
"""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from livematte import trt_cache
from livematte.backends.base import BackendUnavailable
from livematte.backends.onnxruntime_cpu import OnnxRuntimeBackend
from livematte.manifest import DownsampleRule, load_manifest
from tiny_engines import HEIGHT, WIDTH, export_tiny_recurrent

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _cuda_available() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    if not HAS_TORCH:
        pytest.skip("exporting the tiny engine needs torch")
    return load_manifest(export_tiny_recurrent(tmp_path_factory.mktemp("tiny")))


def _frames(count: int, shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape, dtype=np.float32) for _ in range(count)]


# --- plan cache ----------------------------------------------------------------

def _key(manifest, **changes) -> trt_cache.PlanKey:
    fields = dict(gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", tensorrt_version="10.3.0",
                  precision="fp16")
    fields.update(changes)
    return trt_cache.PlanKey.create(manifest, **fields)


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert trt_cache.cache_dir() == tmp_path / "livematte" / "tensorrt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert trt_cache.cache_dir() == Path.home() / ".cache" / "livematte" / "tensorrt"


def test_every_key_field_changes_the_digest(tiny, tmp_path: Path) -> None:
    base = _key(tiny)
    assert _key(tiny).digest() == base.digest()  # deterministic
    variants = [_key(tiny, gpu_name="NVIDIA GeForce RTX 4090"), _key(tiny, compute_capability="8.9"),
                _key(tiny, tensorrt_version="10.4.0"), _key(tiny, precision="fp32")]
    other_onnx = tmp_path / "other.onnx"
    other_onnx.write_bytes(tiny.onnx_path.read_bytes() + b"\0")  # one byte differs
    variants.append(_key(replace(tiny, onnx=str(other_onnx))))
    static = trt_cache.profile_shapes(tiny)
    wider = {name: trt_cache.ShapeRange(r.min, r.opt, tuple(d + 1 for d in r.max)) for name, r in static.items()}
    variants.append(_key(tiny, profiles=wider))
    digests = {v.digest() for v in variants} | {base.digest()}
    assert len(digests) == len(variants) + 1
    assert len({v.plan_path(tmp_path) for v in variants} | {base.plan_path(tmp_path)}) == len(digests)


def test_unknown_precision_is_refused(tiny) -> None:
    with pytest.raises(ValueError, match="precision"):
        _key(tiny, precision="int8")


def test_plan_round_trip_and_atomic_write(tiny, tmp_path: Path) -> None:
    key = _key(tiny)
    plan = os.urandom(4096)
    path = trt_cache.store_plan(key, plan, tmp_path)
    assert path.parent == tmp_path and trt_cache.load_plan(key, tmp_path) == plan
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, path.with_suffix(".json").name])


def test_truncated_plan_is_rejected(tiny, tmp_path: Path) -> None:
    key = _key(tiny)
    path = trt_cache.store_plan(key, os.urandom(4096), tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    assert trt_cache.load_plan(key, tmp_path) is None


def test_plan_with_same_length_but_other_bytes_is_rejected(tiny, tmp_path: Path) -> None:
    key = _key(tiny)
    path = trt_cache.store_plan(key, bytes(4096), tmp_path)
    path.write_bytes(b"\1" * 4096)
    assert trt_cache.load_plan(key, tmp_path) is None


def test_foreign_or_stale_plan_is_never_loaded(tiny, tmp_path: Path) -> None:
    """A plan built by another TensorRT, copied under this key's name, is refused."""
    old = _key(tiny, tensorrt_version="10.0.1")
    new = _key(tiny, tensorrt_version="10.3.0")
    old_path = trt_cache.store_plan(old, b"plan built by 10.0.1", tmp_path)
    new_path = new.plan_path(tmp_path)
    new_path.write_bytes(old_path.read_bytes())
    new_path.with_suffix(".json").write_bytes(old_path.with_suffix(".json").read_bytes())
    assert trt_cache.load_plan(new, tmp_path) is None
    assert trt_cache.load_plan(old, tmp_path) == b"plan built by 10.0.1"


@pytest.mark.parametrize("sidecar", [None, "not json", "[1, 2]"])
def test_missing_or_garbled_sidecar_means_rebuild(tiny, tmp_path: Path, sidecar: str | None) -> None:
    key = _key(tiny)
    path = trt_cache.store_plan(key, b"plan", tmp_path)
    if sidecar is None:
        path.with_suffix(".json").unlink()
    else:
        path.with_suffix(".json").write_text(sidecar)
    assert trt_cache.load_plan(key, tmp_path) is None


# --- optimisation profiles -------------------------------------------------------

def test_static_engine_profile_is_its_size(mediapipe_manifest, tiny) -> None:
    shapes = trt_cache.profile_shapes(mediapipe_manifest)
    assert shapes == {"input_1:0": trt_cache.ShapeRange((1, 144, 256, 3), (1, 144, 256, 3), (1, 144, 256, 3))}
    tiny_shapes = trt_cache.profile_shapes(tiny)
    state = (1, 4, HEIGHT // 4, WIDTH // 4)
    assert tiny_shapes["h_in"] == trt_cache.ShapeRange(state, state, state)
    assert tiny_shapes["src"].min == (1, 3, HEIGHT, WIDTH)


#: (405, 720) is the largest frame at ratio 0.5, (432, 768) among the smallest at 0.25
COMMON_FRAMES = [(360, 640), (405, 720), (432, 768), (480, 640), (720, 1280), (1080, 1920), (1440, 2560),
                 (2160, 3840)]


def test_dynamic_engine_profile_covers_every_common_frame(tiny) -> None:
    """The downsample policy is not monotonic in frame size, so the range is no mere pair of endpoints."""
    dynamic = replace(tiny, input=replace(tiny.input, size=None, multiple_of=16),
                      downsample=(DownsampleRule(720, 0.5), DownsampleRule(100000, 0.25)))
    shapes = trt_cache.profile_shapes(dynamic)
    image, state = shapes["src"], shapes["h_in"]
    assert image.opt == (1, 3, *dynamic.graph_size(1080, 1920))
    for h, w in COMMON_FRAMES + [(w, h) for h, w in COMMON_FRAMES]:
        gh, gw = dynamic.graph_size(h, w)
        assert image.min[2] <= gh <= image.max[2] and image.min[3] <= gw <= image.max[3], (h, w)
    assert dynamic.graph_size(405, 720)[1] > dynamic.graph_size(432, 768)[1]
    for bound in ("min", "opt", "max"):
        _, _, gh, gw = getattr(image, bound)
        assert getattr(state, bound) == tiny.state[0].shape_for(gh, gw)


# --- import guards ---------------------------------------------------------------

@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_tensorrt_guard_names_the_install_line(mediapipe_manifest, tmp_path: Path) -> None:
    from livematte.backends.tensorrt import TensorRTBackend, build_engine_cache

    for attempt in (lambda: TensorRTBackend(mediapipe_manifest, (144, 256)),
                    lambda: build_engine_cache(mediapipe_manifest, "fp16", print, tmp_path)):
        with pytest.raises(BackendUnavailable) as info:
            attempt()
        message = str(info.value)
        assert "pip install 'livematte[gpu]'" in message and "NVIDIA" in message and "\n" not in message
    assert not any(tmp_path.iterdir())  # nothing half-built left in the cache


@pytest.mark.skipif(any(p in ort.get_available_providers() for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")),
                    reason="onnxruntime-gpu is installed here")
def test_onnxruntime_gpu_guard_names_the_package(mediapipe_manifest) -> None:
    from livematte.backends.onnxruntime_gpu import OnnxRuntimeGpuBackend

    with pytest.raises(BackendUnavailable, match="pip install onnxruntime-gpu"):
        OnnxRuntimeGpuBackend(mediapipe_manifest, (144, 256))


@needs_torch
@pytest.mark.skipif(_cuda_available(), reason="CUDA is available here")
def test_torch_guard_without_cuda(mediapipe_manifest) -> None:
    from livematte.backends.torch_cuda import TorchCudaBackend

    with pytest.raises(BackendUnavailable, match="CUDA build of PyTorch"):
        TorchCudaBackend(mediapipe_manifest, (144, 256))


def test_gpu_provider_options_share_the_plan_cache(tmp_path: Path) -> None:
    from livematte.backends.onnxruntime_gpu import gpu_providers

    both = gpu_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                         precision="fp32", cache_directory=tmp_path)
    assert [name for name, _ in both] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    options = both[0][1]
    assert options["trt_engine_cache_enable"] and options["trt_fp16_enable"] is False
    assert Path(options["trt_engine_cache_path"]).parent == tmp_path
    assert gpu_providers(["CPUExecutionProvider"]) == []


# --- torch graph backend on the CPU ------------------------------------------------

@needs_torch
def test_constants_become_initializers_without_changing_results(tiny) -> None:
    import onnx

    from livematte.backends.torch_cuda import constants_as_initializers

    model = onnx.load(str(tiny.onnx_path))
    assert any(n.op_type == "Constant" for n in model.graph.node)
    folded = constants_as_initializers(model)
    assert not any(n.op_type == "Constant" for n in folded.graph.node)
    frame, state = _frames(1, (1, 3, HEIGHT, WIDTH))[0], np.zeros((1, 4, HEIGHT // 4, WIDTH // 4), np.float32)
    run = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"src": frame, "h_in": state}) for m in (model, folded)]
    assert all(np.array_equal(a, b) for a, b in zip(*run))


# --- ONNX Runtime device state (swapping) on the CPU device -------------------------

def test_device_state_swapping_matches_plain_onnxruntime(tiny) -> None:
    from livematte.backends.onnxruntime_gpu import DeviceState

    frames = _frames(4, (1, 3, HEIGHT, WIDTH), seed=2)
    plain = OnnxRuntimeBackend(tiny, (HEIGHT, WIDTH))
    expected = [plain.run({"src": f})["alpha"] for f in frames]  # raw outputs: compared bit for bit
    bound = DeviceState(plain.session, tiny, (HEIGHT, WIDTH), {"h_in": np.float32}, device="cpu")
    for frame, e in zip(frames, expected):
        assert np.array_equal(bound.run({"src": frame}, ["alpha"])["alpha"], e)
    assert np.array_equal(bound.host_state()["h_in"], plain.state["h_in"])
    bound.reset()
    assert not bound.host_state()["h_in"].any()
    assert np.array_equal(bound.run({"src": frames[0]}, ["alpha"])["alpha"], expected[0])


# --- on a GPU (the accuracy and state checks are in test_backend_parity.py) -----------

@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="tensorrt is not installed")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_reuses_its_plan(tiny, precision: str, tmp_path: Path) -> None:
    from livematte.backends.tensorrt import TensorRTBackend

    backend = TensorRTBackend(tiny, (HEIGHT, WIDTH), precision=precision, cache_directory=tmp_path)
    plan = backend.plan_key.plan_path(tmp_path)
    built_at = plan.stat().st_mtime_ns
    backend.close()
    TensorRTBackend(tiny, (HEIGHT, WIDTH), precision=precision, cache_directory=tmp_path).close()
    assert plan.stat().st_mtime_ns == built_at
    assert json.loads(plan.with_suffix(".json").read_text())["digest"] == backend.plan_key.digest()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_engines_build_without_tensorrt_is_one_line_exit_4(mediapipe_manifest_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    from livematte.cli import main

    assert main(["engines", "build", str(mediapipe_manifest_path), "--backend", "tensorrt"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'livematte[gpu]'" in err


def _fake_gpu_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    """tensorrt and pycuda importable, but pycuda's cuInit fails as on a machine without a GPU."""
    import importlib.machinery
    import sys
    import types

    class CudaError(Exception):
        pass

    def init() -> None:
        raise CudaError("cuInit failed: no CUDA-capable device is detected")

    driver = types.ModuleType("pycuda.driver")
    driver.Error, driver.init = CudaError, init
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver
    for module in (types.ModuleType("tensorrt"), pycuda, driver):
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
        monkeypatch.setitem(sys.modules, module.__name__, module)


def test_cuinit_failure_is_a_device_error(mediapipe_manifest, mediapipe_manifest_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from livematte.backends import create_backend
    from livematte.cli import main
    from livematte.errors import DeviceError

    _fake_gpu_libraries(monkeypatch)
    with pytest.raises(DeviceError, match="CUDA cannot start: cuInit failed: no CUDA-capable device"):
        create_backend("tensorrt", mediapipe_manifest, (144, 256))
    assert main(["engines", "build", str(mediapipe_manifest_path), "--precision", "fp32"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no CUDA-capable device" in err


@pytest.mark.parametrize("requested, fast, resolved", [
    ("auto", True, "fp16"), ("auto", False, "fp32"), ("fp16", False, "fp16"), ("fp32", True, "fp32")])
def test_tensorrt_precision_is_resolved_on_the_gpu(requested: str, fast: bool, resolved: str) -> None:
    """The plan key holds the resolved precision, so engines build and process meet at one plan."""
    from types import SimpleNamespace

    from livematte.backends.tensorrt import effective_precision

    trt = SimpleNamespace(Builder=lambda logger: SimpleNamespace(platform_has_fast_fp16=fast))
    assert effective_precision(trt, None, requested) == resolved


def test_precision_is_one_option_for_every_command() -> None:
    from livematte.cli import build_parser

    parser = build_parser()
    for argv in (["process", "in.mp4", "out.mp4"], ["webcam", "--preview"], ["bench"], ["engines", "build", "x"]):
        assert parser.parse_args(argv).precision == "auto"
        assert parser.parse_args([*argv, "--precision", "fp16"]).precision == "fp16"
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--precision", "int8"])
    assert parser.parse_args(["engines", "build", "x", "--fp32"]).precision == "fp32"


def test_matter_passes_precision_to_the_backend(mediapipe_manifest) -> None:
    from livematte.engine import Matter
    from livematte.errors import InputError

    with pytest.raises(InputError, match="backend 'cpu' cannot run fp16"):
        Matter(mediapipe_manifest, backend="cpu", precision="fp16")
