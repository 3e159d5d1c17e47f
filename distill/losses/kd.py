"""Pixel-wise knowledge distillation (Hinton et al. 2015, applied per pixel)."""

from __future__ import annotations

from torch import Tensor

from distill.losses._functional import pixel_kl, resize_labels, resize_like
from distill.losses.base import LOSSES, Loss
from distill.outputs import IGNORE_INDEX, PairView


@LOSSES.register("kd")
class PixelWiseDistillation(Loss):
    """L = mean over the N*h*w logit positions of tau^2 * KL(softmax(z_T/tau) || softmax(z_S/tau)).

    Mean over positions as CIRKD's CriterionKD ('batchmean' over N*H*W rows); defaults tau=1,
    weight 1 [C: winycg/CIRKD]. `mask_ignore` restricts the mean to labeled pixels (our choice,
    methods.md 5.1 [I]). Teacher logits are resized to the student's size when they differ.
    """

    needs = ("logits",)
    default_weight = 1.0

    def __init__(self, tau: float = 1.0, mask_ignore: bool = False) -> None:
        super().__init__()
        self.tau, self.mask_ignore = tau, mask_ignore

    def forward(self, pair: PairView) -> Tensor:
        s_logits = pair.student.logits  # (N, C, h, w)
        t_logits = resize_like(pair.teacher.logits, s_logits.shape[-2:])
        kl = pixel_kl(s_logits, t_logits, self.tau)  # (N, h, w)
        if not self.mask_ignore:
            return kl.mean()
        valid = resize_labels(pair.labels, s_logits.shape[-2:]) != IGNORE_INDEX
        return (kl * valid).sum() / valid.sum().clamp(min=1)
