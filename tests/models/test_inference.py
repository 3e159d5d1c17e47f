"""The deployable form that latency is measured on: BatchNorm folded, channels-last, same outputs."""

from __future__ import annotations

import torch
from torch import nn

from distill.cards import CnnCard, load_card
from distill.models import build_model
from distill.models.base import class_map
from distill.models.inference import fold_batchnorm, for_inference
from distill.outputs import SegOutput

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Statistics far from the defaults (mean 0, var 1, gamma 1, beta 0), where a fold that
    dropped a term would show."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


def batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_v2_student_folds_every_batchnorm_and_keeps_its_outputs():
    card = load_card(ROOT / "students" / "lightplus_lite0.yaml")
    model = build_model(card.model_copy(update={"pretrained": "none"}), 11).eval()
    randomise_batchnorm(model)
    before = batchnorms(model)
    deployed = for_inference(model)
    assert before > 40 and batchnorms(deployed) == 0
    assert batchnorms(model) == before and not model.training  # the original is left as it was
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        want, got = model(x).logits, deployed(x.contiguous(memory_format=torch.channels_last)).logits
    assert (want - got).abs().max() < 1e-4 * want.abs().max()
    assert next(deployed.encoder.parameters()).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(model.predict(x), deployed.predict(x))


def test_batchnorm_act_keeps_its_activation():
    """timm's BatchNormAct2d normalises then applies its activation: folding keeps the ReLU."""
    from timm.layers import BatchNormAct2d

    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), BatchNormAct2d(4, act_layer=nn.ReLU)).eval()
    randomise_batchnorm(block)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        want = block(x)
        assert want.min() == 0  # the activation really acts on this input
        assert fold_batchnorm(block) == 1
        assert torch.allclose(block(x), want, atol=1e-5)


class MisleadingOrder(nn.Module):
    """A conv and a norm registered next to each other, but the norm reads the input, not the conv."""

    def __init__(self) -> None:
        super().__init__()
        self.card = CnnCard(name="m", arch="fcn", backbone="resnet18")
        self.in_channels = 3
        self.conv = nn.Conv2d(3, 3, 1)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, images: torch.Tensor) -> SegOutput:
        return SegOutput(self.conv(images) + self.norm(images))

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return class_map(self(images).logits)


def test_a_fold_that_changes_the_outputs_is_not_used():
    model = MisleadingOrder().eval()
    randomise_batchnorm(model)
    assert fold_batchnorm(MisleadingOrder().eval()) == 1  # adjacency alone would fold it
    deployed = for_inference(model)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(deployed(x).logits, model(x).logits, atol=1e-6)
    assert batchnorms(deployed) == 1


def test_training_mode_batchnorm_is_not_folded():
    block = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    assert fold_batchnorm(block) == 0


def test_class_map_is_argmax_over_classes_ties_included():
    logits = torch.randn(2, 5, 7, 9)
    logits[:, 3] = logits[:, 1]  # exact ties: the first maximum wins in both
    assert torch.equal(class_map(logits), logits.argmax(1))
    assert class_map(logits).shape == (2, 7, 9)
