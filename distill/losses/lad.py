"""LAD's dual-path consistency (Qiu et al. 2024, "Make a Strong Teacher with Label Assistance";
methods.md section 3): the loss that makes a label-assisted teacher robust to its label noise.

The teacher is trained on two independently noised inputs of each image (the `copy` batch
transform makes the second view; the `lad_label` input adapter draws new codes and noise on every
forward), with CE on both paths and this symmetric distance between their outputs. The student is
then distilled from the frozen teacher with plain CWD (`cwd`, weight 3, T 4), which needs no code
of its own.
"""

from __future__ import annotations

from torch import Tensor

from distill.losses._functional import channel_kl
from distill.losses.base import LOSSES, Loss
from distill.outputs import STUDENT, PairView, Read


@LOSSES.register("lad.consistency")
class DualPathConsistency(Loss):
    """L = CWD(o1 <- o2) + CWD(o2 <- o1), CWD(s <- t) = channel_kl(s, stopgrad(t), T).

    o1 and o2 are the logits of the model being trained on its recipe entry's `view:` and on
    `other` (the second noised path). The paper names only "a distance loss" between the two
    outputs [P: Abstract]; channel-wise KL applied both ways, weight 5 and T 4, is the official
    code [C: skyshoumeng/Label_Assisted_Distillation train_baseline.py]. Each direction stops the
    gradient of its target, so each path is pulled towards the other.
    """

    needs_teacher = False
    default_weight = 5.0

    def __init__(self, other: str = "copy", tau: float = 4.0) -> None:
        super().__init__()
        self.other, self.tau = other, tau

    def reads(self) -> list[Read]:
        return [Read(STUDENT, self.view, "logits"), Read(STUDENT, self.other, "logits")]

    def forward(self, pair: PairView) -> Tensor:
        o1, o2 = pair.student.logits, pair.output(STUDENT, self.other).logits
        return channel_kl(o1, o2.detach(), self.tau) + channel_kl(o2, o1.detach(), self.tau)
