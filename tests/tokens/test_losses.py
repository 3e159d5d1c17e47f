"""The two loss options DToP needs: CE on every auxiliary head, KD on a named logits tap."""

from __future__ import annotations

import math

import pytest
import torch

from distill.losses.ce import CrossEntropy
from distill.losses.kd import PixelWiseDistillation
from distill.outputs import PairView, Read, SegOutput, aux_logits_of


def pair(s_logits, feats, t_logits=None, labels=None):
    labels = torch.zeros(s_logits.shape[0], *s_logits.shape[-2:], dtype=torch.long) if labels is None else labels
    teacher = SegOutput(t_logits.detach()) if t_logits is not None else None
    return PairView.single(SegOutput(s_logits, feats), teacher, labels)


def test_aux_taps_are_the_cnn_one_and_the_numbered_ones():
    names = ["aux1", "aux0", "aux_logits", "auxiliary", "head", "aux0x"]
    out = SegOutput(torch.zeros(1), {name: torch.full((1,), float(i)) for i, name in enumerate(names)})
    assert [float(t) for t in aux_logits_of(out)] == [1.0, 0.0, 2.0]  # aux0, aux1, aux_logits (sorted names)


def test_ce_adds_every_aux_head_by_hand():
    # two classes, all logits 0: each CE is ln 2; final + 0.5 * (aux0 + aux1) = 2 ln 2
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    aux = [torch.zeros(1, 2, 2, 2, requires_grad=True) for _ in range(2)]
    got = CrossEntropy(aux_weight=0.5)(pair(s, {"aux0": aux[0], "aux1": aux[1]}))
    assert got.item() == pytest.approx(2 * math.log(2), rel=1e-6)
    got.backward()
    for tensor, scale in ((s, 1.0), (aux[0], 0.5), (aux[1], 0.5)):
        # d CE / d z[label 0] per pixel = (1/2 - 1) / 4 pixels, times the term's weight
        assert tensor.grad[0, 0].flatten().tolist() == pytest.approx([scale * -0.125] * 4)


def test_kd_on_a_named_tap_by_hand():
    # methods.md 5.1's example on the aux0 tap: one of 4 pixels has teacher (3/4, 1/4) against the
    # student's (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2); mean over the 4 pixels
    final = torch.randn(1, 2, 2, 2, requires_grad=True)
    aux0 = torch.zeros(1, 2, 2, 2, requires_grad=True)
    teacher = torch.zeros(1, 2, 2, 2)
    teacher[0, 0, 0, 0] = math.log(3)
    loss = PixelWiseDistillation(tap="aux0")
    got = loss(pair(final, {"aux0": aux0}, teacher))
    assert got.item() == pytest.approx((0.75 * math.log(1.5) + 0.25 * math.log(0.5)) / 4, rel=1e-6)
    got.backward()
    assert aux0.grad.abs().sum() > 0 and torch.isfinite(aux0.grad).all() and final.grad is None


def test_kd_reads_the_tap_from_the_student_and_logits_from_the_teacher():
    assert PixelWiseDistillation(tap="aux1").reads() == [Read("student", "labeled", "aux1"), Read("main", "labeled", "logits")]
    assert PixelWiseDistillation().reads() == [Read("student", "labeled", "logits"), Read("main", "labeled", "logits")]
