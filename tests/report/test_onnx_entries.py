"""An int8 (or fp32) ONNX file in `distill compare` and `distill check`: its sidecar's metrics,
params and GFLOPs, its latency measured side by side with the model files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from distill.errors import DistillError  # noqa: E402
from distill.export.sidecar import read_sidecar  # noqa: E402
from distill.report.compare import build_comparison  # noqa: E402

LOOSE_LATENCY = ["--max-latency-increase", "300%"]  # about the plumbing: timing noise must not decide


@pytest.fixture(scope="module")
def int8(tiny_runs, distill) -> Path:
    """runs/tiny_ce's student quantized through the CLI, at the default 360x480 (the baselines' size)."""
    result = distill("quantize", "runs/tiny_ce/student.safetensors", "--images", "4", cwd=tiny_runs)
    assert result.returncode == 0, result.stderr
    return tiny_runs / "runs/tiny_ce/student.int8.onnx"


def test_compare_puts_int8_beside_fp32_with_its_own_metrics(tiny_runs, int8, distill):
    result = distill("compare", "runs/tiny_ce", "runs/tiny_ce/student.int8.onnx", "--format", "json", "--repeats", "2",
                     cwd=tiny_runs)
    assert result.returncode == 0, result.stderr
    fp32, quantized = json.loads(result.stdout)["models"]
    side = read_sidecar(int8)
    assert quantized["name"] == "tiny_ce int8" and quantized["method"] == "ce (uint8/int8 ONNX)"
    assert quantized["miou"] == pytest.approx(side["metrics"]["miou"])  # its own, not the fp32 file's
    assert quantized["params"] == fp32["params"] and quantized["gflops"] == pytest.approx(fp32["gflops"], rel=1e-4)
    assert quantized["file_bytes"] == int8.stat().st_size < fp32["file_bytes"]
    assert len(quantized["latency_samples_ms"]) == len(fp32["latency_samples_ms"]) == 2  # timed in the same run
    assert quantized["evaluated_on"] == "synthetic val (stored)"


def test_compare_reevaluates_the_onnx_file_on_named_data(tiny_runs, int8):
    from distill.export.runtime import score_onnx_file
    from distill.report.compare import DataChoice

    comp = build_comparison([tiny_runs / "runs/tiny_ce", int8], repeats=0, data=DataChoice("synthetic", None, "val"),
                            sample_count=1)
    assert comp.entries[1].metrics["miou"] == pytest.approx(score_onnx_file(int8, "synthetic", None, "val")["miou"])
    assert len(comp.samples.rows[0].predictions) == 2  # the ONNX file is pictured like the model file


def test_an_onnx_graph_is_measured_at_its_own_size_or_refused(tiny_runs, int8):
    with pytest.raises(DistillError, match=r"student\.int8\.onnx: input_size: expected the measured size 48x64 \(the "
                                           r"graph is fixed to its export size; pass --size 360 480.*got \[360, 480\]$"):
        build_comparison([tiny_runs / "runs/tiny_ce", int8], size=(48, 64), repeats=0)


def test_check_holds_the_int8_file_against_the_fp32_baseline(tiny_runs, int8, distill):
    result = distill("check", "runs/tiny_ce/student.safetensors", "--baseline", "ci/fp32.json", "--stored",
                     "--write-baseline", cwd=tiny_runs)
    assert result.returncode == 0, result.stderr
    result = distill("check", "runs/tiny_ce/student.int8.onnx", "--baseline", "ci/fp32.json", "--stored",
                     "--repeats", "3", "--max-miou-drop", "100", *LOOSE_LATENCY, cwd=tiny_runs)
    assert result.returncode == 0, result.stdout + result.stderr
    miou_row = next(line for line in result.stdout.splitlines() if "mIoU %" in line)
    assert f"{read_sidecar(int8)['metrics']['miou']:.2f}" in miou_row
    latency_row = next(line for line in result.stdout.splitlines() if "latency (ratio" in line)
    assert "x (" in latency_row and "skipped" not in latency_row  # int8 ONNX against the fp32 model, side by side
    # and a gate that the int8 file cannot pass: a zero drop allowed from a baseline raised above it
    record = json.loads((tiny_runs / "ci/fp32.json").read_text())
    record["metrics"]["miou"] = read_sidecar(int8)["metrics"]["miou"] + 1.0
    (tiny_runs / "ci/raised.json").write_text(json.dumps(record))
    result = distill("check", "runs/tiny_ce/student.int8.onnx", "--baseline", "ci/raised.json", "--stored",
                     "--repeats", "2", "--max-miou-drop", "0", *LOOSE_LATENCY, cwd=tiny_runs)
    assert result.returncode == 1 and "regression" in result.stdout
