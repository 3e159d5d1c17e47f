"""Intra-class feature variation distillation (IFVD, Wang et al., ECCV 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.losses._functional import resize_labels, resize_like
from distill.losses.base import LOSSES, Loss
from distill.outputs import IGNORE_INDEX, PairView


def prototype_similarity(feat: Tensor, labels: Tensor) -> Tensor:
    """(N, C, H, W) features, (N, H, W) labels -> (N, H, W) cos(f_i, prototype of y_i).

    Prototypes are per image and class, mean feature with 1e-6 in the denominator. Ignore pixels
    keep their own feature as "prototype" (cos = 1 in both networks), as the official code does
    [C: YukangWang/IFVD utils/criterion.py CriterionIFV]."""
    target = feat.clone()
    for c in labels.unique().tolist():
        if c == IGNORE_INDEX:
            continue
        mask = (labels == c)[:, None].float()  # (N, 1, H, W)
        proto = (feat * mask).sum((2, 3), keepdim=True) / (mask.sum((2, 3), keepdim=True) + 1e-6)
        target = mask * proto + (1 - mask) * target
    return F.cosine_similarity(feat, target, dim=1)


@LOSSES.register("ifvd")
class IntraClassFeatureVariation(Loss):
    """L = mean_i (m^S_i - m^T_i)^2 over N*H*W, m = prototype_similarity. Default weight 200
    [C: IFVD options.py]. Labels are nearest-resized to the feature size; a teacher map of another
    size is resized bilinearly to the student's (our choice [I])."""

    default_weight = 200.0

    def __init__(self, feature: str = "head") -> None:
        super().__init__()
        self.feature = feature
        self.needs = (feature,)

    def forward(self, pair: PairView) -> Tensor:
        s_feat = pair.student.tap(self.feature)
        t_feat = resize_like(pair.teacher.tap(self.feature), s_feat.shape[-2:])
        labels = resize_labels(pair.labels, s_feat.shape[-2:])
        return (prototype_similarity(s_feat, labels) - prototype_similarity(t_feat, labels)).pow(2).mean()
