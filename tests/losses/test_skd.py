import pytest
import torch

from distill.losses.skd import PairWiseDistillation, node_similarity


def feature_pair(pair_of, s_feat, t_feat):
    return pair_of(torch.zeros(1, 2, 1, 1), torch.zeros(1, 2, 1, 1), s_feats={"head": s_feat}, t_feats={"head": t_feat})


def test_skd_by_hand(pair_of, student_only_grad):
    # Two nodes (1x2 map; beta 0.5 -> kernel int(0.5) -> 1, no pooling): student (1,0),(0,1) ->
    # A^S = I; teacher (1,0),(1,0) -> A^T = all ones. The two off-diagonal entries differ by 1:
    # L = (1/B) (1/N^2) * 2 = 2/4 = 0.5.
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2).requires_grad_()
    t = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(1, 2, 1, 2).requires_grad_()
    value = PairWiseDistillation(scale=0.5)(feature_pair(pair_of, s, t))
    assert value.item() == pytest.approx(0.5, rel=1e-6)
    student_only_grad(value, [s], [t])


def test_skd_max_pools_nodes_first(pair_of):
    # 1x4 map, beta 0.5 -> kernel (1, 2): nodes = max over columns {0,1} and {2,3}. Student nodes
    # (1,0),(0,1), teacher nodes (1,0),(1,0): the by-hand case again, 0.5 (the four unpooled
    # nodes would give 0.25).
    s = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]).view(1, 2, 1, 4)
    t = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).view(1, 2, 1, 4)
    assert PairWiseDistillation()(feature_pair(pair_of, s, t)).item() == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("size, nodes", [(8, 4), (5, 9), (1, 1)])
def test_node_count_follows_the_official_kernel(size, nodes):
    # kernel = int(0.5 * size), ceil mode: 8 -> 4 (2x2 nodes); 5 -> 2 (3x3 nodes); 1 -> 0 -> 1
    assert node_similarity(torch.randn(2, 3, size, size), 0.5).shape == (2, nodes, nodes)


def test_skd_channels_and_sizes_may_differ(pair_of, student_only_grad):
    torch.manual_seed(0)
    s = torch.randn(1, 4, 8, 8, requires_grad=True)
    t_small = torch.randn(1, 6, 8, 8)  # other channel count: no adapter needed
    t_big = t_small.repeat_interleave(2, 2).repeat_interleave(2, 3)  # 16x16, bilinear halving gives t_small back
    loss = PairWiseDistillation()
    same = loss(feature_pair(pair_of, s, t_small))
    assert loss(feature_pair(pair_of, s, t_big.requires_grad_())).item() == pytest.approx(same.item(), rel=1e-6)
    student_only_grad(same, [s])
    assert loss.needs == ("head",) and PairWiseDistillation(feature="layer3").needs == ("layer3",)
