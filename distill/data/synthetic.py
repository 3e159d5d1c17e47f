"""`synthetic`: the embedded default data set, generated on the fly, nothing to download.

Each sample is drawn from its own generator seeded by (seed, split, index), so a sample is the
same in every process, worker and run, in any access order, and nothing is cached on disk.
Splits use disjoint seed streams, so val never repeats a training scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import NonNegativeInt, PositiveInt

from distill.data.base import SegDataset
from distill.data.build import DATASETS
from distill.data.scenes import CLASSES, draw_scene
from distill.errors import DistillError

DEFAULT_COUNTS = {"train": 96, "val": 24, "test": 24}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
MIN_SIDE = 16  # below this the scene layout (buildings, cars, people) no longer fits


class SyntheticScenes(SegDataset):
    """Procedural street scenes with 8 classes; see distill/data/scenes.py for what is drawn."""

    name = "synthetic"

    def __init__(self, split: str, num_images: int, size: tuple[int, int], seed: int) -> None:
        if split not in SPLIT_CODES:
            raise DistillError(None, "split", f"one of {', '.join(SPLIT_CODES)}", got=split)
        if min(size) < MIN_SIDE:
            raise DistillError(None, "data.options.size", f"[H, W] with both sides >= {MIN_SIDE}", got=list(size))
        self.split, self.num_images, self.size, self.seed = split, num_images, tuple(size), seed
        self.classes = list(CLASSES)

    def __len__(self) -> int:
        return self.num_images

    def stem(self, index: int) -> str:
        return f"{self.split}_{index:05d}"

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_images:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, SPLIT_CODES[self.split], index])
        image, label = draw_scene(self.size[0], self.size[1], rng)
        return {
            "image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
            "label": torch.from_numpy(label.astype(np.int64)),
            "name": self.stem(index),
        }


@DATASETS.register("synthetic")
def build_synthetic(
    root: Path | None,
    split: str,
    num_images: PositiveInt | None = None,
    size: tuple[PositiveInt, PositiveInt] = (96, 128),
    seed: NonNegativeInt = 0,
) -> SyntheticScenes:
    """Options: num_images per split (default train 96, val 24, test 24), size (H, W), seed. Root is ignored."""
    count = num_images if num_images is not None else DEFAULT_COUNTS.get(split, 0)
    return SyntheticScenes(split, count, size, seed)
