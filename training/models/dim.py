"""Deep Image Matting (Xu et al. 2017): encoder-decoder and refinement stage.

DIM predicts alpha in two stages. The encoder-decoder takes the image and a
trimap (4 channels) and predicts a first alpha; the refinement stage takes
the image and that alpha (4 channels again) and, with four convolutions and
a skip connection, predicts a correction that restores the fine structure
(hair, thin edges) the decoder smoothed away.

In livematte the refinement stage is the part that ships: it sharpens *any*
coarse alpha (the real-time engine's upsampled matte, a segmentation mask),
so it is trained on its own and exported as the ``lm-refine`` engine. Being
fully convolutional with a small receptive field it runs at any resolution,
tile by tile. Dilated middle layers widen the receptive field (radius 8 px)
enough to see across the blur of a matte upsampled 4-8x, at the cost of no
extra weights. :class:`DIMEncoderDecoder` is the first stage of the paper
with a reduced VGG-like encoder, kept as the reference model the two stages
are trained against.
"""
from __future__ import annotations

import torch
from torch import nn

from livematte.manifest import Role

from .spec import EngineSpec

Tensor = torch.Tensor


def _conv_relu(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True))


class DIMRefinement(nn.Module):
    """Image (RGB in [0, 1]) + coarse alpha -> refined alpha, in [0, 1].

    Four 3x3 convolutions; the last predicts a residual that the skip adds to
    the coarse alpha, so an untrained or uncertain stage returns its input.
    """

    #: dilations of the four convolutions; their sum is the receptive radius
    DILATIONS = (1, 2, 4, 1)

    def __init__(self, channels: int = 32):
        super().__init__()
        d = self.DILATIONS
        self.body = nn.Sequential(
            _conv_relu(4, channels, d[0]),
            _conv_relu(channels, channels, d[1]),
            _conv_relu(channels, channels, d[2]),
            nn.Conv2d(channels, 1, 3, padding=d[3], dilation=d[3]),
        )
        # Start as the identity: the residual head outputs zero.
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    @classmethod
    def receptive_radius(cls) -> int:
        """Pixels of context each output pixel sees on every side."""
        return sum(cls.DILATIONS)

    def engine_spec(self) -> EngineSpec:
        return EngineSpec("DIM-style refinement stage: image + coarse alpha -> refined alpha (quality mode)",
                          "random, residual head zero (identity)", role=Role.REFINEMENT, coarse=True,
                          receptive_radius=self.receptive_radius())

    def forward(self, image: Tensor, coarse: Tensor) -> Tensor:
        residual = self.body(torch.cat([image, coarse], dim=1))
        return torch.clamp(coarse + residual, 0.0, 1.0)


class DIMEncoderDecoder(nn.Module):
    """Image + trimap (4 channels) -> alpha: DIM's first stage, VGG-like and slim.

    Five encoder stages of two 3x3 convolutions each, max-pooled with the
    indices kept; the decoder unpools with those indices (as DIM does, so
    edges return to where they were) and applies one 5x5 convolution per
    stage. Input height and width must be multiples of 32.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256, 256)):
        super().__init__()
        self.encoders = nn.ModuleList()
        cin = 4
        for width in widths:
            self.encoders.append(nn.Sequential(_conv_relu(cin, width), _conv_relu(width, width)))
            cin = width
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.decoders = nn.ModuleList()
        outs = list(widths[:-1])[::-1] + [widths[0]]
        for width in outs:
            self.decoders.append(nn.Sequential(nn.Conv2d(cin, width, 5, padding=2), nn.ReLU(inplace=True)))
            cin = width
        self.head = nn.Conv2d(cin, 1, 5, padding=2)

    def forward(self, image: Tensor, trimap: Tensor) -> Tensor:
        x = torch.cat([image, trimap], dim=1)
        indices, sizes = [], []
        for encoder in self.encoders:
            x = encoder(x)
            sizes.append(x.shape[-2:])
            x, idx = self.pool(x)
            indices.append(idx)
        for decoder, idx, size in zip(self.decoders, reversed(indices), reversed(sizes)):
            x = decoder(self.unpool(x, idx, output_size=size))
        return torch.sigmoid(self.head(x))
