"""Semantic Human Matting (Chen et al. 2018): T-Net + M-Net + fusion.

T-Net predicts a 3-class trimap from the image; M-Net sees the image and the
trimap probabilities (6 channels) and predicts alpha; the fusion
``alpha = F + U * alpha_r`` trusts M-Net only inside the unknown band. The
paper's T-Net is PSPNet-50 and its M-Net a VGG-16 encoder-decoder; those are
far too slow for live video on a CPU, so T-Net here uses the MobileNet
encoder and M-Net a 4-level BN encoder-decoder of the same spirit.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .backbone import MobileEncoder
from .base import MattingNet, MattingOutput, State
from .blocks import ConvBNAct, GlobalConv, channel_softmax, fuse, upsample_to
from .spec import RANDOM_INITIALISATION, EngineSpec


class TNet(nn.Module):
    """Encoder + U-shaped decoder with a global-convolution context head."""

    def __init__(self, width: str = "mobile") -> None:
        super().__init__()
        self.encoder = MobileEncoder(width)
        c2, c4, c8, c16 = self.encoder.channels
        d = 32 if width == "mobile" else 64
        self.context = GlobalConv(c16, d)
        self.up8 = ConvBNAct(d + c8, d)
        self.up4 = ConvBNAct(d + c4, d)
        self.up2 = ConvBNAct(d + c2, d // 2)
        self.head = nn.Conv2d(d // 2, 3, 3, padding=1)

    def forward(self, src: Tensor) -> Tensor:
        s2, s4, s8, s16 = self.encoder(src)
        x = self.context(s16)
        x = self.up8(torch.cat([upsample_to(x, s8), s8], 1))
        x = self.up4(torch.cat([upsample_to(x, s4), s4], 1))
        x = self.up2(torch.cat([upsample_to(x, s2), s2], 1))
        return upsample_to(self.head(x), src)


class MNet(nn.Module):
    """6-channel (RGB + trimap probabilities) encoder-decoder with BatchNorm."""

    def __init__(self, width: str = "mobile") -> None:
        super().__init__()
        w = [16, 32, 64, 96] if width == "mobile" else [32, 64, 128, 256]
        self.enc = nn.ModuleList()
        cin = 6
        for c in w:
            self.enc.append(nn.Sequential(ConvBNAct(cin, c, 3, 2), ConvBNAct(c, c, 3)))
            cin = c
        self.dec = nn.ModuleList(ConvBNAct(w[i] + w[i - 1], w[i - 1]) for i in range(len(w) - 1, 0, -1))
        self.out = nn.Sequential(ConvBNAct(w[0] + 6, w[0]), nn.Conv2d(w[0], 1, 3, padding=1))

    def forward(self, src: Tensor, trimap_prob: Tensor) -> Tensor:
        x0 = torch.cat([src, trimap_prob], 1)
        skips = []
        x = x0
        for stage in self.enc:
            x = stage(x)
            skips.append(x)
        for dec, skip in zip(self.dec, reversed(skips[:-1])):
            x = dec(torch.cat([upsample_to(x, skip), skip], 1))
        return torch.sigmoid(self.out(torch.cat([upsample_to(x, x0), x0], 1)))


class SHM(MattingNet):
    """T-Net -> M-Net -> fusion; single-image (no recurrent state)."""

    def __init__(self, width: str = "mobile") -> None:
        super().__init__()
        self.tnet = TNet(width)
        self.mnet = MNet(width)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"trimap": list(self.tnet.parameters()), "alpha": list(self.mnet.parameters()), "recurrent": []}

    def engine_spec(self) -> EngineSpec:
        return EngineSpec("Semantic Human Matting (T-Net + M-Net + fusion)", RANDOM_INITIALISATION)

    def forward(self, src: Tensor, state: State = None) -> MattingOutput:
        trimap = self.tnet(src)
        prob = channel_softmax(trimap)
        alpha_r = self.mnet(src, prob)
        return MattingOutput(trimap=trimap, trimap_prob=prob, alpha_r=alpha_r, alpha=fuse(prob, alpha_r), state=None)
