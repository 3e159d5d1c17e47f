"""Optimizers and iteration-based learning-rate schedules."""

from __future__ import annotations

import math

import torch
from torch import nn

from distill.specs import TrainSpec


def build_optimizer(groups: list[tuple[list[nn.Parameter], float]], spec: TrainSpec) -> torch.optim.Optimizer:
    """`groups` are (params, lr multiplier); weight decay applies to every group."""
    param_groups = [{"params": ps, "lr": spec.lr * mult, "lr_mult": mult} for ps, mult in groups if ps]
    if spec.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    return torch.optim.AdamW(param_groups, lr=spec.lr, weight_decay=spec.weight_decay)


def lr_factor(step: int, spec: TrainSpec) -> float:
    """Multiplier of the base lr at optimizer step `step` (linear warm-up, then poly/cosine/constant)."""
    if spec.warmup_iters and step < spec.warmup_iters:
        return (step + 1) / spec.warmup_iters
    progress = min(step / spec.iterations, 1.0)
    if spec.schedule == "poly":
        return (1.0 - progress) ** spec.power
    if spec.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, spec: TrainSpec) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, spec))
