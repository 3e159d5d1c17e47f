"""Pair-wise similarity distillation of SKD (Liu et al., CVPR 2019, "Structured Knowledge Distillation")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from distill.losses._functional import resize_like
from distill.losses.base import LOSSES, Loss
from distill.outputs import PairView


def node_similarity(feat: Tensor, scale: float) -> Tensor:
    """(N, C, H, W) -> (N, M, M) cosine similarities of max-pooled nodes.

    Nodes: max-pool with kernel = stride = int(scale * size) (official `feat_ind=-5`, beta 0.5
    -> 2x2 nodes), ceil mode. Normalised over channels without detaching the norm (CIRKD; the
    official code detaches it) [C: CIRKD losses/skd.py]."""
    kh, kw = max(1, int(feat.shape[2] * scale)), max(1, int(feat.shape[3] * scale))
    nodes = F.max_pool2d(feat, kernel_size=(kh, kw), stride=(kh, kw), ceil_mode=True).flatten(2)  # (N, C, M)
    nodes = F.normalize(nodes, dim=1)
    return nodes.transpose(1, 2) @ nodes


@LOSSES.register("skd")
class PairWiseDistillation(Loss):
    """L_pa = (1/N) sum_b (1/M^2) sum_{j,k} (a^S_jk - a^T_jk)^2 on the feature before the
    classifier. Default weight 0.5 [C: structure_knowledge_distillation run_train_val.sh].
    Channels may differ (no adapter); a teacher map of another size is resized bilinearly to the
    student's first (our choice [I])."""

    default_weight = 0.5

    def __init__(self, feature: str = "head", scale: float = 0.5) -> None:
        super().__init__()
        self.feature, self.scale = feature, scale
        self.needs = (feature,)

    def forward(self, pair: PairView) -> Tensor:
        s_feat = pair.student.tap(self.feature)
        t_feat = resize_like(pair.teacher.tap(self.feature), s_feat.shape[-2:])
        return (node_similarity(s_feat, self.scale) - node_similarity(t_feat, self.scale)).pow(2).mean()
