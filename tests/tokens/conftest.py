"""A tiny DToP ViT for tests: timm's test_vit (width 64, 6 blocks, 0.3 M params), heads after
blocks 1, 3 and 5, four classes, on 32x48 inputs (2x3 = 6 tokens) unless a test says otherwise."""

from __future__ import annotations

import pytest
import torch

from distill.cards import VitCard
from distill.models import build_model


def tiny_card(**fields) -> VitCard:
    return VitCard(**{"name": "tiny_vit", "backbone": "test_vit", "out_indices": [1, 3, 5], "num_classes": 4, **fields})


def tiny_vit(seed: int = 0, **fields):
    torch.manual_seed(seed)
    return build_model(tiny_card(**fields), 4, ["a", "b", "c", "d"]).eval()


def block_lengths(model) -> list[list[int]]:
    """A hook on every block recording the sequence lengths it runs on, in call order, per block."""
    seen: list[list[int]] = [[] for _ in model.net.vit.blocks]
    for i, block in enumerate(model.net.vit.blocks):
        block.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(args[0].shape[1]))
    return seen


@pytest.fixture()
def make_vit():
    return tiny_vit
