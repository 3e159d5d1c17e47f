"""Pixel-wise knowledge distillation (Hinton et al. 2015, applied per pixel; methods.md 5.1)."""

from __future__ import annotations

from torch import Tensor

from distill.losses._functional import pixel_kl, resize_labels, resize_like
from distill.losses.base import LOSSES, Loss, pixel_mean
from distill.outputs import IGNORE_INDEX, STUDENT, PairView, Read


@LOSSES.register("kd")
class PixelWiseDistillation(Loss):
    """L_KD = (1/|Omega|) sum_{i in Omega} tau^2 * KL(softmax_c(z_T,i/tau) || softmax_c(z_S,i/tau))

    Omega = all N*h*w logit positions, as CIRKD's CriterionKD ('batchmean' over the N*h*w rows,
    times tau^2); defaults tau = 1, weight 1 [C: winycg/CIRKD losses/kd.py, train_kd.py].
    `mask_ignore` restricts Omega to pixels whose label, nearest-resized to (h, w), is not ignore
    (our choice, methods.md 5.1 [I]); with no such pixel the loss is 0. Teacher logits are
    resized bilinearly to the student's (h, w) when they differ (methods.md section 0).
    IFVD/TorchDistiller (mean over N*C*h*w) and SKD (sum / (h*w)) reduce differently.
    `tap` names the student's logits to distil, default its final ones; another logits tap
    (a DToP auxiliary head's `aux0`) is distilled from the same teacher logits.
    """

    needs = ("logits",)
    default_weight = 1.0

    def __init__(self, tau: float = 1.0, mask_ignore: bool = False, tap: str = "logits") -> None:
        super().__init__()
        self.tau, self.mask_ignore, self.tap = tau, mask_ignore, tap

    def reads(self) -> list[Read]:
        return [Read(STUDENT, self.view, self.tap), Read(self.teacher_name, self.view, "logits")]

    def forward(self, pair: PairView) -> Tensor:
        s_logits = pair.student.tap(self.tap)  # (N, C, h, w)
        t_logits = resize_like(pair.teacher.logits, s_logits.shape[-2:])
        kl = pixel_kl(s_logits, t_logits, self.tau)  # (N, h, w)
        if not self.mask_ignore:
            return kl.mean()
        valid = resize_labels(pair.labels, s_logits.shape[-2:]) != IGNORE_INDEX  # (N, h, w)
        return pixel_mean((kl * valid).sum(), valid.sum())
