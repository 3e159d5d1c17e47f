"""Scoring a model file, or a folder of predictions made by any other tool, with one metric code.

Every check of the user's input (data set, split, the file itself, its classes) runs before the
model code (timm, accelerate: seconds of imports) is loaded, so a typo is answered at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from distill.data import DATASETS, SPLITS, build_dataset
from distill.errors import DistillError
from distill.io import PICKLE_SUFFIXES, ModelFile, read_model_file, read_torch_state_dict
from distill.metrics import SegMetrics

SOURCE = "command line"


def check_data_choice(data: str, split: str) -> None:
    """The data set and split named on the command line exist: checked before a model is built."""
    DATASETS.get(data, file=SOURCE, field="--data")
    if split not in SPLITS:
        raise DistillError(SOURCE, "--split", f"one of {', '.join(SPLITS)}", got=split)


def score_model_file(path: Path, data: str, root: str | None, split: str, eval_size: tuple[int, int] | None = None,
                     options: dict[str, Any] | None = None, *, card: Path | None = None,
                     allow_pickle: bool = False, label_input: bool = True,
                     inference: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild the model from the file alone and evaluate it on a split; eval_size defaults to the file's.

    With allow_pickle, `path` is a foreign torch state dict (weights_only=True) and `card` builds it.
    `inference` ({scales, flip}) replaces the card's eval-mode inference, as a teacher card's does.
    """
    check_data_choice(data, split)
    model, meta, dataset = _model_and_data(Path(path), data, root, split, options, card, allow_pickle)
    if inference is not None:
        from distill.models.cards import InferenceSpec

        try:
            spec = InferenceSpec(**inference)
        except ValueError as err:
            raise DistillError(SOURCE, "--scales", "scale factors between 0.25 and 4", got=inference.get("scales")) from err
        model.card = model.card.model_copy(update={"inference": spec})
        if not spec.plain and model.card.input.name != "image":
            raise DistillError(SOURCE, "--scales/--flip", "a model that reads images only", got=model.card.input.name)
    from accelerate import Accelerator

    from distill.engine.evaluate import evaluate

    size = eval_size or meta.info.get("eval_size")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model.to(accelerator.device)
    metrics = evaluate(model, dataset, list(dataset.classes), accelerator,
                       eval_size=tuple(size) if size else None, show_progress=True, label_input=label_input)
    spec = model.card.inference
    extra = {} if spec.plain else {"inference": spec.model_dump()}
    return {**metrics, **extra, "split": split, "dataset": data, "model": str(path)}


def _model_and_data(path: Path, data: str, root: str | None, split: str, options: dict[str, Any] | None,
                    card: Path | None, allow_pickle: bool) -> tuple[Any, ModelFile, Any]:
    """(model, what its file says, the data set), refusing a mismatch before the model is built."""
    if allow_pickle:
        if card is None:
            raise DistillError(SOURCE, "--card", f"a model card to build {path.name}'s architecture (with --allow-pickle)")
        state = read_torch_state_dict(path)  # weights_only=True: refuses code before anything is built
        dataset = build_dataset(data, root, split, options)
        from distill.models.build import model_from_state_dict

        model, meta = model_from_state_dict(state, path, card, list(dataset.classes))
        return model, meta, dataset
    if card is not None and path.suffix not in PICKLE_SUFFIXES:
        raise DistillError(SOURCE, "--card", "only with --allow-pickle and a torch .pth file (a model file carries its card)")
    from distill.models.build import CARD_SUFFIXES, load_model_file, model_from_file

    if path.suffix in CARD_SUFFIXES:  # an ensemble or onnx teacher's card is its own model file
        model, meta = load_model_file(path)
    else:
        meta, state = read_model_file(path)
        model = None  # built once the data set's classes are checked
        if options is None and meta.info.get("dataset") == data:
            options = meta.info.get("data_options")  # e.g. the synthetic scenes' size and count
    dataset = build_dataset(data, root, split, options)
    if meta.classes and list(dataset.classes) != meta.classes:
        raise DistillError(path, "classes", f"the classes of data set {data!r} ({len(dataset.classes)})", got=meta.classes)
    return (model if model is not None else model_from_file(meta, state)), meta, dataset


def score_prediction_folder(folder: Path, data: str, root: str | None, split: str,
                            options: dict[str, Any] | None = None) -> dict[str, Any]:
    """PNG label maps named like the data set's images (pixel value = class index)."""
    check_data_choice(data, split)
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
