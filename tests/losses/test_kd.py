import math

import pytest
import torch

from distill.losses.kd import PixelWiseDistillation


@pytest.mark.parametrize("tau, expected", [(1.0, 0.032703), (2.0, 0.036341), (4.0, 0.037364)])
def test_kd_by_hand(example_51, pair_of, tau, expected):
    s, t = example_51
    # Only pixel (0,0) differs: teacher softmax(ln3/tau, 0) = (p, 1-p), p = a/(a+1), a = 3^(1/tau);
    # student uniform. KL = p ln 2p + (1-p) ln 2(1-p) (T=1: 3/4 ln 3/2 + 1/4 ln 1/2 = 0.130812);
    # the other 3 pixels give 0 -> L = tau^2 * KL / 4.
    p = 3 ** (1 / tau) / (3 ** (1 / tau) + 1)
    kl = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    assert tau**2 * kl / 4 == pytest.approx(expected, abs=5e-7)  # the spec's 6 decimals, re-derived
    got = PixelWiseDistillation(tau=tau)(pair_of(s, t))
    assert got.item() == pytest.approx(tau**2 * kl / 4, rel=1e-5)


def test_kd_mask_ignore_averages_over_labeled_pixels(example_51, pair_of):
    s, t = example_51
    labels = torch.zeros(1, 2, 2, dtype=torch.long)
    labels[0, 0, 1] = 255  # pixel (0,1) ignored: mean over the 3 others -> 0.130812 / 3
    got = PixelWiseDistillation(tau=1.0, mask_ignore=True)(pair_of(s, t, labels))
    assert got.item() == pytest.approx(0.043604, rel=1e-5)
    assert PixelWiseDistillation(tau=1.0)(pair_of(s, t, labels)).item() == pytest.approx(0.032703, rel=1e-5)


def test_kd_mask_ignore_resizes_labels_to_the_logits(example_51, pair_of):
    s, t = example_51
    labels = torch.zeros(1, 4, 4, dtype=torch.long)  # input resolution: 2x the logits
    labels[0, :2, 2:] = 255  # the 2x2 block over logit pixel (0,1): nearest resize -> ignored
    got = PixelWiseDistillation(tau=1.0, mask_ignore=True)(pair_of(s, t, labels))
    assert got.item() == pytest.approx(0.043604, rel=1e-5)
    # nothing labeled: 0, not NaN
    nothing = PixelWiseDistillation(mask_ignore=True)(pair_of(s, t, torch.full((1, 4, 4), 255)))
    assert nothing.item() == 0.0


def test_kd_gradient_reaches_student_only(example_51, pair_of, student_only_grad):
    s, t = example_51
    student_only_grad(PixelWiseDistillation()(pair_of(s, t)), [s], [t])


def test_kd_teacher_resized_to_student(pair_of):
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    t = torch.zeros(1, 2, 4, 4)
    t[0, 0, :2, :2] = math.log(3.0)  # the block over logit pixel (0,0): bilinear down-sizing keeps ln 3
    assert PixelWiseDistillation()(pair_of(s, t)).item() == pytest.approx(0.032703, rel=1e-5)
