"""A tiny recurrent engine exported from torch, for backend and TensorRT-compatibility tests.

Shaped like the shipped engine's contract (NCHW RGB input, one ConvLSTM-like
state at 1/4 resolution fed back frame to frame, a sigmoid alpha), but small
enough to export and run in well under a second on a CPU.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from livematte.manifest import FORMAT

HEIGHT, WIDTH = 32, 48
STATE_CHANNELS = 4


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
    manifest = {
        "format": FORMAT,
        "name": name,
        "onnx": onnx_path.name,
        "input": {"name": "src", "layout": "NCHW", "dtype": "float32", "color": "RGB",
                  "scale": 1.0 / 255.0, "size": [HEIGHT, WIDTH]},
        "state": [{"input": "h_in", "output": "h_out", "shape": [1, STATE_CHANNELS, "H/4", "W/4"], "init": 0.0}],
        "outputs": {"alpha": {"name": "alpha", "layout": "NCHW", "channel": 0, "activation": "none"}},
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path
