"""`distill compare`: what is read from which file, baseline choice, re-evaluation, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.commands import choose_format
from distill.errors import DistillError
from distill.report.compare import DataChoice, build_comparison, order_with_baseline


def test_reads_run_folders_and_model_files_alike(tiny_runs):
    runs = tiny_runs / "runs"
    comp = build_comparison([runs / "tiny_ce", runs / "tiny_kd/student.safetensors"], size=(48, 64), repeats=0)
    ce, kd = comp.entries
    assert (ce.name, ce.method, kd.name, kd.method) == ("tiny_ce", "ce", "tiny_kd", "ce+kd")
    stored = json.loads((runs / "tiny_ce/metrics.json").read_text())
    assert ce.metrics["miou"] == stored["miou"] and ce.metrics["per_class_iou"] == stored["per_class_iou"]
    assert ce.params == stored["params"] and ce.file_bytes == (runs / "tiny_ce/student.safetensors").stat().st_size
    kd_stored = json.loads((runs / "tiny_kd/metrics.json").read_text())
    assert kd.metrics["miou"] == kd_stored["miou"]  # from the model file's own metadata
    assert "per_class_iou" not in kd.metrics  # which a model file does not carry
    assert ce.gflops == kd.gflops > 0 and ce.latency is None and comp.setting is None
    assert comp.classes[:2] == ["sky", "ground"] and comp.notes == []


def test_re_evaluation_reproduces_the_stored_metrics(tiny_runs):
    run = tiny_runs / "runs/tiny_ce"
    comp = build_comparison([run], size=(48, 64), repeats=0, data=DataChoice("synthetic", None, "val"), sample_count=1)
    stored = json.loads((run / "metrics.json").read_text())
    for key in ("miou", "boundary_iou", "trimap_iou", "per_class_iou"):
        assert comp.entries[0].metrics[key] == stored[key], key
    assert comp.evaluated == "re-evaluated on synthetic val" and len(comp.samples.rows) == 1


def test_baseline_is_picked_among_the_arguments_or_put_first(tiny_runs):
    ce, kd = tiny_runs / "runs/tiny_ce", tiny_runs / "runs/tiny_kd"
    assert order_with_baseline([ce, kd], None) == ([ce, kd], 0)
    assert order_with_baseline([ce, kd], kd / "student.safetensors") == ([ce, kd], 1)  # same model, other spelling
    assert order_with_baseline([kd], ce) == ([ce, kd], 0)


def test_same_names_are_told_apart(tiny_runs):
    run = tiny_runs / "runs/tiny_ce"
    comp = build_comparison([run, run / "student.safetensors"], size=(32, 32), repeats=0)
    assert [e.name for e in comp.entries] == ["tiny_ce", "tiny_ce#2"]


def test_wrong_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(DistillError, match="expected a finished run folder"):
        build_comparison([tmp_path], repeats=0)
    (tmp_path / "model.pth").write_bytes(b"")
    with pytest.raises(DistillError, match=r"model\.pth: expected a run folder, a \.safetensors model file or an \.onnx file from distill "
                                           r"export / quantize, got '\.pth'"):
        build_comparison([tmp_path / "model.pth"], repeats=0)
    with pytest.raises(DistillError, match="gone.pt: expected a run folder, a .safetensors model file or an .onnx file from distill export / quantize, got <missing>"):
        build_comparison([tmp_path / "gone.pt"], repeats=0)
    with pytest.raises(DistillError, match="--repeats"):
        build_comparison([tmp_path], repeats=-1)


def test_format_follows_the_flag_then_the_suffix():
    assert choose_format(None, None) == "table"
    assert choose_format(None, Path("r.HTML")) == "html" and choose_format("md", Path("r.txt")) == "md"
    with pytest.raises(DistillError, match="a .md, .json or .html file"):
        choose_format(None, Path("report.txt"))
    with pytest.raises(DistillError, match="table prints to the terminal"):
        choose_format("table", Path("r.md"))


def test_cli_prints_json_with_latency_measured_alike(tiny_runs, distill):
    result = distill("compare", "runs/tiny_ce", "runs/tiny_kd", "--baseline", "runs/tiny_kd", "--format", "json",
                     "--size", "48", "64", "--repeats", "3", cwd=tiny_runs)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds only the report: it can be piped
    assert report["baseline"] == "tiny_kd" and report["input_size"] == [48, 64]
    assert report["latency"]["threads"] == 1 and report["latency"]["device"] == "cpu"
    ce, kd = report["models"]
    assert kd["delta_miou"] == 0.0 and ce["delta_miou"] == pytest.approx(ce["miou"] - kd["miou"])
    assert len(ce["latency_samples_ms"]) == len(kd["latency_samples_ms"]) == 3
    assert ce["method"] == "ce" and kd["method"] == "ce+kd"


def test_cli_usage_error_is_one_line(tiny_runs, distill):
    result = distill("compare", "runs/tiny_ce", "--format", "table", "--out", "x.md", cwd=tiny_runs)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "distill: command line: --format: expected md, json or html with --out (table prints to the terminal), got 'table'"]
