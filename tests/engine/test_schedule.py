"""Learning-rate schedules by hand."""

from __future__ import annotations

import math

import pytest
import torch

from distill.engine.schedule import build_optimizer, build_scheduler, lr_factor
from distill.specs import TrainSpec


def test_poly_cosine_constant_and_warmup():
    poly = TrainSpec(iterations=100, schedule="poly", power=0.9)
    assert lr_factor(0, poly) == 1.0
    assert lr_factor(50, poly) == pytest.approx(0.5**0.9)
    assert lr_factor(100, poly) == 0.0
    cosine = TrainSpec(iterations=100, schedule="cosine")
    assert lr_factor(50, cosine) == pytest.approx(0.5)
    assert lr_factor(25, cosine) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    warm = TrainSpec(iterations=100, warmup_iters=4, schedule="constant")
    assert [lr_factor(s, warm) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_head_lr_multiplier_and_scheduler_steps():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    spec = TrainSpec(iterations=10, lr=0.1, head_lr_mult=10, optimizer="adamw")
    opt = build_optimizer([([a], 1.0), ([b], spec.head_lr_mult)], spec)
    sched = build_scheduler(opt, spec)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 1.0])
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 * 0.9**0.9, 1.0 * 0.9**0.9])
