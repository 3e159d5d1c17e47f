"""Cross-entropy with ignore index: the task loss of every recipe."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from distill.losses.base import LOSSES, Loss
from distill.outputs import IGNORE_INDEX, PairView


def upsampled_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """CE of (N, C, h, w) logits bilinearly upsampled to the (N, H, W) labels; 0 if all ignored."""
    logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    per_pixel = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="none")
    valid = (labels != IGNORE_INDEX).sum()
    return per_pixel.sum() / valid.clamp(min=1)


@LOSSES.register("ce")
class CrossEntropy(Loss):
    """Pixel-wise cross-entropy on the student's logits, plus `aux_weight` x CE of its auxiliary
    head when the card has one (weight 0.4 in CIRKD and TorchDistiller)."""

    needs = ("logits",)
    needs_teacher = False
    default_weight = 1.0

    def __init__(self, aux_weight: float = 0.4) -> None:
        super().__init__()
        self.aux_weight = aux_weight

    def forward(self, pair: PairView) -> Tensor:
        loss = upsampled_ce(pair.student.logits, pair.labels)
        aux = pair.student.features.get("aux_logits")
        if aux is not None and self.aux_weight:
            loss = loss + self.aux_weight * upsampled_ce(aux, pair.labels)
        return loss
