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
from distill.geometry import flip_records
from distill.registry import Registry

DEFAULT_VIEW = "labeled"


@dataclass
class View:
    image: Tensor  # (N, 3, H, W) float in [0, 1]
    label: Tensor | None = None  # (N, H, W) int64, IGNORE_INDEX where not annotated; None: unlabeled data
    extras: dict[str, Tensor] = field(default_factory=dict)
    # (N, len(RECORD)) what the loader's transform did to each sample (distill.geometry); None for
    # views no geometry describes (a mix of two images). A teacher-output cache serves only views with one.
    geometry: Tensor | None = None

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
        """The loader's uint8 images (and labels, when present) as the `labeled` view, on `device`;
        a semi-supervised loader's unlabeled views (data.unlabeled_views) as views without a label,
        whatever their sample holds."""
        image = sample["image"].to(device).float().div_(255.0)
        label = sample.get("label")
        views = {DEFAULT_VIEW: View(image, label.to(device) if label is not None else None, geometry=sample.get("geometry"))}
        for name, unlabeled in sample.get("views", {}).items():
            views[name] = View(unlabeled["image"].to(device).float().div_(255.0))
        return cls(views, list(sample.get("name", [])))


class BatchTransform:
    """Adds views to a batch. `produces` names them, so recipes can be checked before training."""

    produces: tuple[str, ...] = ()

    def __call__(self, batch: Batch, generator: torch.Generator | None = None) -> Batch:  # pragma: no cover
        raise NotImplementedError


BATCH_TRANSFORMS: Registry[type[BatchTransform]] = Registry("batch transform")


@BATCH_TRANSFORMS.register("hflip")
class HorizontalFlip(BatchTransform):
    """A mirrored copy of a view (image and label), for flip-consistency losses."""

    def __init__(self, source: str = DEFAULT_VIEW, into: str = "flipped") -> None:
        self.source, self.name = source, into  # `into`, not `name`: a recipe entry's name: is the transform's
        self.produces = (into,)

    def __call__(self, batch: Batch, generator: torch.Generator | None = None) -> Batch:
        src = batch.view(self.source)
        label = src.label.flip(-1) if src.label is not None else None
        extras = {k: v.flip(-1) for k, v in src.extras.items()}
        geometry = flip_records(src.geometry) if src.geometry is not None else None
        return Batch({**batch.views, self.name: View(src.image.flip(-1), label, extras, geometry)}, batch.names)


@BATCH_TRANSFORMS.register("copy")
class CopyView(BatchTransform):
    """A second view of the same images and labels. Every forward draws its own input noise (an
    input adapter that noises its input, as LAD's label channel does), so two views of one
    sample are two independently noised paths: LAD's dual-path teacher training."""

    def __init__(self, source: str = DEFAULT_VIEW, into: str = "copy") -> None:
        self.source, self.name = source, into
        self.produces = (into,)

    def __call__(self, batch: Batch, generator: torch.Generator | None = None) -> Batch:
        return Batch({**batch.views, self.name: batch.view(self.source)}, batch.names)


MIX_MASK = "mix_mask"  # the extras key of a mixed view's box mask, (N, 1, H, W) float in {0, 1}


def draw_box_masks(n: int, size: tuple[int, int], boxes: int, area: tuple[float, float],
                   generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """CutMix box masks as MGD draws them [C: MGD-SSSS mask_gen.py BoxMaskGenerator, config cutmix_*].

    Per sample a total area fraction p ~ U(area); each of `boxes` boxes covers p / boxes of the
    image with a random aspect ratio (height fraction f_h = exp(u ln p) / sqrt(boxes), u ~ U(0, 1),
    width fraction p / (boxes * f_h)), placed uniformly inside the image. Returns the masks (N, 1, H, W), 1 inside
    any box, and the boxes (N, boxes, 4) as (top, left, bottom, right) pixel rows/columns.
    Our choice [I]: overlapping boxes are a union (1 inside every box, methods.md section 2); the
    official generator toggles each box (1 - M), so an overlap of two boxes falls back to 0.
    """
    height, width = size
    u = torch.rand(n, 1 + 3 * boxes, generator=generator, device=generator.device if generator else device,
                   dtype=torch.float64).cpu()
    low, high = area
    prop = (low + (high - low) * u[:, :1]).clamp_min(1e-12)  # (N, 1)
    frac_h = torch.exp(u[:, 1 : 1 + boxes] * prop.log()) / boxes**0.5  # (N, boxes), in [p, 1] / sqrt(boxes)
    frac_w = prop / boxes / frac_h
    box_h, box_w = (frac_h * height).round(), (frac_w * width).round()
    top = ((height - box_h) * u[:, 1 + boxes : 1 + 2 * boxes]).round()
    left = ((width - box_w) * u[:, 1 + 2 * boxes :]).round()
    corners = torch.stack([top, left, top + box_h, left + box_w], dim=-1).long()  # (N, boxes, 4)
    rows, cols = torch.arange(height).view(1, 1, -1, 1), torch.arange(width).view(1, 1, 1, -1)
    t, l, b, r = (corners[..., i, None, None] for i in range(4))  # each (N, boxes, 1, 1)
    inside = (rows >= t) & (rows < b) & (cols >= l) & (cols < r)  # (N, boxes, H, W)
    return inside.any(dim=1, keepdim=True).float().to(device), corners


@BATCH_TRANSFORMS.register("cutmix")
class CutMix(BatchTransform):
    """x_m = (1 - M) * x_a + M * x_b: MGD's mixed unlabeled image (methods.md section 2).

    Mixes two views (by default the unlabeled views `unlabeled0` and `unlabeled1`) with one box
    mask per sample (see draw_box_masks; defaults 3 boxes, area U(0.25, 0.5) [C]) into the view
    `view`, which has no label and keeps M under extras["mix_mask"]: a loss mixes the teachers'
    logits on the two source views with the same M. The mask comes from the trainer's generator,
    which checkpoints save, so a resumed run draws the same masks.
    """

    def __init__(self, sources: tuple[str, str] = ("unlabeled0", "unlabeled1"), view: str = "mixed", boxes: int = 3,
                 area: tuple[float, float] = (0.25, 0.5)) -> None:
        if boxes < 1:
            raise DistillError(None, "batch_transforms.cutmix.boxes", "a number of boxes >= 1", got=boxes)
        if not 0.0 <= area[0] <= area[1] <= 1.0:
            raise DistillError(None, "batch_transforms.cutmix.area", "[low, high] with 0 <= low <= high <= 1", got=list(area))
        self.sources, self.view, self.boxes, self.area = tuple(sources), view, boxes, tuple(area)
        self.consumes, self.produces = self.sources, (view,)

    def __call__(self, batch: Batch, generator: torch.Generator | None = None) -> Batch:
        first, second = (batch.view(name).image for name in self.sources)
        if first.shape != second.shape:
            raise DistillError(None, "batch_transforms.cutmix.sources", "two views of one image size",
                               got=f"<{tuple(first.shape)} and {tuple(second.shape)}>")
        mask, _ = draw_box_masks(first.shape[0], tuple(first.shape[-2:]), self.boxes, self.area, generator, first.device)
        mixed = View((1 - mask) * first + mask * second, None, {MIX_MASK: mask})
        return Batch({**batch.views, self.view: mixed}, batch.names)
