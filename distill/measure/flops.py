"""GFLOPs and parameter counts at a stated input size.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts 2 FLOPs per
multiply-add (a 1x1 convolution from C_in to C_out over H*W pixels is 2*C_in*C_out*H*W) and
counts only the operators it knows (convolutions, matmuls, attention); element-wise work such as
normalisation, activations and the final resize is left out. Papers that quote "FLOPs" often
mean multiply-adds, i.e. half of our figure; we report the counter's total unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model: nn.Module, size: tuple[int, int], device: torch.device | str = "cpu") -> int:
    """FLOPs of one forward pass on a (1, 3, H, W) input (the logits, not the resize to H x W)."""
    was_training = model.training
    model.eval()
    image = torch.zeros(1, getattr(model, "in_channels", 3), *size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(image)
    model.train(was_training)
    return int(counter.get_total_flops())


def count_gflops(model: nn.Module, size: tuple[int, int], device: torch.device | str = "cpu") -> float:
    return count_flops(model, size, device) / 1e9


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
