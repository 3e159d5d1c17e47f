"""A DToP model file stands alone: load, eval (with executed GFLOPs and exits), compare, export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill.cards import CnnCard
from distill.data.synthetic import CLASSES
from distill.errors import DistillError
from distill.models import build_model, load_model_file, save_model

from conftest import tiny_card, tiny_vit

DATA = {"num_images": 2, "size": [32, 48]}


def saved_vit(tmp_path: Path, **fields) -> Path:
    torch.manual_seed(0)
    model = build_model(tiny_card(num_classes=None, **fields), len(CLASSES), list(CLASSES))
    path = tmp_path / "vit.safetensors"
    save_model(model, path, {"dataset": "synthetic", "data_options": DATA})
    return path


def test_file_round_trip_keeps_p0_k_and_outputs(tmp_path):
    model = tiny_vit(p0=0.0, k=2)
    save_model(model, tmp_path / "m.safetensors", {})
    loaded, meta = load_model_file(tmp_path / "m.safetensors")
    assert (loaded.card.p0, loaded.card.k, meta.card["family"]) == (0.0, 2, "vit")
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded.eval()(x).logits)
    assert loaded.tokens_per_stage() == model.tokens_per_stage()


def test_a_recipe_card_sets_p0_and_k_on_a_stage_one_model_only():
    base = tiny_vit(p0=1.0)
    base.adopt_runtime_settings(tiny_card(p0=0.9, k=3, name="other", out_indices=[1, 3, 5]))
    assert (base.card.p0, base.card.k, base.card.name) == (0.9, 3, "tiny_vit")  # the name is the file's
    cnn = build_model(CnnCard(name="c", arch="fcn", backbone="mobilenetv3_small_100", head_channels=8), 4, load_pretrained=False)
    cnn.adopt_runtime_settings(tiny_card(p0=0.5))  # another family: nothing to take
    assert cnn.card.name == "c"


def test_eval_reports_executed_gflops_exits_and_latency(tmp_path):
    from distill.engine.scoring import score_model_file

    from distill.measure.flops import count_flops

    metrics = score_model_file(saved_vit(tmp_path, p0=0.0, k=1), "synthetic", None, "val")
    unpruned = count_flops(build_model(tiny_card(num_classes=None), len(CLASSES), list(CLASSES)), (32, 48)) / 1e9
    assert 0 < metrics["executed_gflops"] < unpruned
    assert metrics["exit_fraction_head0"] > 0 and metrics["final_fraction"] < 1
    assert metrics["latency_ms"] > 0 and "batch 1" in metrics["latency_setting"]


def test_other_families_get_no_dynamic_figures():
    from accelerate import Accelerator

    from distill.data import build_dataset
    from distill.engine.evaluate import evaluate
    from distill.cards import TinyConvCard

    data = build_dataset("synthetic", None, "val", DATA)
    model = build_model(TinyConvCard(name="t", widths=[4]), len(CLASSES), list(CLASSES))
    assert "executed_gflops" not in evaluate(model, data, list(CLASSES), Accelerator(cpu=True))


def test_compare_rebuilds_it_and_shows_its_executed_gflops(tmp_path):
    import json

    from distill.report.compare import build_comparison
    from distill.report.tables import markdown

    run = tmp_path / "run"
    run.mkdir()
    saved_vit(tmp_path, p0=0.9).rename(run / "student.safetensors")
    (run / "metrics.json").write_text(json.dumps({"miou": 50.0, "executed_gflops": 0.0123, "final_fraction": 0.625}))
    comparison = build_comparison([run], size=(32, 48), repeats=0)
    assert comparison.entries[0].gflops > 0 and comparison.entries[0].params > 0
    text = markdown(comparison)
    assert "executed GFLOPs" in text and "0.012" in text
    assert "tokens exited %" in text and "| 37.5 |" in text  # 1 - final_fraction


def test_onnx_export_refuses_token_exits_in_one_line(tmp_path):
    pytest.importorskip("onnxruntime")
    from distill.export.onnx import export_onnx

    with pytest.raises(DistillError, match=r"card\.p0") as caught:
        export_onnx(saved_vit(tmp_path, p0=0.9), size=(32, 48), repeats=0)
    assert "\n" not in str(caught.value)


def test_onnx_export_of_the_unpruned_model_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    from distill.export.onnx import export_onnx

    report = export_onnx(saved_vit(tmp_path, p0=1.0), size=(32, 48), repeats=0)
    assert report.passed
