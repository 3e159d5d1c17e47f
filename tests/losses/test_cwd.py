import math

import pytest
import torch

from distill.losses.cwd import ChannelWiseDistillation
from distill.outputs import TapInfo


@pytest.mark.parametrize("tau, expected", [(1.0, 0.071921), (4.0, 0.061572)])
def test_cwd_by_hand(example_51, pair_of, tau, expected):
    s, t = example_51
    # channel 0 of the teacher, spatially: softmax(ln3/tau, 0, 0, 0) vs uniform 1/4; channel 1: 0.
    a = 3 ** (1 / tau)
    q = [a / (a + 3)] + [1 / (a + 3)] * 3
    kl = sum(p * math.log(4 * p) for p in q)
    assert tau**2 * kl / 2 == pytest.approx(expected, rel=1e-4)
    assert ChannelWiseDistillation(tau=tau)(pair_of(s, t)).item() == pytest.approx(expected, rel=1e-5)


def test_cwd_on_features_creates_an_adapter_and_trains_it(pair_of):
    loss = ChannelWiseDistillation(feature="head")
    loss.setup({"head": TapInfo(4, 4)}, {"head": TapInfo(6, 4)})
    assert isinstance(loss.adapter, torch.nn.Conv2d) and loss.adapter.weight.shape == (6, 4, 1, 1)
    s_feat = torch.randn(2, 4, 5, 5, requires_grad=True)
    pair = pair_of(torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 5, 5), s_feats={"head": s_feat},
                   t_feats={"head": torch.randn(2, 6, 10, 10)})
    value = loss(pair)
    value.backward()
    assert value.item() > 0
    assert s_feat.grad.abs().sum() > 0 and loss.adapter.weight.grad.abs().sum() > 0
    assert loss.needs == ("head",)


def test_cwd_gradient_flows(example_51, pair_of):
    s, t = example_51
    ChannelWiseDistillation()(pair_of(s, t)).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
