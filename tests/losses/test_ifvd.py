import math

import pytest
import torch

from distill.losses.ifvd import IntraClassFeatureVariation


def test_ifvd_by_hand(pair_of):
    # labels (0, 0, 1); student (1,0),(0,1),(1,1): class-0 prototype (0.5, 0.5) -> cos 0.7071 twice;
    # teacher (1,0),(1,0),(1,1): cos 1 everywhere -> mean of (1 - 0.7071)^2, (..)^2, 0
    s = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]).view(1, 2, 1, 3).requires_grad_()
    t = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]).view(1, 2, 1, 3)
    labels = torch.tensor([[[0, 0, 1]]])
    pair = pair_of(torch.zeros(1, 2, 1, 3), torch.zeros(1, 2, 1, 3), labels, s_feats={"head": s}, t_feats={"head": t})
    value = IntraClassFeatureVariation()(pair)
    assert value.item() == pytest.approx(2 * (1 - math.sqrt(0.5)) ** 2 / 3, rel=1e-5)
    assert value.item() == pytest.approx(0.057191, rel=1e-4)
    value.backward()
    assert s.grad.abs().sum() > 0


def test_ignore_pixels_contribute_zero_but_count(pair_of):
    s = torch.tensor([[1.0, 0.0, 5.0], [0.0, 1.0, -3.0]]).view(1, 2, 1, 3)
    t = torch.tensor([[1.0, 1.0, 2.0], [0.0, 0.0, 7.0]]).view(1, 2, 1, 3)
    labels = torch.tensor([[[0, 0, 255]]])  # the ignored pixel is its own prototype: cos 1 in both
    pair = pair_of(torch.zeros(1, 2, 1, 3), torch.zeros(1, 2, 1, 3), labels, s_feats={"head": s}, t_feats={"head": t})
    assert IntraClassFeatureVariation()(pair).item() == pytest.approx(2 * (1 - math.sqrt(0.5)) ** 2 / 3, rel=1e-5)
