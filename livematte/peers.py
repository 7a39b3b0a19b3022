"""Manifests for well-known third-party models, so they run through livematte.

The project compares itself against these models (and its tests prove the
runtime runs models nobody here wrote), but their ONNX files are not ours to
ship. A user who has one of them writes its manifest with
:func:`write_peer_manifest` and runs it with ``--model path/to/manifest.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from livematte.manifest import FORMAT, parse_manifest

_RGB_UNIT = {"layout": "NHWC", "dtype": "float32", "color": "RGB",
             "scale": 1.0 / 255.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}


def _mediapipe(name: str, variant: str, size: list[int], alpha: dict[str, Any]) -> dict[str, Any]:
    """A MediaPipe selfie segmentation model: the two variants differ in size and output head."""
    return {"name": name, "description": f"MediaPipe selfie segmentation, {variant}",
            "input": {"name": "input_1:0", **_RGB_UNIT, "size": size},
            "outputs": {"alpha": {**alpha, "layout": "NHWC"}}, "license": "Apache-2.0"}


#: peer name -> (usual ONNX file name, manifest without its "format" and "onnx" fields)
PEERS: dict[str, tuple[str, dict[str, Any]]] = {
    "mediapipe": ("obsbgr__mediapipe.onnx", _mediapipe(
        "peer-mediapipe-landscape", "landscape 144x256", [144, 256],
        {"name": "segment:0", "channel": 1, "activation": "softmax"})),
    "selfie": ("obsbgr__selfie_segmentation.onnx", _mediapipe(
        "peer-selfie-square", "general 256x256", [256, 256],
        {"name": "activation_10", "channel": 0, "activation": "none"})),
    # SINet's normalisation is undocumented: this is obs-backgroundremoval's
    # ((pixel - mean) / (std * 255), BGR), the only one of those measured that
    # segments (IoU 0.98 on 20 EG1800 portraits; the classic (pixel - mean) / std
    # and [0, 1] inputs gave 0.53-0.59)
    "sinet": ("obsbgr__SINet_Softmax_simple.onnx", {
        "name": "peer-sinet",
        "description": "SINet portrait segmentation 320x320, compare-only peer",
        "input": {"name": "data", "layout": "NCHW", "dtype": "float32", "color": "BGR", "scale": 1.0,
                  "mean": [102.890434, 111.25247, 126.91212],
                  "std": [62.93292 * 255.0, 62.82138 * 255.0, 66.355705 * 255.0], "size": [320, 320]},
        "outputs": {"alpha": {"name": "Softmax/1", "layout": "NCHW", "channel": 1, "activation": "none"}},
        "license": "GPL-3.0 (compare only, never shipped)",
    }),
    "rvm": ("PeterL1n__rvm_mobilenetv3_from_tfjs_int8weights_fp32.onnx", {
        "name": "peer-rvm-mobilenetv3",
        "description": "RobustVideoMatting MobileNetV3 (recurrent), compare-only peer",
        "input": {"name": "src", **_RGB_UNIT, "size": None, "multiple_of": 2, "downsample_in_graph": True},
        "downsample": [{"max_side": 720, "ratio": 0.5}, {"max_side": 100000, "ratio": 0.25}],
        "constants": [{"name": "downsample_ratio:0", "dtype": "float32", "value": "ratio"}],
        "state": [{"input": f"r{i}i:0", "output": f"r{i}o", "shape": [1, 1, 1, 1], "init": 0.0} for i in range(1, 5)],
        "outputs": {"alpha": {"name": "pha", "layout": "NHWC", "channel": 0, "activation": "none"},
                    "foreground": {"name": "fgr", "layout": "NHWC", "activation": "none"}},
        "license": "GPL-3.0 (compare only, never shipped)",
    }),
    # MODNet (Ke et al., AAAI 2022; Apache-2.0 code and models, github.com/ZHKKKe/MODNet),
    # the official ONNX export: any size with sides a multiple of 32. The ratios put the
    # short side near 384, where it was measured, for 600x800 portraits, 854x480 and
    # 720p/1080p video (the rules go by the long side, hence the non-monotone ratios)
    "modnet": ("ZHKKKe__modnet_photographic_portrait_matting.onnx", {
        "name": "peer-modnet",
        "description": "MODNet photographic portrait matting (Ke et al. 2022), ~384 px short side, offline peer",
        "input": {"name": "input", "layout": "NCHW", "dtype": "float32", "color": "RGB", "scale": 1.0 / 255.0,
                  "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "size": None, "multiple_of": 32},
        "downsample": [{"max_side": 512, "ratio": 1.0}, {"max_side": 800, "ratio": 0.64},
                       {"max_side": 960, "ratio": 0.8}, {"max_side": 1280, "ratio": 0.533},
                       {"max_side": 100000, "ratio": 0.36}],
        "outputs": {"alpha": {"name": "output", "layout": "NCHW", "channel": 0, "activation": "none"}},
        "license": "Apache-2.0 (MODNet, Ke et al. 2022, github.com/ZHKKKe/MODNet)",
    }),
}


def write_peer_manifest(peer: str, onnx_path: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/<peer>.json`` pointing at ``onnx_path`` (absolute) and return it."""
    if peer not in PEERS:
        raise KeyError(f"unknown peer {peer!r}; known: {', '.join(sorted(PEERS))}")
    path = Path(out_dir).resolve() / f"{peer}.json"
    data = {"format": FORMAT, **PEERS[peer][1], "onnx": str(Path(onnx_path).resolve())}
    return parse_manifest(data, path).dump()
