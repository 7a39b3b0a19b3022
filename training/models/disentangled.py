"""Disentangled matting (AdaMatting, Cai et al. 2019) with a recurrent state carried across video frames.

A shared encoder feeds two decoders: trimap adaptation (deep + middle
shortcuts, global-convolution context, sub-pixel upsampling) and alpha
estimation (middle + shallow shortcuts). AdaMatting's ConvLSTM propagation
unit iterates within one image; here it sits on the stride-16 features and
its (h, c) are the *video* state, handed from frame to frame, so the net
sees what it decided a frame ago. Its output is added back through a
zero-initialised projection: at the start of training the recurrence is a
no-op and the single-image behaviour is untouched.

Two encoders:
- ``DisentangledMatting``: the MobileNetV2-style encoder of ``backbone.py``
  (trained from scratch).
- ``SeededDisentangledMatting``: the encoder and trimap decoder are the
  MediaPipe selfie-segmentation graph (Apache-2.0, Google), executed with
  :class:`livematte.torch_graph.OnnxTorchGraph` and fine-tuned. With 1,339
  labelled portraits, starting from a net trained on far more people is the
  honest way to generalise; the ConvLSTM corrects its trimap logits at
  stride 8 (see :class:`RecurrentTrimapHead` for why not at its bottleneck)
  and the alpha decoder reads its stride-2 features.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livematte.torch_graph import OnnxTorchGraph

from .backbone import MobileEncoder
from .base import MattingNet, MattingOutput, State
from .blocks import ConvBNAct, ConvLSTMCell, GlobalConv, SeparableConv, SubPixelUp, channel_softmax, fuse, upsample_to
from .spec import RANDOM_INITIALISATION, EngineSpec


class RecurrentBottleneck(nn.Module):
    """features -> features + P(ConvLSTM(Q(features), state)); P starts at zero."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.cell = ConvLSTMCell(hidden, hidden)
        self.expand = nn.Conv2d(hidden, channels, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, state = self.cell(self.squeeze(x), state)
        return x + self.expand(h), state


class RecurrentTrimapHead(nn.Module):
    """trimap logits -> logits + P(ConvLSTM(Q([trimap probabilities, features]), state)), at 1/``stride`` of the logits.

    The seeded model's recurrence: a coarse correction of the trimap logits
    from what the cell remembers of earlier frames. It sits after the frozen
    MediaPipe decoder, not inside it, because a ConvLSTM at the stride-16
    bottleneck (trained end to end on clips) pushed the frozen decoder off
    its features: held-out SAD 0.945 -> 1.569 (x1000 per pixel, 144x256,
    and back to 0.953 with that unit zeroed). Here its effect is supervised
    directly by the matte losses. P starts at zero, so the untrained head is
    the identity."""

    def __init__(self, features: int, hidden: int, stride: int = 4) -> None:
        super().__init__()
        self.stride = stride
        self.squeeze = nn.Conv2d(features + 3, hidden, 1)
        self.cell = ConvLSTMCell(hidden, hidden)
        self.expand = nn.Conv2d(hidden, 3, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, trimap: Tensor, features: Tensor, state: State) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        # fixed-kernel average pooling (adaptive pooling does not export with traced sizes)
        ratio = self.stride * features.shape[3] // trimap.shape[3]
        x = torch.cat([F.avg_pool2d(channel_softmax(trimap), self.stride), F.avg_pool2d(features, ratio)], 1)
        h, state = self.cell(self.squeeze(x), state)
        return trimap + upsample_to(self.expand(h), trimap), state


class AlphaDecoder(nn.Module):
    """Middle + shallow shortcuts, then sub-pixel upsampling to full
    resolution where the image itself joins (``full_resolution``), or a
    stride-2 estimate resized at the end.

    Depthwise-separable convs throughout: this head runs on every frame.
    The real-time engine uses the stride-2 form: at 144x256 the full-res
    stage cost more than the whole MediaPipe encoder on a CPU, and the
    runtime's guided upsampler restores edges from the full frame anyway."""

    def __init__(self, c_mid: int, c_shallow: int, width: int = 16, full_resolution: bool = True) -> None:
        super().__init__()
        self.mix = SeparableConv(c_mid + c_shallow, width)
        self.full_resolution = full_resolution
        if full_resolution:
            self.up = SubPixelUp(width, width // 2)
            self.refine = SeparableConv(width // 2 + 3, width // 2)
            width //= 2
        self.out = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, mid: Tensor, shallow: Tensor, src: Tensor) -> Tensor:
        x = self.mix(torch.cat([upsample_to(mid, shallow), shallow], 1))
        if self.full_resolution:
            x = upsample_to(self.up(x), src)
            x = self.refine(torch.cat([x, src], 1))
        return upsample_to(torch.sigmoid(self.out(x)), src)


class DisentangledMatting(MattingNet):
    """Scratch-trained variant on the MobileNetV2-style encoder."""

    recurrent = True

    def __init__(self, width: str = "mobile", hidden: int = 32) -> None:
        super().__init__()
        self.encoder = MobileEncoder(width)
        c2, c4, c8, c16 = self.encoder.channels
        d = 32 if width == "mobile" else 64
        self.bottleneck = RecurrentBottleneck(c16, hidden)
        # trimap adaptation decoder: deep (stride 16) + middle (stride 8, 4) shortcuts
        self.context = GlobalConv(c16, d)
        self.t8 = ConvBNAct(d + c8, d)
        self.t4 = ConvBNAct(d // 2 + c4, d // 2)
        self.t_up = SubPixelUp(d, d // 2)
        self.t_head = nn.Conv2d(d // 2, 3, 3, padding=1)
        # alpha decoder: middle (stride 4) + shallow (stride 2) shortcuts
        self.alpha = AlphaDecoder(c4 + d // 2, c2)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        alpha = list(self.alpha.parameters())
        recurrent = list(self.bottleneck.parameters())
        taken = {id(p) for p in alpha + recurrent}
        return {"trimap": [p for p in self.parameters() if id(p) not in taken], "alpha": alpha, "recurrent": recurrent}

    def engine_spec(self) -> EngineSpec:
        return EngineSpec("disentangled matting (trimap + alpha decoders, ConvLSTM state)", RANDOM_INITIALISATION)

    def forward(self, src: Tensor, state: State = None) -> MattingOutput:
        s2, s4, s8, s16 = self.encoder(src)
        s16, state = self.bottleneck(s16, state)
        x = self.context(s16)
        x = self.t8(torch.cat([upsample_to(x, s8), s8], 1))
        x = self.t_up(x)
        t4 = self.t4(torch.cat([upsample_to(x, s4), s4], 1))
        trimap = upsample_to(self.t_head(t4), src)
        prob = channel_softmax(trimap)
        alpha_r = self.alpha(torch.cat([s4, t4], 1), s2, src)
        return MattingOutput(trimap=trimap, trimap_prob=prob, alpha_r=alpha_r, alpha=fuse(prob, alpha_r), state=state)


@dataclass(frozen=True)
class SeedGraph:
    """Where a MediaPipe selfie-segmentation graph keeps what the seeded model reads.

    ``decoder``: last decoder features (16 ch, stride 2); ``shallow``: first
    encoder features (16 ch, stride 2); ``seg_kernel``/``seg_bias``: its
    last layer (2x2 stride-2 transposed conv to logits, and the bias added
    after it); ``person_only``: the graph predicts one person logit (square
    model) rather than background and person logits (landscape model);
    ``logit_scale``: multiplies its
    logits so they start where the unknown class can compete (the square
    graph's person logits reach +-150 on ordinary portraits: a 3-class
    softmax over them never leaves 0 or 1, and no gradient reaches the
    unknown head or the alpha decoder; scaled by 1/5 they span about what
    the landscape graph's do, and the person probability keeps its 0.5
    contour. A smaller scale (1/20) blurred every edge into a band the
    alpha decoder could not undo: held-out SAD against the hand masks 1.42
    vs MediaPipe's own 1.18)."""

    decoder: str
    shallow: str
    seg_kernel: str
    seg_bias: str
    person_only: bool
    logit_scale: float = 1.0


#: obsbgr__mediapipe.onnx (landscape, 1x144x256x3 NHWC) and
#: obsbgr__selfie_segmentation.onnx (square, 1x256x256x3 NHWC), both Apache-2.0, Google
SEED_GRAPHS = {
    "landscape": SeedGraph("add_9__xeno_compat__1:0", "mul_1:0", "conv2d_transpose/filter:0", "segment/y:0",
                           person_only=False),
    "square": SeedGraph("add_13__xeno_compat__1:0", "mul_1:0", "segment/filter:0", "const_fold_opt__493",
                        person_only=True, logit_scale=0.2),
}
#: the landscape graph's stride-8 tensor: the shipped engine's historical freeze point
MEDIAPIPE_STRIDE8 = "add__xeno_compat__1:0"


class SeededDisentangledMatting(MattingNet):
    """Encoder + trimap decoder from a MediaPipe graph, frozen or fine-tuned.

    The graph's person logits become the trimap's foreground class (and
    background, where the graph has one); a small head on the decoder
    features adds the unknown class (initialised strongly negative, so
    training starts from MediaPipe's segmentation). Input is NCHW RGB in
    [0, 1]. ``seed`` picks the graph's tensor names (:data:`SEED_GRAPHS`);
    with ``size_free`` its global pooling and resizes follow the input, so
    it trains and runs at several aspect ratios (portrait, square,
    landscape), otherwise only at the size it was converted at.

    ``full_resolution_alpha``: the alpha decoder enlarges its stride-2
    features to the input's resolution (sub-pixel convolution) and refines
    them with the image itself there, and the trimap probabilities are
    enlarged to meet it; otherwise (the real-time engines) the alpha stays
    at stride 2 and the runtime's guided upsampler enlarges it. The guided
    upsampler alone cannot recover what stride 2 loses: the hand masks of
    the 240 ``eg1800-portraits``, shrunk to stride 2 of a 256x192 input and
    guided back to 600x800, already differ from themselves by SAD 3.5; from
    the input's own resolution, 2.3 (``benchmarks/upsampler.py --side 128``
    and ``--side 256``).

    ``freeze_until`` keeps the pretrained layers up to that tensor fixed.
    The first shipped engine froze the whole landscape graph
    (``segment:0``): fine-tuning it at 2e-3 on squashed portraits lost
    held-out IoU (0.966 -> 0.952). The ``pretrained`` parameter group lets a
    stage fine-tune it at a small fraction of the heads' rate instead
    (``lr_scale`` in the training config). All outputs are at stride 2.
    """

    recurrent = True

    def __init__(self, teacher_onnx: str | Path, hidden: int = 24, freeze_until: str | None = MEDIAPIPE_STRIDE8,
                 seed: str = "landscape", size_free: bool = False, full_resolution_alpha: bool = False) -> None:
        super().__init__()
        if seed not in SEED_GRAPHS:
            raise ValueError(f"unknown seed graph {seed!r}; choose from {sorted(SEED_GRAPHS)}")
        self.seed_name = seed
        self.freeze_until = freeze_until
        self.taps = SEED_GRAPHS[seed]
        self.graph = OnnxTorchGraph(teacher_onnx, free_batch=True, size_free=size_free)
        self.any_size = size_free
        self.frozen = self.graph.parameters_up_to(freeze_until) if freeze_until else []
        for p in self.frozen:
            p.requires_grad_(False)
        self.seg = self._stride2_logits()
        self.temporal = RecurrentTrimapHead(16, hidden, stride=4)
        self.unknown = nn.Sequential(SeparableConv(16, 8), nn.Conv2d(8, 1, 1))
        nn.init.constant_(self.unknown[1].bias, -4.0)
        self.full_resolution_alpha = full_resolution_alpha
        self.alpha = AlphaDecoder(16, 16, full_resolution=full_resolution_alpha)

    def _stride2_logits(self) -> nn.Conv2d:
        """MediaPipe's last layer (2x2 stride-2 transposed conv + bias) averaged over
        each 2x2 output block: exactly a 1x1 conv on the decoder features, so the
        stride-2 logits cost nothing at full resolution. Frozen with the layer it copies."""
        kernel = self.graph.parameter_for(self.taps.seg_kernel)  # C_in x C_out x 2 x 2
        bias = self.graph.constant_or_parameter(self.taps.seg_bias).reshape(-1)
        seg = nn.Conv2d(kernel.shape[0], kernel.shape[1], 1)
        with torch.no_grad():
            seg.weight.copy_(kernel.mean(dim=(2, 3)).t()[:, :, None, None] * self.taps.logit_scale)
            seg.bias.copy_(bias.expand(kernel.shape[1]) * self.taps.logit_scale)
        if any(p is kernel for p in self.frozen):
            seg.requires_grad_(False)
            self.frozen += list(seg.parameters())
        return seg

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        frozen = {id(p) for p in self.frozen}
        pretrained = list(self.graph.parameters()) + list(self.seg.parameters())
        return {
            "pretrained": [p for p in pretrained if id(p) not in frozen],
            "trimap": list(self.unknown.parameters()),
            "alpha": list(self.alpha.parameters()),
            "recurrent": list(self.temporal.parameters()),
        }

    def engine_spec(self) -> EngineSpec:
        kept = f"frozen up to tensor {self.freeze_until!r}" if self.freeze_until else "fine-tuned"
        alpha = "full-resolution alpha head" if self.full_resolution_alpha else "alpha heads"
        return EngineSpec(
            f"disentangled matting on a MediaPipe encoder (trimap + {alpha}, ConvLSTM state)",
            f"encoder and trimap decoder are MediaPipe selfie segmentation ({self.seed_name}) weights, {kept}",
            "Apache-2.0 (Google MediaPipe selfie segmentation)")

    def forward(self, src: Tensor, state: State = None) -> MattingOutput:
        _, taps = self.graph(src.permute(0, 2, 3, 1), taps=(self.taps.decoder, self.taps.shallow), outputs=False)
        decoder, shallow = taps[self.taps.decoder], taps[self.taps.shallow]
        # the heads stay at stride 2, where the decoder's features are: every
        # full-resolution op cost as much as a decoder layer; the real-time matte too,
        # which the runtime's guided upsampler enlarges against the full frame
        seg = self.seg(decoder)  # B x 1 x H/2 x W/2 (person) or B x 2 (background, person) logits
        background = torch.zeros_like(seg) if self.taps.person_only else seg[:, :1]
        trimap, state = self.temporal(torch.cat([background, self.unknown(decoder), seg[:, -1:]], 1), decoder, state)
        prob = channel_softmax(trimap)
        if self.full_resolution_alpha:
            alpha_r = self.alpha(decoder, shallow, src)
            alpha = fuse(upsample_to(prob, alpha_r), alpha_r)
        else:
            alpha_r = self.alpha(decoder, shallow, decoder)
            alpha = fuse(prob, alpha_r)
        return MattingOutput(trimap=trimap, trimap_prob=prob, alpha_r=alpha_r, alpha=alpha, state=state)
