"""Pickle-free pruned models: the changed channel counts travel as a JSON layer-shape record.

torch-pruning edits layers in place (fewer output channels here, fewer input channels and a
smaller depthwise group count there), so a pruned model no longer matches the architecture its
card builds. The usual fix, `torch.save(model)`, pickles the classes; a user loading that file
runs whatever code it names. Instead the model file stores, for every layer whose channel
attributes differ from a fresh build of the card, those attributes; loading builds the card's
model, resizes those layers' tensors to the file's shapes and sets the attributes, then loads
the weights as usual.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from distill.errors import DistillError

# The constructor arguments that torch-pruning changes (Conv, BatchNorm, Linear, GroupNorm, LayerNorm).
SHAPE_ATTRS = ("in_channels", "out_channels", "groups", "num_features", "in_features", "out_features",
               "num_channels", "num_groups", "normalized_shape")

LayerShapes = dict[str, dict[str, Any]]


def layer_attrs(module: nn.Module) -> dict[str, Any]:
    attrs = {}
    for name in SHAPE_ATTRS:
        if hasattr(module, name):
            value = getattr(module, name)
            attrs[name] = list(value) if isinstance(value, tuple) else value
    return attrs


def changed_layers(model: nn.Module, reference: nn.Module) -> LayerShapes:
    """{module name: channel attributes} for every layer of `model` that differs from `reference`."""
    ref = dict(reference.named_modules())
    record: LayerShapes = {}
    for name, module in model.named_modules():
        attrs = layer_attrs(module)
        if attrs and name in ref and layer_attrs(ref[name]) != attrs:
            record[name] = attrs
    return record


def apply_layer_shapes(model: nn.Module, record: LayerShapes, state: dict[str, Tensor], path: Any = None) -> None:
    """Reshape `model` in place to the pruned architecture `record` describes.

    Each listed layer gets the recorded attributes, and each of its own parameters and buffers an
    uninitialised tensor of the shape the weights in `state` have (they are loaded afterwards).
    """
    modules = dict(model.named_modules())
    for name, attrs in record.items():
        module = modules.get(name)
        if module is None:
            raise DistillError(path, f"info.layer_shapes.{name}", "a layer of the card's architecture", got="<no such layer>")
        for attr, value in attrs.items():
            if not hasattr(module, attr):
                raise DistillError(path, f"info.layer_shapes.{name}.{attr}", f"an attribute of {type(module).__name__}",
                                   got="<none>")
            setattr(module, attr, tuple(value) if isinstance(value, list) else value)
        for kind in ("_parameters", "_buffers"):
            tensors = getattr(module, kind)
            for tensor_name, tensor in list(tensors.items()):
                key = f"{name}.{tensor_name}" if name else tensor_name
                if tensor is None or key not in state:
                    continue
                fresh = torch.empty(state[key].shape, dtype=tensor.dtype)
                tensors[tensor_name] = nn.Parameter(fresh, requires_grad=tensor.requires_grad) if kind == "_parameters" else fresh
        problem = _inconsistency(module)
        if problem:
            raise DistillError(path, f"info.layer_shapes.{name}", f"channel attributes that match the weights ({problem})",
                               got=attrs)


def _inconsistency(module: nn.Module) -> str | None:
    """What disagrees between a layer's recorded attributes and its tensors' shapes, if anything."""
    weight = getattr(module, "weight", None)
    if isinstance(module, nn.modules.conv._ConvNd) and weight is not None:
        if module.groups < 1 or module.in_channels % module.groups or module.out_channels % module.groups:
            return f"groups {module.groups} dividing in_channels {module.in_channels} and out_channels {module.out_channels}"
        if weight.shape[0] != module.out_channels or weight.shape[1] * module.groups != module.in_channels:
            return f"weight {tuple(weight.shape)} = (out_channels, in_channels / groups, ...)"
    elif isinstance(module, nn.modules.batchnorm._NormBase):
        tensor = weight if weight is not None else module.running_mean
        if tensor is not None and tensor.shape[0] != module.num_features:
            return f"num_features {module.num_features} = {tensor.shape[0]} weights"
    elif isinstance(module, nn.Linear) and tuple(weight.shape) != (module.out_features, module.in_features):
        return f"weight {tuple(weight.shape)} = (out_features, in_features)"
    return None
