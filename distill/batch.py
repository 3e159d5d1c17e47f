"""A training batch as named views, and the registered transforms that add views.

A view is one input the models can be run on: an image tensor, its label map (None for unlabeled
data), and any per-sample extras a method needs (CutMix masks, label codes). A recipe with no
batch transforms has one view, `labeled`. Batch transforms (chosen by the recipe's
`batch_transforms:` list) make further views from the ones the loader gave, on the device, before
any model runs: an augmented copy for a consistency loss, a mixed unlabeled image, a noised input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from distill.errors import DistillError, did_you_mean
from distill.registry import Registry

DEFAULT_VIEW = "labeled"


@dataclass
class View:
    image: Tensor  # (N, 3, H, W) float in [0, 1]
    label: Tensor | None = None  # (N, H, W) int64, IGNORE_INDEX where not annotated; None: unlabeled data
    extras: dict[str, Tensor] = field(default_factory=dict)

    def labels(self, where: str = "a loss") -> Tensor:
        if self.label is None:
            raise DistillError(None, "view", f"a labeled view for {where}", got="<an unlabeled view>")
        return self.label


@dataclass
class Batch:
    views: dict[str, View]
    names: list[str] = field(default_factory=list)  # sample names, for logs

    def view(self, name: str) -> View:
        if name not in self.views:
            hint = did_you_mean(name, self.views) or f"views of this batch: {', '.join(self.views)}"
            raise DistillError(None, "view", "a view of the batch", got=name, hint=hint)
        return self.views[name]

    @classmethod
    def from_loader(cls, sample: dict[str, Any], device: torch.device | str = "cpu") -> Batch:
        """The loader's uint8 images (and labels, when present) as the `labeled` view, on `device`."""
        image = sample["image"].to(device).float().div_(255.0)
        label = sample.get("label")
        view = View(image, label.to(device) if label is not None else None)
        return cls({DEFAULT_VIEW: view}, list(sample.get("name", [])))


class BatchTransform:
    """Adds views to a batch. `produces` names them, so recipes can be checked before training."""

    produces: tuple[str, ...] = ()

    def __call__(self, batch: Batch, generator: torch.Generator | None = None) -> Batch:  # pragma: no cover
        raise NotImplementedError


BATCH_TRANSFORMS: Registry[type[BatchTransform]] = Registry("batch transform")


@BATCH_TRANSFORMS.register("hflip")
class HorizontalFlip(BatchTransform):
    """A mirrored copy of a view (image and label), for flip-consistency losses."""

    def __init__(self, source: str = DEFAULT_VIEW, name: str = "flipped") -> None:
        self.source, self.name = source, name
        self.produces = (name,)

    def __call__(self, batch: Batch, generator: torch.Generator | None = None) -> Batch:
        src = batch.view(self.source)
        label = src.label.flip(-1) if src.label is not None else None
        extras = {k: v.flip(-1) for k, v in src.extras.items()}
        return Batch({**batch.views, self.name: View(src.image.flip(-1), label, extras)}, batch.names)
