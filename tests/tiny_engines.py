"""Tiny recurrent engines for backend and TensorRT-compatibility tests.

Shaped like the shipped engine's contract (NCHW RGB input, one ConvLSTM-like
state at 1/4 resolution fed back frame to frame, a sigmoid alpha), but small
enough to build and run in well under a second on a CPU: one exported from
torch with random weights, one built by hand whose output is high-contrast
and state-dominated (:func:`write_contrast_recurrent`).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from livematte.manifest import FORMAT

HEIGHT, WIDTH = 32, 48
STATE_CHANNELS = 4


def _write_manifest(onnx_path: Path, name: str) -> Path:
    """The manifest both tiny engines share (src, h_in -> alpha, h_out), beside ``onnx_path``."""
    manifest = {
        "format": FORMAT,
        "name": name,
        "onnx": onnx_path.name,
        "input": {"name": "src", "layout": "NCHW", "dtype": "float32", "color": "RGB",
                  "scale": 1.0 / 255.0, "size": [HEIGHT, WIDTH]},
        "state": [{"input": "h_in", "output": "h_out", "shape": [1, STATE_CHANNELS, "H/4", "W/4"], "init": 0.0}],
        "outputs": {"alpha": {"name": "alpha", "layout": "NCHW", "channel": 0, "activation": "none"}},
    }
    path = onnx_path.with_suffix(".json")
    path.write_text(json.dumps(manifest, indent=2))
    return path


def export_tiny_recurrent(directory: Path, name: str = "tiny-recurrent") -> Path:
    """Export the engine as ``directory/name.onnx`` + ``.json`` (opset 17); returns the manifest path."""
    import torch
    from torch import nn

    class TinyRecurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encode = nn.Conv2d(3, STATE_CHANNELS, 3, stride=4, padding=1)
            self.update = nn.Conv2d(2 * STATE_CHANNELS, STATE_CHANNELS, 3, padding=1)
            self.head = nn.Conv2d(STATE_CHANNELS, 1, 1)

        def forward(self, src: torch.Tensor, h_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = torch.relu(self.encode(src))
            h_out = torch.tanh(self.update(torch.cat([features, h_in], dim=1)))
            logits = nn.functional.interpolate(self.head(h_out), scale_factor=4.0, mode="bilinear",
                                               align_corners=False)
            return torch.sigmoid(logits), h_out

    torch.manual_seed(0)
    model = TinyRecurrent().eval()
    onnx_path = directory / f"{name}.onnx"
    example = (torch.rand(1, 3, HEIGHT, WIDTH), torch.zeros(1, STATE_CHANNELS, HEIGHT // 4, WIDTH // 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, example, str(onnx_path), input_names=["src", "h_in"],
                          output_names=["alpha", "h_out"], opset_version=17, dynamo=False)
    return _write_manifest(onnx_path, name)


#: the high-contrast engine's state gain: how much of last frame's state enters this frame
CONTRAST_MEMORY = 1.5
#: logit gain on the state: alpha = sigmoid(CONTRAST_GAIN * h_out) reaches 0.0003..0.9997
CONTRAST_GAIN = 8.0


def write_contrast_recurrent(directory: Path, name: str = "contrast-recurrent") -> Path:
    """A hand-built recurrent engine whose alpha spans 0..1 and depends strongly on the state.

    Per frame: ``f`` = 4x4 average of the grey image minus 0.5 (at 1/4
    resolution), ``h_out = tanh(2 f + CONTRAST_MEMORY * h_in)``, ``alpha`` =
    ``sigmoid(CONTRAST_GAIN * h_out)`` upsampled 4x bilinearly. On frames
    with coarse random blocks, a backend that drops the state, feeds it a
    frame late or never resets it is off by tenths, not by rounding, so
    tests can hold backends to a max-error bound. Built with :mod:`onnx`
    alone (no torch), with fixed weights, at opset 17.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    grey = np.full((STATE_CHANNELS, 3, 4, 4), 1.0 / 48.0, np.float32)  # every state channel sees the grey mean
    initialisers = [
        numpy_helper.from_array(grey, "grey_w"),
        numpy_helper.from_array(np.full(STATE_CHANNELS, -0.5, np.float32), "grey_b"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
        numpy_helper.from_array(np.array(CONTRAST_MEMORY, np.float32), "memory"),
        numpy_helper.from_array(np.array(CONTRAST_GAIN, np.float32), "gain"),
        numpy_helper.from_array(np.array([1.0, 1.0, 4.0, 4.0], np.float32), "scales"),
        numpy_helper.from_array(np.array([1, STATE_CHANNELS - 1], np.int64), "alpha_split"),
    ]
    nodes = [
        helper.make_node("Conv", ["src", "grey_w", "grey_b"], ["f"], strides=[4, 4], kernel_shape=[4, 4]),
        helper.make_node("Mul", ["f", "two"], ["f2"]),
        helper.make_node("Mul", ["h_in", "memory"], ["carried"]),
        helper.make_node("Add", ["f2", "carried"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["h_out"]),
        helper.make_node("Mul", ["h_out", "gain"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["small_alpha"]),
        helper.make_node("Resize", ["small_alpha", "", "scales"], ["alpha_all"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Split", ["alpha_all", "alpha_split"], ["alpha", "rest"], axis=1),
    ]
    state_shape = [1, STATE_CHANNELS, HEIGHT // 4, WIDTH // 4]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("src", TensorProto.FLOAT, [1, 3, HEIGHT, WIDTH]),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, state_shape)],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, HEIGHT, WIDTH]),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, state_shape)],
        initialisers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="livematte-tests")
    onnx_path = directory / f"{name}.onnx"
    save(model, str(onnx_path))
    return _write_manifest(onnx_path, name)


#: the aspect engine's declared sizes (H, W): 16:9, 4:3, square, 3:4, 9:16
ASPECT_SIZES = [[144, 256], [192, 256], [256, 256], [256, 192], [256, 144]]
#: what the aspect engine's state gains per frame (its ``fgr`` output is the state)
ASPECT_STEP = 0.1


def write_aspect_engine(directory: Path, name: str = "aspect-sizes") -> Path:
    """A dynamic-shape engine declaring ``input.sizes``, built by hand with :mod:`onnx`; returns its manifest.

    ``alpha`` is the grey level of each 2x2 block of the input (stride 2, like
    the shipped engines' heads), so a frame's edges land exactly where the
    runtime's padding and cropping put them. The state ``h`` (1 x 1 x H/2 x
    W/2) gains :data:`ASPECT_STEP` per frame and comes out as ``fgr`` (its
    foreground output), so how many frames it has carried is read off any
    pixel; adding it to a zero-weighted copy of the image ties its shape to
    the input's, so a state of another size fails instead of being reused.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    initialisers = [
        numpy_helper.from_array(np.full((1, 3, 1, 1), 1.0 / 3.0, np.float32), "grey_w"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(ASPECT_STEP, np.float32), "step"),
    ]
    nodes = [
        helper.make_node("AveragePool", ["src"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pooled", "grey_w"], ["alpha"]),
        helper.make_node("Mul", ["alpha", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "step"], ["gain"]),
        helper.make_node("Add", ["h_in", "gain"], ["h_out"]),
        helper.make_node("Concat", ["h_out", "h_out", "h_out"], ["fgr"], axis=1),
    ]
    half = [1, 1, "H2", "W2"]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("src", TensorProto.FLOAT, [1, 3, "H", "W"]),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, half)],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, half),
         helper.make_tensor_value_info("fgr", TensorProto.FLOAT, [1, 3, "H2", "W2"]),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, half)],
        initialisers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="livematte-tests")
    onnx_path = directory / f"{name}.onnx"
    save(model, str(onnx_path))
    manifest = {
        "format": FORMAT,
        "name": name,
        "onnx": onnx_path.name,
        "input": {"name": "src", "layout": "NCHW", "dtype": "float32", "color": "RGB", "scale": 1.0 / 255.0,
                  "size": None, "sizes": ASPECT_SIZES, "multiple_of": 16},
        "state": [{"input": "h_in", "output": "h_out", "shape": [1, 1, "H/2", "W/2"], "init": 0.0}],
        "outputs": {"alpha": {"name": "alpha", "layout": "NCHW", "channel": 0, "activation": "none"},
                    "foreground": {"name": "fgr", "layout": "NCHW", "activation": "none"}},
    }
    path = onnx_path.with_suffix(".json")
    path.write_text(json.dumps(manifest, indent=2))
    return path
