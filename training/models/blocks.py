"""Layers shared by the matting models.

Every block here exports to plain ONNX ops that TensorRT's parser takes
(Conv, BatchNormalization folded at export, Relu/Clip, Sigmoid, Tanh,
DepthToSpace, Resize linear), so no model needs a custom plugin.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvBNAct(nn.Sequential):
    """Conv + BatchNorm + ReLU6: the MobileNet building brick."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 + pointwise 1x1: a 3x3 receptive field at ~1/8 the cost,
    which is what keeps full-resolution decoder stages real-time on a CPU."""

    def __init__(self, cin: int, cout: int, act: bool = True) -> None:
        super().__init__(ConvBNAct(cin, cin, 3, groups=cin), ConvBNAct(cin, cout, 1, act=act))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand 1x1, depthwise 3x3, project 1x1, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden), ConvBNAct(hidden, cout, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class GlobalConv(nn.Module):
    """Large-kernel context (Peng et al. 2017, used by AdaMatting's decoders):
    k x 1 then 1 x k and 1 x k then k x 1, summed. A wide receptive field for
    telling the person from the background without a deep stack of layers."""

    def __init__(self, cin: int, cout: int, k: int = 7) -> None:
        super().__init__()
        p = k // 2
        self.left = nn.Sequential(nn.Conv2d(cin, cout, (k, 1), padding=(p, 0)), nn.Conv2d(cout, cout, (1, k), padding=(0, p)))
        self.right = nn.Sequential(nn.Conv2d(cin, cout, (1, k), padding=(0, p)), nn.Conv2d(cout, cout, (k, 1), padding=(p, 0)))

    def forward(self, x: Tensor) -> Tensor:
        return self.left(x) + self.right(x)


class SubPixelUp(nn.Module):
    """x2 upsampling by sub-pixel convolution (pixel shuffle), as AdaMatting's
    decoders do: learned upsampling without transposed-conv checkerboards."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.conv(x))


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM (Shi et al. 2015).

    In AdaMatting the propagation unit refines alpha within one image; here
    its hidden and cell state are carried from one video frame to the next,
    which is what makes the matte temporally stable. The state is explicit
    input/output so the exported graph stays stateless and the runtime owns it.
    """

    def __init__(self, cin: int, hidden: int, k: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(cin + hidden, 4 * hidden, k, padding=k // 2)

    def zero_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shape = (x.shape[0], self.hidden, x.shape[2], x.shape[3])
        return x.new_zeros(shape), x.new_zeros(shape)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state if state is not None else self.zero_state(x)
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], 1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


def upsample_to(x: Tensor, ref: Tensor) -> Tensor:
    """Bilinear resize of ``x`` to ``ref``'s spatial size (``x`` itself when
    the sizes already agree, so no no-op Resize lands in the exported graph)."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def channel_softmax(logits: Tensor) -> Tensor:
    """Softmax over the channel axis, written as per-channel elementwise ops.

    ONNX Runtime's Softmax on a non-last axis transposes the whole map
    twice, and the usual max-subtracted form's ReduceMax, broadcast Sub and
    ReduceSum over channels cost more than the rest of the heads at 72x128
    (measured); with the channels split, the max, the exps and their sum are
    all plain elementwise ops on single-channel maps. Same numerics as
    ``torch.softmax``: exponents are taken relative to the channel maximum.
    """
    channels = torch.split(logits, 1, dim=1)
    top = functools.reduce(torch.maximum, channels)
    exps = [torch.exp(x - top) for x in channels]
    total = functools.reduce(torch.add, exps)
    return torch.cat([e / total for e in exps], dim=1)


def fuse(trimap_prob: Tensor, alpha_r: Tensor) -> Tensor:
    """SHM fusion: alpha = F + U * alpha_r with F, U the trimap probabilities.

    Classes are ordered background, unknown, foreground. F + U <= 1 in exact
    arithmetic, but float32 rounding can push the sum a hair past 1, which the
    metrics (and an 8-bit matte) reject, hence the clamp."""
    return (trimap_prob[:, 2:3] + trimap_prob[:, 1:2] * alpha_r).clamp(0.0, 1.0)
