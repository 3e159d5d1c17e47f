"""distill.export.sensitivity: per-node SQNRs of an int8 QDQ graph against its fp32 source, on a
tinyconv model trained 30 steps (as in test_quantize), quantized at 48x64 on 8 synthetic images."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import trained_tiny_model

from distill.io import read_model_file

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio  # noqa: E402

from distill.export.calibration import CalibrationImages, load_split, spread  # noqa: E402
from distill.export.quantize import QuantizeOptions, export_fp32, prepare_graph, run_quantizer  # noqa: E402
from distill.export.sensitivity import NodeError, layer_sensitivity, most_sensitive, sensitivity_table  # noqa: E402

SIZE = (48, 64)
DATA = {"num_images": 16, "size": list(SIZE)}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sensitivity")


@pytest.fixture(scope="module")
def model_file(work) -> Path:
    return trained_tiny_model(work / "tiny.safetensors", SIZE, DATA["num_images"])


@pytest.fixture(scope="module")
def reader(model_file) -> CalibrationImages:
    meta, _ = read_model_file(model_file)
    train = load_split(meta, "synthetic", None, "train")
    return CalibrationImages(train, spread(len(train), 8), SIZE)


@pytest.fixture(scope="module")
def prepared(model_file, work) -> Path:
    fp32_path, _ = export_fp32(model_file, work, SIZE)
    out = work / "prepared.onnx"
    prepare_graph(fp32_path, out)
    return out


def quantized(prepared: Path, reader: CalibrationImages, out: Path, exclude: list[str]) -> Path:
    reader.rewind()
    run_quantizer(prepared, out, reader, QuantizeOptions(), exclude)
    reader.rewind()
    return out


@pytest.fixture(scope="module")
def int8(prepared, reader, work) -> Path:
    return quantized(prepared, reader, work / "tiny.int8.onnx", [])


@pytest.fixture(scope="module")
def errors(prepared, int8, reader) -> list[NodeError]:
    return layer_sensitivity(prepared, int8, reader)


def test_every_conv_is_ranked_with_8_bit_sqnrs(errors, prepared):
    graph = onnx.load(str(prepared)).graph
    nodes = {node.name: node.op_type for node in graph.node}
    assert all(nodes.get(e.node) == e.op_type for e in errors)  # names and op types of the fp32 graph
    local = [e.local_sqnr_db for e in errors]
    assert local == sorted(local)
    # Each Conv's Relu is folded into its Q/DQ pair, so the Conv writes the Relu's tensor in the int8
    # graph: the tensor is listed under the Conv (which nodes_to_exclude can keep), not the Relu.
    convs = {name for name, op in nodes.items() if op == "Conv"}
    assert {e.node for e in errors if e.op_type == "Conv"} == convs and "Relu" not in {e.op_type for e in errors}
    # uint8 activations, 7-bit weights: 43-45 dB local, 35-38 dB accumulated, 38-42 dB weights here
    for e in errors:
        assert 20 < e.local_sqnr_db < 80 and 20 < e.model_sqnr_db < 80, e
        assert (e.weight_sqnr_db is not None) == (e.op_type == "Conv"), e
        assert e.weight_sqnr_db is None or 20 < e.weight_sqnr_db < 80, e
    # the first Q/DQ pair (on the normalised input) sees the same input in both graphs: no error before it
    first = next(e for e in errors if e.op_type == "Div")
    assert first.local_sqnr_db == pytest.approx(first.model_sqnr_db, abs=1e-6)
    assert len({e.tensor for e in errors}) == len(errors)  # one entry per tensor


def test_local_sqnr_of_a_folded_relu_recomputed_by_hand(errors, int8, reader, tmp_path):
    """The first Conv's tensor before and after its Q/DQ pair, read from the int8 graph directly."""
    first = next(e for e in errors if e.node == "/model/stages.0/stages.0.0/Conv")
    graph = onnx.load(str(int8))
    q_out = next(n.output[0] for n in graph.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == first.tensor)
    post = next(n.output[0] for n in graph.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == q_out)
    for name in (first.tensor, post):
        graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    onnx.save(graph, str(tmp_path / "exposed.onnx"))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the Q/DQ nodes apart
    session = ort.InferenceSession(str(tmp_path / "exposed.onnx"), options, providers=["CPUExecutionProvider"])
    reader.rewind()
    pairs = [session.run([first.tensor, post], x) for x in iter(reader.get_next, None)]
    reader.rewind()
    before = np.concatenate([p[0].ravel() for p in pairs]).astype(np.float64)
    after = np.concatenate([p[1].ravel() for p in pairs]).astype(np.float64)
    relu = np.maximum(before, 0)
    assert first.local_sqnr_db == pytest.approx(20 * math.log10(np.linalg.norm(relu) / np.linalg.norm(relu - after)),
                                                abs=1e-3)
    # before the Relu the Conv output has negatives, which the Q/DQ pair zeroes: compared raw (as
    # qdq_loss_debug itself does) that zeroing would count as noise
    assert (before < 0).any() and 20 * math.log10(np.linalg.norm(before) / np.linalg.norm(before - after)) < 10


