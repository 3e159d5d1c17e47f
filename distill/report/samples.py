"""A few validation images with ground truth, each model's prediction and where it went wrong.

Pictures are small PNGs inlined as data URIs so the HTML page stays one self-contained file.
Class colours come from one fixed palette (class i always gets colour i), so two reports of
the same data set can be compared by eye.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from distill.data import build_dataset
from distill.outputs import IGNORE_INDEX

if TYPE_CHECKING:
    from distill.io import ModelFile
    from distill.models import SegmentationModel
    from distill.report.compare import DataChoice
from distill.engine.evaluate import predict_batch

# Distinct, colour-blind-aware first (Okabe-Ito, then Tableau); cycles past 20 classes.
PALETTE = [
    (0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0), (240, 228, 66),
    (80, 80, 80), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
]
IGNORE_COLOUR = (255, 255, 255)
WRONG_COLOUR = (220, 20, 60)
MAX_WIDTH = 240  # pixels per picture in the page; larger images are scaled down


@dataclass
class Prediction:
    model: str
    picture: str  # data URI, class colours
    errors: str  # data URI: wrong pixels red over a faded image
    accuracy: float  # % of labelled pixels right in this image


@dataclass
class SampleRow:
    name: str
    image: str
    truth: str
    predictions: list[Prediction] = field(default_factory=list)


@dataclass
class SampleGrid:
    classes: list[str]
    rows: list[SampleRow]

    def colours(self) -> list[tuple[int, int, int]]:
        return [colour_of(i) for i in range(len(self.classes))]


def colour_of(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def png_uri(pixels: np.ndarray, nearest: bool) -> str:
    """(H, W, 3) uint8 to a PNG data URI, scaled down to MAX_WIDTH (nearest for label maps)."""
    image = Image.fromarray(pixels)
    if image.width > MAX_WIDTH:
        height = max(1, round(image.height * MAX_WIDTH / image.width))
        image = image.resize((MAX_WIDTH, height), Image.NEAREST if nearest else Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def colourise(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(H, W) class indices (IGNORE_INDEX allowed) to (H, W, 3) colours."""
    table = np.array([colour_of(i) for i in range(num_classes)] + [IGNORE_COLOUR], dtype=np.uint8)
    index = np.where(labels == IGNORE_INDEX, num_classes, np.clip(labels, 0, num_classes - 1))
    return table[index]


def error_map(image: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Wrong pixels red; right ones a faded grey copy of the image (to see where); unlabelled white."""
    grey = image.mean(axis=2, keepdims=True) * 0.35 + 150
    out = np.repeat(grey, 3, axis=2).astype(np.uint8)
    out[(pred != truth) & (truth != IGNORE_INDEX)] = WRONG_COLOUR
    out[truth == IGNORE_INDEX] = IGNORE_COLOUR
    return out


def pick_indices(total: int, count: int) -> list[int]:
    """`count` images spread evenly over the split (the first ones are often near-duplicates)."""
    count = min(count, total)
    return sorted({round(i * (total - 1) / max(1, count - 1)) for i in range(count)}) if count else []


def collect_samples(metas: list[ModelFile], models: list[SegmentationModel], names: list[str], data: DataChoice,
                    count: int = 4) -> SampleGrid:
    """Predict `count` images of `data` with every model (at each model's own eval_size, as evaluation does)."""
    options = next((m.info.get("data_options") for m in metas if m.info.get("dataset") == data.name), None)
    dataset = build_dataset(data.name, data.root, data.split, options)
    classes = list(dataset.classes)
    rows = []
    for index in pick_indices(len(dataset), count):
        sample = dataset[index]
        image = sample["image"].permute(1, 2, 0).numpy()
        truth = sample["label"].numpy()
        row = SampleRow(str(sample["name"]), png_uri(image, nearest=False), png_uri(colourise(truth, len(classes)), True))
        for name, model, meta in zip(names, models, metas):
            size = meta.info.get("eval_size")
            device = next(model.parameters(), torch.empty(0)).device  # an ONNX model has none: the CPU
            model.eval()
            pred = predict_batch(model, sample["image"][None].to(device), tuple(truth.shape), tuple(size) if size else None,
                                 sample["label"][None].to(device))
            pred = pred[0].cpu().numpy()
            labelled = truth != IGNORE_INDEX
            accuracy = 100.0 * float((pred == truth)[labelled].mean()) if labelled.any() else float("nan")
            row.predictions.append(Prediction(name, png_uri(colourise(pred, len(classes)), True),
                                              png_uri(error_map(image, pred, truth), True), accuracy))
        rows.append(row)
    return SampleGrid(classes, rows)

