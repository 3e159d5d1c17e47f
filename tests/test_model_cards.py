"""Model cards beside model files (run folder README.md, <file>.README.md beside exports), ONNX
metadata properties, and fp16 model files for zoo/ (through the real CLI, on a tinyconv student)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from helpers import run_distill, synthetic_data
from safetensors import safe_open

from distill.models import load_model_file


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cards")
    (folder / "student.yaml").write_text("family: tinyconv\nname: tiny_s\nwidths: [8, 16]\n")
    (folder / "r.yaml").write_text(f"name: r\nstudent: student.yaml\ndata: {synthetic_data(8)}\nlosses: [{{name: ce}}]\n"
                                   "train: {iterations: 3, lr: 0.05}\n")
    result = run_distill("run", "r.yaml", "--out-dir", "run", cwd=folder)
    assert result.returncode == 0, result.stderr[-2000:]
    return folder / "run"


def front_matter(path: Path) -> tuple[dict, str]:
    text = path.read_text()
    assert text.startswith("---\n")
    head, _, rest = text[4:].partition("\n---\n")
    return yaml.safe_load(head), rest


def test_a_run_folder_gets_a_model_card_with_classes_metrics_and_recipe(run):
    matter, body = front_matter(run / "README.md")
    metrics = json.loads((run / "metrics.json").read_text())
    assert matter["library_name"] == "distill" and "semantic-segmentation" in matter["tags"] and matter["datasets"] == ["synthetic"]
    reported = {m["type"]: m["value"] for m in matter["model-index"][0]["results"][0]["metrics"]}
    assert reported["miou"] == round(metrics["miou"], 2)
    _, meta = load_model_file(run / "student.safetensors")
    listed = [line.split(". ", 1)[1] for line in body.splitlines() if line[:1].isdigit() and ". " in line]
    assert listed == meta.classes  # in output-channel order
    assert "mean [0.485, 0.456, 0.406]" in body and f"miou: {metrics['miou']:.2f}" in body
    assert "params: " in body and "GFLOPs: " in body and "name: r" in body  # the resolved recipe


def test_onnx_export_carries_classes_and_normalisation_and_a_card(run):
    onnx = pytest.importorskip("onnx")
    result = run_distill("export", str(run / "student.safetensors"), "--size", "48", "64", cwd=run)
    assert result.returncode == 0, result.stderr[-2000:]
    props = {p.key: p.value for p in onnx.load(str(run / "student.onnx")).metadata_props}
    _, meta = load_model_file(run / "student.safetensors")
    assert json.loads(props["classes"]) == meta.classes
    assert json.loads(props["input_mean"]) == list(meta.card["input_mean"]) and json.loads(props["input_size"]) == [48, 64]
    matter, body = front_matter(run / "student.onnx.README.md")
    assert matter["library_name"] == "distill" and "ONNX opset 17" in body


def test_fp16_file_halves_the_weights_and_predicts_like_the_original(run):
    result = run_distill("export", str(run / "student.safetensors"), "--format", "fp16", cwd=run)
    assert result.returncode == 0, result.stderr[-2000:]
    half = run / "student.fp16.safetensors"
    with safe_open(str(half), framework="pt") as handle:
        dtypes = {handle.get_tensor(k).dtype for k in handle.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    import hashlib

    assert hashlib.sha256(half.read_bytes()).hexdigest() in " ".join(result.stdout.split())
    full, _ = load_model_file(run / "student.safetensors")
    small, meta = load_model_file(half)
    assert meta.info["stored_as"]["dtype"] == "float16"
    images = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = full.eval()(images).logits, small.eval()(images).logits
    assert torch.allclose(a, b, atol=1e-2 * max(1.0, float(a.abs().max())))
