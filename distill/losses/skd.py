"""Pair-wise similarity distillation of SKD (Liu et al., CVPR 2019, "Structured Knowledge Distillation")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from distill.losses._functional import resize_like
from distill.losses.base import LOSSES, Loss
from distill.outputs import PairView


def node_similarity(feat: Tensor, scale: float) -> Tensor:
    """(N, C, H, W) -> (N, M, M) cosine similarities a_jk between the M pooled nodes.

    Nodes: max-pool with kernel = stride = (int(scale*H), int(scale*W)), ceil mode, as the
    official CriterionPairWiseforWholeFeatAfterPool (beta = 0.5 -> 2x2 = 4 nodes on an even map)
    [C: structure_knowledge_distillation utils/criterion.py]. A kernel of 0 (maps smaller than
    1/scale) becomes 1 (our choice [I]; the official code would fail). CIRKD instead pools with a
    fixed 2x2 kernel, stride 2 (H/2 x W/2 nodes) [C: winycg/CIRKD losses/skd.py]. Nodes are
    L2-normalised over channels without detaching the norm, as CIRKD (the official code detaches
    it and adds 1e-8) — methods.md 5.3 [I].
    """
    kh, kw = max(1, int(feat.shape[2] * scale)), max(1, int(feat.shape[3] * scale))
    nodes = F.max_pool2d(feat, kernel_size=(kh, kw), stride=(kh, kw), ceil_mode=True).flatten(2)  # (N, C, M)
    nodes = F.normalize(nodes, dim=1)
    return nodes.transpose(1, 2) @ nodes


@LOSSES.register("skd")
class PairWiseDistillation(Loss):
    """L_pa = (1/N) sum_b (1/M^2) sum_{j,k} (a^S_jk - a^T_jk)^2   [C: official sim_dis_compute]

    On the `feature` tap (default "head": the feature before the classifier, the PSP output in
    the official PSPNet), (N, C_s, H, W) vs (N, C_t, H', W'); channels may differ (no adapter,
    the similarity matrices are M x M either way). A teacher map of another size is resized
    bilinearly to the student's first (our choice [I]; SKD requires equal sizes). Default weight
    0.5 [C: run_train_val.sh lambda-pa]; CIRKD-family scripts use 10. SKD's pixel-wise term (add
    `kd`; its official reduction differs, methods.md 5.1) and holistic adversarial term are not
    part of this loss.
    """

    default_weight = 0.5

    def __init__(self, feature: str = "head", scale: float = 0.5) -> None:
        super().__init__()
        self.feature, self.scale = feature, scale
        self.needs = (feature,)

    def forward(self, pair: PairView) -> Tensor:
        s_feat = pair.student.tap(self.feature)  # (N, C_s, H, W)
        t_feat = resize_like(pair.teacher.tap(self.feature), s_feat.shape[-2:])  # (N, C_t, H, W)
        return (node_similarity(s_feat, self.scale) - node_similarity(t_feat, self.scale)).pow(2).mean()
