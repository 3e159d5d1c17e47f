"""The deployable form of a trained model: BatchNorm folded into the convolution before it, and a
convolutional model in channels-last memory. Latency figures (`compare`, `check`, `prune`,
`bench/`) time this form, because it is what anyone serving the model in PyTorch would run.

Why it matters on a CPU (torch 2.14.1 eager, batch 1, 360x480, 2 threads, lightplus_lite0):
`predict` takes 73 ms as trained (NCHW, every BatchNorm a separate pass over its activations)
and 37 ms in this form. oneDNN's depthwise 3x3 convolution runs about 12x faster on a
channels-last tensor than on an NCHW one here (1.6 vs 19 ms at 96x180x240), and a folded
BatchNorm costs nothing at run time. The outputs are those of the trained model up to float
rounding (folding rewrites w*gamma/sigma and the bias): `for_inference` checks that on a
random image and falls back to the unfolded copy if a fold was wrong.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

FOLD_TOLERANCE = 1e-3  # relative to the largest logit; float rounding of a fold is about 1e-6


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d among one parent's children
    (nn.Sequential, timm's blocks: conv, then its norm) into that conv, in place. A timm
    BatchNormAct2d keeps its activation (and drop). Returns how many were folded.

    Adjacency among registered children is how these models are written, not a guarantee of data
    flow; `for_inference` therefore compares outputs before it trusts a folded copy."""
    folded = 0
    for parent in list(model.modules()):
        names = list(parent._modules)
        for conv_name, norm_name in zip(names, names[1:]):
            conv, norm = parent._modules[conv_name], parent._modules[norm_name]
            if not (type(conv) is nn.Conv2d and isinstance(norm, nn.BatchNorm2d)):
                continue
            if norm.training or not norm.track_running_stats or conv.out_channels != norm.num_features:
                continue
            parent._modules[conv_name] = fuse_conv_bn_eval(conv, norm)
            after = [m for m in (getattr(norm, "drop", None), getattr(norm, "act", None)) if m is not None]
            parent._modules[norm_name] = nn.Sequential(*after) if after else nn.Identity()
            folded += 1
    return folded


def uses_convolutions(model: nn.Module) -> bool:
    """Channels-last pays for convolutional models; a ViT's tokens are not an NCHW map."""
    return getattr(getattr(model, "card", None), "family", None) in ("cnn", "tinyconv")


def for_inference(model: nn.Module, size: tuple[int, int] = (64, 64)) -> nn.Module:
    """An eval-mode copy in deployable form; `model` is left as it is. A module that is no
    distill Segmenter (an ONNX Runtime session wrapper) is returned unchanged."""
    if not hasattr(model, "predict") or not hasattr(model, "card"):
        return model
    reference = copy.deepcopy(model).eval()
    deployed = copy.deepcopy(reference)
    folded = fold_batchnorm(deployed)
    if folded:
        device = next(reference.parameters()).device
        image = torch.rand(1, reference.in_channels, *size, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            want, got = reference(image).logits, deployed(image).logits
        if (want - got).abs().max() > FOLD_TOLERANCE * want.abs().max().clamp_min(1.0):
            deployed = reference  # a conv and norm that were adjacent but not in sequence: keep the unfolded copy
    if uses_convolutions(deployed):
        deployed = deployed.to(memory_format=torch.channels_last)
    return deployed
