"""Every registered loss, with its defaults, gives a finite value and a student gradient."""

import pytest
import torch

from distill.losses import LOSSES
from distill.outputs import TapInfo


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_is_finite_and_differentiable(name, pair_of):
    torch.manual_seed(0)
    cls = LOSSES.get(name)
    loss = cls()
    loss.setup({"head": TapInfo(16, 4), "logits": TapInfo(5, 4)}, {"head": TapInfo(24, 4), "logits": TapInfo(5, 4)})
    s = torch.randn(2, 5, 8, 8, requires_grad=True)
    s_head = torch.randn(2, 16, 8, 8, requires_grad=True)
    labels = torch.randint(0, 5, (2, 32, 32))
    labels[:, :4] = 255
    pair = pair_of(s, torch.randn(2, 5, 8, 8), labels, s_feats={"head": s_head, "aux_logits": torch.randn(2, 5, 4, 4)},
                   t_feats={"head": torch.randn(2, 24, 8, 8)})
    value = loss(pair)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    grads = [g for g in (s.grad, s_head.grad) if g is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert cls.default_weight > 0
