"""Cross-entropy with ignore index: the task loss of every recipe (methods.md section 0)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from distill.losses.base import LOSSES, Loss, pixel_mean
from distill.outputs import IGNORE_INDEX, PairView, aux_logits_of


def upsampled_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """CE of (N, C, h, w) logits bilinearly upsampled to the (N, H, W) labels, mean over the
    labeled pixels. A batch with no labeled pixel gives 0, not NaN (our choice [I]; plain
    F.cross_entropy divides 0 by 0 there), with a zero but finite gradient."""
    logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    per_pixel = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="none")  # (N, H, W)
    return pixel_mean(per_pixel.sum(), (labels != IGNORE_INDEX).sum())


@LOSSES.register("ce")
class CrossEntropy(Loss):
    """L_task = CE(up(z_S), y) + aux_weight * CE(up(z_aux), y), ignore index 255.

    The auxiliary term is added for each auxiliary-head tap the student records ("aux_logits",
    or "aux0", "aux1", ... of a ViT with several heads; distill.outputs.aux_logits_of), each with
    aux_weight: 0.4 [C: CIRKD, TorchDistiller]; DToP weights every head 1 (methods.md section 4),
    which its recipes set. Logits (N, C, h, w) are upsampled bilinearly to the labels' (N, H, W)
    before the CE, as CIRKD does.
    """

    needs = ("logits",)
    needs_teacher = False
    default_weight = 1.0

    def __init__(self, aux_weight: float = 0.4) -> None:
        super().__init__()
        self.aux_weight = aux_weight

    def forward(self, pair: PairView) -> Tensor:
        loss = upsampled_ce(pair.student.logits, pair.labels)
        if self.aux_weight:
            for aux_logits in aux_logits_of(pair.student):
                loss = loss + self.aux_weight * upsampled_ce(aux_logits, pair.labels)
        return loss
