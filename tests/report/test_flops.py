"""FLOP and parameter counts worked out by hand on layers small enough to count."""

from __future__ import annotations

from torch import nn

from distill.measure.flops import count_flops, count_gflops, count_params


def test_conv_counts_two_flops_per_multiply_add():
    conv = nn.Conv2d(3, 4, kernel_size=1, bias=False)
    # every output pixel of every output channel needs 3 multiply-adds: 4 * 3 * (5 * 6) = 360 MACs
    assert count_flops(conv, (5, 6)) == 2 * 360
    assert count_gflops(conv, (5, 6)) == 720 / 1e9


def test_stride_and_kernel_enter_the_count():
    conv = nn.Conv2d(3, 2, kernel_size=3, stride=2, padding=1, bias=False)
    # output 4x4; each output value sums 3 * 3 * 3 = 27 products: 2 * 16 * 27 = 864 MACs
    assert count_flops(conv, (8, 8)) == 2 * 864


def test_params_and_mode_restored():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    model.train()
    assert count_params(model) == (3 * 4 + 4) + (4 + 4)  # conv weight + bias, BN weight + bias
    count_flops(model, (2, 2))
    assert model.training  # counting must not leave a training model in eval mode
