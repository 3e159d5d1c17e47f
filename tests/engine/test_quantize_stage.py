"""The quantize stage: PTQ and QAT+KD of a trained tinyconv student through `distill run`, its files,
its record, resume, and the recipe errors of its stage list. Fake quantization itself: the rounding
grid is onnxruntime's, gradients flow, and detaching gives back a plain float model."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from helpers import recipe, run_distill, student_card, teacher_card
from torch import nn

pytest.importorskip("onnxruntime")

from distill.export.qat import attach_fake_quant, detach_fake_quant  # noqa: E402
from distill.export.sidecar import read_sidecar  # noqa: E402
from distill.models import load_model_file  # noqa: E402

QUANTIZE = ("quantize: {calibration_images: 4, size: [48, 64], latency_repeats: 2, auto_keep_fp32: 1,\n"
            "           qat: {iterations: 6, lr: 0.001, teacher: student}}\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("quantize")
    (project / "teacher.yaml").write_text(teacher_card(num_images=4))
    (project / "student.yaml").write_text(student_card())
    (project / "q.yaml").write_text(recipe("q", "{iterations: 20, lr: 0.05, log_every: 5}", teacher=True, num_images=4)
                                    + QUANTIZE)
    result = run_distill("run", "q.yaml", cwd=project)
    assert result.returncode == 0, result.stderr
    return project / "runs/q"


def test_ptq_and_qat_files_and_record(run):
    names = {p.name for p in run.iterdir()}
    assert {"student.safetensors", "student.int8.onnx", "student.int8.onnx.json", "student.qat.safetensors",
            "student.qat.int8.onnx", "student.qat.int8.onnx.json", "quantize.json", "qat"} <= names
    record = json.loads((run / "quantize.json").read_text())
    for part in ("ptq", "qat"):
        side = read_sidecar(run.parent.parent / record[part]["path"])  # relative to the project folder
        assert record[part]["metrics"]["miou"] == pytest.approx(side["metrics"]["miou"])  # the int8 file's own
        assert 0.0 <= record[part]["agreement_val"] <= 1.0 and record[part]["ratio"] > 0
    assert record["metrics"] == record["qat"]["metrics"] and record["source"].endswith("student.safetensors")
    # auto_keep_fp32: 1 kept the Conv with the noisiest output in float, in PTQ and in QAT's int8 file alike
    ranked = record["ptq"]["sensitivity"]
    worst_conv = next(r["node"] for r in ranked if r["op_type"] == "Conv")
    assert record["ptq"]["excluded"] == record["qat"]["excluded"] == [worst_conv]
    assert [r["local_sqnr_db"] for r in ranked] == sorted(r["local_sqnr_db"] for r in ranked)
    assert (run / "qat/checkpoints").is_dir()  # QAT trained in its own folder, resumable


def test_qat_weights_are_trained_and_plain(run):
    source, _ = load_model_file(run / "student.safetensors")
    trained, meta = load_model_file(run / "student.qat.safetensors")  # loads as a plain model: no fake-quant state
    assert meta.info["qat"]["iterations"] == 6 and meta.info["qat"]["teacher"] == "student"
    assert set(source.state_dict()) == set(trained.state_dict())
    moved = max((a - b).abs().max().item() for a, b in zip(source.state_dict().values(), trained.state_dict().values())
                if a.is_floating_point())
    assert moved > 0  # six steps at lr 1e-3 moved the weights


def test_resume_of_a_finished_run_and_of_an_interrupted_quantize_stage(run):
    project = run.parent.parent
    result = run_distill("run", "q.yaml", "--resume", cwd=project)
    assert result.returncode == 0 and "already finished" in result.stdout + result.stderr, result.stderr
    (run / "quantize.json").unlink()  # as if stopped after QAT: QAT is not trained again
    result = run_distill("run", "q.yaml", "--resume", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "QAT already done" in result.stdout + result.stderr and (run / "quantize.json").is_file()


@pytest.mark.parametrize("stages, extra, message", [
    ("[{name: distill}, {name: quantize}]", "", "a quantize: block for the quantize stage"),
    ("[{name: quantize}]", QUANTIZE, "a list that ends with its one distill stage, optionally followed by quantize"),
    ("[{name: quantize}, {name: distill}]", QUANTIZE, "a list that ends with its one distill stage, optionally followed"),
])
def test_stage_list_errors_are_one_line(tmp_path, stages, extra, message):
    (tmp_path / "student.yaml").write_text(student_card())
    (tmp_path / "r.yaml").write_text(recipe("r", "{iterations: 2}") + extra + f"stages: {stages}\n")
    result = run_distill("run", "r.yaml", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_kept_onnx_conv_nodes_are_matched_to_the_students_conv_modules(run):
    import onnx

    from distill.export.qat import conv_modules_of_nodes

    record = json.loads((run / "quantize.json").read_text())
    student, _ = load_model_file(run / "student.safetensors")
    int8 = run.parent.parent / record["ptq"]["path"]
    modules = dict(student.named_modules())
    (kept,) = conv_modules_of_nodes(student, int8, record["ptq"]["excluded"])
    assert isinstance(modules[kept], nn.Conv2d)  # so QAT leaves that very conv in float
    # every Conv of the fp32 export (all float there) finds its own module, and none twice
    fp32 = run / "fp32_for_test.onnx"
    from distill.export import export_onnx

    export_onnx(run / "student.safetensors", fp32, size=(48, 64), repeats=0)
    nodes = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "Conv"]
    names = conv_modules_of_nodes(student, fp32, nodes)
    assert len(set(names)) == len(nodes) == sum(isinstance(m, nn.Conv2d) for m in modules.values())
    assert all(node.split("/")[-2] == name.split(".")[-1] or node.split("/")[-2].endswith(name.split(".")[-1])
               for node, name in zip(nodes, names))  # and agrees with the scope names where they can be read


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))


@pytest.mark.parametrize("reduce_range, limit", [(True, 64), (False, 127)])
def test_weights_round_to_onnxruntimes_symmetric_per_channel_grid(reduce_range, limit):
    net = conv_net()
    float_weight = net[0].weight.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attach_fake_quant(net, reduce_range=reduce_range)
        rounded = net[0].weight.detach()
    scale = float_weight.abs().amax(dim=(1, 2, 3), keepdim=True) / limit  # onnxruntime's symmetric int8 scale
    assert torch.equal(rounded, (float_weight / scale).round().clamp(-limit, limit) * scale)
    assert len((rounded[0] / scale[0]).round().unique()) > 2  # not a trivial grid


def test_inputs_are_rounded_gradients_flow_and_detach_restores_a_float_model():
    net = conv_net()
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = attach_fake_quant(net)
        net(x).sum().backward()
    assert net[0].parametrizations.weight.original.grad.abs().sum() > 0  # straight-through
    seen = net[2].input_fake_quant  # uint8 affine on the second conv's (post-ReLU) input
    assert seen.dtype == torch.quint8 and seen.scale.item() == pytest.approx(net[1](net[0](x)).max().item() / 255, rel=0.05)
    detach_fake_quant(state)
    assert set(net.state_dict()) == set(weights)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())  # unrounded weights back
    assert not net[0]._forward_pre_hooks
