"""Whole-split evaluation: each process scores its own share, metric counts are summed."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from distill.batch import View
from distill.models.base import class_map
from distill.measure.dynamic import DynamicCost, has_dynamic_cost
from distill.metrics import SegMetrics


def shard(dataset: Dataset, accelerator: Accelerator) -> Dataset:
    """Every process takes every world_size-th image: no image is seen twice (unlike padded loaders)."""
    if accelerator.num_processes == 1:
        return dataset
    return Subset(dataset, range(accelerator.process_index, len(dataset), accelerator.num_processes))


def collate(samples: list[dict]) -> dict:
    """Stacked images and labels; samples without a label (unlabeled images) give a batch without
    one, and a semi-supervised sample's `views` (name -> image-only sample) are collated alike."""
    batch = {"image": torch.stack([s["image"] for s in samples]), "name": [s["name"] for s in samples]}
    if "label" in samples[0]:
        batch["label"] = torch.stack([s["label"] for s in samples])
    if "geometry" in samples[0]:  # what the training transform did (distill.geometry)
        batch["geometry"] = torch.stack([s["geometry"] for s in samples])
    if "views" in samples[0]:
        batch["views"] = {name: collate([s["views"][name] for s in samples]) for name in samples[0]["views"]}
    return batch


@torch.inference_mode()
def predict_batch(model: nn.Module, images: torch.Tensor, label_size: tuple[int, int], eval_size: tuple[int, int] | None,
                  labels: torch.Tensor | None = None, label_input: bool = True) -> torch.Tensor:
    """(N, H, W) class map at label resolution; input resized to eval_size first when given.

    The model reads the view through its input adapter: a model whose input includes the label
    (privileged information, a teacher's) gets `labels`, resized like the image (nearest); with
    `label_input` False its extra channels are zeros instead (the teacher without its label)."""
    x = images.float() / 255.0
    if eval_size is not None and tuple(x.shape[-2:]) != tuple(eval_size):
        x = F.interpolate(x, size=eval_size, mode="bilinear", align_corners=False, antialias=True)
    adapter = model.input_adapter
    if adapter.reads_label and not label_input:
        inputs = torch.cat([x, x.new_zeros(x.shape[0], adapter.extra_channels, *x.shape[-2:])], 1)
    else:
        if not adapter.reads_label:
            labels = None  # the label never reaches a model that does not read it
        elif labels is not None and tuple(labels.shape[-2:]) != tuple(x.shape[-2:]):
            labels = F.interpolate(labels[:, None].float(), size=x.shape[-2:], mode="nearest")[:, 0].long()
        inputs = model.prepare_input(View(x, labels))
    logits = model(inputs).logits
    logits = F.interpolate(logits.float(), size=label_size, mode="bilinear", align_corners=False)
    return class_map(logits)


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    classes: list[str],
    accelerator: Accelerator,
    *,
    batch_size: int = 1,
    workers: int = 0,
    eval_size: tuple[int, int] | None = None,
    show_progress: bool = False,
    label_input: bool = True,
) -> dict:
    was_training = model.training
    model.eval()
    metrics = SegMetrics(num_classes=len(classes), class_names=classes, device=accelerator.device)
    cost = DynamicCost(accelerator.device) if has_dynamic_cost(model) else None  # DToP: executed GFLOPs, exits
    loader = DataLoader(shard(dataset, accelerator), batch_size=batch_size, num_workers=workers, collate_fn=collate)
    with torch.random.fork_rng(devices=[]), Progress(transient=True, disable=not (show_progress and accelerator.is_main_process)) as progress:
        torch.manual_seed(0)  # an input adapter's noise (LAD's label channel): the same figures every time
        task = progress.add_task("evaluating", total=len(loader))
        for batch in loader:
            labels = batch["label"].to(accelerator.device)
            run = partial(predict_batch, model, batch["image"].to(accelerator.device), tuple(labels.shape[-2:]), eval_size,
                          labels, label_input)
            pred = cost.measure(model, run) if cost is not None else run()
            metrics.update(pred, labels)
            progress.advance(task)
    state = metrics.state_tensor()
    if accelerator.num_processes > 1:
        state = accelerator.reduce(state, reduction="sum")
        metrics.load_state_tensor(state)
        if cost is not None:
            cost.reduce(lambda t: accelerator.reduce(t, reduction="sum"))
    model.train(was_training)
    return {**metrics.compute(), **input_note(model, label_input), **(cost.summary() if cost is not None else {})}


def input_note(model: nn.Module, label_input: bool) -> dict[str, str]:
    """What a model that reads the label was given: its figures are not an image-only model's."""
    if not model.input_adapter.reads_label:
        return {}
    return {"label_input": "ground truth (privileged information)" if label_input else "none (label channel zeroed)"}
