import math

import pytest
import torch

from distill.losses.kd import PixelWiseDistillation


@pytest.mark.parametrize("tau, expected", [(1.0, 0.032703), (2.0, 0.036341), (4.0, 0.037364)])
def test_kd_by_hand(example_51, pair_of, tau, expected):
    s, t = example_51
    # At pixel (0,0) the teacher is softmax(ln3/tau, 0), the student uniform; other pixels agree.
    p = 3 ** (1 / tau) / (3 ** (1 / tau) + 1)
    kl = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    assert tau**2 * kl / 4 == pytest.approx(expected, rel=1e-4)  # the spec's value, re-derived
    got = PixelWiseDistillation(tau=tau)(pair_of(s, t))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_kd_mask_ignore_averages_over_labeled_pixels(example_51, pair_of):
    s, t = example_51
    labels = torch.zeros(1, 2, 2, dtype=torch.long)
    labels[0, 0, 1] = 255  # pixel (0,1) ignored: mean over the 3 others -> 0.130812 / 3
    got = PixelWiseDistillation(tau=1.0, mask_ignore=True)(pair_of(s, t, labels))
    assert got.item() == pytest.approx(0.043604, rel=1e-5)


def test_kd_gradient_reaches_student_only(example_51, pair_of):
    s, t = example_51
    PixelWiseDistillation()(pair_of(s, t)).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_kd_teacher_resized_to_student(pair_of):
    s = torch.zeros(1, 3, 4, 4, requires_grad=True)
    t = torch.zeros(1, 3, 8, 8)  # uniform teacher at another size: loss 0 after resizing
    assert PixelWiseDistillation()(pair_of(s, t)).item() == pytest.approx(0.0, abs=1e-7)
