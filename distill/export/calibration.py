"""The images an int8 graph is calibrated and checked on, fed as the exported graph reads them.

The graph takes RGB in [0, 1] at its fixed input size and applies the card's mean/std inside, so
images are only scaled and resized here (as `distill eval` resizes, engine/evaluate.predict_batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distill.data import build_dataset
from distill.errors import DistillError
from distill.io import ModelFile

AGREEMENT_IMAGES = 8  # val images (spread evenly over the split) and seeded random images (seeds 0..7)


def load_split(meta: ModelFile, name: str, root: str | None, split: str) -> Any:
    """A split of data set `name`, with the file's data options when it was trained on that data set
    (as distill eval does: e.g. the synthetic scenes' size); refused when empty or of other classes."""
    options = meta.info.get("data_options") if meta.info.get("dataset") == name else None
    dataset = build_dataset(name, root, split, options)
    if len(dataset) == 0:
        where, field = (root, "--data-root") if root is not None else ("command line", "--data")
        raise DistillError(where, field, f"a {split} split with at least 1 image to calibrate on", got="<0 images>")
    if meta.classes and list(dataset.classes) != meta.classes:
        raise DistillError(meta.path, "classes", f"the classes of data set {name!r} ({len(dataset.classes)})",
                           got=meta.classes)
    return dataset


def spread(length: int, count: int) -> list[int]:
    """Up to `count` indices spread evenly over range(length): a split stored in sequence order, as
    CamVid's is, would give one scene's frames if taken from the start."""
    return sorted({int(i) for i in np.linspace(0, length - 1, min(count, length)).round()})


def held_out_images(meta: ModelFile, name: str, root: str | None, size: tuple[int, int]) -> list[np.ndarray]:
    """AGREEMENT_IMAGES val images as the graph reads them, or none where the data set has no val split."""
    try:
        val = load_split(meta, name, root, "val")
    except DistillError:
        return []
    return [graph_input(val[i]["image"], size) for i in spread(len(val), AGREEMENT_IMAGES)]


def graph_input(image: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """uint8 (3, H, W) -> float32 (1, 3, h, w) in [0, 1] at the graph's size, resized as distill eval does."""
    x = image[None].float() / 255.0
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return x.numpy().astype(np.float32)


class CalibrationImages:
    """Feeds the calibration images one at a time (the graph is fixed to batch 1); rewind() starts over.

    An onnxruntime CalibrationDataReader by its protocol: that class's __subclasshook__ accepts any
    class with get_next, so this module needs no onnxruntime import to be loaded."""

    def __init__(self, dataset: Any, indices: list[int], size: tuple[int, int]) -> None:
        self.dataset, self.indices, self.size = dataset, indices, size
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        index = next(self._pending, None)
        return None if index is None else {"images": graph_input(self.dataset[index]["image"], self.size)}

    def rewind(self) -> None:
        self._pending = iter(self.indices)
