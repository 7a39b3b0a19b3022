"""Shared fixtures: real data from ../shared and manifests for third-party peer models.

The runtime must run models nobody here wrote, so tests write the manifests
of :mod:`livematte.peers` for the peer ONNX files in ../shared/peers
(referenced by absolute path, into temporary directories) instead of
depending on the project's own engine. Everything skips with a reason when
../shared is absent.
"""
from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livematte.manifest import FORMAT, EngineManifest, load_manifest
from livematte.peers import PEERS as KNOWN_PEERS, write_peer_manifest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PEERS = SHARED / "peers"
DATA = SHARED / "data"

MEDIAPIPE_ONNX = PEERS / "obsbgr__mediapipe.onnx"
RVM_ONNX = PEERS / "PeterL1n__rvm_mobilenetv3_from_tfjs_int8weights_fp32.onnx"

#: the peers' manifests as the package knows them (their ``onnx`` is set per test run)
PEER_MANIFESTS: dict[str, dict] = {peer: {"format": FORMAT, **manifest} for peer, (_, manifest) in KNOWN_PEERS.items()}
_PEER_ONNX = {peer: PEERS / onnx_name for peer, (onnx_name, _) in KNOWN_PEERS.items()}


def write_manifest(directory: Path, data: dict, stem: str) -> Path:
    """Write ``data`` as ``directory/stem.json`` and return its path."""
    path = directory / f"{stem}.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def _peer_manifest_path(tmp_path_factory: pytest.TempPathFactory, peer: str) -> Path:
    onnx_path = _PEER_ONNX[peer]
    if not onnx_path.is_file():
        pytest.skip(f"peer model {onnx_path} not available")
    return write_peer_manifest(peer, onnx_path, tmp_path_factory.mktemp(f"peer-{peer}"))


@pytest.fixture(scope="module")
def keyer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The red-keyer test engine (media_helpers.write_keyer_engine): its matte is known exactly."""
    from media_helpers import write_keyer_engine

    return write_keyer_engine(tmp_path_factory.mktemp("keyer"))


@pytest.fixture(scope="session")
def mediapipe_manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest for the MediaPipe landscape peer (NHWC 144x256, softmax, channel 1)."""
    return _peer_manifest_path(tmp_path_factory, "mediapipe")


@pytest.fixture(scope="session")
def selfie_manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest for the MediaPipe square peer (NHWC 256x256, probability output)."""
    return _peer_manifest_path(tmp_path_factory, "selfie")


@pytest.fixture(scope="session")
def sinet_manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest for the SINet peer (NCHW 320x320, BGR, obs-backgroundremoval's normalisation)."""
    return _peer_manifest_path(tmp_path_factory, "sinet")


@pytest.fixture(scope="session")
def rvm_manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest for the recurrent RVM peer (state r1i..r4i fed back from r1o..r4o)."""
    return _peer_manifest_path(tmp_path_factory, "rvm")


@pytest.fixture(scope="session")
def mediapipe_manifest(mediapipe_manifest_path: Path) -> EngineManifest:
    return load_manifest(mediapipe_manifest_path)


@pytest.fixture(scope="session")
def selfie_manifest(selfie_manifest_path: Path) -> EngineManifest:
    return load_manifest(selfie_manifest_path)


@pytest.fixture(scope="session")
def sinet_manifest(sinet_manifest_path: Path) -> EngineManifest:
    return load_manifest(sinet_manifest_path)


@pytest.fixture(scope="session")
def rvm_manifest(rvm_manifest_path: Path) -> EngineManifest:
    return load_manifest(rvm_manifest_path)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"cannot read {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_grey(path: Path) -> np.ndarray:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert grey is not None, f"cannot read {path}"
    return grey


def _pairs(folder: str, truth: str) -> list[tuple[Path, Path]]:
    root = DATA / folder
    if not (root / "image").is_dir():
        pytest.skip(f"{root} not available")
    pairs = []
    for image in sorted((root / "image").iterdir()):
        matches = sorted((root / truth).glob(image.stem + ".*"))
        if matches:
            pairs.append((image, matches[0]))
    if not pairs:
        pytest.skip(f"{root} has no image/{truth} pairs")
    return pairs


@pytest.fixture(scope="session")
def eg1800_portrait() -> tuple[np.ndarray, np.ndarray]:
    """One real EG1800 validation portrait (RGB uint8) and its person mask (bool)."""
    image, mask = _pairs("eg1800-portraits", "mask")[0]
    return read_rgb(image), read_grey(mask) > 127


@pytest.fixture(scope="session")
def soft_alpha_samples() -> list[tuple[np.ndarray, np.ndarray]]:
    """Real photos with soft ground-truth alpha (AISegment humans + two alphamatting.com hair/fur images)."""
    pairs = _pairs("aisegment-matting-human-samples", "alpha") + _pairs("alphamatting-lowres-train", "alpha")[:2]
    return [(read_rgb(i), read_grey(a)) for i, a in pairs]


@pytest.fixture(scope="session")
def image_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60x240 image, red ramping 0..239 left to right, blue 200: wider than 16:9, so covering crops the sides."""
    image = np.zeros((60, 240, 3), np.uint8)
    image[:, :, 0] = np.arange(240, dtype=np.uint8)[None, :]
    image[:, :, 2] = 200
    path = tmp_path_factory.mktemp("bg") / "wide.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def video_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five frames, each one flat grey level: 20, 70, 120, 170, 220."""
    path = tmp_path_factory.mktemp("bg") / "levels.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.qscale = 1
        for level in (20, 70, 120, 170, 220):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def keyer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ONNX engine that calls red pixels the person (media_helpers.write_keyer_engine)."""
    from media_helpers import write_keyer_engine

    return write_keyer_engine(tmp_path_factory.mktemp("keyer"))
