"""Channel pruning of a SegmentationModel with torch-pruning's dependency graph.

torch-pruning traces the model once and groups every layer whose channels must go together (a
conv, its BatchNorm, the depthwise conv after it, the next layer's input channels, both sides of
a residual add), so removing channel k of a group keeps the network consistent. We choose the
importance criterion, which layers stay whole (every classifier: its outputs are the classes),
and when to stop; torch-pruning does the surgery.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch_pruning as tp
from torch import Tensor, nn

from distill.errors import DistillError
from distill.models.base import Segmenter as SegmentationModel
from distill.measure.flops import count_gflops, count_params
from distill.measure.latency import measure_latency, paired_ratio
from distill.specs import PruneSpec


def make_importance(name: str) -> tp.importance.Importance:
    """magnitude: L1 norm of each output filter of the group's first layer (Li et al., ICLR 2017);
    group_norm: L2 norm over every layer of the group (DepGraph, Fang et al., CVPR 2023);
    taylor: |weight x gradient| summed over the group (first-order Taylor, Molchanov et al. 2019),
    which needs gradients: `prune_step` is given batches to compute them."""
    if name == "magnitude":
        return tp.importance.MagnitudeImportance(p=1, group_reduction="first")
    if name == "group_norm":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.TaylorImportance()
    raise DistillError(None, "prune.importance", "magnitude, taylor or group_norm", got=name)


def ignored_layers(model: SegmentationModel, names: Iterable[str], file: Any = None) -> list[nn.Module]:
    """Every classifier (the model family says which layers output the classes), plus the modules the recipe names."""
    modules = dict(model.named_modules())
    kept = list(model.classifier_layers())
    for name in names:
        if name not in modules:
            raise DistillError(file, "prune.ignore", "module names of the student (e.g. head.cbr)", got=name)
        kept.append(modules[name])
    return kept


@dataclass
class PruneStep:
    ratio: float  # the channel ratio torch-pruning has removed so far
    params: int
    gflops: float
    latency_ratio: float | None = None  # batch-1, pruned / unpruned, measured side by side

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": round(self.ratio, 4), "params": self.params, "gflops": round(self.gflops, 4),
                "latency_ratio": None if self.latency_ratio is None else round(self.latency_ratio, 4)}


@dataclass
class PruneReport:
    size: tuple[int, int]
    before: PruneStep
    steps: list[PruneStep] = field(default_factory=list)
    target_met: bool | None = None  # None: no target

    @property
    def after(self) -> PruneStep:
        return self.steps[-1] if self.steps else self.before

    def as_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "before": self.before.as_dict(), "after": self.after.as_dict(),
                "steps": [s.as_dict() for s in self.steps], "target_met": self.target_met}


def _trace_input(model: SegmentationModel, size: tuple[int, int]) -> Tensor:
    device = next(model.parameters()).device
    return torch.rand(2, model.in_channels, *size, generator=torch.Generator().manual_seed(0)).to(device)


def _train_mode_forward(model: nn.Module, images: Tensor) -> Any:
    """torch-pruning puts the model in eval mode before tracing; the aux head runs only in training."""
    model.train()
    return model(images)


def _all_outputs(out: Any) -> list[Tensor]:
    """Trace every output head: the aux head runs only in training mode and is pruned with the rest."""
    return [out.logits, *out.features.values()]


def build_pruner(model: SegmentationModel, spec: PruneSpec, size: tuple[int, int], file: Any = None) -> tp.pruner.MetaPruner:
    """A pruner whose `step()` k of `spec.step_count` brings the removed ratio to spec.ratio * k / steps."""
    buffers = {k: v.clone() for k, v in model.state_dict().items()}  # tracing in train mode moves BN statistics
    was_training = model.training
    model.train()  # so the aux head (training only) is part of the graph
    try:
        with torch.enable_grad():  # the dependency graph is traced through autograd
            pruner = tp.pruner.MetaPruner(
                model, _trace_input(model, size), importance=make_importance(spec.importance),
                global_pruning=spec.global_pruning, pruning_ratio=spec.ratio, iterative_steps=spec.step_count,
                ignored_layers=ignored_layers(model, spec.ignore, file), round_to=spec.round_to,
                forward_fn=_train_mode_forward, output_transform=_all_outputs)
    finally:
        model.load_state_dict(buffers)
        model.train(was_training)
    return pruner


def accumulate_taylor_gradients(model: SegmentationModel, batches: Iterable[dict[str, Tensor]],
                                loss_fn: Callable[[SegmentationModel, dict[str, Tensor]], Tensor]) -> None:
    """Leave d(loss)/d(weight), summed over `batches`, in .grad for TaylorImportance.

    Training mode (dropout, batch statistics) as in training, but BatchNorm running statistics and
    the model's mode are restored afterwards: ranking channels must not change the model.
    """
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    was_training = model.training
    model.zero_grad(set_to_none=True)
    model.train()
    with torch.enable_grad():
        for batch in batches:
            loss_fn(model, batch).backward()
    model.load_state_dict(buffers, strict=False)
    model.train(was_training)


def measure(model: SegmentationModel, size: tuple[int, int], ratio: float,
            reference: SegmentationModel | None = None, repeats: int = 20) -> PruneStep:
    """Params and GFLOPs; with a reference, the batch-1 latency ratio timed side by side with it."""
    device = next(model.parameters()).device
    step = PruneStep(ratio, count_params(model), count_gflops(model, size, device))
    if reference is not None:
        was_training = model.training
        times, _ = measure_latency({"pruned": model, "unpruned": reference}, size, repeats=repeats, device=device)
        model.train(was_training)
        step.latency_ratio = paired_ratio(times["pruned"], times["unpruned"])
    return step


def prune_model(model: SegmentationModel, spec: PruneSpec, size: tuple[int, int], *, file: Any = None,
                gradient_batches: Callable[[], Iterable[dict[str, Tensor]]] | None = None,
                loss_fn: Callable[[SegmentationModel, dict[str, Tensor]], Tensor] | None = None,
                between_steps: Callable[[SegmentationModel, int], None] | None = None,
                progress: Callable[[str], None] = lambda _: None) -> PruneReport:
    """Prune `model` in place in `spec.step_count` steps, stopping early once a target is met.

    gradient_batches / loss_fn: the data and loss whose gradients rank channels for `taylor`.
    between_steps(model, k): fine-tuning after step k (not after the last step).
    """
    if spec.importance == "taylor" and (gradient_batches is None or loss_fn is None):
        raise DistillError(file, "prune.importance", "magnitude or group_norm (taylor needs training data)", got="taylor")
    reference = copy.deepcopy(model).eval() if spec.target_latency_ratio is not None else None
    report = PruneReport(tuple(size), measure(model, size, 0.0, reference))
    pruner = build_pruner(model, spec, size, file)
    steps = spec.step_count
    for k in range(1, steps + 1):
        if spec.importance == "taylor":
            accumulate_taylor_gradients(model, gradient_batches(), loss_fn)
        with torch.enable_grad():
            pruner.step()
        model.zero_grad(set_to_none=True)
        model.refresh_taps()  # feature losses build their adapters from these
        step = measure(model, size, spec.ratio * k / steps, reference)
        report.steps.append(step)
        progress(_describe(k, steps, step, report.before))
        if spec.has_target and _meets(spec, step, report.before):
            report.target_met = True
            return report
        if k < steps and between_steps is not None:
            between_steps(model, k)
    if spec.has_target:
        report.target_met = False
    return report


def _meets(spec: PruneSpec, step: PruneStep, before: PruneStep) -> bool:
    if spec.target_latency_ratio is not None and (step.latency_ratio is None or step.latency_ratio > spec.target_latency_ratio):
        return False
    if spec.target_gflops_ratio is not None and step.gflops / before.gflops > spec.target_gflops_ratio:
        return False
    return True


def _describe(k: int, steps: int, step: PruneStep, before: PruneStep) -> str:
    text = (f"prune step {k}/{steps}: ratio {step.ratio:.2f}, params {step.params / 1e6:.2f} M "
            f"({step.params / before.params:.2f}x), GFLOPs {step.gflops:.2f} ({step.gflops / before.gflops:.2f}x)")
    if step.latency_ratio is not None:
        text += f", latency {step.latency_ratio:.2f}x"
    return text
