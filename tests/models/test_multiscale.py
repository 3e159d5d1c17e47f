"""Multi-scale + flip inference (card `inference:`): the average is what the module doc says, it
applies only in eval mode, and what it cannot serve is refused in one line."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from distill.cards import TinyConvCard
from distill.errors import DistillError
from distill.models import build_model
from distill.models.cards import InferenceSpec
from distill.models.multiscale import augmented_forward
from distill.outputs import SegOutput


def tiny(**inference) -> torch.nn.Module:
    torch.manual_seed(0)
    card = TinyConvCard(name="t", family="tinyconv", widths=[4, 8], inference=InferenceSpec(**inference))
    return build_model(card, 3, ["a", "b", "c"], load_pretrained=False)


def test_two_views_by_hand():
    """A fake model whose logits are the image itself: flip averages p(x) and flip(p(flip(x)))."""
    images = torch.tensor([[[[0.0, 1.0], [2.0, 0.0]], [[1.0, 0.0], [0.0, 3.0]]]])  # (1, 2 classes, 2, 2)
    out = augmented_forward(lambda x, taps: SegOutput(x), images, (), [1.0], True, 1, "fake")
    # flipping the input, the model, and flipping back gives the same map: the mean is softmax(images)
    assert torch.allclose(out.logits.exp(), images.softmax(1), atol=1e-6)
    # pixel (0, 0): softmax of (0, 1) is (1/(1+e), e/(1+e))
    assert out.logits.exp()[0, 1, 0, 0].item() == pytest.approx(math.e / (1 + math.e), abs=1e-6)


def test_scales_average_probabilities_on_the_unscaled_grid():
    model = tiny(scales=[0.5, 1.0], flip=True).eval()
    x = torch.rand(2, 3, 32, 48)
    out = model(x).logits
    assert out.shape == (2, 3, 8, 12)  # stride 4 of the unscaled image
    views = []
    for scale in (0.5, 1.0):
        xs = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False) if scale != 1 else x
        for flipped in (False, True):
            logits = model.forward_single(xs.flip(-1) if flipped else xs).logits
            logits = logits.flip(-1) if flipped else logits
            views.append(F.interpolate(logits, size=(8, 12), mode="bilinear", align_corners=False).softmax(1))
    assert torch.allclose(out.exp(), torch.stack(views).mean(0), atol=1e-5)
    assert torch.allclose(out.exp().sum(1), torch.ones(2, 8, 12), atol=1e-5)


def test_training_mode_and_plain_cards_use_the_single_forward():
    x = torch.rand(1, 3, 32, 32)
    model = tiny(scales=[0.75, 1.25], flip=True)
    assert torch.equal(model.train()(x).logits, model.forward_single(x).logits)
    plain = tiny().eval()
    assert torch.equal(plain(x).logits, plain.forward_single(x).logits)
    assert not torch.equal(model.eval()(x).logits, model.forward_single(x).logits)


def test_feature_taps_export_and_label_inputs_are_refused():
    model = tiny(flip=True).eval()
    with pytest.raises(DistillError, match="only logit losses"):
        model(torch.rand(1, 3, 32, 32), taps=("stage1",))
    with pytest.raises(DistillError, match="inference.*single-scale inference for export"):
        model.check_exportable("m.safetensors")
    with pytest.raises(ValueError, match="needs input image"):
        TinyConvCard(name="t", family="tinyconv", input={"name": "label_channel"}, inference=InferenceSpec(flip=True))
    with pytest.raises(ValueError, match="between 0.25 and 4"):
        InferenceSpec(scales=[0.0])


def test_training_mode_trains_the_plain_forward():
    model = tiny(scales=[0.5, 1.0], flip=True).train()
    model(torch.rand(1, 3, 32, 32)).logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_a_teacher_card_sets_inference_on_a_file_trained_without_it():
    """load_teacher builds the model from its file (a plain card) and takes the recipe card's inference."""
    model = tiny()
    model.adopt_runtime_settings(TinyConvCard(name="t", family="tinyconv", widths=[4, 8], inference=InferenceSpec(flip=True)))
    assert model.card.inference.flip and model.card.widths == [4, 8]
