"""MobileNetV2-style encoders returning features at strides 2, 4, 8 and 16.

Two widths: ``mobile`` for real-time engines (internal resolution about
256-384 px wide) and ``large`` for the offline and reference models.
"""
from __future__ import annotations

from torch import Tensor, nn

from .blocks import ConvBNAct, InvertedResidual

# (expand, out channels, repeats, first stride) per stage, as MobileNetV2 but
# stopping at stride 16: matting needs spatial detail more than a stride-32 head.
_STAGES = {
    "mobile": [(1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 3, 2), (4, 64, 3, 2), (4, 96, 2, 1)],
    "large": [(1, 24, 1, 1), (6, 32, 2, 2), (6, 48, 3, 2), (6, 96, 4, 2), (6, 160, 3, 1)],
}
_STEM = {"mobile": 16, "large": 32}


class MobileEncoder(nn.Module):
    """Encoder; ``channels`` gives the widths of the stride 2/4/8/16 outputs."""

    def __init__(self, width: str = "mobile", in_channels: int = 3) -> None:
        super().__init__()
        if width not in _STAGES:
            raise ValueError(f"unknown encoder width {width!r}; choose from {sorted(_STAGES)}")
        stem = _STEM[width]
        self.stem = ConvBNAct(in_channels, stem, 3, 2)
        self.stages = nn.ModuleList()
        cin = stem
        outs = []
        for expand, cout, repeats, stride in _STAGES[width]:
            blocks = [InvertedResidual(cin if i == 0 else cout, cout, stride if i == 0 else 1, expand) for i in range(repeats)]
            self.stages.append(nn.Sequential(*blocks))
            cin = cout
            outs.append(cout)
        # strides after each stage: 2, 4, 8, 16, 16 -> report the last of each stride
        self.channels = (outs[0], outs[1], outs[2], outs[4])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = self.stem(x)
        s2 = self.stages[0](x)
        s4 = self.stages[1](s2)
        s8 = self.stages[2](s4)
        s16 = self.stages[4](self.stages[3](s8))
        return s2, s4, s8, s16
