"""The sample contract every data set keeps, and the file-pair reader most of them share.

A sample is `{"image": uint8 (3, H, W) RGB, "label": int64 (H, W), "name": stem}` at the file's
native resolution. Images are not normalised: the engine normalises with the model card's mean
and std, so one data set serves teachers and students with different statistics. Labels are
already mapped to train ids in 0..C-1, with IGNORE_INDEX (255) for pixels that are not scored.

Files are checked when read, not when listed: listing a 20k-image data set must stay cheap, and
a bad file then fails with its own path instead of somewhere inside a collate function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from distill.errors import DistillError
from distill.outputs import IGNORE_INDEX

INVALID = -1  # marks a raw label value that a data set does not define


class SegDataset(Dataset):
    """Base class: `classes[i]` names class id i; `name` names the data set, `split` the split."""

    classes: list[str]
    name: str
    split: str

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def stem(self, index: int) -> str:
        """The sample's name without decoding it (split lists are written from stems)."""
        return self[index]["name"]

    def read_image(self, index: int) -> Tensor:
        """The sample's uint8 (3, H, W) image alone: what an unlabeled view reads. Data sets with
        label files override it so that the label file is never opened; a generated data set drops
        the label here, so it never leaves the data set either."""
        return self[index]["image"]


def make_label_table(mapping: dict[int, int]) -> np.ndarray:
    """A 256-entry lookup raw value -> train id; values absent from `mapping` become INVALID.

    A lookup table maps a whole mask in one indexing step, and marking undefined values lets a
    wrong file (a colour mask, a label set from another data set) fail instead of training on noise.
    """
    table = np.full(256, INVALID, dtype=np.int16)
    for raw, train_id in mapping.items():
        table[raw] = train_id
    return table


def make_identity_table(num_classes: int) -> np.ndarray:
    """0..C-1 keep their value, 255 stays ignore, anything else is invalid."""
    return make_label_table({**{i: i for i in range(num_classes)}, IGNORE_INDEX: IGNORE_INDEX})


def open_image(path: Path, what: str) -> Image.Image:
    """Open and fully decode an image, turning any decoder failure into a DistillError naming it."""
    if not path.is_file():
        raise DistillError(path, None, f"an existing {what} file", got="<missing>")
    try:
        image = Image.open(path)
        image.load()  # PIL decodes lazily: force truncated or corrupt data to fail here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DistillError(path, None, f"a readable {what} file", got=f"<{type(exc).__name__}: {exc}>") from None
    return image


def read_rgb(path: Path) -> torch.Tensor:
    """(3, H, W) uint8 RGB; grey, palette and RGBA images are converted."""
    array = np.array(open_image(path, "image").convert("RGB"))  # (H, W, 3), a writable copy
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def read_raw_label(image: Image.Image, path: Path) -> np.ndarray:
    """(H, W) uint8 raw label values from a single-channel (L, P, I) PNG.

    Palette PNGs (VOC) hold class indices; converting them to RGB would read colours instead.
    """
    if image.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
        expected = "a single-channel label PNG (mode L or P) holding class indices"
        raise DistillError(path, None, expected, got=f"<mode {image.mode}>")
    raw = np.array(image)
    if raw.dtype != np.uint8:
        if raw.size and (raw.min() < 0 or raw.max() > 255):
            bad = sorted(int(v) for v in np.unique(raw[(raw < 0) | (raw > 255)])[:5])
            raise DistillError(path, None, "label values below 256", got=f"<values {bad}>")
        raw = raw.astype(np.uint8)
    return raw


def map_label(raw: np.ndarray, table: np.ndarray, path: Path, label_spec: str) -> torch.Tensor:
    """(H, W) int64 train ids; any raw value the table marks INVALID fails, naming the mask file."""
    mapped = table[raw]
    bad = mapped == INVALID
    if bad.any():
        values = sorted(int(v) for v in np.unique(raw[bad])[:8])
        raise DistillError(path, None, f"label values {label_spec}", got=f"<values {values}>")
    return torch.from_numpy(mapped.astype(np.int64))


class FilePairDataset(SegDataset):
    """Image files paired with label files; `table` maps raw label values to train ids."""

    def __init__(
        self,
        name: str,
        split: str,
        classes: Sequence[str],
        pairs: Sequence[tuple[Path, Path]],
        table: np.ndarray,
        label_spec: str,
        stems: Sequence[str] | None = None,
    ) -> None:
        self.name, self.split, self.classes = name, split, list(classes)
        self.pairs = [(Path(i), Path(m)) for i, m in pairs]
        self.stems = list(stems) if stems is not None else [p[0].stem for p in self.pairs]
        self.table, self.label_spec = table, label_spec

    def __len__(self) -> int:
        return len(self.pairs)

    def stem(self, index: int) -> str:
        return self.stems[index]

    def read_image(self, index: int) -> Tensor:
        return read_rgb(self.pairs[index][0])  # the label file is not opened

    def __getitem__(self, index: int) -> dict:
        image_path, mask_path = self.pairs[index]
        image = read_rgb(image_path)
        mask = open_image(mask_path, "label")
        height, width = image.shape[-2:]
        if mask.size != (width, height):
            mw, mh = mask.size
            expected = f"{width}x{height} like the image {image_path.name}"
            raise DistillError(mask_path, "mask size", expected, got=f"<{mw}x{mh}>")
        label = map_label(read_raw_label(mask, mask_path), self.table, mask_path, self.label_spec)
        return {"image": image, "label": label, "name": self.stems[index]}
