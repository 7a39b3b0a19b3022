"""What every matting model in the registry returns and exposes to training."""
from __future__ import annotations

from typing import TypedDict

from torch import Tensor, nn

from .spec import EngineSpec

State = tuple[Tensor, Tensor] | None


class MattingOutput(TypedDict):
    """``trimap``: B x 3 x h x w logits (background, unknown, foreground);
    ``trimap_prob``: their softmax; ``alpha_r``: the alpha decoder's estimate in [0, 1]; ``alpha``: the fused
    matte F + U * alpha_r; ``state``: recurrent (h, c) for the next frame, or
    None for single-image models.

    (h, w) is the input's size or a fraction of it: a real-time engine may
    stop at stride 2 and leave the last enlargement to the runtime's guided
    upsampler; training compares at the truth's resolution
    (:func:`.blocks.upsample_to`)."""

    trimap: Tensor
    trimap_prob: Tensor
    alpha_r: Tensor
    alpha: Tensor
    state: State


class MattingNet(nn.Module):
    """Base class: staged training freezes and unfreezes these groups.

    SHM and AdaMatting both pretrain the trimap branch and the alpha branch
    separately before training end to end; ``parameter_groups`` names which
    parameters belong to which branch so the schedule can do that.
    """

    #: True when the model carries state between video frames
    recurrent: bool = False
    #: True when the net runs at input sizes it did not train at (fully
    #: convolutional); False for graphs with sizes baked in
    any_size: bool = True

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        raise NotImplementedError

    def forward(self, src: Tensor, state: State = None) -> MattingOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def engine_spec(self) -> EngineSpec:  # pragma: no cover - interface
        """How this family's engine is described and credited (see :mod:`.spec`)."""
        raise NotImplementedError

