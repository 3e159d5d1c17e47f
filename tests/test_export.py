"""`distill export`: an ONNX file that onnxruntime runs and that matches PyTorch, on a tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_distill as distill

from distill.cards import card_from_dict
from distill.errors import DistillError
from distill.export import export_onnx
from distill.models import build_model, load_model_file, save_model

ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
SIZE = (64, 96)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    card = card_from_dict({"name": "tiny", "arch": "lraspp", "backbone": "mobilenetv3_small_100", "head_channels": 16}, "test")
    model = build_model(card, 3, ["a", "b", "c"], load_pretrained=False)
    path = tmp_path_factory.mktemp("export") / "tiny.safetensors"
    save_model(model, path, info={})
    return path


def onnx_against_torch(onnx_path: Path, model_path: Path, shape: tuple[int, ...], seed: int) -> tuple[float, tuple]:
    """Max |diff| of the logits, recomputed here without any of distill.export's code."""
    model, _ = load_model_file(model_path)
    images = torch.rand(*shape, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = model.eval()(images).logits.numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"images": images.numpy()})[0]
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max()), got.shape


def test_export_matches_pytorch_and_reports_it(model_file, tmp_path):
    out = tmp_path / "sub" / "tiny.onnx"
    report = export_onnx(model_file, out, opset=17, size=SIZE)
    assert out.is_file() and report.path == out and report.file_bytes == out.stat().st_size
    # no temporary file left beside it; the model card is written beside the export
    assert sorted(out.parent.iterdir()) == [out, out.with_name("tiny.onnx.README.md"), out.with_name("tiny.onnx.json")]
    assert report.opset == 17 and report.sizes == [SIZE] and report.passed
    assert report.max_abs_diff < 1e-4
    assert report.torch.median_ms > 0 and report.ort.median_ms > 0 and report.ratio > 0
    assert len(report.torch.samples_ms) == len(report.ort.samples_ms) == 20
    diff, shape = onnx_against_torch(out, model_file, (1, 3, *SIZE), seed=123)
    assert diff < 1e-4
    assert shape == (1, 3, SIZE[0] // 8, SIZE[1] // 8)  # logits at the LR-ASPP head's stride 8
    with pytest.raises(Exception, match="[Ii]nvalid dimensions"):  # a fixed-size export refuses another size
        ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
            ["logits"], {"images": np.zeros((1, 3, 96, 160), np.float32)})


def test_dynamic_size_runs_at_a_second_size_and_batch(model_file, tmp_path):
    out = tmp_path / "dyn.onnx"
    report = export_onnx(model_file, out, dynamic_size=True, size=SIZE, repeats=2, warmup=1)
    assert report.sizes == [SIZE, (96, 160)] and [p.batch for p in report.parity] == [1, 2]
    assert report.passed and report.max_abs_diff < 1e-4
    diff, shape = onnx_against_torch(out, model_file, (3, 3, 128, 64), seed=7)  # yet another size and batch
    assert diff < 1e-4 and shape == (3, 3, 16, 8)


def test_default_size_is_the_files_eval_size(tmp_path, model_file):
    model, _ = load_model_file(model_file)
    path = tmp_path / "sized.safetensors"
    save_model(model, path, info={"eval_size": [32, 64]})
    report = export_onnx(path, repeats=0)
    assert report.path == tmp_path / "sized.onnx" and report.sizes == [(32, 64)] and report.setting is None


def test_parity_failure_keeps_the_file_and_exits_1(model_file, tmp_path, monkeypatch, capsys):
    from rich.console import Console

    import distill.export.onnx as onnx_module
    from distill.commands import export_and_report

    real = onnx_module.export_onnx
    monkeypatch.setattr(onnx_module, "export_onnx", lambda *a, **k: real(*a, **k, tolerance=-1.0, repeats=1, warmup=0))
    out = tmp_path / "bad.onnx"
    code = export_and_report(model_file, "onnx", 17, False, SIZE, out, Console(width=200))
    assert code == 1 and out.is_file()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "parity" in err and "kept" in err


def test_usage_errors_are_one_line(model_file, tmp_path, monkeypatch):
    with pytest.raises(DistillError, match="--opset"):
        export_onnx(model_file, tmp_path / "x.onnx", opset=9)
    with pytest.raises(DistillError, match="--out"):
        export_onnx(model_file, model_file)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(DistillError, match=r"onnxruntime: .*pip install -e '\.\[export\]'"):
        export_onnx(model_file, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export_writes_the_file_and_prints_the_table(model_file, tmp_path):
    result = distill("export", str(model_file), "--format", "onnx", "--size", "64", "96", "--out", "m.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.onnx").is_file()
    for text in ("m.onnx", "opset", "max |diff|", "torch ms", "onnxruntime ms", "ratio", "64x96", "17",
                 "batch 1, 64x96, cpu, 1 torch thread(s)"):
        assert text in result.stdout, text
    assert result.stderr == ""


def test_cli_refuses_another_format_in_one_line(model_file, tmp_path):
    result = distill("export", str(model_file), "--format", "tflite", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "distill: command line: --format: expected onnx or fp16, got 'tflite'"
    assert not list(tmp_path.iterdir())


def test_cli_missing_model_file_is_one_line(tmp_path):
    result = distill("export", "nowhere.safetensors", "--format", "onnx", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere.safetensors" in lines[0] and "missing" in lines[0]
    assert not list(tmp_path.iterdir())
