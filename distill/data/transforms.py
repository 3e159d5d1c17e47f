"""Joint image + label augmentation for training, and the dataset wrapper that applies it.

The recipe is the one most segmentation papers state: random rescale (0.5-2x), pad, random
crop, horizontal flip, mild photometric jitter. Labels are resampled by nearest neighbour
(never interpolated: a blend of class 3 and class 5 is not class 4) and padded with
IGNORE_INDEX so padding is never scored. Images stay uint8; the engine normalises.

Randomness comes only from the generator passed in, so a sample's augmentation is a function of
(seed, index, epoch) and reproducible regardless of worker count or process.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.data.base import SegDataset
from distill.errors import DistillError
from distill.geometry import make_record
from distill.outputs import IGNORE_INDEX

LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)  # ITU-R BT.601 weights, as torchvision uses
JITTER = 0.2  # brightness, contrast and saturation factors are drawn from [1 - JITTER, 1 + JITTER]


class TrainTransform:
    """`(sample, generator) -> sample`: rescale, pad, crop to crop_size (H, W), flip, jitter.

    A sample without a "label" (an unlabeled image, which is never read with its label) gets the
    same geometry and colours and stays without one. `sample["geometry"]` records what was done
    (distill.geometry.RECORD: sizes, pad, crop corner, flip, jitter)."""

    def __init__(self, crop_size: tuple[int, int], scale_range: tuple[float, float], flip: bool, photometric: bool) -> None:
        self.crop_size, self.scale_range = crop_size, scale_range
        self.flip, self.photometric = flip, photometric

    def __call__(self, sample: dict, generator: torch.Generator) -> dict:
        # One fixed-length draw per sample keeps the stream layout independent of the flags' effects.
        u = torch.rand(7, generator=generator, dtype=torch.float64).tolist()
        low, high = self.scale_range
        source = tuple(sample["image"].shape[-2:])
        image, label = rescale_pair(sample["image"], sample.get("label"), low + (high - low) * u[0])
        scaled = tuple(image.shape[-2:])
        image, label = pad_pair(image, label, self.crop_size)
        corner = crop_corner(tuple(image.shape[-2:]), self.crop_size, u[1], u[2])
        image, label = crop_pair(image, label, self.crop_size, u[1], u[2])
        flipped = self.flip and u[3] < 0.5
        if flipped:
            image, label = image.flip(-1), (label.flip(-1) if label is not None else None)
        if self.photometric:
            image = jitter_colours(image, *(1.0 + JITTER * (2.0 * v - 1.0) for v in u[4:7]))
        # What was done, for a teacher-output cache to do the same to its maps (distill.geometry).
        geometry = make_record(source, scaled, corner, self.crop_size, flipped, self.photometric)
        out = {**sample, "image": image.contiguous(), "geometry": geometry}
        return out if label is None else {**out, "label": label.contiguous()}


def build_train_transform(
    crop_size: Sequence[int],
    scale_range: Sequence[float] = (0.5, 2.0),
    flip: bool = True,
    photometric: bool = True,
) -> TrainTransform:
    """The training transform; crop_size is (H, W), scale_range the [low, high] rescale factors."""
    crop = tuple(crop_size)
    if len(crop) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in crop):
        raise DistillError(None, "data.crop_size", "two positive integers", got=list(crop))
    scales = tuple(float(v) for v in scale_range)
    if len(scales) != 2 or not 0 < scales[0] <= scales[1]:
        raise DistillError(None, "data.scale_range", "[low, high] with 0 < low <= high", got=list(scale_range))
    return TrainTransform((int(crop[0]), int(crop[1])), (scales[0], scales[1]), flip, photometric)


def rescale_pair(image: Tensor, label: Tensor | None, factor: float) -> tuple[Tensor, Tensor | None]:
    """Image (3, H, W) bilinear with antialias; label (H, W) nearest, by index arithmetic."""
    height, width = image.shape[-2:]
    new_h, new_w = max(1, round(height * factor)), max(1, round(width * factor))
    if (new_h, new_w) == (height, width):
        return image, label
    resized = F.interpolate(image[None].float(), size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    image = resized[0].round_().clamp_(0, 255).to(torch.uint8)
    if label is None:
        return image, None
    # Pixel-centre nearest neighbour ("nearest-exact"): torch's plain "nearest" shifts by half a pixel.
    rows = ((torch.arange(new_h) + 0.5) * (height / new_h)).long().clamp_(max=height - 1)
    cols = ((torch.arange(new_w) + 0.5) * (width / new_w)).long().clamp_(max=width - 1)
    return image, label[rows][:, cols]


def pad_pair(image: Tensor, label: Tensor | None, size: tuple[int, int]) -> tuple[Tensor, Tensor | None]:
    """Pad bottom/right to at least size: image with 0, label with IGNORE_INDEX."""
    pad_h, pad_w = max(0, size[0] - image.shape[-2]), max(0, size[1] - image.shape[-1])
    if pad_h == 0 and pad_w == 0:
        return image, label
    image = F.pad(image, (0, pad_w, 0, pad_h), value=0)
    label = F.pad(label, (0, pad_w, 0, pad_h), value=IGNORE_INDEX) if label is not None else None
    return image, label


def crop_pair(image: Tensor, label: Tensor | None, size: tuple[int, int], u_top: float,
              u_left: float) -> tuple[Tensor, Tensor | None]:
    """A size (H, W) window; u_top, u_left in [0, 1) pick its corner uniformly."""
    top, left = crop_corner(tuple(image.shape[-2:]), size, u_top, u_left)
    if label is None:
        return image[:, top : top + size[0], left : left + size[1]], None
    return image[:, top : top + size[0], left : left + size[1]], label[top : top + size[0], left : left + size[1]]


def crop_corner(padded: tuple[int, int], size: tuple[int, int], u_top: float, u_left: float) -> tuple[int, int]:
    """(top, left) of crop_pair's window in a padded (H, W) image."""
    height, width = padded
    return min(int(u_top * (height - size[0] + 1)), height - size[0]), min(int(u_left * (width - size[1] + 1)), width - size[1])


