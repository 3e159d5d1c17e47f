import math

import pytest
import torch

from distill.losses.cwd import ChannelWiseDistillation
from distill.outputs import TapInfo


@pytest.mark.parametrize("tau, expected", [(1.0, 0.071921), (4.0, 0.061572)])
def test_cwd_by_hand(example_51, pair_of, tau, expected):
    s, t = example_51
    # Teacher channel 0 over the 4 positions: softmax(ln3/tau, 0, 0, 0) = (a, 1, 1, 1)/(a+3),
    # a = 3^(1/tau) (T=1: (1/2, 1/6, 1/6, 1/6)); the student's is uniform 1/4, so
    # KL = sum q ln 4q (T=1: 0.143841). Channel 1 agrees -> L = tau^2 * KL / (N*C = 2).
    a = 3 ** (1 / tau)
    q = [a / (a + 3)] + [1 / (a + 3)] * 3
    kl = sum(p * math.log(4 * p) for p in q)
    assert tau**2 * kl / 2 == pytest.approx(expected, abs=5e-7)  # the spec's 6 decimals, re-derived
    assert ChannelWiseDistillation(tau=tau)(pair_of(s, t)).item() == pytest.approx(tau**2 * kl / 2, rel=1e-5)


def test_cwd_gradient_reaches_student_only(example_51, pair_of, student_only_grad):
    s, t = example_51
    student_only_grad(ChannelWiseDistillation()(pair_of(s, t)), [s], [t])


def test_cwd_teacher_logits_resized_to_student(pair_of):
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    t = torch.zeros(1, 2, 4, 4)
    t[0, 0, :2, :2] = math.log(3.0)  # bilinear down-sizing by 2 gives back the 5.1 teacher
    assert ChannelWiseDistillation(tau=1.0)(pair_of(s, t)).item() == pytest.approx(0.071921, rel=1e-5)


def test_cwd_on_logits_has_no_adapter():
    loss = ChannelWiseDistillation()
    loss.setup({"logits": TapInfo(5, 8)}, {"logits": TapInfo(5, 8)})
    assert loss.needs == ("logits",) and isinstance(loss.adapter, torch.nn.Identity)
    assert not list(loss.parameters())


def test_cwd_on_features_creates_an_adapter_and_trains_it(pair_of, student_only_grad):
    loss = ChannelWiseDistillation(feature="head")
    assert loss.needs == ("head",)
    loss.setup({"head": TapInfo(4, 4)}, {"head": TapInfo(6, 4)})
    assert isinstance(loss.adapter, torch.nn.Conv2d) and loss.adapter.weight.shape == (6, 4, 1, 1)
    s_feat = torch.randn(2, 4, 5, 5, requires_grad=True)
    t_feat = torch.randn(2, 6, 10, 10, requires_grad=True)  # other channels and size
    pair = pair_of(torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 5, 5), s_feats={"head": s_feat}, t_feats={"head": t_feat})
    value = loss(pair)
    assert value.item() > 0
    student_only_grad(value, [s_feat], [t_feat])
    assert loss.adapter.weight.grad.abs().sum() > 0


def test_cwd_on_features_with_equal_channels_needs_no_adapter():
    loss = ChannelWiseDistillation(feature="head")
    loss.setup({"head": TapInfo(8, 4)}, {"head": TapInfo(8, 8)})
    assert isinstance(loss.adapter, torch.nn.Identity)
