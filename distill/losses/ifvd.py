"""Intra-class feature variation distillation (IFVD, Wang et al., ECCV 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.losses._functional import resize_labels, resize_like
from distill.losses.base import LOSSES, Loss
from distill.outputs import IGNORE_INDEX, PairView


def prototype_similarity(feat: Tensor, labels: Tensor, num_classes: int, eps: float = 1e-8) -> Tensor:
    """(N, C, H, W) features, (N, H, W) labels -> (N, H, W) map m_i = cos(f_i, proto_{y_i}).

    proto_k = sum of the class-k features of one image / (count + 1e-6), per image as in the
    official loop over classes [C: YukangWang/IFVD utils/criterion.py CriterionIFV]. Ignore pixels
    keep their own feature as "prototype" (cos = 1 in both networks: they add 0 but still count
    in the mean), as the official code does [C]. Written without the per-pixel (N, C, H, W) map of
    prototypes the loop builds: f_i . proto_k for every class is one (HW x C) @ (C x K) product,
    picked at y_i, over |f_i| |proto_{y_i}| (floored at eps, as F.cosine_similarity); the same
    values, a quarter of the time of that map and F.cosine_similarity on it.
    """
    valid = (labels != IGNORE_INDEX).flatten(1)  # (N, HW)
    index = labels.flatten(1).where(valid, 0)  # (N, HW)
    onehot = F.one_hot(index, num_classes).to(feat.dtype) * valid[..., None]  # (N, HW, K)
    f = feat.flatten(2)  # (N, C, HW)
    protos = (f @ onehot) / (onehot.sum(1, keepdim=True) + 1e-6)  # (N, C, K)
    dots = (f.transpose(1, 2) @ protos).gather(2, index[..., None]).squeeze(2)  # (N, HW): f_i . proto_{y_i}
    norms = f.norm(dim=1) * protos.norm(dim=1).gather(1, index)  # (N, HW)
    cos = dots / norms.clamp(min=eps)
    return cos.where(valid, torch.ones_like(cos)).view_as(labels)


@LOSSES.register("ifvd")
class IntraClassFeatureVariation(Loss):
    """L_IFV = (1/(N*H*W)) sum_i (m^S_i - m^T_i)^2, m = prototype_similarity   [C: CriterionIFV,
    nn.MSELoss mean over N*H*W].

    Reads the `feature` tap (default "head", the feature before the classifier as in SKD) of both
    networks, (N, C_s, H, W) and (N, C_t, H', W'); channels may differ (no adapter). Labels are
    nearest-resized to the feature size [C]. A teacher map of another size is resized bilinearly
    to the student's first (our choice [I]). The class count K is the student logits' channel
    count. Default weight 200 [C: IFVD options.py]; CIRKD scripts use 20. Official IFVD also
    adds pixel KD (weight 10; add `kd`, whose reduction differs, methods.md 5.1) and an
    adversarial term; neither is part of this loss.
    """

    default_weight = 200.0

    def __init__(self, feature: str = "head") -> None:
        super().__init__()
        self.feature = feature
        self.needs = (feature,)

    def forward(self, pair: PairView) -> Tensor:
        s_feat = pair.student.tap(self.feature)  # (N, C_s, H, W)
        t_feat = resize_like(pair.teacher.tap(self.feature), s_feat.shape[-2:])  # (N, C_t, H, W)
        labels = resize_labels(pair.labels, s_feat.shape[-2:])  # (N, H, W)
        num_classes = pair.student.logits.shape[1]
        s_map = prototype_similarity(s_feat, labels, num_classes)
        t_map = prototype_similarity(t_feat, labels, num_classes)
        return (s_map - t_map).pow(2).mean()
