import math

import pytest
import torch

from distill.losses.ce import CrossEntropy


def test_ce_by_hand_with_ignore_and_upsampling(pair_of):
    # 2 classes, logits (ln 3, 0) everywhere at 1x1, upsampled to 2x2: p(class 0) = 3/4.
    s = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1).requires_grad_()
    labels = torch.tensor([[[0, 1], [0, 255]]])
    # pixels: class 0 -> -ln(3/4), class 1 -> -ln(1/4), class 0 -> -ln(3/4); ignore excluded
    expected = (2 * -math.log(0.75) - math.log(0.25)) / 3
    got = CrossEntropy()(pair_of(s, labels=labels))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    got.backward()
    assert s.grad.abs().sum() > 0


def test_ce_reads_no_teacher():
    assert CrossEntropy.needs_teacher is False


def test_ce_all_ignored_is_zero_not_nan(pair_of):
    s = torch.randn(1, 3, 2, 2, requires_grad=True)
    got = CrossEntropy()(pair_of(s, labels=torch.full((1, 4, 4), 255)))
    assert got.item() == 0.0
    got.backward()
    assert torch.isfinite(s.grad).all()


def test_ce_adds_weighted_aux_head(pair_of):
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    aux = torch.zeros(1, 2, 1, 1, requires_grad=True)
    labels = torch.zeros(1, 2, 2, dtype=torch.long)
    got = CrossEntropy(aux_weight=0.4)(pair_of(s, labels=labels, s_feats={"aux_logits": aux}))
    assert got.item() == pytest.approx(1.4 * math.log(2), rel=1e-6)  # uniform logits: CE = ln 2 each
    got.backward()
    assert aux.grad.abs().sum() > 0
    assert CrossEntropy(aux_weight=0.0)(pair_of(s, labels=labels, s_feats={"aux_logits": aux})).item() == pytest.approx(
        math.log(2), rel=1e-6
    )
