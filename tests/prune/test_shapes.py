"""A pruned model travels as weights plus a JSON layer-shape record: no pickle, exact round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from prune_helpers import file_info, params, subprocess_env, tiny_model
from safetensors.torch import load_file

from distill.errors import DistillError
from distill.io import read_model_file, save_model_file
from distill.models import load_model_file, save_model
from distill.prune.channels import prune_model
from distill.models.shapes import changed_layers, layer_attrs
from distill.specs import PruneSpec

SIZE = (64, 64)


def pruned_lraspp(ratio: float = 0.5):
    model = tiny_model("lraspp")
    prune_model(model, PruneSpec(ratio=ratio, importance="group_norm"), SIZE)
    return model.eval()


def fixed_input() -> torch.Tensor:
    return torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(0))


def retamper(path: Path, out: Path, edit) -> None:
    """Re-save `path`'s weights and card with its info edited by `edit(info)` (as a hand-edited file would be)."""
    meta, state = read_model_file(path)
    info = {k: v for k, v in meta.info.items() if k != "versions"}
    edit(info)
    save_model_file(out, state, meta.card, info)


def test_pruned_model_reloads_bit_exact_in_a_fresh_process(tmp_path):
    model = pruned_lraspp()
    path = tmp_path / "pruned.safetensors"
    save_model(model, path, {"note": "test"})
    code = (
        "import sys, torch; from safetensors.torch import save_file; from distill.models import load_model_file;"
        "m, _ = load_model_file(sys.argv[1]); m.eval();"
        "x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0));"
        "n = sum(p.numel() for p in m.parameters());"
        "out = m(x).logits.detach().contiguous();"
        "save_file({'logits': out, 'params': torch.tensor([n])}, sys.argv[2])"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "out.safetensors")], cwd=tmp_path,
                            capture_output=True, text=True, env=subprocess_env(), check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    reloaded = load_file(str(tmp_path / "out.safetensors"))
    with torch.no_grad():
        expected = model(fixed_input()).logits
    assert reloaded["logits"].shape == expected.shape == (1, 3, 8, 8)
    assert torch.equal(reloaded["logits"], expected)
    assert int(reloaded["params"]) == params(model)

    info = file_info(path)
    assert info["layer_shapes"], "a pruned model records its changed layers"
    assert info["layer_shapes"]["head.cbr.0"]["out_channels"] == 8  # 16 head channels halved
    assert info["note"] == "test"


def test_layer_shape_record_lists_exactly_the_changed_layers():
    model = pruned_lraspp()
    fresh = tiny_model("lraspp")
    record = changed_layers(model, fresh)
    reference = dict(fresh.named_modules())
    for name, module in model.named_modules():
        if name in record:
            assert record[name] == layer_attrs(module) != layer_attrs(reference[name]), name
        else:
            assert layer_attrs(module) == layer_attrs(reference[name]), name
    # the classifiers keep their 3 outputs but read fewer channels
    assert record["head.high_classifier"]["out_channels"] == 3 and record["head.high_classifier"]["in_channels"] == 8
    assert changed_layers(fresh, tiny_model("lraspp")) == {}


def test_unpruned_model_file_has_no_layer_shapes(tmp_path):
    model = tiny_model("lraspp").eval()
    path = tmp_path / "plain.safetensors"
    save_model(model, path, {"layer_shapes": {"stale": {}}, "note": "x"})  # a stale record passed in is dropped
    info = file_info(path)
    assert "layer_shapes" not in info and info["note"] == "x"
    reloaded, _ = load_model_file(path)
    assert params(reloaded) == params(model)


def test_record_naming_a_missing_layer_is_a_distill_error(tmp_path):
    path = tmp_path / "pruned.safetensors"
    save_model(pruned_lraspp(), path, {})
    bad = tmp_path / "bad.safetensors"
    retamper(path, bad, lambda info: info["layer_shapes"].__setitem__("head.nope", {"out_channels": 8}))
    with pytest.raises(DistillError) as caught:
        load_model_file(bad)
    assert "info.layer_shapes.head.nope" in str(caught.value)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)


def test_record_missing_a_pruned_layer_is_a_one_line_distill_error(tmp_path):
    """The weights of head.cbr.0 have 8 output channels but the record no longer says so."""
    path = tmp_path / "pruned.safetensors"
    save_model(pruned_lraspp(), path, {})
    bad = tmp_path / "bad.safetensors"
    retamper(path, bad, lambda info: info["layer_shapes"].pop("head.cbr.0"))
    with pytest.raises(DistillError) as caught:  # not torch's many-line RuntimeError from load_state_dict
        load_model_file(bad)
    text = str(caught.value)
    assert "\n" not in text and "head.cbr.0.weight" in text and str(bad) in text


def test_record_disagreeing_with_the_weights_is_a_distill_error_at_load(tmp_path):
    path = tmp_path / "pruned.safetensors"
    save_model(pruned_lraspp(), path, {})
    shapes = file_info(path)["layer_shapes"]
    depthwise = next(name for name, attrs in shapes.items() if attrs.get("groups", 1) > 1)
    bad = tmp_path / "bad.safetensors"
    retamper(path, bad, lambda info: info["layer_shapes"][depthwise].update(groups=shapes[depthwise]["groups"] * 2))
    with pytest.raises(DistillError) as caught:
        model, _ = load_model_file(bad)
        model.eval()(fixed_input())  # what a user would hit next: conv2d's RuntimeError
    assert f"info.layer_shapes.{depthwise}" in str(caught.value)


def test_deeplabv3plus_with_aux_head_prunes_and_taps_follow(tmp_path):
    model = tiny_model("deeplabv3plus", aux_head=True)
    before = params(model)
    prune_model(model, PruneSpec(ratio=0.5), SIZE)
    assert params(model) < before
    model.eval()
    names = [t for t in model.taps if t not in ("logits", "aux_logits")]
    with torch.no_grad():
        out = model(fixed_input(), taps=names)
    assert out.logits.shape == (1, 3, 16, 16)
    for name in names:  # refresh_taps after pruning: the taps say what the model really produces
        assert model.taps[name].channels == out.features[name].shape[1], name
    assert model.taps["head"].channels == 8 and model.taps["stage5"].channels == 288  # 16 and 576 unpruned

    path = tmp_path / "dlv3p.safetensors"
    save_model(model, path, {})
    reloaded, _ = load_model_file(path)
    assert reloaded.taps == model.taps
    assert params(reloaded) == params(model)
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(fixed_input()).logits, out.logits)


def test_aux_head_still_runs_in_train_mode_after_pruning():
    model = tiny_model("deeplabv3plus", aux_head=True)
    prune_model(model, PruneSpec(ratio=0.5), SIZE)
    model.train()
    out = model(torch.rand(2, 3, *SIZE, generator=torch.Generator().manual_seed(0)))
    assert out.features["aux_logits"].shape == (2, 3, 4, 4)
    assert model.aux.block[0][0].in_channels == model.taps["stage4"].channels