def test_sqnr_by_hand_and_most_sensitive_filters_by_op_type():
    # |x| = 5, |x - y| = 0.5: 20 log10(10) = 20 dB
    assert compute_signal_to_quantization_noice_ratio(np.array([3.0, 4.0]), np.array([3.0, 4.5])) == pytest.approx(20.0)
    made = [NodeError("a", "Conv", "ta", 30.0, 25.0, 40.0), NodeError("b", "Conv", "tb", 20.0, 22.0, None),
            NodeError("add", "Add", "tadd", 5.0, 5.0, None), NodeError("c", "Conv", "tc", 25.0, None, 35.0)]
    assert most_sensitive(made, 2) == ["b", "c"]  # the Add is lowest but not a Conv
    assert most_sensitive(made, 2, op_types=("Conv", "Add")) == ["add", "b"]
    assert most_sensitive(made, 10) == ["b", "c", "a"] and most_sensitive(made, 0) == []


def test_table_lists_the_most_sensitive_first():
    from rich.console import Console

    made = [NodeError("n_robust", "Conv", "t1", 40.123, 30.0, 38.5),
            NodeError("n_fragile", "Conv", "t2", 21.5, None, None)]
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(sensitivity_table(made, limit=1))
    text = console.export_text()
    assert "most sensitive" in text and "n_fragile" in text and "21.50" in text and "n_robust" not in text
    row = next(line for line in text.splitlines() if "n_fragile" in line)
    assert row.count("-") == 2  # model and weight SQNR unknown
    console.print(sensitivity_table(made))
    assert "40.12" in console.export_text()


def test_excluded_conv_is_no_longer_ranked(errors, prepared, reader, work):
    worst = most_sensitive(errors, 1)[0]
    kept = quantized(prepared, reader, work / "kept.int8.onnx", [worst])
    after = layer_sensitivity(prepared, kept, reader)
    assert worst not in {e.node for e in after}
    assert {e.node for e in after if e.op_type == "Conv"} == {e.node for e in errors if e.op_type == "Conv"} - {worst}
    # its weight stays in float: no int8 copy of it in the file
    fp32_node = next(n for n in onnx.load(str(prepared)).graph.node if n.name == worst)
    initializers = {t.name for t in onnx.load(str(kept)).graph.initializer}
    assert fp32_node.input[1] in initializers and fp32_node.input[1] + "_quantized" not in initializers
    # The tensor it wrote keeps a Q/DQ pair where the next Conv quantizes its input (not after the
    # classifier, whose output is the graph's), now written by the Relu the quantizer no longer folds
    was = next(e for e in errors if e.node == worst)
    now = [e for e in after if e.tensor == was.tensor]
    assert all(e.op_type == "Relu" and e.weight_sqnr_db is None for e in now)
    assert bool(now) == (was.tensor != "logits")
