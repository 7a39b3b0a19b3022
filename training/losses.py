"""Losses of the papers this project implements, in one place.

- alpha prediction (DIM): sqrt((a_p - a_g)^2 + eps^2), a smooth L1 that
  keeps a gradient at zero error;
- compositional (DIM): the same on the image re-composited with the
  predicted alpha, which rewards getting alpha right where colours differ;
- trimap cross-entropy (SHM, lambda = 0.01 in the paper);
- uncertainty weighting (AdaMatting, after Kendall et al. 2018): the trimap
  and alpha tasks are balanced by learned log-variances instead of a
  hand-tuned lambda;
- temporal coherence: the predicted matte should change between frames as
  much as the ground truth does, and no more (flicker is the error a viewer
  notices first in live video);
- distillation: agreement with a teacher's person probability.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-6


def _masked_mean(x: Tensor, weight: Tensor | None) -> Tensor:
    if weight is None:
        return x.mean()
    weight = weight.expand_as(x)
    return (x * weight).sum() / weight.sum().clamp_min(1.0)


def alpha_prediction_loss(pred: Tensor, gt: Tensor, weight: Tensor | None = None) -> Tensor:
    return _masked_mean(torch.sqrt((pred - gt) ** 2 + EPS**2), weight)


def compositional_loss(pred: Tensor, gt: Tensor, fg: Tensor, bg: Tensor, weight: Tensor | None = None) -> Tensor:
    """``fg``/``bg`` are the true foreground and background colours (B x 3 x H x W)."""
    comp_pred = pred * fg + (1 - pred) * bg
    comp_gt = gt * fg + (1 - gt) * bg
    return _masked_mean(torch.sqrt(((comp_pred - comp_gt) ** 2).sum(1, keepdim=True) + EPS**2), weight)


def trimap_from_alpha(alpha: Tensor, band: int = 3) -> Tensor:
    """Class targets 0/1/2 (background/unknown/foreground) from a soft alpha.

    Unknown is every pixel with 0 < alpha < 1, widened by ``band`` pixels with
    a max-pool, as SHM and DIM build trimaps from ground-truth mattes."""
    soft = ((alpha > 0.02) & (alpha < 0.98)).float()
    if band > 0:
        soft = F.max_pool2d(soft, 2 * band + 1, 1, band)
    target = torch.where(alpha >= 0.5, 2, 0)
    target = torch.where(soft > 0, 1, target)
    return target.squeeze(1).long()


def trimap_loss(logits: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(logits, target)


def temporal_coherence_loss(pred: Tensor, gt: Tensor) -> Tensor:
    """``pred``/``gt``: B x T x 1 x H x W. L1 between frame-to-frame changes."""
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    return (torch.diff(pred, dim=1) - torch.diff(gt, dim=1)).abs().mean()


def distillation_loss(alpha: Tensor, teacher_prob: Tensor) -> Tensor:
    """L1 to the teacher's person probability: keeps what the teacher knew
    about people while the student fits a small labelled set."""
    return (alpha - teacher_prob).abs().mean()


class UncertaintyWeighting(nn.Module):
    """L = sum_i exp(-s_i) * L_i + s_i, with s_i = log sigma_i^2 learned.

    A task whose loss stays large gets down-weighted automatically; the +s_i
    term stops the weights from collapsing to zero (AdaMatting's sigma1,
    sigma2 for the trimap and alpha tasks)."""

    def __init__(self, tasks: tuple[str, ...] = ("trimap", "alpha")) -> None:
        super().__init__()
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in tasks})

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        total = next(iter(losses.values())).new_zeros(())
        for task, loss in losses.items():
            s = self.log_vars[task]
            total = total + torch.exp(-s) * loss + s
        return total

    def sigmas(self) -> dict[str, float]:
        return {t: float(torch.exp(0.5 * s.detach())) for t, s in self.log_vars.items()}
