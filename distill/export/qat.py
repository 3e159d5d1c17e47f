"""Fake quantization of a student as onnxruntime's int8 graph will compute it, for QAT.

`attach_fake_quant` makes every Conv2d see what the int8 graph that `distill quantize` writes will
feed it: its weight rounded per output channel, symmetric, to the same grid onnxruntime uses
(scale = max|w| / 64 with reduce_range's 7 bits, / 127 without), and its input rounded per tensor
to uint8 (or int8) with an affine range tracked by a moving-average min/max observer, as
calibration tracks it. Both are torch.ao.quantization FakeQuantize modules: rounding in the
forward pass, straight-through gradients in the backward pass, so training learns weights that
survive the rounding. Per-channel weight rounding on the unfolded convolution is the same grid as
on the BatchNorm-folded one that onnxruntime quantizes (folding scales each output channel by one
factor, and so its scale), which is why BatchNorm can stay as it is during QAT.

What is not mimicked (our choice; the int8 graph is re-calibrated after QAT in any case): the
Q/DQ pairs onnxruntime also puts on Add, Concat, Resize and the graph output. The conv inputs
carry most of the rounding: every activation that reaches a convolution passes one.
After training, `detach_fake_quant` leaves a plain float model with the trained weights: it is
saved as a model file and quantized by onnxruntime as PTQ would be, with ranges calibrated anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver
from torch.nn.utils import parametrize


class WeightFakeQuant(nn.Module):
    """A conv weight rounded per output channel, symmetric, to onnxruntime's int8 grid."""

    def __init__(self, reduce_range: bool) -> None:
        super().__init__()
        limit = 64 if reduce_range else 127  # onnxruntime: (-64, 64) reduced, (-127, 127) symmetric int8
        # averaging_constant 1: the range of the weights as they are now, as onnxruntime will read them
        self.fake_quant = FakeQuantize(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-limit,
                                       quant_max=limit, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                       ch_axis=0, averaging_constant=1.0)

    def forward(self, weight: Tensor) -> Tensor:
        return self.fake_quant(weight)


def activation_fake_quant(activations: str) -> FakeQuantize:
    """A per-tensor affine 8-bit rounding of a conv input with a moving-average observed range."""
    low, high, dtype = (0, 255, torch.quint8) if activations == "uint8" else (-128, 127, torch.qint8)
    return FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=low, quant_max=high, dtype=dtype,
                        qscheme=torch.per_tensor_affine)


@dataclass
class FakeQuantized:
    """What attach_fake_quant changed, so that detach_fake_quant can undo exactly that."""

    convs: list[nn.Conv2d] = field(default_factory=list)
    hooks: list[Any] = field(default_factory=list)


def _round_input(module: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return (module.input_fake_quant(inputs[0]), *inputs[1:])


def attach_fake_quant(model: nn.Module, activations: str = "uint8", reduce_range: bool = True,
                      skip: frozenset[str] = frozenset()) -> FakeQuantized:
    """Fake-quantize every Conv2d of `model` in place (weights and inputs); `skip` names modules
    left in float (those kept in fp32 in the int8 graph)."""
    state = FakeQuantized()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d) or name in skip:
            continue
        parametrize.register_parametrization(module, "weight", WeightFakeQuant(reduce_range))
        module.input_fake_quant = activation_fake_quant(activations).to(module.weight.device)
        state.hooks.append(module.register_forward_pre_hook(_round_input))
        state.convs.append(module)
    return state


def detach_fake_quant(state: FakeQuantized) -> None:
    """Back to plain float convolutions holding the trained (unrounded) weights."""
    for hook in state.hooks:
        hook.remove()
    for module in state.convs:
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        del module.input_fake_quant
    state.hooks.clear()
    state.convs.clear()


def conv_modules_of_nodes(model: nn.Module, onnx_path: Any, nodes: list[str]) -> list[str]:
    """The Conv2d modules of `model` that the Conv nodes `nodes`, kept in float in the ONNX file, compute.

    A node's name follows the scopes the exporter saw, which do not spell module paths reliably,
    and the graph's node order is not the model's call order; the weights decide instead. A kept
    node's weight is the module's with BatchNorm folded in, which scales each output channel by one
    factor, so its rows point where the module's rows point: the module of the same shape whose rows
    have |cosine| near 1 with the node's is the one (or the match is refused)."""
    import onnx
    from onnx import numpy_helper

    from distill.errors import DistillError

    graph = onnx.load(str(onnx_path)).graph
    weights = {t.name: t for t in graph.initializer}
    by_name = {node.name: node for node in graph.node if node.op_type == "Conv"}
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    found = []
    for name in nodes:
        node = by_name.get(name)
        if node is None or node.input[1] not in weights:
            raise DistillError(onnx_path, name, "a Conv node with a float weight (one kept in fp32)", got="<not found>")
        rows = torch.from_numpy(numpy_helper.to_array(weights[node.input[1]]).copy()).float().flatten(1)
        scores = {n: row_alignment(rows, m.weight.detach().float().flatten(1)) for n, m in convs
                  if tuple(m.weight.shape) == tuple(weights[node.input[1]].dims)}
        best = max(scores, key=scores.get, default=None)
        if best is None or scores[best] < 0.999:
            raise DistillError(onnx_path, name, "the weight of one of the model's Conv2d modules (up to BatchNorm's "
                               "per-channel scale)", got=f"<best |cos| {scores.get(best, 0.0):.3f}>")
        found.append(best)
    return found


def row_alignment(a: Tensor, b: Tensor) -> float:
    """Mean over output channels of |cos| between matching rows (1: the same directions)."""
    return torch.nn.functional.cosine_similarity(a, b, dim=1).abs().mean().item()
