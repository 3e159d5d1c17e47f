"""Per-layer quantization sensitivity of an int8 QDQ graph against the fp32 graph it was made from.

Built on onnxruntime's own debugging tools (onnxruntime.quantization.qdq_loss_debug): both graphs
are run on the calibration images with every intermediate tensor as an output, and each activation
tensor with a Q/DQ pair gets two signal-to-quantization-noise ratios (20 log10 |x| / |x - y|, dB):

- local (qdq_err): the tensor in the int8 graph just before vs just after its own Q/DQ pair, i.e.
  the rounding noise this one tensor adds, given the (already perturbed) inputs it was computed from;
- model (xmodel_err): the fp32 graph's tensor vs the int8 graph's dequantized one, i.e. the error
  accumulated from the input up to here.

Auto-selection of the nodes to keep in fp32 ranks by the local one: the accumulated one carries the
noise of every layer before, so it grows with depth whichever layer is to blame and would pick the
last layers for their predecessors' rounding. A third ratio compares each node's weight
initializer, float vs dequantized.

The quantizer folds a Relu or Clip that follows a quantized node into that node's Q/DQ pair
(QDQRemovableActivation): the Conv then writes the Relu's output tensor, before the Relu. The tensor
is reported under the node that writes it in the int8 graph (the Conv, which nodes_to_exclude can
keep in float), and the folded activation is applied to its pre-Q/DQ values before comparing;
otherwise the local ratio would count the Relu's own zeroing of negatives as noise (2-6 dB on the
tests' tinyconv, against 43-45 dB for the rounding alone).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from distill.export.quantize import quiet_quantizer

FOLDED = ("Relu", "Clip")  # activations the QDQ quantizer removes into the Q/DQ pair of their input


@dataclass(frozen=True)
class NodeError:
    node: str  # name of the fp32 graph's node that writes the tensor (in the int8 graph too)
    op_type: str
    tensor: str
    local_sqnr_db: float  # qdq_err: the tensor before vs after its own Q/DQ pair in the int8 graph
    model_sqnr_db: float | None  # xmodel_err: the fp32 graph's tensor vs the int8 graph's dequantized one
    weight_sqnr_db: float | None  # the node's weight initializer, float vs dequantized (None: not quantized)


def layer_sensitivity(fp32_path: Path, int8_path: Path, reader: Any) -> list[NodeError]:
    """One NodeError per activation tensor with a Q/DQ pair that a named node of the fp32 graph writes,
    most sensitive (lowest local SQNR) first. `reader` gives {"images": array} per get_next() until None."""
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as debug

    fp32, int8 = onnx.load(str(fp32_path)).graph, onnx.load(str(int8_path)).graph
    with quiet_quantizer(), tempfile.TemporaryDirectory(prefix="distill-sensitivity-") as work:
        float_acts = activations(Path(fp32_path), Path(work) / "fp32.onnx", reader)
        qdq_acts = activations(Path(int8_path), Path(work) / "int8.onnx", reader)
        matching = debug.create_activation_matching(qdq_acts, float_acts)
        weights = debug.compute_weight_error(debug.create_weight_matching(str(fp32_path), str(int8_path)))
    owners = writers(fp32, int8, matching)
    for tensor, node in owners.items():
        matching[tensor].setdefault("float", [])  # compute_activation_error reads it; [] gives no xmodel_err
        unfold(fp32, node, tensor, matching[tensor])
    errors = debug.compute_activation_error({tensor: matching[tensor] for tensor in owners})
    found = [NodeError(node.name, node.op_type, tensor, errors[tensor]["qdq_err"], errors[tensor].get("xmodel_err"),
                       next((weights[name] for name in node.input if name in weights), None))
             for tensor, node in owners.items()]
    return sorted(found, key=lambda error: error.local_sqnr_db)


def activations(model: Path, augmented: Path, reader: Any) -> dict[str, list[np.ndarray]]:
    """Every float tensor of the graph on each of the reader's inputs (the reader rewound before and after)."""
    from onnxruntime.quantization import qdq_loss_debug as debug

    debug.modify_model_output_intermediate_tensors(str(model), str(augmented))
    reader.rewind()
    # collect_activations iterates its reader: CalibrationImages has get_next only (the protocol)
    collected = debug.collect_activations(str(augmented), iter(reader.get_next, None))
    reader.rewind()
    return collected