def jitter_colours(image: Tensor, brightness: float, contrast: float, saturation: float) -> Tensor:
    """torchvision's ColorJitter maths (without hue) on a uint8 (3, H, W) image, in a fixed order."""
    x = image.float() * brightness
    mean = (x * LUMA).sum(0).mean()
    x = (x - mean) * contrast + mean
    grey = (x * LUMA).sum(0, keepdim=True)
    x = grey + (x - grey) * saturation
    return x.round_().clamp_(0, 255).to(torch.uint8)


class TransformedDataset(SegDataset):
    """Applies `transform(sample, generator)` with a generator seeded by (seed, index, epoch).

    Call `set_epoch(e)` before each epoch so augmentations differ between epochs. DataLoader
    workers get a copy of this object when their iterator starts, so with persistent_workers
    the epoch would never reach them: build the iterator after set_epoch, without persistence.
    """

    def __init__(self, dataset, transform, seed: int = 0) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed
        self.epoch = 0
        base = find_base(dataset)
        self.classes, self.name = list(base.classes), base.name
        self.split = getattr(base, "split", "train")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def stem(self, index: int) -> str:
        return stem_of(self.dataset, index)

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator()
        # hash() of a tuple of ints is stable across runs (PYTHONHASHSEED only salts str/bytes).
        generator.manual_seed(hash((self.seed, index, self.epoch)) & 0xFFFF_FFFF_FFFF_FFFF)
        return self.transform(self.dataset[index], generator)


def find_base(dataset) -> SegDataset:
    """The innermost data set with class names, looking through torch Subset-style `.dataset` links."""
    current = dataset
    while not hasattr(current, "classes"):
        if not hasattr(current, "dataset"):
            raise TypeError(f"{type(dataset).__name__} wraps no data set with `classes`")
        current = current.dataset
    return current


def stem_of(dataset, index: int) -> str:
    """A sample's stem without decoding it, through SegDataset.stem or a torch Subset's indices."""
    if hasattr(dataset, "stem"):
        return dataset.stem(index)
    if hasattr(dataset, "indices") and hasattr(dataset, "dataset"):
        return stem_of(dataset.dataset, dataset.indices[index])
    return dataset[index]["name"]
