import pytest
import torch

from distill.losses.skd import PairWiseDistillation


def test_skd_by_hand(pair_of):
    # two nodes (1x2 map, no pooling): student (1,0),(0,1) -> A = I; teacher (1,0),(1,0) -> all ones
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2).requires_grad_()
    t = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    pair = pair_of(torch.zeros(1, 2, 1, 2), torch.zeros(1, 2, 1, 2), s_feats={"head": s}, t_feats={"head": t})
    value = PairWiseDistillation(scale=0.5)(pair)
    assert value.item() == pytest.approx(0.5, rel=1e-6)  # two off-diagonal entries differ by 1, / 4
    value.backward()
    assert s.grad.abs().sum() > 0


def test_skd_pools_to_two_by_two_nodes(pair_of):
    s = torch.randn(1, 4, 8, 8, requires_grad=True)
    t = torch.randn(1, 6, 8, 8)  # channels may differ
    pair = pair_of(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8), s_feats={"head": s}, t_feats={"head": t})
    from distill.losses.skd import node_similarity

    assert node_similarity(s, 0.5).shape == (1, 4, 4)
    assert torch.isfinite(PairWiseDistillation()(pair))