def writers(fp32: Any, int8: Any, matching: dict[str, Any]) -> dict[str, Any]:
    """Matched tensor -> the fp32 graph's node that writes it in the int8 graph (before its Q/DQ pair:
    a graph output's DequantizeLinear writes the output name, its producer `name_QuantizeLinear_Input`).
    Tensors without a named writer in the fp32 graph, such as the graph input, are left out."""
    from onnxruntime.quantization.quant_utils import QUANT_INPUT_SUFFIX

    by_name = {node.name: node for node in fp32.node if node.name}
    written = {output: node for node in int8.node for output in node.output}
    owners = {}
    for tensor in matching:
        node = written.get(tensor)
        if node is not None and node.op_type == "DequantizeLinear":
            node = written.get(tensor + QUANT_INPUT_SUFFIX)
        if node is not None and node.name in by_name:
            owners[tensor] = by_name[node.name]
    return owners


def unfold(fp32: Any, writer: Any, tensor: str, match: dict[str, Any]) -> None:
    """Where the fp32 graph computes `tensor` with a Relu or Clip that the quantizer folded into the
    Q/DQ pair (the tensor's writer in the int8 graph is the node before it), apply it to pre_qdq."""
    producer = next((node for node in fp32.node if tensor in node.output), None)
    if producer is None or producer.name == writer.name or producer.op_type not in FOLDED:
        return
    low, high = (0.0, None) if producer.op_type == "Relu" else clip_bounds(fp32, producer)
    if low is None and high is None:
        return
    match["pre_qdq"] = [np.clip(x, low, high) for x in match["pre_qdq"]]


def clip_bounds(graph: Any, node: Any) -> tuple[float | None, float | None]:
    """A Clip's min and max: inputs 1 and 2 (initializers) since opset 11, attributes before."""
    from onnx import numpy_helper

    bounds = set(node.input[1:])
    constants = {init.name: float(numpy_helper.to_array(init)) for init in graph.initializer if init.name in bounds}
    attributes = {attr.name: attr.f for attr in node.attribute}
    inputs = list(node.input[1:]) + ["", ""]
    return (constants.get(inputs[0], attributes.get("min")), constants.get(inputs[1], attributes.get("max")))


def most_sensitive(errors: list[NodeError], count: int, op_types: Sequence[str] = ("Conv",)) -> list[str]:
    """The names of the `count` nodes of these op types whose outputs lose most to rounding (lowest
    local SQNR): the ones to keep in fp32."""
    ranked = sorted((error for error in errors if error.op_type in op_types), key=lambda error: error.local_sqnr_db)
    return [error.node for error in ranked[:count]]


def sensitivity_table(errors: list[NodeError], limit: int = 10) -> Table:
    table = Table(title="int8 sensitivity per node, most sensitive (lowest local SQNR) first", header_style="bold",
                  caption="local: the node's output before vs after its own Q/DQ pair (the rounding it adds); "
                          "model: fp32 graph vs int8 graph at that tensor (accumulated); weight: float vs dequantized",
                  caption_justify="left")
    for label in ("node", "op", "local SQNR dB", "model SQNR dB", "weight SQNR dB"):
        table.add_column(label, justify="left" if label in ("node", "op") else "right",
                         overflow="fold" if label == "node" else "ellipsis")
    for error in sorted(errors, key=lambda error: error.local_sqnr_db)[:limit]:
        table.add_row(error.node, error.op_type, decibels(error.local_sqnr_db), decibels(error.model_sqnr_db),
                      decibels(error.weight_sqnr_db))
    return table


def decibels(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
