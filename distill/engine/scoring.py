"""Scoring a model file, or a folder of predictions made by any other tool, with one metric code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image

from distill.data import build_dataset
from distill.engine.evaluate import evaluate
from distill.errors import DistillError
from distill.metrics import SegMetrics
from distill.models import load_model_file


def score_model_file(path: Path, data: str, root: str | None, split: str, eval_size: tuple[int, int] | None = None,
                     options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild the model from the file alone and evaluate it on a split; eval_size defaults to the file's."""
    model, meta = load_model_file(path)
    if options is None and meta.info.get("dataset") == data:
        options = meta.info.get("data_options")  # e.g. the synthetic scenes' size and count
    dataset = build_dataset(data, root, split, options)
    if meta.classes and list(dataset.classes) != meta.classes:
        raise DistillError(path, "classes", f"the classes of data set {data!r} ({len(dataset.classes)})", got=meta.classes)
    size = eval_size or meta.info.get("eval_size")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model.to(accelerator.device)
    metrics = evaluate(model, dataset, list(dataset.classes), accelerator,
                       eval_size=tuple(size) if size else None, show_progress=True)
    return {**metrics, "split": split, "dataset": data, "model": str(path)}


def score_prediction_folder(folder: Path, data: str, root: str | None, split: str,
                            options: dict[str, Any] | None = None) -> dict[str, Any]:
    """PNG label maps named like the data set's images (pixel value = class index)."""
    if not folder.is_dir():
        raise DistillError(folder, "--predictions", "a folder of PNG label maps", got="<missing>")
    dataset = build_dataset(data, root, split, options)
    classes = list(dataset.classes)
    metrics = SegMetrics(num_classes=len(classes), class_names=classes)
    for i in range(len(dataset)):
        sample = dataset[i]
        file = folder / f"{sample['name']}.png"
        if not file.is_file():
            raise DistillError(file, "--predictions", f"a PNG for every {split} image", got="<missing>")
        try:
            pred = torch.from_numpy(np.array(Image.open(file))).long()
        except Exception as exc:  # PIL raises many types for corrupt files
            raise DistillError(file, None, "a readable PNG label map", got=f"<{exc}>") from None
        label = sample["label"]
        if pred.ndim != 2 or tuple(pred.shape) != tuple(label.shape):
            raise DistillError(file, None, f"a single-channel map of size {tuple(label.shape)}", got=tuple(pred.shape))
        if int(pred.max()) >= len(classes):
            raise DistillError(file, None, f"class indices 0..{len(classes) - 1}", got=int(pred.max()))
        metrics.update(pred[None], label[None])
    return {**metrics.compute(), "split": split, "dataset": data, "predictions": str(folder)}
